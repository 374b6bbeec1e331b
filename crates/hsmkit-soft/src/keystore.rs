//! The encrypted on-disk keystore: a directory, one encrypted file per key.
//!
//! ```text
//! <dir>/hsmkit-keystore.json   header: KDF parameters and salt, sealed store settings
//! <dir>/lock                   exclusive file lock for writers
//! <dir>/keys/<name>.key        one key: {"format","name","nonce","ct"}
//! ```
//!
//! The store key (32 bytes) comes from a passphrase through Argon2id (parameters and salt
//! in the header) or from a key file. Every key file is one AES-256-GCM ciphertext of the
//! key's whole document — state, every version's metadata and material — with the key
//! name in the associated data, so metadata is authenticated and a file renamed to
//! another key's name does not open. The header's settings are sealed the same way,
//! which is also how a wrong passphrase is told apart from a right one.
//!
//! Writers take the lock, read, write a temporary file, `fsync` it, rename it over the
//! old file and `fsync` the directory: a crash at any point leaves the old file or the
//! new one. Readers need no lock. Temporary files left by a crash are removed when the
//! store is next opened.

use hsmkit::InvalidReason;
use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64ct::{Base64, Encoding};
use hsmkit::{Error, KeyDescription, KeyMaterial, Result, SettingsEdit, StoreSettings, Zeroizing};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::storage::{DocEdit, KeyDoc, Storage, VersionRecord, poisoned};
use hsmkit::metadata::{RecordEdit, RecordKind};

const HEADER: &str = "hsmkit-keystore.json";
const FORMAT: &str = "hsmkit-keystore";
const KEY_FORMAT: &str = "hsmkit-key";
const KEY_EXT: &str = ".key";
const TMP_PREFIX: &str = ".tmp-";

/// Where a record kind lives: its directory under the keystore, its file extension, and
/// the format name its associated data starts with (so a secret file renamed to another
/// name, or into another kind's directory, fails authentication).
fn record_place(kind: RecordKind) -> (&'static str, &'static str, &'static str) {
    match kind {
        RecordKind::Secret => ("secrets", ".secret", "hsmkit-secret"),
        RecordKind::Certificate => ("certificates", ".certificate", "hsmkit-certificate"),
    }
}

/// How the store key is obtained.
#[derive(Clone)]
pub enum StoreKey {
    /// A passphrase, stretched with Argon2id.
    Passphrase(Zeroizing<String>),
    /// A file holding 32 random bytes, raw or as 64 hex digits.
    KeyFile(PathBuf),
    /// The 32-byte store key itself.
    Key(Zeroizing<[u8; 32]>),
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreKey::Passphrase(_) => f.write_str("StoreKey::Passphrase([REDACTED])"),
            StoreKey::KeyFile(p) => f.debug_tuple("StoreKey::KeyFile").field(p).finish(),
            StoreKey::Key(_) => f.write_str("StoreKey::Key([REDACTED])"),
        }
    }
}

impl StoreKey {
    /// A passphrase.
    pub fn passphrase(p: &str) -> Self {
        StoreKey::Passphrase(Zeroizing::new(p.to_owned()))
    }

    /// A key file.
    pub fn key_file(path: impl Into<PathBuf>) -> Self {
        StoreKey::KeyFile(path.into())
    }

    /// Writes a new random key file (64 hex digits, mode 0600); fails if it exists.
    pub fn generate_key_file(path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let mut key = Zeroizing::new([0u8; 32]);
        random(key.as_mut_slice())?;
        let hex = Zeroizing::new(key.iter().map(|b| format!("{b:02x}")).collect::<String>() + "\n");
        let mut f = private_file(OpenOptions::new().write(true).create_new(true))
            .open(path)
            .map_err(|e| io_err("create", path, &e))?;
        f.write_all(hex.as_bytes()).and_then(|()| f.sync_all()).map_err(|e| io_err("write", path, &e))
    }

    fn is_passphrase(&self) -> bool {
        matches!(self, StoreKey::Passphrase(_))
    }

