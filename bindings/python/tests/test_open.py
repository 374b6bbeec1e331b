"""hsmkit.open(): URIs, passphrases, key files, PINs, audit logs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import hsmkit


def test_keystore_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "store"
    s = hsmkit.open(f"file://{path}", passphrase="correct horse")
    assert s.backend_kind == "soft"
    s.create_key("k", "ec")
    # reopen by URI, by str path and by Path
    for uri in [f"file://{path}", str(path), path]:
        assert hsmkit.open(uri, passphrase="correct horse").list_keys() == ["k"]
    with pytest.raises(hsmkit.AuthenticationError):
        hsmkit.open(path, passphrase="wrong")
    with pytest.raises(hsmkit.AuthenticationError):
        hsmkit.open(path)
    with pytest.raises(hsmkit.InvalidInput):
        hsmkit.open(path, passphrase="x", key_file=tmp_path / "k")
    # nothing secret on disk in clear
    for f in path.rglob("*"):
        if f.is_file():
            assert b"correct horse" not in f.read_bytes()


def test_key_file(tmp_path: Path) -> None:
    kf = tmp_path / "k"
    kf.write_text(os.urandom(32).hex())
    hsmkit.open(tmp_path / "s", key_file=kf).create_key("k", "aes")
    assert hsmkit.open(tmp_path / "s", key_file=str(kf)).list_keys() == ["k"]
    kf.write_text(os.urandom(32).hex())
    with pytest.raises(hsmkit.AuthenticationError):
        hsmkit.open(tmp_path / "s", key_file=kf)


def test_bad_uris() -> None:
    for uri in ["", "pkcs:token=x", "file://otherhost/x", "memory:x", "pkcs11:token=x;bogus=1"]:
        with pytest.raises(hsmkit.InvalidInput):
            hsmkit.open(uri, passphrase="x")
    with pytest.raises(TypeError):
        hsmkit.open(42)  # type: ignore[arg-type]


def test_engines(tmp_path: Path, softhsm_token: str) -> None:
    # The wheel's software backend runs on AWS-LC; a token does its own cryptography.
    assert hsmkit.open("memory:").engine == "aws-lc"
    assert hsmkit.open(tmp_path / "s", passphrase="p").engine == "aws-lc"
    assert hsmkit.open(softhsm_token).engine == "pkcs11"


def test_memory_store_is_private() -> None:
    a = hsmkit.open("memory:")
    a.create_key("k", "aes")
    assert hsmkit.open("memory:").list_keys() == []


def test_pkcs11_pin(softhsm_token: str) -> None:
    assert "pin-value=1234" in softhsm_token
    no_pin = softhsm_token.replace("&pin-value=1234", "")
    wrong = softhsm_token.replace("pin-value=1234", "pin-value=9999")
    with pytest.raises(hsmkit.AuthenticationError):
        hsmkit.open(wrong)
    s = hsmkit.open(no_pin, pin="1234")
    assert s.backend_kind == "pkcs11"
    s.create_key("k", "ec")
    assert hsmkit.open(wrong, pin="1234").list_keys() == ["k"]


def test_audit_log(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    s = hsmkit.open("memory:", audit_log=log)
    key = s.create_key("k", "ec")
    key.sign("ES256", b"m")
    with pytest.raises(hsmkit.KeyNotFound):
        s.get_key("nope").sign("ES256", b"m")
    records = [json.loads(line) for line in log.read_text().splitlines()]
    ops = [r.get("op") for r in records]
    assert "sign" in ops and "create" in ops, ops


def test_corrupt_keystore_is_a_backend_error(tmp_path: Path) -> None:
    kf = tmp_path / "k"
    kf.write_text(os.urandom(32).hex())
    s = hsmkit.open(tmp_path / "s", key_file=kf)
    s.create_key("k", "aes")
    key_file = tmp_path / "s" / "keys" / "k.key"
    doc = json.loads(key_file.read_text())
    doc["ct"] = ("A" if doc["ct"][0] != "A" else "B") + doc["ct"][1:]  # one sealed byte changed
    key_file.write_text(json.dumps(doc))
    with pytest.raises(hsmkit.BackendError) as e:
        hsmkit.open(tmp_path / "s", key_file=kf).get_key("k")
    assert e.value.backend == "soft" and e.value.function
