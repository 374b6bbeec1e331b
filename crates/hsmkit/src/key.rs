//! [`Key`]: an open key version, with the checks every backend gets.

use crate::error::InvalidReason;
use std::fmt;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::algorithm::{
    Algorithm, EncryptionAlgorithm, KeyWrapAlgorithm, SignatureAlgorithm, SignatureFormat, SignatureScheme,
    WrapScheme,
};
use crate::attributes::KeyOp;
use crate::audit::Ctx;
use crate::backend::{BackendKey, KeyInfo};
use crate::ecdsa_sig;
use crate::error::{Denied, Error, Result};
use crate::material::KeyMaterial;
use crate::public::PublicKey;
use crate::spec::KeySpec;

/// The data a signature covers: the message, or its digest computed by the caller.
#[derive(Clone, Copy, Debug)]
pub enum SignInput<'a> {
    /// The message. The key's backend hashes it with the algorithm's prehash (where it has
    /// one), or signs it whole.
    Message(&'a [u8]),
    /// Hazmat: a digest of the algorithm's [`prehash`](SignatureAlgorithm::prehash),
    /// computed by the caller. Algorithms without one (EdDSA, HMAC) refuse it.
    Digest(&'a [u8]),
}

/// An open key version. Cheap to clone; safe to share between threads.
///
/// Every operation checks the key's attributes (enabled, allowed operations, not-before,
/// expires) and that the algorithm fits the key, then emits an audit event on the
/// `hsmkit::audit` tracing target.
#[derive(Clone)]
pub struct Key {
    inner: Arc<dyn BackendKey>,
    ctx: Ctx,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = self.info();
        f.debug_struct("Key")
            .field("name", &i.name)
            .field("version", &i.version)
            .field("spec", &i.spec)
            .finish_non_exhaustive()
    }
}

impl Key {
    /// Wraps a backend key. Backends call this; users get keys from a [`crate::Store`].
    pub fn from_backend(inner: Box<dyn BackendKey>) -> Self {
        let ctx = Ctx::new(inner.crypto());
        Self::with_ctx(inner, ctx)
    }

    pub(crate) fn with_ctx(inner: Box<dyn BackendKey>, ctx: Ctx) -> Self {
        Key { inner: Arc::from(inner), ctx }
    }

    /// This key, its operations reported to tracing but not to the audit file (the audit
    /// key's own use when opening or verifying that file).
    pub(crate) fn without_audit_log(&self) -> Key {
        Key { inner: Arc::clone(&self.inner), ctx: Ctx { log: None, ..self.ctx.clone() } }
    }

    fn audit<T>(&self, op: &str, alg: &dyn fmt::Display, r: &Result<T>) {
        let info = self.info();
        self.ctx.emit(&info.name, Some(info.version), op, Some(alg), r);
    }

    /// The time by the clock of the store this key came from (what its validity checks use).
    pub(crate) fn now(&self) -> std::time::SystemTime {
        self.ctx.now()
    }