    fn raw(&self) -> Result<Zeroizing<[u8; 32]>> {
        match self {
            StoreKey::Key(k) => Ok(k.clone()),
            StoreKey::KeyFile(path) => {
                let bytes = Zeroizing::new(fs::read(path).map_err(|e| io_err("read key file", path, &e))?);
                let mut key = Zeroizing::new([0u8; 32]);
                let text = std::str::from_utf8(&bytes).map(str::trim).unwrap_or_default();
                if bytes.len() == 32 {
                    key.copy_from_slice(&bytes);
                } else if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
                    for (i, out) in key.iter_mut().enumerate() {
                        let pair = text.get(2 * i..2 * i + 2).unwrap_or_default();
                        *out = u8::from_str_radix(pair, 16).map_err(|_| bad_key_file(path))?;
                    }
                } else {
                    return Err(bad_key_file(path));
                }
                Ok(key)
            }
            StoreKey::Passphrase(_) => {
                Err(Error::invalid(InvalidReason::Parameter, "a passphrase needs key derivation"))
            }
        }
    }
}

fn bad_key_file(path: &Path) -> Error {
    Error::invalid(
        InvalidReason::Malformed,
        format!("key file {} must hold 32 bytes, raw or as 64 hex digits", path.display()),
    )
}

/// Argon2id parameters for passphrase-protected keystores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB (default 65536: 64 MiB).
    pub memory_kib: u32,
    /// Passes (default 3).
    pub iterations: u32,
    /// Lanes (default 1).
    pub parallelism: u32,
}

impl KdfParams {
    /// Most memory accepted: 4 GiB.
    pub const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
    /// Most passes accepted.
    pub const MAX_ITERATIONS: u32 = 64;
    /// Most lanes accepted.
    pub const MAX_PARALLELISM: u32 = 16;

    /// Whether these parameters are within hsmkit's bounds. The parameters are read from
    /// the store header and run before anything in it is authenticated (the derived key is
    /// what authenticates it), so an edited header must not be able to ask for 8 GiB or
    /// 2^32 passes: beyond the maxima above (or below Argon2's minima: 1 pass, 1 lane,
    /// 8 KiB per lane) it is refused without running the KDF.
    fn check(&self) -> std::result::Result<(), String> {
        let KdfParams { memory_kib: m, iterations: t, parallelism: p } = *self;
        if !(1..=Self::MAX_PARALLELISM).contains(&p) {
            return Err(format!("{p} lanes (1 to {})", Self::MAX_PARALLELISM));
        }
        if !(1..=Self::MAX_ITERATIONS).contains(&t) {
            return Err(format!("{t} passes (1 to {})", Self::MAX_ITERATIONS));
        }
        let least = p.saturating_mul(8);
        if !(least..=Self::MAX_MEMORY_KIB).contains(&m) {
            return Err(format!("{m} KiB of memory ({least} to {} KiB)", Self::MAX_MEMORY_KIB));
        }
        Ok(())
    }
}

impl KdfParams {
    /// For a new store: refused before anything is written (a key file needs no KDF).
    fn check_for(&self, key: &StoreKey) -> Result<()> {
        if !key.is_passphrase() {
            return Ok(());
        }
        self.check()
            .map_err(|why| Error::invalid(InvalidReason::Parameter, format!("Argon2id parameters: {why}")))
    }
}

/// Salt lengths accepted in a store header (hsmkit writes 16 bytes).
const SALT_LEN: std::ops::RangeInclusive<usize> = 8..=64;

impl Default for KdfParams {
    /// RFC 9106's second recommended setting (64 MiB, 3 passes), with one lane.
    fn default() -> Self {
        KdfParams { memory_kib: 64 * 1024, iterations: 3, parallelism: 1 }
    }
}

fn io_err(what: &str, path: &Path, e: &io::Error) -> Error {
    Error::backend(crate::KIND, what.to_owned(), format!("{}: {e}", path.display()))
}

fn corrupt(path: &Path, what: &str) -> Error {
    Error::backend(crate::KIND, "keystore", format!("{}: {what}", path.display()))
}

fn random(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| {
        Error::backend(crate::KIND, "getrandom", format!("OS random number generator failed: {e}"))
    })
}

