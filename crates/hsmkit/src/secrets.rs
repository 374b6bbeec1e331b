//! Secrets: named, versioned values, as a key vault keeps them.
//!
//! A secret has versions; setting it adds a version that becomes current. Each version's
//! value is sealed (the [`crate::envelope`] format) under the store's secrets KEK,
//! [`SECRETS_KEK_NAME`], a key that never leaves the backend, with an encryption context
//! naming the secret and the version: a sealed value copied onto another name or version
//! does not open. The sealed values and the attributes live in the store's metadata seam
//! ([`crate::metadata::RecordKind::Secret`]), so secrets work wherever keys do: in
//! memory, in the keystore and on PKCS#11 tokens.
//!
//! ```
//! # fn main() -> hsmkit::Result<()> {
//! use hsmkit::secrets::SecretAttributes;
//!
//! let store = hsmkit::Store::new(hsmkit_soft::SoftBackend::new());
//! store.set_secret("db-password", b"hunter2", SecretAttributes::default())?;
//! store.set_secret("db-password", b"correct horse", SecretAttributes::default())?;
//! assert_eq!(store.get_secret("db-password")?.value(), b"correct horse");
//! assert_eq!(store.get_secret_version("db-password", 1)?.value(), b"hunter2");
//! assert_eq!(store.list_secret_versions("db-password")?.len(), 2);
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime};

use base64ct::{Base64, Encoding};
use serde_json::{Value, json};

use crate::envelope::{EncryptionContext, Keyring, Opener, Sealer};
use crate::error::{Denied, Error, ErrorKind, InvalidReason, Result};
use crate::key::Key;
use crate::lifecycle::{
    Deletion, KeyState, RotationPolicy, secs, state_from_json, state_to_json, time, whole_seconds,
};
use crate::metadata::RecordKind;
use crate::secret::SecretVec;
use crate::store::{Store, StoreKeyRole, validate_object_name};

pub use crate::secret_cache::{SecretCache, SecretCacheOptions};

/// The largest secret value accepted, in bytes (as Azure Key Vault: 25 KiB).
pub const MAX_SECRET_VALUE_LEN: usize = 25 * 1024;
/// The longest content type accepted, in characters.
pub const MAX_CONTENT_TYPE_LEN: usize = 255;
/// The key that seals secret values, made on first use: AES-256 allowing only
/// `wrapKey`/`unwrapKey` (RSA-2048 where the backend has no AES key wrap). Whoever may
/// use it can open every secret: it is as protected as the store's other keys.
pub const SECRETS_KEK_NAME: &str = "hsmkit-secrets";

const KIND: RecordKind = RecordKind::Secret;

/// What a version is, besides its value: validity, content type, tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretAttributes {
    /// A disabled version is refused when read.
    pub enabled: bool,
    /// Refused when read before this time.
    pub not_before: Option<SystemTime>,
    /// Refused when read from this time on.
    pub expires: Option<SystemTime>,
    /// What the value is (`text/plain`, `application/x-pkcs12`, ...), up to 255
    /// characters. hsmkit does not interpret it.
    pub content_type: Option<String>,
    /// Free-form tags.
    pub tags: BTreeMap<String, String>,
}

impl Default for SecretAttributes {
    fn default() -> Self {
        SecretAttributes {
            enabled: true,
            not_before: None,
            expires: None,
            content_type: None,
            tags: BTreeMap::new(),
        }
    }
}

impl SecretAttributes {
    /// Checks the attributes as given (before anything is written).
    fn validate(&self) -> Result<()> {
        if let Some(ct) = &self.content_type
            && ct.chars().count() > MAX_CONTENT_TYPE_LEN
        {
            return Err(Error::invalid(
                InvalidReason::Length,
                format!(
                    "a content type is at most {MAX_CONTENT_TYPE_LEN} characters (this one has {})",
                    ct.chars().count()
                ),
            ));
        }
        crate::attributes::check_times(self.not_before, self.expires)
    }

    /// The times to the whole second, as every metadata store keeps them.
    fn truncated(mut self) -> Self {
        self.not_before = self.not_before.map(whole_seconds);
        self.expires = self.expires.map(whole_seconds);
        self
    }

