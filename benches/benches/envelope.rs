//! Envelope seal/open throughput on each engine against that engine's raw AES-256-GCM
//! (one key, one nonce, the whole buffer in one call) in the same run; a SoftHSM2 KEK;
//! one and two threads; the data-key cache.
//!
//! `cargo bench -p hsmkit-benches --bench envelope` (benches/run.sh writes the table).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::cell::RefCell;
use std::hint::black_box;
use std::io::sink;
use std::time::Duration;

use aes_gcm::aead::inout::InOutBuf;
use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce as AwsNonce, UnboundKey};
use criterion::{
    BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main, measurement::WallTime,
};
use hsmkit::envelope::{CacheLimits, Sealer};
use hsmkit::{KeyAttributes, KeySpec, Store};
use hsmkit_benches::threaded;
use hsmkit_soft::{SoftBackend, SoftEngine};

const SIZES: &[(&str, usize)] =
    &[("1KiB", 1 << 10), ("64KiB", 64 << 10), ("1MiB", 1 << 20), ("256MiB", 256 << 20)];

fn kek_store(engine: SoftEngine) -> (Store, Sealer) {
    let store = Store::new(SoftBackend::new().with_engine(engine));
    let kek = store.create_key("kek", KeySpec::AES_256, KeyAttributes::default()).unwrap();
    (store, Sealer::for_key(kek).unwrap())
}