fn private_file(o: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(o, 0o600);
    o
}

fn b64(bytes: &[u8]) -> String {
    Base64::encode_string(bytes)
}

fn unb64(v: Option<&Value>, path: &Path, what: &str) -> Result<Vec<u8>> {
    v.and_then(Value::as_str)
        .and_then(|s| Base64::decode_vec(s).ok())
        .ok_or_else(|| corrupt(path, &format!("bad {what}")))
}

fn derive(key: &StoreKey, kdf: &Value, path: &Path) -> Result<Zeroizing<[u8; 32]>> {
    match kdf.get("alg").and_then(Value::as_str) {
        Some("argon2id") => {
            let StoreKey::Passphrase(pass) = key else {
                return Err(Error::Authentication("this keystore is unlocked by a passphrase".into()));
            };
            let n = |k: &str| {
                kdf.get(k)
                    .and_then(Value::as_u64)
                    .and_then(|v| u32::try_from(v).ok())
                    .ok_or_else(|| corrupt(path, "bad KDF parameters"))
            };
            let asked = KdfParams { memory_kib: n("m_kib")?, iterations: n("t")?, parallelism: n("p")? };
            asked.check().map_err(|why| corrupt(path, &format!("KDF parameters out of bounds: {why}")))?;
            let salt = unb64(kdf.get("salt"), path, "salt")?;
            if !SALT_LEN.contains(&salt.len()) {
                return Err(corrupt(path, &format!("KDF salt of {} bytes (8 to 64)", salt.len())));
            }
            let params = argon2::Params::new(asked.memory_kib, asked.iterations, asked.parallelism, Some(32))
                .map_err(|e| Error::invalid(InvalidReason::Parameter, format!("Argon2 parameters: {e}")))?;
            let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
            let mut out = Zeroizing::new([0u8; 32]);
            argon
                .hash_password_into(pass.as_bytes(), &salt, out.as_mut_slice())
                .map_err(|e| Error::invalid(InvalidReason::Parameter, format!("Argon2: {e}")))?;
            Ok(out)
        }
        Some("raw") => {
            if key.is_passphrase() {
                return Err(Error::Authentication(
                    "this keystore is unlocked by a key file, not a passphrase".into(),
                ));
            }
            key.raw()
        }
        _ => Err(corrupt(path, "unknown key derivation")),
    }
}

/// Holds the writers' lock: the in-process mutex and the cross-process file lock.
struct WriteLock<'a>(MutexGuard<'a, File>);

impl Drop for WriteLock<'_> {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// Key documents in an encrypted directory (see the module docs for the layout).
pub struct FileStorage {
    dir: PathBuf,
    keys: PathBuf,
    cipher: Arc<Aes256Gcm>,
    /// The KDF section of the header, bound into the settings' associated data.
    kdf: String,
    lock: Mutex<File>,
}

impl fmt::Debug for FileStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStorage").field("dir", &self.dir).finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct PlainMaterial {
    uid: String,
    kind: String,
    b64: Zeroizing<String>,
}

#[derive(Deserialize)]
struct Plain {
    doc: Value,
    material: BTreeMap<String, PlainMaterial>,
}

impl FileStorage {
    /// Creates a keystore in `dir` (made if missing; it must not hold a keystore yet).
    pub fn create(dir: impl AsRef<Path>, key: &StoreKey, params: KdfParams) -> Result<Self> {
        let dir = dir.as_ref();
        params.check_for(key)?;
        Self::locked(dir, |lock| {
            if dir.join(HEADER).exists() {
                return Err(Error::AlreadyExists { name: format!("keystore {}", dir.display()) });
            }
            Self::init(dir, key, params, lock)
        })
    }

    /// Whether `dir` holds a keystore (its header file).
    pub fn exists(dir: impl AsRef<Path>) -> bool {
        dir.as_ref().join(HEADER).exists()
    }

