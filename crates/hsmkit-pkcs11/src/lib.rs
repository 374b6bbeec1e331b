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

use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use hsmkit::{
    Backend, BackendKey, Capabilities, Error, KeyAttributes, KeyDescription, KeyInfo, KeyMaterial, KeyOp,
    KeySpec, KeyState, NewKey, Result, SettingsEdit, StateEdit, StoreSettings, VersionEdit,
};

pub use uri::{PinSource, Pkcs11Uri};

/// The cryptoki version this crate uses, for tests that talk PKCS#11 directly.
pub use cryptoki;

use context::Token;
use error::OpError;
use key::TokenKey;
use metadata::object_id;
use probe::Probe;

/// A PKCS#11 token as an hsmkit backend. Cheap to share; safe to use from many threads
/// (each operation takes a session from a pool).
#[derive(Debug)]
pub struct Pkcs11Backend {
    token: Arc<Token>,
    probe: Arc<Probe>,
}

pub(crate) type OpResult<T> = std::result::Result<T, OpError>;

fn not_found(name: &str) -> OpError {
    Error::NotFound { what: format!("key '{name}'") }.into()
}

fn foreign(name: &str, what: &str) -> OpError {
    Error::unsupported(format!(
        "{what} key '{name}': it was not made by hsmkit and has no lifecycle metadata"
    ))
    .into()
}

/// The key objects (private, public, secret) labelled `name`, with `id` if given.
fn key_objects(s: &Session, name: &str, id: Option<&[u8]>) -> OpResult<Vec<(ObjectHandle, ObjectClass)>> {
    let mut out = Vec::new();
    for class in [ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY, ObjectClass::SECRET_KEY] {
        let mut t = vec![Attribute::Class(class), Attribute::Label(name.as_bytes().to_vec())];
        if let Some(id) = id {
            t.push(Attribute::Id(id.to_vec()));
        }
        out.extend(s.find_objects(&t)?.into_iter().map(|h| (h, class)));
    }
    Ok(out)
}

/// A key some other tool made: its objects found by label, used with the flags they have.
struct Foreign {
    info: KeyInfo,
    private: Option<ObjectHandle>,
    public: Option<hsmkit::PublicKey>,
}

