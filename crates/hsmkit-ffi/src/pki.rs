//! Signed artifacts from keys: X.509 certificates and PKCS#10 requests (`hsmkit::x509`),
//! and JWS / JWT / JWK Set (`hsmkit::jose`).
//!
//! Certificates and requests are handles (`hsmkit_cert`, `hsmkit_csr`): a signature is
//! made once, when the handle is, and its encodings (DER, PEM) are then read with the
//! two-call convention at their exact length. Tokens are written straight to the caller's
//! buffer: the sizing call (`buf` NULL) signs nothing and gives an upper bound (the
//! token's parts are known but for the signature, whose longest length the key gives);
//! the second call signs and gives the exact length.

use std::ffi::c_char;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hsmkit::jose::{self, JwsOptions, JwtSignOptions, JwtValidation};
use hsmkit::report::rfc3339;
use hsmkit::x509::{
    self, Certificate, CertificateParams, CertificateRequest, ExtendedKeyUsage, IssueParams, KeyUsage,
    SubjectAltName,
};
use hsmkit::{CryptoProvider, Key, SignatureAlgorithm, SignatureFormat, Store};
use serde_json::{Map, Value, json};

use crate::ffi::{
    Castable, OutBuf, OutHandle, bytes, cstr, free_handle, handle, opt_cstr, try_ref, try_ref_out,
};
use crate::key::hsmkit_key;
use crate::result::{Fail, guard, hsmkit_result};
use crate::store::hsmkit_store;

// ------------------------------------------------------------------- shared helpers

/// The most strings a C array argument (alternative names, audiences, key names) holds.
const MAX_LIST: usize = 1024;

/// `count` C strings at `p` (NULL allowed with `count` 0).
///
/// # Safety
/// `p` is NULL or points to `count` C strings that stay valid for the call.
pub(crate) unsafe fn str_list<'a>(
    p: *const *const c_char,
    count: usize,
    arg: &str,
) -> Result<Vec<&'a str>, Fail> {
    if p.is_null() {
        return if count == 0 { Ok(Vec::new()) } else { Err(Fail::null(arg)) };
    }
    if count > MAX_LIST {
        return Err(Fail::invalid(format!("{arg}: more than {MAX_LIST} entries")));
    }
    // SAFETY: non-NULL, a small count (checked above), and the caller guarantees the array.
    let items = unsafe { std::slice::from_raw_parts(p, count) };
    let what = format!("{arg}[i]");
    items
        .iter()
        // SAFETY: each entry is a C string (the caller's contract).
        .map(|s| unsafe { cstr(*s, &what) })
        .collect()
}

/// A comma-separated list of names (`"digitalSignature,keyEncipherment"`); NULL or `""`
/// is empty.
pub(crate) fn comma_list<T: FromStr<Err = hsmkit::Error>>(s: Option<&str>) -> Result<Vec<T>, Fail> {
    let s = s.unwrap_or("").trim();
    if s.is_empty() {
        return Ok(Vec::new());
    }
    s.split(',').map(|n| n.trim().parse::<T>().map_err(Fail::from)).collect()
}

/// Subject alternative names from C strings (`"dns:host"`, `"ip:10.0.0.1"`, ...).
pub(crate) fn sans(names: &[&str]) -> Result<Vec<SubjectAltName>, Fail> {
    names.iter().map(|s| s.parse::<SubjectAltName>().map_err(Fail::from)).collect()
}

/// A Unix time from C where 0 means "not given".
fn unix_or_none(t: i64, what: &str) -> Result<Option<SystemTime>, Fail> {
    if t == 0 {
        return Ok(None);
    }
    let secs = u64::try_from(t).map_err(|_| Fail::invalid(format!("{what}: {t} is not a time")))?;
    UNIX_EPOCH
        .checked_add(Duration::from_secs(secs))
        .map(Some)
        .ok_or_else(|| Fail::invalid(format!("{what}: out of range")))
}

/// `"PEM"` when the bytes start (after white space) with a PEM boundary, as text.
fn pem_text<'a>(data: &'a [u8], arg: &str) -> Result<Option<&'a str>, Fail> {
    if data.trim_ascii_start().starts_with(b"-----BEGIN") {
        std::str::from_utf8(data)
            .map(Some)
            .map_err(|_| Fail::invalid(format!("{arg}: PEM that is not UTF-8")))
    } else {
        Ok(None)
    }
}

/// One certificate from PEM or DER.
fn certificate_from(data: &[u8], arg: &str) -> Result<Certificate, Fail> {
    Ok(match pem_text(data, arg)? {
        Some(pem) => Certificate::from_pem(pem)?,
        None => Certificate::from_der(data)?,
    })
}

/// A chain (the leaf first) from PEM (one or more blocks) or DER (one certificate).
pub(crate) fn chain_from(data: &[u8], arg: &str) -> Result<Vec<Certificate>, Fail> {
    Ok(match pem_text(data, arg)? {
        Some(pem) => Certificate::from_pem_chain(pem)?,
        None => vec![Certificate::from_der(data)?],
    })
}

