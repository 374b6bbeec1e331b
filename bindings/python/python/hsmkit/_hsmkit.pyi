# Stubs for the native module; checked against the built module by mypy.stubtest.
import datetime
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, TypedDict, Union, final

_Bytes = Union[bytes, bytearray, memoryview]
_Path = Union[str, os.PathLike[str]]
_Duration = Union[datetime.timedelta, str]

# What Store.capabilities() returns (a plain dict at runtime; "import" is a keyword, hence
# the functional form).
_Capabilities = TypedDict(
    "_Capabilities",
    {
        "engine": str,
        "metadata": str,
        "generate": List[str],
        "import": bool,
        "export": bool,
        "sign": List[str],
        "decrypt": List[str],
        "wrap": List[str],
        "unwrap": List[str],
        "oaep_label": bool,
        "notes": List[str],
    },
)

__all__ = [
    "__version__",
    "open",
    "Store",
    "DeletedKey",
    "Key",
    "KeyProperties",
    "Secret",
    "SecretProperties",
    "SecretDescription",
    "SecretDue",
    "SecretCache",
    "SoftHsmToken",
]

__version__: str

def open(
    uri: _Path,
    *,
    passphrase: Optional[str] = None,
    key_file: Optional[_Path] = None,
    pin: Optional[str] = None,
    audit_log: Optional[_Path] = None,
) -> Store: ...

