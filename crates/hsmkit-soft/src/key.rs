//! The software key: parsed engine objects plus the record they came from.

use std::fmt;
use std::sync::Arc;

use hsmkit::{
    BackendKey, EncryptionAlgorithm, KeyInfo, KeyMaterial, KeyWrapAlgorithm, PublicKey, Result,
    SignatureAlgorithm, Zeroizing,
};

/// A key in the form the RustCrypto engines use.
pub(crate) enum Engine {
    RsaPrivate(Box<rsa::PrivateKey>),
    RsaPublic(Box<rsa::PublicKey>),
    P256(Ec<p256::ecdsa::SigningKey, p256::ecdsa::VerifyingKey>),
    P384(Ec<p384::ecdsa::SigningKey, p384::ecdsa::VerifyingKey>),
    P521(Ec<p521::ecdsa::SigningKey, p521::ecdsa::VerifyingKey>),
    Aes(Zeroizing<Vec<u8>>),
}

/// An EC key: private (which carries its public half) or public only.
pub(crate) enum Ec<S, V> {
    Private(Box<S>),
    Public(Box<V>),
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Engine::RsaPrivate(_) => "RSA private",
            Engine::RsaPublic(_) => "RSA public",
            Engine::P256(_) => "P-256",
            Engine::P384(_) => "P-384",
            Engine::P521(_) => "P-521",
            Engine::Aes(_) => "AES",
        };
        write!(f, "Engine({kind}, [REDACTED])")
    }
}

impl Engine {
    /// The RSA public key, borrowed (cloning it would redo its Montgomery parameters).
    pub(crate) fn rsa_public(&self) -> Option<&rsa::PublicKey> {
        match self {
            Engine::RsaPrivate(k) => Some(k.as_public_key()),
            Engine::RsaPublic(k) => Some(k),
            _ => None,
        }
    }

    pub(crate) fn load(material: &KeyMaterial) -> Result<Self> {
        crate::import::import(material).map(|(_, e)| e)
    }
}

/// A key loaded for use: the RustCrypto form (always: it exports the public key) and,
/// when the backend runs the aws-lc engine, the AWS-LC form that does the operations.
pub(crate) struct Loaded {
    pub(crate) engine: Engine,
    #[cfg(feature = "aws-lc")]
    pub(crate) aws: Option<crate::aws::AwsKey>,
}

impl Loaded {
    pub(crate) fn new(engine: Engine, material: &KeyMaterial, choice: crate::SoftEngine) -> Result<Self> {
        #[cfg(feature = "aws-lc")]
        let aws = match choice {
            crate::SoftEngine::AwsLc => Some(crate::aws::AwsKey::load(material)?),
            crate::SoftEngine::RustCrypto => None,
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

/// A software key version.
pub(crate) struct SoftKey {
    info: KeyInfo,
    pub(crate) loaded: Arc<Loaded>,
    pub(crate) material: Arc<KeyMaterial>,
}

impl SoftKey {
    pub(crate) fn new(info: KeyInfo, loaded: Arc<Loaded>, material: Arc<KeyMaterial>) -> Self {
        SoftKey { info, loaded, material }
    }
}

impl fmt::Debug for SoftKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftKey").field("info", &self.info).finish_non_exhaustive()
    }
}

impl BackendKey for SoftKey {
    fn info(&self) -> &KeyInfo {
        &self.info
    }

    fn public_key(&self) -> Result<PublicKey> {
        crate::export::public_key(&self.loaded.engine)
    }

    fn sign_digest(&self, alg: SignatureAlgorithm, digest: &[u8]) -> Result<Vec<u8>> {
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
        #[cfg(feature = "aws-lc")]
        if !crate::aws::wraps(alg) {
            return crate::wrap::unwrap_key(&self.loaded.engine, alg, wrapped);
        }
        dispatch!(self.loaded, |a| a.unwrap_key(alg, wrapped), |e| crate::wrap::unwrap_key(e, alg, wrapped))
    }

    fn export(&self) -> Result<KeyMaterial> {
        Ok((*self.material).clone())
    }

    fn aes_gcm(&self) -> &'static dyn hsmkit::hazmat::aead::Aes256GcmEngine {
        #[cfg(feature = "aws-lc")]
        if self.loaded.aws.is_some() {
            return crate::SoftEngine::AwsLc.aes_gcm();
        }
        crate::SoftEngine::RustCrypto.aes_gcm()
    }
}