/// A JSON object given as C text (`what` names it in errors).
fn json_object(text: &str, what: &str) -> Result<Map<String, Value>, Fail> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) | Value::Array(_)) => {
            Err(Fail::invalid(format!("{what}: expected a JSON object")))
        }
        Err(e) => Err(Fail::invalid(format!("{what}: not JSON: {e}"))),
    }
}

/// Algorithm names, comma-separated (`"ES256,RS256"`); NULL: any (`None`).
fn algorithms(s: Option<&str>) -> Result<Option<Vec<SignatureAlgorithm>>, Fail> {
    match s {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => {
            Err(Fail::invalid("algorithms: empty (NULL accepts any that fits)"))
        }
        Some(s) => comma_list::<SignatureAlgorithm>(Some(s)).map(Some),
    }
}

/// `hsmkit_cert_export`, `hsmkit_csr_export`, `hsmkit_store_get_certificate` format: DER
/// (binary, no NUL).
pub const HSMKIT_CERT_DER: u32 = 0;
/// Format: PEM text (one block).
pub const HSMKIT_CERT_PEM: u32 = 1;
/// `hsmkit_store_get_certificate` format: PEM of the leaf, then its issuers.
pub const HSMKIT_CERT_PEM_CHAIN: u32 = 2;

// ----------------------------------------------------------------------- handles

/// An X.509 certificate (parsed, immutable). Thread-safe; independent of the store or key
/// it came from, whose crypto engine checks its signatures.
pub struct hsmkit_cert {
    cert: Certificate,
    crypto: &'static dyn CryptoProvider,
}

impl Castable for hsmkit_cert {
    type RustType = hsmkit_cert;
    const ARG: &'static str = "cert";
    fn rust(&self) -> &hsmkit_cert {
        self
    }
}

/// A PKCS#10 certificate request (parsed, immutable). Thread-safe.
pub struct hsmkit_csr {
    pub(crate) csr: CertificateRequest,
    pub(crate) crypto: &'static dyn CryptoProvider,
}

impl Castable for hsmkit_csr {
    type RustType = hsmkit_csr;
    const ARG: &'static str = "csr";
    fn rust(&self) -> &hsmkit_csr {
        self
    }
}

/// `hsmkit_x509_params` and `hsmkit_issue_params` flag: a CA certificate (basic
/// constraints `cA`).
pub const HSMKIT_X509_CA: u32 = 1;
/// `hsmkit_x509_params` and `hsmkit_issue_params` flag: `path_len` holds the CA's path
/// length constraint (without it, none).
pub const HSMKIT_X509_PATH_LEN: u32 = 2;

/// What a request or a self-signed certificate says about its subject. Zero-initialised
/// fields take the defaults.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct hsmkit_x509_params {
    /// The subject: RFC 4514 (`"CN=host,O=Example"`) or OpenSSL's slash form
    /// (`"/O=Example/CN=host"`); NULL or `""` for none (then alternative names are needed).
    pub subject: *const c_char,
    /// Subject alternative names: `"dns:HOST"`, `"ip:ADDRESS"`, `"email:ADDRESS"`,
    /// `"uri:URI"`; NULL with `san_count` 0 for none.
    pub sans: *const *const c_char,
    /// How many strings `sans` holds.
    pub san_count: usize,
    /// Key usage, comma-separated (`"digitalSignature,keyEncipherment"`); NULL or `""`
    /// for the default (`digitalSignature`, and `keyEncipherment` for RSA; a CA's
    /// `keyCertSign,cRLSign,digitalSignature`).
    pub key_usage: *const c_char,
    /// Extended key usage, comma-separated (`"serverAuth,clientAuth"`); NULL or `""`: none.
    pub extended_key_usage: *const c_char,
    /// `HSMKIT_X509_*`.
    pub flags: u32,
    /// The path length constraint (0 to 255), with `HSMKIT_X509_PATH_LEN` and
    /// `HSMKIT_X509_CA`.
    pub path_len: u32,
    /// Start of validity, Unix seconds; 0: now. Not part of a request.
    pub not_before: i64,
    /// Days of validity; 0: 365. Not part of a request.
    pub validity_days: u32,
    /// The signature algorithm (`"ES256"`, `"PS256"`, ...); NULL: the key's default
    /// (`RS256` for RSA, the `ES*` of an EC key's curve, `EdDSA`).
    pub signature_algorithm: *const c_char,
}