    /// Whether the version may be read at `now`; why not if not.
    pub fn check(&self, now: SystemTime) -> std::result::Result<(), Denied> {
        if !self.enabled {
            return Err(Denied::Disabled);
        }
        if self.not_before.is_some_and(|nb| now < nb) {
            return Err(Denied::NotYetValid);
        }
        if self.expires.is_some_and(|exp| now >= exp) {
            return Err(Denied::Expired);
        }
        Ok(())
    }
}

/// One version's metadata (never its value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretProperties {
    /// The secret's name.
    pub name: String,
    /// The version (1, 2, ...).
    pub version: u32,
    /// Validity, content type, tags.
    pub attributes: SecretAttributes,
    /// When the version was set.
    pub created: SystemTime,
    /// When its attributes last changed.
    pub updated: SystemTime,
}

/// A secret: its state (rotation policy, soft deletion) and every version, oldest first.
/// The last version is current.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretDescription {
    /// The secret's name.
    pub name: String,
    /// Rotation policy and deletion, as for keys.
    pub state: KeyState,
    /// Versions, in increasing order.
    pub versions: Vec<SecretProperties>,
}

impl SecretDescription {
    /// The current (newest) version.
    pub fn current(&self) -> Option<&SecretProperties> {
        self.versions.last()
    }
}

/// A secret version read with its value. `Debug` shows the metadata, never the value;
/// the value is wiped when dropped.
pub struct Secret {
    properties: SecretProperties,
    id: [u8; 16],
    value: SecretVec,
}

impl Secret {
    /// The value.
    pub fn value(&self) -> &[u8] {
        &self.value
    }

    /// The version's metadata.
    pub fn properties(&self) -> &SecretProperties {
        &self.properties
    }

    /// The metadata and the value, which the caller now owns (wiped when dropped).
    pub fn into_parts(self) -> (SecretProperties, SecretVec) {
        (self.properties, self.value)
    }

    /// The version's random id (tells a version from one of the same number after the
    /// name was purged and set again).
    pub(crate) fn id(&self) -> &[u8; 16] {
        &self.id
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secret")
            .field("properties", &self.properties)
            .field("value", &format_args!("<{} bytes, redacted>", self.value.len()))
            .finish()
    }
}

/// A change to one version's attributes; `None` fields are left as they are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretUpdate {
    /// Enable or disable.
    pub enabled: Option<bool>,
    /// Set or clear not-before.
    pub not_before: Option<Option<SystemTime>>,
    /// Set or clear the expiry.
    pub expires: Option<Option<SystemTime>>,
    /// Set or clear the content type.
    pub content_type: Option<Option<String>>,
    /// Replace the tags.
    pub tags: Option<BTreeMap<String, String>>,
}

impl SecretUpdate {
    /// Just enable or disable.
    pub fn enabled(enabled: bool) -> Self {
        SecretUpdate { enabled: Some(enabled), ..Self::default() }
    }
}

/// A secret version due for rotation: it expires within the window asked for, or the
/// secret's rotation policy says its current version is due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretDue {
    /// The secret's name.
    pub name: String,
    /// The version.
    pub version: u32,
    /// When it expires, if it does.
    pub expires: Option<SystemTime>,
    /// Why it is due.
    pub reason: String,
}

/// One version as stored: metadata and the sealed value.
#[derive(Clone)]
pub(crate) struct StoredVersion {
    pub(crate) props: SecretProperties,
    /// Random per version, in the record and the sealing context: a name purged and set
    /// again has versions with the same numbers but other ids, so neither an old sealed
    /// value nor a cached value passes for the new one.
    pub(crate) id: [u8; 16],
    pub(crate) sealed: Vec<u8>,
}

/// A secret as stored in its record.
#[derive(Clone)]
pub(crate) struct SecretDoc {
    name: String,
    state: KeyState,
    pub(crate) versions: Vec<StoredVersion>,
}

fn corrupt(name: &str, what: &str) -> Error {
    Error::backend("store", "metadata", format!("corrupt secret record '{name}': {what}"))
}

fn opt_time(t: Option<SystemTime>) -> Value {
    t.map_or(Value::Null, |t| json!(secs(t)))
}

impl SecretDoc {
    fn new(name: &str) -> Self {
        SecretDoc { name: name.to_owned(), state: KeyState::default(), versions: Vec::new() }
    }

    fn max_version(&self) -> u32 {
        self.versions.iter().map(|v| v.props.version).max().unwrap_or(0)
    }

