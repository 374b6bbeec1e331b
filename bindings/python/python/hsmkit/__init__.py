"""hsmkit: keys that live behind a backend (an encrypted software keystore or a PKCS#11
token) and never leave it. Sign, verify, encrypt, decrypt, wrap, unwrap and seal by key
name, with key-vault algorithm names; keep versioned secrets sealed under a store key.

>>> import hsmkit
>>> store = hsmkit.open("memory:")
>>> key = store.create_key("signer", "ec", curve="P-256")
>>> sig = key.sign("ES256", b"data")
>>> key.verify("ES256", b"data", sig)
"""

from hsmkit._hsmkit import (
    CertificateBundle,
    CertificateDescription,
    CertificateDue,
    CertificatePolicy,
    CertificateProperties,
    CertificateRenewal,
    DeletedKey,
    Key,
    KeyProperties,
    PendingCertificate,
    Secret,
    SecretCache,
    SecretDescription,
    SecretDue,
    SecretProperties,
    Store,
    __version__,
    open,
)
from hsmkit.exceptions import (
    AlreadyExists,
    AuthenticationError,
    BackendError,
    DecryptionFailed,
    HsmkitError,
    InvalidInput,
    InvalidSignature,
    KeyAlreadyExists,
    KeyNotFound,
    NotFound,
    PermissionDenied,
    SecretAlreadyExists,
    SecretNotFound,
    StreamError,
    Unsupported,
)

__all__ = [
    "open",
    "Store",
    "Key",
    "KeyProperties",
    "DeletedKey",
    "Secret",
    "SecretProperties",
    "SecretDescription",
    "SecretDue",
    "SecretCache",
    "CertificatePolicy",
    "CertificateProperties",
    "CertificateBundle",
    "PendingCertificate",
    "CertificateDescription",
    "CertificateDue",
    "CertificateRenewal",
    "HsmkitError",
    "NotFound",
    "AlreadyExists",
    "KeyNotFound",
    "KeyAlreadyExists",
    "SecretNotFound",
    "SecretAlreadyExists",
    "PermissionDenied",
    "InvalidInput",
    "InvalidSignature",
    "DecryptionFailed",
    "Unsupported",
    "AuthenticationError",
    "BackendError",
    "StreamError",
    "__version__",
]
