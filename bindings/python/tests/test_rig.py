"""The test rig: hsmkit.testing and the pytest plugin."""

from __future__ import annotations

import sys

import pytest

import hsmkit
import hsmkit.exceptions
import hsmkit.testing

if sys.version_info >= (3, 10):
    from importlib.metadata import entry_points
else:  # pragma: no cover
    from importlib_metadata import entry_points


def test_softhsm_token_context_manager() -> None:
    with hsmkit.testing.softhsm_token() as uri:
        assert uri.startswith("pkcs11:token=") and "module-path=" in uri
        store = hsmkit.open(uri)
        store.create_key("k", "ec")
        assert hsmkit.open(uri).list_keys() == ["k"]
        with hsmkit.testing.softhsm_token() as other:
            assert other != uri
            assert hsmkit.open(other).list_keys() == []
    del store
    # the token is gone: opening it again finds no such token
    with pytest.raises(hsmkit.HsmkitError):
        hsmkit.open(uri)


def test_softhsm_store_context_manager() -> None:
    with hsmkit.testing.softhsm_store() as store:
        assert store.backend_kind == "pkcs11"
        assert store.list_keys() == []


def test_plugin_is_registered_and_fixture_works(softhsm_store: hsmkit.Store) -> None:
    names = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert names.get("hsmkit") == "hsmkit.pytest_plugin"
    key = softhsm_store.create_key("k", "rsa")
    key.verify("PS256", b"m", key.sign("PS256", b"m"))


def test_exceptions_hierarchy() -> None:
    assert len(hsmkit.exceptions.__all__) == 15
    for name in hsmkit.exceptions.__all__:
        cls = getattr(hsmkit, name)
        assert issubclass(cls, hsmkit.HsmkitError) and cls.__module__ == "hsmkit.exceptions"
    assert issubclass(hsmkit.InvalidInput, ValueError)
    assert issubclass(hsmkit.StreamError, OSError)
    for kind in ("Key", "Secret"):
        assert issubclass(getattr(hsmkit, f"{kind}NotFound"), hsmkit.NotFound)
        assert issubclass(getattr(hsmkit, f"{kind}AlreadyExists"), hsmkit.AlreadyExists)
    assert not issubclass(hsmkit.SecretNotFound, hsmkit.KeyNotFound)
    e = hsmkit.BackendError("m", "pkcs11", "C_Sign", 0x30)
    assert (str(e), e.backend, e.function, e.code) == ("m", "pkcs11", "C_Sign", 0x30)
