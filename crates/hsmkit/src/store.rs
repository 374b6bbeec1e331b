//! [`Store`]: the front door. Keys by name over any [`Backend`].

use crate::error::{InvalidReason, UnsupportedReason};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::attributes::{KeyAttributes, KeyOp, KeyOps};
use crate::audit::{AuditLog, Ctx};
use crate::backend::{Backend, Capabilities, KeyBinding, KeyInfo, NewKey};
use crate::error::{Denied, Error, ErrorKind, Result};
use crate::key::Key;
use crate::lifecycle::{Deletion, KeyDescription, KeyState, KeyUpdate, RotationPolicy, StoreSettings};
use crate::material::KeyMaterial;
use crate::metadata::MetadataStore;
use crate::spec::KeySpec;

/// Longest key name accepted.
pub const MAX_NAME_LEN: usize = 127;

/// Checks a key name: 1 to 127 characters of `A-Z a-z 0-9 -`, a key vault's alphabet, so
/// names are safe as file names, PKCS#11 labels, URL segments and terminal output. The
/// message never echoes a name that fails (it may hold control characters); it says how
/// long it was and which character was first refused, escaped.
pub fn validate_name(name: &str) -> Result<()> {
    validate_object_name(name, "key")
}

/// [`validate_name`] for an object of kind `what` (`key`, `secret`): the same rules, the
/// message naming the kind.
pub(crate) fn validate_object_name(name: &str, what: &str) -> Result<()> {
    let bad = name.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-'));
    if name.is_empty() || name.len() > MAX_NAME_LEN || bad.is_some() {
        let why = match bad {
            Some(c) => format!("it contains {:?}", c),
            None => format!("it has {} bytes", name.len()),
        };
        return Err(Error::invalid(
            InvalidReason::Name,
            format!("a {what} name must be 1-{MAX_NAME_LEN} characters of A-Z a-z 0-9 and '-' ({why})"),
        ));
    }
    Ok(())
}

/// Keys by name over one backend, with a key vault's lifecycle: versions, rotation,
/// attribute updates, soft delete, recover and purge. Cheap to clone; safe to share
/// between threads.
///
/// ```
/// # fn main() -> hsmkit::Result<()> {
/// use hsmkit::{EncryptionAlgorithm as Enc, KeyAttributes, KeySpec, KeyUpdate, Store};
///
/// let store = Store::new(hsmkit_soft::SoftBackend::new());
/// let v1 = store.create_key("data-key", KeySpec::RSA_2048, KeyAttributes::default())?;
/// let ct = v1.encrypt(Enc::RsaOaep256, b"secret")?;
/// let v2 = store.rotate_key("data-key")?;
/// assert_eq!(store.get_key("data-key")?.version(), 2);
/// // Old versions still decrypt what they encrypted...
/// assert_eq!(&*store.get_key_version("data-key", 1)?.decrypt(Enc::RsaOaep256, &ct)?, b"secret");
/// // ...until disabled.
/// store.update_key("data-key", 1, &KeyUpdate::enabled(false))?;
/// assert!(store.get_key_version("data-key", 1)?.decrypt(Enc::RsaOaep256, &ct).is_err());
/// # let _ = v2; Ok(()) }
/// ```
///
/// A [`Key`] is an open version with a snapshot of its attributes, like a PKCS#11 object
/// handle: changes made after it was opened (disable, delete) apply to keys opened
/// afterwards.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) meta: Arc<dyn MetadataStore>,
    pub(crate) ctx: Ctx,
    pub(crate) writers: Arc<NameLocks>,
}

/// Serialises the version-adding calls of one process per key name (striped by a hash of
/// the name). Without it, threads rotating one name each generate a key, all but one lose
/// the race for the version number, and their keys are destroyed unused: wasted seconds
/// of HSM key generation, and on tokens that do not release a destroyed object's slot
/// (tpm2-pkcs11 before 1.10) slots that only a new connection gives back. Other
/// processes still race, and the metadata store's compare-and-set settles that.
#[derive(Debug, Default)]
pub(crate) struct NameLocks([std::sync::Mutex<()>; 16]);

impl NameLocks {
    pub(crate) fn lock(&self, name: &str) -> std::sync::MutexGuard<'_, ()> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        name.hash(&mut h);
        let [first, ..] = &self.0;
        let stripe = usize::try_from(h.finish() % 16).ok().and_then(|i| self.0.get(i)).unwrap_or(first);
        // A panic while holding the lock left nothing half-done that the lock guards.
        stripe.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A key the store makes for its own use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StoreKeyRole {
    /// The audit key: MACs (or signs) audit records.
    Audit,
    /// The secrets KEK: wraps the data keys that seal secret values.
    Secrets,
    /// The backup key: wraps the data keys that seal backups.
    Backup,
}

impl StoreKeyRole {
    fn name(self) -> &'static str {
        match self {
            StoreKeyRole::Audit => crate::audit::AUDIT_KEY_NAME,
            StoreKeyRole::Secrets => crate::secrets::SECRETS_KEK_NAME,
            StoreKeyRole::Backup => crate::backup::BACKUP_KEY_NAME,
        }
    }

    fn what(self) -> &'static str {
        match self {
            StoreKeyRole::Audit => "an audit key",
            StoreKeyRole::Secrets => "a secrets KEK",
            StoreKeyRole::Backup => "a backup key",
        }
    }

    fn rsa_mechanism(self) -> &'static str {
        match self {
            StoreKeyRole::Audit => "RS256",
            StoreKeyRole::Secrets | StoreKeyRole::Backup => "RSA-OAEP unwrap",
        }
    }
}

/// The outcome of one rotation by [`Store::rotate_due`].
#[derive(Clone, Debug)]
pub struct Rotation {
    /// The key name.
    pub name: String,
    /// The version that was current.
    pub from_version: u32,
    /// Why it was due.
    pub reason: String,
    /// The new version, or why rotating failed.
    pub result: Result<u32>,
}