/// What the CA decides when issuing for a request (the subject, alternative names and
/// usages are the request's). Zero-initialised fields take the defaults; a NULL
/// `hsmkit_issue_params *` is all defaults.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct hsmkit_issue_params {
    /// `HSMKIT_X509_*`: `HSMKIT_X509_CA` issues a CA certificate.
    pub flags: u32,
    /// The new CA's path length constraint, with `HSMKIT_X509_PATH_LEN`; without it, one
    /// less than the issuing CA's if that has one.
    pub path_len: u32,
    /// Start of validity, Unix seconds; 0: now.
    pub not_before: i64,
    /// Days of validity; 0: 365. It ends no later than the CA certificate.
    pub validity_days: u32,
    /// The signature algorithm; NULL: the CA key's default.
    pub signature_algorithm: *const c_char,
}

/// Flags, path length and validity shared by both parameter structs.
fn ca_path_len(flags: u32, path_len: u32) -> Result<(bool, Option<u8>), Fail> {
    if flags & !(HSMKIT_X509_CA | HSMKIT_X509_PATH_LEN) != 0 {
        return Err(Fail::invalid(format!("unknown x509 flags {flags:#x}")));
    }
    let ca = flags & HSMKIT_X509_CA != 0;
    let path_len = if flags & HSMKIT_X509_PATH_LEN == 0 {
        None
    } else if !ca {
        return Err(Fail::invalid("a path length constraint is for CA certificates (HSMKIT_X509_CA)"));
    } else {
        Some(
            u8::try_from(path_len)
                .map_err(|_| Fail::invalid(format!("path_len {path_len}: from 0 to 255")))?,
        )
    };
    Ok((ca, path_len))
}

fn validity(days: u32) -> Duration {
    Duration::from_secs(u64::from(if days == 0 { 365 } else { days }).saturating_mul(86_400))
}

/// # Safety
/// `p`'s pointers are NULL or as its fields document.
unsafe fn x509_params(p: &hsmkit_x509_params) -> Result<CertificateParams, Fail> {
    // SAFETY: the caller's contract (each field).
    let (subject, names, ku, eku, alg) = unsafe {
        (
            opt_cstr(p.subject, "params.subject")?,
            str_list(p.sans, p.san_count, "params.sans")?,
            opt_cstr(p.key_usage, "params.key_usage")?,
            opt_cstr(p.extended_key_usage, "params.extended_key_usage")?,
            opt_cstr(p.signature_algorithm, "params.signature_algorithm")?,
        )
    };
    let mut params = CertificateParams::new(subject.unwrap_or(""));
    params.subject_alt_names = sans(&names)?;
    params.key_usage = comma_list::<KeyUsage>(ku)?;
    params.extended_key_usage = comma_list::<ExtendedKeyUsage>(eku)?;
    (params.ca, params.path_len) = ca_path_len(p.flags, p.path_len)?;
    params.not_before = unix_or_none(p.not_before, "params.not_before")?;
    params.validity = validity(p.validity_days);
    params.signature_algorithm = alg.map(str::parse::<SignatureAlgorithm>).transpose()?;
    Ok(params)
}

/// # Safety
/// `p` is NULL or an `hsmkit_issue_params` whose `signature_algorithm` is NULL or a C string.
unsafe fn issue_params(p: *const hsmkit_issue_params) -> Result<IssueParams, Fail> {
    let mut params = IssueParams::default();
    // SAFETY: the caller's contract.
    let Some(p) = (unsafe { p.as_ref() }) else { return Ok(params) };
    // SAFETY: as above.
    let alg = unsafe { opt_cstr(p.signature_algorithm, "params.signature_algorithm") }?;
    (params.ca, params.path_len) = ca_path_len(p.flags, p.path_len)?;
    params.not_before = unix_or_none(p.not_before, "params.not_before")?;
    params.validity = validity(p.validity_days);
    params.signature_algorithm = alg.map(str::parse::<SignatureAlgorithm>).transpose()?;
    Ok(params)
}

// ------------------------------------------------------------------ X.509 calls

/// A PKCS#10 certificate request for `key`'s public key, signed by it, asking for
/// `params`' subject, alternative names, usages and (with `HSMKIT_X509_CA`) basic
/// constraints; validity is the CA's choice and not in a request. Read it with
/// `hsmkit_csr_export`.
///
/// # Safety
/// `key` is live; `params` points to an `hsmkit_x509_params` whose pointers are as its
/// fields document; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_key_create_csr(
    key: *const hsmkit_key,
    params: *const hsmkit_x509_params,
    out: *mut *mut hsmkit_csr,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let k = unsafe { try_ref(key) }?;
        // SAFETY: as above.
        let p = unsafe { handle(params, "params") }?;
        // SAFETY: as above.
        let out = unsafe { OutHandle::new(out) }?;
        // SAFETY: as above.
        let params = unsafe { x509_params(p) }?;
        out.put(hsmkit_csr { csr: x509::create_csr(k, &params)?, crypto: k.crypto() });
        Ok(())
    })
}

