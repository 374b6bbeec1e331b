//! Backup and restore of secrets and software keys, as a key vault has them.
//!
//! A backup is an opaque, authenticated blob: an envelope ([`crate::envelope`]) sealed
//! under the store's backup key, [`BACKUP_KEY_NAME`] (made on first use, never
//! exportable), holding every version and attribute. Its encryption context names what
//! it holds (`{"hsmkit": "backup", "object": "secret"|"key", "name": NAME}`), so a key
//! backup does not restore as a secret, nor under another name. A store accepts a backup
//! only if it holds the same backup key: the same store (after a purge), or another store
//! into which the same backup key was imported. Anywhere else the blob does not open, and
//! restore fails with [`Error::DecryptionFailed`], as for a blob that was altered.
//!
//! Secret values are re-sealed under the restoring store's secrets KEK. Keys are backed
//! up with their material, so only backends whose keys can leave them (the software
//! backend) back keys up; a PKCS#11 token's keys never leave it, and `backup_key` says
//! so with a typed `Unsupported`.
//!
//! Whoever may use the backup key can read every backup made under it: a key backup
//! holds the key's material even when the key is not exportable. The backup key is as
//! sensitive as every key it protects; purge protection keeps it from being destroyed
//! and replaced by one whose material is known.

use std::collections::BTreeMap;

use base64ct::{Base64, Encoding};
use serde::Deserialize;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::envelope::{EncryptionContext, EnvelopeHeader, Keyring, Opener, Sealer};
use crate::error::{Error, ErrorKind, InvalidReason, Result, UnsupportedReason};
use crate::key::Key;
use crate::lifecycle::KeyDescription;
use crate::material::KeyMaterial;
use crate::secrets::SecretDescription;
use crate::store::{Store, StoreKeyRole, validate_name};

/// The key that seals backups, made on first use: AES-256 allowing only
/// `wrapKey`/`unwrapKey` (RSA-2048 where the backend has no AES key wrap).
pub const BACKUP_KEY_NAME: &str = "hsmkit-backup";

/// The store's own keys, never backed up or restored.
const OWN_KEYS: [&str; 3] = [BACKUP_KEY_NAME, crate::secrets::SECRETS_KEK_NAME, crate::audit::AUDIT_KEY_NAME];

/// What a backup holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Object {
    Secret,
    Key,
}

impl Object {
    fn name(self) -> &'static str {
        match self {
            Object::Secret => "secret",
            Object::Key => "key",
        }
    }
}

fn context(object: Object, name: &str) -> EncryptionContext {
    EncryptionContext::from([
        ("hsmkit".to_owned(), "backup".to_owned()),
        ("object".to_owned(), object.name().to_owned()),
        ("name".to_owned(), name.to_owned()),
    ])
}

/// Opens backups with the backup key and no other key.
struct BackupKeyring<'a>(&'a Store);

impl Keyring for BackupKeyring<'_> {
    fn key_version(&self, name: &str, version: u32) -> Result<Key> {
        if name != BACKUP_KEY_NAME {
            return Err(Error::DecryptionFailed);
        }
        self.0.open_key_version(name, version)
    }
}

/// A backup's plaintext: `pieces` joined, built in one pre-sized wiped buffer so that no
/// reallocation leaves a copy of a value behind.
fn join_wiped(pieces: &[&str]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(pieces.iter().map(|p| p.len()).sum()));
    for p in pieces {
        out.push_str(p);
    }
    out
}

/// Base64 into a wiped string.
fn b64_wiped(bytes: &[u8]) -> Zeroizing<String> {
    Zeroizing::new(Base64::encode_string(bytes))
}

fn unb64_wiped(s: &str) -> Result<Zeroizing<Vec<u8>>> {
    Base64::decode_vec(s).map(Zeroizing::new).map_err(|_| malformed("a value is not base64"))
}

fn malformed(what: &str) -> Error {
    Error::invalid(InvalidReason::Malformed, format!("not an hsmkit backup: {what}"))
}

#[derive(Deserialize)]
struct SecretVersionPlain {
    meta: Value,
    value: Zeroizing<String>,
}

