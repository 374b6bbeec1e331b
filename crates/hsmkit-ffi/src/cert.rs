//! Certificates as store objects (`hsmkit::certificates`): a name with versions, each an
//! X.509 certificate (and chain) bound to a version of the key of the same name, made
//! under a policy: self-signed at once, or a pending request a CA signs and that is then
//! merged; imported from PKCS#12 or PEM; renewed; deleted, recovered and purged with
//! their key.

use std::ffi::c_char;

use hsmkit::KeySpec;
use hsmkit::certificates::{CertificateIssuer, CertificateOperation, CertificatePolicy, LifetimeAction};
use hsmkit::report::{
    certificate_description as description_json, certificate_due as due_json,
    certificate_properties as properties_json,
};
use hsmkit::x509::{ExtendedKeyUsage, KeyUsage};
use serde_json::Value;

use crate::ffi::{
    OutHandle, bytes, handle, opt_cstr, out_ptr, put, put_opt, try_ref, try_ref_name, try_ref_name_out,
    try_ref_out,
};
use crate::pki::{
    HSMKIT_CERT_DER, HSMKIT_CERT_PEM, HSMKIT_CERT_PEM_CHAIN, chain_from, comma_list, hsmkit_csr, sans,
    str_list,
};
use crate::result::{Fail, guard, hsmkit_result};
use crate::store::hsmkit_store;

/// `hsmkit_certificate_policy.issuer`: the certificate's own key signs (Key Vault's `Self`).
pub const HSMKIT_ISSUER_SELF: u32 = 0;
/// `hsmkit_certificate_policy.issuer`: a CA outside hsmkit signs; each version waits as a
/// pending request until merged (Key Vault's `Unknown`).
pub const HSMKIT_ISSUER_UNKNOWN: u32 = 1;

/// Policy flag (and import flag): the private key may be exported (software stores only).
pub const HSMKIT_CERT_EXPORTABLE: u32 = 1;
/// Policy flag: renewal keeps the current key version instead of making a new one.
pub const HSMKIT_CERT_REUSE_KEY: u32 = 2;
/// Policy flag: a CA certificate (self-signed roots).
pub const HSMKIT_CERT_CA: u32 = 4;
/// Policy flag: no renewal trigger (reported as due only once expired).
pub const HSMKIT_CERT_MANUAL_RENEWAL: u32 = 8;

const POLICY_FLAGS: u32 =
    HSMKIT_CERT_EXPORTABLE | HSMKIT_CERT_REUSE_KEY | HSMKIT_CERT_CA | HSMKIT_CERT_MANUAL_RENEWAL;

/// How a certificate's versions are made. Zero-initialised fields take the defaults (Key
/// Vault's): self-signed, 12 months, a new key on renewal, renewal at 80 % of the lifetime.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct hsmkit_certificate_policy {
    /// The subject: RFC 4514 (`"CN=host,O=Example"`) or OpenSSL's slash form; NULL or
    /// `""` for none (then alternative names are needed).
    pub subject: *const c_char,
    /// Subject alternative names (`"dns:HOST"`, `"ip:ADDRESS"`, `"email:ADDRESS"`,
    /// `"uri:URI"`); NULL with `san_count` 0 for none.
    pub sans: *const *const c_char,
    /// How many strings `sans` holds.
    pub san_count: usize,
    /// Key usage, comma-separated (`"digitalSignature,keyEncipherment"`); NULL or `""`:
    /// the default for the key type.
    pub key_usage: *const c_char,
    /// Extended key usage, comma-separated (`"serverAuth,clientAuth"`); NULL or `""`: none.
    pub extended_key_usage: *const c_char,
    /// The key: `"P-256"`, `"P-384"`, `"P-521"`, `"RSA-2048"`, `"RSA-3072"`, `"RSA-4096"`,
    /// `"Ed25519"`, ...; NULL: `"RSA-2048"`.
    pub key_spec: *const c_char,
    /// `HSMKIT_ISSUER_SELF` or `HSMKIT_ISSUER_UNKNOWN`.
    pub issuer: u32,
    /// `HSMKIT_CERT_*`.
    pub flags: u32,
    /// Validity of each version in calendar months, 1 to 1200; 0: 12.
    pub validity_months: u32,
    /// Renew once this share of the validity has passed (1 to 99); 0: not this trigger.
    pub lifetime_percentage: u32,
    /// Renew this many days before expiry; 0: not this trigger. At most one of the two
    /// triggers; neither: 80 %, unless `HSMKIT_CERT_MANUAL_RENEWAL`.
    pub days_before_expiry: u32,
}

