//! Unwrap and decrypt of arbitrary bytes: AES key wrap (KW, KWP; 128/192/256) and RSA
//! OAEP (SHA-1 and SHA-256). Every failure is the one DecryptionFailed; a KW/KWP success
//! wraps back to the same bytes (the wrap is deterministic); both engines agree.
#![no_main]

use std::sync::OnceLock;

use hsmkit::{EncryptionAlgorithm as E, Error, Key, KeyAttributes, KeyOp, KeySpec, KeyWrapAlgorithm as W, Store};
use hsmkit_soft::{SoftBackend, SoftEngine};
use libfuzzer_sys::fuzz_target;

const WRAPS: [(W, KeySpec); 8] = [
    (W::A128Kw, KeySpec::AES_128),
    (W::A192Kw, KeySpec::AES_192),
    (W::A256Kw, KeySpec::AES_256),
    (W::A128Kwp, KeySpec::AES_128),
    (W::A192Kwp, KeySpec::AES_192),
    (W::A256Kwp, KeySpec::AES_256),
    (W::RsaOaep256, KeySpec::Rsa { bits: 2048 }),
    (W::RsaOaep, KeySpec::Rsa { bits: 2048 }),
];

fn keys() -> &'static Vec<(Key, Key)> {
    static KEYS: OnceLock<Vec<(Key, Key)>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let rc = Store::new(SoftBackend::new().with_engine(SoftEngine::RustCrypto));
        let aws = Store::new(SoftBackend::new().with_engine(SoftEngine::AwsLc));
        let wrap = [KeyOp::WrapKey, KeyOp::UnwrapKey];
        let decrypt = [KeyOp::Encrypt, KeyOp::Decrypt];
        // Keys 0-7 wrap (as WRAPS lists them); key 8 is an RSA key for OAEP decryption
        // (a key either wraps or decrypts: key-role separation).
        WRAPS
            .iter()
            .map(|(_, spec)| (*spec, &wrap[..]))
            .chain([(KeySpec::Rsa { bits: 2048 }, &decrypt[..])])
            .enumerate()
            .map(|(i, (spec, ops))| {
                let name = format!("k{i}");
                let attrs = KeyAttributes { exportable: true, ..KeyAttributes::with_ops(ops) };
                let a = rc.create_key(&name, spec, attrs.clone()).unwrap();
                let b = aws.import_key(&name, a.export().unwrap(), attrs.clone()).unwrap();
                (a, b)
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let &[sel, ref wrapped @ ..] = data else { return };
    let i = usize::from(sel % 8);
    let (alg, _) = WRAPS[i];
    let (rc, aws) = &keys()[i];
    let (a, b) = (rc.unwrap_key(alg, wrapped), aws.unwrap_key(alg, wrapped));
    for r in [&a, &b] {
        if let Err(e) = r {
            assert_eq!(*e, Error::DecryptionFailed, "{alg}: every unwrap failure is the same error");
        }
    }
    match (&a, &b) {
        (Ok(x), Ok(y)) => {
            assert_eq!(&x[..], &y[..], "{alg}: engines unwrap differently");
            if !matches!(alg, W::RsaOaep | W::RsaOaep256) {
                assert_eq!(rc.wrap_key(alg, x).unwrap(), wrapped, "{alg}: rewrap differs");
            }
        }
        (Err(_), Err(_)) => {}
        _ => panic!("{alg}: engines disagree: {:?} / {:?}", a.is_ok(), b.is_ok()),
    }
    // The same bytes as an OAEP ciphertext, with a label from the selector.
    if i >= 6 {
        let enc = if i == 6 { E::RsaOaep256 } else { E::RsaOaep };
        let label = [sel; 2];
        let (rc, aws) = &keys()[8];
        let (a, b) = (rc.decrypt_with_label(enc, wrapped, &label), aws.decrypt_with_label(enc, wrapped, &label));
        for r in [&a, &b] {
            if let Err(e) = r {
                assert_eq!(*e, Error::DecryptionFailed, "{enc}");
            }
        }
        assert_eq!(a.as_deref().ok(), b.as_deref().ok(), "{enc}: engines disagree");
    }
});
