//! The one error type of hsmkit.
//!
//! Every fallible call returns [`Error`]; callers branch on [`Error::kind`]. Messages name
//! keys, algorithms and PKCS#11 return codes, never key material or plaintext.

use std::fmt;

use crate::attributes::KeyOp;

/// What went wrong, in a form a caller can branch on.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// No key (or version) with that name exists.
    NotFound,
    /// A key with that name already exists.
    AlreadyExists,
    /// The key exists but its attributes forbid the operation.
    PermissionDenied,
    /// The caller's input is malformed or does not fit the key.
    InvalidInput,
    /// A signature did not verify.
    VerificationFailed,
    /// Decryption or unwrapping failed. Deliberately uninformative.
    DecryptionFailed,
    /// The backend (or this build) cannot do what was asked.
    Unsupported,
    /// Login or PIN/passphrase failure.
    Authentication,
    /// The backend failed (device error, I/O, ...).
    Backend,
    /// Reading or writing the caller's stream or file failed.
    Io,
}

/// Why a key refused an operation.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Denied {
    /// The key's allowed operations do not include this one.
    OperationNotAllowed(KeyOp),
    /// The key is disabled.
    Disabled,
    /// The key's not-before time has not come yet.
    NotYetValid,
    /// The key has expired.
    Expired,
    /// The key holds no private or secret part (a public key was imported).
    PublicOnly,
    /// The key was not created exportable.
    NotExportable,
    /// Purge protection forbids purging before the retention period ends.
    PurgeProtected,
    /// The key is one the store keeps for its own use (the secrets KEK, the backup key):
    /// only the store opens it.
    StoreOnly,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denied::OperationNotAllowed(op) => write!(f, "the key does not allow '{op}'"),
            Denied::Disabled => f.write_str("it is disabled"),
            Denied::NotYetValid => f.write_str("it is not valid yet (not-before)"),
            Denied::Expired => f.write_str("it has expired"),
            Denied::PublicOnly => f.write_str("the key has no private part"),
            Denied::NotExportable => f.write_str("the key was not created exportable"),
            Denied::PurgeProtected => {
                f.write_str("purge protection is on and the retention period has not ended")
            }
            Denied::StoreOnly => f.write_str("it is the store's own key, used only by the store"),
        }
    }
}

/// Why input was refused, for callers that branch on more than [`ErrorKind::InvalidInput`]
/// (as pyca's `_Reasons`). The message says the rest. Exhaustive, so that the bindings
/// that name each reason must handle a new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InvalidReason {
    /// Bytes or text that do not parse: DER, PEM, JWK, JSON, a URI, an envelope header.
    Malformed,
    /// A length that is wrong for the key or algorithm: a digest, a signature, a
    /// plaintext, a key size.
    Length,
    /// The algorithm or operation does not fit the key (ES384 with a P-256 key, a
    /// signature with an AES key, key material of another type).
    KeyMismatch,
    /// A key name that is not allowed.
    Name,
    /// An option, attribute, setting or parameter out of its range, or two in conflict.
    Parameter,
}

impl InvalidReason {
    /// A stable lowercase name (`malformed`, `length`, `key-mismatch`, `name`, `parameter`),
    /// as the Python and C bindings give it.
    pub fn as_str(self) -> &'static str {
        match self {
            InvalidReason::Malformed => "malformed",
            InvalidReason::Length => "length",
            InvalidReason::KeyMismatch => "key-mismatch",
            InvalidReason::Name => "name",
            InvalidReason::Parameter => "parameter",
        }
    }
}

/// What is unsupported (as pyca's `_Reasons`). The message names it: the algorithm, the
/// key type, the PKCS#11 mechanism. Exhaustive, as [`InvalidReason`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnsupportedReason {
    /// An algorithm, for this operation, on this backend, key or build.
    Algorithm,
    /// A key type, size or curve (generate, import, a token's own keys).
    KeyType,
    /// A PKCS#11 mechanism (or function) the token lacks or refuses.
    Mechanism,
    /// An operation this key or backend cannot do at all: export from a token, the public
    /// key of a secret key, creating or rotating a key hsmkit does not manage.
    Operation,
    /// An encoding hsmkit does not read: encrypted PKCS#8, a compressed EC point, a JWK
    /// `kty` it does not know.
    Encoding,
}