/// # Safety
/// `p`'s pointers are NULL or as its fields document.
unsafe fn policy(p: &hsmkit_certificate_policy) -> Result<CertificatePolicy, Fail> {
    // SAFETY: the caller's contract (each field).
    let (subject, names, ku, eku, spec) = unsafe {
        (
            opt_cstr(p.subject, "policy.subject")?,
            str_list(p.sans, p.san_count, "policy.sans")?,
            opt_cstr(p.key_usage, "policy.key_usage")?,
            opt_cstr(p.extended_key_usage, "policy.extended_key_usage")?,
            opt_cstr(p.key_spec, "policy.key_spec")?,
        )
    };
    if p.flags & !POLICY_FLAGS != 0 {
        return Err(Fail::invalid(format!("unknown certificate policy flags {:#x}", p.flags)));
    }
    let key_spec: KeySpec = spec.unwrap_or("RSA-2048").parse()?;
    let mut out = CertificatePolicy::new(subject.unwrap_or(""), key_spec);
    out.subject_alt_names = sans(&names)?;
    out.key_usage = comma_list::<KeyUsage>(ku)?;
    out.extended_key_usage = comma_list::<ExtendedKeyUsage>(eku)?;
    out.issuer = match p.issuer {
        HSMKIT_ISSUER_SELF => CertificateIssuer::SelfSigned,
        HSMKIT_ISSUER_UNKNOWN => CertificateIssuer::Unknown,
        i => {
            return Err(Fail::invalid(format!(
                "unknown issuer {i} (HSMKIT_ISSUER_SELF or HSMKIT_ISSUER_UNKNOWN)"
            )));
        }
    };
    out.exportable = p.flags & HSMKIT_CERT_EXPORTABLE != 0;
    out.reuse_key = p.flags & HSMKIT_CERT_REUSE_KEY != 0;
    out.ca = p.flags & HSMKIT_CERT_CA != 0;
    if p.validity_months != 0 {
        out.validity_months = p.validity_months;
    }
    let manual = p.flags & HSMKIT_CERT_MANUAL_RENEWAL != 0;
    out.lifetime_action = match (p.lifetime_percentage, p.days_before_expiry, manual) {
        (0, 0, true) => None,
        (0, 0, false) => out.lifetime_action,
        (pct, 0, false) => Some(LifetimeAction::AtPercentage(
            u8::try_from(pct)
                .map_err(|_| Fail::invalid(format!("lifetime_percentage {pct}: from 1 to 99")))?,
        )),
        (0, days, false) => Some(LifetimeAction::DaysBeforeExpiry(days)),
        (_, _, true) => {
            return Err(Fail::invalid("HSMKIT_CERT_MANUAL_RENEWAL takes no renewal trigger"));
        }
        (_, _, false) => {
            return Err(Fail::invalid("give lifetime_percentage or days_before_expiry, not both"));
        }
    };
    Ok(out)
}

// ------------------------------------------------------------- JSON shapes (as the CLI's)

/// The version an operation made, or 0 for a pending request.
fn made_version(op: &CertificateOperation) -> u32 {
    match op {
        CertificateOperation::Completed(p) => p.version,
        CertificateOperation::Pending(_) => 0,
    }
}

// ---------------------------------------------------------------------- entry points

/// Creates the certificate `name` under `policy`, with a new key of the same name:
/// self-signed, version 1 at once; issuer `HSMKIT_ISSUER_UNKNOWN`, a pending request
/// (`hsmkit_store_get_pending_certificate`) for a CA to sign and
/// `hsmkit_store_merge_certificate` to complete. On a certificate that exists, makes its
/// next version under `policy`, which becomes its policy (Key Vault's create). `*version`
/// (may be NULL) is the new version, or 0 when a request is pending. A deleted
/// certificate is `HSMKIT_ERR_ALREADY_EXISTS` until recovered or purged.
///
/// # Safety
/// `store` is live; `name` is a C string; `policy` points to an
/// `hsmkit_certificate_policy` whose pointers are as its fields document; `version` is
/// NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_create_certificate(
    store: *const hsmkit_store,
    name: *const c_char,
    policy: *const hsmkit_certificate_policy,
    version: *mut u32,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, name) = unsafe { try_ref_name(store, name) }?;
        // SAFETY: as above.
        let p = unsafe { handle(policy, "policy") }?;
        // SAFETY: as above.
        let policy = unsafe { self::policy(p) }?;
        let op = s.create_certificate(name, &policy)?;
        // SAFETY: NULL or writable (the caller's contract).
        unsafe { put_opt(version, made_version(&op)) };
        Ok(())
    })
}

