//! Audit: one event per operation and lifecycle change, on the `hsmkit::audit` tracing
//! target and, optionally, in a keyed, chained JSON-lines file.
//!
//! Each line of an [`AuditLog`] is a JSON object whose last member is `"mac"`: the
//! HMAC-SHA256 (hex) of the line's bytes before `,"mac":`, under a MAC key derived from a
//! store key (the *audit key*, [`AUDIT_KEY_NAME`] by default; see [`AuditKey`]). Each
//! record also carries `"seq"` (1, 2, ...), `"prev"` (the previous line's MAC; 64 zeros
//! for the first) and `"mac_key"` (the audit key's `name/version`). So a removed, edited,
//! inserted or reordered line breaks the chain, and writing a new valid chain needs the
//! audit key: someone who can only write the file cannot cover their tracks, while
//! [`verify_audit_log`] (given the store) names the first bad line. Removing lines from
//! the *end* leaves a valid shorter chain: keep the head ([`AuditReport::head`]) somewhere
//! else to detect that.
//!
//! Records hold time, key name and version, operation, algorithm and outcome — never
//! data, plaintext or key material.

use crate::error::InvalidReason;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::algorithm::{HashAlg, KeyWrapAlgorithm, SignatureAlgorithm};
use crate::attributes::KeyOp;
use crate::crypto::CryptoProvider;
use crate::error::{Error, Result};
use crate::key::Key;
use crate::lifecycle::to_hex;
use crate::spec::KeyType;

/// The `prev` of the first record.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const MAC_SEP: &str = ",\"mac\":\"";

/// The store key [`crate::Store::audit_key`] uses (and creates on first use: see there).
pub const AUDIT_KEY_NAME: &str = "hsmkit-audit";

/// What the audit key wraps to derive the MAC key: fixed, so every process (and the
/// verifier) derives the same key, and only holders of the audit key can.
const DERIVATION_INPUT: [u8; 32] = *b"hsmkit-audit/1: derive a MAC key";
const DERIVATION_INFO: &[u8] = b"hsmkit-audit/1 hmac-sha256";

