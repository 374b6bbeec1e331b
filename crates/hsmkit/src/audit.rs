//! Audit: one event per operation and lifecycle change, on the `hsmkit::audit` tracing
//! target and, optionally, in a hash-chained JSON-lines file.
//!
//! Each line of an [`AuditLog`] is a JSON object whose last member is
//! `"hash"`: the SHA-256 (hex) of the line's bytes before `,"hash":`. Each record also
//! carries `"seq"` (1, 2, ...) and `"prev"`, the previous line's hash (64 zeros for the
//! first), so that a removed, edited, inserted or reordered line breaks the chain and
//! [`verify_audit_log`] names the first bad line. Removing lines from the *end* leaves a
//! valid shorter chain: keep the head hash ([`AuditReport::head`]) somewhere else to
//! detect that.
//!
//! Records hold time, key name and version, operation, algorithm and outcome — never
//! data, plaintext or key material.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The `prev` of the first record.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const HASH_SEP: &str = ",\"hash\":\"";

/// A clock: the store's idea of now (tests and rotation checks inject their own).
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// What the core needs for every audit event: the clock and the optional sink.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub(crate) clock: Clock,
    pub(crate) log: Option<Arc<AuditLog>>,
}

impl Default for Ctx {
    fn default() -> Self {
        Ctx { clock: Arc::new(SystemTime::now), log: None }
    }
}

impl fmt::Debug for Ctx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx").field("log", &self.log).finish_non_exhaustive()
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
        let outcome = match r {
            Ok(_) => "ok".to_owned(),
            Err(e) => format!("{:?}", e.kind()),
        };
        let alg = alg.map(ToString::to_string);
        tracing::info!(
            target: "hsmkit::audit",
            key = %key,
            version = version,
            op,
            alg = alg.as_deref().unwrap_or("-"),
            outcome = %outcome,
        );
        if let Some(log) = &self.log {
            let rec =
                AuditRecord { time: self.now(), key, version, op, alg: alg.as_deref(), outcome: &outcome };
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
    /// The key name.
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

/// A hash-chained JSON-lines audit file. Safe to share between threads; several
/// processes may append to the same file (appends take an exclusive file lock and
/// re-read the chain head when another process has written).
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    tail: Mutex<Tail>,
    sync: bool,
}

fn io_err(what: &str, path: &Path, e: &std::io::Error) -> Error {
    Error::backend("audit", what, format!("{}: {e}", path.display()))
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Splits a line into (hashed prefix, claimed hash).
fn split_line(line: &str) -> Option<(&str, &str)> {
    let i = line.rfind(HASH_SEP)?;
    let prefix = line.get(..i)?;
    let rest = line.get(i + HASH_SEP.len()..)?;
    let hash = rest.strip_suffix("\"}")?;
    Some((prefix, hash))
}

/// The (seq, hash) at the end of the file, read from its last line.
fn read_head(file: &mut File, path: &Path) -> Result<(u64, String, u64)> {
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
        Error::backend("audit", "open", format!("{}: the last line is not an audit record", path.display()))
    };
    let (prefix, hash) = split_line(last).ok_or_else(bad)?;
    let v: Value = serde_json::from_str(&format!("{prefix}}}")).map_err(|_| bad())?;
    let seq = v.get("seq").and_then(Value::as_u64).ok_or_else(bad)?;
    Ok((seq, hash.to_owned(), len))
}

impl AuditLog {
    /// Opens (or creates) an audit file and continues its chain.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| io_err("open", &path, &e))?;
        let (seq, hash, len) = read_head(&mut file, &path)?;
        Ok(AuditLog { path, tail: Mutex::new(Tail { file, len, seq, hash }), sync: false })
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
        let r = (|| {
            let len = tail.file.seek(SeekFrom::End(0)).map_err(|e| io_err("seek", path, &e))?;
            if len != tail.len {
                let (seq, hash, len) = read_head(&mut tail.file, path)?;
                (tail.seq, tail.hash, tail.len) = (seq, hash, len);
            }
            let seq = tail.seq + 1;
            let body = json!({
                "seq": seq,
                "time": humantime::format_rfc3339_millis(rec.time).to_string(),
                "key": rec.key,
                "version": rec.version,
                "op": rec.op,
                "alg": rec.alg,
                "outcome": rec.outcome,
                "prev": tail.hash,
            })
            .to_string();
            let prefix = body.strip_suffix('}').unwrap_or(&body);
            let hash = sha256_hex(prefix.as_bytes());
            let line = format!("{prefix}{HASH_SEP}{hash}\"}}\n");
            tail.file.write_all(line.as_bytes()).map_err(|e| io_err("write", path, &e))?;
            if self.sync {
                tail.file.sync_data().map_err(|e| io_err("fdatasync", path, &e))?;
            }
            let written = u64::try_from(line.len()).unwrap_or(u64::MAX);
            (tail.seq, tail.hash, tail.len) = (seq, hash, len.saturating_add(written));
            Ok(())
        })();
        let _ = tail.file.unlock();
        r
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

/// Checks an audit file's chain and reports the first bad line.
pub fn verify_audit_log(path: impl AsRef<Path>) -> Result<AuditReport> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| io_err("open", path, &e))?;
    verify_audit_lines(BufReader::new(file))
}

/// [`verify_audit_log`] over any reader.
pub fn verify_audit_lines(reader: impl BufRead) -> Result<AuditReport> {
    let mut report = AuditReport { records: 0, head: GENESIS.to_owned(), first_bad: None };
    for (i, line) in reader.split(b'\n').enumerate() {
        let line = line.map_err(|e| Error::backend("audit", "read", e.to_string()))?;
        let n = u64::try_from(i).unwrap_or(u64::MAX).saturating_add(1);
        if let Err(reason) = check_line(&line, report.records + 1, &report.head) {
            report.first_bad = Some(AuditBreak { line: n, reason });
            return Ok(report);
        }
        report.records += 1;
        report.head = split_line(std::str::from_utf8(&line).unwrap_or_default())
            .map(|(_, h)| h.to_owned())
            .unwrap_or_default();
    }
    Ok(report)
}

fn check_line(line: &[u8], seq: u64, prev: &str) -> std::result::Result<(), String> {
    let line = std::str::from_utf8(line).map_err(|_| "not UTF-8".to_owned())?;
    let (prefix, hash) = split_line(line).ok_or("no hash (truncated or not a record)")?;
    if sha256_hex(prefix.as_bytes()) != hash {
        return Err("hash mismatch: the record was changed".into());
    }
    let v: Value =
        serde_json::from_str(&format!("{prefix}}}")).map_err(|_| "not a JSON record".to_owned())?;
    if v.get("prev").and_then(Value::as_str) != Some(prev) {
        return Err("prev does not match the previous record: a record was removed, inserted or moved".into());
    }
    if v.get("seq").and_then(Value::as_u64) != Some(seq) {
        return Err(format!("sequence number is not {seq}"));
    }
    Ok(())
}
