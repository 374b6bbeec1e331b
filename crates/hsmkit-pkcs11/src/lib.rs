//! PKCS#11 backend for hsmkit: keys are generated and kept on the token.
//!
//! ```no_run
//! # fn main() -> hsmkit::Result<()> {
//! let backend = hsmkit_pkcs11::Pkcs11Backend::open(
//!     "pkcs11:token=my-token?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234",
//! )?;
//! let store = hsmkit::Store::new(backend);
//! # Ok(()) }
//! ```
//!
//! Private and secret keys are created `CKA_SENSITIVE`, never `CKA_EXTRACTABLE`, with usage
//! flags from the key's allowed operations. Public operations (verify, encrypt, RSA-OAEP
//! wrap) run in software from the token's public key. Each key has a `CKO_DATA` metadata
//! object (label = name, application = `hsmkit`); keys made by other tools are found by
//! label and used with the flags they have.
#![forbid(unsafe_code)]

mod context;
mod encrypt;
mod error;
mod export;
mod generate;
mod import;
mod key;
mod metadata;
mod probe;
mod sign;
pub mod testing;
pub mod uri;
mod wrap;

use std::sync::{Arc, Mutex};

use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use hsmkit::{
    Backend, BackendKey, Capabilities, Error, KeyAttributes, KeyInfo, KeyMaterial, KeySpec, NewKey, Result,
};

pub use uri::{PinSource, Pkcs11Uri};

/// The cryptoki version this crate uses, for tests that talk PKCS#11 directly.
pub use cryptoki;

use context::Token;
use error::OpError;
use key::TokenKey;
use metadata::{APPLICATION, object_id};
use probe::Probe;

/// A PKCS#11 token as an hsmkit backend. Cheap to share; safe to use from many threads
/// (each operation takes a session from a pool).
#[derive(Debug)]
pub struct Pkcs11Backend {
    token: Arc<Token>,
    probe: Arc<Probe>,
}

type OpResult<T> = std::result::Result<T, OpError>;

fn metadata_template(name: &str) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::DATA),
        Attribute::Application(APPLICATION.to_vec()),
        Attribute::Label(name.as_bytes().to_vec()),
    ]
}

fn value_of(s: &Session, h: ObjectHandle) -> OpResult<Vec<u8>> {
    let v = s.get_attributes(h, &[AttributeType::Value])?;
    v.into_iter()
        .find_map(|a| match a {
            Attribute::Value(v) => Some(v),
            _ => None,
        })
        .ok_or_else(|| {
            Error::backend(error::KIND, "C_GetAttributeValue", "metadata object without a value").into()
        })
}

impl Pkcs11Backend {
    /// Opens the token a PKCS#11 URI names (see [`Pkcs11Uri`]).
    pub fn open(uri: &str) -> Result<Self> {
        Self::open_uri(&Pkcs11Uri::parse(uri)?)
    }

    /// Opens the token a parsed URI names.
    pub fn open_uri(uri: &Pkcs11Uri) -> Result<Self> {
        let module = uri.module()?;
        let token = Arc::new(Token::open(uri)?);
        let probe = Probe::get(&token, &module)?;
        Ok(Pkcs11Backend { token, probe })
    }

    /// The token's label.
    pub fn token_label(&self) -> &str {
        &self.token.label
    }

    fn key(
        &self,
        info: KeyInfo,
        id: Option<Vec<u8>>,
        handle: Option<ObjectHandle>,
        public: Option<hsmkit::PublicKey>,
    ) -> Result<TokenKey> {
        let public_ops = match &public {
            Some(p) => Some(hsmkit_soft::public_key_ops(info.clone(), p)?),
            None => None,
        };
        Ok(TokenKey {
            token: self.token.clone(),
            info,
            id,
            handle: Mutex::new(handle),
            public,
            public_ops,
            probe: self.probe.clone(),
        })
    }

    fn ensure_free(s: &Session, name: &str) -> OpResult<()> {
        if s.find_objects(&[Attribute::Label(name.as_bytes().to_vec())])?.is_empty() {
            Ok(())
        } else {
            Err(Error::AlreadyExists { name: name.to_owned() }.into())
        }
    }

    /// Writes the metadata object; on failure removes the key objects just made.
    fn finish_create(
        s: &Session,
        info: &KeyInfo,
        handles: &[ObjectHandle],
    ) -> OpResult<Option<hsmkit::PublicKey>> {
        let mut t = metadata_template(&info.name);
        t.extend([
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Value(metadata::encode(info)),
        ]);
        // The public object comes last; EC private objects carry no point.
        let public = handles.iter().rev().find_map(|h| export::read_public(s, *h).ok().flatten()).transpose();
        let r = s.create_object(&t).map_err(OpError::from).and(public.map_err(OpError::from));
        if r.is_err() {
            for h in handles {
                let _ = s.destroy_object(*h);
            }
        }
        r
    }

    fn info(req: &NewKey<'_>, spec: KeySpec, has_private: bool) -> KeyInfo {
        KeyInfo {
            name: req.name.to_owned(),
            version: req.version,
            spec,
            attributes: KeyAttributes { exportable: false, ..req.attributes.clone() },
            has_private,
            created: std::time::SystemTime::now(),
        }
    }
}

