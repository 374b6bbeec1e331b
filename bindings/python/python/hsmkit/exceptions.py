"""The exceptions hsmkit raises.

Every error hsmkit raises is an :class:`HsmkitError`. Decryption and unwrap failures are
one :class:`DecryptionFailed` whatever went wrong (bad ciphertext, wrong label, wrong key,
tampered envelope), on purpose.
"""

from __future__ import annotations

from typing import Optional

__all__ = [
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
]


class HsmkitError(Exception):
    """Base class of every hsmkit error."""


class _Reasoned(HsmkitError):
    """An error with a typed ``reason`` (a stable lowercase name), as pyca's ``_Reasons``."""

    reason: Optional[str]

    def __init__(self, message: str = "", reason: Optional[str] = None) -> None:
        # Both in args, so that pickling (multiprocessing) and copy keep the reason.
        super().__init__(message, reason)
        self.reason = reason

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class NotFound(HsmkitError):
    """No object by that name: the base of :class:`KeyNotFound` and
    :class:`SecretNotFound`, for code that handles both alike."""


class AlreadyExists(HsmkitError):
    """An object by that name exists already: the base of :class:`KeyAlreadyExists` and
    :class:`SecretAlreadyExists`."""


class KeyNotFound(NotFound):
    """No key (or key version, or deleted key) by that name."""


class KeyAlreadyExists(AlreadyExists):
    """A key by that name exists already (perhaps soft-deleted)."""


class SecretNotFound(NotFound):
    """No secret (or secret version, or deleted secret) by that name. Key and secret
    names are separate: a key of the same name does not count."""


class SecretAlreadyExists(AlreadyExists):
    """The name is held: by a soft-deleted secret, for ``set_secret`` (recover or purge it
    before setting it again); by any secret, live or soft-deleted, for ``restore_secret``."""


class PermissionDenied(HsmkitError):
    """The key or secret exists, but its attributes forbid the operation (disabled, not
    yet valid, expired, operation not allowed, public only, not exportable, purge
    protected)."""


class InvalidInput(_Reasoned, ValueError):
    """Malformed input, or input that does not fit the key or algorithm.

    ``reason`` says which, for code that branches (as pyca's ``_Reasons``):
    ``"malformed"`` (does not parse: PEM, DER, JWK, an envelope header), ``"length"`` (a
    digest, signature, plaintext or key of the wrong size; a secret value over 25 KiB),
    ``"key-mismatch"`` (the algorithm or operation does not fit the key), ``"name"`` (a key
    or secret name not allowed) or ``"parameter"`` (an option or attribute out of range;
    also a bad argument the binding itself refuses). ``None`` only when raised by hand
    without one.
    """


class InvalidSignature(HsmkitError):
    """The signature is not valid for this key and data."""


class DecryptionFailed(HsmkitError):
    """Decryption, unwrap or envelope opening failed. Deliberately uninformative."""


class Unsupported(_Reasoned):
    """The backend (or this build) cannot do what was asked.

    ``reason`` says what kind of thing (as pyca's ``_Reasons``): ``"algorithm"``,
    ``"key-type"`` (a key type, size or curve), ``"mechanism"`` (a PKCS#11 mechanism the
    token lacks), ``"operation"`` (export from a token, the public key of a secret key ...)
    or ``"encoding"`` (encrypted PKCS#8, a compressed point). The message names it.
    """


class AuthenticationError(HsmkitError):
    """A wrong passphrase, key file or PIN, or a locked token."""


class BackendError(HsmkitError):
    """The backend failed: a PKCS#11 error, or the keystore's storage.

    ``backend`` is ``"soft"`` or ``"pkcs11"``, ``function`` the failing call (e.g.
    ``"C_Sign"``) and ``code`` the native return code (a ``CKR_*`` value) when there is one.
    """

    backend: str
    function: str
    code: Optional[int]

    def __init__(
        self, message: str, backend: str = "", function: str = "", code: Optional[int] = None
    ) -> None:
        super().__init__(message)
        self.backend = backend
        self.function = function
        self.code = code

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class StreamError(HsmkitError, OSError):
    """Reading or writing the caller's file or stream failed."""
