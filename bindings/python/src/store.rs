//! `hsmkit.open()` and `hsmkit.Store`: keys and secrets by name, their lifecycle, and
//! envelopes.

use std::collections::BTreeMap;
use std::time::SystemTime;

use hsmkit::envelope::{RewrapMode, Rewrapper, Sealer, Suite};
use hsmkit::{
    Error, KeyAttributes, KeyDescription, KeyMaterial, KeySpec, KeyUpdate, RotationPolicy, SecretUpdate,
    Store as CoreStore, Zeroizing,
};
use hsmkit_open::OpenOptions;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use crate::certs::{
    self, CertificateBundle, CertificateDescription, CertificateDue, CertificatePolicy,
    CertificateProperties, CertificateRenewal, PendingCertificate,
};
use crate::convert::{
    DataArg, bytes_arg, context, from_datetime, from_duration, from_window, json_to_py, ops_arg,
    opt_datetime, path_arg, py_to_json, str_map, to_timedelta, type_name,
};
use crate::errors::{PyError, PyResult, invalid, secret_error};
use crate::key::{Key, KeyProperties, StoreId};
use crate::pki;
use crate::secrets::{Secret, SecretDescription, SecretDue, SecretProperties};

/// Opens a store: `file:///path` (or a plain path) for the encrypted software keystore,
/// created if missing; `pkcs11:token=...?module-path=...` for a PKCS#11 token;
/// `memory:` for a throw-away in-memory store.
#[pyfunction]
#[pyo3(signature = (uri, *, passphrase = None, key_file = None, pin = None, audit_log = None))]
pub(crate) fn open(
    py: Python<'_>,
    uri: &Bound<'_, PyAny>,
    passphrase: Option<&str>,
    key_file: Option<&Bound<'_, PyAny>>,
    pin: Option<&str>,
    audit_log: Option<&Bound<'_, PyAny>>,
) -> PyResult<Store> {
    let uri: String = match uri.cast::<PyString>() {
        Ok(s) => s.to_cow()?.into_owned(),
        Err(_) => path_arg(uri)?.to_string_lossy().into_owned(),
    };
    let mut opts = OpenOptions::new();
    if let Some(p) = passphrase {
        opts = opts.passphrase(p);
    }
    if let Some(f) = key_file {
        opts = opts.key_file(path_arg(f)?);
    }
    if let Some(p) = pin {
        opts = opts.pin(p);
    }
    if let Some(a) = audit_log {
        opts = opts.audit_log(path_arg(a)?);
    }
    // Argon2 for a keystore, C_Login for a token: both slow, neither needs Python.
    let store = py.detach(|| hsmkit_open::open(&uri, &opts))?;
    Ok(Store { store, id: StoreId::fresh() })
}

/// The attributes every create/import takes.
fn attributes(
    ops: Option<Vec<String>>,
    exportable: bool,
    enabled: bool,
    not_before: Option<&Bound<'_, PyAny>>,
    expires: Option<&Bound<'_, PyAny>>,
    tags: Option<BTreeMap<String, String>>,
) -> PyResult<KeyAttributes> {
    Ok(KeyAttributes {
        ops: ops.as_deref().map(ops_arg).transpose()?,
        enabled,
        not_before: not_before.map(|t| from_datetime(t, "not_before")).transpose()?,
        expires: expires.map(|t| from_datetime(t, "expires")).transpose()?,
        tags: str_map(tags),
        exportable,
    })
}

/// Key material from PEM/DER bytes, a PEM or JWK string, or a JWK dict.
///
/// Our copies are wiped. A `str` or a dict also passes through Python objects this binding
/// cannot wipe (under the CPython 3.9 stable ABI a `str` is read through a UTF-8 `bytes`
/// copy; a dict through `json.dumps`): bytes or a bytearray avoid them.
fn material(key: &Bound<'_, PyAny>) -> PyResult<KeyMaterial> {
    if key.is_instance_of::<PyDict>() {
        return Ok(KeyMaterial::from_jwk_str(&py_to_json(key)?)?);
    }
    if let Ok(s) = key.cast::<PyString>() {
        let text = Zeroizing::new(s.to_cow()?.into_owned());
        return Ok(KeyMaterial::from_bytes(text.as_bytes())?);
    }
    match bytes_arg(key, "key") {
        Ok(b) => Ok(KeyMaterial::from_bytes(&b)?),
        Err(_) => Err(invalid(format!(
            "key: expected PEM or DER bytes, a PEM or JWK string, or a JWK dict, not {}",
            type_name(key)
        ))),
    }
}

/// A deleted key, as `delete_key`, `get_deleted_key` and `list_deleted_keys` return it.
#[pyclass(frozen, module = "hsmkit", name = "DeletedKey")]
pub(crate) struct DeletedKey {
    desc: KeyDescription,
}

#[pymethods]
impl DeletedKey {
    /// The key name.
    #[getter]
    fn name(&self) -> &str {
        &self.desc.name
    }
    /// When the key was deleted (UTC).
    #[getter]
    fn deleted_on<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        opt_datetime(py, self.desc.state.deleted.map(|d| d.deleted_on))
    }
    /// When the retention period ends.
    #[getter]
    fn scheduled_purge<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        opt_datetime(py, self.desc.state.deleted.map(|d| d.scheduled_purge))
    }
    /// Every version, oldest first.
    #[getter]
    fn versions(&self) -> Vec<KeyProperties> {
        self.desc.versions.iter().map(|i| KeyProperties { info: i.clone() }).collect()
    }
    fn __repr__(&self) -> String {
        format!("<DeletedKey {}>", self.desc.name)
    }
}

