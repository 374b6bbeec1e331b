//! A key loaded into an engine, and the [`BackendKey`] over it.

use std::fmt;
use std::sync::Arc;

use hsmkit::{
    BackendKey, EncryptionAlgorithm, KeyInfo, KeyMaterial, KeyWrapAlgorithm, PublicKey, Result,
    SignatureAlgorithm, Zeroizing,
};

/// A key in the form the RustCrypto engines use.
pub(crate) enum RcKey {
    RsaPrivate(Box<rsa::PrivateKey>),
    RsaPublic(Box<rsa::PublicKey>),
    P256(Ec<p256::ecdsa::SigningKey, p256::ecdsa::VerifyingKey>),
    P384(Ec<p384::ecdsa::SigningKey, p384::ecdsa::VerifyingKey>),
    P521(Ec<p521::ecdsa::SigningKey, p521::ecdsa::VerifyingKey>),
    P256k(Ec<k256::ecdsa::SigningKey, k256::ecdsa::VerifyingKey>),
    Ed25519(Ec<ed25519_dalek::SigningKey, ed25519_dalek::VerifyingKey>),
    Aes(Zeroizing<Vec<u8>>),
    Hmac(Zeroizing<Vec<u8>>),
}

/// An EC or Ed25519 key: private (which carries its public half) or public only.
pub(crate) enum Ec<S, V> {
    Private(Box<S>),
    Public(Box<V>),
}

impl fmt::Debug for RcKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            RcKey::RsaPrivate(_) => "RSA private",
            RcKey::RsaPublic(_) => "RSA public",
            RcKey::P256(_) => "P-256",
            RcKey::P384(_) => "P-384",
            RcKey::P521(_) => "P-521",
            RcKey::P256k(_) => "P-256K",
            RcKey::Ed25519(_) => "Ed25519",
            RcKey::Aes(_) => "AES",
            RcKey::Hmac(_) => "HMAC",
        };
        write!(f, "RcKey({kind}, [REDACTED])")
    }
}

impl RcKey {
    /// The RSA public key, borrowed (cloning it would redo its Montgomery parameters).
    pub(crate) fn rsa_public(&self) -> Option<&rsa::PublicKey> {
        match self {
            RcKey::RsaPrivate(k) => Some(k.as_public_key()),
            RcKey::RsaPublic(k) => Some(k),
            RcKey::P256(_)
            | RcKey::P384(_)
            | RcKey::P521(_)
            | RcKey::P256k(_)
            | RcKey::Ed25519(_)
            | RcKey::Aes(_)
            | RcKey::Hmac(_) => None,
        }
    }

    pub(crate) fn load(material: &KeyMaterial) -> Result<Self> {
        crate::import::import(material).map(|(_, e)| e)
    }
}

/// A key loaded for use: the RustCrypto form (always: it exports the public key) and,
/// on the aws-lc engine, the AWS-LC form that does the operations. Loading an RSA key
/// costs milliseconds, so backends keep one per key version (see [`EngineKey::new`]).
pub struct Loaded {
    pub(crate) engine: RcKey,
    #[cfg(feature = "aws-lc")]
    pub(crate) aws: Option<crate::aws::AwsKey>,
}

impl Loaded {
    /// Loads (and validates) `material` into `choice`.
    pub fn load(material: &KeyMaterial, choice: crate::Engine) -> Result<Self> {
        Self::new(RcKey::load(material)?, material, choice)
    }

    pub(crate) fn new(engine: RcKey, material: &KeyMaterial, choice: crate::Engine) -> Result<Self> {
        #[cfg(feature = "aws-lc")]
        let aws = match choice {
            crate::Engine::AwsLc if crate::aws::serves(material) => Some(crate::aws::AwsKey::load(material)?),
            // The RustCrypto form does the operations AWS-LC does not serve well.
            crate::Engine::AwsLc | crate::Engine::RustCrypto => None,
        };
        #[cfg(not(feature = "aws-lc"))]
        let _ = (material, choice);
        Ok(Loaded {
            engine,
            #[cfg(feature = "aws-lc")]
            aws,
        })
    }
}

impl fmt::Debug for Loaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.engine.fmt(f)
    }
}

/// Runs `$aws` on the AWS-LC form when there is one, else `$rc` on the RustCrypto form.
macro_rules! dispatch {
    ($loaded:expr, |$a:ident| $aws:expr, |$e:ident| $rc:expr) => {{
        #[cfg(feature = "aws-lc")]
        if let Some($a) = &$loaded.aws {
            return $aws;
        }
        let $e = &$loaded.engine;
        $rc
    }};
}