thread_local! {
    // The references' output buffers, one per thread and allocated once: a fresh
    // allocation per call would fault in pages and slow the reference down.
    static OUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    // The same for `seal_into` / `open_into`: a caller that reuses one buffer.
    static ENVELOPE_OUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

fn with_out(size: usize, f: impl FnOnce(&mut [u8])) {
    OUT.with_borrow_mut(|v| {
        v.resize(size, 0);
        f(v);
    });
}

fn with_envelope_out(size: usize, f: impl FnOnce(&mut [u8])) {
    ENVELOPE_OUT.with_borrow_mut(|v| {
        v.resize(size, 0);
        f(v);
    });
}

fn run(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, two_threads: bool, op: &(dyn Fn() + Sync)) {
    g.bench_function(name, |b| b.iter(op));
    if two_threads {
        g.bench_function(format!("{name} x2 threads"), |b| b.iter_custom(|n| threaded(n, 2, op)));
    }
}

fn envelope(c: &mut Criterion) {
    let stores =
        [("rustcrypto", kek_store(SoftEngine::RustCrypto)), ("aws-lc", kek_store(SoftEngine::AwsLc))];
    let token = hsmkit_pkcs11::testing::SoftHsmToken::new().unwrap();
    let hsm = token.store().unwrap();
    let hsm_sealer =
        Sealer::for_key(hsm.create_key("kek", KeySpec::AES_256, KeyAttributes::default()).unwrap()).unwrap();
    let rc = Aes256Gcm::new(&[7u8; 32].into());
    let aws = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).unwrap());

    for &(label, size) in SIZES {
        let pt = vec![0x5au8; size];
        let big = size > 1 << 20;
        let mut g = c.benchmark_group(format!("envelope {label}"));
        g.throughput(Throughput::Bytes(u64::try_from(size).unwrap()));
        if size >= 1 << 20 {
            g.sample_size(10).warm_up_time(Duration::from_millis(500));
        }
        if big {
            g.measurement_time(Duration::from_secs(8));
        }

        // The references: each engine's raw AES-256-GCM over the whole buffer.
        let (rc_ct, rc_tag) = {
            let mut ct = vec![0u8; size];
            let tag = rc
                .encrypt_inout_detached(&Nonce::default(), b"", InOutBuf::new(&pt, &mut ct).unwrap())
                .unwrap();
            (ct, tag)
        };
        let aws_tag = {
            let mut ct = vec![0u8; size + 16];
            aws.seal_in_place_scatter(
                AwsNonce::assume_unique_for_key([0u8; 12]),
                Aad::empty(),
                &mut [],
                &pt,
                &mut ct,
            )
            .unwrap();
            let (ct, tag) = ct.split_at(size);
            assert_eq!((ct, tag), (rc_ct.as_slice(), rc_tag.as_slice()), "same AES-GCM");
            tag.to_vec()
        };
        run(&mut g, "raw rustcrypto encrypt", false, &|| {
            with_out(size, |out| {
                let buf = InOutBuf::new(black_box(&pt), out).unwrap();
                black_box(rc.encrypt_inout_detached(&Nonce::default(), b"", buf).unwrap());
            });
        });
        run(&mut g, "raw rustcrypto decrypt", false, &|| {
            with_out(size, |out| {
                let buf = InOutBuf::new(black_box(&rc_ct), out).unwrap();
                rc.decrypt_inout_detached(&Nonce::default(), b"", buf, &rc_tag).unwrap();
            });
        });
        // Out of place, as the envelope and the RustCrypto reference: aws-lc-rs's scatter
        // seal encrypts `extra_in` into `extra_out_and_tag` (as fast as in place).
        run(&mut g, "raw aws-lc-rs encrypt", size >= 1 << 20, &|| {
            with_out(size + 16, |out| {
                aws.seal_in_place_scatter(
                    AwsNonce::assume_unique_for_key([0u8; 12]),
                    Aad::empty(),
                    &mut [],
                    black_box(&pt),
                    out,
                )
                .unwrap();
            });
        });
        // The same in place, to show that the scatter seal costs nothing extra.
        run(&mut g, "raw aws-lc-rs encrypt in place", false, &|| {
            with_out(size, |out| {
                let tag = aws.seal_in_place_separate_tag(
                    AwsNonce::assume_unique_for_key([0u8; 12]),
                    Aad::empty(),
                    out,
                );
                drop(black_box(tag.unwrap()));
            });
        });
        run(&mut g, "raw aws-lc-rs decrypt", false, &|| {
            with_out(size, |out| {
                let (ct, tag) = (black_box(&rc_ct[..]), aws_tag.as_ref());
                aws.open_separate_gather(
                    AwsNonce::assume_unique_for_key([0u8; 12]),
                    Aad::empty(),
                    ct,
                    tag,
                    out,
                )
                .unwrap();
            });
        });

        for (engine, (store, sealer)) in &stores {
            let opener = store.opener();
            let env = sealer.seal(&pt).unwrap();
            let threads = *engine == "aws-lc" && size >= 1 << 20;
            run(&mut g, &format!("seal stream {engine}"), threads, &|| {
                sealer.seal_stream(black_box(&pt[..]), sink()).unwrap();
            });
            run(&mut g, &format!("open stream {engine}"), threads, &|| {
                opener.open_stream(black_box(&env[..]), sink()).unwrap();
            });
            // One-shot at every size: each call returns a new buffer (benches/run.sh keeps
            // glibc from handing big ones back to the kernel between calls).
            {
                run(&mut g, &format!("seal {engine}"), false, &|| drop(black_box(sealer.seal(&pt).unwrap())));
                run(&mut g, &format!("open {engine}"), false, &|| {
                    drop(black_box(opener.open(&env).unwrap()))
                });
                // Into a buffer the caller reuses, as the raw references do.
                let sealed_len = sealer.sealed_len(size).unwrap();
                run(&mut g, &format!("seal into {engine}"), false, &|| {
                    with_envelope_out(sealed_len, |out| {
                        black_box(sealer.seal_into(black_box(&pt), out).unwrap());
                    });
                });
                run(&mut g, &format!("open into {engine}"), false, &|| {
                    with_envelope_out(size, |out| {
                        black_box(opener.open_into(black_box(&env), out).unwrap());
                    });
                });
            }
        }
        if !big {
            // The KEK on the token: one C_WrapKey / C_UnwrapKey per envelope.
            let opener = hsm.opener();
            let env = hsm_sealer.seal(&pt).unwrap();
            run(&mut g, "seal pkcs11 softhsm2", false, &|| drop(black_box(hsm_sealer.seal(&pt).unwrap())));
            run(&mut g, "open pkcs11 softhsm2", false, &|| drop(black_box(opener.open(&env).unwrap())));
        }
        g.finish();
    }

    // Small messages: the data-key cache takes the KEK wrap (the backend call) out of
    // most seals.
    let pt = vec![1u8; 1 << 10];
    let mut g = c.benchmark_group("envelope 1KiB cache");
    g.throughput(Throughput::Bytes(1 << 10));
    let limits = CacheLimits::new(Duration::from_secs(300), 1 << 20, 1 << 40).unwrap();
    for (engine, store, sealer) in
        [("aws-lc", &stores[1].1.0, &stores[1].1.1), ("pkcs11 softhsm2", &hsm, &hsm_sealer)]
    {
        let cached = sealer.clone().with_data_key_cache(limits);
        g.bench_function(format!("fresh data key {engine}"), |b| {
            b.iter(|| sealer.seal(black_box(&pt)).unwrap())
        });
        g.bench_function(format!("cached data key {engine}"), |b| {
            b.iter(|| cached.seal(black_box(&pt)).unwrap())
        });
        // Opening: every envelope unwraps its data key, or the opener's cache has it.
        let env = cached.seal(&pt).unwrap();
        let opener = store.opener();
        let cached_opener = store.opener().with_data_key_cache(limits);
        g.bench_function(format!("open fresh data key {engine}"), |b| {
            b.iter(|| opener.open(black_box(&env)).unwrap())
        });
        g.bench_function(format!("open cached data key {engine}"), |b| {
            b.iter(|| cached_opener.open(black_box(&env)).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, envelope);
criterion_main!(benches);
