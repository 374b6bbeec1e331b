"""SecretCache: the current version of secrets, served from memory within its TTL."""

from __future__ import annotations

import datetime as dt
import gc
import os
import threading
import time

import pytest

import hsmkit

TD = dt.timedelta


def test_get_returns_the_current_version(store: hsmkit.Store) -> None:
    value = os.urandom(48)
    store.set_secret("old", b"one")
    store.set_secret("db", value, content_type="text/plain", tags={"t": "1"})
    cache = hsmkit.SecretCache(store)
    for _ in range(3):  # a miss, then hits
        got = cache.get("db")
        assert type(got) is hsmkit.Secret
        assert (got.name, got.version, got.value) == ("db", 1, value)
        assert (got.content_type, got.tags) == ("text/plain", {"t": "1"})
    assert repr(got) == repr(store.get_secret("db"))
    with pytest.raises(hsmkit.SecretNotFound):
        cache.get("nothing")


def test_a_rotation_is_seen_after_invalidate(store: hsmkit.Store) -> None:
    store.set_secret("db", b"v1")
    cache = hsmkit.SecretCache(store)  # ttl 5 minutes: nothing expires during the test
    assert cache.get("db").value == b"v1"
    store.set_secret("db", b"v2")
    assert cache.get("db").value == b"v1", "within the TTL the cached version is served"
    cache.invalidate("db")
    got = cache.get("db")
    assert (got.version, got.value) == (2, b"v2")
    store.set_secret("db", b"v3")
    cache.invalidate("not cached")  # nothing to drop: no error
    cache.clear()
    assert cache.get("db").value == b"v3"


def test_a_disabled_or_deleted_secret_stops_being_served(store: hsmkit.Store) -> None:
    store.set_secret("s", b"v")
    cache = hsmkit.SecretCache(store)
    assert cache.get("s").value == b"v"
    store.update_secret("s", enabled=False)
    cache.invalidate("s")
    with pytest.raises(hsmkit.PermissionDenied, match="disabled"):
        cache.get("s")
    store.update_secret("s", enabled=True)
    assert cache.get("s").value == b"v"
    store.delete_secret("s")
    cache.clear()
    with pytest.raises(hsmkit.SecretNotFound):
        cache.get("s")


def test_a_value_past_its_ttl_is_read_again() -> None:
    """Past the TTL a get waits for the store (sleeping at least the TTL makes that
    certain however slow the machine is)."""
    store = hsmkit.open("memory:")
    store.set_secret("s", b"v1")
    cache = hsmkit.SecretCache(store, ttl=TD(milliseconds=50), refresh_ahead=TD(0), max_stale=TD(0))
    assert cache.get("s").value == b"v1"
    store.set_secret("s", b"v2")
    time.sleep(0.1)
    assert cache.get("s").value == b"v2"


def test_expiry_is_checked_on_every_hit() -> None:
    store = hsmkit.open("memory:")
    store.set_secret("s", b"v", expires=dt.datetime.now(dt.timezone.utc) + TD(seconds=1))
    cache = hsmkit.SecretCache(store)
    assert cache.get("s").value == b"v"
    time.sleep(1.1)  # after `expires`, whatever the machine's speed
    with pytest.raises(hsmkit.PermissionDenied, match="expired"):
        cache.get("s")


def test_max_entries_drops_the_oldest() -> None:
    store = hsmkit.open("memory:")
    store.set_secret("a", b"a1")
    store.set_secret("b", b"b1")
    cache = hsmkit.SecretCache(store, max_entries=1)
    assert cache.get("a").value == b"a1"
    store.set_secret("a", b"a2")
    assert cache.get("b").value == b"b1"  # the cache is full: "a" goes
    assert cache.get("a").value == b"a2", "a dropped entry is read from the store"


def test_options() -> None:
    store = hsmkit.open("memory:")
    cache = hsmkit.SecretCache(store)
    assert (cache.ttl, cache.refresh_ahead, cache.max_stale, cache.max_entries) == (
        TD(minutes=5),
        TD(minutes=1),
        TD(minutes=15),
        1024,
    )
    cache = hsmkit.SecretCache(store, ttl="PT10M", refresh_ahead=TD(0), max_stale="P1D", max_entries=3)
    assert (cache.ttl, cache.refresh_ahead, cache.max_stale) == (TD(minutes=10), TD(0), TD(days=1))
    assert cache.max_entries == 3
    assert repr(cache) == "<SecretCache ttl=PT10M refresh_ahead=PT0S max_stale=P1D max_entries=3>"
    # Without refresh_ahead, a fifth of the ttl: a short ttl alone is accepted.
    short = hsmkit.SecretCache(store, ttl=TD(milliseconds=250))
    assert (short.ttl, short.refresh_ahead) == (TD(milliseconds=250), TD(milliseconds=50))
    assert hsmkit.SecretCache(store, ttl="PT1H").refresh_ahead == TD(minutes=12)


@pytest.mark.parametrize(
    "kw",
    [
        {"ttl": TD(0)},
        {"ttl": "PT0S"},
        {"ttl": TD(seconds=-1)},
        {"ttl": 30},  # seconds must be a timedelta or an ISO 8601 duration
        {"ttl": "five minutes"},
        {"refresh_ahead": TD(minutes=5)},  # not below the default ttl
        {"ttl": TD(seconds=10), "refresh_ahead": TD(seconds=10)},
        {"refresh_ahead": TD(seconds=-1)},
        {"max_stale": TD(seconds=-1)},
        {"max_entries": 0},
        {"max_entries": -1},
    ],
)
def test_bad_options_are_refused(kw: dict) -> None:
    with pytest.raises(hsmkit.InvalidInput) as e:
        hsmkit.SecretCache(hsmkit.open("memory:"), **kw)
    assert isinstance(e.value, ValueError) and e.value.reason in ("parameter", "malformed")


def test_repr_shows_no_value(store: hsmkit.Store) -> None:
    value = b"canary-" + os.urandom(12).hex().encode()
    store.set_secret("s", value)
    cache = hsmkit.SecretCache(store)
    secret = cache.get("s")
    assert secret.value == value
    for shown in (repr(cache), str(cache), repr(secret), str(secret)):
        assert value.decode() not in shown and repr(value) not in shown
    assert repr(secret) == f"<Secret s/1 content_type=None value=<{len(value)} bytes, redacted>>"
    assert repr(cache) == "<SecretCache ttl=PT5M refresh_ahead=PT1M max_stale=PT15M max_entries=1024>"


def test_secrets_outlive_the_cache_and_the_cache_the_store() -> None:
    store = hsmkit.open("memory:")
    store.set_secret("s", b"value")
    cache = hsmkit.SecretCache(store)
    del store
    gc.collect()
    secret = cache.get("s")  # the cache holds the store
    cache.clear()
    del cache
    gc.collect()
    assert secret.value == b"value", "a Secret holds its value after the cache dropped it"


def test_threads_share_one_cache(store: hsmkit.Store) -> None:
    for i in range(4):
        store.set_secret(f"s{i}", f"value {i}".encode())
    cache = hsmkit.SecretCache(store)
    errors: list = []

    def read(n: int) -> None:
        try:
            for j in range(200):
                name = f"s{(n + j) % 4}"
                assert cache.get(name).value == f"value {name[1:]}".encode()
                if j % 50 == 0:
                    cache.invalidate(name)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=read, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads) and errors == []
