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
//! flags from the key's allowed operations, and carry `CKA_LABEL` = key name and a random
//! 16-byte `CKA_ID` per version that the version's (signed) metadata records, with the
//! SHA-256 fingerprint of its public key. Public operations (verify, encrypt, RSA-OAEP
//! wrap) run in software from that public key. Metadata lives in signed private data
//! objects on the token or in a signed file (see `metadata=` in [`Pkcs11Uri`]); keys made
//! by other tools are found by label (private objects only) and used with the flags they
//! have.
#![forbid(unsafe_code)]
// A new algorithm, key type or operation must be handled everywhere (see hsmkit::algorithm).
#![warn(clippy::wildcard_enum_match_arm)]

mod context;
mod encrypt;
mod error;
mod export;
mod generate;
mod import;
mod key;
mod metadata;
mod objects;
mod oneshot;
mod probe;
mod sign;
pub mod testing;
pub mod uri;
mod wrap;

use hsmkit::{InvalidReason, UnsupportedReason};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use hsmkit::{
    Backend, BackendKey, Capabilities, Error, KeyAttributes, KeyInfo, KeyMaterial, KeyOp, KeySpec,
    MetadataStore, NewKey, Result,
};

pub use uri::{MetadataChoice, PinSource, Pkcs11Uri};

/// The cryptoki version this crate uses, for tests that talk PKCS#11 directly.
pub use cryptoki;

use context::Token;
use error::OpError;
use key::TokenKey;
use metadata::{FileMetadata, TokenMetadata, at_most_one};
use probe::Probe;

/// A PKCS#11 token as an hsmkit backend. Cheap to share; safe to use from many threads
/// (each operation takes a session from a pool).
#[derive(Debug)]
pub struct Pkcs11Backend {
    token: Arc<Token>,
    probe: Arc<Probe>,
    meta: Arc<dyn MetadataStore>,
    /// Why the metadata lives where it does, when hsmkit chose (`metadata=auto`).
    notes: Vec<String>,
}

pub(crate) type OpResult<T> = std::result::Result<T, OpError>;

/// The objects of a key version: every class, by label and (for keys hsmkit made) id.
fn key_objects(s: &Session, name: &str, id: Option<&[u8]>) -> OpResult<Vec<KeyObject>> {
    let mut out = Vec::new();
    for class in [ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY, ObjectClass::SECRET_KEY] {
        let mut t =
            vec![Attribute::Class(class), Attribute::Label(name.as_bytes().to_vec()), Attribute::Token(true)];
        if let Some(id) = id {
            t.push(Attribute::Id(id.to_vec()));
        }
        for h in s.find_objects(&t)? {
            out.push(KeyObject { handle: h, class, found_by: t.clone() });
        }
    }
    Ok(out)
}

/// An object of a key version, and the template it was found by (which it must still
/// match when it is destroyed: [`objects::destroy`]).
struct KeyObject {
    handle: ObjectHandle,
    class: ObjectClass,
    found_by: Vec<Attribute>,
}

/// The id of a version's objects; `None` for keys another tool made (found by label).
fn id_of(info: &KeyInfo) -> Option<Vec<u8>> {
    Some(info.binding.object_id.as_slice()).filter(|id| !id.is_empty()).map(ck_id)
}

/// What every `CKA_ID` hsmkit gives a key object starts with, before the version's
/// random object id: so a key object hsmkit made is never taken for another tool's key
/// (as it would be between its creation and the metadata write that records it).
pub const OBJECT_ID_PREFIX: &[u8] = b"hsmkit:";

/// The `CKA_ID` of a version's objects.
pub(crate) fn ck_id(object_id: &[u8]) -> Vec<u8> {
    [OBJECT_ID_PREFIX, object_id].concat()
}