/// Longest retention accepted for soft-deleted keys (as key vaults: 7 to 90 days).
pub const MAX_RETENTION: Duration = Duration::from_secs(90 * 86_400);
/// Shortest retention accepted for soft-deleted keys.
pub const MIN_RETENTION: Duration = Duration::from_secs(7 * 86_400);

/// A key just made, with the metadata as recorded (the backend's own copy lacks the
/// public-key fingerprint the store pinned).
#[derive(Debug)]
struct Recorded {
    inner: Box<dyn crate::BackendKey>,
    info: KeyInfo,
}

impl crate::BackendKey for Recorded {
    fn info(&self) -> &KeyInfo {
        &self.info
    }
    fn check_algorithm(&self, op: crate::KeyOp, alg: crate::Algorithm) -> Result<()> {
        self.inner.check_algorithm(op, alg)
    }
    fn public_key(&self) -> Result<crate::PublicKey> {
        self.inner.public_key()
    }
    fn sign(&self, alg: crate::SignatureAlgorithm, message: &[u8]) -> Result<Vec<u8>> {
        self.inner.sign(alg, message)
    }
    fn verify(&self, alg: crate::SignatureAlgorithm, message: &[u8], signature: &[u8]) -> Result<()> {
        self.inner.verify(alg, message, signature)
    }
    fn sign_digest(&self, alg: crate::SignatureAlgorithm, digest: &[u8]) -> Result<Vec<u8>> {
        self.inner.sign_digest(alg, digest)
    }
    fn verify_digest(&self, alg: crate::SignatureAlgorithm, digest: &[u8], signature: &[u8]) -> Result<()> {
        self.inner.verify_digest(alg, digest, signature)
    }
    fn encrypt(&self, alg: crate::EncryptionAlgorithm, plaintext: &[u8], label: &[u8]) -> Result<Vec<u8>> {
        self.inner.encrypt(alg, plaintext, label)
    }
    fn decrypt(
        &self,
        alg: crate::EncryptionAlgorithm,
        ciphertext: &[u8],
        label: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>> {
        self.inner.decrypt(alg, ciphertext, label)
    }
    fn wrap_key(&self, alg: crate::KeyWrapAlgorithm, key: &[u8]) -> Result<Vec<u8>> {
        self.inner.wrap_key(alg, key)
    }
    fn unwrap_key(
        &self,
        alg: crate::KeyWrapAlgorithm,
        wrapped: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>> {
        self.inner.unwrap_key(alg, wrapped)
    }
    fn export(&self) -> Result<KeyMaterial> {
        self.inner.export()
    }
    fn crypto(&self) -> &'static dyn crate::crypto::CryptoProvider {
        self.inner.crypto()
    }
}

/// A fresh random id for a new version's backend objects.
fn new_object_id(crypto: &dyn crate::crypto::CryptoProvider) -> Result<[u8; 16]> {
    let mut id = [0u8; 16];
    crypto.fill_random(&mut id)?;
    Ok(id)
}

/// Checks that a secrets KEK or backup key found under its name is one the store would
/// have made (or accepted as an import): AES-256 allowing exactly wrapKey and unwrapKey,
/// or RSA-2048 allowing unwrapKey and at most wrapKey; never exportable. A key planted
/// under the name (by another tool, or before these names were the store's) is refused,
/// never used.
fn check_store_key_attributes(name: &str, spec: KeySpec, a: &KeyAttributes) -> Result<()> {
    let wrap_unwrap = KeyOps::from_ops(&[KeyOp::WrapKey, KeyOp::UnwrapKey]);
    let ops = a.allowed();
    let fits = match spec {
        KeySpec::Aes(_) => spec == KeySpec::AES_256 && ops == wrap_unwrap,
        KeySpec::Rsa { bits } => {
            bits == 2048 && ops.contains(KeyOp::UnwrapKey) && ops.iter().all(|op| wrap_unwrap.contains(op))
        }
        KeySpec::Ec(_) | KeySpec::Ed25519 | KeySpec::Hmac { .. } => false,
    };
    if !fits || a.exportable {
        return Err(Error::invalid(
            InvalidReason::Parameter,
            format!(
                "'{name}' is the store's own key: it must be AES-256 (or RSA-2048 where the backend has no AES \
                 key wrap) allowing only wrapKey and unwrapKey, not exportable; this one is {spec} with \
                 '{ops}'{}",
                if a.exportable { ", exportable" } else { "" }
            ),
        ));
    }
    Ok(())
}

/// Whether `name` is a key the store keeps for its own use (the secrets KEK, the backup
/// key): only the store opens it, so its use is always the store's (sealing secret values,
/// backups), never an application's `unwrap_key` or envelope.
pub(crate) fn store_only(name: &str) -> bool {
    name == crate::secrets::SECRETS_KEK_NAME || name == crate::backup::BACKUP_KEY_NAME
}

fn refuse_store_only(name: &str) -> Result<()> {
    if store_only(name) {
        return Err(Error::PermissionDenied { key: name.to_owned(), reason: Denied::StoreOnly });
    }
    Ok(())
}

/// Refuses a name some key already holds.
fn free(name: &str, d: Option<&KeyDescription>) -> Result<()> {
    match d {
        Some(_) => Err(Error::AlreadyExists { name: name.to_owned() }),
        None => Ok(()),
    }
}

fn deleted_not_found(name: &str) -> Error {
    Error::NotFound { what: format!("deleted key '{name}'") }
}

impl Store {
    /// A store over `backend`, with the backend's own metadata store.
    pub fn new(backend: impl Backend + 'static) -> Self {
        Self::from_arc(Arc::new(backend))
    }

    /// A store over a shared backend, with the backend's own metadata store.
    pub fn from_arc(backend: Arc<dyn Backend>) -> Self {
        let meta = backend.metadata();
        Self::with_metadata(backend, meta)
    }

