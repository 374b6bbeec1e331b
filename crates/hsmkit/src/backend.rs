//! The backend interface: what a software keystore or a PKCS#11 token implements.
//!
//! Backends implement raw operations only. Attribute enforcement, algorithm/key checks,
//! signature encodings, hashing and audit live in the core ([`crate::Key`],
//! [`crate::Store`]) so that they are the same for every backend.

use crate::error::UnsupportedReason;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use zeroize::Zeroizing;

use crate::algorithm::{Algorithm, EncryptionAlgorithm, KeyWrapAlgorithm, SignatureAlgorithm};
use crate::attributes::{KeyAttributes, KeyOp};
use crate::crypto::CryptoProvider;
use crate::error::{Error, Result};
use crate::lifecycle::StoreSettings;
use crate::material::KeyMaterial;
use crate::metadata::MetadataStore;
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
    /// What ties this version to its objects in the backend.
    pub binding: KeyBinding,
}

/// What ties a key version's metadata to its objects in the backend: something an
/// unauthenticated party cannot forge, never a label alone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyBinding {
    /// The backend's id of the version's objects: a random PKCS#11 `CKA_ID`, or the
    /// software backend's material id. Empty for keys made by other tools (found by label).
    pub object_id: Vec<u8>,
    /// SHA-256 of the public key's SubjectPublicKeyInfo DER, pinned when the version was
    /// created or imported: a public key that does not match it is refused.
    pub public_sha256: Option<[u8; 32]>,
}

impl KeyBinding {
    /// The fingerprint [`KeyBinding::public_sha256`] pins.
    pub fn fingerprint(crypto: &dyn CryptoProvider, public: &PublicKey) -> Result<[u8; 32]> {
        let digest = crypto.digest(crate::HashAlg::Sha256, &public.to_spki_der()?);
        <[u8; 32]>::try_from(digest.as_slice()).map_err(|_| {
            Error::backend(crypto.name(), "SHA-256", format!("{} bytes returned, not 32", digest.len()))
        })
    }

    /// Checks `public` against the pinned fingerprint (a version without one passes).
    pub fn check_public(
        &self,
        crypto: &dyn CryptoProvider,
        name: &str,
        version: u32,
        public: &PublicKey,
    ) -> Result<()> {
        match self.public_sha256 {
            Some(pinned) if pinned != Self::fingerprint(crypto, public)? => Err(Error::backend(
                "store",
                "public-key binding",
                format!(
                    "the public key found for key '{}' version {version} is not the one pinned when it \
                     was created (SPKI SHA-256 differs): refusing it",
                    name.escape_debug()
                ),
            )),
            _ => Ok(()),
        }
    }
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

    /// The provider that hashes for the default [`sign`](Self::sign) and
    /// [`verify`](Self::verify): the backend's engine.
    fn crypto(&self) -> &'static dyn CryptoProvider;

    /// Whether this key's backend can do `op` with `alg`, before any input is looked at,
    /// so that an unsupported algorithm is [`Error::Unsupported`] whatever the input.
    fn check_algorithm(&self, op: KeyOp, alg: Algorithm) -> Result<()> {
        let _ = (op, alg);
        Ok(())
    }

    /// The public key (RSA and EC keys).
    fn public_key(&self) -> Result<PublicKey> {
        Err(Error::unsupported(UnsupportedReason::Operation, "this key has no public key"))
    }

    /// Signs `message`; ECDSA signatures come back as raw `r || s`.
    ///
    /// The default hashes the message with the algorithm's
    /// [`prehash`](SignatureAlgorithm::prehash) and calls
    /// [`sign_digest`](Self::sign_digest); a backend whose engine hashes itself (aws-lc, a
    /// token's `CKM_SHA256_RSA_PKCS`), or whose algorithm has no prehash (EdDSA, HMAC),
    /// overrides it.
    fn sign(&self, alg: SignatureAlgorithm, message: &[u8]) -> Result<Vec<u8>> {
        match alg.prehash() {
            Some(hash) => self.sign_digest(alg, &self.crypto().digest(hash, message)),
            None => Err(Error::unsupported(UnsupportedReason::Algorithm, format!("{alg} signing"))),
        }
    }