impl Backend for Pkcs11Backend {
    fn kind(&self) -> &'static str {
        "pkcs11"
    }

    fn capabilities(&self) -> Capabilities {
        self.probe.capabilities()
    }

    fn generate(&self, req: &NewKey<'_>, spec: KeySpec) -> Result<Box<dyn BackendKey>> {
        if req.attributes.exportable {
            return Err(Error::unsupported("exportable keys on a PKCS#11 token (keys never leave it)"));
        }
        let info = Self::info(req, spec, true);
        let (handle, public) = self.token.with_session(|s| {
            Self::ensure_free(s, req.name)?;
            let (k, p) = generate::generate(s, req, spec)?;
            let handles: Vec<_> = std::iter::once(k).chain(p).collect();
            let public = Self::finish_create(s, &info, &handles)?;
            OpResult::Ok((k, public))
        })?;
        Ok(Box::new(self.key(info, Some(object_id(req.version)), Some(handle), public)?))
    }

    fn import(&self, req: &NewKey<'_>, material: KeyMaterial) -> Result<Box<dyn BackendKey>> {
        if req.attributes.exportable {
            return Err(Error::unsupported("exportable keys on a PKCS#11 token (keys never leave it)"));
        }
        let material = hsmkit_soft::normalize(&material)?;
        let info = Self::info(req, material.spec()?, !material.is_public_only());
        let (handle, public) = self.token.with_session(|s| {
            Self::ensure_free(s, req.name)?;
            let (k, p) = import::import(s, req, &material)?;
            let handles: Vec<_> = k.into_iter().chain(p).collect();
            let public = Self::finish_create(s, &info, &handles)?;
            OpResult::Ok((k, public))
        })?;
        Ok(Box::new(self.key(info, Some(object_id(req.version)), handle, public)?))
    }

    fn get(&self, name: &str) -> Result<Box<dyn BackendKey>> {
        let (info, id, handle, public) = self.token.with_session(|s| {
            let meta = s.find_objects(&metadata_template(name))?;
            if let Some(m) = meta.first() {
                let info = metadata::decode(&value_of(s, *m)?)?;
                let id = object_id(info.version);
                let private = s
                    .find_objects(&key::private_template(name, Some(&id), info.spec.key_type()))?
                    .into_iter()
                    .next();
                let public_h = s
                    .find_objects(&[
                        Attribute::Class(ObjectClass::PUBLIC_KEY),
                        Attribute::Label(name.as_bytes().to_vec()),
                        Attribute::Id(id.clone()),
                    ])?
                    .into_iter()
                    .next();
                let public = match public_h.or(private) {
                    Some(h) if info.spec.key_type() != hsmkit::KeyType::Aes => {
                        export::read_public(s, h)?.transpose()?
                    }
                    _ => None,
                };
                return OpResult::Ok((info, Some(id), private, public));
            }
            // A key some other tool made: found by label, used with the flags it has.
            let all = s.find_objects(&[Attribute::Label(name.as_bytes().to_vec())])?;
            let class_of = |h: ObjectHandle| -> OpResult<Option<ObjectClass>> {
                Ok(s.get_attributes(h, &[AttributeType::Class])?.into_iter().find_map(|a| match a {
                    Attribute::Class(c) => Some(c),
                    _ => None,
                }))
            };
            let (mut private, mut public_h) = (None, None);
            for h in all {
                match class_of(h)? {
                    Some(c) if c == ObjectClass::PRIVATE_KEY || c == ObjectClass::SECRET_KEY => {
                        private = Some(h)
                    }
                    Some(c) if c == ObjectClass::PUBLIC_KEY => public_h = Some(h),
                    _ => {}
                }
            }
            let Some(any) = private.or(public_h) else {
                return Err(Error::NotFound { what: format!("key '{name}'") }.into());
            };
            let spec = export::foreign_spec(s, any)?;
            let handles: Vec<_> = private.into_iter().chain(public_h).collect();
            let ops = export::foreign_ops(s, &handles)?;
            let public = match public_h.or(private) {
                Some(h) if spec.key_type() != hsmkit::KeyType::Aes => {
                    export::read_public(s, h)?.transpose().ok().flatten()
                }
                _ => None,
            };
            let info = KeyInfo {
                name: name.to_owned(),
                version: 1,
                spec,
                attributes: KeyAttributes { ops: Some(ops), ..KeyAttributes::default() },
                has_private: private.is_some(),
                created: std::time::UNIX_EPOCH,
            };
            OpResult::Ok((info, None, private, public))
        })?;
        Ok(Box::new(self.key(info, id, handle, public)?))
    }

    fn list(&self) -> Result<Vec<KeyInfo>> {
        self.token.with_session(|s| {
            let objs = s.find_objects(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Application(APPLICATION.to_vec()),
            ])?;
            objs.into_iter().map(|h| Ok(metadata::decode(&value_of(s, h)?)?)).collect::<OpResult<Vec<_>>>()
        })
    }

    fn destroy(&self, name: &str) -> Result<()> {
        self.token.with_session(|s| {
            let objs = s.find_objects(&[Attribute::Label(name.as_bytes().to_vec())])?;
            if objs.is_empty() {
                return Err(Error::NotFound { what: format!("key '{name}'") }.into());
            }
            for h in objs {
                s.destroy_object(h)?;
            }
            OpResult::Ok(())
        })
    }
}

// The README's Rust examples are compiled (and, unless `no_run`, run) as doctests here,
// the one crate that sees the core, the software backend and the PKCS#11 backend.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