    fn version(&self, version: u32) -> Option<&StoredVersion> {
        self.versions.iter().find(|v| v.props.version == version)
    }

    fn describe(&self) -> SecretDescription {
        SecretDescription {
            name: self.name.clone(),
            state: self.state.clone(),
            versions: self.versions.iter().map(|v| v.props.clone()).collect(),
        }
    }

    fn to_json(&self) -> Value {
        let versions: Vec<Value> = self
            .versions
            .iter()
            .map(|v| {
                let mut e = version_json(&v.props);
                if let Some(m) = e.as_object_mut() {
                    m.insert("id".into(), json!(crate::lifecycle::to_hex(&v.id)));
                    m.insert("sealed".into(), json!(Base64::encode_string(&v.sealed)));
                }
                e
            })
            .collect();
        json!({ "format": 1, "name": self.name, "state": self.state_json(), "versions": versions })
    }

    pub(crate) fn state_json(&self) -> Value {
        state_to_json(&self.state)
    }

    fn from_json(name: &str, v: &Value) -> Result<Self> {
        let bad = |what: &str| corrupt(name, what);
        if v.get("format").and_then(Value::as_u64) != Some(1) {
            return Err(bad("unknown format"));
        }
        // The record store authenticates the record under its name; this catches a
        // record whose body names another secret.
        if v.get("name").and_then(Value::as_str) != Some(name) {
            return Err(bad("it describes another secret"));
        }
        let state = state_from_json(v.get("state").unwrap_or(&Value::Null))?;
        let mut versions = Vec::new();
        for e in v.get("versions").and_then(Value::as_array).ok_or_else(|| bad("versions"))? {
            let sealed = e
                .get("sealed")
                .and_then(Value::as_str)
                .and_then(|s| Base64::decode_vec(s).ok())
                .ok_or_else(|| bad("sealed value"))?;
            let id = e
                .get("id")
                .and_then(Value::as_str)
                .and_then(crate::lifecycle::from_hex)
                .and_then(|b| <[u8; 16]>::try_from(b).ok())
                .ok_or_else(|| bad("id"))?;
            versions.push(StoredVersion { props: props_from_json(name, e)?, id, sealed });
        }
        versions.sort_by_key(|v| v.props.version);
        Ok(SecretDoc { name: name.to_owned(), state, versions })
    }
}

/// One version's metadata as stored (and as backed up): no value.
pub(crate) fn version_json(p: &SecretProperties) -> Value {
    let a = &p.attributes;
    json!({
        "version": p.version,
        "enabled": a.enabled,
        "not_before": opt_time(a.not_before),
        "expires": opt_time(a.expires),
        "content_type": a.content_type,
        "tags": a.tags,
        "created": secs(p.created),
        "updated": secs(p.updated),
    })
}

/// Reads [`version_json`]'s document.
fn props_from_json(name: &str, e: &Value) -> Result<SecretProperties> {
    let bad = |what: &str| corrupt(name, what);
    let get = |k: &str| e.get(k).unwrap_or(&Value::Null);
    #[allow(clippy::wildcard_enum_match_arm, reason = "serde_json's Value: null or a time")]
    let opt_time = |k: &str| match get(k) {
        Value::Null => Ok(None),
        t => time(t).map(Some).ok_or_else(|| bad(k)),
    };
    let version =
        get("version").as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(|| bad("version"))?;
    let content_type = if get("content_type").is_null() {
        None
    } else {
        Some(get("content_type").as_str().ok_or_else(|| bad("content_type"))?.to_owned())
    };
    let tags: BTreeMap<String, String> =
        serde_json::from_value(get("tags").clone()).map_err(|_| bad("tags"))?;
    let created = time(get("created")).ok_or_else(|| bad("created"))?;
    Ok(SecretProperties {
        name: name.to_owned(),
        version,
        attributes: SecretAttributes {
            enabled: get("enabled").as_bool().ok_or_else(|| bad("enabled"))?,
            not_before: opt_time("not_before")?,
            expires: opt_time("expires")?,
            content_type,
            tags,
        },
        created,
        updated: time(get("updated")).unwrap_or(created),
    })
}

/// Checks a secret name: the key alphabet and length ([`crate::validate_name`]).
fn check_name(name: &str) -> Result<()> {
    validate_object_name(name, "secret")
}

