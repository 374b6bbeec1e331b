"""Secrets: versioned values sealed in the store, their attributes and lifecycle."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any, Iterator

import pytest

import hsmkit

UTC = dt.timezone.utc
MAX = 25 * 1024
PROPERTY_FIELDS = (
    "name",
    "version",
    "enabled",
    "not_before",
    "expires",
    "content_type",
    "tags",
    "created",
    "updated",
)


def now() -> dt.datetime:
    return dt.datetime.now(UTC)


def close(a: dt.datetime | None, b: dt.datetime | None) -> bool:
    """The same time as far as the store keeps it: it persists whole seconds, while what a
    write returns still has the sub-second part."""
    return a is not None and b is not None and abs(a - b) < dt.timedelta(seconds=1)


def canary() -> bytes:
    """A value no metadata, repr or message would hold by chance."""
    return b"canary-" + os.urandom(12).hex().encode()


def shown(obj: Any) -> Iterator[str]:
    """Every way an object shows itself: repr, str, and the repr of each public attribute
    (lists expanded), so that a value hidden one level down is seen too. `Secret.value`
    is the one place the value may be."""
    yield repr(obj)
    yield str(obj)
    for attr in dir(obj):
        if attr.startswith("_") or (isinstance(obj, hsmkit.Secret) and attr == "value"):
            continue
        value = getattr(obj, attr)
        if callable(value):
            continue
        yield repr(value)
        if isinstance(value, list):
            for item in value:
                yield from shown(item)
        elif isinstance(value, (hsmkit.SecretProperties, hsmkit.SecretDescription)):
            yield from shown(value)


def assert_hidden(obj: Any, value: bytes) -> None:
    text = value.decode()
    for s in shown(obj):
        assert text not in s and repr(value) not in s, f"{type(obj).__name__} shows the value: {s}"


def test_binary_values_round_trip(store: hsmkit.Store) -> None:
    values = [
        b"",
        bytes(range(256)) + b"\0\0\0",
        os.urandom(MAX),  # exactly the limit
        bytearray(b"from a bytearray"),
        memoryview(b"from a memoryview"),
    ]
    for i, value in enumerate(values, start=1):
        props = store.set_secret("blob", value)
        assert isinstance(props, hsmkit.SecretProperties)
        assert (props.name, props.version) == ("blob", i)
    for i, value in enumerate(values, start=1):
        got = store.get_secret("blob", i).value
        assert type(got) is bytes and got == bytes(value), f"version {i}"
    assert store.get_secret("blob").value == b"from a memoryview"
    assert len(store.get_secret("blob", 3).value) == MAX


def test_value_over_25_kib_is_refused(store: hsmkit.Store) -> None:
    with pytest.raises(hsmkit.InvalidInput) as e:
        store.set_secret("big", bytes(MAX + 1))
    assert e.value.reason == "length" and "25" in str(e.value)
    with pytest.raises(hsmkit.SecretNotFound):
        store.describe_secret("big")  # nothing was written
    store.set_secret("big", bytes(MAX))
    with pytest.raises(hsmkit.InvalidInput):
        store.set_secret("big", os.urandom(MAX + 1))
    assert [p.version for p in store.list_secret_versions("big")] == [1]
    with pytest.raises(hsmkit.InvalidInput, match="not str"):
        store.set_secret("text", "a str")  # type: ignore[arg-type]
    with pytest.raises(hsmkit.InvalidInput) as e:
        store.set_secret("has space", b"x")
    assert e.value.reason == "name"


def test_versions(store: hsmkit.Store) -> None:
    for v in (b"one", b"two", b"three"):
        store.set_secret("db", v)
    current = store.get_secret("db")
    assert (current.name, current.version, current.value) == ("db", 3, b"three")
    assert store.get_secret("db", 1).value == b"one"
    assert store.get_secret("db", version=2).value == b"two"
    assert [p.version for p in store.list_secret_versions("db")] == [1, 2, 3]
    desc = store.describe_secret("db")
    assert desc.name == "db" and [p.version for p in desc.versions] == [1, 2, 3]
    assert desc.current is not None and desc.current.version == 3
    assert desc.deleted_on is None and desc.scheduled_purge is None
    with pytest.raises(hsmkit.SecretNotFound, match="version 4"):
        store.get_secret("db", 4)
    with pytest.raises(hsmkit.SecretNotFound) as e:
        store.get_secret("nothing")
    # Its own class, under the common base; not a key error.
    assert isinstance(e.value, hsmkit.NotFound) and not isinstance(e.value, hsmkit.KeyNotFound)
    with pytest.raises(hsmkit.SecretNotFound):
        store.list_secret_versions("nothing")


def test_properties(store: hsmkit.Store) -> None:
    before = now()
    nb = before - dt.timedelta(hours=1)
    exp = before + dt.timedelta(days=30)
    props = store.set_secret(
        "cfg", b"{}", content_type="application/json", not_before=nb, expires=exp, tags={"env": "prod"}
    )
    assert props.enabled and props.content_type == "application/json" and props.tags == {"env": "prod"}
    assert close(props.not_before, nb) and close(props.expires, exp)
    assert props.created.tzinfo is not None
    assert before - dt.timedelta(seconds=1) <= props.created <= now() + dt.timedelta(seconds=1)
    assert props.updated == props.created
    secret = store.get_secret("cfg")
    # The convenience attributes are the properties', as set.
    for field in PROPERTY_FIELDS:
        mine, written = getattr(secret, field), getattr(props, field)
        assert mine == getattr(secret.properties, field), field
        assert close(mine, written) if isinstance(mine, dt.datetime) else mine == written, field
    listed = store.list_secrets()
    assert [(p.name, p.version, p.content_type) for p in listed] == [("cfg", 1, "application/json")]
    plain = store.set_secret("plain", b"x")
    assert (plain.content_type, plain.tags, plain.not_before, plain.expires) == (None, {}, None, None)


def test_disabled_version_is_refused(store: hsmkit.Store) -> None:
    store.set_secret("s", b"one")
    store.set_secret("s", b"two", enabled=False)
    with pytest.raises(hsmkit.PermissionDenied, match="disabled"):
        store.get_secret("s")
    assert store.get_secret("s", 1).value == b"one", "only that version is refused"
    # version=None updates the current version, which can be updated while unreadable.
    props = store.update_secret("s", enabled=True)
    assert (props.version, props.enabled) == (2, True)
    assert store.get_secret("s").value == b"two"
    store.update_secret("s", 1, enabled=False)
    with pytest.raises(hsmkit.PermissionDenied):
        store.get_secret("s", 1)
    assert not store.describe_secret("s").versions[0].enabled


def test_not_before_and_expires_are_enforced(store: hsmkit.Store) -> None:
    store.set_secret("later", b"v", not_before=now() + dt.timedelta(days=1))
    with pytest.raises(hsmkit.PermissionDenied, match="not valid yet"):
        store.get_secret("later")
    store.set_secret("gone", b"v", expires=now() - dt.timedelta(seconds=1))
    with pytest.raises(hsmkit.PermissionDenied, match="expired"):
        store.get_secret("gone")
    day = dt.timedelta(days=1)
    store.set_secret("valid", b"v", not_before=now() - day, expires=now() + day)
    assert store.get_secret("valid").value == b"v"
    # Clearing the times makes them readable.
    assert store.update_secret("later", clear_not_before=True).not_before is None
    assert store.get_secret("later").value == b"v"
    assert store.update_secret("gone", 1, clear_expires=True).expires is None
    assert store.get_secret("gone").value == b"v"
    # Setting one again refuses again.
    store.update_secret("gone", expires=now() - dt.timedelta(seconds=1))
    with pytest.raises(hsmkit.PermissionDenied):
        store.get_secret("gone")


def test_bad_times_are_refused(store: hsmkit.Store) -> None:
    t = now() + dt.timedelta(days=1)
    with pytest.raises(hsmkit.InvalidInput, match="after not-before"):
        store.set_secret("s", b"v", not_before=t, expires=t)
    with pytest.raises(hsmkit.InvalidInput, match="time zone"):
        store.set_secret("s", b"v", expires=dt.datetime(2100, 1, 1))
    with pytest.raises(hsmkit.InvalidInput, match="expected a datetime"):
        store.set_secret("s", b"v", expires="2100-01-01")  # type: ignore[arg-type]
    with pytest.raises(hsmkit.SecretNotFound):
        store.describe_secret("s")
    store.set_secret("s", b"v")
    with pytest.raises(hsmkit.InvalidInput, match="not both"):
        store.update_secret("s", expires=t, clear_expires=True)
    with pytest.raises(hsmkit.InvalidInput, match="not both"):
        store.update_secret("s", content_type="a", clear_content_type=True)
    with pytest.raises(hsmkit.InvalidInput):
        store.update_secret("s", not_before=t, expires=t - dt.timedelta(hours=1))
    assert store.get_secret("s").expires is None, "a refused update changes nothing"


def test_update_content_type_and_tags(store: hsmkit.Store) -> None:
    first = store.set_secret("s", b"v", content_type="text/plain", tags={"a": "1"})
    p = store.update_secret("s", 1, content_type="application/x-pkcs12", tags={"b": "2"})
    assert (p.content_type, p.tags) == ("application/x-pkcs12", {"b": "2"})
    assert p.updated >= first.updated and close(p.created, first.created)
    p = store.update_secret("s", tags={})
    assert (p.content_type, p.tags) == ("application/x-pkcs12", {}), "content type left as it was"
    p = store.update_secret("s", clear_content_type=True)
    assert p.content_type is None
    assert store.list_secret_versions("s")[0].content_type is None, "the update persisted"
    assert store.get_secret("s").value == b"v", "an update leaves the value"
    with pytest.raises(hsmkit.InvalidInput):
        store.update_secret("s", content_type="t" * 256)
    with pytest.raises(hsmkit.SecretNotFound):
        store.update_secret("s", 2, enabled=False)
    with pytest.raises(hsmkit.SecretNotFound):
        store.update_secret("none", enabled=False)


def test_delete_recover_purge(store: hsmkit.Store) -> None:
    store.set_secret("gone", b"one")
    store.set_secret("gone", b"two")
    store.set_secret("stays", b"s")
    before = now()
    d = store.delete_secret("gone")
    assert isinstance(d, hsmkit.SecretDescription) and d.name == "gone" and len(d.versions) == 2
    assert d.deleted_on is not None and d.scheduled_purge is not None
    assert before - dt.timedelta(seconds=1) <= d.deleted_on <= now() + dt.timedelta(seconds=1)
    retention = store.settings()["retention"]
    assert abs(d.scheduled_purge - d.deleted_on - retention) < dt.timedelta(seconds=1)

    with pytest.raises(hsmkit.SecretNotFound):
        store.get_secret("gone")
    with pytest.raises(hsmkit.SecretNotFound):
        store.get_secret("gone", 1)
    with pytest.raises(hsmkit.SecretNotFound):
        store.delete_secret("gone")
    with pytest.raises(hsmkit.SecretAlreadyExists) as e:
        store.set_secret("gone", b"three")
    assert isinstance(e.value, hsmkit.AlreadyExists) and not isinstance(e.value, hsmkit.KeyAlreadyExists)
    assert [p.name for p in store.list_secrets()] == ["stays"]
    assert [x.name for x in store.list_deleted_secrets()] == ["gone"]
    assert close(store.get_deleted_secret("gone").deleted_on, d.deleted_on)
    assert close(store.describe_secret("gone").deleted_on, d.deleted_on)
    with pytest.raises(hsmkit.SecretNotFound):
        store.get_deleted_secret("stays")
    with pytest.raises(hsmkit.SecretNotFound):
        store.recover_deleted_secret("stays")
    with pytest.raises(hsmkit.SecretNotFound):
        store.purge_deleted_secret("stays")

    back = store.recover_deleted_secret("gone")
    assert isinstance(back, hsmkit.SecretProperties) and (back.name, back.version) == ("gone", 2)
    assert store.get_secret("gone").value == b"two" and store.get_secret("gone", 1).value == b"one"
    assert store.list_deleted_secrets() == []

    store.delete_secret("gone")
    store.purge_deleted_secret("gone")
    with pytest.raises(hsmkit.SecretNotFound):
        store.get_deleted_secret("gone")
    with pytest.raises(hsmkit.SecretNotFound):
        store.describe_secret("gone")
    assert store.set_secret("gone", b"new").version == 1, "a purged name starts again"
    assert store.get_secret("gone").value == b"new"


def test_purge_protection() -> None:
    store = hsmkit.open("memory:")
    store.set_retention(dt.timedelta(days=7))
    store.enable_purge_protection()
    store.set_secret("kept", b"v")
    store.delete_secret("kept")
    with pytest.raises(hsmkit.PermissionDenied, match="purge protection"):
        store.purge_deleted_secret("kept")
    assert store.get_deleted_secret("kept").name == "kept", "a refused purge leaves it"


def test_nothing_but_get_secret_returns_the_value(store: hsmkit.Store) -> None:
    value = canary()
    store.set_secret("a", value, content_type="text/plain", tags={"t": "v"})
    store.set_secret("a", value)
    store.set_secret("b", value)
    store.delete_secret("b")
    returned = [
        store.set_secret("c", value),
        store.update_secret("a", 1, enabled=True),
        *store.list_secrets(),
        *store.list_secret_versions("a"),
        store.describe_secret("a"),
        store.describe_secret("b"),
        *store.list_deleted_secrets(),
        store.get_deleted_secret("b"),
    ]
    for obj in returned:
        assert not hasattr(obj, "value"), type(obj).__name__
        assert_hidden(obj, value)
    assert store.get_secret("a").value == value, "the canary is there to be found"


def test_repr_and_str_hide_the_value(store: hsmkit.Store) -> None:
    value = canary()
    props = store.set_secret("shown", value, content_type="text/plain")
    secret = store.get_secret("shown")
    assert secret.value == value
    assert_hidden(secret, value)
    assert_hidden(props, value)
    assert repr(secret) == f"<Secret shown/1 content_type='text/plain' value=<{len(value)} bytes, redacted>>"
    assert str(secret) == repr(secret)
    assert repr(props) == "<SecretProperties shown/1 enabled=True content_type='text/plain'>"
    assert repr(secret.properties) == repr(props)
    assert repr(store.describe_secret("shown")) == "<SecretDescription shown versions=1>"
    store.delete_secret("shown")
    assert repr(store.get_deleted_secret("shown")) == "<SecretDescription shown versions=1 deleted>"


def test_error_messages_hide_the_value(store: hsmkit.Store) -> None:
    value = canary()
    store.set_secret("s", value, enabled=False)
    with pytest.raises(hsmkit.PermissionDenied) as e:
        store.get_secret("s")
    assert value.decode() not in str(e.value) and value.decode() not in repr(e.value)
    with pytest.raises(hsmkit.InvalidInput) as e2:
        store.set_secret("s", value * (MAX // len(value) + 1))
    assert value.decode() not in str(e2.value)


def test_secret_and_key_names_are_separate(store: hsmkit.Store) -> None:
    key = store.create_key("db", "ec")
    store.set_secret("db", b"secret value")
    store.set_secret("only-secret", b"x")
    assert store.get_key("db") == key
    assert store.get_secret("db").value == b"secret value"
    assert [p.name for p in store.list_secrets()] == ["db", "only-secret"]
    # The secrets KEK is a key of the store, made on first use; no secret is a key.
    assert "only-secret" not in store.list_keys()
    assert set(store.list_keys()) - {"hsmkit-secrets"} == {"db"}
    with pytest.raises(hsmkit.KeyNotFound):
        store.get_key("only-secret")
    store.create_key("only-key", "aes")
    with pytest.raises(hsmkit.SecretNotFound):
        store.get_secret("only-key")
    # Deleting one leaves the other.
    store.delete_key("db")
    assert store.get_secret("db").value == b"secret value"
    store.delete_secret("db")
    store.recover_deleted_key("db")
    assert store.get_key("db") == key
    assert [x.name for x in store.list_deleted_secrets()] == ["db"]


def test_rotation_policy_and_due(store: hsmkit.Store) -> None:
    store.set_secret("pol", b"1")
    assert store.get_secret_rotation_policy("pol") is None
    store.set_secret_rotation_policy("pol", rotate_after=dt.timedelta(days=60), expires_after="P90D")
    assert store.get_secret_rotation_policy("pol") == {
        "rotate_after": dt.timedelta(days=60),
        "rotate_before_expiry": None,
        "expires_after": dt.timedelta(days=90),
    }
    # The policy gives a version set without an expiry one.
    p = store.set_secret("pol", b"2")
    assert p.expires is not None and close(p.expires - dt.timedelta(days=90), p.created)
    short = now() + dt.timedelta(days=20)
    store.set_secret("short", b"s", expires=short)
    store.set_secret("never", b"n")
    store.set_secret("off", b"o", expires=short, enabled=False)
    store.set_secret("old", b"o", expires=now() - dt.timedelta(seconds=1))

    def due(within: Any) -> list:
        return [(d.name, d.version) for d in store.secrets_due(within)]

    assert due(dt.timedelta(0)) == [("old", 1)]
    assert due(dt.timedelta(days=30)) == [("old", 1), ("short", 1)]
    assert due("P100D") == [("old", 1), ("pol", 2), ("short", 1)]
    found = {d.name: d for d in store.secrets_due(dt.timedelta(days=30))}
    assert isinstance(found["short"], hsmkit.SecretDue)
    assert close(found["short"].expires, short)
    assert found["short"].reason.startswith("expires at"), found["short"].reason
    assert found["old"].reason.startswith("expired at"), found["old"].reason
    assert repr(found["short"]).startswith("<SecretDue short/1 'expires at ")
    with pytest.raises(hsmkit.InvalidInput):
        store.secrets_due(dt.timedelta(seconds=-1))
    with pytest.raises(hsmkit.InvalidInput):
        store.secrets_due(30)  # type: ignore[arg-type]

    store.set_secret_rotation_policy("pol")
    assert store.get_secret_rotation_policy("pol") is None
    with pytest.raises(hsmkit.SecretNotFound):
        store.set_secret_rotation_policy("none", rotate_after="P1D")
    with pytest.raises(hsmkit.SecretNotFound):
        store.get_secret_rotation_policy("none")
