//! Secret reads: a `SecretCache` hit against the uncached `Store::get_secret` it saves
//! (the reference, same run), on the software backend (memory store) and on a SoftHSM2
//! token, where an uncached read is a data-object read, a signature check and an unwrap
//! on the token. The cache hit is the same code on both.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use hsmkit::Store;
use hsmkit::secrets::{SecretAttributes, SecretCache};
use hsmkit_benches::threaded;

const VALUE: &[u8] = b"postgres://app:correct-horse-battery-staple@db.internal:5432/orders";

fn bench_store(c: &mut Criterion, label: &str, store: &Store) {
    store.set_secret("db-url", VALUE, SecretAttributes::default()).unwrap();
    let cache = SecretCache::new(store.clone());
    cache.get("db-url").unwrap();
    let mut g = c.benchmark_group(format!("secret get / {label}"));
    g.bench_function("store.get_secret (uncached reference)", |b| {
        b.iter(|| black_box(store.get_secret(black_box("db-url")).unwrap()))
    });
    g.bench_function("SecretCache hit", |b| b.iter(|| black_box(cache.get(black_box("db-url")).unwrap())));
    let hit = || {
        black_box(cache.get(black_box("db-url")).unwrap());
    };
    g.bench_function("SecretCache hit x2 threads", |b| b.iter_custom(|n| threaded(n, 2, &hit)));
    g.finish();
}

fn secrets(c: &mut Criterion) {
    let soft = Store::new(hsmkit_soft::SoftBackend::new());
    bench_store(c, "soft", &soft);
    let token = hsmkit_pkcs11::testing::SoftHsmToken::new().unwrap();
    let store = token.store().unwrap();
    bench_store(c, "softhsm2", &store);
}

criterion_group!(benches, secrets);
criterion_main!(benches);
