"""hsmkit: keys that live behind a backend (an encrypted software keystore or a PKCS#11
token) and never leave it. Sign, verify, encrypt, decrypt, wrap, unwrap and seal by key
name, with key-vault algorithm names.

>>> import hsmkit
>>> store = hsmkit.open("memory:")
>>> key = store.create_key("signer", "ec", curve="P-256")
>>> sig = key.sign("ES256", b"data")
>>> key.verify("ES256", b"data", sig)
"""

from hsmkit._hsmkit import DeletedKey, Key, KeyProperties, Store, __version__, open
from hsmkit.exceptions import (
    AuthenticationError,
    BackendError,
    DecryptionFailed,
    HsmkitError,
    InvalidInput,
    InvalidSignature,
    KeyAlreadyExists,
    KeyNotFound,
    PermissionDenied,
    StreamError,
    Unsupported,
)

__all__ = [
    "open",
    "Store",
    "Key",
    "KeyProperties",
    "DeletedKey",
    "HsmkitError",
    "KeyNotFound",
    "KeyAlreadyExists",
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