    /// Opens the keystore in `dir`. A wrong passphrase or key file is
    /// [`Error::Authentication`].
    pub fn open(dir: impl AsRef<Path>, key: &StoreKey) -> Result<Self> {
        let dir = dir.as_ref();
        if !dir.join(HEADER).exists() {
            return Err(Error::NotFound { what: format!("keystore {}", dir.display()) });
        }
        Self::locked(dir, |lock| Self::load(dir, key, lock))
    }

    /// Opens the keystore in `dir`, creating it with `params` if there is none.
    pub fn open_or_create(dir: impl AsRef<Path>, key: &StoreKey, params: KdfParams) -> Result<Self> {
        let dir = dir.as_ref();
        params.check_for(key)?;
        Self::locked(dir, |lock| {
            if dir.join(HEADER).exists() {
                Self::load(dir, key, lock)
            } else {
                Self::init(dir, key, params, lock)
            }
        })
    }

    /// Runs `f` with the lock file, locked. (On failure the file is closed, which
    /// releases the lock.)
    fn locked(dir: &Path, f: impl FnOnce(File) -> Result<Self>) -> Result<Self> {
        let lock = Self::prepare(dir)?;
        lock.lock().map_err(|e| io_err("lock", dir, &e))?;
        let s = f(lock)?;
        if let Ok(g) = s.lock.lock() {
            let _ = g.unlock();
        }
        Ok(s)
    }

    /// The keystore directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Makes the directories and opens the lock file.
    fn prepare(dir: &Path) -> Result<File> {
        make_private_dir(&dir.join("keys"))?;
        let path = dir.join("lock");
        private_file(OpenOptions::new().read(true).write(true).create(true).truncate(false))
            .open(&path)
            .map_err(|e| io_err("open", &path, &e))
    }

    fn build(dir: &Path, store_key: &Zeroizing<[u8; 32]>, kdf: &Value, lock: File) -> Result<Self> {
        let cipher = Aes256Gcm::new_from_slice(store_key.as_slice())
            .map_err(|_| Error::backend(crate::KIND, "aes-gcm", "bad key length"))?;
        Ok(FileStorage {
            dir: dir.to_path_buf(),
            keys: dir.join("keys"),
            cipher: Arc::new(cipher),
            kdf: kdf.to_string(),
            lock: Mutex::new(lock),
        })
    }

    fn init(dir: &Path, key: &StoreKey, params: KdfParams, lock: File) -> Result<Self> {
        let kdf = if key.is_passphrase() {
            let mut salt = [0u8; 16];
            random(&mut salt)?;
            json!({
                "alg": "argon2id",
                "m_kib": params.memory_kib,
                "t": params.iterations,
                "p": params.parallelism,
                "salt": b64(&salt),
            })
        } else {
            json!({ "alg": "raw" })
        };
        let store_key = derive(key, &kdf, dir)?;
        let s = Self::build(dir, &store_key, &kdf, lock)?;
        s.write_header(&StoreSettings::default())?;
        Ok(s)
    }

    fn load(dir: &Path, key: &StoreKey, lock: File) -> Result<Self> {
        let header = Self::read_header(dir)?;
        if header.get("format").and_then(Value::as_str) != Some(FORMAT)
            || header.get("version") != Some(&json!(1))
        {
            return Err(corrupt(&dir.join(HEADER), "not an hsmkit keystore of a known version"));
        }
        let kdf = header.get("kdf").cloned().unwrap_or(Value::Null);
        let store_key = derive(key, &kdf, dir)?;
        let s = Self::build(dir, &store_key, &kdf, lock)?;
        // Proves the key: the sealed settings open only under the right store key.
        s.settings()?;
        s.remove_temporaries();
        Ok(s)
    }

    fn read_header(dir: &Path) -> Result<Value> {
        let path = dir.join(HEADER);
        let bytes = fs::read(&path).map_err(|e| io_err("read", &path, &e))?;
        serde_json::from_slice(&bytes).map_err(|_| corrupt(&path, "header is not JSON"))
    }