/// Verifies with a public key no backend holds (see [`hsmkit::CryptoProvider::verify`]).
pub(crate) fn verify_public(
    choice: crate::Engine,
    key: &PublicKey,
    alg: SignatureAlgorithm,
    message: &[u8],
    signature: &[u8],
) -> Result<()> {
    if !alg.fits(key.spec()) {
        return Err(hsmkit::Error::invalid(
            hsmkit::InvalidReason::KeyMismatch,
            format!("algorithm {alg} does not fit a {} public key", key.spec()),
        ));
    }
    let loaded = Loaded::load(&KeyMaterial::Public(key.clone()), choice)?;
    dispatch!(loaded, |a| a.verify(alg, message, signature), |e| crate::sign::verify(
        e, alg, message, signature
    ))
}

/// A key version whose operations an engine runs: every key of the software backend, and
/// the public half of a token key (see [`crate::public_key_ops`]).
pub struct EngineKey {
    info: KeyInfo,
    loaded: Arc<Loaded>,
    material: Arc<KeyMaterial>,
}

impl EngineKey {
    /// A key version over `loaded`, the engine form of `material`. [`BackendKey::export`]
    /// gives `material` back.
    pub fn new(info: KeyInfo, loaded: Arc<Loaded>, material: Arc<KeyMaterial>) -> Self {
        EngineKey { info, loaded, material }
    }

    /// Refuses a private operation on a public key, naming the key.
    fn private(&self) -> Result<()> {
        if self.info.has_private {
            Ok(())
        } else {
            Err(hsmkit::Error::PermissionDenied {
                key: self.info.name.clone(),
                reason: hsmkit::Denied::PublicOnly,
            })
        }
    }
}

impl fmt::Debug for EngineKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineKey").field("info", &self.info).finish_non_exhaustive()
    }
}

impl BackendKey for EngineKey {
    fn info(&self) -> &KeyInfo {
        &self.info
    }

    fn public_key(&self) -> Result<PublicKey> {
        crate::export::public_key(&self.loaded.engine)
    }

    fn sign(&self, alg: SignatureAlgorithm, message: &[u8]) -> Result<Vec<u8>> {
        self.private()?;
        dispatch!(self.loaded, |a| a.sign(alg, message), |e| crate::sign::sign(e, alg, message))
    }

    fn verify(&self, alg: SignatureAlgorithm, message: &[u8], signature: &[u8]) -> Result<()> {
        dispatch!(self.loaded, |a| a.verify(alg, message, signature), |e| crate::sign::verify(
            e, alg, message, signature
        ))
    }

    fn sign_digest(&self, alg: SignatureAlgorithm, digest: &[u8]) -> Result<Vec<u8>> {
        self.private()?;
        dispatch!(self.loaded, |a| a.sign_digest(alg, digest), |e| crate::sign::sign_digest(e, alg, digest))
    }

    fn verify_digest(&self, alg: SignatureAlgorithm, digest: &[u8], signature: &[u8]) -> Result<()> {
        dispatch!(self.loaded, |a| a.verify_digest(alg, digest, signature), |e| crate::sign::verify_digest(
            e, alg, digest, signature
        ))
    }

    fn encrypt(&self, alg: EncryptionAlgorithm, plaintext: &[u8], label: &[u8]) -> Result<Vec<u8>> {
        dispatch!(self.loaded, |a| a.encrypt(alg, plaintext, label), |e| crate::encrypt::encrypt(
            e, alg, plaintext, label
        ))
    }

    fn decrypt(
        &self,
        alg: EncryptionAlgorithm,
        ciphertext: &[u8],
        label: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        self.private()?;
        dispatch!(self.loaded, |a| a.decrypt(alg, ciphertext, label), |e| crate::encrypt::decrypt(
            e, alg, ciphertext, label
        ))
    }

    fn wrap_key(&self, alg: KeyWrapAlgorithm, key: &[u8]) -> Result<Vec<u8>> {
        #[cfg(feature = "aws-lc")]
        if !crate::aws::wraps(alg) {
            return crate::wrap::wrap_key(&self.loaded.engine, alg, key);
        }
        dispatch!(self.loaded, |a| a.wrap_key(alg, key), |e| crate::wrap::wrap_key(e, alg, key))
    }

    fn unwrap_key(&self, alg: KeyWrapAlgorithm, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.private()?;
        #[cfg(feature = "aws-lc")]
        if !crate::aws::wraps(alg) {
            return crate::wrap::unwrap_key(&self.loaded.engine, alg, wrapped);
        }
        dispatch!(self.loaded, |a| a.unwrap_key(alg, wrapped), |e| crate::wrap::unwrap_key(e, alg, wrapped))
    }

    fn export(&self) -> Result<KeyMaterial> {
        Ok((*self.material).clone())
    }

    fn crypto(&self) -> &'static dyn hsmkit::CryptoProvider {
        #[cfg(feature = "aws-lc")]
        if self.loaded.aws.is_some() {
            return crate::Engine::AwsLc.provider();
        }
        crate::Engine::RustCrypto.provider()
    }
}