#[derive(Deserialize)]
struct SecretPlain {
    format: u32,
    name: String,
    state: Value,
    versions: Vec<SecretVersionPlain>,
}

#[derive(Deserialize)]
struct MaterialPlain {
    kind: String,
    b64: Zeroizing<String>,
}

#[derive(Deserialize)]
struct KeyPlain {
    format: u32,
    doc: Value,
    material: BTreeMap<String, MaterialPlain>,
}

fn encode_material(m: &KeyMaterial) -> Result<(&'static str, Zeroizing<Vec<u8>>)> {
    Ok(match m {
        KeyMaterial::Aes(k) => ("aes", k.clone()),
        KeyMaterial::Hmac(k) => ("hmac", k.clone()),
        KeyMaterial::Public(p) => ("spki", Zeroizing::new(p.to_spki_der()?)),
        other @ (KeyMaterial::RsaPrivate(_) | KeyMaterial::EcPrivate(_) | KeyMaterial::Ed25519Private(_)) => {
            ("pkcs8", other.to_pkcs8_der()?)
        }
    })
}

fn decode_material(kind: &str, der: &[u8]) -> Result<KeyMaterial> {
    match kind {
        "aes" => KeyMaterial::aes(der),
        "hmac" => KeyMaterial::hmac(der),
        "spki" | "pkcs8" => KeyMaterial::from_der(der),
        _ => Err(malformed("unknown material kind")),
    }
}

impl Store {
    /// Makes every version's objects, then records them all in one metadata write: a
    /// restore that fails (or a process killed) part way records nothing, and the objects
    /// made are destroyed (or, after a kill, left unreferenced, as for a failed create).
    fn restore_key_versions(
        &self,
        name: &str,
        d: &KeyDescription,
        material: &BTreeMap<String, MaterialPlain>,
    ) -> Result<KeyDescription> {
        let mut made: Vec<crate::backend::KeyInfo> = Vec::with_capacity(d.versions.len());
        let r = (|| {
            for (i, info) in d.versions.iter().enumerate() {
                if usize::try_from(info.version).ok() != i.checked_add(1) {
                    return Err(malformed("versions are not 1, 2, 3, ..."));
                }
                let m =
                    material.get(&info.version.to_string()).ok_or_else(|| malformed("missing material"))?;
                let der = unb64_wiped(&m.b64)?;
                let mat = decode_material(&m.kind, &der)?;
                if mat.spec()? != info.spec {
                    return Err(malformed("material of another key type"));
                }
                let attributes = self.check_import_pub(&mat, info.attributes.clone())?;
                let mut id = [0u8; 16];
                self.ctx.crypto.fill_random(&mut id)?;
                let req = crate::backend::NewKey {
                    name,
                    version: info.version,
                    attributes: &attributes,
                    created: info.created,
                    object_id: id,
                };
                let key = self.backend.import(&req, mat)?;
                let mut made_info = key.info().clone();
                made.push(made_info.clone());
                if !made_info.spec.key_type().is_secret() {
                    made_info.binding.public_sha256 =
                        Some(crate::backend::KeyBinding::fingerprint(self.ctx.crypto, &key.public_key()?)?);
                }
                made_info.updated = info.updated;
                if let Some(last) = made.last_mut() {
                    *last = made_info;
                }
            }
            let versions = made.clone();
            self.meta.modify(name, &mut |doc| {
                if doc.is_some() {
                    return Err(Error::AlreadyExists { name: name.to_owned() });
                }
                let mut state = crate::lifecycle::KeyState::default();
                state.rotation = d.state.rotation;
                Ok(Some(KeyDescription { name: name.to_owned(), state, versions: versions.clone() }))
            })?;
            self.meta.read(name)?.ok_or_else(|| Error::NotFound { what: format!("key '{name}'") })
        })();
        if r.is_err() {
            let recorded = self.meta.read(name).ok().flatten().is_some_and(|doc| {
                made.iter().all(|m| {
                    doc.version(m.version).is_some_and(|v| v.binding.object_id == m.binding.object_id)
                })
            });
            if !recorded {
                for info in &made {
                    if let Err(e) = self.backend.destroy(info) {
                        tracing::warn!(target: "hsmkit::store", key = %name, version = info.version, error = %e,
                            "could not destroy the objects of a version that was not restored");
                    }
                }
            }
        }
        r
    }