    fn write_lock(&self) -> Result<WriteLock<'_>> {
        let g = self.lock.lock().map_err(|_| poisoned())?;
        g.lock().map_err(|e| io_err("lock", &self.dir, &e))?;
        Ok(WriteLock(g))
    }

    /// Removes temporary files of writers that died (called with the write lock held,
    /// so no live writer owns one).
    fn remove_temporaries(&self) {
        let records = RecordKind::ALL.iter().map(|k| self.dir.join(record_place(*k).0));
        for dir in [self.dir.clone(), self.keys.clone()].into_iter().chain(records) {
            let Ok(entries) = fs::read_dir(&dir) else { continue };
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
    }

    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Value> {
        let mut nonce = [0u8; 12];
        random(&mut nonce)?;
        let ct = self
            .cipher
            .encrypt(&Nonce::from(nonce), Payload { msg: plaintext, aad })
            .map_err(|_| Error::backend(crate::KIND, "aes-gcm", "encryption failed"))?;
        Ok(json!({ "nonce": b64(&nonce), "ct": b64(&ct) }))
    }

    fn unseal(&self, aad: &[u8], sealed: &Value, path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let nonce: [u8; 12] =
            unb64(sealed.get("nonce"), path, "nonce")?.try_into().map_err(|_| corrupt(path, "bad nonce"))?;
        let ct = unb64(sealed.get("ct"), path, "ciphertext")?;
        Ok(self.cipher.decrypt(&Nonce::from(nonce), Payload { msg: &ct, aad }).ok().map(Zeroizing::new))
    }

    fn settings_aad(&self) -> Vec<u8> {
        format!("{FORMAT}/1 settings\0{}", self.kdf).into_bytes()
    }

    fn write_header(&self, settings: &StoreSettings) -> Result<()> {
        let sealed = self.seal(&self.settings_aad(), settings.to_json().to_string().as_bytes())?;
        let kdf: Value = serde_json::from_str(&self.kdf).unwrap_or(Value::Null);
        let header = json!({ "format": FORMAT, "version": 1, "kdf": kdf, "settings": sealed });
        write_atomic(&self.dir, HEADER, format!("{header:#}\n").as_bytes())
    }

    fn key_path(&self, name: &str) -> PathBuf {
        self.keys.join(format!("{name}{KEY_EXT}"))
    }

    fn key_aad(name: &str) -> Vec<u8> {
        format!("{KEY_FORMAT}/1\0{name}").into_bytes()
    }

    fn write_doc(&self, doc: &KeyDoc) -> Result<()> {
        let meta = doc.describe().to_json().to_string();
        // Material as base64 in one pre-sized zeroizing buffer: no reallocation leaves
        // an unzeroized copy of a key behind.
        let mut parts = Vec::with_capacity(doc.versions.len());
        for (v, rec) in &doc.versions {
            let (kind, der) = encode_material(&rec.material)?;
            let uid: String = rec.uid.iter().map(|b| format!("{b:02x}")).collect();
            parts.push((v, kind, uid, Zeroizing::new(b64(&der))));
        }
        let cap = meta.len() + 64 + parts.iter().map(|p| p.3.len() + p.2.len() + 64).sum::<usize>();
        let mut pt = Zeroizing::new(String::with_capacity(cap));
        pt.push_str("{\"doc\":");
        pt.push_str(&meta);
        pt.push_str(",\"material\":{");
        for (i, (v, kind, uid, b)) in parts.iter().enumerate() {
            if i > 0 {
                pt.push(',');
            }
            for piece in [
                "\"",
                &v.to_string(),
                "\":{\"uid\":\"",
                uid,
                "\",\"kind\":\"",
                kind,
                "\",\"b64\":\"",
                b,
                "\"}",
            ] {
                pt.push_str(piece);
            }
        }
        pt.push_str("}}");
        let mut file = self.seal(&Self::key_aad(&doc.name), pt.as_bytes())?;
        if let Some(m) = file.as_object_mut() {
            m.insert("format".into(), json!(KEY_FORMAT));
            m.insert("version".into(), json!(1));
            m.insert("name".into(), json!(doc.name));
        }
        write_atomic(&self.keys, &format!("{}{KEY_EXT}", doc.name), file.to_string().as_bytes())
    }

    fn record_aad(kind: RecordKind, name: &str) -> Vec<u8> {
        format!("{}/1\0{name}", record_place(kind).2).into_bytes()
    }

    fn read_record_file(&self, kind: RecordKind, name: &str) -> Result<Option<Value>> {
        let (dir, ext, format) = record_place(kind);
        let path = self.dir.join(dir).join(format!("{name}{ext}"));
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("read", &path, &e)),
        };
        let outer: Value = serde_json::from_slice(&bytes).map_err(|_| corrupt(&path, "not a record file"))?;
        if outer.get("format").and_then(Value::as_str) != Some(format)
            || outer.get("name").and_then(Value::as_str) != Some(name)
        {
            return Err(corrupt(&path, "not a record of this kind and name"));
        }
        let pt = self
            .unseal(&Self::record_aad(kind, name), &outer, &path)?
            .ok_or_else(|| corrupt(&path, "failed authentication: altered, or not from this keystore"))?;
        serde_json::from_slice(&pt).map(Some).map_err(|_| corrupt(&path, "bad contents"))
    }

    fn write_record_file(&self, kind: RecordKind, name: &str, doc: &Value) -> Result<()> {
        let (dir, ext, format) = record_place(kind);
        let dir = self.dir.join(dir);
        make_private_dir(&dir)?;
        let pt = Zeroizing::new(doc.to_string());
        let mut file = self.seal(&Self::record_aad(kind, name), pt.as_bytes())?;
        if let Some(m) = file.as_object_mut() {
            m.insert("format".into(), json!(format));
            m.insert("version".into(), json!(1));
            m.insert("name".into(), json!(name));
        }
        write_atomic(&dir, &format!("{name}{ext}"), file.to_string().as_bytes())
    }

    fn read_doc(&self, name: &str) -> Result<Option<KeyDoc>> {
        let path = self.key_path(name);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("read", &path, &e)),
        };
        let outer: Value = serde_json::from_slice(&bytes).map_err(|_| corrupt(&path, "not a key file"))?;
        if outer.get("format").and_then(Value::as_str) != Some(KEY_FORMAT)
            || outer.get("name").and_then(Value::as_str) != Some(name)
        {
            return Err(corrupt(&path, "not a key file of this name"));
        }
        let pt = self
            .unseal(&Self::key_aad(name), &outer, &path)?
            .ok_or_else(|| corrupt(&path, "failed authentication: altered, or not from this keystore"))?;
        let plain: Plain = serde_json::from_slice(&pt).map_err(|_| corrupt(&path, "bad contents"))?;
        let desc = KeyDescription::from_json(&plain.doc)?;
        if desc.name != name {
            return Err(corrupt(&path, "holds another key"));
        }
        let mut versions = BTreeMap::new();
        for info in desc.versions {
            let m = plain
                .material
                .get(&info.version.to_string())
                .ok_or_else(|| corrupt(&path, "a version without material"))?;
            let der = Zeroizing::new(Base64::decode_vec(&m.b64).map_err(|_| corrupt(&path, "bad material"))?);
            let material = decode_material(&m.kind, &der).map_err(|_| corrupt(&path, "bad material"))?;
            let mut uid = [0u8; 16];
            for (i, out) in uid.iter_mut().enumerate() {
                *out = m
                    .uid
                    .get(2 * i..2 * i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| corrupt(&path, "bad uid"))?;
            }
            versions.insert(info.version, VersionRecord { info, material: Arc::new(material), uid });
        }
        Ok(Some(KeyDoc { name: desc.name, state: desc.state, versions }))
    }
}