/// A certificate for `key`, signed by itself (a root CA with `HSMKIT_X509_CA`), with a
/// subject key identifier, basic constraints and key usage, and what `params` asks for.
///
/// # Safety
/// As `hsmkit_key_create_csr`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_key_self_signed_certificate(
    key: *const hsmkit_key,
    params: *const hsmkit_x509_params,
    out: *mut *mut hsmkit_cert,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let k = unsafe { try_ref(key) }?;
        // SAFETY: as above.
        let p = unsafe { handle(params, "params") }?;
        // SAFETY: as above.
        let out = unsafe { OutHandle::new(out) }?;
        // SAFETY: as above.
        let params = unsafe { x509_params(p) }?;
        out.put(hsmkit_cert { cert: x509::self_signed(k, &params)?, crypto: k.crypto() });
        Ok(())
    })
}

/// Issues a certificate for `csr` with `ca_key`, the key of `ca_cert`, after checking
/// the request's signature (a bad one is `HSMKIT_ERR_INVALID_INPUT`), that `ca_key` is
/// `ca_cert`'s key (`HSMKIT_ERR_INVALID_INPUT`, reason `"key-mismatch"`) and that
/// `ca_cert` is a CA. The certificate has a random serial, the request's subject,
/// alternative names and usages, and the validity `params` gives, ending no later than the
/// CA's. `params` may be NULL (defaults).
///
/// # Safety
/// `ca_key`, `ca_cert`, `csr` are live; `params` is NULL or an `hsmkit_issue_params`;
/// `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_key_issue_certificate(
    ca_key: *const hsmkit_key,
    ca_cert: *const hsmkit_cert,
    csr: *const hsmkit_csr,
    params: *const hsmkit_issue_params,
    out: *mut *mut hsmkit_cert,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let k = unsafe { handle(ca_key, "ca_key") }?;
        // SAFETY: as above.
        let ca = unsafe { handle(ca_cert, "ca_cert") }?;
        // SAFETY: as above.
        let req = unsafe { try_ref(csr) }?;
        // SAFETY: as above.
        let params = unsafe { issue_params(params) }?;
        // SAFETY: as above.
        let out = unsafe { OutHandle::new(out) }?;
        let cert = x509::issue(&k.key, &ca.cert, &req.csr, &params)?;
        out.put(hsmkit_cert { cert, crypto: k.key.crypto() });
        Ok(())
    })
}

/// Parses a certificate: one PEM `CERTIFICATE` block, or DER (strict). The store's
/// crypto engine is the one this handle's fingerprint and signature checks use.
///
/// # Safety
/// `store` is live; `data` has `len` bytes; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_cert_parse(
    store: *const hsmkit_store,
    data: *const u8,
    len: usize,
    out: *mut *mut hsmkit_cert,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let s = unsafe { try_ref(store) }?;
        // SAFETY: as above.
        let data = unsafe { bytes(data, len, "data") }?;
        // SAFETY: as above.
        let out = unsafe { OutHandle::new(out) }?;
        out.put(hsmkit_cert { cert: certificate_from(data, "data")?, crypto: s.crypto() });
        Ok(())
    })
}

/// Frees a certificate. NULL is a no-op.
///
/// # Safety
/// `cert` is NULL or a certificate handle not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_cert_free(cert: *mut hsmkit_cert) {
    // SAFETY: the caller's contract.
    unsafe { free_handle(cert) }
}

/// The certificate as `HSMKIT_CERT_DER` or `HSMKIT_CERT_PEM` (exact length).
///
/// # Safety
/// `cert` is live; `buf`/`cap`/`written` as in the conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_cert_export(
    cert: *const hsmkit_cert,
    format: u32,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (c, out) = unsafe { try_ref_out(cert, buf, cap, written) }?;
        match format {
            HSMKIT_CERT_DER => out.put(c.cert.to_der()),
            HSMKIT_CERT_PEM => out.put_text(&c.cert.to_pem()?),
            f => Err(Fail::invalid(format!("unknown certificate format {f} (HSMKIT_CERT_DER or _PEM)"))),
        }
    })
}

/// What the certificate says, as JSON (NUL-terminated): `subject`, `issuer`, `serial`
/// (hex), `not_before`, `expires` (RFC 3339), `subject_alt_names` (`"dns:..."`, ...),
/// `key_usage` (names, or null when unrestricted), `ca`, `path_len` (or null),
/// `thumbprint_sha256` (hex of the DER).
///
/// # Safety
/// `cert` is live; `buf`/`cap`/`written` as in the conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_cert_info(
    cert: *const hsmkit_cert,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (c, out) = unsafe { try_ref_out(cert, buf, cap, written) }?;
        let cert = &c.cert;
        let (not_before, expires) = cert.validity();
        let (ca, path_len) = cert.basic_constraints()?;
        out.put_json(&json!({
            "subject": cert.subject(),
            "issuer": cert.issuer(),
            "serial": cert.serial_hex(),
            "not_before": rfc3339(not_before),
            "expires": rfc3339(expires),
            "subject_alt_names": cert.subject_alt_names()?.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "key_usage": cert.key_usage()?.map(|u| u.iter().map(|k| k.name()).collect::<Vec<_>>()),
            "ca": ca,
            "path_len": path_len,
            "thumbprint_sha256": cert.sha256_fingerprint(c.crypto),
        }))
    })
}