    /// Verifies a signature over `message` (ECDSA: raw `r || s`); the default hashes as
    /// [`sign`](Self::sign) does. Returns [`Error::VerificationFailed`] for a bad
    /// signature.
    fn verify(&self, alg: SignatureAlgorithm, message: &[u8], signature: &[u8]) -> Result<()> {
        match alg.prehash() {
            Some(hash) => self.verify_digest(alg, &self.crypto().digest(hash, message), signature),
            None => Err(Error::unsupported(UnsupportedReason::Algorithm, format!("{alg} verification"))),
        }
    }

    /// Hazmat: signs a digest the caller computed, for algorithms that have a
    /// [`prehash`](SignatureAlgorithm::prehash); ECDSA signatures come back as raw `r || s`.
    fn sign_digest(&self, alg: SignatureAlgorithm, digest: &[u8]) -> Result<Vec<u8>> {
        let _ = digest;
        Err(Error::unsupported(UnsupportedReason::Algorithm, format!("{alg} signing")))
    }

    /// Hazmat: verifies a signature over a digest; ECDSA signatures are raw `r || s`.
    /// Returns [`Error::VerificationFailed`] for a bad signature.
    fn verify_digest(&self, alg: SignatureAlgorithm, digest: &[u8], signature: &[u8]) -> Result<()> {
        let _ = (digest, signature);
        Err(Error::unsupported(UnsupportedReason::Algorithm, format!("{alg} verification")))
    }

    /// Encrypts with the public key.
    fn encrypt(&self, alg: EncryptionAlgorithm, plaintext: &[u8], label: &[u8]) -> Result<Vec<u8>> {
        let _ = (plaintext, label);
        Err(Error::unsupported(UnsupportedReason::Algorithm, format!("{alg} encryption")))
    }

    /// Decrypts. Every failure to decrypt is [`Error::DecryptionFailed`].
    fn decrypt(
        &self,
        alg: EncryptionAlgorithm,
        ciphertext: &[u8],
        label: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let _ = (ciphertext, label);
        Err(Error::unsupported(UnsupportedReason::Algorithm, format!("{alg} decryption")))
    }

    /// Wraps key bytes.
    fn wrap_key(&self, alg: KeyWrapAlgorithm, key: &[u8]) -> Result<Vec<u8>> {
        let _ = key;
        Err(Error::unsupported(UnsupportedReason::Algorithm, format!("{alg} wrapping")))
    }

    /// Unwraps key bytes. Every failure to unwrap is [`Error::DecryptionFailed`].
    fn unwrap_key(&self, alg: KeyWrapAlgorithm, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let _ = wrapped;
        Err(Error::unsupported(UnsupportedReason::Algorithm, format!("{alg} unwrapping")))
    }

    /// The private or secret material, for keys created exportable on backends that allow
    /// it (the software backend).
    fn export(&self) -> Result<KeyMaterial> {
        Err(Error::unsupported(UnsupportedReason::Operation, "export of key material from this backend"))
    }
}