    fn backup_event<T>(&self, object: Object, name: &str, op: &str, r: &Result<T>) {
        self.ctx.emit_object(object.name(), name, None, op, None, r);
    }

    /// Seals a backup's plaintext under the backup key (made on first use).
    fn seal_backup(&self, object: Object, name: &str, plaintext: &[u8]) -> Result<Vec<u8>> {
        let (key, _) = self.get_or_create_store_key(StoreKeyRole::Backup)?;
        Sealer::for_key(key)?.with_context(context(object, name))?.seal(plaintext)
    }

    /// Opens a backup of `object`; returns the name it holds and its plaintext.
    fn open_backup(&self, object: Object, backup: &[u8]) -> Result<(String, crate::SecretVec)> {
        let header = EnvelopeHeader::parse(backup).map_err(|_| malformed("no envelope header"))?;
        let ctx = header.context();
        let name = ctx.get("name").cloned().ok_or_else(|| malformed("no name"))?;
        if ctx.get("hsmkit").map(String::as_str) != Some("backup") {
            return Err(malformed("not a backup"));
        }
        if ctx.get("object").map(String::as_str) != Some(object.name()) {
            return Err(Error::invalid(
                InvalidReason::Malformed,
                format!("this is not a {} backup", object.name()),
            ));
        }
        validate_name(&name)?;
        // Any failure to open (no backup key here, another store's backup key, an altered
        // blob) is the one opaque error.
        let plain = Opener::new(&BackupKeyring(self))
            .with_context(context(object, &name))
            .open(backup)
            .map_err(|e| match e.kind() {
                ErrorKind::Backend | ErrorKind::Authentication | ErrorKind::Unsupported => e,
                ErrorKind::NotFound
                | ErrorKind::AlreadyExists
                | ErrorKind::PermissionDenied
                | ErrorKind::InvalidInput
                | ErrorKind::VerificationFailed
                | ErrorKind::DecryptionFailed
                | ErrorKind::Io => Error::DecryptionFailed,
            })?;
        Ok((name, plain))
    }

    /// A backup of a secret: every version (values included) and its state, sealed under
    /// the store's backup key. The secret must not be deleted.
    pub fn backup_secret(&self, name: &str) -> Result<Vec<u8>> {
        let r = (|| {
            let doc = self.secret_doc_for_backup(name)?;
            let mut values = Vec::with_capacity(doc.versions.len());
            for v in &doc.versions {
                // Every version, whatever its validity: a backup is not a read of the value
                // by an application.
                let value = self.open_secret_value(name, v.props.version, &v.id, &v.sealed)?;
                values.push((crate::secrets::version_json(&v.props).to_string(), b64_wiped(&value)));
            }
            let head = json!({ "format": 1, "name": name, "state": doc.state_json() }).to_string();
            let head = head.strip_suffix('}').ok_or_else(|| malformed("head"))?;
            let mut pieces: Vec<&str> = vec![head, ",\"versions\":["];
            for (i, (meta, value)) in values.iter().enumerate() {
                if i > 0 {
                    pieces.push(",");
                }
                pieces.extend(["{\"meta\":", meta, ",\"value\":\"", value, "\"}"]);
            }
            pieces.push("]}");
            let plain = join_wiped(&pieces);
            self.seal_backup(Object::Secret, name, plain.as_bytes())
        })();
        self.backup_event(Object::Secret, name, "backup", &r);
        r
    }

    /// Restores a secret from [`backup_secret`](Self::backup_secret)'s blob, under the
    /// name it was backed up from; refused if a secret (live or deleted) holds that name,
    /// or if this store does not hold the backup key it was made under
    /// ([`Error::DecryptionFailed`]).
    pub fn restore_secret(&self, backup: &[u8]) -> Result<SecretDescription> {
        let mut shown = String::from("-");
        let r = (|| {
            let (name, plain) = self.open_backup(Object::Secret, backup)?;
            shown.clone_from(&name);
            let p: SecretPlain = serde_json::from_slice(&plain).map_err(|_| malformed("bad contents"))?;
            if p.format != 1 || p.name != name {
                return Err(malformed("bad contents"));
            }
            let mut versions = Vec::with_capacity(p.versions.len());
            for v in &p.versions {
                let value = unb64_wiped(&v.value)?;
                versions.push((v.meta.clone(), value));
            }
            self.restore_secret_doc(&name, &p.state, versions)
        })();
        self.backup_event(Object::Secret, &shown, "restore", &r);
        r
    }

