//! The backend interface: what a software keystore or a PKCS#11 token implements.
//!
//! Backends implement raw operations only. Attribute enforcement, algorithm/key checks,
//! signature encodings, hashing and audit live in the core ([`crate::Key`],
//! [`crate::Store`]) so that they are the same for every backend.

use std::fmt;
use std::time::SystemTime;

use zeroize::Zeroizing;

use crate::algorithm::{Algorithm, EncryptionAlgorithm, KeyWrapAlgorithm, SignatureAlgorithm};
use crate::attributes::{KeyAttributes, KeyOp};
use crate::error::{Error, Result};
use crate::material::KeyMaterial;
use crate::public::PublicKey;
use crate::spec::KeySpec;

/// What is known about a key version, without its material.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key name.
    pub name: String,
    /// The version number (1 for a new key).
    pub version: u32,
    /// Type and size.
    pub spec: KeySpec,
    /// Attributes, resolved (allowed operations always set).
    pub attributes: KeyAttributes,
    /// Whether the backend holds a private or secret part (false for imported public keys).
    pub has_private: bool,
    /// When the version was created.
    pub created: SystemTime,
}

impl KeyInfo {
    /// The key id used as JWK `kid`: `name/version`.
    pub fn kid(&self) -> String {
        format!("{}/{}", self.name, self.version)
    }
}

/// The raw operations of one key version inside a backend.
///
/// Inputs are already checked by the core: the algorithm fits the key spec, digests have
/// the hash's length, raw ECDSA signatures have the curve's length, and the attributes
/// allow the operation. Every method has a default that returns [`Error::Unsupported`],
/// so a backend implements what its keys can do.
pub trait BackendKey: Send + Sync + fmt::Debug {
    /// The key's metadata.
    fn info(&self) -> &KeyInfo;

    /// Whether this key's backend can do `op` with `alg`, before any input is looked at,
    /// so that an unsupported algorithm is [`Error::Unsupported`] whatever the input.
    fn check_algorithm(&self, op: KeyOp, alg: Algorithm) -> Result<()> {
        let _ = (op, alg);
        Ok(())
    }

    /// The public key (RSA and EC keys).
    fn public_key(&self) -> Result<PublicKey> {
        Err(Error::unsupported("this key has no public key"))
    }

    /// Signs a digest; ECDSA signatures come back as raw `r || s`.
    fn sign_digest(&self, alg: SignatureAlgorithm, digest: &[u8]) -> Result<Vec<u8>> {
        let _ = digest;
        Err(Error::unsupported(format!("{alg} signing")))
    }

    /// Verifies a signature over a digest; ECDSA signatures are raw `r || s`.
    /// Returns [`Error::VerificationFailed`] for a bad signature.
    fn verify_digest(&self, alg: SignatureAlgorithm, digest: &[u8], signature: &[u8]) -> Result<()> {
        let _ = (digest, signature);
        Err(Error::unsupported(format!("{alg} verification")))
    }

    /// Encrypts with the public key.
    fn encrypt(&self, alg: EncryptionAlgorithm, plaintext: &[u8], label: &[u8]) -> Result<Vec<u8>> {
        let _ = (plaintext, label);
        Err(Error::unsupported(format!("{alg} encryption")))
    }

    /// Decrypts. Every failure to decrypt is [`Error::DecryptionFailed`].
    fn decrypt(
        &self,
        alg: EncryptionAlgorithm,
        ciphertext: &[u8],
        label: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let _ = (ciphertext, label);
        Err(Error::unsupported(format!("{alg} decryption")))
    }

    /// Wraps key bytes.
    fn wrap_key(&self, alg: KeyWrapAlgorithm, key: &[u8]) -> Result<Vec<u8>> {
        let _ = key;
        Err(Error::unsupported(format!("{alg} wrapping")))
    }

    /// Unwraps key bytes. Every failure to unwrap is [`Error::DecryptionFailed`].
    fn unwrap_key(&self, alg: KeyWrapAlgorithm, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let _ = wrapped;
        Err(Error::unsupported(format!("{alg} unwrapping")))
    }

    /// The private or secret material, for keys created exportable on backends that allow
    /// it (the software backend).
    fn export(&self) -> Result<KeyMaterial> {
        Err(Error::unsupported("export of key material from this backend"))
    }
}

/// What a backend can do, so that callers (and the conformance suite) can ask first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// Specs the backend generates.
    pub generate: Vec<KeySpec>,
    /// Whether keys can be imported.
    pub import: bool,
    /// Whether exportable keys can be exported.
    pub export: bool,
    /// Signature algorithms usable for signing.
    pub sign: Vec<SignatureAlgorithm>,
    /// Encryption algorithms usable for decryption (encryption is a public operation).
    pub decrypt: Vec<EncryptionAlgorithm>,
    /// Wrap algorithms usable for wrapping.
    pub wrap: Vec<KeyWrapAlgorithm>,
    /// Wrap algorithms usable for unwrapping.
    pub unwrap: Vec<KeyWrapAlgorithm>,
    /// Whether OAEP decryption takes a non-empty label.
    pub oaep_label: bool,
}

impl Capabilities {
    /// Everything hsmkit knows.
    pub fn all() -> Self {
        Capabilities {
            generate: KeySpec::GENERATABLE.to_vec(),
            import: true,
            export: true,
            sign: SignatureAlgorithm::ALL.to_vec(),
            decrypt: EncryptionAlgorithm::ALL.to_vec(),
            wrap: KeyWrapAlgorithm::ALL.to_vec(),
            unwrap: KeyWrapAlgorithm::ALL.to_vec(),
            oaep_label: true,
        }
    }
}

/// A request to create a key, already validated by the core.
#[derive(Clone, Debug)]
pub struct NewKey<'a> {
    /// The key name (validated).
    pub name: &'a str,
    /// The version number to create.
    pub version: u32,
    /// Resolved attributes.
    pub attributes: &'a KeyAttributes,
}

/// A place where keys live.
///
/// Implementations check nothing the core already checks: names are valid, specs are
/// generatable, attributes are resolved. They do check what only they know: whether a
/// name is taken, whether the token supports a spec.
pub trait Backend: Send + Sync + fmt::Debug {
    /// A short name: `soft`, `pkcs11`.
    fn kind(&self) -> &'static str;

    /// What this backend can do.
    fn capabilities(&self) -> Capabilities;

    /// Generates a key inside the backend.
    fn generate(&self, req: &NewKey<'_>, spec: KeySpec) -> Result<Box<dyn BackendKey>>;

    /// Loads key material into the backend.
    fn import(&self, req: &NewKey<'_>, material: KeyMaterial) -> Result<Box<dyn BackendKey>>;

    /// Opens the current version of the key called `name`.
    fn get(&self, name: &str) -> Result<Box<dyn BackendKey>>;

    /// Metadata of every key.
    fn list(&self) -> Result<Vec<KeyInfo>>;

    /// Destroys every version of the key called `name`.
    fn destroy(&self, name: &str) -> Result<()>;
}