/// What a backend can do, so that callers (and the conformance suite) can ask first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// Specs the backend generates.
    pub generate: Vec<KeySpec>,
    /// Whether keys can be imported (a backend that cannot may say why in a note that
    /// starts with `import: `, which the refusal quotes).
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
    /// What holds the key metadata (see [`crate::MetadataStore::kind`]); filled in by
    /// [`crate::Store::capabilities`].
    pub metadata: &'static str,
    /// Facts about the backend a user should know, each one line (for example that a
    /// token does not honour key-wrapping templates).
    pub notes: Vec<String>,
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
            metadata: "memory",
            notes: Vec::new(),
        }
    }

    /// As JSON (for `hsmkit info --json`, Python and C): algorithm and spec names as
    /// hsmkit writes them.
    pub fn to_json(&self) -> serde_json::Value {
        let names = |v: Vec<String>| serde_json::Value::from(v);
        serde_json::json!({
            "engine": self.engine,
            "metadata": self.metadata,
            "generate": names(self.generate.iter().map(ToString::to_string).collect()),
            "import": self.import,
            "export": self.export,
            "sign": names(self.sign.iter().map(ToString::to_string).collect()),
            "decrypt": names(self.decrypt.iter().map(ToString::to_string).collect()),
            "wrap": names(self.wrap.iter().map(ToString::to_string).collect()),
            "unwrap": names(self.unwrap.iter().map(ToString::to_string).collect()),
            "oaep_label": self.oaep_label,
            "notes": self.notes,
        })
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
    /// A fresh random id for the version's backend objects (a PKCS#11 `CKA_ID`, the
    /// software backend's material id): the version's [`KeyBinding::object_id`].
    pub object_id: [u8; 16],
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
            binding: KeyBinding { object_id: self.object_id.to_vec(), public_sha256: None },
        }
    }
}

/// A change to the store settings, run by the metadata store as one atomic step.
pub type SettingsEdit<'a> = &'a mut dyn FnMut(&mut StoreSettings) -> Result<()>;

/// A place where key material lives.
///
/// A backend holds key objects and runs their private operations; it keeps no lifecycle
/// state. Names, versions, attributes and soft-delete state live in a
/// [`MetadataStore`], over which [`crate::Store`] runs the lifecycle rules once for every
/// backend. A new version is made in two steps: the backend creates its objects (bound to
/// a fresh [`KeyBinding::object_id`]), then the store records it; if recording fails the
/// store asks the backend to [`destroy`](Backend::destroy) them again.
///
/// Implementations check nothing the core already checks: names are valid, specs are
/// generatable, attributes are resolved.
pub trait Backend: Send + Sync + fmt::Debug {
    /// A short name: `soft`, `pkcs11`.
    fn kind(&self) -> &'static str;

    /// The crypto provider a [`Store`](crate::Store) over this backend computes with in
    /// host memory (envelopes, the audit MAC, fingerprints, random ids).
    fn crypto(&self) -> &'static dyn CryptoProvider;

    /// What this backend can do.
    fn capabilities(&self) -> Capabilities;

    /// Where keys of this backend keep their metadata unless the caller chooses
    /// (see [`crate::Store::with_metadata`]).
    fn metadata(&self) -> Arc<dyn MetadataStore>;

    /// Generates the objects of version `req.version` of a key. The returned key's
    /// [`KeyInfo::binding`] names them.
    fn generate(&self, req: &NewKey<'_>, spec: KeySpec) -> Result<Box<dyn BackendKey>>;

    /// Loads key material as the objects of version `req.version`, as
    /// [`generate`](Self::generate) does.
    fn import(&self, req: &NewKey<'_>, material: KeyMaterial) -> Result<Box<dyn BackendKey>>;

    /// Opens the objects of one recorded version (deleted or not: the core decides).
    /// The backend checks that what it finds matches `info.binding`.
    fn open(&self, info: &KeyInfo) -> Result<Box<dyn BackendKey>>;

    /// Destroys the objects of one version. Objects already gone are not an error.
    fn destroy(&self, info: &KeyInfo) -> Result<()>;

    /// Pushes a version's changed attributes (dates, usage) onto its objects where the
    /// backend has native attributes. The core enforces attributes itself regardless.
    fn apply_attributes(&self, info: &KeyInfo) -> Result<()> {
        let _ = info;
        Ok(())
    }

    /// A key that has no metadata but that the backend holds anyway (a key another tool
    /// made on a token, found by its label), as version 1; `None` if there is none.
    fn unmanaged(&self, name: &str) -> Result<Option<KeyInfo>> {
        let _ = name;
        Ok(None)
    }
}