    /// A backup of a key: every version's metadata and material, sealed under the
    /// store's backup key. Only where keys can leave the backend (the software backend):
    /// elsewhere a typed `Unsupported`. The key must not be deleted.
    pub fn backup_key(&self, name: &str) -> Result<Vec<u8>> {
        let r = (|| {
            validate_name(name)?;
            if [BACKUP_KEY_NAME, crate::secrets::SECRETS_KEK_NAME, crate::audit::AUDIT_KEY_NAME]
                .contains(&name)
            {
                return Err(Error::invalid(
                    InvalidReason::Parameter,
                    format!(
                        "'{name}' is one of the store's own keys and is not backed up: secrets back up with \
                         their values, and two stores share a backup key by importing the same material"
                    ),
                ));
            }
            let d = self.meta.read(name)?.ok_or_else(|| Error::NotFound { what: format!("key '{name}'") })?;
            if d.state.deleted.is_some() {
                return Err(Error::NotFound {
                    what: format!("key '{name}' (it is deleted: recover it first)"),
                });
            }
            if !self.backend.capabilities().export {
                return Err(Error::unsupported(
                    UnsupportedReason::Operation,
                    format!(
                        "backup of key '{name}': keys on the {} backend never leave it (back up the token itself)",
                        self.backend.kind()
                    ),
                ));
            }
            let doc = d.to_json().to_string();
            let mut material = Vec::with_capacity(d.versions.len());
            for info in &d.versions {
                // The backend's own export: a backup holds non-exportable keys too, sealed
                // for stores that hold the backup key.
                let m = self.backend.open(info)?.export()?;
                let (kind, der) = encode_material(&m)?;
                material.push((info.version.to_string(), kind, b64_wiped(&der)));
            }
            let mut pieces: Vec<&str> = vec!["{\"format\":1,\"doc\":", &doc, ",\"material\":{"];
            for (i, (v, kind, b64)) in material.iter().enumerate() {
                if i > 0 {
                    pieces.push(",");
                }
                pieces.extend(["\"", v, "\":{\"kind\":\"", kind, "\",\"b64\":\"", b64, "\"}"]);
            }
            pieces.push("}}");
            let plain = join_wiped(&pieces);
            self.seal_backup(Object::Key, name, plain.as_bytes())
        })();
        self.backup_event(Object::Key, name, "backup", &r);
        r
    }

    /// Restores a key from [`backup_key`](Self::backup_key)'s blob, under the name it was
    /// backed up from, with every version, attribute and its rotation policy. Refused if a
    /// key holds the name, if the backend cannot import, or if this store does not hold
    /// the backup key it was made under ([`Error::DecryptionFailed`]). All or nothing: a
    /// failure part way removes what was restored.
    pub fn restore_key(&self, backup: &[u8]) -> Result<KeyDescription> {
        let mut shown = String::from("-");
        let r = (|| {
            let (name, plain) = self.open_backup(Object::Key, backup)?;
            shown.clone_from(&name);
            let p: KeyPlain = serde_json::from_slice(&plain).map_err(|_| malformed("bad contents"))?;
            let d = KeyDescription::from_json(&p.doc).map_err(|_| malformed("bad key document"))?;
            if p.format != 1 || d.name != name || d.versions.is_empty() {
                return Err(malformed("bad contents"));
            }
            if OWN_KEYS.contains(&name.as_str()) {
                return Err(malformed("the store's own keys are not restored"));
            }
            self.check_free_name(&name)?;
            self.restore_key_versions(&name, &d, &p.material)
        })();
        self.backup_event(Object::Key, &shown, "restore", &r);
        r
    }
}
