//! Property tests: round trips over random inputs, with keys made once per property.

use hsmkit::{EncryptionAlgorithm, KeyOp, KeySpec, KeyWrapAlgorithm, SignatureAlgorithm, Store};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::checks::{create, spec_for_sig, spec_for_wrap};

fn runner() -> TestRunner {
    TestRunner::new(Config { cases: 48, failure_persistence: None, ..Config::default() })
}

pub fn prop_sign_verify(store: &Store) {
    let caps = store.capabilities();
    for alg in SignatureAlgorithm::ALL.iter().filter(|a| caps.sign.contains(a)) {
        let key = create(store, &format!("prop-{alg}"), spec_for_sig(*alg), &[KeyOp::Sign, KeyOp::Verify]);
        runner()
            .run(&(proptest::collection::vec(any::<u8>(), 0..2048), any::<usize>()), |(msg, flip)| {
                let sig = key.sign(*alg, &msg).expect("sign");
                prop_assert!(key.verify(*alg, &msg, &sig).is_ok());
                let mut other = msg.clone();
                if other.is_empty() {
                    other.push(0);
                } else {
                    let i = flip % other.len();
                    other[i] ^= 0x80;
                }
                prop_assert!(key.verify(*alg, &other, &sig).is_err());
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
    }
}

pub fn prop_oaep_round_trip(store: &Store) {
    let caps = store.capabilities();
    for bits in [2048u32, 3072] {
        let key = create(
            store,
            &format!("prop-oaep-{bits}"),
            KeySpec::Rsa { bits },
            &[KeyOp::Encrypt, KeyOp::Decrypt],
        );
        for alg in EncryptionAlgorithm::ALL.iter().filter(|a| caps.decrypt.contains(a)) {
            let max = alg.max_plaintext_len(usize::try_from(bits / 8).unwrap());
            let labels = if caps.oaep_label { 0..64usize } else { 0..1usize };
            runner()
                .run(
                    &(
                        proptest::collection::vec(any::<u8>(), 0..=max),
                        proptest::collection::vec(any::<u8>(), labels),
                    ),
                    |(pt, label)| {
                        let ct = key.encrypt_with_label(*alg, &pt, &label).expect("encrypt");
                        let back = key.decrypt_with_label(*alg, &ct, &label).expect("decrypt");
                        prop_assert_eq!(&back[..], &pt[..]);
                        if caps.oaep_label {
                            let mut wrong = label.clone();
                            wrong.push(1);
                            prop_assert!(key.decrypt_with_label(*alg, &ct, &wrong).is_err());
                        }
                        Ok(())
                    },
                )
                .unwrap_or_else(|e| panic!("{alg} RSA-{bits}: {e}"));
        }
    }
}

pub fn prop_wrap_round_trip(store: &Store) {
    let caps = store.capabilities();
    for alg in KeyWrapAlgorithm::ALL.iter().filter(|a| caps.wrap.contains(a) && caps.unwrap.contains(a)) {
        let key =
            create(store, &format!("prop-{alg}"), spec_for_wrap(*alg), &[KeyOp::WrapKey, KeyOp::UnwrapKey]);
        let lens = match alg.scheme() {
            hsmkit::WrapScheme::AesKw(_) => (2usize..64).prop_map(|n| n * 8).boxed(),
            hsmkit::WrapScheme::AesKwp(_) => (1usize..512).boxed(),
            _ => (1usize..190).boxed(),
        };
        runner()
            .run(&lens.prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n)), |dek| {
                let w = key.wrap_key(*alg, &dek).expect("wrap");
                prop_assert_eq!(&key.unwrap_key(*alg, &w).expect("unwrap")[..], &dek[..]);
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
    }
}