    /// A store over `backend` whose metadata lives in `meta`.
    pub fn with_metadata(backend: Arc<dyn Backend>, meta: Arc<dyn MetadataStore>) -> Self {
        let ctx = Ctx::new(backend.crypto());
        Store { backend, meta, ctx, writers: Arc::default() }
    }

    /// This store with another clock: attribute checks, rotation, retention and audit
    /// times all use it. For tests and for "what if" rotation checks.
    #[must_use]
    pub fn with_clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.ctx.clock = Arc::new(clock);
        self
    }

    /// This store, writing every operation and lifecycle change to `log` as well.
    #[must_use]
    pub fn with_audit_log(mut self, log: AuditLog) -> Self {
        self.ctx.log = Some(Arc::new(log));
        self
    }

    /// This store, writing every operation and lifecycle change to the keyed audit file
    /// at `path` as well, its records authenticated under [`Store::audit_key`].
    pub fn with_audit_log_file(self, path: impl AsRef<std::path::Path>) -> Result<Self> {
        let (key, created) = self.get_or_create_audit_key()?;
        let log = AuditLog::open(path, &key)?;
        let store = self.with_audit_log(log);
        if created {
            // Made before there was a log to write to: its record is the log's next one.
            store.event(key.name(), Some(key.version()), "create", &Ok(()));
        }
        Ok(store)
    }

    /// The current version of the store's audit key ([`crate::audit::AUDIT_KEY_NAME`]),
    /// created on first use: AES-256 with `wrapKey` as its only operation, or, on a backend
    /// that cannot generate AES-256 or wrap with A256KW (tpm2-pkcs11), RSA-2048 with only
    /// `sign` (see [`crate::audit::AuditKey`]). Whoever can use it can write (and so
    /// forge) audit records: it is as protected as the store's other keys.
    pub fn audit_key(&self) -> Result<Key> {
        Ok(self.get_or_create_audit_key()?.0)
    }

    /// [`Store::audit_key`], and whether this call created it.
    fn get_or_create_audit_key(&self) -> Result<(Key, bool)> {
        self.get_or_create_store_key(StoreKeyRole::Audit)
    }