    /// The provider of the store this key came from: what envelopes this key is a KEK of
    /// are sealed and opened with (see [`crypto`](crate::crypto)).
    pub fn crypto(&self) -> &'static dyn crate::crypto::CryptoProvider {
        self.ctx.crypto
    }

    /// The RFC 7638 JWK thumbprint (SHA-256, base64url) of the public key.
    pub fn jwk_thumbprint(&self) -> Result<String> {
        self.public_key()?.jwk_thumbprint(self.crypto())
    }

    /// Metadata.
    pub fn info(&self) -> &KeyInfo {
        self.inner.info()
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.info().name
    }

    /// The version number.
    pub fn version(&self) -> u32 {
        self.info().version
    }

    /// Type and size.
    pub fn spec(&self) -> KeySpec {
        self.info().spec
    }

    fn guard(&self, op: KeyOp) -> Result<()> {
        let info = self.info();
        let denied = |reason| Error::PermissionDenied { key: info.name.clone(), reason };
        info.attributes.check(op, self.ctx.now()).map_err(denied)?;
        if op.is_private() && !info.has_private {
            return Err(denied(Denied::PublicOnly));
        }
        Ok(())
    }

    fn fits(&self, ok: bool, alg: &dyn fmt::Display) -> Result<()> {
        if ok {
            Ok(())
        } else {
            Err(Error::invalid(
                InvalidReason::KeyMismatch,
                format!("algorithm {alg} does not fit key '{}' ({})", self.name(), self.spec()),
            ))
        }
    }

    /// Whether this key's backend can do `op` with `alg` (attributes aside).
    pub fn supports(&self, op: KeyOp, alg: Algorithm) -> bool {
        self.inner.check_algorithm(op, alg).is_ok()
    }

    /// [`supports`](Self::supports), with the backend's typed Unsupported error (naming
    /// the mechanism) when it cannot.
    pub fn check_supported(&self, op: KeyOp, alg: Algorithm) -> Result<()> {
        self.inner.check_algorithm(op, alg)
    }

    /// The public key (RSA and EC). Not subject to attributes: public keys are public.
    pub fn public_key(&self) -> Result<PublicKey> {
        self.inner.public_key()
    }

    /// The public key as SPKI DER.
    pub fn public_key_der(&self) -> Result<Vec<u8>> {
        self.public_key()?.to_spki_der()
    }

    /// The public key as PEM.
    pub fn public_key_pem(&self) -> Result<String> {
        self.public_key()?.to_pem()
    }

    /// The public key as a JWK with `kid` = `name/version`.
    pub fn public_key_jwk(&self) -> Result<serde_json::Value> {
        self.public_key()?.to_jwk(Some(&self.info().kid()))
    }

    /// Signs `message` (JOSE encoding: raw `r || s` for ECDSA).
    pub fn sign(&self, alg: SignatureAlgorithm, message: &[u8]) -> Result<Vec<u8>> {
        self.sign_with(alg, SignInput::Message(message), SignatureFormat::Raw)
    }

    /// Signs a precomputed digest (JOSE encoding).
    pub fn sign_digest(&self, alg: SignatureAlgorithm, digest: &[u8]) -> Result<Vec<u8>> {
        self.sign_with(alg, SignInput::Digest(digest), SignatureFormat::Raw)
    }

    /// Signs, with every option.
    pub fn sign_with(
        &self,
        alg: SignatureAlgorithm,
        input: SignInput<'_>,
        format: SignatureFormat,
    ) -> Result<Vec<u8>> {
        let r = (|| {
            self.guard(KeyOp::Sign)?;
            self.fits(alg.fits(self.spec()), &alg)?;
            self.inner.check_algorithm(KeyOp::Sign, Algorithm::Signature(alg))?;
            let raw = match input {
                SignInput::Message(m) => self.inner.sign(alg, m)?,
                SignInput::Digest(d) => self.inner.sign_digest(alg, checked_digest(alg, d)?)?,
            };
            encode_signature(alg, raw, format)
        })();
        self.audit("sign", &alg, &r);
        r
    }

    /// Verifies a JOSE-encoded signature over `message`.
    pub fn verify(&self, alg: SignatureAlgorithm, message: &[u8], signature: &[u8]) -> Result<()> {
        self.verify_with(alg, SignInput::Message(message), signature, SignatureFormat::Raw)
    }

    /// Verifies a JOSE-encoded signature over a precomputed digest.
    pub fn verify_digest(&self, alg: SignatureAlgorithm, digest: &[u8], signature: &[u8]) -> Result<()> {
        self.verify_with(alg, SignInput::Digest(digest), signature, SignatureFormat::Raw)
    }

    /// Verifies, with every option. A bad signature in any encoding is
    /// [`Error::VerificationFailed`].
    pub fn verify_with(
        &self,
        alg: SignatureAlgorithm,
        input: SignInput<'_>,
        signature: &[u8],
        format: SignatureFormat,
    ) -> Result<()> {
        let r = (|| {
            self.guard(KeyOp::Verify)?;
            self.fits(alg.fits(self.spec()), &alg)?;
            let raw = match (alg.scheme(), format) {
                (SignatureScheme::Ecdsa(curve), SignatureFormat::Der) => {
                    ecdsa_sig::der_to_raw(curve, signature)?
                }
                (SignatureScheme::Ecdsa(curve), SignatureFormat::Raw) => {
                    if signature.len() != 2 * curve.field_len() {
                        return Err(Error::VerificationFailed);
                    }
                    signature.to_vec()
                }
                // RSA, EdDSA and HMAC signatures have one encoding.
                (
                    SignatureScheme::RsaPkcs1v15
                    | SignatureScheme::RsaPss
                    | SignatureScheme::Ed25519
                    | SignatureScheme::Hmac,
                    SignatureFormat::Raw | SignatureFormat::Der,
                ) => signature.to_vec(),
            };
            match input {
                SignInput::Message(m) => self.inner.verify(alg, m, &raw),
                SignInput::Digest(d) => self.inner.verify_digest(alg, checked_digest(alg, d)?, &raw),
            }
        })();
        self.audit("verify", &alg, &r);
        r
    }

    /// The longest signature `alg` makes with this key in `format` (a raw signature's
    /// exact length; DER's bound), for callers that size buffers first (the C ABI).
    pub fn max_signature_len(&self, alg: SignatureAlgorithm, format: SignatureFormat) -> Result<usize> {
        let raw = alg.signature_len(self.spec()).ok_or_else(|| {
            Error::invalid(
                InvalidReason::KeyMismatch,
                format!("algorithm {alg} does not fit key '{}' ({})", self.name(), self.spec()),
            )
        })?;
        match (alg.scheme(), format) {
            // SEQUENCE header (3) and two INTEGERs (2-byte header and a sign byte each).
            (SignatureScheme::Ecdsa(_), SignatureFormat::Der) => Ok(raw + 9),
            (_, SignatureFormat::Raw | SignatureFormat::Der) => Ok(raw),
        }
    }

    /// The length of an `alg` ciphertext with this (RSA) key: the modulus length.
    pub fn max_ciphertext_len(&self, alg: EncryptionAlgorithm) -> Result<usize> {
        let _ = alg;
        self.rsa_modulus_len()
    }

    /// The longest output of [`wrap_key`](Self::wrap_key) for a key of `key_len` bytes.
    pub fn max_wrapped_len(&self, alg: KeyWrapAlgorithm, key_len: usize) -> Result<usize> {
        let too_long = || Error::invalid(InvalidReason::Length, "key too long to wrap");
        match alg.scheme() {
            // RFC 3394 adds one 8-byte block; RFC 5649 pads to 8 bytes and adds one.
            WrapScheme::AesKw(_) => key_len.checked_add(8).ok_or_else(too_long),
            WrapScheme::AesKwp(_) => {
                key_len.div_ceil(8).checked_mul(8).and_then(|n| n.checked_add(8)).ok_or_else(too_long)
            }
            WrapScheme::RsaOaep(_) => self.rsa_modulus_len(),
        }
    }

    fn rsa_modulus_len(&self) -> Result<usize> {
        match self.spec() {
            KeySpec::Rsa { bits } => usize::try_from(bits.div_ceil(8))
                .map_err(|_| Error::invalid(InvalidReason::Length, "modulus too large")),
            KeySpec::Ec(_) | KeySpec::Aes(_) | KeySpec::Ed25519 | KeySpec::Hmac { .. } => {
                Err(Error::invalid(
                    InvalidReason::KeyMismatch,
                    format!("key '{}' is not an RSA key", self.name()),
                ))
            }
        }
    }

    /// Encrypts with RSA-OAEP and an empty label.
    pub fn encrypt(&self, alg: EncryptionAlgorithm, plaintext: &[u8]) -> Result<Vec<u8>> {
        self.encrypt_with_label(alg, plaintext, &[])
    }

    /// Encrypts with RSA-OAEP and a label (an empty label is no label, RFC 8017).
    pub fn encrypt_with_label(
        &self,
        alg: EncryptionAlgorithm,
        plaintext: &[u8],
        label: &[u8],
    ) -> Result<Vec<u8>> {
        let r = (|| {
            self.guard(KeyOp::Encrypt)?;
            let k = self.rsa_modulus_len()?;
            let max = alg.max_plaintext_len(k);
            if plaintext.len() > max {
                return Err(Error::invalid(
                    InvalidReason::Length,
                    format!("{alg} with this key takes at most {max} bytes"),
                ));
            }
            self.inner.encrypt(alg, plaintext, label)
        })();
        self.audit("encrypt", &alg, &r);
        r
    }

    /// Decrypts RSA-OAEP with an empty label.
    pub fn decrypt(&self, alg: EncryptionAlgorithm, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.decrypt_with_label(alg, ciphertext, &[])
    }

    /// Decrypts RSA-OAEP with a label. Any bad ciphertext, padding or label is the one
    /// [`Error::DecryptionFailed`].
    pub fn decrypt_with_label(
        &self,
        alg: EncryptionAlgorithm,
        ciphertext: &[u8],
        label: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let r = (|| {
            self.guard(KeyOp::Decrypt)?;
            self.rsa_modulus_len()?;
            self.inner.check_algorithm(KeyOp::Decrypt, Algorithm::Encryption(alg))?;
            opaque(self.inner.decrypt(alg, ciphertext, label))
        })();
        self.audit("decrypt", &alg, &r);
        r
    }

    /// Wraps key bytes (AES-KW/KWP with an AES key, RSA-OAEP with an RSA key).
    pub fn wrap_key(&self, alg: KeyWrapAlgorithm, key: &[u8]) -> Result<Vec<u8>> {
        let r = (|| {
            self.guard(KeyOp::WrapKey)?;
            self.fits(alg.fits(self.spec()), &alg)?;
            self.inner.check_algorithm(KeyOp::WrapKey, Algorithm::KeyWrap(alg))?;
            match alg.scheme() {
                WrapScheme::AesKw(_) => {
                    if key.len() < 16 || !key.len().is_multiple_of(8) {
                        return Err(Error::invalid(
                            InvalidReason::Length,
                            format!("{alg} wraps keys of 16 bytes or more, in multiples of 8"),
                        ));
                    }
                }
                WrapScheme::AesKwp(_) => {
                    if key.is_empty() || u32::try_from(key.len()).is_err() {
                        return Err(Error::invalid(
                            InvalidReason::Length,
                            format!("{alg} wraps 1 to 2^32-1 bytes"),
                        ));
                    }
                }
                WrapScheme::RsaOaep(enc) => {
                    let max = enc.max_plaintext_len(self.rsa_modulus_len()?);
                    if key.is_empty() || key.len() > max {
                        return Err(Error::invalid(
                            InvalidReason::Length,
                            format!("{alg} with this key wraps 1 to {max} bytes"),
                        ));
                    }
                }
            }
            self.inner.wrap_key(alg, key)
        })();
        self.audit("wrapKey", &alg, &r);
        r
    }

    /// Unwraps key bytes. Any bad input is the one [`Error::DecryptionFailed`].
    pub fn unwrap_key(&self, alg: KeyWrapAlgorithm, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let r = (|| {
            self.guard(KeyOp::UnwrapKey)?;
            self.fits(alg.fits(self.spec()), &alg)?;
            self.inner.check_algorithm(KeyOp::UnwrapKey, Algorithm::KeyWrap(alg))?;
            // RFC 3394 needs at least two semiblocks of plaintext, RFC 5649 one; some
            // engines accept shorter inputs (aes-kw did), so the checks are made here.
            let min = match alg.scheme() {
                WrapScheme::AesKw(_) => 24,
                WrapScheme::AesKwp(_) => 16,
                WrapScheme::RsaOaep(_) => 1,
            };
            let aes = !matches!(alg.scheme(), WrapScheme::RsaOaep(_));
            if wrapped.len() < min || (aes && !wrapped.len().is_multiple_of(8)) {
                return Err(Error::DecryptionFailed);
            }
            opaque(self.inner.unwrap_key(alg, wrapped))
        })();
        self.audit("unwrapKey", &alg, &r);
        r
    }

    /// The key material of an exportable key (software backend only).
    pub fn export(&self) -> Result<KeyMaterial> {
        let info = self.info();
        let r = if info.spec.key_type() == crate::KeyType::Hmac || !info.attributes.exportable {
            Err(Error::PermissionDenied { key: info.name.clone(), reason: Denied::NotExportable })
        } else if !info.attributes.enabled {
            Err(Error::PermissionDenied { key: info.name.clone(), reason: Denied::Disabled })
        } else {
            self.inner.export()
        };
        self.ctx.emit(&info.name, Some(info.version), "export", None, &r);
        r
    }
}