/// The one public object of a key version, or a typed error naming every candidate.
fn public_object(s: &Session, name: &str, id: Option<&[u8]>) -> OpResult<Option<ObjectHandle>> {
    let mut t = vec![
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::Label(name.as_bytes().to_vec()),
        Attribute::Token(true),
    ];
    if let Some(id) = id {
        t.push(Attribute::Id(id.to_vec()));
    }
    Ok(at_most_one(&format!("the public key of '{name}'"), s.find_objects(&t)?)?)
}

/// The public key of a key version: read from its private object where that carries
/// it (RSA; a no-PIN session cannot plant a private object), else from its public
/// object, which must match the fingerprint pinned at creation.
fn public_of(
    s: &Session,
    info: &KeyInfo,
    private: Option<ObjectHandle>,
) -> OpResult<Option<hsmkit::PublicKey>> {
    if info.spec.key_type().is_secret() {
        return Ok(None);
    }
    let from_private = match private {
        Some(h) => export::read_public(s, h)?.and_then(|r| r.ok()),
        None => None,
    };
    let public = match from_private {
        Some(p) => Some(p),
        None => match id_of(info) {
            Some(id) => match public_object(s, &info.name, Some(&id))? {
                Some(h) => export::read_public(s, h)?.transpose()?,
                None => None,
            },
            None => foreign_public(s, info, private)?,
        },
    };
    if let Some(p) = &public {
        info.binding.check_public(crate::crypto(), &info.name, info.version, p)?;
    }
    Ok(public)
}

/// The public key of a key another tool made, from its public object, which nothing
/// pinned: used only if a session without the PIN could not have made it (it is
/// `CKA_PRIVATE`), or if the key's private object signs something it verifies. A public
/// key that passes neither is not used (public operations are then `Unsupported`).
fn foreign_public(
    s: &Session,
    info: &KeyInfo,
    private: Option<ObjectHandle>,
) -> OpResult<Option<hsmkit::PublicKey>> {
    let Some(h) = foreign_public_object(s, &info.name)? else { return Ok(None) };
    let Some(public) = export::read_public(s, h)?.transpose()? else { return Ok(None) };
    let private_object = s.get_attributes(h, &[cryptoki::object::AttributeType::Private])?;
    if private_object.iter().any(|a| matches!(a, Attribute::Private(true))) {
        return Ok(Some(public));
    }
    if let Some(k) = private
        && proves_pair(s, k, &public)
    {
        return Ok(Some(public));
    }
    tracing::warn!(target: "hsmkit::pkcs11", key = %info.name,
        "not using the public object of a key another tool made: it is not CKA_PRIVATE and no signature ties it to the private key");
    Ok(None)
}

/// Whether the private object `k` makes a signature that `public` verifies (ECDSA over a
/// fixed digest; RSA keys' public keys come from their private objects instead).
fn proves_pair(s: &Session, k: ObjectHandle, public: &hsmkit::PublicKey) -> bool {
    let alg = match public.spec() {
        KeySpec::Ec(hsmkit::EcCurve::P256) => hsmkit::SignatureAlgorithm::Es256,
        KeySpec::Ec(hsmkit::EcCurve::P384) => hsmkit::SignatureAlgorithm::Es384,
        KeySpec::Ec(hsmkit::EcCurve::P521) => hsmkit::SignatureAlgorithm::Es512,
        KeySpec::Ec(hsmkit::EcCurve::P256K) => hsmkit::SignatureAlgorithm::Es256k,
        KeySpec::Ed25519 => hsmkit::SignatureAlgorithm::EdDsa,
        KeySpec::Rsa { .. } | KeySpec::Aes(_) | KeySpec::Hmac { .. } => return false,
    };
    let message = b"hsmkit: does this public key belong to this private key?";
    let (data, mech) = match (alg.prehash(), sign::message_mechanism(alg)) {
        (Some(hash), _) => (crate::crypto().digest(hash, message), cryptoki::mechanism::Mechanism::Ecdsa),
        (None, Some(mech)) => (message.to_vec(), mech),
        (None, None) => return false,
    };
    let Ok(sig) = oneshot::sign(s, &mech, k, &data) else { return false };
    software_public(public).is_ok_and(|ops| ops.verify(alg, message, &sig).is_ok())
}