/// Checks that `issuer` signed `cert`: the names chain and the signature verifies with
/// the issuer's public key: `HSMKIT_OK` or `HSMKIT_ERR_VERIFICATION_FAILED`. (Validity
/// periods, constraints and revocation are a path validator's business.)
///
/// # Safety
/// `cert` and `issuer` are live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_cert_verify_issued_by(
    cert: *const hsmkit_cert,
    issuer: *const hsmkit_cert,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let c = unsafe { try_ref(cert) }?;
        // SAFETY: as above.
        let i = unsafe { handle(issuer, "issuer") }?;
        c.cert.verify_issued_by(&i.cert, c.crypto)?;
        Ok(())
    })
}

/// Parses a certificate request: PEM (`CERTIFICATE REQUEST`) or DER. Its signature is
/// not checked here (`hsmkit_csr_verify`; issuing checks it).
///
/// # Safety
/// `store` is live; `data` has `len` bytes; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_csr_parse(
    store: *const hsmkit_store,
    data: *const u8,
    len: usize,
    out: *mut *mut hsmkit_csr,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let s = unsafe { try_ref(store) }?;
        // SAFETY: as above.
        let data = unsafe { bytes(data, len, "data") }?;
        // SAFETY: as above.
        let out = unsafe { OutHandle::new(out) }?;
        let csr = match pem_text(data, "data")? {
            Some(pem) => CertificateRequest::from_pem(pem)?,
            None => CertificateRequest::from_der(data)?,
        };
        out.put(hsmkit_csr { csr, crypto: s.crypto() });
        Ok(())
    })
}

/// Frees a certificate request. NULL is a no-op.
///
/// # Safety
/// `csr` is NULL or a request handle not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_csr_free(csr: *mut hsmkit_csr) {
    // SAFETY: the caller's contract.
    unsafe { free_handle(csr) }
}

/// The request as `HSMKIT_CERT_DER` or `HSMKIT_CERT_PEM` (exact length).
///
/// # Safety
/// `csr` is live; `buf`/`cap`/`written` as in the conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_csr_export(
    csr: *const hsmkit_csr,
    format: u32,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (c, out) = unsafe { try_ref_out(csr, buf, cap, written) }?;
        match format {
            HSMKIT_CERT_DER => out.put(c.csr.to_der()),
            HSMKIT_CERT_PEM => out.put_text(&c.csr.to_pem()?),
            f => Err(Fail::invalid(format!("unknown request format {f} (HSMKIT_CERT_DER or _PEM)"))),
        }
    })
}

/// What the request asks for, as JSON (NUL-terminated): `subject`, `subject_alt_names`,
/// `public_key` (SPKI PEM).
///
/// # Safety
/// `csr` is live; `buf`/`cap`/`written` as in the conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_csr_info(
    csr: *const hsmkit_csr,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (c, out) = unsafe { try_ref_out(csr, buf, cap, written) }?;
        out.put_json(&json!({
            "subject": c.csr.subject(),
            "subject_alt_names": c.csr.subject_alt_names()?.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "public_key": c.csr.public_key()?.to_pem()?,
        }))
    })
}

/// Checks that the request is signed by its own key (proof of possession): `HSMKIT_OK`,
/// or `HSMKIT_ERR_INVALID_INPUT` when it is not.
///
/// # Safety
/// `csr` is live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_csr_verify(csr: *const hsmkit_csr) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let c = unsafe { try_ref(csr) }?;
        c.csr.verify(c.crypto)?;
        Ok(())
    })
}

// ------------------------------------------------------------------------- JOSE

/// The unpadded base64url length of `n` bytes.
fn b64_len(n: usize) -> Option<usize> {
    let full = (n / 3).checked_mul(4)?;
    full.checked_add(match n % 3 {
        0 => 0,
        1 => 2,
        _ => 3,
    })
}

/// The longest compact JWS `key` makes with `alg` over this protected header (without
/// `alg` and `kid`, which are added here as the signer adds them) and a payload of
/// `payload_len` bytes.
fn jws_bound(
    key: &Key,
    alg: SignatureAlgorithm,
    header: &Map<String, Value>,
    payload_len: usize,
) -> Result<usize, Fail> {
    let sig = key.max_signature_len(alg, SignatureFormat::Raw)?;
    let mut h = header.clone();
    h.insert("alg".into(), alg.name().into());
    h.insert("kid".into(), key.info().kid().into());
    let header_len = serde_json::to_vec(&h).map_err(|e| Fail::invalid(format!("header: {e}")))?.len();
    [b64_len(header_len), b64_len(payload_len), b64_len(sig), Some(2)]
        .into_iter()
        .try_fold(0usize, |n, part| n.checked_add(part?))
        .and_then(|n| n.checked_add(1)) // the NUL
        .ok_or_else(|| Fail::invalid("the token would be too long"))
}