/// The MAC key of an audit log, derived from a store key; redacted in `Debug`, wiped on
/// drop.
///
/// Derivation: the audit key transforms a fixed 32-byte string deterministically, and
/// HKDF-SHA256 turns the result into the HMAC key. An AES-256 audit key wraps it with
/// A256KW (RFC 3394: a keyed pseudorandom permutation); an RSA audit key (on backends
/// without AES key wrap) signs it with RS256 (PKCS#1 v1.5 is deterministic, and a
/// signature nobody without the private key can compute is as good a secret). Either
/// way the key never leaves the backend and the result is unpredictable without it.
pub struct AuditKey {
    kid: String,
    mac_key: Zeroizing<[u8; 32]>,
    crypto: &'static dyn CryptoProvider,
}

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl AuditKey {
    /// Derives the MAC key from `key` (AES-256 allowed to `wrapKey`, or RSA allowed to
    /// `sign`).
    pub fn derive(key: &Key) -> Result<Self> {
        let key = key.without_audit_log();
        // A key whose material can leave the backend, or that serves other purposes, would
        // let others compute the MAC key (an exportable key; a KEK anyone may wrap with).
        type Transform = fn(&Key) -> Result<Vec<u8>>;
        let (only, transform): (KeyOp, Transform) = match key.spec().key_type() {
            KeyType::Aes => (KeyOp::WrapKey, |k| k.wrap_key(KeyWrapAlgorithm::A256Kw, &DERIVATION_INPUT)),
            KeyType::Rsa => (KeyOp::Sign, |k| k.sign(SignatureAlgorithm::Rs256, &DERIVATION_INPUT)),
            KeyType::Hmac => (KeyOp::Sign, |k| k.sign(SignatureAlgorithm::Hs256, &DERIVATION_INPUT)),
            // ECDSA signatures are randomised: no stable key can come from one. Ed25519's
            // are stable, but a signature is public by design, not a secret to derive from.
            KeyType::Ec | KeyType::Ed25519 => {
                return Err(Error::invalid(
                    InvalidReason::KeyMismatch,
                    format!(
                        "the audit key '{}' is a {} key; it must be AES-256, RSA or HMAC",
                        key.name(),
                        key.spec().key_type()
                    ),
                ));
            }
        };
        let attributes = &key.info().attributes;
        let extra = attributes.allowed().iter().any(|op| op != only && op != KeyOp::Verify);
        if attributes.exportable || extra {
            return Err(Error::invalid(
                InvalidReason::Parameter,
                format!("the audit key '{}' must be non-exportable and allowed only {only}", key.name()),
            ));
        }
        let secret = Zeroizing::new(transform(&key)?);
        let mut mac_key = Zeroizing::new([0u8; 32]);
        let crypto = key.crypto();
        crypto.hkdf(HashAlg::Sha256, &[], &secret, &[DERIVATION_INFO], mac_key.as_mut_slice())?;
        Ok(AuditKey { kid: key.info().kid(), mac_key, crypto })
    }

    /// The audit key's `name/version`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    fn mac(&self, bytes: &[u8]) -> Result<Vec<u8>> {
        self.crypto.hmac(HashAlg::Sha256, self.mac_key.as_slice(), bytes)
    }

    fn mac_hex(&self, bytes: &[u8]) -> Result<String> {
        Ok(to_hex(&self.mac(bytes)?))
    }

    /// Constant-time check of a hex MAC.
    fn verify(&self, bytes: &[u8], claimed_hex: &str) -> Result<bool> {
        let Some(claimed) = unhex(claimed_hex) else { return Ok(false) };
        Ok(bool::from(self.mac(bytes)?.as_slice().ct_eq(claimed.as_slice())))
    }
}

/// Lowercase hex only, as written: the MAC text is what a saved chain head is compared
/// with, so there must be one way to write it.
fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    (0..32).map(|i| s.get(2 * i..2 * i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect()
}

/// A clock: the store's idea of now (tests and rotation checks inject their own).
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// What the core needs for every audit event: the clock and the optional sink.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub(crate) clock: Clock,
    pub(crate) log: Option<Arc<AuditLog>>,
    /// What the store computes with in host memory: the backend's provider.
    pub(crate) crypto: &'static dyn CryptoProvider,
}

impl Ctx {
    pub(crate) fn new(crypto: &'static dyn CryptoProvider) -> Self {
        Ctx { clock: Arc::new(SystemTime::now), log: None, crypto }
    }
}

impl fmt::Debug for Ctx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("log", &self.log)
            .field("crypto", &self.crypto.name())
            .finish_non_exhaustive()
    }
}

impl Ctx {
    pub(crate) fn now(&self) -> SystemTime {
        (self.clock)()
    }

    /// Emits one audit event: to tracing always, to the log file if there is one.
    pub(crate) fn emit<T>(
        &self,
        key: &str,
        version: Option<u32>,
        op: &str,
        alg: Option<&dyn fmt::Display>,
        r: &Result<T>,
    ) {
        self.emit_object("key", key, version, op, alg, r);
    }

    /// [`emit`](Self::emit) for an object of another kind (`secret`).
    pub(crate) fn emit_object<T>(
        &self,
        object: &str,
        key: &str,
        version: Option<u32>,
        op: &str,
        alg: Option<&dyn fmt::Display>,
        r: &Result<T>,
    ) {
        let outcome = match r {
            Ok(_) => "ok".to_owned(),
            Err(e) => format!("{:?}", e.kind()),
        };
        let alg = alg.map(ToString::to_string);
        tracing::info!(
            target: "hsmkit::audit",
            object,
            key = %key,
            version = version,
            op,
            alg = alg.as_deref().unwrap_or("-"),
            outcome = %outcome,
        );
        if let Some(log) = &self.log {
            let rec = AuditRecord {
                time: self.now(),
                object,
                key,
                version,
                op,
                alg: alg.as_deref(),
                outcome: &outcome,
            };
            if let Err(e) = log.append(&rec) {
                // The operation has happened; losing its record must at least be loud.
                tracing::error!(target: "hsmkit::audit", error = %e, "could not write the audit log");
            }
        }
    }
}