class _Properties:
    @property
    def name(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def kid(self) -> str: ...
    @property
    def key_type(self) -> str: ...
    @property
    def size_or_curve(self) -> Union[int, str]: ...
    @property
    def allowed_ops(self) -> List[str]: ...
    @property
    def enabled(self) -> bool: ...
    @property
    def not_before(self) -> Optional[datetime.datetime]: ...
    @property
    def expires(self) -> Optional[datetime.datetime]: ...
    @property
    def tags(self) -> Dict[str, str]: ...
    @property
    def exportable(self) -> bool: ...
    @property
    def has_private(self) -> bool: ...
    @property
    def created(self) -> datetime.datetime: ...
    @property
    def updated(self) -> datetime.datetime: ...

@final
class KeyProperties(_Properties): ...

@final
class Key(_Properties):
    def sign(self, algorithm: str, data: _Bytes, *, prehashed: bool = False, encoding: str = "raw") -> bytes: ...
    def verify(
        self, algorithm: str, data: _Bytes, signature: _Bytes, *, prehashed: bool = False, encoding: str = "raw"
    ) -> None: ...
    def encrypt(self, algorithm: str, plaintext: _Bytes, *, label: Optional[_Bytes] = None) -> bytes: ...
    def decrypt(self, algorithm: str, ciphertext: _Bytes, *, label: Optional[_Bytes] = None) -> bytes: ...
    def wrap_key(self, algorithm: str, key: _Bytes) -> bytes: ...
    def unwrap_key(self, algorithm: str, wrapped: _Bytes) -> bytes: ...
    def public_key_pem(self) -> bytes: ...
    def public_key_der(self) -> bytes: ...
    def public_key_jwk(self) -> Dict[str, Any]: ...
    def export_key(self) -> bytes: ...
    def jws_sign(self, algorithm: str, payload: _Bytes, header: Optional[Mapping[str, Any]] = None) -> str: ...
    def jwt_sign(
        self,
        algorithm: str,
        claims: Mapping[str, Any],
        *,
        expires_in: Union[float, datetime.timedelta, str, None] = None,
        not_before: Optional[datetime.datetime] = None,
        issued_at: bool = True,
        header: Optional[Mapping[str, Any]] = None,
    ) -> str: ...
    def create_csr(
        self,
        subject: str,
        *,
        sans: Sequence[str] = ...,
        key_usage: Sequence[str] = ...,
        extended_key_usage: Sequence[str] = ...,
        ca: bool = False,
        path_len: Optional[int] = None,
        signature_algorithm: Optional[str] = None,
    ) -> bytes: ...
    def self_signed_certificate(
        self,
        subject: str,
        *,
        sans: Sequence[str] = ...,
        key_usage: Sequence[str] = ...,
        extended_key_usage: Sequence[str] = ...,
        ca: bool = False,
        path_len: Optional[int] = None,
        validity_days: int = 365,
        signature_algorithm: Optional[str] = None,
    ) -> bytes: ...
    def issue_certificate(
        self,
        ca_cert_pem: Union[_Bytes, str],
        csr_pem: Union[_Bytes, str],
        *,
        ca: bool = False,
        path_len: Optional[int] = None,
        validity_days: int = 365,
        signature_algorithm: Optional[str] = None,
    ) -> bytes: ...
    @property
    def properties(self) -> KeyProperties: ...
    # Equal: from the same Store object, the same kid, the same public key (SPKI DER);
    # AES keys have no public part, so store and kid decide. Keys of two stores (even two
    # opened on the same path) are never equal.
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class DeletedKey:
    @property
    def name(self) -> str: ...
    @property
    def deleted_on(self) -> Optional[datetime.datetime]: ...
    @property
    def scheduled_purge(self) -> Optional[datetime.datetime]: ...
    @property
    def versions(self) -> List[KeyProperties]: ...

class _SecretProperties:
    @property
    def name(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def enabled(self) -> bool: ...
    @property
    def not_before(self) -> Optional[datetime.datetime]: ...
    @property
    def expires(self) -> Optional[datetime.datetime]: ...
    @property
    def content_type(self) -> Optional[str]: ...
    @property
    def tags(self) -> Dict[str, str]: ...
    @property
    def created(self) -> datetime.datetime: ...
    @property
    def updated(self) -> datetime.datetime: ...

@final
class SecretProperties(_SecretProperties): ...

@final
class Secret(_SecretProperties):
    # A new bytes object on every access; repr() never shows it.
    @property
    def value(self) -> bytes: ...
    @property
    def properties(self) -> SecretProperties: ...

@final
class SecretDescription:
    @property
    def name(self) -> str: ...
    @property
    def versions(self) -> List[SecretProperties]: ...
    @property
    def current(self) -> Optional[SecretProperties]: ...
    @property
    def deleted_on(self) -> Optional[datetime.datetime]: ...
    @property
    def scheduled_purge(self) -> Optional[datetime.datetime]: ...

@final
class SecretDue:
    @property
    def name(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def expires(self) -> Optional[datetime.datetime]: ...
    @property
    def reason(self) -> str: ...

@final
class Store:
    @property
    def backend_kind(self) -> str: ...
    @property
    def engine(self) -> str: ...
    def capabilities(self) -> _Capabilities: ...
    def create_key(
        self,
        name: str,
        key_type: str,
        *,
        size: Optional[int] = None,
        curve: Optional[str] = None,
        ops: Optional[Sequence[str]] = None,
        exportable: bool = False,
        enabled: bool = True,
        not_before: Optional[datetime.datetime] = None,
        expires: Optional[datetime.datetime] = None,
        tags: Optional[Mapping[str, str]] = None,
    ) -> Key: ...
    def import_key(
        self,
        name: str,
        key: Union[_Bytes, str, Mapping[str, Any]],
        *,
        ops: Optional[Sequence[str]] = None,
        exportable: bool = False,
        enabled: bool = True,
        not_before: Optional[datetime.datetime] = None,
        expires: Optional[datetime.datetime] = None,
        tags: Optional[Mapping[str, str]] = None,
    ) -> Key: ...
    def get_key(self, name: str, version: Optional[int] = None) -> Key: ...
    def list_keys(self) -> List[str]: ...
    def list_versions(self, name: str) -> List[KeyProperties]: ...
    def rotate_key(self, name: str) -> Key: ...
    def update_key(
        self,
        name: str,
        version: Optional[int] = None,
        *,
        enabled: Optional[bool] = None,
        not_before: Optional[datetime.datetime] = None,
        expires: Optional[datetime.datetime] = None,
        ops: Optional[Sequence[str]] = None,
        tags: Optional[Mapping[str, str]] = None,
        clear_not_before: bool = False,
        clear_expires: bool = False,
    ) -> KeyProperties: ...
    def delete_key(self, name: str) -> DeletedKey: ...
    def get_deleted_key(self, name: str) -> DeletedKey: ...
    def list_deleted_keys(self) -> List[DeletedKey]: ...
    def recover_deleted_key(self, name: str) -> Key: ...
    def purge_deleted_key(self, name: str) -> None: ...
    def set_rotation_policy(
        self,
        name: str,
        *,
        rotate_after: Optional[_Duration] = None,
        rotate_before_expiry: Optional[_Duration] = None,
        expires_after: Optional[_Duration] = None,
    ) -> None: ...
    def get_rotation_policy(self, name: str) -> Optional[Dict[str, Optional[datetime.timedelta]]]: ...
    def rotate_due(self) -> List[Tuple[str, int]]: ...
    def set_secret(
        self,
        name: str,
        value: _Bytes,
        *,
        content_type: Optional[str] = None,
        enabled: bool = True,
        not_before: Optional[datetime.datetime] = None,
        expires: Optional[datetime.datetime] = None,
        tags: Optional[Mapping[str, str]] = None,
    ) -> SecretProperties: ...
    def get_secret(self, name: str, version: Optional[int] = None) -> Secret: ...
    def describe_secret(self, name: str) -> SecretDescription: ...
    def list_secrets(self) -> List[SecretProperties]: ...
    def list_secret_versions(self, name: str) -> List[SecretProperties]: ...
    def update_secret(
        self,
        name: str,
        version: Optional[int] = None,
        *,
        enabled: Optional[bool] = None,
        not_before: Optional[datetime.datetime] = None,
        expires: Optional[datetime.datetime] = None,
        content_type: Optional[str] = None,
        tags: Optional[Mapping[str, str]] = None,
        clear_not_before: bool = False,
        clear_expires: bool = False,
        clear_content_type: bool = False,
    ) -> SecretProperties: ...
    def delete_secret(self, name: str) -> SecretDescription: ...
    def get_deleted_secret(self, name: str) -> SecretDescription: ...
    def list_deleted_secrets(self) -> List[SecretDescription]: ...
    def recover_deleted_secret(self, name: str) -> SecretProperties: ...
    def purge_deleted_secret(self, name: str) -> None: ...
    def set_secret_rotation_policy(
        self,
        name: str,
        *,
        rotate_after: Optional[_Duration] = None,
        rotate_before_expiry: Optional[_Duration] = None,
        expires_after: Optional[_Duration] = None,
    ) -> None: ...
    def get_secret_rotation_policy(self, name: str) -> Optional[Dict[str, Optional[datetime.timedelta]]]: ...
    def secrets_due(self, within: _Duration) -> List[SecretDue]: ...
    # Opaque blobs sealed under the store's backup key ("hsmkit-backup"); they restore
    # only in a store holding that key.
    def backup_secret(self, name: str) -> bytes: ...
    def restore_secret(self, backup: _Bytes) -> SecretDescription: ...
    def backup_key(self, name: str) -> bytes: ...
    def restore_key(self, backup: _Bytes) -> Key: ...
    def settings(self) -> Dict[str, Any]: ...
    def set_retention(self, retention: _Duration) -> None: ...
    def enable_purge_protection(self) -> None: ...
    def seal(
        self,
        kek: Union[str, Sequence[str]],
        data: _Bytes,
        *,
        aad: Optional[Mapping[str, str]] = None,
        recipients: Optional[Sequence[str]] = None,
        chunk_size: Optional[int] = None,
        suite: Optional[int] = None,
    ) -> bytes: ...
    def unseal(self, blob: _Bytes, *, aad: Optional[Mapping[str, str]] = None) -> bytes: ...
    def seal_file(
        self,
        src: _Path,
        dst: _Path,
        kek: Union[str, Sequence[str]],
        *,
        aad: Optional[Mapping[str, str]] = None,
        recipients: Optional[Sequence[str]] = None,
        chunk_size: Optional[int] = None,
        suite: Optional[int] = None,
    ) -> int: ...
    def unseal_file(self, src: _Path, dst: _Path, *, aad: Optional[Mapping[str, str]] = None) -> int: ...
    def rewrap(
        self,
        blob: _Bytes,
        to: Union[str, Sequence[str]],
        *,
        aad: Optional[Mapping[str, str]] = None,
        add: bool = False,
    ) -> bytes: ...
    def jwt_verify(
        self,
        token: str,
        *,
        audience: Union[str, Sequence[str], None] = None,
        issuer: Optional[str] = None,
        leeway: float = 60.0,
        algorithms: Optional[Sequence[str]] = None,
        require_exp: bool = True,
    ) -> Dict[str, Any]: ...
    def jws_verify(
        self, token: str, *, algorithms: Optional[Sequence[str]] = None
    ) -> Tuple[bytes, Dict[str, Any], str, int]: ...
    def jwks(self, names: Sequence[str]) -> Dict[str, Any]: ...

@final
class SecretCache:
    # None takes the default: ttl 5 minutes, refresh_ahead ttl / 5, max_stale 15 minutes.
    def __new__(
        cls,
        store: Store,
        *,
        ttl: Optional[_Duration] = None,
        refresh_ahead: Optional[_Duration] = None,
        max_stale: Optional[_Duration] = None,
        max_entries: int = 1024,
    ) -> SecretCache: ...
    def get(self, name: str) -> Secret: ...
    def invalidate(self, name: str) -> None: ...
    def clear(self) -> None: ...
    @property
    def ttl(self) -> datetime.timedelta: ...
    @property
    def refresh_ahead(self) -> datetime.timedelta: ...
    @property
    def max_stale(self) -> datetime.timedelta: ...
    @property
    def max_entries(self) -> int: ...

@final
class SoftHsmToken:
    def __init__(self) -> None: ...
    @property
    def uri(self) -> str: ...
    @property
    def label(self) -> str: ...
    def close(self) -> None: ...