/// Signs `payload` (`len` bytes) into a compact JWS (RFC 7515) with `alg` (`"ES256"`,
/// `"RS256"`, `"PS256"`, `"EdDSA"`, `"HS256"`, ...). The protected header is the members
/// of `header_json` (a JSON object, or NULL) plus `alg` and `kid` (`NAME/VERSION`), which
/// hsmkit sets (the header may not hold them, nor `crit` or `b64`). The token is text,
/// NUL-terminated; the sizing call (`buf` NULL) signs nothing and gives an upper bound.
///
/// # Safety
/// `key` is live; `alg` is a C string; `header_json` is NULL or a C string; `payload` has
/// `len` bytes; `buf`/`cap`/`written` as in the conventions.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn hsmkit_key_jws_sign(
    key: *const hsmkit_key,
    alg: *const c_char,
    header_json: *const c_char,
    payload: *const u8,
    len: usize,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let k = unsafe { try_ref(key) }?;
        // SAFETY: as above.
        let alg: SignatureAlgorithm = unsafe { cstr(alg, "alg") }?.parse()?;
        // SAFETY: as above.
        let header = unsafe { opt_cstr(header_json, "header_json") }?
            .map(|h| json_object(h, "header_json"))
            .transpose()?;
        // SAFETY: as above.
        let payload = unsafe { bytes(payload, len, "payload") }?;
        // SAFETY: as above.
        let out = unsafe { OutBuf::new(buf, cap, written) }?;
        if out.sizing() {
            return out.report(jws_bound(k, alg, &header.unwrap_or_default(), payload.len())?);
        }
        out.put_text(&jose::jws_sign(k, alg, header.as_ref(), payload)?)
    })
}

/// `hsmkit_key_jwt_sign` flag: no `iat` claim (give your own in the claims, or none).
pub const HSMKIT_JWT_NO_IAT: u32 = 1;

/// Signs a JWT (RFC 7519): the claims `claims_json` (a JSON object) plus `exp` = now +
/// `expires_in_secs` (0: no `exp`), `nbf` = `not_before` (Unix seconds; 0: no `nbf`) and
/// `iat` = now (unless `HSMKIT_JWT_NO_IAT`), as a compact JWS whose header has `typ`
/// `JWT` (unless `header_json` sets another), `alg` and `kid`. A claim given both in the
/// claims and by an argument is `HSMKIT_ERR_INVALID_INPUT`. Now is the store's clock. The
/// token is text, NUL-terminated; the sizing call (`buf` NULL) signs nothing and gives an
/// upper bound.
///
/// # Safety
/// `key` is live; `alg`, `claims_json` are C strings; `header_json` is NULL or a C
/// string; `buf`/`cap`/`written` as in the conventions.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn hsmkit_key_jwt_sign(
    key: *const hsmkit_key,
    alg: *const c_char,
    claims_json: *const c_char,
    header_json: *const c_char,
    expires_in_secs: u64,
    not_before: i64,
    flags: u32,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let k = unsafe { try_ref(key) }?;
        // SAFETY: as above.
        let alg: SignatureAlgorithm = unsafe { cstr(alg, "alg") }?.parse()?;
        // SAFETY: as above.
        let claims = json_object(unsafe { cstr(claims_json, "claims_json") }?, "claims_json")?;
        // SAFETY: as above.
        let header = unsafe { opt_cstr(header_json, "header_json") }?
            .map(|h| json_object(h, "header_json"))
            .transpose()?;
        // SAFETY: as above.
        let out = unsafe { OutBuf::new(buf, cap, written) }?;
        if flags & !HSMKIT_JWT_NO_IAT != 0 {
            return Err(Fail::invalid(format!("unknown JWT flags {flags:#x}")));
        }
        let mut options = JwtSignOptions::new().issued_at(flags & HSMKIT_JWT_NO_IAT == 0);
        if expires_in_secs > 0 {
            options = options.expires_in(Duration::from_secs(expires_in_secs));
        }
        if let Some(t) = unix_or_none(not_before, "not_before")? {
            options = options.not_before(t);
        }
        options.header = header.unwrap_or_default();
        if out.sizing() {
            // The claims with every time claim the options add, each at its longest.
            let mut c = claims;
            let longest = Value::from(u64::MAX);
            let added = [
                ("exp", options.expires_in.is_some()),
                ("nbf", options.not_before.is_some()),
                ("iat", options.issued_at),
            ];
            for (name, _) in added.iter().filter(|(_, on)| *on) {
                c.insert((*name).into(), longest.clone());
            }
            let claims_len =
                serde_json::to_vec(&c).map_err(|e| Fail::invalid(format!("claims_json: {e}")))?.len();
            let mut h = options.header;
            h.entry("typ").or_insert_with(|| "JWT".into());
            return out.report(jws_bound(k, alg, &h, claims_len)?);
        }
        out.put_text(&jose::jwt_sign(k, alg, &claims, &options)?)
    })
}