fn check_value(value: &[u8]) -> Result<()> {
    if value.len() > MAX_SECRET_VALUE_LEN {
        return Err(Error::invalid(
            InvalidReason::Length,
            format!(
                "a secret value is at most {MAX_SECRET_VALUE_LEN} bytes (25 KiB); this one has {}",
                value.len()
            ),
        ));
    }
    Ok(())
}

fn not_found(name: &str) -> Error {
    Error::NotFound { what: format!("secret '{name}'") }
}

fn deleted_not_found(name: &str) -> Error {
    Error::NotFound { what: format!("deleted secret '{name}'") }
}

fn denied(name: &str, reason: Denied) -> Error {
    Error::PermissionDenied { key: format!("secret/{name}"), reason }
}

/// The encryption context a version's value is sealed with: it names the secret and the
/// version, so a sealed value copied elsewhere does not open.
fn context(name: &str, version: u32, id: &[u8; 16]) -> EncryptionContext {
    EncryptionContext::from([
        ("hsmkit".to_owned(), "secret".to_owned()),
        ("name".to_owned(), name.to_owned()),
        ("version".to_owned(), version.to_string()),
        ("id".to_owned(), crate::lifecycle::to_hex(id)),
    ])
}

fn new_version_id(store: &Store) -> Result<[u8; 16]> {
    let mut id = [0u8; 16];
    store.ctx.crypto.fill_random(&mut id)?;
    Ok(id)
}

/// Opens sealed values with the secrets KEK and no other key: a value sealed to some
/// other key of the store is refused, never opened.
struct SecretsKeyring<'a>(&'a Store);

impl Keyring for SecretsKeyring<'_> {
    fn key_version(&self, name: &str, version: u32) -> Result<Key> {
        // Any KEK but this one, or this one gone: the value cannot be opened, which is the
        // one opaque error (never NotFound, which front ends would read as "no secret").
        if name != SECRETS_KEK_NAME {
            return Err(Error::DecryptionFailed);
        }
        self.0.open_key_version(name, version).map_err(|e| match e.kind() {
            ErrorKind::NotFound => Error::DecryptionFailed,
            ErrorKind::AlreadyExists
            | ErrorKind::PermissionDenied
            | ErrorKind::InvalidInput
            | ErrorKind::VerificationFailed
            | ErrorKind::DecryptionFailed
            | ErrorKind::Unsupported
            | ErrorKind::Authentication
            | ErrorKind::Backend
            | ErrorKind::Io => e,
        })
    }
}

/// How often [`Store::set_secret`] retries when another process adds a version between
/// its read and its write.
const SET_ATTEMPTS: usize = 8;

impl Store {
    fn secret_event<T>(&self, name: &str, version: Option<u32>, op: &str, r: &Result<T>) {
        self.ctx.emit_object("secret", name, version, op, None, r);
    }

    fn read_secret_doc(&self, name: &str) -> Result<Option<SecretDoc>> {
        self.meta.read_record(KIND, name)?.map(|v| SecretDoc::from_json(name, &v)).transpose()
    }

    /// A secret that exists and is not deleted.
    fn live_secret(&self, name: &str) -> Result<SecretDoc> {
        check_name(name)?;
        let d = self.read_secret_doc(name)?.ok_or_else(|| not_found(name))?;
        if d.state.deleted.is_some() {
            return Err(Error::NotFound {
                what: format!("secret '{name}' (it is deleted: recover or purge it)"),
            });
        }
        Ok(d)
    }

    /// Changes a secret's record atomically; `edit` gets the secret (`None` if there is
    /// none) and returns the new one (`None` removes it).
    fn modify_secret(
        &self,
        name: &str,
        edit: &mut dyn FnMut(Option<SecretDoc>) -> Result<Option<SecretDoc>>,
    ) -> Result<()> {
        self.meta.modify_record(KIND, name, &mut |v| {
            let doc = v.map(|v| SecretDoc::from_json(name, &v)).transpose()?;
            Ok(edit(doc)?.map(|d| d.to_json()))
        })
    }