/// One audit record.
#[derive(Clone, Copy, Debug)]
pub struct AuditRecord<'a> {
    /// When.
    pub time: SystemTime,
    /// What kind of object: `key` or `secret`.
    pub object: &'a str,
    /// The key's (or secret's) name.
    pub key: &'a str,
    /// The key version, when one was involved.
    pub version: Option<u32>,
    /// The operation (`sign`, `rotate`, `delete`, ...).
    pub op: &'a str,
    /// The algorithm, for cryptographic operations.
    pub alg: Option<&'a str>,
    /// `ok`, or the [`crate::ErrorKind`] of the failure.
    pub outcome: &'a str,
}

#[derive(Debug)]
struct Tail {
    file: File,
    /// File length after our last append, to notice appends by other processes.
    len: u64,
    seq: u64,
    hash: String,
}

/// A keyed, chained JSON-lines audit file (see the [module](self) docs). Safe to share
/// between threads; several processes may append to the same file (appends take an
/// exclusive file lock and re-read the chain head when another process has written).
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    key: AuditKey,
    tail: Mutex<Tail>,
    sync: bool,
}

fn io_err(what: &str, path: &Path, e: &std::io::Error) -> Error {
    Error::backend("audit", what, format!("{}: {e}", path.display()))
}

/// Splits a line into (authenticated prefix, claimed MAC).
fn split_line(line: &str) -> Option<(&str, &str)> {
    let i = line.rfind(MAC_SEP)?;
    let prefix = line.get(..i)?;
    let rest = line.get(i + MAC_SEP.len()..)?;
    let mac = rest.strip_suffix("\"}")?;
    Some((prefix, mac))
}

/// The (seq, MAC, length) at the end of the file, from its last line. A last line under
/// this log's audit key version must verify (so a planted tail cannot steer the chain);
/// one under another version (another process, before or after a rotation) is taken as
/// it is and checked by [`verify_audit_log`].
fn read_head(file: &mut File, path: &Path, key: &AuditKey) -> Result<(u64, String, u64)> {
    let len = file.seek(SeekFrom::End(0)).map_err(|e| io_err("seek", path, &e))?;
    if len == 0 {
        return Ok((0, GENESIS.to_owned(), 0));
    }
    let start = len.saturating_sub(64 * 1024);
    file.seek(SeekFrom::Start(start)).map_err(|e| io_err("seek", path, &e))?;
    let mut buf = Vec::new();
    file.read_to_end(&mut buf).map_err(|e| io_err("read", path, &e))?;
    let text = String::from_utf8_lossy(&buf);
    let last = text.trim_end_matches('\n').rsplit('\n').next().unwrap_or_default();
    let bad = || {
        Error::backend(
            "audit",
            "open",
            format!(
                "{}: the last line is not an authenticated audit record (torn by a crash, or \
                 tampered with): run `hsmkit audit verify`, then move the file aside",
                path.display()
            ),
        )
    };
    let (prefix, mac) = split_line(last).ok_or_else(bad)?;
    let v: Value = serde_json::from_str(&format!("{prefix}}}")).map_err(|_| bad())?;
    let seq = v.get("seq").and_then(Value::as_u64).ok_or_else(bad)?;
    if v.get("mac_key").and_then(Value::as_str) == Some(key.kid()) && !key.verify(prefix.as_bytes(), mac)? {
        return Err(bad());
    }
    if unhex(mac).is_none() {
        return Err(bad());
    }
    Ok((seq, mac.to_owned(), len))
}

