//! Operations on an open key version.

use std::ffi::c_char;

use hsmkit::{EncryptionAlgorithm, Key, KeyWrapAlgorithm, SignInput, SignatureAlgorithm, SignatureFormat};

use crate::ffi::{Castable, OutBuf, bytes, cstr, free_handle, handle, out_ptr, put, try_ref_out};
use crate::result::{Fail, guard, hsmkit_result};

/// An open key version. Thread-safe; independent of the store it came from.
pub struct hsmkit_key {
    pub(crate) key: Key,
}

impl Castable for hsmkit_key {
    type RustType = Key;
    const ARG: &'static str = "key";
    fn rust(&self) -> &Key {
        &self.key
    }
}

/// Sign/verify flag: `data` is a digest of the algorithm's hash, not the message.
pub const HSMKIT_SIGN_PREHASHED: u32 = 1;
/// Sign/verify flag: ECDSA signatures in DER (X9.62, as OpenSSL) rather than raw r||s.
pub const HSMKIT_SIGN_DER: u32 = 2;

/// `hsmkit_key_public_key` format: SubjectPublicKeyInfo DER (binary, no NUL).
pub const HSMKIT_PUBLIC_DER: u32 = 0;
/// `hsmkit_key_public_key` format: PEM text.
pub const HSMKIT_PUBLIC_PEM: u32 = 1;
/// `hsmkit_key_public_key` format: JWK (JSON text) with `kid`.
pub const HSMKIT_PUBLIC_JWK: u32 = 2;

/// Frees a key. NULL is a no-op.
///
/// # Safety
/// `key` is NULL or a key handle not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_key_free(key: *mut hsmkit_key) {
    // SAFETY: the caller's contract.
    unsafe { free_handle(key) }
}

/// The key name, NUL-terminated.
///
/// # Safety
/// `key` is live; `buf`/`cap`/`written` as in the conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_key_name(
    key: *const hsmkit_key,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (k, out) = unsafe { try_ref_out(key, buf, cap, written) }?;
        out.put_text(k.name())
    })
}

/// The version number.
///
/// # Safety
/// `key` is live; `version` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_key_version(key: *const hsmkit_key, version: *mut u32) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let k = unsafe { handle(key, "key") }?;
        out_ptr(version, "version")?;
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { put(version, k.key.version()) };
        Ok(())
    })
}

/// The version's metadata as JSON (NUL-terminated): `name`, `version`, `kid`, `spec`,
/// `ops`, `enabled`, `not_before`, `expires`, `tags`, `exportable`, `has_private`,
/// `created`, `updated`.
///
/// # Safety
/// `key` is live; `buf`/`cap`/`written` as in the conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_key_info(
    key: *const hsmkit_key,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (k, out) = unsafe { try_ref_out(key, buf, cap, written) }?;
        out.put_json(&hsmkit::report::key_info(k.info()))
    })
}

fn sign_flags(flags: u32) -> Result<(bool, SignatureFormat), Fail> {
    if flags & !(HSMKIT_SIGN_PREHASHED | HSMKIT_SIGN_DER) != 0 {
        return Err(Fail::invalid(format!("unknown sign flags {flags:#x}")));
    }
    let der = flags & HSMKIT_SIGN_DER != 0;
    Ok((flags & HSMKIT_SIGN_PREHASHED != 0, if der { SignatureFormat::Der } else { SignatureFormat::Raw }))
}

fn input(data: &[u8], prehashed: bool) -> SignInput<'_> {
    if prehashed { SignInput::Digest(data) } else { SignInput::Message(data) }
}

/// Signs `data` (`RS256`..`PS512` with RSA keys, `ES256`/`ES384`/`ES512`/`ES256K` with EC
/// keys, `EdDSA` with Ed25519 keys, `HS256`/`HS384`/`HS512` with HMAC keys). EdDSA and
/// HMAC take the message only (`HSMKIT_SIGN_PREHASHED` is `HSMKIT_ERR_INVALID_INPUT`);
/// `HSMKIT_SIGN_DER` changes only ECDSA signatures. Sizing (`buf` NULL) signs nothing.
///
/// # Safety
/// `key` is live; `alg` is a C string; `data` has `len` bytes; `buf`/`cap`/`written` as
/// in the conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_key_sign(
    key: *const hsmkit_key,
    alg: *const c_char,
    flags: u32,
    data: *const u8,
    len: usize,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let k = unsafe { handle(key, "key") }?;
        // SAFETY: as above.
        let alg: SignatureAlgorithm = unsafe { cstr(alg, "alg") }?.parse()?;
        // SAFETY: as above.
        let data = unsafe { bytes(data, len, "data") }?;
        // SAFETY: as above.
        let out = unsafe { OutBuf::new(buf, cap, written) }?;
        let (prehashed, format) = sign_flags(flags)?;
        // The length the core gives; an algorithm that does not fit the key fails below.
        if let (true, Ok(n)) = (out.sizing(), k.key.max_signature_len(alg, format)) {
            return out.report(n);
        }
        out.put(&k.key.sign_with(alg, input(data, prehashed), format)?)
    })
}

/// Verifies a signature: `HSMKIT_OK`, or `HSMKIT_ERR_VERIFICATION_FAILED`.
///
/// # Safety
/// `key` is live; `alg` is a C string; `data` has `len` bytes and `signature` `sig_len`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_key_verify(
    key: *const hsmkit_key,
    alg: *const c_char,
    flags: u32,
    data: *const u8,
    len: usize,
    signature: *const u8,
    sig_len: usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let k = unsafe { handle(key, "key") }?;
        // SAFETY: as above.
        let alg: SignatureAlgorithm = unsafe { cstr(alg, "alg") }?.parse()?;
        // SAFETY: as above.
        let data = unsafe { bytes(data, len, "data") }?;
        // SAFETY: as above.
        let sig = unsafe { bytes(signature, sig_len, "signature") }?;
        let (prehashed, format) = sign_flags(flags)?;
        k.key.verify_with(alg, input(data, prehashed), sig, format)?;
        Ok(())
    })
}