/// Renews a certificate under its policy: a new version (self-signed) or a pending
/// request (`HSMKIT_ISSUER_UNKNOWN`), with the current key version or a new one as the
/// policy says. `*version` (may be NULL) as for `hsmkit_store_create_certificate`.
///
/// # Safety
/// `store` is live; `name` is a C string; `version` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_renew_certificate(
    store: *const hsmkit_store,
    name: *const c_char,
    version: *mut u32,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, name) = unsafe { try_ref_name(store, name) }?;
        let op = s.renew_certificate(name)?;
        // SAFETY: NULL or writable (the caller's contract).
        unsafe { put_opt(version, made_version(&op)) };
        Ok(())
    })
}

/// Replaces a certificate's policy (for its next version).
///
/// # Safety
/// As `hsmkit_store_create_certificate`, without `version`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_set_certificate_policy(
    store: *const hsmkit_store,
    name: *const c_char,
    policy: *const hsmkit_certificate_policy,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, name) = unsafe { try_ref_name(store, name) }?;
        // SAFETY: as above.
        let p = unsafe { handle(policy, "policy") }?;
        // SAFETY: as above.
        let policy = unsafe { self::policy(p) }?;
        s.set_certificate_policy(name, &policy)?;
        Ok(())
    })
}

/// The request of a certificate's pending operation, as an `hsmkit_csr` (for
/// `hsmkit_csr_export`, or `hsmkit_key_issue_certificate` with a CA in this or another
/// store); `*key_version` (may be NULL) is the key version it is for. No pending operation
/// is `HSMKIT_ERR_NOT_FOUND`.
///
/// # Safety
/// `store` is live; `name` is a C string; `key_version` is NULL or writable; `out` is
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_get_pending_certificate(
    store: *const hsmkit_store,
    name: *const c_char,
    key_version: *mut u32,
    out: *mut *mut hsmkit_csr,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, name) = unsafe { try_ref_name(store, name) }?;
        // SAFETY: as above.
        let out = unsafe { OutHandle::new(out) }?;
        let p = s.pending_certificate(name)?;
        // SAFETY: NULL or writable (the caller's contract).
        unsafe { put_opt(key_version, p.key_version) };
        out.put(hsmkit_csr { csr: p.csr, crypto: s.crypto() });
        Ok(())
    })
}

/// Cancels a pending request. The key version made for it goes (a reused one that a
/// version certifies stays); a certificate that never had a version goes with its key, as
/// if never created.
///
/// # Safety
/// `store` is live; `name` is a C string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_cancel_pending_certificate(
    store: *const hsmkit_store,
    name: *const c_char,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, name) = unsafe { try_ref_name(store, name) }?;
        s.cancel_pending_certificate(name)?;
        Ok(())
    })
}

/// Completes a pending request with what the CA signed: `len` bytes of PEM (the leaf
/// first, then any issuers in any order; a certificate not on the leaf's chain is
/// refused) or DER (the leaf alone). The leaf's
/// public key must be the pending key version's: otherwise `HSMKIT_ERR_INVALID_INPUT`
/// with reason `"key-mismatch"`, and nothing changes. `*version` (may be NULL) is the new
/// version. Nothing pending is `HSMKIT_ERR_NOT_FOUND`.
///
/// # Safety
/// `store` is live; `name` is a C string; `chain` has `len` bytes; `version` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_merge_certificate(
    store: *const hsmkit_store,
    name: *const c_char,
    chain: *const u8,
    len: usize,
    version: *mut u32,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, name) = unsafe { try_ref_name(store, name) }?;
        // SAFETY: as above.
        let chain = chain_from(unsafe { bytes(chain, len, "chain") }?, "chain")?;
        let p = s.merge_certificate(name, &chain)?;
        // SAFETY: NULL or writable (the caller's contract).
        unsafe { put_opt(version, p.version) };
        Ok(())
    })
}