fn find_foreign(s: &Session, name: &str) -> OpResult<Option<Foreign>> {
    let objs = key_objects(s, name, None)?;
    let private = objs.iter().find(|(_, c)| *c != ObjectClass::PUBLIC_KEY).map(|(h, _)| *h);
    let public_h = objs.iter().find(|(_, c)| *c == ObjectClass::PUBLIC_KEY).map(|(h, _)| *h);
    let Some(any) = private.or(public_h) else {
        return Ok(None);
    };
    let spec = export::foreign_spec(s, any)?;
    let handles: Vec<_> = private.into_iter().chain(public_h).collect();
    // Flags a key type cannot use (SoftHSM2 sets CKA_SIGN on AES keys) are dropped.
    let possible = hsmkit::KeyOps::possible_for(spec.key_type());
    let ops = export::foreign_ops(s, &handles)?.iter().filter(|op| possible.contains(*op)).collect();
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
        updated: std::time::UNIX_EPOCH,
    };
    Ok(Some(Foreign { info, private, public }))
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
            handle: Mutex::new(handle.map(|h| (h, self.token.epoch()))),
            public,
            public_ops,
            probe: self.probe.clone(),
        })
    }

    /// Creates version `req.version` with `make` (which returns the new object handles,
    /// private/secret first) and records it in the key's metadata object. If recording
    /// fails, the objects just made are destroyed.
    fn create_version(
        &self,
        req: &NewKey<'_>,
        info: KeyInfo,
        make: impl Fn(&Session) -> OpResult<(Option<ObjectHandle>, Option<ObjectHandle>)>,
    ) -> Result<Box<dyn BackendKey>> {
        // Read-modify-write of metadata and key objects: one writer per token on this
        // host (the in-process lock and the host lock file; see `Token::write_guard`).
        let _g = self.token.write_guard()?;
        let (handle, public) = self.token.with_session(|s| {
            let doc = metadata::read_doc(s, req.name)?;
            let id = object_id(req.version);
            match (&doc, req.version) {
                (Some(_), 1) => return Err(Error::AlreadyExists { name: req.name.to_owned() }.into()),
                (None, 1) if !key_objects(s, req.name, None)?.is_empty() => {
                    return Err(Error::AlreadyExists { name: req.name.to_owned() }.into());
                }
                (None, 1) => {}
                (None, _) if find_foreign(s, req.name)?.is_some() => {
                    return Err(foreign(req.name, "rotating"));
                }
                (None, _) => return Err(not_found(req.name)),
                (Some((_, d)), v)
                    if d.version(v).is_some() || !key_objects(s, req.name, Some(&id))?.is_empty() =>
                {
                    return Err(Error::AlreadyExists { name: format!("{}/{v}", req.name) }.into());
                }
                (Some(_), _) => {}
            }
            let (k, p) = make(s)?;
            let handles: Vec<_> = k.into_iter().chain(p).collect();
            let commit = || -> OpResult<Option<hsmkit::PublicKey>> {
                let (existing, mut doc) = match &doc {
                    Some((h, d)) => (Some(*h), d.clone()),
                    None => (
                        None,
                        KeyDescription {
                            name: req.name.to_owned(),
                            state: Default::default(),
                            versions: vec![],
                        },
                    ),
                };
                doc.versions.push(info.clone());
                // The public object comes last; EC private objects carry no point.
                let public = handles
                    .iter()
                    .rev()
                    .find_map(|h| export::read_public(s, *h).ok().flatten())
                    .transpose()?;
                metadata::write_doc(s, existing, &doc)?;
                Ok(public)
            };
            match commit() {
                Ok(public) => Ok((k, public)),
                Err(e) => {
                    for h in &handles {
                        let _ = s.destroy_object(*h);
                    }
                    Err(e)
                }
            }
        })?;
        Ok(Box::new(self.key(info, Some(object_id(req.version)), handle, public)?))
    }

    /// Pushes a version's dates and usage flags onto its objects, where the token has them.
    fn push_attributes(s: &Session, info: &KeyInfo) -> OpResult<()> {
        let date = |t: Option<std::time::SystemTime>| {
            t.map_or_else(cryptoki::types::Date::new_empty, metadata::ck_date)
        };
        let ops = info.attributes.allowed();
        for (h, class) in key_objects(s, &info.name, Some(&object_id(info.version)))? {
            let mut t = vec![
                Attribute::StartDate(date(info.attributes.not_before)),
                Attribute::EndDate(date(info.attributes.expires)),
            ];
            if class == ObjectClass::PUBLIC_KEY {
                t.extend([
                    Attribute::Verify(ops.contains(KeyOp::Verify)),
                    Attribute::Encrypt(ops.contains(KeyOp::Encrypt)),
                    Attribute::Wrap(ops.contains(KeyOp::WrapKey)),
                ]);
            } else {
                t.extend([
                    Attribute::Sign(ops.contains(KeyOp::Sign)),
                    Attribute::Decrypt(ops.contains(KeyOp::Decrypt)),
                    Attribute::Unwrap(ops.contains(KeyOp::UnwrapKey)),
                ]);
                if class == ObjectClass::SECRET_KEY {
                    t.extend([
                        Attribute::Encrypt(ops.contains(KeyOp::Encrypt)),
                        Attribute::Wrap(ops.contains(KeyOp::WrapKey)),
                    ]);
                }
            }
            s.update_attributes(h, &t)?;
        }
        Ok(())
    }

    fn info(req: &NewKey<'_>, spec: KeySpec, has_private: bool) -> KeyInfo {
        let mut info = req.info(spec, has_private);
        info.attributes.exportable = false;
        info
    }
}

fn refuse_exportable(req: &NewKey<'_>) -> Result<()> {
    if req.attributes.exportable {
        return Err(Error::unsupported("exportable keys on a PKCS#11 token (keys never leave it)"));
    }
    Ok(())
}