/// One field of an update: `Some(Some(v))` sets it, `Some(None)` (`clear_<what>=True`)
/// clears it, `None` leaves it.
fn field_update<T>(value: Option<T>, clear: bool, what: &str) -> PyResult<Option<Option<T>>> {
    match (value, clear) {
        (Some(_), true) => Err(invalid(format!("give {what} or clear_{what}, not both"))),
        (Some(v), false) => Ok(Some(Some(v))),
        (None, true) => Ok(Some(None)),
        (None, false) => Ok(None),
    }
}

/// A time field of an update (see [`field_update`]).
fn time_update(
    t: Option<&Bound<'_, PyAny>>,
    clear: bool,
    what: &str,
) -> PyResult<Option<Option<SystemTime>>> {
    field_update(t.map(|t| from_datetime(t, what)).transpose()?, clear, what)
}

/// A rotation policy from its three durations; None when every one is None (no policy).
fn rotation_policy(
    rotate_after: Option<&Bound<'_, PyAny>>,
    rotate_before_expiry: Option<&Bound<'_, PyAny>>,
    expires_after: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<RotationPolicy>> {
    let policy = RotationPolicy {
        rotate_after: rotate_after.map(|d| from_duration(d, "rotate_after")).transpose()?,
        rotate_before_expiry: rotate_before_expiry
            .map(|d| from_duration(d, "rotate_before_expiry"))
            .transpose()?,
        expires_after: expires_after.map(|d| from_duration(d, "expires_after")).transpose()?,
    };
    Ok((policy != RotationPolicy::default()).then_some(policy))
}

/// A rotation policy as a dict of `timedelta`s (None where unset).
fn policy_dict<'py>(py: Python<'py>, p: &RotationPolicy) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in [
        ("rotate_after", p.rotate_after),
        ("rotate_before_expiry", p.rotate_before_expiry),
        ("expires_after", p.expires_after),
    ] {
        d.set_item(k, v.map(|v| to_timedelta(py, v)).transpose()?)?;
    }
    Ok(d)
}

/// Names of KEKs: one name or a list.
fn kek_names(kek: &Bound<'_, PyAny>, more: Option<Vec<String>>) -> PyResult<Vec<String>> {
    let mut names: Vec<String> = match kek.cast::<PyString>() {
        Ok(s) => vec![s.to_cow()?.into_owned()],
        Err(_) => kek.extract().map_err(|_| invalid("kek: expected a key name or a list of key names"))?,
    };
    names.extend(more.unwrap_or_default());
    if names.is_empty() {
        return Err(invalid("at least one key-encryption key is needed"));
    }
    Ok(names)
}

/// Keys behind one backend, by name.
#[pyclass(frozen, module = "hsmkit", name = "Store")]
pub(crate) struct Store {
    pub(crate) store: CoreStore,
    /// Shared by the keys this object hands out (`Key.__eq__`).
    id: StoreId,
}

impl Store {
    fn sealer(
        &self,
        kek: &Bound<'_, PyAny>,
        recipients: Option<Vec<String>>,
        aad: Option<BTreeMap<String, String>>,
        chunk_size: Option<u32>,
        suite: Option<u8>,
    ) -> PyResult<Sealer> {
        let names = kek_names(kek, recipients)?;
        let mut sealer = kek.py().detach(|| self.store.sealer(&names))?.with_context(context(aad))?;
        if let Some(n) = chunk_size {
            sealer = sealer.with_chunk_size(n)?;
        }
        if let Some(id) = suite {
            sealer = sealer.with_suite(Suite::try_from(id)?);
        }
        Ok(sealer)
    }
}