fn import_flags(flags: u32) -> Result<bool, Fail> {
    if flags & !HSMKIT_CERT_EXPORTABLE != 0 {
        return Err(Fail::invalid(format!("unknown import flags {flags:#x} (HSMKIT_CERT_EXPORTABLE)")));
    }
    Ok(flags & HSMKIT_CERT_EXPORTABLE != 0)
}

/// Imports a PKCS#12 (`.pfx`/`.p12`) file of `len` bytes: its private key goes into the
/// backend as the key `name` (a new version if the certificate exists; on a token,
/// sensitive and not extractable), its certificates become the newest version (the one
/// whose key it is first). `password` is a C string (NULL: empty); a wrong one is
/// `HSMKIT_ERR_AUTHENTICATION`; legacy encryption (3DES, RC2) `HSMKIT_ERR_UNSUPPORTED`.
/// `flags`: `HSMKIT_CERT_EXPORTABLE`. `*version` (may be NULL) is the new version. The
/// password and the file are the caller's to wipe; hsmkit's copies of the key are wiped.
///
/// # Safety
/// `store` is live; `name` is a C string; `pfx` has `len` bytes; `password` is NULL or a
/// C string; `version` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_import_pkcs12(
    store: *const hsmkit_store,
    name: *const c_char,
    pfx: *const u8,
    len: usize,
    password: *const c_char,
    flags: u32,
    version: *mut u32,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, name) = unsafe { try_ref_name(store, name) }?;
        // SAFETY: as above.
        let pfx = unsafe { bytes(pfx, len, "pfx") }?;
        // SAFETY: as above.
        let password = unsafe { opt_cstr(password, "password") }?.unwrap_or("");
        let exportable = import_flags(flags)?;
        let p = s.import_pkcs12(name, pfx, password, exportable)?;
        // SAFETY: NULL or writable (the caller's contract).
        unsafe { put_opt(version, p.version) };
        Ok(())
    })
}

/// Imports PEM text of `len` bytes holding a certificate (and any issuers) and its
/// private key (PKCS#8 `PRIVATE KEY`, or PKCS#1 / SEC1), in any order, as
/// `hsmkit_store_import_pkcs12` does. A key that is not the certificate's is
/// `HSMKIT_ERR_INVALID_INPUT` (reason `"key-mismatch"`).
///
/// # Safety
/// `store` is live; `name` is a C string; `pem` has `len` bytes; `version` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_import_certificate_pem(
    store: *const hsmkit_store,
    name: *const c_char,
    pem: *const u8,
    len: usize,
    flags: u32,
    version: *mut u32,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, name) = unsafe { try_ref_name(store, name) }?;
        // SAFETY: as above.
        let pem = unsafe { bytes(pem, len, "pem") }?;
        let pem = std::str::from_utf8(pem).map_err(|_| Fail::invalid("pem is not UTF-8"))?;
        let exportable = import_flags(flags)?;
        let p = s.import_certificate_pem(name, pem, exportable)?;
        // SAFETY: NULL or writable (the caller's contract).
        unsafe { put_opt(version, p.version) };
        Ok(())
    })
}

/// A certificate at `version` (0: the current one): `HSMKIT_CERT_DER` (the leaf),
/// `HSMKIT_CERT_PEM` (the leaf) or `HSMKIT_CERT_PEM_CHAIN` (the leaf, then its issuers as
/// merged or imported). A certificate whose only operation is pending has no version yet:
/// `HSMKIT_ERR_NOT_FOUND`.
///
/// # Safety
/// `store` is live; `name` is a C string; `buf`/`cap`/`written` as in the conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_get_certificate(
    store: *const hsmkit_store,
    name: *const c_char,
    version: u32,
    format: u32,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, name, out) = unsafe { try_ref_name_out(store, name, buf, cap, written) }?;
        if !matches!(format, HSMKIT_CERT_DER | HSMKIT_CERT_PEM | HSMKIT_CERT_PEM_CHAIN) {
            return Err(Fail::invalid(format!(
                "unknown certificate format {format} (HSMKIT_CERT_DER, _PEM or _PEM_CHAIN)"
            )));
        }
        let bundle = match version {
            0 => s.get_certificate(name)?,
            v => s.get_certificate_version(name, v)?,
        };
        match format {
            HSMKIT_CERT_DER => out.put(bundle.certificate()?.to_der()),
            f => out.put_text(&bundle.to_pem(f == HSMKIT_CERT_PEM_CHAIN)?),
        }
    })
}