fn encode_material(m: &KeyMaterial) -> Result<(&'static str, Zeroizing<Vec<u8>>)> {
    Ok(match m {
        KeyMaterial::Aes(k) => ("aes", k.clone()),
        KeyMaterial::Public(p) => ("spki", Zeroizing::new(p.to_spki_der()?)),
        KeyMaterial::Hmac(k) => ("hmac", k.clone()),
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
        _ => Err(Error::invalid(InvalidReason::Malformed, "unknown material kind")),
    }
}

/// Makes `dir` (and its parents) readable by the owner only, if missing.
fn make_private_dir(dir: &Path) -> Result<()> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir).map_err(|e| io_err("mkdir", dir, &e))
}

/// Writes `dir/name` so that a crash leaves the old file or the new one: temporary file,
/// `fsync`, rename, `fsync` of the directory.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let mut r = [0u8; 8];
    random(&mut r)?;
    let tmp = dir.join(format!("{TMP_PREFIX}{}-{}", std::process::id(), u64::from_le_bytes(r)));
    let write = || -> io::Result<()> {
        let mut f = private_file(OpenOptions::new().write(true).create_new(true)).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, dir.join(name))?;
        File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err("write", &dir.join(name), &e)
    })
}

fn remove_durably(dir: &Path, name: &str) -> Result<()> {
    let path = dir.join(name);
    fs::remove_file(&path).and_then(|()| File::open(dir)?.sync_all()).map_err(|e| io_err("remove", &path, &e))
}

