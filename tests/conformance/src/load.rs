//! Load: 8 threads x 10,000 mixed operations on one store, every result checked. Shared
//! key handles and per-thread ones, signing, verifying, OAEP, key wrap, envelopes and
//! lookups interleaved, so the backend's locks, session pool and caches are all under
//! contention. Zero errors, every answer right.

use std::sync::atomic::{AtomicUsize, Ordering};

use hsmkit::envelope::Sealer;
use hsmkit::{
    EncryptionAlgorithm, KeyAttributes, KeyOp, KeySpec, KeyWrapAlgorithm, SignatureAlgorithm, Store,
};

pub const THREADS: usize = 8;
pub const OPS_PER_THREAD: usize = 10_000;

pub fn eight_threads_mixed_operations(store: &Store) {
    eight_threads_mixed_operations_n(store, OPS_PER_THREAD);
}

/// [`eight_threads_mixed_operations`] with `ops_per_thread` operations per thread.
pub fn eight_threads_mixed_operations_n(store: &Store, ops_per_thread: usize) {
    let ops = [KeyOp::Sign, KeyOp::Verify, KeyOp::Encrypt, KeyOp::Decrypt, KeyOp::WrapKey, KeyOp::UnwrapKey];
    let ec = store.create_key("load-ec", KeySpec::P256, KeyAttributes::with_ops(&ops[..2])).unwrap();
    let rsa = store.create_key("load-rsa", KeySpec::RSA_2048, KeyAttributes::with_ops(&ops[2..4])).unwrap();
    // AES-256 with A256KW where the backend has them, else RSA-OAEP (tpm2-pkcs11), whose
    // unwrapping is a slow private operation: one in 32 there.
    let caps = store.capabilities();
    let aes = caps.generate.contains(&KeySpec::AES_256) && caps.unwrap.contains(&KeyWrapAlgorithm::A256Kw);
    let (kek_spec, kek_alg) = if aes {
        (KeySpec::AES_256, KeyWrapAlgorithm::A256Kw)
    } else {
        (KeySpec::RSA_2048, KeyWrapAlgorithm::RsaOaep)
    };
    let kek = store.create_key("load-kek", kek_spec, KeyAttributes::with_ops(&ops[4..])).unwrap();
    // OAEP with SHA-1 is the one every backend decrypts (SoftHSM2 has no OAEP-256).
    let oaep = EncryptionAlgorithm::RsaOaep;
    let sealer = Sealer::for_key(kek.clone()).unwrap();
    let done = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (ec, rsa, kek, sealer, done) = (&ec, &rsa, &kek, &sealer, &done);
            s.spawn(move || {
                let opener = store.opener();
                let tb = u8::try_from(t).unwrap();
                // Half the threads take their own handles, half share the ones above.
                let own = (t % 2 == 1).then(|| store.get_key("load-ec").unwrap());
                let ec = own.as_ref().unwrap_or(ec);
                for i in 0..ops_per_thread {
                    let msg = format!("thread {t} op {i}");
                    let m = msg.as_bytes();
                    match i % 8 {
                        0 | 1 => {
                            let sig = ec.sign(SignatureAlgorithm::Es256, m).unwrap();
                            ec.verify(SignatureAlgorithm::Es256, m, &sig).unwrap();
                            let mut bad = sig.clone();
                            bad[5] ^= 1;
                            assert!(ec.verify(SignatureAlgorithm::Es256, m, &bad).is_err());
                        }
                        2 => {
                            let w = kek.wrap_key(kek_alg, &[tb; 32]).unwrap();
                            if aes || i % 32 == 2 {
                                assert_eq!(&kek.unwrap_key(kek_alg, &w).unwrap()[..], &[tb; 32]);
                            }
                        }
                        3 | 4 if aes || i % 32 < 8 => {
                            let env = sealer.seal(m).unwrap();
                            assert_eq!(&opener.open(&env).unwrap()[..], m);
                        }
                        5 => {
                            assert_eq!(store.get_key("load-kek").unwrap().name(), "load-kek");
                        }
                        6 => {
                            let ct = rsa.encrypt(oaep, m).unwrap();
                            if i % 32 == 6 {
                                // RSA private operations are the slow ones: one in 32.
                                assert_eq!(&rsa.decrypt(oaep, &ct).unwrap()[..], m);
                            }
                        }
                        _ => {
                            assert_eq!(store.list_keys().unwrap().len(), 3);
                        }
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    assert_eq!(done.load(Ordering::Relaxed), THREADS * ops_per_thread);
    println!("load [{}]: {THREADS} threads x {ops_per_thread} operations, all correct", store.backend_kind());
}