/// The private key of a certificate version (0: the current one) as PKCS#8 PEM text,
/// only if the policy made it exportable (`HSMKIT_ERR_PERMISSION_DENIED` otherwise; a
/// token's keys never leave it). The copy in `buf` is the caller's to wipe; hsmkit's own
/// are wiped. Each call (the sizing one too) exports, and is audited as an export.
///
/// # Safety
/// `store` is live; `name` is a C string; `buf`/`cap`/`written` as in the conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_export_certificate_key(
    store: *const hsmkit_store,
    name: *const c_char,
    version: u32,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, name, out) = unsafe { try_ref_name_out(store, name, buf, cap, written) }?;
        let pem = s.export_certificate_key(name, (version != 0).then_some(version))?;
        out.put_text(&pem)
    })
}

/// The names of the certificates that are not deleted, one per line (each followed by
/// `\n`), NUL-terminated.
///
/// # Safety
/// `store` is live; `buf`/`cap`/`written` as in the conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_list_certificates(
    store: *const hsmkit_store,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, out) = unsafe { try_ref_out(store, buf, cap, written) }?;
        out.put_lines(s.list_certificates()?.into_iter().map(|d| d.name))
    })
}

/// Every version of a certificate, oldest first, as a JSON array (NUL-terminated) of
/// `{"name", "version", "key_version", "kid", "subject", "issuer", "serial",
/// "not_before", "expires", "thumbprint_sha256", "created"}` (times in RFC 3339).
///
/// # Safety
/// `store` is live; `name` is a C string; `buf`/`cap`/`written` as in the conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_list_certificate_versions(
    store: *const hsmkit_store,
    name: *const c_char,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, name, out) = unsafe { try_ref_name_out(store, name, buf, cap, written) }?;
        out.put_json_array(&s.list_certificate_versions(name)?, properties_json)
    })
}

/// A certificate as JSON (NUL-terminated): `name`, `current_version` (or null),
/// `deleted` (null, or `deleted_on` and `scheduled_purge`), `policy` (`subject`,
/// `subject_alt_names`, `key_usage`, `extended_key_usage`, `key_spec`, `exportable`,
/// `reuse_key`, `validity_months`, `issuer` `"Self"`/`"Unknown"`, `ca`,
/// `lifetime_action`), `pending` (null, or `key_version`, `subject`, `created`, `csr`
/// PEM) and `versions` (as `hsmkit_store_list_certificate_versions`). Works on deleted
/// certificates.
///
/// # Safety
/// `store` is live; `name` is a C string; `buf`/`cap`/`written` as in the conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_describe_certificate(
    store: *const hsmkit_store,
    name: *const c_char,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, name, out) = unsafe { try_ref_name_out(store, name, buf, cap, written) }?;
        out.put_json(&description_json(&s.describe_certificate(name)?)?)
    })
}

/// Soft-deletes a certificate and its key: both are kept, unusable, for the store's
/// retention period, then recovered or purged together.
///
/// # Safety
/// `store` is live; `name` is a C string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_delete_certificate(
    store: *const hsmkit_store,
    name: *const c_char,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, name) = unsafe { try_ref_name(store, name) }?;
        s.delete_certificate(name)?;
        Ok(())
    })
}

/// Recovers a deleted certificate and its key; `*version` (may be NULL) is its current
/// version (0 if it has none, only a pending request).
///
/// # Safety
/// `store` is live; `name` is a C string; `version` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_recover_deleted_certificate(
    store: *const hsmkit_store,
    name: *const c_char,
    version: *mut u32,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, name) = unsafe { try_ref_name(store, name) }?;
        let d = s.recover_deleted_certificate(name)?;
        // SAFETY: NULL or writable (the caller's contract).
        unsafe { put_opt(version, d.current().map_or(0, |c| c.version)) };
        Ok(())
    })
}

/// Removes a deleted certificate and its key for good (refused under purge protection
/// before the retention period ends).
///
/// # Safety
/// `store` is live; `name` is a C string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_purge_deleted_certificate(
    store: *const hsmkit_store,
    name: *const c_char,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, name) = unsafe { try_ref_name(store, name) }?;
        s.purge_deleted_certificate(name)?;
        Ok(())
    })
}

