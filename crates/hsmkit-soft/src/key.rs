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

/// A software key version.
pub(crate) struct SoftKey {
    info: KeyInfo,
    pub(crate) engine: Arc<Engine>,
    pub(crate) material: Arc<KeyMaterial>,
}

impl SoftKey {
    pub(crate) fn new(info: KeyInfo, engine: Arc<Engine>, material: Arc<KeyMaterial>) -> Self {
        SoftKey { info, engine, material }
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
        crate::export::public_key(&self.engine)
    }

    fn sign_digest(&self, alg: SignatureAlgorithm, digest: &[u8]) -> Result<Vec<u8>> {
        crate::sign::sign_digest(&self.engine, alg, digest)
    }

    fn verify_digest(&self, alg: SignatureAlgorithm, digest: &[u8], signature: &[u8]) -> Result<()> {
        crate::sign::verify_digest(&self.engine, alg, digest, signature)
    }

    fn encrypt(&self, alg: EncryptionAlgorithm, plaintext: &[u8], label: &[u8]) -> Result<Vec<u8>> {
        crate::encrypt::encrypt(&self.engine, alg, plaintext, label)
    }

    fn decrypt(
        &self,
        alg: EncryptionAlgorithm,
        ciphertext: &[u8],
        label: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        crate::encrypt::decrypt(&self.engine, alg, ciphertext, label)
    }

    fn wrap_key(&self, alg: KeyWrapAlgorithm, key: &[u8]) -> Result<Vec<u8>> {
        crate::wrap::wrap_key(&self.engine, alg, key)
    }

    fn unwrap_key(&self, alg: KeyWrapAlgorithm, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        crate::wrap::unwrap_key(&self.engine, alg, wrapped)
    }

    fn export(&self) -> Result<KeyMaterial> {
        Ok((*self.material).clone())
    }
}