/// What this backend computes in host memory (digests for the token's raw mechanisms,
/// envelope AES-GCM, fingerprints): the fastest engine built in.
pub(crate) fn crypto() -> &'static dyn hsmkit::CryptoProvider {
    hsmkit_engine::Engine::fastest().provider()
}

/// The public operations of `public` in the software engine, for checking what a token
/// made (binding checks, probes): a key with no name, version or attributes of its own.
pub(crate) fn software_public(public: &hsmkit::PublicKey) -> Result<Box<dyn BackendKey>> {
    let info = KeyInfo {
        name: "token-check".into(),
        version: 1,
        spec: public.spec(),
        attributes: KeyAttributes::default(),
        has_private: false,
        created: std::time::UNIX_EPOCH,
        updated: std::time::UNIX_EPOCH,
        binding: hsmkit::KeyBinding::default(),
    };
    hsmkit_engine::public_key_ops(info, public)
}

/// The one public object labelled `name` that hsmkit did not make.
fn foreign_public_object(s: &Session, name: &str) -> OpResult<Option<ObjectHandle>> {
    let t = [
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::Label(name.as_bytes().to_vec()),
        Attribute::Token(true),
    ];
    let mut found = Vec::new();
    for h in s.find_objects(&t)? {
        if !made_by_hsmkit(s, h)? {
            found.push(h);
        }
    }
    Ok(at_most_one(&format!("the public key of '{name}'"), found)?)
}

/// A key some other tool made: its objects found by label, used with the flags they have.
/// Only private objects count as its private part: a session that never logged in can
/// create public objects, never private ones.
fn find_foreign(s: &Session, name: &str) -> OpResult<Option<KeyInfo>> {
    let private = {
        let mut found = Vec::new();
        for class in [ObjectClass::PRIVATE_KEY, ObjectClass::SECRET_KEY] {
            for h in s.find_objects(&key::foreign_template(name, class))? {
                if !made_by_hsmkit(s, h)? {
                    found.push(h);
                }
            }
        }
        at_most_one(&format!("key '{name}'"), found)?
    };
    if private.is_none() {
        // A key object that is not CKA_PRIVATE may have been planted by a session without
        // the PIN: say so, rather than "not found" or, worse, use it.
        for class in [ObjectClass::PRIVATE_KEY, ObjectClass::SECRET_KEY] {
            let any =
                [Attribute::Class(class), Attribute::Label(name.as_bytes().to_vec()), Attribute::Token(true)];
            let mut theirs = false;
            for h in s.find_objects(&any)? {
                theirs |= !made_by_hsmkit(s, h)?;
            }
            if theirs {
                return Err(Error::unsupported(
                    UnsupportedReason::Operation,
                    format!(
                        "key '{name}': its private or secret object is not CKA_PRIVATE, so a session without \
                     the PIN could have made it; hsmkit uses only private objects (make the key with \
                     CKA_PRIVATE, e.g. pkcs11-tool --private)"
                    ),
                )
                .into());
            }
        }
    }
    let public_h = foreign_public_object(s, name)?;
    // A public-only key another tool made counts only if its object is CKA_PRIVATE: a
    // session without the PIN could have made (or replaced) any other.
    let public_h = match (private, public_h) {
        (None, Some(h)) => {
            let a = s.get_attributes(h, &[cryptoki::object::AttributeType::Private])?;
            if !a.iter().any(|a| matches!(a, Attribute::Private(true))) {
                return Err(Error::unsupported(UnsupportedReason::Operation, format!(
                    "key '{name}': only a public key that is not CKA_PRIVATE is on the token, so a session \
                     without the PIN could have made it; import it with hsmkit (which pins it) or make it \
                     CKA_PRIVATE"
                ))
                .into());
            }
            Some(h)
        }
        (_, h) => h,
    };
    let Some(any) = private.or(public_h) else {
        return Ok(None);
    };
    let spec = export::foreign_spec(s, any)?;
    let handles: Vec<_> = private.into_iter().chain(public_h).collect();
    // Flags a key type cannot use (SoftHSM2 sets CKA_SIGN on AES keys) are dropped.
    let possible = hsmkit::KeyOps::possible_for(spec.key_type());
    let ops = export::foreign_ops(s, &handles)?.iter().filter(|op| possible.contains(*op)).collect();
    Ok(Some(KeyInfo {
        name: name.to_owned(),
        version: 1,
        spec,
        attributes: KeyAttributes { ops: Some(ops), ..KeyAttributes::default() },
        has_private: private.is_some(),
        created: std::time::UNIX_EPOCH,
        updated: std::time::UNIX_EPOCH,
        binding: hsmkit::KeyBinding::default(),
    }))
}