    /// Sets a secret: adds a version holding `value` (at most [`MAX_SECRET_VALUE_LEN`]
    /// bytes), which becomes current. Creates the secret if there is none; refused while
    /// it is deleted. Under a rotation policy with `expires_after`, a version set without
    /// an expiry expires that long after it is set.
    pub fn set_secret(
        &self,
        name: &str,
        value: &[u8],
        attributes: SecretAttributes,
    ) -> Result<SecretProperties> {
        let r = (|| {
            check_name(name)?;
            check_value(value)?;
            attributes.validate()?;
            let _writer = self.writers.lock(name);
            let (kek, _) = self.get_or_create_store_key(StoreKeyRole::Secrets)?;
            let sealer = Sealer::for_key(kek)?;
            for _ in 0..SET_ATTEMPTS {
                let doc = self.read_secret_doc(name)?.unwrap_or_else(|| SecretDoc::new(name));
                if doc.state.deleted.is_some() {
                    return Err(Error::AlreadyExists { name: format!("secret/{name}") });
                }
                let version = doc.max_version().checked_add(1).ok_or_else(|| {
                    Error::invalid(
                        InvalidReason::Parameter,
                        format!("secret '{name}' has no version numbers left"),
                    )
                })?;
                let now = whole_seconds(self.ctx.now());
                let mut attributes = attributes.clone().truncated();
                if attributes.expires.is_none()
                    && let Some(after) = doc.state.rotation.and_then(|p| p.expires_after)
                {
                    attributes.expires = Some(now.checked_add(after).ok_or_else(|| {
                        Error::invalid(
                            InvalidReason::Parameter,
                            "the rotation policy's expires_after is too long",
                        )
                    })?);
                }
                attributes.validate()?;
                let id = new_version_id(self)?;
                let sealed = sealer.clone().with_context(context(name, version, &id))?.seal(value)?;
                let props = SecretProperties {
                    name: name.to_owned(),
                    version,
                    attributes,
                    created: now,
                    updated: now,
                };
                let mut raced = false;
                let new = StoredVersion { props: props.clone(), id, sealed };
                let r = self.modify_secret(name, &mut |d| {
                    let mut d = d.unwrap_or_else(|| SecretDoc::new(name));
                    if d.state.deleted.is_some() {
                        return Err(Error::AlreadyExists { name: format!("secret/{name}") });
                    }
                    if d.max_version().checked_add(1) != Some(version) {
                        raced = true;
                        return Err(Error::AlreadyExists { name: format!("secret/{name}") });
                    }
                    d.versions.push(new.clone());
                    Ok(Some(d))
                });
                match r {
                    Err(_) if raced => continue,
                    r => return r.map(|()| props),
                }
            }
            Err(Error::backend(
                "store",
                "set secret",
                format!(
                    "secret '{name}': other writers kept adding versions; {SET_ATTEMPTS} attempts failed"
                ),
            ))
        })();
        self.secret_event(name, r.as_ref().ok().map(|p| p.version), "set", &r);
        r
    }

    /// The current version of a secret, with its value. Refused (with the typed errors
    /// keys use) if that version is disabled, not yet valid or expired.
    pub fn get_secret(&self, name: &str) -> Result<Secret> {
        self.read_secret(name, None)
    }

    /// One version of a secret, with its value.
    pub fn get_secret_version(&self, name: &str, version: u32) -> Result<Secret> {
        self.read_secret(name, Some(version))
    }

    fn read_secret(&self, name: &str, version: Option<u32>) -> Result<Secret> {
        let mut shown = version;
        let r = (|| {
            let doc = self.live_secret(name)?;
            let v = match version {
                Some(n) => doc.version(n),
                None => doc.versions.last(),
            }
            .ok_or_else(|| match version {
                Some(n) => Error::NotFound { what: format!("version {n} of secret '{name}'") },
                None => not_found(name),
            })?;
            shown = Some(v.props.version);
            v.props.attributes.check(self.ctx.now()).map_err(|d| denied(name, d))?;
            // The context is built from what was asked for, not from the record: a sealed
            // value moved onto another name or version does not open.
            let want = version.unwrap_or(v.props.version);
            let value = self.open_secret_value(name, want, &v.id, &v.sealed)?;
            Ok(Secret { properties: v.props.clone(), id: v.id, value })
        })();
        self.secret_event(name, shown, "get", &r);
        r
    }

    /// Opens a sealed value with the context of `name` at `version` (with its id).
    pub(crate) fn open_secret_value(
        &self,
        name: &str,
        version: u32,
        id: &[u8; 16],
        sealed: &[u8],
    ) -> Result<SecretVec> {
        Opener::new(&SecretsKeyring(self)).with_context(context(name, version, id)).open(sealed)
    }