/// `digest`, if `alg` signs digests and it has the prehash's length.
fn checked_digest(alg: SignatureAlgorithm, digest: &[u8]) -> Result<&[u8]> {
    match alg.prehash() {
        Some(hash) if digest.len() == hash.output_len() => Ok(digest),
        Some(hash) => Err(Error::invalid(
            InvalidReason::Length,
            format!("{alg} takes a {}-byte digest, not {} bytes", hash.output_len(), digest.len()),
        )),
        None => Err(Error::invalid(
            InvalidReason::Parameter,
            format!("{alg} signs the whole message: it takes no digest"),
        )),
    }
}

fn encode_signature(alg: SignatureAlgorithm, raw: Vec<u8>, format: SignatureFormat) -> Result<Vec<u8>> {
    match (alg.scheme(), format) {
        (SignatureScheme::Ecdsa(curve), SignatureFormat::Der) => ecdsa_sig::raw_to_der(curve, &raw),
        (_, SignatureFormat::Raw | SignatureFormat::Der) => Ok(raw),
    }
}

/// Folds every decryption-side failure that could reveal something about the input into
/// the one opaque error.
fn opaque<T>(r: Result<T>) -> Result<T> {
    r.map_err(|e| match e {
        Error::Unsupported { .. }
        | Error::Backend(_)
        | Error::Authentication(_)
        | Error::PermissionDenied { .. } => e,
        Error::NotFound { .. }
        | Error::AlreadyExists { .. }
        | Error::InvalidInput { .. }
        | Error::VerificationFailed
        | Error::DecryptionFailed
        | Error::Io { .. } => Error::DecryptionFailed,
    })
}