    /// The current version of a key the store itself uses, created on first use:
    /// AES-256, or where the backend cannot generate AES-256 or wrap with A256KW
    /// (tpm2-pkcs11), RSA-2048; with only the operations its role needs. Returns whether
    /// this call created it.
    pub(crate) fn get_or_create_store_key(&self, role: StoreKeyRole) -> Result<(Key, bool)> {
        let name = role.name();
        let adopt = |key: Key| -> Result<Key> {
            match role {
                StoreKeyRole::Audit => {}
                StoreKeyRole::Secrets | StoreKeyRole::Backup => {
                    check_store_key_attributes(name, key.spec(), &key.info().attributes)?
                }
            }
            Ok(key)
        };
        match self.open_key(name) {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                let caps = self.capabilities();
                let aes = caps.generate.contains(&KeySpec::AES_256)
                    && caps.wrap.contains(&crate::KeyWrapAlgorithm::A256Kw);
                // A KEK must also unwrap; the audit key only wraps (as a MAC).
                let aes_kek = aes && caps.unwrap.contains(&crate::KeyWrapAlgorithm::A256Kw);
                let rsa = caps.generate.contains(&KeySpec::RSA_2048);
                let (spec, ops): (KeySpec, &[KeyOp]) = match role {
                    StoreKeyRole::Audit if aes => (KeySpec::AES_256, &[KeyOp::WrapKey]),
                    StoreKeyRole::Audit if rsa && caps.sign.contains(&crate::SignatureAlgorithm::Rs256) => {
                        (KeySpec::RSA_2048, &[KeyOp::Sign])
                    }
                    StoreKeyRole::Secrets | StoreKeyRole::Backup if aes_kek => {
                        (KeySpec::AES_256, &[KeyOp::WrapKey, KeyOp::UnwrapKey])
                    }
                    StoreKeyRole::Secrets | StoreKeyRole::Backup
                        if rsa
                            && (caps.unwrap.contains(&crate::KeyWrapAlgorithm::RsaOaep256)
                                || caps.unwrap.contains(&crate::KeyWrapAlgorithm::RsaOaep)) =>
                    {
                        (KeySpec::RSA_2048, &[KeyOp::WrapKey, KeyOp::UnwrapKey])
                    }
                    StoreKeyRole::Audit | StoreKeyRole::Secrets | StoreKeyRole::Backup => {
                        return Err(Error::unsupported(
                            UnsupportedReason::KeyType,
                            format!(
                                "{}: the backend generates neither AES-256 with A256KW nor RSA-2048 with {}",
                                role.what(),
                                role.rsa_mechanism()
                            ),
                        ));
                    }
                };
                let attributes =
                    KeyAttributes { ops: Some(KeyOps::from_ops(ops)), ..KeyAttributes::default() };
                match self.create_key_unchecked(name, spec, attributes) {
                    // Another process created it first: use theirs.
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                        Ok((adopt(self.open_key(name)?)?, false))
                    }
                    r => Ok((r?, true)),
                }
            }
            r => Ok((adopt(r?)?, false)),
        }
    }

    /// The metadata seam this store keeps names, versions, state and records in: for
    /// tools that inspect, check or migrate metadata. Writing through it bypasses the
    /// store's lifecycle rules (its records stay authenticated: a record edited outside
    /// hsmkit is refused when read).
    pub fn metadata_store(&self) -> Arc<dyn MetadataStore> {
        self.meta.clone()
    }

    /// The backend's kind (`soft`, `pkcs11`).
    pub fn backend_kind(&self) -> &'static str {
        self.backend.kind()
    }

    /// The crypto provider this store computes with in host memory (the backend's).
    pub fn crypto(&self) -> &'static dyn crate::crypto::CryptoProvider {
        self.ctx.crypto
    }

    /// What the backend can do, and what holds the metadata.
    pub fn capabilities(&self) -> Capabilities {
        Capabilities { metadata: self.meta.kind(), ..self.backend.capabilities() }
    }

    /// A key's metadata, or the backend's unmanaged key of that name.
    fn describe_any(&self, name: &str) -> Result<Option<KeyDescription>> {
        if let Some(d) = self.meta.read(name)? {
            return Ok(Some(d));
        }
        Ok(self.backend.unmanaged(name)?.map(|info| KeyDescription {
            name: name.to_owned(),
            state: Default::default(),
            versions: vec![info],
        }))
    }

    /// Records a version the backend just made; destroys its objects if that fails, so a
    /// failed create leaves nothing behind. `new` decides, on the fresh description,
    /// whether the version may be added (`None`: the key does not exist yet).
    fn record(
        &self,
        key: Box<dyn crate::BackendKey>,
        check: &dyn Fn(Option<&KeyDescription>) -> Result<()>,
    ) -> Result<Key> {
        let mut info = key.info().clone();
        let name = info.name.clone();
        let r = (|| {
            if !info.spec.key_type().is_secret() {
                info.binding.public_sha256 =
                    Some(KeyBinding::fingerprint(self.ctx.crypto, &key.public_key()?)?);
            }
            self.meta.modify(&name, &mut |doc| {
                check(doc.as_ref())?;
                let mut doc = doc.unwrap_or(KeyDescription {
                    name: name.clone(),
                    state: Default::default(),
                    versions: vec![],
                });
                doc.versions.push(info.clone());
                doc.versions.sort_by_key(|v| v.version);
                Ok(Some(doc))
            })
        })();
        // A metadata store can fail after its write persisted (a read-back or fsync that
        // failed): the version is then recorded, and its objects must stay.
        let recorded = || {
            self.meta.read(&name).ok().flatten().is_some_and(|d| {
                d.version(info.version).is_some_and(|v| v.binding.object_id == info.binding.object_id)
            })
        };
        match r {
            Ok(()) => Ok(self.key(Box::new(Recorded { inner: key, info }))),
            Err(e) if recorded() => {
                tracing::warn!(target: "hsmkit::store", key = %name.escape_debug(), version = info.version,
                    error = %e, "the metadata store reported a failure, but the version is recorded");
                Ok(self.key(Box::new(Recorded { inner: key, info })))
            }
            Err(e) => {
                if let Err(d) = self.backend.destroy(&info) {
                    tracing::warn!(target: "hsmkit::store", key = %name.escape_debug(), version = info.version,
                        error = %d, "could not destroy the objects of a version that was not recorded");
                }
                Err(e)
            }
        }
    }

    fn key(&self, k: Box<dyn crate::BackendKey>) -> Key {
        Key::with_ctx(k, self.ctx.clone())
    }

    fn event<T>(&self, name: &str, version: Option<u32>, op: &str, r: &Result<T>) {
        self.ctx.emit(name, version, op, None, r);
    }

    /// A key that exists and is not deleted.
    fn live(&self, name: &str) -> Result<KeyDescription> {
        validate_name(name)?;
        let d = self.describe_any(name)?.ok_or_else(|| Error::NotFound { what: format!("key '{name}'") })?;
        if d.state.deleted.is_some() {
            return Err(Error::NotFound {
                what: format!("key '{name}' (it is deleted: recover or purge it)"),
            });
        }
        Ok(d)
    }

    fn check_generate(&self, spec: KeySpec) -> Result<()> {
        spec.check_generatable()?;
        if !self.backend.capabilities().generate.contains(&spec) {
            return Err(Error::unsupported(
                UnsupportedReason::KeyType,
                format!("{} backend cannot generate {spec} keys", self.backend.kind()),
            ));
        }
        Ok(())
    }

    /// Checks material for import and resolves its attributes.
    fn check_import(&self, material: &KeyMaterial, attributes: KeyAttributes) -> Result<KeyAttributes> {
        let spec = material.spec()?;
        if let KeySpec::Rsa { bits } = spec
            && !(crate::spec::RSA_MIN_BITS..=crate::spec::RSA_MAX_BITS).contains(&bits)
        {
            return Err(Error::invalid(
                InvalidReason::Length,
                format!("RSA keys of {bits} bits are not accepted (2048-8192)"),
            ));
        }
        let caps = self.backend.capabilities();
        if !caps.import {
            // The backend's note on why (for a token: what its C_CreateObject refused).
            let why = caps.notes.iter().find_map(|n| n.strip_prefix("import: ")).map(|n| format!(": {n}"));
            return Err(Error::unsupported(
                UnsupportedReason::Operation,
                format!("{} backend cannot import keys{}", self.backend.kind(), why.unwrap_or_default()),
            ));
        }
        let mut attributes = attributes.resolve(spec.key_type())?;
        if material.is_public_only() {
            // A public key can only do public operations; say so in its attributes.
            let public_ops = attributes.allowed().iter().filter(|op| !op.is_private()).collect();
            attributes.ops = Some(public_ops);
        }
        Ok(attributes)
    }

    /// Fails unless no key (managed, unmanaged or deleted) holds `name`.
    fn check_free(&self, name: &str) -> Result<()> {
        free(name, self.describe_any(name)?.as_ref())
    }

    /// [`check_import`](Self::check_import) for a restore.
    pub(crate) fn check_import_pub(
        &self,
        material: &KeyMaterial,
        attributes: KeyAttributes,
    ) -> Result<KeyAttributes> {
        self.check_import(material, attributes)
    }

    /// [`check_free`](Self::check_free) for a restore.
    pub(crate) fn check_free_name(&self, name: &str) -> Result<()> {
        validate_name(name)?;
        self.check_free(name)
    }

    /// A key's description whether deleted or not.
    fn live_or_deleted(&self, name: &str) -> Result<KeyDescription> {
        self.describe_any(name)?.ok_or_else(|| Error::NotFound { what: format!("key '{name}'") })
    }

    /// The metadata of a key hsmkit made; a typed refusal for a key another tool made.
    fn managed(&self, name: &str, doc: Option<KeyDescription>, what: &str) -> Result<KeyDescription> {
        match doc {
            Some(d) => Ok(d),
            None if self.backend.unmanaged(name)?.is_some() => Err(Error::unsupported(
                UnsupportedReason::Operation,
                format!("{what} key '{name}': it was not made by hsmkit and has no lifecycle metadata"),
            )),
            None => Err(Error::NotFound { what: format!("key '{name}'") }),
        }
    }

    /// Changes one version's metadata atomically, pushing native attributes onto the
    /// backend's objects inside the same step (so a refusal there changes nothing).
    fn update_version(
        &self,
        name: &str,
        version: u32,
        edit: &mut dyn FnMut(&mut KeyInfo) -> Result<()>,
    ) -> Result<KeyInfo> {
        let mut out = None;
        self.meta.modify(name, &mut |doc| {
            let mut doc = self.managed(name, doc, "updating")?;
            let info = doc
                .versions
                .iter_mut()
                .find(|v| v.version == version)
                .ok_or_else(|| Error::NotFound { what: format!("version {version} of key '{name}'") })?;
            edit(info)?;
            self.backend.apply_attributes(info)?;
            out = Some(info.clone());
            Ok(Some(doc))
        })?;
        out.ok_or_else(|| Error::NotFound { what: format!("key '{name}'") })
    }

    /// Changes a key's state atomically; returns the new state.
    fn update_state(
        &self,
        name: &str,
        edit: &mut dyn FnMut(&mut KeyState) -> Result<()>,
    ) -> Result<KeyState> {
        let mut out = None;
        self.meta.modify(name, &mut |doc| {
            let mut doc = self.managed(name, doc, "changing the state of")?;
            edit(&mut doc.state)?;
            out = Some(doc.state.clone());
            Ok(Some(doc))
        })?;
        out.ok_or_else(|| Error::NotFound { what: format!("key '{name}'") })
    }

    /// Removes a key's metadata if `check` allows it (atomically with the check), then
    /// destroys every version's objects. A key another tool made is checked as a key with
    /// default state, then its objects are destroyed.
    fn purge(&self, name: &str, check: &mut dyn FnMut(&mut KeyState) -> Result<()>) -> Result<()> {
        let mut versions = Vec::new();
        if self.meta.read(name)?.is_some() {
            self.meta.modify(name, &mut |doc| {
                let doc = doc.ok_or_else(|| Error::NotFound { what: format!("key '{name}'") })?;
                let mut state = doc.state.clone();
                check(&mut state)?;
                versions = doc.versions;
                Ok(None)
            })?;
        } else {
            let info = self
                .backend
                .unmanaged(name)?
                .ok_or_else(|| Error::NotFound { what: format!("key '{name}'") })?;
            check(&mut KeyState::default())?;
            versions.push(info);
        }
        // The metadata is gone, so the key is gone for every reader; objects that fail to
        // go are reported (they are unreachable, bound to ids nothing records).
        let failed: Vec<String> = versions
            .iter()
            .filter_map(|v| self.backend.destroy(v).err().map(|e| format!("version {}: {e}", v.version)))
            .collect();
        if failed.is_empty() {
            Ok(())
        } else {
            Err(Error::backend(
                self.backend.kind(),
                "purge",
                format!(
                    "key '{name}' was purged, but some objects could not be destroyed: {}",
                    failed.join("; ")
                ),
            ))
        }
    }

    /// Generates a new key called `name` inside the backend (version 1).
    pub fn create_key(&self, name: &str, spec: KeySpec, attributes: KeyAttributes) -> Result<Key> {
        if let Err(e) = refuse_store_only(name) {
            let r = Err(e);
            self.event(name, Some(1), "create", &r);
            return r;
        }
        self.create_key_unchecked(name, spec, attributes)
    }

    /// [`create_key`](Self::create_key) for any name, the store's own keys included.
    fn create_key_unchecked(&self, name: &str, spec: KeySpec, attributes: KeyAttributes) -> Result<Key> {
        let r = (|| {
            validate_name(name)?;
            // Input first: attributes no backend would take are InvalidInput everywhere.
            let attributes = attributes.resolve(spec.key_type())?;
            self.check_generate(spec)?;
            self.check_free(name)?;
            let req = NewKey {
                name,
                version: 1,
                attributes: &attributes,
                created: self.ctx.now(),
                object_id: new_object_id(self.ctx.crypto)?,
            };
            let key = self.backend.generate(&req, spec)?;
            self.record(key, &|d| free(name, d))
        })();
        self.event(name, Some(1), "create", &r);
        r
    }

    /// Imports key material (see [`KeyMaterial`]) as a new key called `name` (version 1).
    ///
    /// The backup key ([`crate::backup::BACKUP_KEY_NAME`]) may be imported, so that two
    /// stores hold the same one: only as AES-256 allowing exactly `wrapKey` and
    /// `unwrapKey`, not exportable. The secrets KEK is never imported.
    pub fn import_key(&self, name: &str, material: KeyMaterial, attributes: KeyAttributes) -> Result<Key> {
        let r = (|| {
            validate_name(name)?;
            if name == crate::backup::BACKUP_KEY_NAME {
                check_store_key_attributes(
                    name,
                    material.spec()?,
                    &attributes.clone().resolve(material.spec()?.key_type())?,
                )?;
            } else {
                refuse_store_only(name)?;
            }
            let attributes = self.check_import(&material, attributes)?;
            self.check_free(name)?;
            let req = NewKey {
                name,
                version: 1,
                attributes: &attributes,
                created: self.ctx.now(),
                object_id: new_object_id(self.ctx.crypto)?,
            };
            let key = self.backend.import(&req, material)?;
            self.record(key, &|d| free(name, d))
        })();
        self.event(name, Some(1), "import", &r);
        r
    }

    /// Adds a version to an existing key, numbered after the newest one (another process
    /// may take a number first; then the next one is tried).
    fn add_version(
        &self,
        name: &str,
        attributes: impl Fn(&KeyDescription) -> Result<KeyAttributes>,
        make: impl Fn(&NewKey<'_>) -> Result<Box<dyn crate::BackendKey>>,
    ) -> Result<Key> {
        let _writer = self.writers.lock(name);
        for _ in 0..32 {
            let d = self.live(name)?;
            if self.meta.read(name)?.is_none() {
                return Err(Error::unsupported(
                    UnsupportedReason::Operation,
                    format!(
                        "adding a version to key '{name}': it was not made by hsmkit and has no lifecycle metadata"
                    ),
                ));
            }
            let version = d
                .max_version()
                .checked_add(1)
                .ok_or_else(|| Error::invalid(InvalidReason::Parameter, "too many versions"))?;
            let attributes = attributes(&d)?;
            let req = NewKey {
                name,
                version,
                attributes: &attributes,
                created: self.ctx.now(),
                object_id: new_object_id(self.ctx.crypto)?,
            };
            let key = make(&req)?;
            // Another process may have taken the number meanwhile: then try the next.
            let r = self.record(key, &|d| match d {
                None => Err(Error::NotFound { what: format!("key '{name}'") }),
                Some(d) if d.state.deleted.is_some() => {
                    Err(Error::NotFound { what: format!("key '{name}' (it is deleted)") })
                }
                Some(d) if d.version(version).is_some() => {
                    Err(Error::AlreadyExists { name: format!("{name}/{version}") })
                }
                Some(_) => Ok(()),
            });
            match r {
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                r => return r,
            }
        }
        Err(Error::backend(self.backend.kind(), "rotate", "gave up after repeated version number conflicts"))
    }

    /// Makes a new version of `name` with a freshly generated key of the same spec, which
    /// becomes current. It takes the allowed operations, tags and exportability of the
    /// current version; it expires as the rotation policy says (`expires_after`).
    pub fn rotate_key(&self, name: &str) -> Result<Key> {
        self.refuse_certificate_key(name, "rotate")?;
        let r = (|| {
            let d = self.live(name)?;
            let current = d.current().ok_or_else(|| Error::NotFound { what: format!("key '{name}'") })?;
            if !current.has_private {
                return Err(Error::invalid(
                    InvalidReason::KeyMismatch,
                    format!("key '{name}' holds a public key only: import a new version instead of rotating"),
                ));
            }
            let spec = current.spec;
            self.check_generate(spec)?;
            let now = self.ctx.now();
            self.add_version(
                name,
                |d| {
                    let cur = d.current().ok_or_else(|| Error::NotFound { what: format!("key '{name}'") })?;
                    let expires =
                        d.state.rotation.and_then(|p| p.expires_after).and_then(|e| now.checked_add(e));
                    KeyAttributes {
                        ops: cur.attributes.ops,
                        enabled: true,
                        not_before: None,
                        expires,
                        tags: cur.attributes.tags.clone(),
                        exportable: cur.attributes.exportable,
                    }
                    .resolve(spec.key_type())
                },
                |req| self.backend.generate(req, spec),
            )
        })();
        self.event(name, r.as_ref().ok().map(Key::version), "rotate", &r);
        r
    }

    /// Takes back a version this store added moments ago that nothing names yet (a
    /// certificate step that failed after it): its metadata entry goes (the whole key if it
    /// was the only version), then its backend object. No retention and no purge
    /// protection: it was never in use.
    pub(crate) fn discard_key_version(&self, name: &str, version: u32) -> Result<()> {
        let r = (|| {
            let mut removed = None;
            self.meta.modify(name, &mut |d| {
                let mut d = d.ok_or_else(|| Error::NotFound { what: format!("key '{name}'") })?;
                let at =
                    d.versions.iter().position(|v| v.version == version).ok_or_else(|| Error::NotFound {
                        what: format!("version {version} of key '{name}'"),
                    })?;
                removed = Some(d.versions.remove(at));
                Ok(if d.versions.is_empty() { None } else { Some(d) })
            })?;
            match removed {
                Some(info) => self.backend.destroy(&info),
                None => Ok(()),
            }
        })();
        self.event(name, Some(version), "discard", &r);
        r
    }

    /// Generates a new version of `name` with `spec`, which may differ from the current
    /// version's (a certificate renewed under a policy with another key type).
    pub(crate) fn generate_key_version(
        &self,
        name: &str,
        spec: KeySpec,
        attributes: KeyAttributes,
    ) -> Result<Key> {
        let r = (|| {
            refuse_store_only(name)?;
            let attributes = attributes.resolve(spec.key_type())?;
            self.check_generate(spec)?;
            self.add_version(name, |_| Ok(attributes.clone()), |req| self.backend.generate(req, spec))
        })();
        self.event(name, r.as_ref().ok().map(Key::version), "rotate", &r);
        r
    }

    /// Imports key material as a new version of an existing key (which becomes current).
    pub fn import_key_version(
        &self,
        name: &str,
        material: KeyMaterial,
        attributes: KeyAttributes,
    ) -> Result<Key> {
        self.refuse_certificate_key(name, "import-version")?;
        self.import_key_version_of_any(name, material, attributes)
    }

    /// [`import_key_version`](Self::import_key_version) for any key, a certificate's
    /// included (the certificate imports its own key's versions).
    pub(crate) fn import_key_version_of_any(
        &self,
        name: &str,
        material: KeyMaterial,
        attributes: KeyAttributes,
    ) -> Result<Key> {
        let r = (|| {
            // A version whose material the importer knows would make the store's own keys
            // (and what they seal) theirs.
            refuse_store_only(name)?;
            let attributes = self.check_import(&material, attributes)?;
            self.add_version(
                name,
                |_| Ok(attributes.clone()),
                |req| self.backend.import(req, material.clone()),
            )
        })();
        self.event(name, r.as_ref().ok().map(Key::version), "import-version", &r);
        r
    }

    /// Opens the current version of the key called `name`.
    pub fn get_key(&self, name: &str) -> Result<Key> {
        refuse_store_only(name)?;
        self.open_key(name)
    }

    /// [`get_key`](Self::get_key) for any key, the store's own included.
    pub(crate) fn open_key(&self, name: &str) -> Result<Key> {
        let d = self.live(name)?;
        let info = d.current().ok_or_else(|| Error::NotFound { what: format!("key '{name}'") })?;
        self.backend.open(info).map(|k| self.key(k))
    }

    /// Opens one version of the key called `name`.
    pub fn get_key_version(&self, name: &str, version: u32) -> Result<Key> {
        refuse_store_only(name)?;
        self.open_key_version(name, version)
    }

    /// [`get_key_version`](Self::get_key_version) for any key, the store's own included.
    pub(crate) fn open_key_version(&self, name: &str, version: u32) -> Result<Key> {
        let d = self.live(name)?;
        let info = d
            .version(version)
            .ok_or_else(|| Error::NotFound { what: format!("version {version} of key '{name}'") })?;
        self.backend.open(info).map(|k| self.key(k))
    }

    /// A key's state and versions.
    pub fn describe_key(&self, name: &str) -> Result<KeyDescription> {
        self.live(name)
    }

    /// The current version of every key that is not deleted, sorted by name.
    pub fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        let mut v: Vec<KeyInfo> = self
            .meta
            .list()?
            .into_iter()
            .filter(|d| d.state.deleted.is_none())
            .filter_map(|d| d.versions.last().cloned())
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    /// Every version of a key, oldest first.
    pub fn list_versions(&self, name: &str) -> Result<Vec<KeyInfo>> {
        Ok(self.live(name)?.versions)
    }

    /// Changes the attributes of one version. The result is checked like new attributes
    /// (operations the key type can do, key-role separation, not-before before expires);
    /// exportability cannot change.
    pub fn update_key(&self, name: &str, version: u32, update: &KeyUpdate) -> Result<KeyInfo> {
        let r = (|| {
            self.live(name)?;
            let now = self.ctx.now();
            self.update_version(name, version, &mut |info| {
                let mut a = info.attributes.clone();
                if let Some(e) = update.enabled {
                    a.enabled = e;
                }
                if let Some(nb) = update.not_before {
                    a.not_before = nb;
                }
                if let Some(exp) = update.expires {
                    a.expires = exp;
                }
                if let Some(ops) = update.ops {
                    a.ops = Some(ops);
                }
                if let Some(tags) = &update.tags {
                    a.tags = tags.clone();
                }
                let a = a.resolve(info.spec.key_type())?;
                if !info.has_private
                    && let Some(op) = a.allowed().iter().find(|op| op.is_private())
                {
                    return Err(Error::invalid(
                        InvalidReason::KeyMismatch,
                        format!("key '{name}' holds a public key only: it cannot '{op}'"),
                    ));
                }
                info.attributes = a;
                info.updated = now;
                Ok(())
            })
        })();
        self.event(name, Some(version), "update", &r);
        r
    }

    /// Sets (or with `None`, removes) a key's rotation policy.
    pub fn set_rotation_policy(&self, name: &str, policy: Option<RotationPolicy>) -> Result<()> {
        let r = (|| {
            self.live(name)?;
            self.update_state(name, &mut |st| {
                st.rotation = policy;
                Ok(())
            })
        })();
        self.event(name, None, "set-rotation-policy", &r);
        r.map(|_| ())
    }

    /// A key's rotation policy.
    pub fn rotation_policy(&self, name: &str) -> Result<Option<RotationPolicy>> {
        Ok(self.live(name)?.state.rotation)
    }

    /// Keys whose rotation policy says they are due now: (name, current version, why).
    pub fn keys_due_for_rotation(&self) -> Result<Vec<(String, u32, String)>> {
        let now = self.ctx.now();
        let mut due: Vec<_> = self
            .meta
            .list()?
            .into_iter()
            .filter(|d| d.state.deleted.is_none())
            .filter_map(|d| {
                let policy = d.state.rotation?;
                let cur = d.current()?;
                policy.due(cur, now).map(|why| (d.name.clone(), cur.version, why))
            })
            .collect();
        due.sort();
        Ok(due)
    }

    /// Rotates every key whose rotation policy says it is due, and reports each one.
    pub fn rotate_due(&self) -> Result<Vec<Rotation>> {
        Ok(self
            .keys_due_for_rotation()?
            .into_iter()
            .map(|(name, from_version, reason)| {
                let result = self.rotate_key(&name).map(|k| k.version());
                Rotation { name, from_version, reason, result }
            })
            .collect())
    }

    /// [`check_not_certificate_key`](Self::check_not_certificate_key), with a refusal
    /// audited as `op`.
    fn refuse_certificate_key(&self, name: &str, op: &str) -> Result<()> {
        let r = self.check_not_certificate_key(name);
        if r.is_err() {
            self.event(name, None, op, &r);
        }
        r
    }

    /// Refuses to delete, recover, purge, rotate or add a version to a certificate's key on
    /// its own: the certificate would be left with no key, or with a current key version it
    /// does not certify. The certificate does it for both ([`Store::delete_certificate`] and the others).
    fn check_not_certificate_key(&self, name: &str) -> Result<()> {
        if validate_object_name(name, "certificate").is_ok()
            && self.meta.read_record(crate::metadata::RecordKind::Certificate, name)?.is_some()
        {
            return Err(Error::invalid(
                InvalidReason::Parameter,
                format!(
                    "key '{name}' belongs to certificate '{name}': delete, recover or purge the certificate, and its key goes with it"
                ),
            ));
        }
        Ok(())
    }

    /// Refuses to delete the secrets KEK while it seals any secret (deleted ones
    /// included): they would be lost with it, past their own soft delete and purge
    /// protection.
    fn check_kek_unused(&self, name: &str) -> Result<()> {
        if name == crate::secrets::SECRETS_KEK_NAME
            && !self.meta.list_records(crate::metadata::RecordKind::Secret)?.is_empty()
        {
            return Err(Error::PermissionDenied { key: name.to_owned(), reason: Denied::StoreOnly });
        }
        Ok(())
    }

    /// Soft-deletes a key (every version): it is kept, unusable, for the store's
    /// retention period, and can be recovered or purged.
    pub fn delete_key(&self, name: &str) -> Result<KeyDescription> {
        self.refuse_certificate_key(name, "delete")?;
        self.delete_key_of_any(name)
    }

    /// [`delete_key`](Self::delete_key) for any key, a certificate's included (the certificate
    /// calls it for its own key).
    pub(crate) fn delete_key_of_any(&self, name: &str) -> Result<KeyDescription> {
        let r = (|| {
            validate_name(name)?;
            self.check_kek_unused(name)?;
            let retention = self.meta.settings()?.retention;
            let now = self.ctx.now();
            let state = self.update_state(name, &mut |st| {
                if st.deleted.is_some() {
                    return Err(Error::NotFound { what: format!("key '{name}' (already deleted)") });
                }
                let scheduled_purge = now
                    .checked_add(retention)
                    .ok_or_else(|| Error::invalid(InvalidReason::Parameter, "retention"))?;
                st.deleted = Some(Deletion { deleted_on: now, scheduled_purge });
                Ok(())
            })?;
            let mut d = self.live_or_deleted(name)?;
            d.state = state;
            Ok(d)
        })();
        self.event(name, None, "delete", &r);
        r
    }

    /// A deleted key's description (with [`crate::KeyState::deleted`] set).
    pub fn get_deleted_key(&self, name: &str) -> Result<KeyDescription> {
        validate_name(name)?;
        let d = self.meta.read(name)?.ok_or_else(|| deleted_not_found(name))?;
        if d.state.deleted.is_none() {
            return Err(deleted_not_found(name));
        }
        Ok(d)
    }

    /// Every deleted key, sorted by name.
    pub fn list_deleted_keys(&self) -> Result<Vec<KeyDescription>> {
        let mut v: Vec<_> = self.meta.list()?.into_iter().filter(|d| d.state.deleted.is_some()).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    /// Recovers a deleted key; returns its current version.
    pub fn recover_deleted_key(&self, name: &str) -> Result<Key> {
        self.refuse_certificate_key(name, "recover")?;
        self.recover_deleted_key_of_any(name)
    }

    /// [`recover_deleted_key`](Self::recover_deleted_key) for any key, a certificate's included (the certificate
    /// calls it for its own key).
    pub(crate) fn recover_deleted_key_of_any(&self, name: &str) -> Result<Key> {
        let r = (|| {
            validate_name(name)?;
            self.update_state(name, &mut |st| {
                if st.deleted.take().is_none() {
                    return Err(deleted_not_found(name));
                }
                Ok(())
            })?;
            self.get_key(name)
        })();
        self.event(name, None, "recover", &r);
        r
    }

    /// Destroys a deleted key for good. Refused under purge protection until its
    /// retention period has ended.
    pub fn purge_deleted_key(&self, name: &str) -> Result<()> {
        self.refuse_certificate_key(name, "purge")?;
        self.purge_deleted_key_of_any(name)
    }

    /// [`purge_deleted_key`](Self::purge_deleted_key) for any key, a certificate's included (the certificate
    /// calls it for its own key).
    pub(crate) fn purge_deleted_key_of_any(&self, name: &str) -> Result<()> {
        let r = (|| {
            validate_name(name)?;
            let protection = self.meta.settings()?.purge_protection;
            let now = self.ctx.now();
            self.purge(name, &mut |st| {
                let d = st.deleted.ok_or_else(|| deleted_not_found(name))?;
                if protection && now < d.scheduled_purge {
                    return Err(Error::PermissionDenied {
                        key: name.to_owned(),
                        reason: Denied::PurgeProtected,
                    });
                }
                Ok(())
            })
        })();
        self.event(name, None, "purge", &r);
        r
    }

    /// Destroys a key at once, deleted or not (delete and purge in one step). Refused
    /// under purge protection unless the key is deleted and its retention has ended.
    pub fn destroy_key(&self, name: &str) -> Result<()> {
        self.refuse_certificate_key(name, "destroy")?;
        self.destroy_key_of_any(name)
    }

    /// [`destroy_key`](Self::destroy_key) for any key, a certificate's included (the certificate
    /// calls it for its own key).
    pub(crate) fn destroy_key_of_any(&self, name: &str) -> Result<()> {
        let r = (|| {
            validate_name(name)?;
            self.check_kek_unused(name)?;
            let protection = self.meta.settings()?.purge_protection;
            let now = self.ctx.now();
            self.purge(name, &mut |st| {
                let retained = st.deleted.is_none_or(|d| now < d.scheduled_purge);
                if protection && retained {
                    return Err(Error::PermissionDenied {
                        key: name.to_owned(),
                        reason: Denied::PurgeProtected,
                    });
                }
                Ok(())
            })
        })();
        self.event(name, None, "destroy", &r);
        r
    }

    /// The store's soft-delete settings.
    pub fn settings(&self) -> Result<StoreSettings> {
        self.meta.settings()
    }

    /// Sets how long deleted keys are kept (7 to 90 days). Applies to later deletions.
    pub fn set_retention(&self, retention: Duration) -> Result<StoreSettings> {
        let r = (|| {
            if !(MIN_RETENTION..=MAX_RETENTION).contains(&retention) {
                return Err(Error::invalid(InvalidReason::Parameter, "retention must be 7 to 90 days"));
            }
            self.meta.modify_settings(&mut |s| {
                s.retention = retention;
                Ok(())
            })
        })();
        self.event("-", None, "set-retention", &r);
        r
    }

    /// Turns purge protection on. It cannot be turned off again.
    pub fn enable_purge_protection(&self) -> Result<StoreSettings> {
        let r = self.meta.modify_settings(&mut |s| {
            s.purge_protection = true;
            Ok(())
        });
        self.event("-", None, "enable-purge-protection", &r);
        r
    }
}