impl UnsupportedReason {
    /// A stable lowercase name (`algorithm`, `key-type`, `mechanism`, `operation`,
    /// `encoding`), as the Python and C bindings give it.
    pub fn as_str(self) -> &'static str {
        match self {
            UnsupportedReason::Algorithm => "algorithm",
            UnsupportedReason::KeyType => "key-type",
            UnsupportedReason::Mechanism => "mechanism",
            UnsupportedReason::Operation => "operation",
            UnsupportedReason::Encoding => "encoding",
        }
    }
}

/// The native error under a [`BackendError`] (a `cryptoki` error, an I/O error), kept for
/// [`std::error::Error::source`]. Compared by its text.
#[derive(Clone)]
pub struct Source(std::sync::Arc<dyn std::error::Error + Send + Sync>);

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl PartialEq for Source {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_string() == other.0.to_string()
    }
}

impl Eq for Source {}

/// A failure reported by a backend, with enough context to diagnose it. Made with
/// [`BackendError::new`] (fields may be added).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendError {
    /// Which backend ("soft", "pkcs11").
    pub backend: &'static str,
    /// The failing call, e.g. `C_Sign`.
    pub function: String,
    /// The native return code (a `CKR_*` value), when there is one.
    pub code: Option<u64>,
    /// A human-readable description. Never contains secrets.
    pub message: String,
    /// The native error, when there is one (see [`BackendError::with_source`]).
    pub source: Option<Source>,
}

impl BackendError {
    /// A backend error without a native code or source.
    pub fn new(backend: &'static str, function: impl Into<String>, message: impl Into<String>) -> Self {
        BackendError { backend, function: function.into(), code: None, message: message.into(), source: None }
    }

    /// This error with the native error under it (never one that holds secrets).
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Source(std::sync::Arc::new(source)));
        self
    }
}

/// The error type of every hsmkit operation.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// No key or version by that name.
    NotFound {
        /// What was looked for (key name, maybe with version).
        what: String,
    },
    /// A key with that name already exists.
    AlreadyExists {
        /// The key name, or `secret/NAME` for a deleted secret that holds the name.
        name: String,
    },
    /// The key's (or secret's) attributes forbid the operation.
    PermissionDenied {
        /// The key name, or for a secret `secret/NAME` (names never hold a `/`).
        key: String,
        /// Why.
        reason: Denied,
    },
    /// Malformed input, or input that does not fit the key or algorithm.
    InvalidInput {
        /// Why, for branching.
        reason: InvalidReason,
        /// What is wrong, for people.
        message: String,
    },
    /// The signature is not valid for this key and message.
    VerificationFailed,
    /// Decryption or unwrap failed. Carries nothing on purpose: a bad ciphertext, a wrong
    /// label and a bad padding must be indistinguishable.
    DecryptionFailed,
    /// Not supported by this backend, key or build.
    Unsupported {
        /// What kind of thing is unsupported, for branching.
        reason: UnsupportedReason,
        /// Which one, for people (the algorithm, key type or mechanism).
        message: String,
    },
    /// Authentication (PIN, passphrase) failed.
    Authentication(String),
    /// The backend failed.
    Backend(BackendError),
    /// Reading or writing the caller's stream or file failed (not the backend's storage).
    Io {
        /// The I/O error's kind.
        kind: std::io::ErrorKind,
        /// What failed, with the OS message.
        message: String,
    },
}