    /// The current version's metadata and id, without opening its value (the cache's
    /// version check).
    pub(crate) fn current_secret_version(&self, name: &str) -> Result<(SecretProperties, [u8; 16])> {
        let doc = self.live_secret(name)?;
        let v = doc.versions.last().ok_or_else(|| not_found(name))?;
        Ok((v.props.clone(), v.id))
    }

    /// A live secret's record, for a backup.
    pub(crate) fn secret_doc_for_backup(&self, name: &str) -> Result<SecretDoc> {
        self.live_secret(name)
    }

    /// Writes a restored secret: each version's metadata (as [`version_json`] wrote it)
    /// and value, re-sealed under this store's secrets KEK. Refused if a secret (live or
    /// deleted) holds the name.
    pub(crate) fn restore_secret_doc(
        &self,
        name: &str,
        state: &Value,
        versions: Vec<(Value, zeroize::Zeroizing<Vec<u8>>)>,
    ) -> Result<SecretDescription> {
        check_name(name)?;
        if versions.is_empty() {
            return Err(Error::invalid(
                InvalidReason::Malformed,
                "not an hsmkit backup: a secret without versions",
            ));
        }
        let mut state = state_from_json(state)?;
        state.deleted = None;
        let _writer = self.writers.lock(name);
        if self.read_secret_doc(name)?.is_some() {
            return Err(Error::AlreadyExists { name: format!("secret/{name}") });
        }
        let (kek, _) = self.get_or_create_store_key(StoreKeyRole::Secrets)?;
        let sealer = Sealer::for_key(kek)?;
        let mut doc =
            SecretDoc { name: name.to_owned(), state, versions: Vec::with_capacity(versions.len()) };
        for (meta, value) in versions {
            let props = props_from_json(name, &meta).map_err(|_| {
                Error::invalid(InvalidReason::Malformed, "not an hsmkit backup: bad version metadata")
            })?;
            check_value(&value)?;
            props.attributes.validate()?;
            if props.version == 0 || doc.version(props.version).is_some() {
                return Err(Error::invalid(
                    InvalidReason::Malformed,
                    "not an hsmkit backup: a version twice",
                ));
            }
            // A restored version is a new incarnation: a new id.
            let id = new_version_id(self)?;
            let sealed = sealer.clone().with_context(context(name, props.version, &id))?.seal(&value)?;
            doc.versions.push(StoredVersion { props, id, sealed });
        }
        doc.versions.sort_by_key(|v| v.props.version);
        let out = doc.describe();
        self.modify_secret(name, &mut |current| match current {
            Some(_) => Err(Error::AlreadyExists { name: format!("secret/{name}") }),
            None => Ok(Some(doc.clone())),
        })?;
        Ok(out)
    }

    /// A secret's state and every version's metadata (no values), deleted or not.
    pub fn describe_secret(&self, name: &str) -> Result<SecretDescription> {
        check_name(name)?;
        Ok(self.read_secret_doc(name)?.ok_or_else(|| not_found(name))?.describe())
    }

    /// The current version of every secret that is not deleted, sorted by name (no values).
    pub fn list_secrets(&self) -> Result<Vec<SecretProperties>> {
        let mut out = Vec::new();
        for d in self.secret_docs()? {
            if d.state.deleted.is_none()
                && let Some(v) = d.versions.last()
            {
                out.push(v.props.clone());
            }
        }
        Ok(out)
    }

    /// Every secret's record, sorted by name. A record that does not parse fails the
    /// list: it is ours, authenticated, and corrupt.
    fn secret_docs(&self) -> Result<Vec<SecretDoc>> {
        let mut docs = self
            .meta
            .list_records(KIND)?
            .into_iter()
            .filter(|(name, _)| check_name(name).is_ok())
            .map(|(name, v)| SecretDoc::from_json(&name, &v))
            .collect::<Result<Vec<_>>>()?;
        docs.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(docs)
    }

    /// Every version of a secret that is not deleted, oldest first (no values).
    pub fn list_secret_versions(&self, name: &str) -> Result<Vec<SecretProperties>> {
        Ok(self.live_secret(name)?.describe().versions)
    }