impl AuditLog {
    /// Opens (or creates) an audit file and continues its chain, authenticating new
    /// records under the MAC key derived from `audit_key` (usually
    /// [`crate::Store::audit_key`]; [`crate::Store::with_audit_log_file`] does both).
    pub fn open(path: impl AsRef<Path>, audit_key: &Key) -> Result<Self> {
        let key = AuditKey::derive(audit_key)?;
        let path = path.as_ref().to_path_buf();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| io_err("open", &path, &e))?;
        let (seq, hash, len) = read_head(&mut file, &path, &key)?;
        Ok(AuditLog { path, key, tail: Mutex::new(Tail { file, len, seq, hash }), sync: false })
    }

    /// Makes every append wait for the disk (`fdatasync`): slower, but a record the caller
    /// saw written survives a power cut.
    #[must_use]
    pub fn sync_every_record(mut self, sync: bool) -> Self {
        self.sync = sync;
        self
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record to the chain.
    pub fn append(&self, rec: &AuditRecord<'_>) -> Result<()> {
        let mut tail = self.tail.lock().map_err(|_| Error::backend("audit", "lock", "poisoned"))?;
        let path = &self.path;
        tail.file.lock().map_err(|e| io_err("lock", path, &e))?;
        // Released however this ends (an error or a panic): another process must never wait
        // for a lock nobody holds. flock belongs to the open file, which the clone shares.
        let _unlock = Unlock(tail.file.try_clone().map_err(|e| io_err("dup", path, &e))?);
        (|| {
            let len = tail.file.seek(SeekFrom::End(0)).map_err(|e| io_err("seek", path, &e))?;
            if len != tail.len {
                let (seq, hash, len) = read_head(&mut tail.file, path, &self.key)?;
                (tail.seq, tail.hash, tail.len) = (seq, hash, len);
            }
            let seq = tail.seq.checked_add(1).ok_or_else(|| {
                Error::backend(
                    "audit",
                    "append",
                    format!("{}: the sequence number is exhausted", path.display()),
                )
            })?;
            let body = json!({
                "seq": seq,
                "time": humantime::format_rfc3339_millis(rec.time).to_string(),
                "object": rec.object,
                "key": rec.key,
                "version": rec.version,
                "op": rec.op,
                "alg": rec.alg,
                "outcome": rec.outcome,
                "prev": tail.hash,
                "mac_key": self.key.kid(),
            })
            .to_string();
            let prefix = body.strip_suffix('}').unwrap_or(&body);
            let hash = self.key.mac_hex(prefix.as_bytes())?;
            let line = format!("{prefix}{MAC_SEP}{hash}\"}}\n");
            tail.file.write_all(line.as_bytes()).map_err(|e| io_err("write", path, &e))?;
            if self.sync {
                tail.file.sync_data().map_err(|e| io_err("fdatasync", path, &e))?;
            }
            let written = u64::try_from(line.len()).unwrap_or(u64::MAX);
            (tail.seq, tail.hash, tail.len) = (seq, hash, len.saturating_add(written));
            Ok(())
        })()
    }
}

/// Unlocks the audit file when dropped.
struct Unlock(File);

impl Drop for Unlock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// What [`verify_audit_log`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditReport {
    /// Records that verified, from the start.
    pub records: u64,
    /// The hash of the last good record (the chain head; 64 zeros for an empty log).
    pub head: String,
    /// The first line that breaks the chain, if any.
    pub first_bad: Option<AuditBreak>,
}

/// A line that breaks the audit chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditBreak {
    /// 1-based line number.
    pub line: u64,
    /// What is wrong with it.
    pub reason: String,
}

/// Checks an audit file's chain and MACs, deriving each record's MAC key from the audit
/// key version it names in `keys` (a [`crate::Store`]: reading it needs the store's
/// passphrase or PIN), and reports the first bad line.
pub fn verify_audit_log(path: impl AsRef<Path>, keys: &crate::Store) -> Result<AuditReport> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| io_err("open", path, &e))?;
    verify_audit_lines(BufReader::new(file), keys)
}

