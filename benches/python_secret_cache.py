"""Python per-read cost of a secret: a `SecretCache.get` hit against the uncached
`Store.get_secret` it saves (the reference, same run), on the software backend (memory
store) and on a SoftHSM2 token, beside the same calls in Rust (criterion's median from
benches/benches/secrets.rs, same machine, if benches/run.sh has run). Prints a Markdown
table; writes nothing.

    target/py-venv/bin/python benches/python_secret_cache.py [target/criterion]

`SecretCache.get` releases the GIL on hits too (a hit past the TTL waits for the store):
a build that kept the GIL measured 0.31 µs a hit against 0.36-0.51 µs for this one, in
runs on the same (shared, noisy) machine; the release is a fraction of a microsecond.
"""

from __future__ import annotations

import json
import statistics
import sys
import timeit
from pathlib import Path

import hsmkit
from hsmkit.testing import softhsm_store

crit = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("target/criterion")
VALUE = b"postgres://app:correct-horse-battery-staple@db.internal:5432/orders"


def median_us(fn, number: int) -> float:
    # The median of 15 repeats, to compare with criterion's median.
    return statistics.median(timeit.repeat(fn, number=number, repeat=15)) / number * 1e6


def rust_us(label: str, bench: str) -> float | None:
    p = crit / f"secret get _ {label}" / bench / "new" / "estimates.json"
    return json.loads(p.read_text())["median"]["point_estimate"] / 1000 if p.exists() else None


def fmt(us: float | None) -> str:
    return "—" if us is None else f"{us:.2f} µs"


def bench(label: str, store: hsmkit.Store, uncached_n: int) -> list[tuple[str, float, float | None]]:
    store.set_secret("db-url", VALUE)
    cache = hsmkit.SecretCache(store)
    assert cache.get("db-url").value == VALUE  # the first get fills the cache
    get, secret = cache.get, store.get_secret
    hit = median_us(lambda: get("db-url"), 20000)
    hit_value = median_us(lambda: get("db-url").value, 20000)
    uncached = median_us(lambda: secret("db-url"), uncached_n)
    return [
        (f"{label}: SecretCache.get hit", hit, rust_us(label, "SecretCache hit")),
        (f"{label}: SecretCache.get hit + .value", hit_value, None),
        (f"{label}: store.get_secret (uncached reference)", uncached,
         rust_us(label, "store.get_secret (uncached reference)")),
    ]


rows = bench("soft", hsmkit.open("memory:"), 2000)
with softhsm_store() as token_store:
    rows += bench("softhsm2", token_store, 50)

print("| read | Python | same call in Rust | Python overhead | uncached / hit |")
print("|---|---|---|---|---|")
for i, (name, py, rs) in enumerate(rows):
    # Each store's hit is its first row, its uncached reference its third.
    group = rows[i - i % 3 : i - i % 3 + 3]
    ratio = f"{group[2][1] / py:.0f}x" if i % 3 == 0 else "—"
    over = "—" if rs is None else f"{py - rs:+.2f} µs"
    print(f"| {name} | {fmt(py)} | {fmt(rs)} | {over} | {ratio} |")