/// Whether hsmkit made the object (its `CKA_ID` has hsmkit's prefix): such objects belong
/// to a version the metadata records (or is about to), never to another tool's key.
fn made_by_hsmkit(s: &Session, h: ObjectHandle) -> OpResult<bool> {
    let id = s.get_attributes(h, &[cryptoki::object::AttributeType::Id])?;
    Ok(id.iter().any(|a| matches!(a, Attribute::Id(id) if id.starts_with(OBJECT_ID_PREFIX))))
}

/// Where hsmkit keeps a token's metadata when the URI does not say: a file under the
/// user's data directory, one per token.
fn default_metadata_file(token: &Token) -> Result<PathBuf> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .ok_or_else(|| {
            Error::invalid(
                InvalidReason::Parameter,
                "no HOME or XDG_DATA_HOME for the token's metadata file: give metadata=file:<path>",
            )
        })?;
    Ok(base.join("hsmkit").join("pkcs11").join(format!("{}.json", token.file_stem())))
}

impl Pkcs11Backend {
    /// Opens the token a PKCS#11 URI names (see [`Pkcs11Uri`]).
    pub fn open(uri: &str) -> Result<Self> {
        Self::open_uri(&Pkcs11Uri::parse(uri)?)
    }

    /// Opens the token a parsed URI names. Its metadata lives where the URI's
    /// `metadata=` says: `token` (signed private data objects), `file:<path>`, or by
    /// default `auto`: on the token when it keeps data objects, else in a file under the
    /// user's data directory (and [`Capabilities::notes`] says why).
    pub fn open_uri(uri: &Pkcs11Uri) -> Result<Self> {
        let module = uri.module()?;
        let token = Arc::new(Token::open(uri)?);
        let probe = Probe::get(&token, &module)?;
        let mut notes = Vec::new();
        let meta: Arc<dyn MetadataStore> = match &uri.metadata {
            MetadataChoice::Token => Arc::new(TokenMetadata::new(token.clone())),
            MetadataChoice::File(path) => Arc::new(FileMetadata::open(path, token.clone())?),
            MetadataChoice::Auto => {
                let file = default_metadata_file(&token);
                match file {
                    Ok(path) if path.exists() => {
                        notes.push(format!("metadata: in {} (it exists for this token)", path.display()));
                        Arc::new(FileMetadata::open(&path, token.clone())?)
                    }
                    // tpm2-pkcs11 1.9.0 creates a private data object without its CKA_VALUE
                    // once key objects have been destroyed in the process (a purge, then a
                    // create: reads give CKR_ATTRIBUTE_TYPE_INVALID, "Needed CKA_VALUE but
                    // didn't find encrypted blob"); no short probe reproduces it, so the
                    // library is named here. Writes on the token would fail loudly, not
                    // silently, but a file keeps the lifecycle working.
                    file if context::is_tpm2_pkcs11(&token.ctx) => {
                        let path = file?;
                        notes.push(format!(
                            "metadata: in {} because tpm2-pkcs11 loses private data-object values after \
                             key objects are destroyed (seen on 1.9.0)",
                            path.display()
                        ));
                        Arc::new(FileMetadata::open(&path, token.clone())?)
                    }
                    _ if metadata::has_documents(&token)? => Arc::new(TokenMetadata::new(token.clone())),
                    file => match metadata::probe_data_objects(&token) {
                        Ok(()) => Arc::new(TokenMetadata::new(token.clone())),
                        Err(why) => {
                            let path = file?;
                            tracing::warn!(target: "hsmkit::pkcs11", token = %token.label, reason = %why,
                                path = %path.display(), "keeping key metadata in a file");
                            notes.push(format!("metadata: in {} because {why}", path.display()));
                            Arc::new(FileMetadata::open(&path, token.clone())?)
                        }
                    },
                }
            }
        };
        Ok(Pkcs11Backend { token, probe, meta, notes })
    }