/// [`verify_audit_log`] over any reader.
pub fn verify_audit_lines(reader: impl BufRead, keys: &crate::Store) -> Result<AuditReport> {
    let mut report = AuditReport { records: 0, head: GENESIS.to_owned(), first_bad: None };
    let mut derived: Vec<AuditKey> = Vec::new();
    for (i, line) in reader.split(b'\n').enumerate() {
        let line = line.map_err(|e| Error::backend("audit", "read", e.to_string()))?;
        let n = u64::try_from(i).unwrap_or(u64::MAX).saturating_add(1);
        match check_line(&line, report.records + 1, &report.head, keys, &mut derived)? {
            Ok(mac) => {
                report.records += 1;
                report.head = mac;
            }
            Err(reason) => {
                report.first_bad = Some(AuditBreak { line: n, reason });
                return Ok(report);
            }
        }
    }
    Ok(report)
}

/// `Ok(Ok(mac))` for a good line, `Ok(Err(reason))` for a bad one, `Err` when the store
/// could not be asked (a backend failure is not a verdict on the log).
fn check_line(
    line: &[u8],
    seq: u64,
    prev: &str,
    keys: &crate::Store,
    derived: &mut Vec<AuditKey>,
) -> Result<std::result::Result<String, String>> {
    let bad = |reason: &str| Ok(Err(reason.to_owned()));
    let Ok(line) = std::str::from_utf8(line) else { return bad("not UTF-8") };
    let Some((prefix, mac)) = split_line(line) else {
        return bad("no MAC (truncated, unkeyed or not a record)");
    };
    let Ok(v) = serde_json::from_str::<Value>(&format!("{prefix}}}")) else {
        return bad("not a JSON record");
    };
    let Some(kid) = v.get("mac_key").and_then(Value::as_str) else { return bad("no mac_key") };
    let key = match derived.iter().position(|k| k.kid == kid) {
        Some(i) => derived.get(i),
        None => {
            let Some((name, version)) = kid.rsplit_once('/').and_then(|(n, v)| Some((n, v.parse().ok()?)))
            else {
                return bad("mac_key is not NAME/VERSION");
            };
            // Only the audit key vouches for records: any other store key (a KEK that others
            // may wrap with, an imported key whose bytes someone knows) would let them forge.
            if name != AUDIT_KEY_NAME {
                return Ok(Err(format!("mac_key {kid} is not the store's audit key ({AUDIT_KEY_NAME})")));
            }
            let key = match keys.get_key_version(name, version) {
                Ok(k) => k,
                Err(e) if e.kind() == crate::ErrorKind::NotFound => {
                    return Ok(Err(format!("the audit key {kid} is not in this store")));
                }
                Err(e) => return Err(e),
            };
            match AuditKey::derive(&key) {
                Ok(k) => derived.push(k),
                // The key exists but cannot vouch (disabled, expired, the wrong kind): the
                // records under it are not verified, and the report says why.
                Err(e) if e.kind() != crate::ErrorKind::Backend => {
                    return Ok(Err(format!("the audit key {kid} cannot verify: {e}")));
                }
                Err(e) => return Err(e),
            }
            derived.last()
        }
    };
    let Some(key) = key else { return bad("no audit key") };
    if !key.verify(prefix.as_bytes(), mac)? {
        return bad("MAC mismatch: the record was changed, or written without the audit key");
    }
    if v.get("prev").and_then(Value::as_str) != Some(prev) {
        return bad("prev does not match the previous record: a record was removed, inserted or moved");
    }
    if v.get("seq").and_then(Value::as_u64) != Some(seq) {
        return Ok(Err(format!("sequence number is not {seq}")));
    }
    Ok(Ok(mac.to_owned()))
}