    /// Changes one version's attributes, content type or tags (not its value: set a new
    /// version for that).
    pub fn update_secret(&self, name: &str, version: u32, update: &SecretUpdate) -> Result<SecretProperties> {
        let r = (|| {
            self.live_secret(name)?;
            let now = whole_seconds(self.ctx.now());
            let mut out = None;
            self.modify_secret(name, &mut |d| {
                let mut d = d.ok_or_else(|| not_found(name))?;
                if d.state.deleted.is_some() {
                    return Err(not_found(name));
                }
                let v = d.versions.iter_mut().find(|v| v.props.version == version).ok_or_else(|| {
                    Error::NotFound { what: format!("version {version} of secret '{name}'") }
                })?;
                let a = &mut v.props.attributes;
                if let Some(e) = update.enabled {
                    a.enabled = e;
                }
                if let Some(nb) = update.not_before {
                    a.not_before = nb;
                }
                if let Some(exp) = update.expires {
                    a.expires = exp;
                }
                if let Some(ct) = &update.content_type {
                    a.content_type.clone_from(ct);
                }
                if let Some(tags) = &update.tags {
                    a.tags.clone_from(tags);
                }
                *a = a.clone().truncated();
                a.validate()?;
                v.props.updated = now;
                out = Some(v.props.clone());
                Ok(Some(d))
            })?;
            out.ok_or_else(|| not_found(name))
        })();
        self.secret_event(name, Some(version), "update", &r);
        r
    }

    /// Sets (or with `None` removes) a secret's rotation policy: `expires_after` gives
    /// versions set without an expiry one; `rotate_after` and `rotate_before_expiry` say
    /// when [`Store::secrets_due`] reports the current version.
    pub fn set_secret_rotation_policy(&self, name: &str, policy: Option<RotationPolicy>) -> Result<()> {
        let r = (|| {
            self.live_secret(name)?;
            self.modify_secret(name, &mut |d| {
                let mut d = d.ok_or_else(|| not_found(name))?;
                d.state.rotation = policy;
                Ok(Some(d))
            })
        })();
        self.secret_event(name, None, "set-rotation-policy", &r);
        r
    }

    /// A secret's rotation policy.
    pub fn secret_rotation_policy(&self, name: &str) -> Result<Option<RotationPolicy>> {
        Ok(self.live_secret(name)?.state.rotation)
    }

    /// Secret versions due for rotation, sorted by name and version: every enabled
    /// version of a secret that is not deleted and expires within `within` (or has
    /// expired), and every current version its secret's rotation policy says is due.
    pub fn secrets_due(&self, within: Duration) -> Result<Vec<SecretDue>> {
        let now = self.ctx.now();
        // No horizon (a window past the end of time): every expiry is within it.
        let horizon = now.checked_add(within);
        let mut due = Vec::new();
        for d in self.secret_docs()? {
            if d.state.deleted.is_some() {
                continue;
            }
            let current = d.versions.last().map(|v| v.props.version);
            for v in &d.versions {
                let a = &v.props.attributes;
                if !a.enabled {
                    continue;
                }
                let policy = match (current == Some(v.props.version), d.state.rotation) {
                    (true, Some(p)) => p.due_at(v.props.created, a.expires, now),
                    _ => None,
                };
                let expiring = a.expires.filter(|exp| horizon.is_none_or(|h| *exp <= h)).map(|exp| {
                    if exp <= now {
                        format!("expired at {}", crate::report::rfc3339(exp))
                    } else {
                        format!("expires at {}", crate::report::rfc3339(exp))
                    }
                });
                if let Some(reason) = policy.or(expiring) {
                    due.push(SecretDue {
                        name: d.name.clone(),
                        version: v.props.version,
                        expires: a.expires,
                        reason,
                    });
                }
            }
        }
        Ok(due)
    }

    /// Soft-deletes a secret (every version): kept, unreadable, for the store's retention
    /// period; then recovered or purged.
    pub fn delete_secret(&self, name: &str) -> Result<SecretDescription> {
        let r = (|| {
            check_name(name)?;
            let retention = self.meta.settings()?.retention;
            let now = whole_seconds(self.ctx.now());
            let mut out = None;
            self.modify_secret(name, &mut |d| {
                let mut d = d.ok_or_else(|| not_found(name))?;
                if d.state.deleted.is_some() {
                    return Err(Error::NotFound { what: format!("secret '{name}' (already deleted)") });
                }
                let scheduled_purge = now
                    .checked_add(retention)
                    .ok_or_else(|| Error::invalid(InvalidReason::Parameter, "retention"))?;
                d.state.deleted = Some(Deletion { deleted_on: now, scheduled_purge });
                out = Some(d.describe());
                Ok(Some(d))
            })?;
            out.ok_or_else(|| not_found(name))
        })();
        self.secret_event(name, None, "delete", &r);
        r
    }

