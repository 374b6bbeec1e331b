//! A [`rustls::sign::SigningKey`] over a store key (feature `rustls`): a rustls server or
//! client presents a certificate whose private key stays in its backend.
//!
//! ```no_run
//! # fn main() -> hsmkit::Result<()> {
//! # let store = hsmkit::Store::new(hsmkit_soft::SoftBackend::new());
//! # let chain: Vec<rustls::pki_types::CertificateDer<'static>> = Vec::new();
//! let key = store.get_key("tls-server")?;
//! let certified = hsmkit::tls::certified_key(key, chain)?;
//! // `certified` goes to a `ResolvesServerCert` (e.g. rustls' `SingleCertAndKey`).
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, SubjectPublicKeyInfoDer};
use rustls::sign::{CertifiedKey, Signer};
use rustls::{SignatureAlgorithm as TlsAlgorithm, SignatureScheme};

use crate::algorithm::{SignatureAlgorithm, SignatureFormat};
use crate::error::{Error, InvalidReason, Result};
use crate::key::{Key, SignInput};
use crate::spec::{EcCurve, KeySpec};
use crate::{Algorithm, KeyOp};

/// The TLS signature schemes a key of `spec` can make, best first, with hsmkit's
/// algorithm for each. RSA: PSS first (TLS 1.3 allows nothing else), then PKCS#1 v1.5
/// for TLS 1.2 peers. secp256k1 has no TLS scheme.
fn schemes(spec: KeySpec) -> &'static [(SignatureScheme, SignatureAlgorithm)] {
    use SignatureAlgorithm as A;
    use SignatureScheme as S;
    match spec {
        KeySpec::Rsa { .. } => &[
            (S::RSA_PSS_SHA256, A::Ps256),
            (S::RSA_PSS_SHA384, A::Ps384),
            (S::RSA_PSS_SHA512, A::Ps512),
            (S::RSA_PKCS1_SHA256, A::Rs256),
            (S::RSA_PKCS1_SHA384, A::Rs384),
            (S::RSA_PKCS1_SHA512, A::Rs512),
        ],
        KeySpec::Ec(EcCurve::P256) => &[(S::ECDSA_NISTP256_SHA256, A::Es256)],
        KeySpec::Ec(EcCurve::P384) => &[(S::ECDSA_NISTP384_SHA384, A::Es384)],
        KeySpec::Ec(EcCurve::P521) => &[(S::ECDSA_NISTP521_SHA512, A::Es512)],
        KeySpec::Ed25519 => &[(S::ED25519, A::EdDsa)],
        KeySpec::Ec(EcCurve::P256K) | KeySpec::Aes(_) | KeySpec::Hmac { .. } => &[],
    }
}

/// A store key as rustls' signing key. Each handshake signature is one
/// [`Key::sign`](crate::Key::sign_with) by the backend, audited as any other.
pub struct TlsSigningKey {
    key: Key,
    spki: Vec<u8>,
    algorithm: TlsAlgorithm,
}

impl fmt::Debug for TlsSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSigningKey").field("key", &self.key).finish_non_exhaustive()
    }
}

impl TlsSigningKey {
    /// Wraps `key`. A key with no TLS signature scheme it may sign with (AES, HMAC,
    /// secp256k1, or a key whose allowed operations exclude signing) is
    /// [`Error::InvalidInput`].
    pub fn new(key: Key) -> Result<Self> {
        let algorithm = match key.spec() {
            KeySpec::Rsa { .. } => TlsAlgorithm::RSA,
            KeySpec::Ec(EcCurve::P256 | EcCurve::P384 | EcCurve::P521) => TlsAlgorithm::ECDSA,
            KeySpec::Ed25519 => TlsAlgorithm::ED25519,
            KeySpec::Ec(EcCurve::P256K) | KeySpec::Aes(_) | KeySpec::Hmac { .. } => {
                return Err(Error::invalid(
                    InvalidReason::KeyMismatch,
                    format!("key '{}' ({}) has no TLS signature scheme", key.name(), key.spec()),
                ));
            }
        };
        if !schemes(key.spec()).iter().any(|(_, a)| key.supports(KeyOp::Sign, Algorithm::Signature(*a))) {
            return Err(Error::invalid(
                InvalidReason::KeyMismatch,
                format!("key '{}' may not sign with any TLS signature scheme", key.name()),
            ));
        }
        let spki = key.public_key_der()?;
        Ok(TlsSigningKey { key, spki, algorithm })
    }

    /// The key.
    pub fn key(&self) -> &Key {
        &self.key
    }
}

impl rustls::sign::SigningKey for TlsSigningKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        schemes(self.key.spec())
            .iter()
            .find(|(scheme, alg)| {
                offered.contains(scheme) && self.key.supports(KeyOp::Sign, Algorithm::Signature(*alg))
            })
            .map(|(scheme, alg)| {
                let signer: Box<dyn Signer> =
                    Box::new(TlsSigner { key: self.key.clone(), scheme: *scheme, alg: *alg });
                signer
            })
    }

    fn public_key(&self) -> Option<SubjectPublicKeyInfoDer<'_>> {
        Some(SubjectPublicKeyInfoDer::from(self.spki.as_slice()))
    }

    fn algorithm(&self) -> TlsAlgorithm {
        self.algorithm
    }
}

struct TlsSigner {
    key: Key,
    scheme: SignatureScheme,
    alg: SignatureAlgorithm,
}

impl fmt::Debug for TlsSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSigner").field("key", &self.key).field("scheme", &self.scheme).finish()
    }
}

impl Signer for TlsSigner {
    fn sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, rustls::Error> {
        // TLS carries ECDSA signatures in DER.
        self.key
            .sign_with(self.alg, SignInput::Message(message), SignatureFormat::Der)
            .map_err(|e| rustls::Error::General(format!("hsmkit key '{}': {e}", self.key.name())))
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}

/// `key` with its certificate chain (leaf first) for rustls, after checking that the
/// leaf certifies `key`'s public key.
pub fn certified_key(key: Key, chain: Vec<CertificateDer<'static>>) -> Result<CertifiedKey> {
    let leaf = chain
        .first()
        .ok_or_else(|| Error::invalid(InvalidReason::Parameter, "an empty certificate chain"))?;
    let cert = crate::x509::Certificate::from_der(leaf)?;
    if cert.public_key()? != key.public_key()? {
        return Err(Error::invalid(
            InvalidReason::KeyMismatch,
            format!("the certificate for '{}' does not certify key '{}'", cert.subject(), key.name()),
        ));
    }
    Ok(CertifiedKey::new(chain, Arc::new(TlsSigningKey::new(key)?)))
}