    /// The token's label.
    pub fn token_label(&self) -> &str {
        &self.token.label
    }

    fn key(
        &self,
        info: KeyInfo,
        handle: Option<ObjectHandle>,
        public: Option<hsmkit::PublicKey>,
    ) -> Result<TokenKey> {
        let public_ops = match &public {
            Some(p) => Some(hsmkit_engine::public_key_ops(info.clone(), p)?),
            None => None,
        };
        Ok(TokenKey {
            token: self.token.clone(),
            id: id_of(&info),
            info,
            handle: Mutex::new(handle.map(|h| (h, self.token.epoch()))),
            public,
            public_ops,
            probe: self.probe.clone(),
        })
    }

    /// Creates the objects of a new version with `make` (which returns the new object
    /// handles, private/secret first) and reads its public key. If anything after `make`
    /// fails, the objects just made are destroyed.
    fn create_version(
        &self,
        info: KeyInfo,
        make: impl Fn(&Session) -> OpResult<(Option<ObjectHandle>, Option<ObjectHandle>)>,
    ) -> Result<Box<dyn BackendKey>> {
        let _g = self.token.write_guard()?;
        let (handle, public) = self.token.with_session(|s| {
            metadata::ensure_signer(&self.token, s)?;
            let (k, p) = make(s)?;
            let read = || -> OpResult<Option<hsmkit::PublicKey>> {
                if info.spec.key_type().is_secret() {
                    return Ok(None);
                }
                // The public object comes last; EC private objects carry no point.
                let from = |h: Option<ObjectHandle>| -> OpResult<Option<hsmkit::PublicKey>> {
                    match h {
                        Some(h) => Ok(export::read_public(s, h)?.and_then(|r| r.ok())),
                        None => Ok(None),
                    }
                };
                match from(p)? {
                    Some(pk) => Ok(Some(pk)),
                    None => from(k),
                }
            };
            match read() {
                Ok(public) => Ok((k, public)),
                Err(e) => {
                    let secret = info.spec.key_type().is_secret();
                    let class = |public: bool| match (public, secret) {
                        (true, _) => ObjectClass::PUBLIC_KEY,
                        (false, true) => ObjectClass::SECRET_KEY,
                        (false, false) => ObjectClass::PRIVATE_KEY,
                    };
                    let made = k.map(|k| (k, false)).into_iter().chain(p.map(|p| (p, true)));
                    for (h, public) in made {
                        let mut expect = vec![Attribute::Class(class(public))];
                        expect.extend(id_of(&info).map(Attribute::Id));
                        if let Err(e) = objects::destroy(s, h, &expect) {
                            tracing::warn!(target: "hsmkit::pkcs11", key = %info.name,
                                "could not destroy a half-made key object: {e:?}");
                        }
                    }
                    Err(e)
                }
            }
        })?;
        Ok(Box::new(self.key(info, handle, public)?))
    }