    /// A deleted secret's description (with [`KeyState::deleted`] set).
    pub fn get_deleted_secret(&self, name: &str) -> Result<SecretDescription> {
        check_name(name)?;
        let d = self.read_secret_doc(name)?.ok_or_else(|| deleted_not_found(name))?;
        if d.state.deleted.is_none() {
            return Err(deleted_not_found(name));
        }
        Ok(d.describe())
    }

    /// Every deleted secret, sorted by name.
    pub fn list_deleted_secrets(&self) -> Result<Vec<SecretDescription>> {
        Ok(self
            .secret_docs()?
            .into_iter()
            .filter(|d| d.state.deleted.is_some())
            .map(|d| d.describe())
            .collect())
    }

    /// Recovers a deleted secret; returns its current version's metadata.
    pub fn recover_deleted_secret(&self, name: &str) -> Result<SecretProperties> {
        let r = (|| {
            check_name(name)?;
            let mut out = None;
            self.modify_secret(name, &mut |d| {
                let mut d = d.ok_or_else(|| deleted_not_found(name))?;
                if d.state.deleted.take().is_none() {
                    return Err(deleted_not_found(name));
                }
                out = d.versions.last().map(|v| v.props.clone());
                Ok(Some(d))
            })?;
            out.ok_or_else(|| not_found(name))
        })();
        self.secret_event(name, None, "recover", &r);
        r
    }

    /// Removes a deleted secret for good. Refused under purge protection until its
    /// retention period has ended.
    pub fn purge_deleted_secret(&self, name: &str) -> Result<()> {
        let r = (|| {
            check_name(name)?;
            let protection = self.meta.settings()?.purge_protection;
            let now = self.ctx.now();
            self.modify_secret(name, &mut |d| {
                let d = d.ok_or_else(|| deleted_not_found(name))?;
                let deleted = d.state.deleted.ok_or_else(|| deleted_not_found(name))?;
                if protection && now < deleted.scheduled_purge {
                    return Err(denied(name, Denied::PurgeProtected));
                }
                Ok(None)
            })
        })();
        self.secret_event(name, None, "purge", &r);
        r
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]
    use super::*;
    use crate::error::ErrorKind;
    use std::time::UNIX_EPOCH;

    #[test]
    fn records_round_trip() {
        let mut doc = SecretDoc::new("s");
        doc.versions.push(StoredVersion {
            props: SecretProperties {
                name: "s".into(),
                version: 1,
                attributes: SecretAttributes {
                    content_type: Some("text/plain".into()),
                    expires: Some(UNIX_EPOCH + Duration::from_secs(1_900_000_000)),
                    tags: BTreeMap::from([("a".into(), "b".into())]),
                    ..SecretAttributes::default()
                },
                created: UNIX_EPOCH + Duration::from_secs(1_800_000_000),
                updated: UNIX_EPOCH + Duration::from_secs(1_800_000_001),
            },
            id: [9; 16],
            sealed: vec![1, 2, 3],
        });
        let back = SecretDoc::from_json("s", &doc.to_json()).expect("parses");
        assert_eq!(back.describe(), doc.describe());
        assert_eq!(back.versions.first().map(|v| v.sealed.clone()), Some(vec![1, 2, 3]));
        let err = SecretDoc::from_json("t", &doc.to_json()).err().map(|e| e.kind());
        assert_eq!(err, Some(ErrorKind::Backend), "a record naming another secret is refused");
    }

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret {
            properties: SecretProperties {
                name: "n".into(),
                version: 1,
                attributes: SecretAttributes::default(),
                created: UNIX_EPOCH,
                updated: UNIX_EPOCH,
            },
            id: [0; 16],
            value: {
                let mut v = SecretVec::new();
                v.extend_from_slice(b"canary-7f3a");
                v
            },
        };
        let shown = format!("{s:?}");
        assert!(!shown.contains("canary"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }
}