impl Error {
    /// The kind of error, for branching.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            Error::PermissionDenied { .. } => ErrorKind::PermissionDenied,
            Error::InvalidInput { .. } => ErrorKind::InvalidInput,
            Error::VerificationFailed => ErrorKind::VerificationFailed,
            Error::DecryptionFailed => ErrorKind::DecryptionFailed,
            Error::Unsupported { .. } => ErrorKind::Unsupported,
            Error::Authentication(_) => ErrorKind::Authentication,
            Error::Backend(_) => ErrorKind::Backend,
            Error::Io { .. } => ErrorKind::Io,
        }
    }

    /// An [`Error::InvalidInput`].
    pub fn invalid(reason: InvalidReason, msg: impl Into<String>) -> Self {
        Error::InvalidInput { reason, message: msg.into() }
    }

    /// An [`Error::InvalidInput`] for input that does not parse.
    pub fn malformed(msg: impl Into<String>) -> Self {
        Self::invalid(InvalidReason::Malformed, msg)
    }

    /// An [`Error::Unsupported`].
    pub fn unsupported(reason: UnsupportedReason, msg: impl Into<String>) -> Self {
        Error::Unsupported { reason, message: msg.into() }
    }

    /// The reason of an [`Error::InvalidInput`].
    pub fn invalid_reason(&self) -> Option<InvalidReason> {
        if let Error::InvalidInput { reason, .. } = self { Some(*reason) } else { None }
    }

    /// The reason of an [`Error::Unsupported`].
    pub fn unsupported_reason(&self) -> Option<UnsupportedReason> {
        if let Error::Unsupported { reason, .. } = self { Some(*reason) } else { None }
    }

    /// A convenience for backends: a [`Error::Backend`] without a native code.
    pub fn backend(backend: &'static str, function: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Backend(BackendError::new(backend, function, message))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound { what } => write!(f, "not found: {what}"),
            Error::AlreadyExists { name } => match name.strip_prefix("secret/") {
                Some(n) => {
                    write!(f, "a secret named '{n}' already exists (deleted: recover or purge it first)")
                }
                None => write!(f, "a key named '{name}' already exists"),
            },
            Error::PermissionDenied { key, reason } => match key.strip_prefix("secret/") {
                Some(name) => write!(f, "permission denied on secret '{name}': {reason}"),
                None => write!(f, "permission denied on key '{key}': {reason}"),
            },
            Error::InvalidInput { message, .. } => write!(f, "invalid input: {message}"),
            Error::VerificationFailed => f.write_str("signature verification failed"),
            Error::DecryptionFailed => f.write_str("decryption failed"),
            Error::Unsupported { message, .. } => write!(f, "unsupported: {message}"),
            Error::Authentication(m) => write!(f, "authentication failed: {m}"),
            Error::Backend(b) => {
                write!(f, "{} backend error in {}: {}", b.backend, b.function, b.message)?;
                if let Some(code) = b.code {
                    write!(f, " (0x{code:08X})")?;
                }
                Ok(())
            }
            Error::Io { message, .. } => write!(f, "I/O error: {message}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        if let Error::Backend(BackendError { source: Some(Source(e)), .. }) = self {
            let e: &(dyn std::error::Error + 'static) = &**e;
            Some(e)
        } else {
            None
        }
    }
}

impl Error {
    /// An [`Error::Io`] saying what was being done.
    pub fn io(what: &str, e: &std::io::Error) -> Self {
        Error::Io { kind: e.kind(), message: format!("{what}: {e}") }
    }
}

/// Streams carry hsmkit errors inside `io::Error`; this gets them back out, so that a
/// tampered chunk read through `std::io::Read` is still [`Error::DecryptionFailed`].
impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        let kind = e.kind();
        match e.into_inner() {
            Some(inner) => match inner.downcast::<Error>() {
                Ok(ours) => *ours,
                Err(other) => Error::Io { kind, message: other.to_string() },
            },
            None => Error::Io { kind, message: kind.to_string() },
        }
    }
}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        let kind = match e.kind() {
            ErrorKind::DecryptionFailed | ErrorKind::VerificationFailed => std::io::ErrorKind::InvalidData,
            ErrorKind::InvalidInput => std::io::ErrorKind::InvalidInput,
            ErrorKind::NotFound => std::io::ErrorKind::NotFound,
            ErrorKind::PermissionDenied | ErrorKind::Authentication => std::io::ErrorKind::PermissionDenied,
            ErrorKind::Unsupported => std::io::ErrorKind::Unsupported,
            ErrorKind::AlreadyExists | ErrorKind::Backend | ErrorKind::Io => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, e)
    }
}

/// `Result` with hsmkit's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