/// `hsmkit_jwt_validation` flag: `exp` is not required.
pub const HSMKIT_JWT_EXP_OPTIONAL: u32 = 1;
/// `hsmkit_jwt_validation` flag: an `iat` in the future is accepted.
pub const HSMKIT_JWT_ALLOW_FUTURE_IAT: u32 = 2;

/// What verifying a JWT checks besides the signature. A NULL `hsmkit_jwt_validation *`
/// is the library's defaults: any algorithm that fits the key, `exp` required, `iat` in
/// the future refused, 60 seconds of leeway, no issuer, no audience (a token naming an
/// audience is then refused). A zero-initialised struct is the same with no leeway.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct hsmkit_jwt_validation {
    /// The algorithms accepted, comma-separated (`"ES256,RS256"`); NULL: any that fits the key.
    pub algorithms: *const c_char,
    /// `iss` must be this (and present); NULL: not checked.
    pub issuer: *const c_char,
    /// `aud` must name one of these (and be present); NULL with `audience_count` 0: none.
    pub audiences: *const *const c_char,
    /// How many strings `audiences` holds.
    pub audience_count: usize,
    /// Other claims that must be present; NULL with `required_count` 0: none.
    pub required: *const *const c_char,
    /// How many strings `required` holds.
    pub required_count: usize,
    /// `HSMKIT_JWT_EXP_OPTIONAL`, `HSMKIT_JWT_ALLOW_FUTURE_IAT`.
    pub flags: u32,
    /// Clock skew allowed for `exp`, `nbf` and `iat`, in seconds.
    pub leeway_secs: u32,
    /// Now, in Unix seconds; 0: the store's clock.
    pub now: i64,
}

/// # Safety
/// `v` is NULL or an `hsmkit_jwt_validation` whose pointers are as its fields document.
unsafe fn validation(v: *const hsmkit_jwt_validation) -> Result<JwtValidation, Fail> {
    // SAFETY: the caller's contract.
    let Some(v) = (unsafe { v.as_ref() }) else { return Ok(JwtValidation::new()) };
    // SAFETY: as above (each field).
    let (algs, issuer, audiences, required) = unsafe {
        (
            opt_cstr(v.algorithms, "validation.algorithms")?,
            opt_cstr(v.issuer, "validation.issuer")?,
            str_list(v.audiences, v.audience_count, "validation.audiences")?,
            str_list(v.required, v.required_count, "validation.required")?,
        )
    };
    if v.flags & !(HSMKIT_JWT_EXP_OPTIONAL | HSMKIT_JWT_ALLOW_FUTURE_IAT) != 0 {
        return Err(Fail::invalid(format!("unknown validation flags {:#x}", v.flags)));
    }
    let mut out = JwtValidation::new()
        .require_exp(v.flags & HSMKIT_JWT_EXP_OPTIONAL == 0)
        .reject_future_iat(v.flags & HSMKIT_JWT_ALLOW_FUTURE_IAT == 0)
        .leeway(Duration::from_secs(u64::from(v.leeway_secs)));
    out.algorithms = algorithms(algs)?;
    if let Some(i) = issuer {
        out = out.issuer(i);
    }
    for a in audiences {
        out = out.audience(a);
    }
    for r in required {
        out = out.require(r);
    }
    if let Some(t) = unix_or_none(v.now, "validation.now")? {
        out = out.now(t);
    }
    Ok(out)
}

/// The JWT body: with the store (`kid` picks the key) or a key.
enum Verifier<'a> {
    Store(&'a Store),
    Key(&'a Key),
}

/// # Safety
/// As `hsmkit_store_jwt_verify`.
unsafe fn jwt_verify(
    v: Verifier<'_>,
    token: *const c_char,
    validation_: *const hsmkit_jwt_validation,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> Result<(), Fail> {
    // SAFETY: the caller's contract.
    let token = unsafe { cstr(token, "token") }?;
    // SAFETY: as above.
    let validation = unsafe { validation(validation_) }?;
    // SAFETY: as above.
    let out = unsafe { OutBuf::new(buf, cap, written) }?;
    let claims = match v {
        Verifier::Store(s) => jose::jwt_verify(s, token, &validation)?,
        Verifier::Key(k) => jose::jwt_verify_with_key(k, token, &validation)?,
    };
    out.put_json(&Value::Object(claims))
}

/// Verifies a JWT with the key version its `kid` (`NAME/VERSION`) names, then its claims
/// as `validation` says (NULL: the defaults), and gives the claims as JSON text
/// (NUL-terminated). With `buf` NULL the token is still verified and the length of the
/// claims given: `HSMKIT_OK` alone says the token is good. A signature that does not
/// verify is `HSMKIT_ERR_VERIFICATION_FAILED`; a token refused before the signature is
/// checked (malformed, `alg` `none` or not accepted, expired, wrong audience...)
/// `HSMKIT_ERR_INVALID_INPUT`; a `kid` naming no key `HSMKIT_ERR_NOT_FOUND`.
///
/// # Safety
/// `store` is live; `token` is a C string; `validation` is NULL or an
/// `hsmkit_jwt_validation`; `buf`/`cap`/`written` as in the conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_jwt_verify(
    store: *const hsmkit_store,
    token: *const c_char,
    validation: *const hsmkit_jwt_validation,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let s = unsafe { try_ref(store) }?;
        // SAFETY: as above.
        unsafe { jwt_verify(Verifier::Store(s), token, validation, buf, cap, written) }
    })
}

