//! sign, verify, encrypt, decrypt, wrap, unwrap, audit verify.

use hsmkit::InvalidReason;
use std::path::Path;

use hsmkit::audit::verify_audit_log;
use hsmkit::{
    EncryptionAlgorithm, Error, ErrorKind, Key, KeyWrapAlgorithm, Result, SignInput, SignatureAlgorithm,
    SignatureFormat,
};
use serde_json::json;

use crate::Outcome;
use crate::backend;
use crate::cli::{CryptArgs, Encoding, Global, SignArgs, VerifyArgs};
use crate::io::{b64, print_json, read_all, write_all};

/// The signature encoding (see [`SignatureFormat`]: the core says what `der` means for
/// each algorithm).
fn format(e: Encoding) -> SignatureFormat {
    match e {
        Encoding::Der => SignatureFormat::Der,
        Encoding::Raw => SignatureFormat::Raw,
    }
}

/// Writes a result: to `--out` or stdout; with `--json` and no `--out`, as base64url in
/// a JSON document instead of raw bytes.
fn emit(g: &Global, out: Option<&Path>, key: &Key, what: &str, alg: &str, bytes: &[u8]) -> Result<()> {
    if g.json {
        if out.is_some() {
            write_all(out, bytes)?;
        }
        let mut doc = json!({"kid": key.info().kid(), "alg": alg, "length": bytes.len()});
        if let Some(obj) = doc.as_object_mut() {
            match out {
                Some(p) => obj.insert("written".into(), json!(p)),
                None => obj.insert(what.into(), json!(b64(bytes))),
            };
        }
        print_json(&doc)?;
        Ok(())
    } else {
        write_all(out, bytes)
    }
}

pub(crate) fn sign(g: &Global, a: &SignArgs) -> Result<Outcome> {
    let alg: SignatureAlgorithm = a.alg.parse()?;
    let store = backend::open(g)?;
    let key = store.get_key(&a.name)?;
    let data = read_all(a.io.input.as_deref())?;
    let input = if a.digest { SignInput::Digest(&data) } else { SignInput::Message(&data) };
    let sig = key.sign_with(alg, input, format(a.encoding))?;
    emit(g, a.io.output.as_deref(), &key, "signature", alg.name(), &sig)?;
    Ok(Outcome::Ok)
}

pub(crate) fn verify(g: &Global, a: &VerifyArgs) -> Result<Outcome> {
    let alg: SignatureAlgorithm = a.alg.parse()?;
    let store = backend::open(g)?;
    let key = backend::key_at(&store, &a.name, a.version)?;
    let sig = read_all(Some(&a.signature))?;
    let data = read_all(a.input.as_deref())?;
    let input = if a.digest { SignInput::Digest(&data) } else { SignInput::Message(&data) };
    let valid = match key.verify_with(alg, input, &sig, format(a.encoding)) {
        Ok(()) => true,
        Err(e) if e.kind() == ErrorKind::VerificationFailed => false,
        Err(e) => return Err(e),
    };
    if g.json {
        print_json(&json!({"kid": key.info().kid(), "alg": alg.name(), "valid": valid}))?;
    } else {
        outln!("{}", if valid { "signature valid" } else { "signature INVALID" })?;
    }
    Ok(if valid { Outcome::Ok } else { Outcome::Invalid })
}

pub(crate) fn encrypt(g: &Global, a: &CryptArgs) -> Result<Outcome> {
    let alg: EncryptionAlgorithm = a.alg.parse()?;
    let store = backend::open(g)?;
    let key = backend::key_at(&store, &a.name, a.version)?;
    let data = read_all(a.io.input.as_deref())?;
    let ct = key.encrypt_with_label(alg, &data, a.label.as_deref().unwrap_or_default().as_bytes())?;
    emit(g, a.io.output.as_deref(), &key, "ciphertext", alg.name(), &ct)?;
    Ok(Outcome::Ok)
}

pub(crate) fn decrypt(g: &Global, a: &CryptArgs) -> Result<Outcome> {
    let alg: EncryptionAlgorithm = a.alg.parse()?;
    let store = backend::open(g)?;
    let key = backend::key_at(&store, &a.name, a.version)?;
    let data = read_all(a.io.input.as_deref())?;
    let pt = key.decrypt_with_label(alg, &data, a.label.as_deref().unwrap_or_default().as_bytes())?;
    emit(g, a.io.output.as_deref(), &key, "plaintext", alg.name(), &pt)?;
    Ok(Outcome::Ok)
}

pub(crate) fn wrap(g: &Global, a: &CryptArgs) -> Result<Outcome> {
    let alg: KeyWrapAlgorithm = a.alg.parse()?;
    no_label(a)?;
    let store = backend::open(g)?;
    let key = backend::key_at(&store, &a.name, a.version)?;
    let data = read_all(a.io.input.as_deref())?;
    let wrapped = key.wrap_key(alg, &data)?;
    emit(g, a.io.output.as_deref(), &key, "wrapped", alg.name(), &wrapped)?;
    Ok(Outcome::Ok)
}

pub(crate) fn unwrap(g: &Global, a: &CryptArgs) -> Result<Outcome> {
    let alg: KeyWrapAlgorithm = a.alg.parse()?;
    no_label(a)?;
    let store = backend::open(g)?;
    let key = backend::key_at(&store, &a.name, a.version)?;
    let data = read_all(a.io.input.as_deref())?;
    let unwrapped = key.unwrap_key(alg, &data)?;
    emit(g, a.io.output.as_deref(), &key, "key", alg.name(), &unwrapped)?;
    Ok(Outcome::Ok)
}

fn no_label(a: &CryptArgs) -> Result<()> {
    if a.label.is_some() {
        return Err(Error::invalid(InvalidReason::Parameter, "--label is for encrypt/decrypt"));
    }
    Ok(())
}

pub(crate) fn audit_verify(g: &Global, file: Option<&Path>) -> Result<Outcome> {
    let path = file.or(g.audit_log.as_deref()).ok_or_else(|| {
        Error::invalid(
            InvalidReason::Parameter,
            "which audit log? give FILE, --audit-log or HSMKIT_AUDIT_LOG",
        )
    })?;
    // The MAC keys come from the store's audit key; opening the store must not append.
    let store = backend::open_unaudited(g, backend::Missing::Refuse)?;
    let report = verify_audit_log(path, &store)?;
    let intact = report.first_bad.is_none();
    if g.json {
        print_json(&json!({
            "file": path,
            "records": report.records,
            "head": report.head,
            "intact": intact,
            "first_bad": report.first_bad.as_ref().map(|b| json!({"line": b.line, "reason": b.reason})),
        }))?;
    } else if let Some(b) = &report.first_bad {
        outln!(
            "{}: BROKEN at line {}: {} ({} good records before it)",
            path.display(),
            b.line,
            b.reason,
            report.records
        )?;
    } else {
        outln!("{}: {} records, chain intact, head {}", path.display(), report.records, report.head)?;
    }
    Ok(if intact { Outcome::Ok } else { Outcome::Invalid })
}