/// The encrypt/decrypt body; `decrypt` picks the direction.
///
/// # Safety
/// As `hsmkit_key_encrypt`.
#[allow(clippy::too_many_arguments)]
unsafe fn crypt(
    key: *const hsmkit_key,
    alg: *const c_char,
    label: *const u8,
    label_len: usize,
    data: *const u8,
    len: usize,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
    decrypt: bool,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let k = unsafe { handle(key, "key") }?;
        // SAFETY: as above.
        let alg: EncryptionAlgorithm = unsafe { cstr(alg, "alg") }?.parse()?;
        // SAFETY: as above.
        let label = unsafe { bytes(label, label_len, "label") }?;
        // SAFETY: as above.
        let data = unsafe { bytes(data, len, "data") }?;
        // SAFETY: as above.
        let out = unsafe { OutBuf::new(buf, cap, written) }?;
        if decrypt {
            // The plaintext is shorter than the ciphertext.
            if out.sizing() {
                return out.report(data.len());
            }
            out.put(&k.key.decrypt_with_label(alg, data, label)?)
        } else {
            if let (true, Ok(n)) = (out.sizing(), k.key.max_ciphertext_len(alg)) {
                return out.report(n);
            }
            out.put(&k.key.encrypt_with_label(alg, data, label)?)
        }
    })
}

/// RSA-OAEP / RSA-OAEP-256 encryption with an optional label (NULL, 0 for none).
///
/// # Safety
/// `key` is live; `alg` is a C string; `label` has `label_len` bytes, `data` `len`;
/// `buf`/`cap`/`written` as in the conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_key_encrypt(
    key: *const hsmkit_key,
    alg: *const c_char,
    label: *const u8,
    label_len: usize,
    data: *const u8,
    len: usize,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    // SAFETY: forwarded contract.
    unsafe { crypt(key, alg, label, label_len, data, len, buf, cap, written, false) }
}

/// RSA-OAEP decryption. Every failure is `HSMKIT_ERR_DECRYPTION_FAILED`.
///
/// # Safety
/// As `hsmkit_key_encrypt`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_key_decrypt(
    key: *const hsmkit_key,
    alg: *const c_char,
    label: *const u8,
    label_len: usize,
    data: *const u8,
    len: usize,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    // SAFETY: forwarded contract.
    unsafe { crypt(key, alg, label, label_len, data, len, buf, cap, written, true) }
}

/// Wraps key bytes: `A128KW`..`A256KW`, `A128KWP`..`A256KWP` (AES keys), `RSA-OAEP`,
/// `RSA-OAEP-256` (RSA keys).
///
/// # Safety
/// `key` is live; `alg` is a C string; `data` has `len` bytes; `buf`/`cap`/`written` as
/// in the conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_key_wrap(
    key: *const hsmkit_key,
    alg: *const c_char,
    data: *const u8,
    len: usize,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let k = unsafe { handle(key, "key") }?;
        // SAFETY: as above.
        let alg: KeyWrapAlgorithm = unsafe { cstr(alg, "alg") }?.parse()?;
        // SAFETY: as above.
        let data = unsafe { bytes(data, len, "data") }?;
        // SAFETY: as above.
        let out = unsafe { OutBuf::new(buf, cap, written) }?;
        if let (true, Ok(n)) = (out.sizing(), k.key.max_wrapped_len(alg, data.len())) {
            return out.report(n);
        }
        out.put(&k.key.wrap_key(alg, data)?)
    })
}

/// Unwraps what `hsmkit_key_wrap` made. Every failure is `HSMKIT_ERR_DECRYPTION_FAILED`.
///
/// # Safety
/// As `hsmkit_key_wrap`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_key_unwrap(
    key: *const hsmkit_key,
    alg: *const c_char,
    data: *const u8,
    len: usize,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let k = unsafe { handle(key, "key") }?;
        // SAFETY: as above.
        let alg: KeyWrapAlgorithm = unsafe { cstr(alg, "alg") }?.parse()?;
        // SAFETY: as above.
        let data = unsafe { bytes(data, len, "data") }?;
        // SAFETY: as above.
        let out = unsafe { OutBuf::new(buf, cap, written) }?;
        if out.sizing() {
            return out.report(data.len());
        }
        out.put(&k.key.unwrap_key(alg, data)?)
    })
}

/// The public key (RSA and EC keys): `HSMKIT_PUBLIC_DER`, `_PEM` or `_JWK`.
///
/// # Safety
/// `key` is live; `buf`/`cap`/`written` as in the conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_key_public_key(
    key: *const hsmkit_key,
    format: u32,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let k = unsafe { handle(key, "key") }?;
        // SAFETY: as above.
        let out = unsafe { OutBuf::new(buf, cap, written) }?;
        match format {
            HSMKIT_PUBLIC_DER => out.put(&k.key.public_key_der()?),
            HSMKIT_PUBLIC_PEM => out.put_text(&k.key.public_key_pem()?),
            HSMKIT_PUBLIC_JWK => out.put_text(&k.key.public_key_jwk()?.to_string()),
            f => Err(Fail::invalid(format!("unknown public key format {f}"))),
        }
    })
}