/// `hsmkit_store_jwt_verify` with a key the caller chose: the token's `kid` is not looked
/// at (tokens from other issuers, public keys imported as keys).
///
/// # Safety
/// As `hsmkit_store_jwt_verify`, with `key` live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_key_jwt_verify(
    key: *const hsmkit_key,
    token: *const c_char,
    validation: *const hsmkit_jwt_validation,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let k = unsafe { try_ref(key) }?;
        // SAFETY: as above.
        unsafe { jwt_verify(Verifier::Key(k), token, validation, buf, cap, written) }
    })
}

/// # Safety
/// As `hsmkit_store_jws_verify`.
unsafe fn jws_verify(
    v: Verifier<'_>,
    token: *const c_char,
    algorithms_: *const c_char,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> Result<(), Fail> {
    // SAFETY: the caller's contract.
    let token = unsafe { cstr(token, "token") }?;
    let mut options = JwsOptions::new();
    // SAFETY: as above.
    options.algorithms = algorithms(unsafe { opt_cstr(algorithms_, "algorithms") }?)?;
    // SAFETY: as above.
    let out = unsafe { OutBuf::new(buf, cap, written) }?;
    let verified = match v {
        Verifier::Store(s) => jose::jws_verify(s, token, &options)?,
        Verifier::Key(k) => jose::jws_verify_with_key(k, token, &options)?,
    };
    out.put(&verified.payload)
}

/// Verifies a compact JWS with the key version its `kid` names and gives the payload
/// (binary, no NUL). `algorithms`: NULL accepts any that fits the key, or a
/// comma-separated list. With `buf` NULL the token is still verified. Errors as
/// `hsmkit_store_jwt_verify`.
///
/// # Safety
/// `store` is live; `token` is a C string; `algorithms` is NULL or a C string;
/// `buf`/`cap`/`written` as in the conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_jws_verify(
    store: *const hsmkit_store,
    token: *const c_char,
    algorithms: *const c_char,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let s = unsafe { try_ref(store) }?;
        // SAFETY: as above.
        unsafe { jws_verify(Verifier::Store(s), token, algorithms, buf, cap, written) }
    })
}

/// `hsmkit_store_jws_verify` with a key the caller chose (the `kid` is not looked at).
///
/// # Safety
/// As `hsmkit_store_jws_verify`, with `key` live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_key_jws_verify(
    key: *const hsmkit_key,
    token: *const c_char,
    algorithms: *const c_char,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let k = unsafe { try_ref(key) }?;
        // SAFETY: as above.
        unsafe { jws_verify(Verifier::Key(k), token, algorithms, buf, cap, written) }
    })
}

/// A JWK Set `{"keys": [...]}` (JSON text, NUL-terminated) of the versions of the keys
/// named in `names` that a verifier should accept now (enabled, allowing verify, within
/// their validity), each with `kid` `NAME/VERSION` and `use` `sig`. An HMAC or AES key is
/// `HSMKIT_ERR_INVALID_INPUT`; a missing key `HSMKIT_ERR_NOT_FOUND`.
///
/// # Safety
/// `store` is live; `names` points to `name_count` C strings; `buf`/`cap`/`written` as in
/// the conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_jwks(
    store: *const hsmkit_store,
    names: *const *const c_char,
    name_count: usize,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let s = unsafe { try_ref(store) }?;
        // SAFETY: as above.
        let names = unsafe { str_list(names, name_count, "names") }?;
        // SAFETY: as above.
        let out = unsafe { OutBuf::new(buf, cap, written) }?;
        out.put_json(&jose::jwks(s, &names)?)
    })
}

#[cfg(test)]
mod tests {
    use super::b64_len;

    #[test]
    fn base64url_lengths() {
        for (n, want) in [(0, 0), (1, 2), (2, 3), (3, 4), (4, 6), (64, 86), (256, 342)] {
            assert_eq!(b64_len(n), Some(want), "{n}");
        }
    }
}
