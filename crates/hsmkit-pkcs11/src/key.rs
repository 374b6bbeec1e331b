//! A key version on the token: cached object handles, public key in memory.

use hsmkit::UnsupportedReason;
use std::fmt;
use std::sync::{Arc, Mutex};

use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use hsmkit::{
    BackendKey, EncryptionAlgorithm, Error, KeyInfo, KeyType, KeyWrapAlgorithm, PublicKey, Result,
    SignatureAlgorithm, Zeroizing,
};

use crate::context::Token;
use crate::error::is_stale_handle;
use crate::probe::Probe;

/// A key on the token.
pub(crate) struct TokenKey {
    pub(crate) token: Arc<Token>,
    pub(crate) info: KeyInfo,
    /// `CKA_ID`; `None` for keys hsmkit did not create (found by label, private only).
    pub(crate) id: Option<Vec<u8>>,
    /// Cached handle of the private or secret object, with the token's session epoch it
    /// was found in (see [`Token::epoch`]).
    pub(crate) handle: Mutex<Option<(ObjectHandle, u64)>>,
    pub(crate) public: Option<PublicKey>,
    /// Software engine for the public operations (verify, encrypt, RSA-OAEP wrap).
    pub(crate) public_ops: Option<Box<dyn BackendKey>>,
    pub(crate) probe: Arc<Probe>,
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKey")
            .field("info", &self.info)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// The template that finds the private/secret object of a key: a private token object
/// (which a session that never logged in cannot create), and for keys hsmkit made,
/// sensitive and with the version's id.
pub(crate) fn private_template(name: &str, id: Option<&[u8]>, key_type: KeyType) -> Vec<Attribute> {
    let class = if key_type.is_secret() { ObjectClass::SECRET_KEY } else { ObjectClass::PRIVATE_KEY };
    match id {
        Some(id) => {
            let mut t = foreign_template(name, class);
            t.extend([Attribute::Id(id.to_vec()), Attribute::Sensitive(true)]);
            t
        }
        None => foreign_template(name, class),
    }
}

/// The template that finds a private or secret object another tool made, by label.
pub(crate) fn foreign_template(name: &str, class: ObjectClass) -> Vec<Attribute> {
    vec![
        Attribute::Class(class),
        Attribute::Label(name.as_bytes().to_vec()),
        Attribute::Token(true),
        Attribute::Private(true),
    ]
}

fn no_object(name: &str) -> cryptoki::error::Error {
    tracing::debug!(target: "hsmkit::pkcs11", key = %name, "private object vanished from the token");
    cryptoki::error::Error::Pkcs11(
        cryptoki::error::RvError::ObjectHandleInvalid,
        cryptoki::context::Function::FindObjects,
    )
}

impl TokenKey {
    fn find(&self, s: &Session) -> cryptoki::error::Result<ObjectHandle> {
        let t = private_template(&self.info.name, self.id.as_deref(), self.info.spec.key_type());
        match s.find_objects(&t)?.as_slice() {
            [h] => Ok(*h),
            // None, or more than one (planted beside it): never "first match".
            _ => Err(no_object(&self.info.name)),
        }
    }

    /// Runs `f` with the private/secret object. A stale cached handle (the object was
    /// re-created, or the token renumbered its handles) is looked up again once.
    pub(crate) fn with_private<T>(
        &self,
        opaque: bool,
        f: impl Fn(&Session, ObjectHandle) -> cryptoki::error::Result<T>,
    ) -> Result<T> {
        if !self.info.has_private {
            return Err(Error::PermissionDenied {
                key: self.info.name.clone(),
                reason: hsmkit::Denied::PublicOnly,
            });
        }
        let run = |s: &Session| {
            // A handle from before the sessions were rebuilt may name another object now.
            let epoch = self.token.epoch();
            let cached =
                self.handle.lock().ok().and_then(|g| *g).filter(|(_, e)| *e == epoch).map(|(h, _)| h);
            let h = match cached {
                Some(h) => h,
                None => self.find(s)?,
            };
            let r = match f(s, h) {
                Err(e) if is_stale_handle(&e) => {
                    let fresh = self.find(s)?;
                    if let Ok(mut g) = self.handle.lock() {
                        *g = Some((fresh, epoch));
                    }
                    f(s, fresh)
                }
                r => r,
            };
            if r.is_ok()
                && cached.is_none()
                && let Ok(mut g) = self.handle.lock()
            {
                *g = Some((h, epoch));
            }
            r
        };
        if opaque { self.token.with_session_opaque(run) } else { self.token.with_session(run) }
    }

    fn public_ops(&self) -> Result<&dyn BackendKey> {
        self.public_ops.as_deref().ok_or_else(|| {
            Error::unsupported(UnsupportedReason::Operation, "this key has no public key on the token")
        })
    }
}

impl BackendKey for TokenKey {
    fn info(&self) -> &KeyInfo {
        &self.info
    }

    // What the token does not hash itself is hashed in software on the fastest engine
    // built in, as the public-key operations are.
    fn crypto(&self) -> &'static dyn hsmkit::CryptoProvider {
        crate::crypto()
    }

    fn check_algorithm(&self, op: hsmkit::KeyOp, alg: hsmkit::Algorithm) -> Result<()> {
        self.probe.check(op, alg)
    }

    fn public_key(&self) -> Result<PublicKey> {
        self.public.clone().ok_or_else(|| match self.info.spec.key_type() {
            KeyType::Aes | KeyType::Hmac => Error::unsupported(
                UnsupportedReason::Operation,
                format!("{} keys have no public key", self.info.spec),
            ),
            KeyType::Rsa | KeyType::Ec | KeyType::Ed25519 => {
                Error::unsupported(UnsupportedReason::Operation, "the token holds no public key for this key")
            }
        })
    }

    fn sign(&self, alg: SignatureAlgorithm, message: &[u8]) -> Result<Vec<u8>> {
        crate::sign::sign(self, alg, message)
    }

    fn verify(&self, alg: SignatureAlgorithm, message: &[u8], signature: &[u8]) -> Result<()> {
        match self.info.spec.key_type() {
            // A MAC is checked with the secret key, on the token.
            KeyType::Hmac => crate::sign::verify_secret(self, alg, message, signature),
            KeyType::Rsa | KeyType::Ec | KeyType::Ed25519 | KeyType::Aes => {
                self.public_ops()?.verify(alg, message, signature)
            }
        }
    }

    fn sign_digest(&self, alg: SignatureAlgorithm, digest: &[u8]) -> Result<Vec<u8>> {
        crate::sign::sign_digest(self, alg, digest)
    }

    fn verify_digest(&self, alg: SignatureAlgorithm, digest: &[u8], signature: &[u8]) -> Result<()> {
        self.public_ops()?.verify_digest(alg, digest, signature)
    }

    fn encrypt(&self, alg: EncryptionAlgorithm, plaintext: &[u8], label: &[u8]) -> Result<Vec<u8>> {
        self.public_ops()?.encrypt(alg, plaintext, label)
    }

    fn decrypt(
        &self,
        alg: EncryptionAlgorithm,
        ciphertext: &[u8],
        label: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        crate::encrypt::decrypt(self, alg, ciphertext, label)
    }

    fn wrap_key(&self, alg: KeyWrapAlgorithm, key: &[u8]) -> Result<Vec<u8>> {
        crate::wrap::wrap_key(self, alg, key)
    }

    fn unwrap_key(&self, alg: KeyWrapAlgorithm, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        crate::wrap::unwrap_key(self, alg, wrapped)
    }
}
