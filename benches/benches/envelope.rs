//! Envelope seal/open throughput against raw AES-256-GCM of the same engine (the
//! `aes-gcm` crate, one key, one nonce, whole buffer) in the same run.
//!
//! `cargo bench -p hsmkit-benches --bench envelope`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::io::sink;
use std::time::Duration;

use aes_gcm::aead::inout::InOutBuf;
use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hsmkit::envelope::{CacheLimits, Sealer};
use hsmkit::{KeyAttributes, KeySpec, Store};

const SIZES: &[(&str, usize)] =
    &[("1KiB", 1 << 10), ("1MiB", 1 << 20), ("256MiB", 256 << 20), ("1GiB", 1 << 30)];

fn envelope(c: &mut Criterion) {
    let store = Store::new(hsmkit_soft::SoftBackend::new());
    let kek = store.create_key("kek", KeySpec::AES_256, KeyAttributes::default()).unwrap();
    let sealer = Sealer::for_key(kek).unwrap();
    let opener = store.opener();
    let raw = Aes256Gcm::new(&[7u8; 32].into());
    let nonce = Nonce::default();

    for &(label, size) in SIZES {
        let pt = vec![0x5au8; size];
        let mut out = vec![0u8; size];
        let env = sealer.seal(&pt).unwrap();
        let (ct, tag) = {
            let mut ct = vec![0u8; size];
            let tag = raw.encrypt_inout_detached(&nonce, b"", InOutBuf::new(&pt, &mut ct).unwrap()).unwrap();
            (ct, tag)
        };

        let mut g = c.benchmark_group(format!("envelope-{label}"));
        g.throughput(Throughput::Bytes(u64::try_from(size).unwrap()));
        if size >= 1 << 20 {
            g.sample_size(10).warm_up_time(Duration::from_millis(500));
        }
        if size > 1 << 20 {
            g.measurement_time(Duration::from_secs(8));
        }
        g.bench_function(BenchmarkId::new("raw-aes256gcm-encrypt", label), |b| {
            b.iter(|| {
                raw.encrypt_inout_detached(&nonce, b"", InOutBuf::new(black_box(&pt), &mut out).unwrap())
                    .unwrap()
            })
        });
        g.bench_function(BenchmarkId::new("seal-stream", label), |b| {
            b.iter(|| sealer.seal_stream(black_box(&pt[..]), sink()).unwrap())
        });
        g.bench_function(BenchmarkId::new("raw-aes256gcm-decrypt", label), |b| {
            b.iter(|| {
                raw.decrypt_inout_detached(
                    &nonce,
                    b"",
                    InOutBuf::new(black_box(&ct), &mut out).unwrap(),
                    &tag,
                )
                .unwrap()
            })
        });
        g.bench_function(BenchmarkId::new("open-stream", label), |b| {
            b.iter(|| opener.open_stream(black_box(&env[..]), sink()).unwrap())
        });
        if size <= 1 << 20 {
            g.bench_function(BenchmarkId::new("seal-one-shot", label), |b| {
                b.iter(|| sealer.seal(black_box(&pt)).unwrap())
            });
            g.bench_function(BenchmarkId::new("open-one-shot", label), |b| {
                b.iter(|| opener.open(black_box(&env)).unwrap())
            });
        }
        g.finish();
    }

    // Small messages: the data-key cache takes the KEK wrap (the backend call) out of
    // most seals.
    let cached = sealer
        .clone()
        .with_data_key_cache(CacheLimits::new(Duration::from_secs(300), 1 << 20, 1 << 40).unwrap());
    let pt = vec![1u8; 1 << 10];
    let mut g = c.benchmark_group("envelope-1KiB-cache");
    g.throughput(Throughput::Bytes(1 << 10));
    g.bench_function("seal-fresh-data-key", |b| b.iter(|| sealer.seal(black_box(&pt)).unwrap()));
    g.bench_function("seal-cached-data-key", |b| b.iter(|| cached.seal(black_box(&pt)).unwrap()));
    g.finish();
}

criterion_group!(benches, envelope);
criterion_main!(benches);
