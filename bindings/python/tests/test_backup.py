"""Backup and restore of secrets (both backends) and keys (software backend): every
version, attribute and state comes back; a blob that was altered, or made under another
store's backup key, does not restore."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Iterator

import pytest
from conftest import keystore

import hsmkit

UTC = dt.timezone.utc
SECRET_FIELDS = ("name", "version", "enabled", "not_before", "expires", "content_type", "tags")


def close(a: dt.datetime | None, b: dt.datetime | None) -> bool:
    """The same time as far as the store keeps it (whole seconds)."""
    if a is None or b is None:
        return a is b
    return abs(a - b) < dt.timedelta(seconds=1)


def secret_props(p: hsmkit.SecretProperties) -> tuple:
    return tuple(getattr(p, f) for f in SECRET_FIELDS)


@pytest.fixture(params=["keystore", "memory"])
def soft_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[hsmkit.Store]:
    """Stores whose keys can leave the backend, so can be backed up."""
    yield keystore(tmp_path) if request.param == "keystore" else hsmkit.open("memory:")


def make_secret(store: hsmkit.Store) -> list[bytes]:
    """A secret with three versions of different attributes; the last is disabled."""
    now = dt.datetime.now(UTC)
    values = [os.urandom(40), b"", bytes(range(256)) * 4]
    store.set_secret("db", values[0], content_type="text/plain", tags={"env": "prod"},
                     not_before=now - dt.timedelta(hours=1), expires=now + dt.timedelta(days=30))
    store.set_secret("db", values[1])
    store.set_secret("db", values[2], content_type="application/octet-stream", enabled=False)
    store.set_secret_rotation_policy("db", rotate_after=dt.timedelta(days=60), expires_after="P90D")
    return values


def test_secret_round_trip(store: hsmkit.Store) -> None:
    values = make_secret(store)
    before = store.describe_secret("db")
    blob = store.backup_secret("db")
    assert isinstance(blob, bytes)
    for v in values[:1] + values[2:]:
        assert v not in blob, "the backup is sealed"
    store.delete_secret("db")
    store.purge_deleted_secret("db")
    with pytest.raises(hsmkit.SecretNotFound):
        store.describe_secret("db")

    restored = store.restore_secret(blob)
    assert isinstance(restored, hsmkit.SecretDescription) and restored.name == "db"
    assert restored.deleted_on is None
    after = store.describe_secret("db")
    for desc in (restored, after):
        assert [secret_props(p) for p in desc.versions] == [secret_props(p) for p in before.versions]
        for mine, was in zip(desc.versions, before.versions):
            # not_before and expires compare equal above; times the store sets are kept.
            assert close(mine.created, was.created) and close(mine.updated, was.updated)
    # Every value, and the disabled version stays disabled.
    assert store.get_secret("db", 1).value == values[0]
    assert store.get_secret("db", 2).value == values[1]
    with pytest.raises(hsmkit.PermissionDenied, match="disabled"):
        store.get_secret("db")
    store.update_secret("db", enabled=True)
    assert store.get_secret("db").value == values[2]
    assert store.get_secret_rotation_policy("db") == {
        "rotate_after": dt.timedelta(days=60),
        "rotate_before_expiry": None,
        "expires_after": dt.timedelta(days=90),
    }
    # Writes go on from the restored versions.
    assert store.set_secret("db", b"four").version == 4


def test_secret_restore_refused_while_the_name_is_held(store: hsmkit.Store) -> None:
    store.set_secret("s", b"old")
    blob = store.backup_secret("s")
    store.set_secret("s", b"newer")
    with pytest.raises(hsmkit.SecretAlreadyExists):
        store.restore_secret(blob)
    store.delete_secret("s")
    with pytest.raises(hsmkit.SecretAlreadyExists):
        store.restore_secret(blob)  # a soft-deleted secret holds its name too
    store.recover_deleted_secret("s")
    assert [p.version for p in store.list_secret_versions("s")] == [1, 2], "a refused restore changes nothing"
    assert store.get_secret("s").value == b"newer"
    # A key of the same name does not hold a secret's name.
    store.delete_secret("s")
    store.purge_deleted_secret("s")
    store.create_key("s", "ec")
    assert store.restore_secret(blob).name == "s"
    assert store.get_secret("s").value == b"old"


def test_secret_backup_errors(store: hsmkit.Store) -> None:
    with pytest.raises(hsmkit.SecretNotFound):
        store.backup_secret("nothing")
    store.set_secret("gone", b"v")
    store.delete_secret("gone")
    with pytest.raises(hsmkit.SecretNotFound):
        store.backup_secret("gone")
    with pytest.raises(hsmkit.InvalidInput):
        store.restore_secret("a str")  # type: ignore[arg-type]


def test_tampered_secret_backup_is_refused(store: hsmkit.Store) -> None:
    store.set_secret("s", b"value")
    blob = store.backup_secret("s")
    store.delete_secret("s")
    store.purge_deleted_secret("s")
    # The body (values, attributes) and its tag: one opaque error, whatever was changed.
    for pos in (len(blob) - 1, len(blob) - 17, len(blob) // 2):
        bad = bytearray(blob)
        bad[pos] ^= 0x01
        with pytest.raises(hsmkit.DecryptionFailed):
            store.restore_secret(bad)
    for cut in (len(blob) - 1, len(blob) // 2):
        with pytest.raises(hsmkit.DecryptionFailed):
            store.restore_secret(blob[:cut])
    # A header that no longer parses is not a backup at all.
    with pytest.raises(hsmkit.InvalidInput):
        store.restore_secret(blob[:10])
    with pytest.raises(hsmkit.SecretNotFound):
        store.describe_secret("s")
    assert store.restore_secret(memoryview(blob)).name == "s", "the blob itself still restores"


def test_backup_from_another_store_is_refused(store: hsmkit.Store) -> None:
    store.set_secret("s", b"value")
    blob = store.backup_secret("s")
    fresh = hsmkit.open("memory:")  # no backup key at all
    with pytest.raises(hsmkit.DecryptionFailed):
        fresh.restore_secret(blob)
    other = hsmkit.open("memory:")  # a backup key of its own
    other.set_secret("mine", b"x")
    other.backup_secret("mine")
    with pytest.raises(hsmkit.DecryptionFailed):
        other.restore_secret(blob)
    for s in (fresh, other):
        with pytest.raises(hsmkit.SecretNotFound):
            s.describe_secret("s")


def test_key_round_trip(soft_store: hsmkit.Store) -> None:
    store = soft_store
    ec1 = store.create_key("sig", "ec", tags={"team": "a"})
    sig1 = ec1.sign("ES256", b"m")
    ec2 = store.rotate_key("sig")
    sig2 = ec2.sign("ES256", b"m")
    store.update_key("sig", 1, enabled=False, expires=dt.datetime.now(UTC) + dt.timedelta(days=3))
    store.set_rotation_policy("sig", rotate_after="P30D")
    aes = store.create_key("aes", "aes", exportable=True)
    wrapped = aes.wrap_key("A256KW", b"k" * 32)
    material = aes.export_key()
    before = {n: store.list_versions(n) for n in ("sig", "aes")}
    blobs = {n: store.backup_key(n) for n in ("sig", "aes")}
    for n in ("sig", "aes"):
        store.delete_key(n)
        store.purge_deleted_key(n)

    restored = store.restore_key(blobs["sig"])
    assert isinstance(restored, hsmkit.Key) and restored.kid == "sig/2"
    assert restored == ec2, "the same public key, same store, same kid"
    assert store.get_key("sig", 1) == ec1
    restored.verify("ES256", b"m", sig2)
    assert store.restore_key(blobs["aes"]).kid == "aes/1"
    for n in ("sig", "aes"):
        now = store.list_versions(n)
        fields = ("kid", "key_type", "size_or_curve", "allowed_ops", "enabled", "tags", "exportable")
        assert [[getattr(p, f) for f in fields] for p in now] == [[getattr(p, f) for f in fields] for p in before[n]]
        for mine, was in zip(now, before[n]):
            assert close(mine.expires, was.expires) and close(mine.not_before, was.not_before)
            assert close(mine.created, was.created)
    assert not store.list_versions("sig")[0].enabled, "the disabled version stays disabled"
    store.update_key("sig", 1, enabled=True)
    store.get_key("sig", 1).verify("ES256", b"m", sig1)
    assert store.get_rotation_policy("sig") == {
        "rotate_after": dt.timedelta(days=30),
        "rotate_before_expiry": None,
        "expires_after": None,
    }
    aes_back = store.get_key("aes")
    assert aes_back.unwrap_key("A256KW", wrapped) == b"k" * 32
    assert aes_back.export_key() == material


def test_key_restore_refused_while_the_name_is_held(soft_store: hsmkit.Store) -> None:
    store = soft_store
    key = store.create_key("k", "ec")
    blob = store.backup_key("k")
    with pytest.raises(hsmkit.KeyAlreadyExists):
        store.restore_key(blob)
    store.delete_key("k")
    with pytest.raises(hsmkit.KeyAlreadyExists):
        store.restore_key(blob)
    assert store.recover_deleted_key("k") == key
    assert [p.version for p in store.list_versions("k")] == [1]


def test_key_backup_errors(soft_store: hsmkit.Store) -> None:
    store = soft_store
    with pytest.raises(hsmkit.KeyNotFound):
        store.backup_key("nothing")
    store.create_key("k", "ec")
    store.set_secret("s", b"v")
    key_blob, secret_blob = store.backup_key("k"), store.backup_secret("s")
    # A key backup is not a secret backup, nor the other way round.
    with pytest.raises(hsmkit.InvalidInput):
        store.restore_secret(key_blob)
    with pytest.raises(hsmkit.InvalidInput):
        store.restore_key(secret_blob)
    # The backup key itself is not backed up under itself.
    with pytest.raises(hsmkit.InvalidInput):
        store.backup_key("hsmkit-backup")
    store.delete_key("k")
    store.purge_deleted_key("k")
    bad = bytearray(key_blob)
    bad[-1] ^= 0x80
    with pytest.raises(hsmkit.DecryptionFailed):
        store.restore_key(bad)
    with pytest.raises(hsmkit.DecryptionFailed):
        hsmkit.open("memory:").restore_key(key_blob)
    with pytest.raises(hsmkit.KeyNotFound):
        store.get_key("k")
    assert store.restore_key(key_blob).kid == "k/1"


def test_backup_key_on_a_token_is_unsupported(softhsm_store: hsmkit.Store) -> None:
    softhsm_store.create_key("k", "ec")
    with pytest.raises(hsmkit.Unsupported) as e:
        softhsm_store.backup_key("k")
    assert e.value.reason == "operation" and "k" in str(e.value)
    # Secrets back up on a token (their values are sealed under a token key).
    softhsm_store.set_secret("s", b"on the token")
    blob = softhsm_store.backup_secret("s")
    softhsm_store.delete_secret("s")
    softhsm_store.purge_deleted_secret("s")
    softhsm_store.restore_secret(blob)
    assert softhsm_store.get_secret("s").value == b"on the token"