impl Storage for FileStorage {
    fn kind(&self) -> &'static str {
        "keystore"
    }

    fn read(&self, name: &str) -> Result<Option<KeyDoc>> {
        self.read_doc(name)
    }

    fn names(&self) -> Result<Vec<String>> {
        let entries = fs::read_dir(&self.keys).map_err(|e| io_err("list", &self.keys, &e))?;
        let mut names = Vec::new();
        for e in entries {
            let e = e.map_err(|e| io_err("list", &self.keys, &e))?;
            let file = e.file_name();
            let file = file.to_string_lossy();
            if let Some(name) = file.strip_suffix(KEY_EXT)
                && hsmkit::validate_name(name).is_ok()
            {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    fn modify(&self, name: &str, edit: DocEdit<'_>) -> Result<()> {
        let _g = self.write_lock()?;
        let current = self.read_doc(name)?;
        let existed = current.is_some();
        match edit(current)? {
            Some(doc) => self.write_doc(&doc),
            None if existed => remove_durably(&self.keys, &format!("{name}{KEY_EXT}")),
            None => Ok(()),
        }
    }

    fn settings(&self) -> Result<StoreSettings> {
        let path = self.dir.join(HEADER);
        let header = Self::read_header(&self.dir)?;
        let sealed = header.get("settings").ok_or_else(|| corrupt(&path, "no settings"))?;
        let pt = self.unseal(&self.settings_aad(), sealed, &path)?.ok_or_else(|| {
            Error::Authentication(
                "wrong passphrase or key file for this keystore (or its header was altered)".into(),
            )
        })?;
        let v: Value = serde_json::from_slice(&pt).map_err(|_| corrupt(&path, "bad settings"))?;
        StoreSettings::from_json(&v)
    }

    fn modify_settings(&self, edit: SettingsEdit<'_>) -> Result<StoreSettings> {
        let _g = self.write_lock()?;
        let mut s = self.settings()?;
        edit(&mut s)?;
        self.write_header(&s)?;
        Ok(s)
    }

    fn read_record(&self, kind: RecordKind, name: &str) -> Result<Option<Value>> {
        self.read_record_file(kind, name)
    }

    fn record_names(&self, kind: RecordKind) -> Result<Vec<String>> {
        let (dir, ext, _) = record_place(kind);
        let dir = self.dir.join(dir);
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            // No record of this kind was ever written.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("list", &dir, &e)),
        };
        let mut names = Vec::new();
        for e in entries {
            let e = e.map_err(|e| io_err("list", &dir, &e))?;
            let file = e.file_name();
            let file = file.to_string_lossy();
            if let Some(name) = file.strip_suffix(ext)
                && hsmkit::validate_name(name).is_ok()
            {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    fn modify_record(&self, kind: RecordKind, name: &str, edit: RecordEdit<'_>) -> Result<()> {
        let _g = self.write_lock()?;
        let current = self.read_record_file(kind, name)?;
        let existed = current.is_some();
        match edit(current)? {
            Some(doc) => self.write_record_file(kind, name, &doc),
            None if existed => {
                let (dir, ext, _) = record_place(kind);
                remove_durably(&self.dir.join(dir), &format!("{name}{ext}"))
            }
            None => Ok(()),
        }
    }
}