#[pymethods]
impl Store {
    /// `"soft"` or `"pkcs11"`.
    #[getter]
    fn backend_kind(&self) -> &'static str {
        self.store.backend_kind()
    }

    /// What does the cryptography: `"aws-lc"` (the wheel's software engine),
    /// `"rustcrypto"`, or `"pkcs11"` (the token).
    #[getter]
    fn engine(&self) -> &'static str {
        self.store.capabilities().engine
    }

    /// What the store can do, as a new dict: `engine` and `metadata` (what holds the key
    /// metadata: `"memory"`, `"keystore"`, `"token"` or `"file"`) as str; `generate`
    /// (key specs such as `"EC-P-256"`), `sign`, `decrypt`, `wrap` and `unwrap`
    /// (algorithm names) and `notes` as lists of str; `import`, `export` and
    /// `oaep_label` as bool. The same document as `hsmkit info --json`, without `backend`
    /// (that is `backend_kind`).
    fn capabilities<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &self.store.capabilities().to_json())
    }

    /// Creates a key: `"rsa"` (size 2048, 3072 or 4096; default 2048), `"ec"` (curve
    /// "P-256", "P-384", "P-521" or "P-256K"; default P-256), `"aes"` (size 128, 192 or
    /// 256; default 256), `"ed25519"` or `"hmac"` (size 256, 384 or 512; default 256).
    #[pyo3(signature = (name, key_type, *, size = None, curve = None, ops = None, exportable = false,
                        enabled = true, not_before = None, expires = None, tags = None))]
    #[allow(clippy::too_many_arguments)]
    fn create_key(
        &self,
        py: Python<'_>,
        name: &str,
        key_type: &str,
        size: Option<u32>,
        curve: Option<&str>,
        ops: Option<Vec<String>>,
        exportable: bool,
        enabled: bool,
        not_before: Option<&Bound<'_, PyAny>>,
        expires: Option<&Bound<'_, PyAny>>,
        tags: Option<BTreeMap<String, String>>,
    ) -> PyResult<Key> {
        let spec = KeySpec::from_options(key_type, size, curve)?;
        let attrs = attributes(ops, exportable, enabled, not_before, expires, tags)?;
        let key = py.detach(|| self.store.create_key(name, spec, attrs))?;
        Ok(Key::new(key, self.id))
    }

    /// Imports a key: PEM or DER bytes (PKCS#8, SPKI, PKCS#1, SEC1), a PEM or JWK string,
    /// or a JWK dict. Public keys import as verify/encrypt/wrap-only keys; AES keys come as
    /// JWK `{"kty": "oct", "k": ...}`.
    #[pyo3(signature = (name, key, *, ops = None, exportable = false, enabled = true,
                        not_before = None, expires = None, tags = None))]
    #[allow(clippy::too_many_arguments)]
    fn import_key(
        &self,
        py: Python<'_>,
        name: &str,
        key: &Bound<'_, PyAny>,
        ops: Option<Vec<String>>,
        exportable: bool,
        enabled: bool,
        not_before: Option<&Bound<'_, PyAny>>,
        expires: Option<&Bound<'_, PyAny>>,
        tags: Option<BTreeMap<String, String>>,
    ) -> PyResult<Key> {
        let m = material(key)?;
        let attrs = attributes(ops, exportable, enabled, not_before, expires, tags)?;
        let key = py.detach(|| self.store.import_key(name, m, attrs))?;
        Ok(Key::new(key, self.id))
    }

    /// A key at `version`, or its current version.
    #[pyo3(signature = (name, version = None))]
    fn get_key(&self, py: Python<'_>, name: &str, version: Option<u32>) -> PyResult<Key> {
        let key = py.detach(|| match version {
            Some(v) => self.store.get_key_version(name, v),
            None => self.store.get_key(name),
        })?;
        Ok(Key::new(key, self.id))
    }

    /// The names of the keys (not deleted ones), sorted.
    fn list_keys(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let infos = py.detach(|| self.store.list_keys())?;
        Ok(infos.into_iter().map(|i| i.name).collect())
    }

    /// Every version of a key, oldest first.
    fn list_versions(&self, py: Python<'_>, name: &str) -> PyResult<Vec<KeyProperties>> {
        let infos = py.detach(|| self.store.list_versions(name))?;
        Ok(infos.into_iter().map(|info| KeyProperties { info }).collect())
    }

    /// Makes a new version of the same type and attributes; it becomes current.
    fn rotate_key(&self, py: Python<'_>, name: &str) -> PyResult<Key> {
        let key = py.detach(|| self.store.rotate_key(name))?;
        Ok(Key::new(key, self.id))
    }

    /// Changes a version's attributes (the current version if `version` is None). Fields
    /// left None stay; `clear_not_before`/`clear_expires` remove those times.
    #[pyo3(signature = (name, version = None, *, enabled = None, not_before = None, expires = None,
                        ops = None, tags = None, clear_not_before = false, clear_expires = false))]
    #[allow(clippy::too_many_arguments)]
    fn update_key(
        &self,
        py: Python<'_>,
        name: &str,
        version: Option<u32>,
        enabled: Option<bool>,
        not_before: Option<&Bound<'_, PyAny>>,
        expires: Option<&Bound<'_, PyAny>>,
        ops: Option<Vec<String>>,
        tags: Option<BTreeMap<String, String>>,
        clear_not_before: bool,
        clear_expires: bool,
    ) -> PyResult<KeyProperties> {
        let update = KeyUpdate {
            enabled,
            not_before: time_update(not_before, clear_not_before, "not_before")?,
            expires: time_update(expires, clear_expires, "expires")?,
            ops: ops.as_deref().map(ops_arg).transpose()?,
            tags,
        };
        let info = py.detach(|| {
            let v = match version {
                Some(v) => v,
                None => self.store.get_key(name)?.version(),
            };
            self.store.update_key(name, v, &update)
        })?;
        Ok(KeyProperties { info })
    }

    /// Soft-deletes a key: it can be recovered until purged.
    fn delete_key(&self, py: Python<'_>, name: &str) -> PyResult<DeletedKey> {
        let desc = py.detach(|| self.store.delete_key(name))?;
        Ok(DeletedKey { desc })
    }

    /// A soft-deleted key.
    fn get_deleted_key(&self, py: Python<'_>, name: &str) -> PyResult<DeletedKey> {
        let desc = py.detach(|| self.store.get_deleted_key(name))?;
        Ok(DeletedKey { desc })
    }

    /// Every soft-deleted key.
    fn list_deleted_keys(&self, py: Python<'_>) -> PyResult<Vec<DeletedKey>> {
        let all = py.detach(|| self.store.list_deleted_keys())?;
        Ok(all.into_iter().map(|desc| DeletedKey { desc }).collect())
    }

    /// Undoes a soft delete; returns the current version.
    fn recover_deleted_key(&self, py: Python<'_>, name: &str) -> PyResult<Key> {
        let key = py.detach(|| self.store.recover_deleted_key(name))?;
        Ok(Key::new(key, self.id))
    }

    /// Destroys a soft-deleted key for good (refused under purge protection before the
    /// retention period ends).
    fn purge_deleted_key(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        Ok(py.detach(|| self.store.purge_deleted_key(name))?)
    }

    /// Sets (or with every argument None, removes) a key's rotation policy. Durations are
    /// `timedelta`s or ISO 8601 strings ("P90D").
    #[pyo3(signature = (name, *, rotate_after = None, rotate_before_expiry = None, expires_after = None))]
    fn set_rotation_policy(
        &self,
        py: Python<'_>,
        name: &str,
        rotate_after: Option<&Bound<'_, PyAny>>,
        rotate_before_expiry: Option<&Bound<'_, PyAny>>,
        expires_after: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let policy = rotation_policy(rotate_after, rotate_before_expiry, expires_after)?;
        Ok(py.detach(|| self.store.set_rotation_policy(name, policy))?)
    }

    /// A key's rotation policy as a dict of `timedelta`s (None where unset), or None.
    fn get_rotation_policy<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Option<Bound<'py, PyDict>>> {
        let p = py.detach(|| self.store.rotation_policy(name))?;
        p.map(|p| policy_dict(py, &p)).transpose()
    }

    /// Rotates every key whose policy says it is due. Returns `(name, new_version)` pairs;
    /// raises the first failure after trying every due key.
    fn rotate_due(&self, py: Python<'_>) -> PyResult<Vec<(String, u32)>> {
        let done = py.detach(|| self.store.rotate_due())?;
        let mut out = Vec::new();
        let mut first_err = None;
        for r in done {
            match r.result {
                Ok(v) => out.push((r.name, v)),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) => Err(e.into()),
            None => Ok(out),
        }
    }

    /// Sets a secret: adds a version holding `value` (bytes-like, at most 25 KiB), which
    /// becomes current. Creates the secret if there is none; raises `SecretAlreadyExists`
    /// while it is soft-deleted (recover or purge it first).
    #[pyo3(signature = (name, value, *, content_type = None, enabled = true, not_before = None,
                        expires = None, tags = None))]
    #[allow(clippy::too_many_arguments)]
    fn set_secret(
        &self,
        py: Python<'_>,
        name: &str,
        value: &Bound<'_, PyAny>,
        content_type: Option<String>,
        enabled: bool,
        not_before: Option<&Bound<'_, PyAny>>,
        expires: Option<&Bound<'_, PyAny>>,
        tags: Option<BTreeMap<String, String>>,
    ) -> PyResult<SecretProperties> {
        let value = DataArg::new(value, "value")?;
        let attrs = crate::secrets::attributes(enabled, not_before, expires, content_type, tags)?;
        let props = py.detach(|| self.store.set_secret(name, &value, attrs)).map_err(secret_error)?;
        Ok(SecretProperties { props })
    }

    /// A secret's value and metadata: `version`, or the current version. Raises
    /// `PermissionDenied` if that version is disabled, not yet valid or expired.
    #[pyo3(signature = (name, version = None))]
    fn get_secret(&self, py: Python<'_>, name: &str, version: Option<u32>) -> PyResult<Secret> {
        let secret = py
            .detach(|| match version {
                Some(v) => self.store.get_secret_version(name, v),
                None => self.store.get_secret(name),
            })
            .map_err(secret_error)?;
        Ok(Secret::from(secret))
    }

    /// A secret's versions (no values), soft-deleted or not.
    fn describe_secret(&self, py: Python<'_>, name: &str) -> PyResult<SecretDescription> {
        let desc = py.detach(|| self.store.describe_secret(name)).map_err(secret_error)?;
        Ok(SecretDescription { desc })
    }

    /// The current version of every secret (not deleted ones), sorted by name; no values.
    fn list_secrets(&self, py: Python<'_>) -> PyResult<Vec<SecretProperties>> {
        let all = py.detach(|| self.store.list_secrets()).map_err(secret_error)?;
        Ok(all.into_iter().map(|props| SecretProperties { props }).collect())
    }

    /// Every version of a secret, oldest first; no values.
    fn list_secret_versions(&self, py: Python<'_>, name: &str) -> PyResult<Vec<SecretProperties>> {
        let all = py.detach(|| self.store.list_secret_versions(name)).map_err(secret_error)?;
        Ok(all.into_iter().map(|props| SecretProperties { props }).collect())
    }

    /// Changes a version's attributes (the current version if `version` is None), not its
    /// value (set a new version for that). Fields left None stay; `clear_not_before`,
    /// `clear_expires` and `clear_content_type` remove those; `tags` replaces the tags.
    #[pyo3(signature = (name, version = None, *, enabled = None, not_before = None, expires = None,
                        content_type = None, tags = None, clear_not_before = false,
                        clear_expires = false, clear_content_type = false))]
    #[allow(clippy::too_many_arguments)]
    fn update_secret(
        &self,
        py: Python<'_>,
        name: &str,
        version: Option<u32>,
        enabled: Option<bool>,
        not_before: Option<&Bound<'_, PyAny>>,
        expires: Option<&Bound<'_, PyAny>>,
        content_type: Option<String>,
        tags: Option<BTreeMap<String, String>>,
        clear_not_before: bool,
        clear_expires: bool,
        clear_content_type: bool,
    ) -> PyResult<SecretProperties> {
        let update = SecretUpdate {
            enabled,
            not_before: time_update(not_before, clear_not_before, "not_before")?,
            expires: time_update(expires, clear_expires, "expires")?,
            content_type: field_update(content_type, clear_content_type, "content_type")?,
            tags,
        };
        let props = py
            .detach(|| {
                let v = match version {
                    Some(v) => v,
                    // The current version's number, read without its value (a disabled
                    // version can be updated, not read).
                    None => self
                        .store
                        .list_secret_versions(name)?
                        .last()
                        .map(|p| p.version)
                        .ok_or_else(|| Error::NotFound { what: format!("secret '{name}'") })?,
                };
                self.store.update_secret(name, v, &update)
            })
            .map_err(secret_error)?;
        Ok(SecretProperties { props })
    }

    /// Soft-deletes a secret (every version): it can be recovered until purged.
    fn delete_secret(&self, py: Python<'_>, name: &str) -> PyResult<SecretDescription> {
        let desc = py.detach(|| self.store.delete_secret(name)).map_err(secret_error)?;
        Ok(SecretDescription { desc })
    }

    /// A soft-deleted secret.
    fn get_deleted_secret(&self, py: Python<'_>, name: &str) -> PyResult<SecretDescription> {
        let desc = py.detach(|| self.store.get_deleted_secret(name)).map_err(secret_error)?;
        Ok(SecretDescription { desc })
    }

    /// Every soft-deleted secret, sorted by name.
    fn list_deleted_secrets(&self, py: Python<'_>) -> PyResult<Vec<SecretDescription>> {
        let all = py.detach(|| self.store.list_deleted_secrets()).map_err(secret_error)?;
        Ok(all.into_iter().map(|desc| SecretDescription { desc }).collect())
    }

    /// Undoes a soft delete; returns the current version's metadata.
    fn recover_deleted_secret(&self, py: Python<'_>, name: &str) -> PyResult<SecretProperties> {
        let props = py.detach(|| self.store.recover_deleted_secret(name)).map_err(secret_error)?;
        Ok(SecretProperties { props })
    }

    /// Removes a soft-deleted secret for good (refused under purge protection before the
    /// retention period ends).
    fn purge_deleted_secret(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        py.detach(|| self.store.purge_deleted_secret(name)).map_err(secret_error)
    }

    /// Sets (or with every argument None, removes) a secret's rotation policy, as
    /// `set_rotation_policy` for keys: `expires_after` gives versions set without an
    /// expiry one; `rotate_after` and `rotate_before_expiry` say when `secrets_due`
    /// reports the current version.
    #[pyo3(signature = (name, *, rotate_after = None, rotate_before_expiry = None, expires_after = None))]
    fn set_secret_rotation_policy(
        &self,
        py: Python<'_>,
        name: &str,
        rotate_after: Option<&Bound<'_, PyAny>>,
        rotate_before_expiry: Option<&Bound<'_, PyAny>>,
        expires_after: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let policy = rotation_policy(rotate_after, rotate_before_expiry, expires_after)?;
        py.detach(|| self.store.set_secret_rotation_policy(name, policy)).map_err(secret_error)
    }

    /// A secret's rotation policy as a dict of `timedelta`s (None where unset), or None.
    fn get_secret_rotation_policy<'py>(
        &self,
        py: Python<'py>,
        name: &str,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let p = py.detach(|| self.store.secret_rotation_policy(name)).map_err(secret_error)?;
        p.map(|p| policy_dict(py, &p)).transpose()
    }

    /// Secret versions due for rotation, sorted by name and version: every enabled
    /// version that expires within `within` (a `timedelta` or an ISO 8601 duration;
    /// zero: has expired), and every current version its rotation policy says is due.
    fn secrets_due(&self, py: Python<'_>, within: &Bound<'_, PyAny>) -> PyResult<Vec<SecretDue>> {
        let within = from_window(within, "within")?;
        let all = py.detach(|| self.store.secrets_due(within)).map_err(secret_error)?;
        Ok(all.into_iter().map(|due| SecretDue { due }).collect())
    }

    /// A backup of a secret: every version (values included), its attributes and rotation
    /// policy, as one opaque, authenticated blob sealed under the store's backup key
    /// (`"hsmkit-backup"`, made on first use). Only a store holding that backup key can
    /// restore it. Raises `SecretNotFound` for a missing or soft-deleted secret.
    fn backup_secret<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyBytes>> {
        let blob = py.detach(|| self.store.backup_secret(name)).map_err(secret_error)?;
        Ok(PyBytes::new(py, &blob))
    }

    /// Restores a secret from `backup_secret`'s blob, under the name it was backed up
    /// from, every version and attribute as they were (disabled versions stay disabled).
    /// Raises `SecretAlreadyExists` if a secret (live or soft-deleted) holds that name,
    /// `DecryptionFailed` if the blob was altered or made under another store's backup key.
    fn restore_secret(&self, py: Python<'_>, backup: &Bound<'_, PyAny>) -> PyResult<SecretDescription> {
        let backup = DataArg::new(backup, "backup")?;
        let desc = py.detach(|| self.store.restore_secret(&backup)).map_err(secret_error)?;
        Ok(SecretDescription { desc })
    }

    /// A backup of a key: every version's attributes and material, and its rotation
    /// policy, sealed under the store's backup key as `backup_secret`'s are. Non-exportable
    /// keys are backed up too (the blob opens only in a store holding the backup key).
    /// Raises `Unsupported` (reason `"operation"`) on a PKCS#11 token, whose keys never
    /// leave it.
    fn backup_key<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyBytes>> {
        let blob = py.detach(|| self.store.backup_key(name))?;
        Ok(PyBytes::new(py, &blob))
    }

    /// Restores a key from `backup_key`'s blob, under the name it was backed up from, with
    /// every version, attribute and its rotation policy; returns its current version, as
    /// `recover_deleted_key` does. Raises `KeyAlreadyExists` if a key (live or
    /// soft-deleted) holds that name, `DecryptionFailed` if the blob was altered or made
    /// under another store's backup key. All or nothing.
    fn restore_key(&self, py: Python<'_>, backup: &Bound<'_, PyAny>) -> PyResult<Key> {
        let backup = DataArg::new(backup, "backup")?;
        let key = py.detach(|| {
            let desc = self.store.restore_key(&backup)?;
            self.store.get_key(&desc.name)
        })?;
        Ok(Key::new(key, self.id))
    }

    /// Store-wide soft-delete settings: `{"retention": timedelta, "purge_protection": bool}`.
    fn settings<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = py.detach(|| self.store.settings())?;
        let d = PyDict::new(py);
        d.set_item("retention", to_timedelta(py, s.retention)?)?;
        d.set_item("purge_protection", s.purge_protection)?;
        Ok(d)
    }

    /// How long deleted keys are kept (7 to 90 days).
    fn set_retention(&self, py: Python<'_>, retention: &Bound<'_, PyAny>) -> PyResult<()> {
        let r = from_duration(retention, "retention")?;
        py.detach(|| self.store.set_retention(r))?;
        Ok(())
    }

    /// Turns purge protection on, for good.
    fn enable_purge_protection(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.store.enable_purge_protection())?;
        Ok(())
    }

    /// Seals `data` in an envelope (docs/envelope-format.md) for the KEK `kek` (a name, or
    /// a list of names) and any `recipients`; `aad` is an encryption context that
    /// `unseal` must be given again. `suite` 1 writes the format's first suite, for readers
    /// older than suite 2 (the default).
    #[pyo3(signature = (kek, data, *, aad = None, recipients = None, chunk_size = None, suite = None))]
    #[allow(clippy::too_many_arguments)]
    fn seal<'py>(
        &self,
        py: Python<'py>,
        kek: &Bound<'py, PyAny>,
        data: &Bound<'py, PyAny>,
        aad: Option<BTreeMap<String, String>>,
        recipients: Option<Vec<String>>,
        chunk_size: Option<u32>,
        suite: Option<u8>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let data = DataArg::new(data, "data")?;
        let sealer = self.sealer(kek, recipients, aad, chunk_size, suite)?;
        // Sealed straight into the `bytes` object with the GIL released: no Rust-side
        // copy of the envelope to make under the GIL.
        let len = py.detach(|| sealer.sealed_len(data.len()))?;
        let mut written = 0usize;
        let out = PyBytes::new_with(py, len, |buf| {
            written =
                py.detach(|| sealer.seal_into(&data, buf)).map_err(|e| PyErr::from(PyError::from(e)))?;
            Ok(())
        })?;
        if written == len {
            return Ok(out);
        }
        // A wrapped key shorter than its bound (not for AES or RSA KEKs): the envelope is
        // a prefix.
        Ok(PyBytes::new(py, out.as_bytes().get(..written).unwrap_or_default()))
    }

    /// Opens an envelope with whichever of its KEKs this store holds.
    #[pyo3(signature = (blob, *, aad = None))]
    fn unseal<'py>(
        &self,
        py: Python<'py>,
        blob: &Bound<'py, PyAny>,
        aad: Option<BTreeMap<String, String>>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let blob = DataArg::new(blob, "blob")?;
        let opener = self.store.opener().with_context(context(aad));
        // The header is unlocked and checked first, so that a forged or foreign envelope
        // costs no allocation; then it is opened straight into the `bytes` object with the
        // GIL released (on failure `open_into` zeroes it before it is freed).
        let prepared = py.detach(|| opener.prepare(&blob))?;
        Ok(PyBytes::new_with(py, prepared.plaintext_len(), |buf| {
            py.detach(|| prepared.open_into(buf)).map_err(|e| PyErr::from(PyError::from(e)))?;
            Ok(())
        })?)
    }

    /// Seals the file `src` into `dst`, streaming in constant memory; `dst` appears only
    /// when complete. Returns the plaintext length.
    #[pyo3(signature = (src, dst, kek, *, aad = None, recipients = None, chunk_size = None, suite = None))]
    #[allow(clippy::too_many_arguments)]
    fn seal_file(
        &self,
        py: Python<'_>,
        src: &Bound<'_, PyAny>,
        dst: &Bound<'_, PyAny>,
        kek: &Bound<'_, PyAny>,
        aad: Option<BTreeMap<String, String>>,
        recipients: Option<Vec<String>>,
        chunk_size: Option<u32>,
        suite: Option<u8>,
    ) -> PyResult<u64> {
        let (src, dst) = (path_arg(src)?, path_arg(dst)?);
        let sealer = self.sealer(kek, recipients, aad, chunk_size, suite)?;
        Ok(py.detach(|| sealer.seal_file(&src, &dst))?)
    }

    /// Opens the envelope file `src` into `dst`, streaming; `dst` appears only when every
    /// chunk verified. Returns the plaintext length.
    #[pyo3(signature = (src, dst, *, aad = None))]
    fn unseal_file(
        &self,
        py: Python<'_>,
        src: &Bound<'_, PyAny>,
        dst: &Bound<'_, PyAny>,
        aad: Option<BTreeMap<String, String>>,
    ) -> PyResult<u64> {
        let (src, dst) = (path_arg(src)?, path_arg(dst)?);
        let ctx = context(aad);
        Ok(py.detach(|| self.store.opener().with_context(ctx).open_file(&src, &dst))?)
    }

    /// Re-wraps an envelope's data key for the KEKs `to` without touching the body:
    /// replacing the recipients (default) or adding to them (`add=True`). `aad` is the
    /// envelope's encryption context, exactly as `unseal` needs it: without it (or with
    /// another) the rewrap fails with `DecryptionFailed`, as `unseal` does.
    #[pyo3(signature = (blob, to, *, aad = None, add = false))]
    fn rewrap<'py>(
        &self,
        py: Python<'py>,
        blob: &Bound<'py, PyAny>,
        to: &Bound<'py, PyAny>,
        aad: Option<BTreeMap<String, String>>,
        add: bool,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let blob = bytes_arg(blob, "blob")?;
        let names = kek_names(to, None)?;
        let ctx = context(aad);
        let store = &self.store;
        let out = py.detach(|| {
            let recipients = store.recipients(&names)?;
            let mode = if add { RewrapMode::Add } else { RewrapMode::Replace };
            Rewrapper::new(store, recipients, mode)?.with_context(ctx).rewrap(&blob)
        })?;
        Ok(PyBytes::new(py, &out))
    }

    /// Verifies a JWT with the key version its `kid` (`name/version`) names, then its
    /// claims: `exp` (required unless `require_exp=False`), `nbf`, `iat`, with `leeway`
    /// seconds of clock skew; `issuer`; `audience` (a str or a list: the token's `aud`
    /// must name one; a token with an `aud` needs one). Returns the claims. A bad
    /// signature raises `InvalidSignature`; refused claims or a malformed token
    /// `InvalidInput`.
    #[pyo3(signature = (token, *, audience = None, issuer = None, leeway = 60.0, algorithms = None,
                        require_exp = true))]
    #[allow(clippy::too_many_arguments)]
    fn jwt_verify<'py>(
        &self,
        py: Python<'py>,
        token: &str,
        audience: Option<&Bound<'py, PyAny>>,
        issuer: Option<String>,
        leeway: f64,
        algorithms: Option<Vec<String>>,
        require_exp: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let v = pki::jwt_validation(audience, issuer, leeway, algorithms, require_exp)?;
        let claims = py.detach(|| hsmkit::jose::jwt_verify(&self.store, token, &v))?;
        json_to_py(py, &serde_json::Value::Object(claims))
    }

    /// Verifies a compact JWS with the key version its `kid` names. Returns
    /// `(payload, header, key_name, key_version)`.
    #[pyo3(signature = (token, *, algorithms = None))]
    fn jws_verify<'py>(
        &self,
        py: Python<'py>,
        token: &str,
        algorithms: Option<Vec<String>>,
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyAny>, String, u32)> {
        let o = pki::jws_options(algorithms)?;
        let v = py.detach(|| hsmkit::jose::jws_verify(&self.store, token, &o))?;
        let header = json_to_py(py, &serde_json::Value::Object(v.header))?;
        Ok((PyBytes::new(py, &v.payload), header, v.key_name, v.key_version))
    }

    /// A JWK Set `{"keys": [...]}` of the named keys' versions a verifier should accept
    /// now (enabled, allowing verify, within their validity), each with `kid`
    /// `name/version` and `use` `sig`.
    fn jwks<'py>(&self, py: Python<'py>, names: Vec<String>) -> PyResult<Bound<'py, PyAny>> {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let doc = py.detach(|| hsmkit::jose::jwks(&self.store, &names))?;
        json_to_py(py, &doc)
    }

    /// Creates a certificate `name` under `policy`, with a new key of the same name:
    /// self-signed (issuer `"Self"`), version 1 at once, returned as
    /// `CertificateProperties`; issuer `"Unknown"`, a `PendingCertificate` whose request a
    /// CA signs for `merge_certificate`. On an existing certificate, its next version under
    /// `policy`, which becomes its policy.
    fn create_certificate<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        policy: &CertificatePolicy,
    ) -> PyResult<Bound<'py, PyAny>> {
        let op = py.detach(|| self.store.create_certificate(name, &policy.policy))?;
        certs::operation(py, op)
    }

    /// Renews a certificate under its policy: a new version (`CertificateProperties`) or,
    /// for issuer `"Unknown"`, a `PendingCertificate`; a new key version unless the
    /// policy says `reuse_key`.
    fn renew_certificate<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        let op = py.detach(|| self.store.renew_certificate(name))?;
        certs::operation(py, op)
    }

    /// A certificate at `version`, or its current version, with its chain.
    #[pyo3(signature = (name, version = None))]
    fn get_certificate(
        &self,
        py: Python<'_>,
        name: &str,
        version: Option<u32>,
    ) -> PyResult<CertificateBundle> {
        let bundle = py.detach(|| match version {
            Some(v) => self.store.get_certificate_version(name, v),
            None => self.store.get_certificate(name),
        })?;
        Ok(CertificateBundle { bundle })
    }

    /// The request of a certificate waiting for its CA.
    fn get_pending_certificate(&self, py: Python<'_>, name: &str) -> PyResult<PendingCertificate> {
        let pending = py.detach(|| self.store.pending_certificate(name))?;
        Ok(PendingCertificate { pending })
    }

    /// Cancels a pending request. A certificate that never had a version goes with its
    /// key, as if never created.
    fn cancel_pending_certificate(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        Ok(py.detach(|| self.store.cancel_pending_certificate(name))?)
    }

    /// Completes a pending request with the certificate the CA signed: PEM (`str` or
    /// bytes; the leaf first, then any issuers in any order), DER of the leaf,
    /// or a list of those. A leaf for another key raises `InvalidInput` with reason
    /// `"key-mismatch"` and leaves the request pending.
    fn merge_certificate(
        &self,
        py: Python<'_>,
        name: &str,
        chain: &Bound<'_, PyAny>,
    ) -> PyResult<CertificateProperties> {
        let chain = certs::chain_arg(chain)?;
        let props = py.detach(|| self.store.merge_certificate(name, &chain))?;
        Ok(CertificateProperties { props })
    }

    /// Imports a certificate with its private key as `name` (or its next version): a
    /// PKCS#12 file when `password` is given or `data` is not PEM (a wrong password
    /// raises `AuthenticationError`), else PEM holding the certificates and the key in any
    /// order. The key goes into the backend, exportable only if `exportable`.
    #[pyo3(signature = (name, data, *, password = None, exportable = false))]
    fn import_certificate(
        &self,
        py: Python<'_>,
        name: &str,
        data: &Bound<'_, PyAny>,
        password: Option<&Bound<'_, PyAny>>,
        exportable: bool,
    ) -> PyResult<CertificateProperties> {
        let import = certs::import_arg(data, password)?;
        let props = py.detach(|| match &import {
            certs::Import::Pkcs12 { pfx, password } => {
                self.store.import_pkcs12(name, pfx, password, exportable)
            }
            certs::Import::Pem(pem) => self.store.import_certificate_pem(name, pem, exportable),
        })?;
        Ok(CertificateProperties { props })
    }

    /// The private key of a certificate version (the current one if `version` is None) as
    /// PKCS#8 PEM bytes, if its policy made it exportable (`PermissionDenied` otherwise).
    /// Python cannot wipe the `bytes`: drop it as soon as it has been used.
    #[pyo3(signature = (name, version = None))]
    fn export_certificate_key<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        version: Option<u32>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let pem = py.detach(|| self.store.export_certificate_key(name, version))?;
        Ok(PyBytes::new(py, pem.as_bytes()))
    }

    /// A certificate's policy, versions and pending request (deleted or not).
    fn describe_certificate(&self, py: Python<'_>, name: &str) -> PyResult<CertificateDescription> {
        let desc = py.detach(|| self.store.describe_certificate(name))?;
        Ok(CertificateDescription { desc })
    }

    /// The policy a certificate's next version is made under.
    fn get_certificate_policy(&self, py: Python<'_>, name: &str) -> PyResult<CertificatePolicy> {
        let policy = py.detach(|| self.store.certificate_policy(name))?;
        Ok(CertificatePolicy { policy })
    }

    /// Replaces a certificate's policy (for its next version).
    fn update_certificate_policy(
        &self,
        py: Python<'_>,
        name: &str,
        policy: &CertificatePolicy,
    ) -> PyResult<()> {
        Ok(py.detach(|| self.store.set_certificate_policy(name, &policy.policy))?)
    }

    /// Every certificate that is not deleted, sorted by name.
    fn list_certificates(&self, py: Python<'_>) -> PyResult<Vec<CertificateDescription>> {
        let all = py.detach(|| self.store.list_certificates())?;
        Ok(all.into_iter().map(|desc| CertificateDescription { desc }).collect())
    }

    /// Every version of a certificate, oldest first.
    fn list_certificate_versions(&self, py: Python<'_>, name: &str) -> PyResult<Vec<CertificateProperties>> {
        let all = py.detach(|| self.store.list_certificate_versions(name))?;
        Ok(all.into_iter().map(|props| CertificateProperties { props }).collect())
    }

    /// The certificates due for renewal now, sorted by name: those whose policy's
    /// trigger has passed, and those that have expired.
    fn certificates_due(&self, py: Python<'_>) -> PyResult<Vec<CertificateDue>> {
        let all = py.detach(|| self.store.certificates_due())?;
        Ok(all.into_iter().map(|due| CertificateDue { due }).collect())
    }

    /// Renews every due self-signed certificate and reports the others, one
    /// `CertificateRenewal` each: a failed renewal is reported (its `error`), not raised.
    fn renew_due_certificates(&self, py: Python<'_>) -> PyResult<Vec<CertificateRenewal>> {
        let all = py.detach(|| self.store.renew_due_certificates())?;
        all.into_iter().map(|r| CertificateRenewal::new(py, r)).collect()
    }

    /// Soft-deletes a certificate and its key: both can be recovered until purged.
    fn delete_certificate(&self, py: Python<'_>, name: &str) -> PyResult<CertificateDescription> {
        let desc = py.detach(|| self.store.delete_certificate(name))?;
        Ok(CertificateDescription { desc })
    }

    /// A soft-deleted certificate.
    fn get_deleted_certificate(&self, py: Python<'_>, name: &str) -> PyResult<CertificateDescription> {
        let desc = py.detach(|| self.store.get_deleted_certificate(name))?;
        Ok(CertificateDescription { desc })
    }

    /// Every soft-deleted certificate, sorted by name.
    fn list_deleted_certificates(&self, py: Python<'_>) -> PyResult<Vec<CertificateDescription>> {
        let all = py.detach(|| self.store.list_deleted_certificates())?;
        Ok(all.into_iter().map(|desc| CertificateDescription { desc }).collect())
    }

    /// Undoes a soft delete of a certificate and its key.
    fn recover_deleted_certificate(&self, py: Python<'_>, name: &str) -> PyResult<CertificateDescription> {
        let desc = py.detach(|| self.store.recover_deleted_certificate(name))?;
        Ok(CertificateDescription { desc })
    }

    /// Removes a soft-deleted certificate and its key for good (refused under purge
    /// protection before the retention period ends).
    fn purge_deleted_certificate(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        Ok(py.detach(|| self.store.purge_deleted_certificate(name))?)
    }

    fn __repr__(&self) -> String {
        format!("<Store {}>", self.store.backend_kind())
    }
}