impl Backend for Pkcs11Backend {
    fn kind(&self) -> &'static str {
        "pkcs11"
    }

    fn capabilities(&self) -> Capabilities {
        self.probe.capabilities()
    }

    fn generate(&self, req: &NewKey<'_>, spec: KeySpec) -> Result<Box<dyn BackendKey>> {
        refuse_exportable(req)?;
        let info = Self::info(req, spec, true);
        self.create_version(req, info, |s| {
            let (k, p) = generate::generate(s, req, spec)?;
            Ok((Some(k), p))
        })
    }

    fn import(&self, req: &NewKey<'_>, material: KeyMaterial) -> Result<Box<dyn BackendKey>> {
        refuse_exportable(req)?;
        let material = hsmkit_soft::normalize(&material)?;
        let info = Self::info(req, material.spec()?, !material.is_public_only());
        self.create_version(req, info, |s| import::import(s, req, &material))
    }

    fn next_version(&self, key: &KeyDescription) -> Result<u32> {
        // Objects of an interrupted create (made, but never recorded) keep their number.
        let _read = self.token.read_guard()?;
        let on_token = self.token.with_session(|s| {
            if metadata::read_doc(s, &key.name)?.is_none() {
                return Err(foreign(&key.name, "adding a version to"));
            }
            let mut max = 0;
            for (h, _) in key_objects(s, &key.name, None)? {
                let id = s.get_attributes(h, &[AttributeType::Id])?;
                if let Some(Attribute::Id(id)) = id.first() {
                    max = max.max(metadata::version_of_id(id).unwrap_or(0));
                }
            }
            OpResult::Ok(max)
        })?;
        key.max_version().max(on_token).checked_add(1).ok_or_else(|| Error::invalid("too many versions"))
    }

    fn open(&self, name: &str, version: u32) -> Result<Box<dyn BackendKey>> {
        let _read = self.token.read_guard()?;
        let (info, id, handle, public) = self.token.with_session(|s| {
            let Some((_, doc)) = metadata::read_doc(s, name)? else {
                return match find_foreign(s, name)? {
                    Some(f) if version == 1 => OpResult::Ok((f.info, None, f.private, f.public)),
                    _ => Err(Error::NotFound { what: format!("version {version} of key '{name}'") }.into()),
                };
            };
            let info = doc
                .version(version)
                .cloned()
                .ok_or_else(|| Error::NotFound { what: format!("version {version} of key '{name}'") })?;
            let id = object_id(version);
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
            Ok((info, Some(id), private, public))
        })?;
        Ok(Box::new(self.key(info, id, handle, public)?))
    }

    fn describe(&self, name: &str) -> Result<KeyDescription> {
        let _read = self.token.read_guard()?;
        self.token.with_session(|s| match metadata::read_doc(s, name)? {
            Some((_, d)) => Ok(d),
            None => match find_foreign(s, name)? {
                Some(f) => Ok(KeyDescription {
                    name: name.to_owned(),
                    state: Default::default(),
                    versions: vec![f.info],
                }),
                None => Err(not_found(name)),
            },
        })
    }

    fn list(&self) -> Result<Vec<KeyDescription>> {
        let _read = self.token.read_guard()?;
        self.token.with_session(metadata::all_docs)
    }

    fn update_version(&self, name: &str, version: u32, edit: VersionEdit<'_>) -> Result<KeyInfo> {
        // Read-modify-write of metadata and key objects: one writer per token on this
        // host (the in-process lock and the host lock file; see `Token::write_guard`).
        let _g = self.token.write_guard()?;
        let edit = RefCell::new(edit);
        self.token.with_session(|s| {
            let Some((h, mut doc)) = metadata::read_doc(s, name)? else {
                return Err(if find_foreign(s, name)?.is_some() {
                    foreign(name, "updating")
                } else {
                    not_found(name)
                });
            };
            let info = doc
                .versions
                .iter_mut()
                .find(|v| v.version == version)
                .ok_or_else(|| Error::NotFound { what: format!("version {version} of key '{name}'") })?;
            (edit.borrow_mut())(info)?;
            let info = info.clone();
            Self::push_attributes(s, &info)?;
            metadata::write_doc(s, Some(h), &doc)?;
            Ok(info)
        })
    }

    fn update_state(&self, name: &str, edit: StateEdit<'_>) -> Result<KeyState> {
        // Read-modify-write of metadata and key objects: one writer per token on this
        // host (the in-process lock and the host lock file; see `Token::write_guard`).
        let _g = self.token.write_guard()?;
        let edit = RefCell::new(edit);
        self.token.with_session(|s| {
            let Some((h, mut doc)) = metadata::read_doc(s, name)? else {
                return Err(if find_foreign(s, name)?.is_some() {
                    foreign(name, "changing the state of")
                } else {
                    not_found(name)
                });
            };
            (edit.borrow_mut())(&mut doc.state)?;
            metadata::write_doc(s, Some(h), &doc)?;
            Ok(doc.state)
        })
    }

    fn purge(&self, name: &str, check: StateEdit<'_>) -> Result<()> {
        // Read-modify-write of metadata and key objects: one writer per token on this
        // host (the in-process lock and the host lock file; see `Token::write_guard`).
        let _g = self.token.write_guard()?;
        let check = RefCell::new(check);
        self.token.with_session(|s| {
            let (meta, mut state) = match metadata::read_doc(s, name)? {
                Some((h, d)) => (Some(h), d.state),
                None if find_foreign(s, name)?.is_some() => (None, KeyState::default()),
                None => return Err(not_found(name)),
            };
            (check.borrow_mut())(&mut state)?;
            // Key objects first: if this is interrupted, the metadata still names the key.
            for (h, _) in key_objects(s, name, None)? {
                s.destroy_object(h)?;
            }
            if let Some(h) = meta {
                s.destroy_object(h)?;
            }
            Ok(())
        })
    }

    fn settings(&self) -> Result<StoreSettings> {
        let _read = self.token.read_guard()?;
        self.token.with_session(|s| metadata::read_settings(s).map(|(_, st)| st))
    }

    fn update_settings(&self, edit: SettingsEdit<'_>) -> Result<StoreSettings> {
        // Read-modify-write of metadata and key objects: one writer per token on this
        // host (the in-process lock and the host lock file; see `Token::write_guard`).
        let _g = self.token.write_guard()?;
        let edit = RefCell::new(edit);
        self.token.with_session(|s| {
            let (h, mut st) = metadata::read_settings(s)?;
            (edit.borrow_mut())(&mut st)?;
            metadata::write_settings(s, h, &st)?;
            OpResult::Ok(st)
        })
    }
}

// The README's Rust examples are compiled (and, unless `no_run`, run) as doctests here,
// the one crate that sees the core, the software backend and the PKCS#11 backend.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
