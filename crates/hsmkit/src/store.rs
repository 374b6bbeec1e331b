//! [`Store`]: the front door. Keys by name over any [`Backend`].

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::attributes::KeyAttributes;
use crate::audit::{AuditLog, Ctx};
use crate::backend::{Backend, Capabilities, KeyInfo, NewKey};
use crate::error::{Denied, Error, ErrorKind, Result};
use crate::key::Key;
use crate::lifecycle::{Deletion, KeyDescription, KeyUpdate, RotationPolicy, StoreSettings};
use crate::material::KeyMaterial;
use crate::spec::KeySpec;

/// Longest key name accepted.
pub const MAX_NAME_LEN: usize = 127;

/// Checks a key name: 1 to 127 characters of `A-Z a-z 0-9 - _ .`, not starting with `.`
/// (as key vaults do, so names are safe as file names, PKCS#11 labels and URL segments).
pub fn validate_name(name: &str) -> Result<()> {
    let ok_chars = name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if name.is_empty() || name.len() > MAX_NAME_LEN || !ok_chars || name.starts_with('.') {
        return Err(Error::invalid(format!(
            "key name '{}' must be 1-{MAX_NAME_LEN} characters of A-Z a-z 0-9 - _ . and not start with '.'",
            name.escape_debug()
        )));
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
    backend: Arc<dyn Backend>,
    ctx: Ctx,
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

fn deleted_not_found(name: &str) -> Error {
    Error::NotFound { what: format!("deleted key '{name}'") }
}

impl Store {
    /// A store over `backend`.
    pub fn new(backend: impl Backend + 'static) -> Self {
        Store { backend: Arc::new(backend), ctx: Ctx::default() }
    }

    /// A store over a shared backend.
    pub fn from_arc(backend: Arc<dyn Backend>) -> Self {
        Store { backend, ctx: Ctx::default() }
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

    /// The backend's kind (`soft`, `pkcs11`).
    pub fn backend_kind(&self) -> &'static str {
        self.backend.kind()
    }

    /// What the backend can do.
    pub fn capabilities(&self) -> Capabilities {
        self.backend.capabilities()
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
        let d = self.backend.describe(name)?;
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
            return Err(Error::unsupported(format!(
                "{} backend cannot generate {spec} keys",
                self.backend.kind()
            )));
        }
        Ok(())
    }

    /// Checks material for import and resolves its attributes.
    fn check_import(&self, material: &KeyMaterial, attributes: KeyAttributes) -> Result<KeyAttributes> {
        let spec = material.spec()?;
        if let KeySpec::Rsa { bits } = spec
            && !(crate::spec::RSA_MIN_BITS..=crate::spec::RSA_MAX_BITS).contains(&bits)
        {
            return Err(Error::invalid(format!("RSA keys of {bits} bits are not accepted (2048-8192)")));
        }
        if !self.backend.capabilities().import {
            return Err(Error::unsupported(format!("{} backend cannot import keys", self.backend.kind())));
        }
        let mut attributes = attributes.resolve(spec.key_type())?;
        if material.is_public_only() {
            // A public key can only do public operations; say so in its attributes.
            let public_ops = attributes.allowed().iter().filter(|op| !op.is_private()).collect();
            attributes.ops = Some(public_ops);
        }
        Ok(attributes)
    }

    /// Generates a new key called `name` inside the backend (version 1).
    pub fn create_key(&self, name: &str, spec: KeySpec, attributes: KeyAttributes) -> Result<Key> {
        let r = (|| {
            validate_name(name)?;
            self.check_generate(spec)?;
            let attributes = attributes.resolve(spec.key_type())?;
            let req = NewKey { name, version: 1, attributes: &attributes, created: self.ctx.now() };
            self.backend.generate(&req, spec).map(|k| self.key(k))
        })();
        self.event(name, Some(1), "create", &r);
        r
    }

    /// Imports key material (see [`KeyMaterial`]) as a new key called `name` (version 1).
    pub fn import_key(&self, name: &str, material: KeyMaterial, attributes: KeyAttributes) -> Result<Key> {
        let r = (|| {
            validate_name(name)?;
            let attributes = self.check_import(&material, attributes)?;
            let req = NewKey { name, version: 1, attributes: &attributes, created: self.ctx.now() };
            self.backend.import(&req, material).map(|k| self.key(k))
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
        for _ in 0..32 {
            let d = self.live(name)?;
            let version = self.backend.next_version(&d)?;
            let attributes = attributes(&d)?;
            let req = NewKey { name, version, attributes: &attributes, created: self.ctx.now() };
            match make(&req) {
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                r => return r.map(|k| self.key(k)),
            }
        }
        Err(Error::backend(self.backend.kind(), "rotate", "gave up after repeated version number conflicts"))
    }

    /// Makes a new version of `name` with a freshly generated key of the same spec, which
    /// becomes current. It takes the allowed operations, tags and exportability of the
    /// current version; it expires as the rotation policy says (`expires_after`).
    pub fn rotate_key(&self, name: &str) -> Result<Key> {
        let r = (|| {
            let d = self.live(name)?;
            let current = d.current().ok_or_else(|| Error::NotFound { what: format!("key '{name}'") })?;
            if !current.has_private {
                return Err(Error::invalid(format!(
                    "key '{name}' holds a public key only: import a new version instead of rotating"
                )));
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

    /// Imports key material as a new version of an existing key (which becomes current).
    pub fn import_key_version(
        &self,
        name: &str,
        material: KeyMaterial,
        attributes: KeyAttributes,
    ) -> Result<Key> {
        let r = (|| {
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
        let d = self.live(name)?;
        let v = d.current().ok_or_else(|| Error::NotFound { what: format!("key '{name}'") })?.version;
        self.backend.open(name, v).map(|k| self.key(k))
    }

    /// Opens one version of the key called `name`.
    pub fn get_key_version(&self, name: &str, version: u32) -> Result<Key> {
        let d = self.live(name)?;
        if d.version(version).is_none() {
            return Err(Error::NotFound { what: format!("version {version} of key '{name}'") });
        }
        self.backend.open(name, version).map(|k| self.key(k))
    }

    /// A key's state and versions.
    pub fn describe_key(&self, name: &str) -> Result<KeyDescription> {
        self.live(name)
    }

    /// The current version of every key that is not deleted, sorted by name.
    pub fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        let mut v: Vec<KeyInfo> = self
            .backend
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
            self.backend.update_version(name, version, &mut |info| {
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
                    return Err(Error::invalid(format!(
                        "key '{name}' holds a public key only: it cannot '{op}'"
                    )));
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
            self.backend.update_state(name, &mut |st| {
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
            .backend
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

    /// Soft-deletes a key (every version): it is kept, unusable, for the store's
    /// retention period, and can be recovered or purged.
    pub fn delete_key(&self, name: &str) -> Result<KeyDescription> {
        let r = (|| {
            validate_name(name)?;
            let retention = self.backend.settings()?.retention;
            let now = self.ctx.now();
            let state = self.backend.update_state(name, &mut |st| {
                if st.deleted.is_some() {
                    return Err(Error::NotFound { what: format!("key '{name}' (already deleted)") });
                }
                let scheduled_purge =
                    now.checked_add(retention).ok_or_else(|| Error::invalid("retention"))?;
                st.deleted = Some(Deletion { deleted_on: now, scheduled_purge });
                Ok(())
            })?;
            let mut d = self.backend.describe(name)?;
            d.state = state;
            Ok(d)
        })();
        self.event(name, None, "delete", &r);
        r
    }

    /// A deleted key's description (with [`crate::KeyState::deleted`] set).
    pub fn get_deleted_key(&self, name: &str) -> Result<KeyDescription> {
        validate_name(name)?;
        let d = self.backend.describe(name).map_err(|e| match e.kind() {
            ErrorKind::NotFound => deleted_not_found(name),
            _ => e,
        })?;
        if d.state.deleted.is_none() {
            return Err(deleted_not_found(name));
        }
        Ok(d)
    }

    /// Every deleted key, sorted by name.
    pub fn list_deleted_keys(&self) -> Result<Vec<KeyDescription>> {
        let mut v: Vec<_> = self.backend.list()?.into_iter().filter(|d| d.state.deleted.is_some()).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    /// Recovers a deleted key; returns its current version.
    pub fn recover_deleted_key(&self, name: &str) -> Result<Key> {
        let r = (|| {
            validate_name(name)?;
            self.backend.update_state(name, &mut |st| {
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
        let r = (|| {
            validate_name(name)?;
            let protection = self.backend.settings()?.purge_protection;
            let now = self.ctx.now();
            self.backend.purge(name, &mut |st| {
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
        let r = (|| {
            validate_name(name)?;
            let protection = self.backend.settings()?.purge_protection;
            let now = self.ctx.now();
            self.backend.purge(name, &mut |st| {
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
        self.backend.settings()
    }

    /// Sets how long deleted keys are kept (7 to 90 days). Applies to later deletions.
    pub fn set_retention(&self, retention: Duration) -> Result<StoreSettings> {
        let r = (|| {
            if !(MIN_RETENTION..=MAX_RETENTION).contains(&retention) {
                return Err(Error::invalid("retention must be 7 to 90 days"));
            }
            self.backend.update_settings(&mut |s| {
                s.retention = retention;
                Ok(())
            })
        })();
        self.event("-", None, "set-retention", &r);
        r
    }

    /// Turns purge protection on. It cannot be turned off again.
    pub fn enable_purge_protection(&self) -> Result<StoreSettings> {
        let r = self.backend.update_settings(&mut |s| {
            s.purge_protection = true;
            Ok(())
        });
        self.event("-", None, "enable-purge-protection", &r);
        r
    }
}
