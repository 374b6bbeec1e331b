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
use crate::hazmat::aead::Aes256GcmEngine;
use crate::lifecycle::{KeyDescription, KeyState, StoreSettings};
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
    /// When its attributes last changed.
    pub updated: SystemTime,
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

    /// The AES-256-GCM that envelopes whose data key this key wraps are sealed and opened
    /// with: the engine's own, so a fast engine seals fast. Every engine gives the same
    /// bytes.
    fn aes_gcm(&self) -> &'static dyn Aes256GcmEngine {
        &crate::hazmat::aead::RUSTCRYPTO
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
    /// Which implementation does the cryptography: `"rustcrypto"` or `"aws-lc"` for the
    /// software backend, `"pkcs11"` for a token.
    pub engine: &'static str,
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
            engine: "rustcrypto",
        }
    }
}

/// A request to create a key version, already validated by the core.
#[derive(Clone, Debug)]
pub struct NewKey<'a> {
    /// The key name (validated).
    pub name: &'a str,
    /// The version to create: 1 creates the key, later numbers add a version.
    pub version: u32,
    /// Resolved attributes.
    pub attributes: &'a KeyAttributes,
    /// The creation time (from the store's clock).
    pub created: SystemTime,
}

impl NewKey<'_> {
    /// The metadata of the version this request creates.
    pub fn info(&self, spec: KeySpec, has_private: bool) -> KeyInfo {
        KeyInfo {
            name: self.name.to_owned(),
            version: self.version,
            spec,
            attributes: self.attributes.clone(),
            has_private,
            created: self.created,
            updated: self.created,
        }
    }
}

/// A change to a key version's metadata, run by the backend as one atomic step.
pub type VersionEdit<'a> = &'a mut dyn FnMut(&mut KeyInfo) -> Result<()>;
/// A change to a key's state, run by the backend as one atomic step.
pub type StateEdit<'a> = &'a mut dyn FnMut(&mut KeyState) -> Result<()>;
/// A change to the store settings, run by the backend as one atomic step.
pub type SettingsEdit<'a> = &'a mut dyn FnMut(&mut StoreSettings) -> Result<()>;

/// A place where keys live.
///
/// Backends store keys and their lifecycle documents; the lifecycle rules (what may be
/// rotated, deleted, recovered, purged and when) live in [`crate::Store`], so they are
/// the same for every backend. Edits take a closure that the backend runs on freshly
/// read state and then writes back as one step: under a lock that other processes
/// respect where the backend has one (the file keystore), so that concurrent changes
/// are not lost.
///
/// Implementations check nothing the core already checks: names are valid, specs are
/// generatable, attributes are resolved.
pub trait Backend: Send + Sync + fmt::Debug {
    /// A short name: `soft`, `pkcs11`.
    fn kind(&self) -> &'static str;

    /// What this backend can do.
    fn capabilities(&self) -> Capabilities;

    /// Generates version `req.version` of a key. For version 1 the name must be free
    /// (not even a deleted key holds it), else [`Error::AlreadyExists`]; for a later
    /// version the key must exist ([`Error::NotFound`]) and the version must be new
    /// ([`Error::AlreadyExists`], and the core retries with the next number).
    fn generate(&self, req: &NewKey<'_>, spec: KeySpec) -> Result<Box<dyn BackendKey>>;

    /// Loads key material as version `req.version`, with the rules of
    /// [`generate`](Self::generate).
    fn import(&self, req: &NewKey<'_>, material: KeyMaterial) -> Result<Box<dyn BackendKey>>;

    /// The number the next version of `key` gets: by default one more than the newest.
    /// (A backend that can hold leftovers of an interrupted create skips past them.)
    fn next_version(&self, key: &KeyDescription) -> Result<u32> {
        key.max_version().checked_add(1).ok_or_else(|| Error::invalid("too many versions"))
    }

    /// Opens one version of a key (deleted or not: the core decides).
    fn open(&self, name: &str, version: u32) -> Result<Box<dyn BackendKey>>;

    /// A key's state and versions; [`Error::NotFound`] if there is no such key.
    fn describe(&self, name: &str) -> Result<KeyDescription>;

    /// Every key, deleted ones included.
    fn list(&self) -> Result<Vec<KeyDescription>>;

    /// Changes one version's metadata atomically; returns the new metadata.
    fn update_version(&self, name: &str, version: u32, edit: VersionEdit<'_>) -> Result<KeyInfo>;

    /// Changes a key's state atomically; returns the new state.
    fn update_state(&self, name: &str, edit: StateEdit<'_>) -> Result<KeyState>;

    /// Destroys every version of a key, if `check` (run on the fresh state, atomically
    /// with the purge) allows it.
    fn purge(&self, name: &str, check: StateEdit<'_>) -> Result<()>;

    /// The store settings.
    fn settings(&self) -> Result<StoreSettings>;

    /// Changes the store settings atomically; returns the new settings.
    fn update_settings(&self, edit: SettingsEdit<'_>) -> Result<StoreSettings>;
}