    /// Pushes a version's dates and usage flags onto its objects, where the token has them.
    fn push_attributes(s: &Session, info: &KeyInfo) -> OpResult<()> {
        let date = |t: Option<std::time::SystemTime>| {
            t.map_or_else(cryptoki::types::Date::new_empty, metadata::ck_date)
        };
        let ops = info.attributes.allowed();
        let Some(id) = id_of(info) else { return Ok(()) };
        for KeyObject { handle: h, class, .. } in key_objects(s, &info.name, Some(&id))? {
            let mut t = vec![
                Attribute::StartDate(date(info.attributes.not_before)),
                Attribute::EndDate(date(info.attributes.expires)),
            ];
            // The flags that apply to the key type's objects (strict tokens refuse others).
            let (rsa_or_aes, hmac) = match info.spec.key_type() {
                hsmkit::KeyType::Rsa | hsmkit::KeyType::Aes => (true, false),
                hsmkit::KeyType::Hmac => (false, true),
                hsmkit::KeyType::Ec | hsmkit::KeyType::Ed25519 => (false, false),
            };
            if class == ObjectClass::PUBLIC_KEY {
                t.push(Attribute::Verify(ops.contains(KeyOp::Verify)));
                if rsa_or_aes {
                    t.extend([
                        Attribute::Encrypt(ops.contains(KeyOp::Encrypt)),
                        Attribute::Wrap(ops.contains(KeyOp::WrapKey)),
                    ]);
                }
            } else {
                t.push(Attribute::Sign(ops.contains(KeyOp::Sign)));
                if hmac {
                    t.push(Attribute::Verify(ops.contains(KeyOp::Verify)));
                }
                if rsa_or_aes {
                    t.extend([
                        Attribute::Decrypt(ops.contains(KeyOp::Decrypt)),
                        Attribute::Unwrap(ops.contains(KeyOp::UnwrapKey)),
                    ]);
                }
                if class == ObjectClass::SECRET_KEY && rsa_or_aes {
                    t.extend([
                        Attribute::Encrypt(ops.contains(KeyOp::Encrypt)),
                        Attribute::Wrap(ops.contains(KeyOp::WrapKey)),
                    ]);
                }
            }
            if let Err(e) = s.update_attributes(h, &t) {
                // The core enforces attributes for every hsmkit user; native attributes
                // are pushed where the token takes them. A token that refuses to change
                // them (tpm2-pkcs11 fixes usage at creation; some refuse CKA_UNWRAP on
                // RSA keys, which were then made with CKA_DECRYPT) keeps its own.
                if !refuses_change(&e) {
                    return Err(e.into());
                }
                tracing::debug!(target: "hsmkit::pkcs11", key = %info.name, error = %e,
                    "the token keeps its own usage attributes on this object");
                let dates = [t.remove(0), t.remove(0)];
                if let Err(e) = s.update_attributes(h, &dates)
                    && !refuses_change(&e)
                {
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    /// The attributes a new version's objects get on the token: the request's, except
    /// that on a token that cannot `C_UnwrapKey` with OAEP (it unwraps by `C_Decrypt`,
    /// see wrap.rs) RSA unwrapping keys also get `CKA_DECRYPT`. The core still refuses
    /// decrypt on them unless their allowed operations say so.
    fn on_token(&self, req: &NewKey<'_>, spec: KeySpec) -> KeyAttributes {
        let oaep = &self.probe.oaep;
        let by_decrypt = matches!(spec, KeySpec::Rsa { .. })
            && req.attributes.allowed().contains(KeyOp::UnwrapKey)
            && !(oaep.unwrap_sha1 || oaep.unwrap_sha256)
            && (oaep.sha1 || oaep.sha256);
        let mut on_token = req.attributes.clone();
        if by_decrypt {
            on_token.ops = Some(on_token.allowed().with(KeyOp::Decrypt));
        }
        on_token
    }

    fn info(req: &NewKey<'_>, spec: KeySpec, has_private: bool) -> KeyInfo {
        let mut info = req.info(spec, has_private);
        info.attributes.exportable = false;
        info
    }
}

/// Whether a `C_SetAttributeValue` failed because the token will not change that
/// attribute (as opposed to a failing token or session).
fn refuses_change(e: &cryptoki::error::Error) -> bool {
    use cryptoki::error::RvError as R;
    matches!(
        e,
        cryptoki::error::Error::Pkcs11(
            R::AttributeReadOnly
                | R::AttributeTypeInvalid
                | R::AttributeValueInvalid
                | R::TemplateInconsistent
                | R::ActionProhibited
                | R::GeneralError,
            _
        )
    )
}

fn refuse_exportable(req: &NewKey<'_>) -> Result<()> {
    if req.attributes.exportable {
        return Err(Error::unsupported(
            UnsupportedReason::Operation,
            "exportable keys on a PKCS#11 token (keys never leave it)",
        ));
    }
    Ok(())
}

impl Backend for Pkcs11Backend {
    fn kind(&self) -> &'static str {
        "pkcs11"
    }

    fn crypto(&self) -> &'static dyn hsmkit::CryptoProvider {
        crypto()
    }

    fn capabilities(&self) -> Capabilities {
        let mut c = self.probe.capabilities();
        c.metadata = self.meta.kind();
        c.notes.extend(self.notes.iter().cloned());
        c
    }

    fn metadata(&self) -> Arc<dyn MetadataStore> {
        self.meta.clone()
    }

    fn generate(&self, req: &NewKey<'_>, spec: KeySpec) -> Result<Box<dyn BackendKey>> {
        refuse_exportable(req)?;
        let info = Self::info(req, spec, true);
        let on_token = self.on_token(req, spec);
        let req = &NewKey { attributes: &on_token, ..req.clone() };
        self.create_version(info, |s| {
            let (k, p) = generate::generate(s, req, spec)?;
            Ok((Some(k), p))
        })
    }

    fn import(&self, req: &NewKey<'_>, material: KeyMaterial) -> Result<Box<dyn BackendKey>> {
        refuse_exportable(req)?;
        let material = hsmkit_engine::normalize(&material)?;
        let spec = material.spec()?;
        let info = Self::info(req, spec, !material.is_public_only());
        let on_token = self.on_token(req, spec);
        let req = &NewKey { attributes: &on_token, ..req.clone() };
        self.create_version(info, |s| import::import(s, req, &material))
    }

    fn open(&self, info: &KeyInfo) -> Result<Box<dyn BackendKey>> {
        let (handle, public) = self.token.with_session(|s| {
            let private = if info.has_private {
                let found = s.find_objects(&key::private_template(
                    &info.name,
                    id_of(info).as_deref(),
                    info.spec.key_type(),
                ))?;
                let what = format!("version {} of key '{}'", info.version, info.name);
                let h = at_most_one(&what, found)?.ok_or_else(|| Error::NotFound {
                    what: format!("the private object of {what} on the token"),
                })?;
                Some(h)
            } else {
                None
            };
            let public = public_of(s, info, private)?;
            OpResult::Ok((private, public))
        })?;
        Ok(Box::new(self.key(info.clone(), handle, public)?))
    }

    fn destroy(&self, info: &KeyInfo) -> Result<()> {
        let _g = self.token.write_guard()?;
        self.token.with_session(|s| {
            for o in key_objects(s, &info.name, id_of(info).as_deref())? {
                objects::destroy(s, o.handle, &o.found_by)?;
            }
            OpResult::Ok(())
        })
    }

    fn apply_attributes(&self, info: &KeyInfo) -> Result<()> {
        self.token.with_session(|s| Self::push_attributes(s, info))
    }

    fn unmanaged(&self, name: &str) -> Result<Option<KeyInfo>> {
        self.token.with_session(|s| find_foreign(s, name))
    }
}

// The README's Rust examples are compiled (and, unless `no_run`, run) as doctests here,
// the one crate that sees the core, the software backend and the PKCS#11 backend.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