/// The deleted certificates, sorted by name, as a JSON array (NUL-terminated) of what
/// `hsmkit_store_describe_certificate` gives; `[]` when there are none.
///
/// # Safety
/// `store` is live; `buf`/`cap`/`written` as in the conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_list_deleted_certificates(
    store: *const hsmkit_store,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, out) = unsafe { try_ref_out(store, buf, cap, written) }?;
        let all =
            s.list_deleted_certificates()?.iter().map(description_json).collect::<Result<Vec<_>, _>>()?;
        out.put_json(&Value::Array(all))
    })
}

/// The certificates due for renewal now, sorted by name, as a JSON array
/// (NUL-terminated) of `{"name", "version", "expires", "reason", "issuer"}`: each whose
/// current version its policy's trigger says is due, or that has expired.
///
/// # Safety
/// `store` is live; `buf`/`cap`/`written` as in the conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_certificates_due(
    store: *const hsmkit_store,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, out) = unsafe { try_ref_out(store, buf, cap, written) }?;
        out.put_json_array(&s.certificates_due()?, due_json)
    })
}

/// Renews every self-signed certificate that is due; `*renewed` is how many got a new
/// version. Due certificates of issuer `HSMKIT_ISSUER_UNKNOWN` are not renewed (a CA must
/// sign: `hsmkit_store_renew_certificate` makes their request). A failure to renew one is
/// returned after trying the others.
///
/// # Safety
/// `store` is live; `renewed` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_renew_due_certificates(
    store: *const hsmkit_store,
    renewed: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let s = unsafe { try_ref(store) }?;
        out_ptr(renewed, "renewed")?;
        let results = s.renew_due_certificates()?;
        let n = results
            .iter()
            .filter(|r| matches!(r.result, Ok(Some(CertificateOperation::Completed(_)))))
            .count();
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { put(renewed, n) };
        match results.into_iter().find_map(|r| r.result.err()) {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    })
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use std::ptr::null;

    use super::*;

    fn zero() -> hsmkit_certificate_policy {
        hsmkit_certificate_policy {
            subject: c"CN=x".as_ptr(),
            sans: null(),
            san_count: 0,
            key_usage: null(),
            extended_key_usage: null(),
            key_spec: null(),
            issuer: 0,
            flags: 0,
            validity_months: 0,
            lifetime_percentage: 0,
            days_before_expiry: 0,
        }
    }

    /// A zero-initialised policy is Key Vault's defaults; the numbers C sets are checked.
    #[test]
    fn policies_from_c() {
        // SAFETY: C strings or NULL in every field.
        let p = unsafe { policy(&zero()) }.map_err(|f| f.message).expect("the defaults");
        assert_eq!(p, CertificatePolicy::new("CN=x", KeySpec::RSA_2048));
        let manual = hsmkit_certificate_policy { flags: HSMKIT_CERT_MANUAL_RENEWAL, ..zero() };
        // SAFETY: as above.
        assert_eq!(unsafe { policy(&manual) }.map_err(|f| f.message).expect("manual").lifetime_action, None);
        let days = hsmkit_certificate_policy { days_before_expiry: 30, ..zero() };
        // SAFETY: as above.
        let p = unsafe { policy(&days) }.map_err(|f| f.message).expect("days");
        assert_eq!(p.lifetime_action, Some(LifetimeAction::DaysBeforeExpiry(30)));
        for bad in [
            hsmkit_certificate_policy { issuer: 2, ..zero() },
            hsmkit_certificate_policy { issuer: u32::MAX, ..zero() },
            hsmkit_certificate_policy { flags: 16, ..zero() },
            hsmkit_certificate_policy { lifetime_percentage: 256, ..zero() },
            hsmkit_certificate_policy { lifetime_percentage: 50, days_before_expiry: 5, ..zero() },
            hsmkit_certificate_policy { flags: HSMKIT_CERT_MANUAL_RENEWAL, days_before_expiry: 5, ..zero() },
            hsmkit_certificate_policy { key_spec: c"P-999".as_ptr(), ..zero() },
            hsmkit_certificate_policy { key_usage: c"digitalSignature,bogus".as_ptr(), ..zero() },
            hsmkit_certificate_policy { san_count: 1, ..zero() },
        ] {
            // SAFETY: as above; `sans` NULL with a count is refused before any read.
            let r = unsafe { policy(&bad) };
            assert!(r.is_err(), "{bad:?}");
        }
    }
}
