"""Keys: create, import, get, list, properties and the lifecycle."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

import hsmkit

UTC = dt.timezone.utc


@pytest.mark.parametrize(
    "key_type,kw,expect",
    [
        ("rsa", {}, 2048),
        ("rsa", {"size": 3072}, 3072),
        ("ec", {}, "P-256"),
        ("ec", {"curve": "P-384"}, "P-384"),
        ("ec", {"curve": "P-521"}, "P-521"),
        ("aes", {}, 256),
        ("aes", {"size": 128}, 128),
        ("aes", {"size": 192}, 192),
    ],
)
def test_create_key_specs(store: hsmkit.Store, key_type: str, kw: dict, expect: object) -> None:
    key = store.create_key("k", key_type, **kw)
    assert (key.name, key.version, key.key_type, key.size_or_curve) == ("k", 1, key_type, expect)
    assert key.kid == "k/1"
    assert key.enabled and key.has_private and not key.exportable
    assert key.created.tzinfo is not None and key.created <= dt.datetime.now(UTC)
    again = store.get_key("k")
    assert again == key and hash(again) == hash(key)
    assert store.list_keys() == ["k"]


def test_key_equality_is_store_kid_and_public_key(store: hsmkit.Store) -> None:
    ec_key = store.create_key("k", "ec")
    other = hsmkit.open("memory:")
    rsa_key = other.create_key("k", "rsa")
    assert ec_key.kid == rsa_key.kid == "k/1"
    assert ec_key != rsa_key and rsa_key != ec_key
    assert len({ec_key, rsa_key}) == 2
    # Same type, same kid, another store: another key.
    ec_other = other.create_key("e", "ec")
    assert store.create_key("e", "ec") != ec_other
    # The same key fetched twice from one store: equal, same hash, one set/dict entry.
    a, b = store.get_key("k"), store.get_key("k", 1)
    assert a is not b and a == b == ec_key and hash(a) == hash(b) == hash(ec_key)
    assert len({a, b, ec_key}) == 1
    d = {a: "first"}
    d[b] = "second"
    assert d == {ec_key: "second"} and d[store.get_key("k")] == "second"
    assert ec_key != "k/1" and ec_key != ec_key.properties
    # AES keys have no public part: store and kid decide.
    aes = store.create_key("a", "aes")
    assert store.get_key("a") == aes and hash(store.get_key("a")) == hash(aes)
    assert aes != other.create_key("a", "aes")
    # A new version is another key.
    assert store.rotate_key("k") != ec_key


def test_recreated_key_is_another_key(store: hsmkit.Store) -> None:
    old = store.create_key("k", "ec")
    store.delete_key("k")
    store.purge_deleted_key("k")
    new = store.create_key("k", "ec")
    assert new.kid == old.kid, "same store, same name and version"
    assert new != old, "but another public key"


def test_create_key_attributes(store: hsmkit.Store) -> None:
    nb = dt.datetime(2020, 1, 1, tzinfo=UTC)
    ex = dt.datetime(2099, 1, 1, tzinfo=UTC)
    key = store.create_key(
        "k", "ec", ops=["sign"], not_before=nb, expires=ex, tags={"team": "a"}, enabled=False
    )
    assert key.allowed_ops == ["sign"]
    assert key.tags == {"team": "a"}
    assert key.enabled is False
    assert key.not_before == nb and key.expires == ex
    with pytest.raises(hsmkit.PermissionDenied):
        key.sign("ES256", b"x")


def test_create_key_bad_input(store: hsmkit.Store) -> None:
    for args, kw in [
        (("k", "rsa"), {"size": 1000}),
        (("k", "dsa"), {}),
        (("k", "ec"), {"curve": "P-999"}),
        (("k", "ec"), {"size": 256}),
        (("k", "rsa"), {"curve": "P-256"}),
        (("k", "aes"), {"ops": ["fly"]}),
        (("k", "aes"), {"expires": dt.datetime(2099, 1, 1)}),  # naive: refused
        (("bad name!", "aes"), {}),
    ]:
        with pytest.raises(hsmkit.InvalidInput):
            store.create_key(*args, **kw)
    store.create_key("k", "aes")
    with pytest.raises(hsmkit.KeyAlreadyExists):
        store.create_key("k", "aes")
    with pytest.raises(hsmkit.KeyNotFound):
        store.get_key("missing")
    with pytest.raises(hsmkit.KeyNotFound):
        store.get_key("k", version=9)


def _pyca_keys() -> list:
    return [
        ("rsa", rsa.generate_private_key(public_exponent=65537, key_size=2048), 2048),
        ("ec", ec.generate_private_key(ec.SECP256R1()), "P-256"),
        ("ec", ec.generate_private_key(ec.SECP384R1()), "P-384"),
    ]


@pytest.mark.parametrize("form", ["pem-bytes", "pem-str", "der", "jwk-dict", "jwk-str"])
def test_import_public_keys(store: hsmkit.Store, form: str) -> None:
    for i, (kt, priv, size) in enumerate(_pyca_keys()):
        pub = priv.public_key()
        pem = pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        der = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        if form.startswith("jwk"):
            jwk = store.import_key(f"tmp{i}", pem).public_key_jwk()
            jwk.pop("kid")
            data: object = jwk if form == "jwk-dict" else __import__("json").dumps(jwk)
        else:
            data = {"pem-bytes": pem, "pem-str": pem.decode(), "der": der}[form]
        key = store.import_key(f"pub{i}", data, ops=["verify"])  # type: ignore[arg-type]
        assert (key.key_type, key.size_or_curve, key.has_private) == (kt, size, False)
        assert key.public_key_der() == der
        assert key.allowed_ops == ["verify"]
        with pytest.raises(hsmkit.PermissionDenied):
            key.sign("ES256" if kt == "ec" else "RS256", b"x")


def test_import_private_and_aes_keys(store: hsmkit.Store) -> None:
    for i, (kt, priv, size) in enumerate(_pyca_keys()):
        for j, enc in enumerate([serialization.Encoding.PEM, serialization.Encoding.DER]):
            pkcs8 = priv.private_bytes(enc, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
            key = store.import_key(f"k{i}-{j}", pkcs8)
            assert (key.key_type, key.size_or_curve, key.has_private) == (kt, size, True)
    aes = store.import_key("aes", {"kty": "oct", "k": "AAECAwQFBgcICQoLDA0ODw"})
    assert (aes.key_type, aes.size_or_curve) == ("aes", 128)
    for bad in [b"garbage", "not a key", {"kty": "oct"}, {"kty": "oct", "k": "AAEC"}, 42, None]:
        with pytest.raises(hsmkit.InvalidInput):
            store.import_key("bad", bad)  # type: ignore[arg-type]


def test_rotate_versions_update(store: hsmkit.Store) -> None:
    v1 = store.create_key("k", "ec", tags={"a": "1"})
    v2 = store.rotate_key("k")
    assert (v2.version, v2.tags) == (2, {"a": "1"})
    assert store.get_key("k").version == 2
    assert store.get_key("k", 1) == v1
    assert [p.version for p in store.list_versions("k")] == [1, 2]
    assert isinstance(store.list_versions("k")[0], hsmkit.KeyProperties)
    # decrypt/verify use the version named; old versions still verify.
    sig = v1.sign("ES256", b"m")
    store.get_key("k", 1).verify("ES256", b"m", sig)

    ex = dt.datetime(2099, 6, 1, tzinfo=UTC)
    p = store.update_key("k", 1, enabled=False, expires=ex, tags={"b": "2"}, ops=["verify"])
    assert (p.version, p.enabled, p.expires, p.tags, p.allowed_ops) == (1, False, ex, {"b": "2"}, ["verify"])
    assert store.get_key("k").enabled  # v2 untouched
    p = store.update_key("k", 1, clear_expires=True, enabled=True)
    assert p.expires is None and p.enabled
    p = store.update_key("k", not_before=dt.datetime(2001, 1, 1, tzinfo=UTC))  # current = v2
    assert p.version == 2 and p.not_before == dt.datetime(2001, 1, 1, tzinfo=UTC)
    with pytest.raises(hsmkit.InvalidInput):
        store.update_key("k", expires=ex, clear_expires=True)
    with pytest.raises(hsmkit.KeyNotFound):
        store.update_key("missing", enabled=False)


def test_expired_key_refuses_but_verifies(store: hsmkit.Store) -> None:
    key = store.create_key("k", "ec")
    sig = key.sign("ES256", b"m")
    store.update_key("k", expires=dt.datetime(2001, 1, 1, tzinfo=UTC))
    key = store.get_key("k")
    with pytest.raises(hsmkit.PermissionDenied, match="expired"):
        key.sign("ES256", b"m")
    key.verify("ES256", b"m", sig)


def test_soft_delete_recover_purge(store: hsmkit.Store) -> None:
    store.create_key("k", "aes")
    store.rotate_key("k")
    d = store.delete_key("k")
    assert d.name == "k" and [v.version for v in d.versions] == [1, 2]
    assert d.deleted_on is not None and d.scheduled_purge is not None
    assert d.scheduled_purge - d.deleted_on == dt.timedelta(days=90)
    assert store.list_keys() == []
    with pytest.raises(hsmkit.KeyNotFound):
        store.get_key("k")
    with pytest.raises(hsmkit.KeyAlreadyExists):
        store.create_key("k", "aes")
    assert [x.name for x in store.list_deleted_keys()] == ["k"]
    assert store.get_deleted_key("k").name == "k"
    assert store.recover_deleted_key("k").version == 2
    assert store.list_keys() == ["k"]
    store.delete_key("k")
    store.purge_deleted_key("k")
    assert store.list_deleted_keys() == []
    with pytest.raises(hsmkit.KeyNotFound):
        store.get_deleted_key("k")
    store.create_key("k", "aes")  # the name is free again


def test_settings_and_purge_protection(store: hsmkit.Store) -> None:
    assert store.settings() == {"retention": dt.timedelta(days=90), "purge_protection": False}
    store.set_retention(dt.timedelta(days=7))
    store.set_retention("P30D")
    with pytest.raises(hsmkit.InvalidInput):
        store.set_retention(dt.timedelta(days=1))
    store.enable_purge_protection()
    assert store.settings() == {"retention": dt.timedelta(days=30), "purge_protection": True}
    store.create_key("k", "aes")
    store.delete_key("k")
    with pytest.raises(hsmkit.PermissionDenied):
        store.purge_deleted_key("k")


def test_rotation_policy(store: hsmkit.Store) -> None:
    store.create_key("k", "ec")
    assert store.get_rotation_policy("k") is None
    store.set_rotation_policy("k", rotate_after="P90D", expires_after=dt.timedelta(days=365))
    assert store.get_rotation_policy("k") == {
        "rotate_after": dt.timedelta(days=90),
        "rotate_before_expiry": None,
        "expires_after": dt.timedelta(days=365),
    }
    assert store.rotate_due() == []  # the key is new
    store.set_rotation_policy("k", rotate_before_expiry="P30D")
    store.update_key("k", expires=dt.datetime.now(UTC) + dt.timedelta(days=3))
    assert store.rotate_due() == [("k", 2)]
    store.set_rotation_policy("k")  # removes it
    assert store.get_rotation_policy("k") is None
    with pytest.raises(hsmkit.InvalidInput):
        store.set_rotation_policy("k", rotate_after="ninety days")
