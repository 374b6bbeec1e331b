//! Every operation on every key spec and backend, each beside its raw engine call in the
//! same run: hsmkit on the software backend (RustCrypto and aws-lc engines) against the
//! raw RustCrypto and aws-lc-rs calls; hsmkit on a SoftHSM2 token against raw cryptoki on
//! the same token. Private-key operations also run on two threads.
//! `benches/run.sh` runs a short version and writes the table into BENCHMARKS.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

type Case<'a> = (&'a str, Box<dyn Fn() + Sync + 'a>);

use std::hint::black_box;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, KeyPair as _, RsaKeyPair};
use criterion::{Criterion, criterion_group, criterion_main};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectHandle};
use cryptoki::session::Session;
use hsmkit::{EncryptionAlgorithm as E, Key, KeyAttributes, KeyOp, KeySpec, SignatureAlgorithm as S, Store};
use hsmkit_benches::threaded;
use hsmkit_pkcs11::cryptoki;
use hsmkit_soft::{SoftBackend, SoftEngine};
use rsa::pkcs8::DecodePrivateKey;
use sha2::{Digest, Sha256, Sha384, Sha512};
use signature::hazmat::PrehashSigner;

const MSG: &[u8] = b"The quick brown fox jumps over the lazy dog, 64 bytes of message.";

fn store(engine: SoftEngine) -> Store {
    Store::new(SoftBackend::new().with_engine(engine))
}

fn exportable(store: &Store, name: &str, spec: KeySpec, ops: &[KeyOp]) -> Key {
    let attrs = KeyAttributes { exportable: true, ..KeyAttributes::with_ops(ops) };
    store.create_key(name, spec, attrs).unwrap()
}

fn bench_pair(c: &mut Criterion, group: &str, cases: Vec<Case<'_>>, threads: bool) {
    let mut g = c.benchmark_group(group);
    for (name, op) in &cases {
        g.bench_function(*name, |b| b.iter(op));
        if threads {
            g.bench_function(format!("{name} x2 threads"), |b| {
                b.iter_custom(|n| threaded(n, 2, op.as_ref()))
            });
        }
    }
    g.finish();
}

fn token_session(token: &hsmkit_pkcs11::testing::SoftHsmToken) -> Session {
    token.raw_session().unwrap()
}

// Token objects, as hsmkit makes: SoftHSM2 decrypts a private token object's value on
// every operation, so session objects would not be the same work.
fn raw_rsa_pair(s: &Session, bits: u64) -> (ObjectHandle, ObjectHandle) {
    let public = [
        Attribute::Token(true),
        Attribute::KeyType(KeyType::RSA),
        Attribute::ModulusBits(bits.into()),
        Attribute::PublicExponent(vec![1, 0, 1]),
        Attribute::Verify(true),
        Attribute::Encrypt(true),
    ];
    let private = [
        Attribute::Token(true),
        Attribute::KeyType(KeyType::RSA),
        Attribute::Sign(true),
        Attribute::Decrypt(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
    ];
    let (p, k) = s.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private).unwrap();
    (k, p)
}

fn raw_ec_pair(s: &Session, oid: &rsa::pkcs8::ObjectIdentifier) -> (ObjectHandle, ObjectHandle) {
    use rsa::pkcs1::der::Encode;
    let public = [
        Attribute::Token(true),
        Attribute::KeyType(KeyType::EC),
        Attribute::EcParams(oid.to_der().unwrap()),
        Attribute::Verify(true),
    ];
    let private = [
        Attribute::Token(true),
        Attribute::KeyType(KeyType::EC),
        Attribute::Sign(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
    ];
    let (p, k) = s.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private).unwrap();
    (k, p)
}

/// Ed25519 sign and verify: hsmkit on both engines and SoftHSM2 (`CKM_EDDSA`) beside
/// ed25519-dalek, aws-lc-rs and raw cryptoki on the same token.
fn ed25519(c: &mut Criterion) {
    use ed25519_dalek::Signer as _;
    let rc = store(SoftEngine::RustCrypto);
    let key = exportable(&rc, "k", KeySpec::ED25519, &[KeyOp::Sign, KeyOp::Verify]);
    let der = key.export().unwrap().to_pkcs8_der().unwrap();
    let aws = store(SoftEngine::AwsLc);
    let akey = aws
        .import_key("k", key.export().unwrap(), KeyAttributes::with_ops(&[KeyOp::Sign, KeyOp::Verify]))
        .unwrap();
    let hsmkit::KeyMaterial::Ed25519Private(seed) = key.export().unwrap() else { panic!("Ed25519 material") };
    let raw_rc = ed25519_dalek::SigningKey::from_bytes(&seed.seed);
    let raw_aws = sig::Ed25519KeyPair::from_pkcs8(&der).unwrap();
    let aws_public = sig::UnparsedPublicKey::new(&sig::ED25519, raw_aws.public_key().as_ref().to_vec());
    let sig_raw = key.sign(S::EdDsa, MSG).unwrap();
    let token = hsmkit_pkcs11::testing::SoftHsmToken::new().unwrap();
    let hsm = token.store().unwrap();
    let hkey = hsm
        .create_key("k", KeySpec::ED25519, KeyAttributes::with_ops(&[KeyOp::Sign, KeyOp::Verify]))
        .unwrap();
    let session = token_session(&token);
    let ed_params = {
        use rsa::pkcs1::der::Encode;
        rsa::pkcs8::ObjectIdentifier::new_unwrap("1.3.101.112").to_der().unwrap()
    };
    let (priv_h, _) = {
        let public = [
            Attribute::Token(true),
            Attribute::KeyType(KeyType::EC_EDWARDS),
            Attribute::EcParams(ed_params.clone()),
            Attribute::Verify(true),
        ];
        let private = [
            Attribute::Token(true),
            Attribute::KeyType(KeyType::EC_EDWARDS),
            Attribute::Sign(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
        ];
        let (p, k) = session.generate_key_pair(&Mechanism::EccEdwardsKeyPairGen, &public, &private).unwrap();
        (k, p)
    };
    let eddsa = Mechanism::Eddsa(cryptoki::mechanism::eddsa::EddsaParams::new(
        cryptoki::mechanism::eddsa::EddsaSignatureScheme::Pure,
    ));
    bench_pair(
        c,
        "Ed25519 sign",
        vec![
            ("hsmkit soft rustcrypto", Box::new(|| drop(black_box(key.sign(S::EdDsa, MSG).unwrap())))),
            (
                "raw rustcrypto",
                Box::new(|| {
                    black_box(raw_rc.sign(MSG));
                }),
            ),
            ("hsmkit soft aws-lc", Box::new(|| drop(black_box(akey.sign(S::EdDsa, MSG).unwrap())))),
            (
                "raw aws-lc-rs",
                Box::new(|| {
                    black_box(raw_aws.sign(MSG));
                }),
            ),
            ("hsmkit pkcs11 softhsm2", Box::new(|| drop(black_box(hkey.sign(S::EdDsa, MSG).unwrap())))),
        ],
        true,
    );
    // A cryptoki session is not Sync: its cases are benched on their own.
    let mut g = c.benchmark_group("Ed25519 sign");
    g.bench_function("raw cryptoki softhsm2", |b| {
        b.iter(|| black_box(session.sign(&eddsa, priv_h, MSG).unwrap()))
    });
    g.finish();
    let dalek_sig = ed25519_dalek::Signature::from_slice(&sig_raw).unwrap();
    let hsig = hkey.sign(S::EdDsa, MSG).unwrap();
    bench_pair(
        c,
        "Ed25519 verify",
        vec![
            ("hsmkit soft rustcrypto", Box::new(|| key.verify(S::EdDsa, MSG, &sig_raw).unwrap())),
            ("raw rustcrypto", Box::new(|| raw_rc.verifying_key().verify_strict(MSG, &dalek_sig).unwrap())),
            ("hsmkit soft aws-lc", Box::new(|| akey.verify(S::EdDsa, MSG, &sig_raw).unwrap())),
            ("raw aws-lc-rs", Box::new(|| aws_public.verify(MSG, &sig_raw).unwrap())),
            ("hsmkit pkcs11 softhsm2", Box::new(|| hkey.verify(S::EdDsa, MSG, &hsig).unwrap())),
        ],
        false,
    );
}

/// HS256 over a 64-byte message with a 256-bit key: hsmkit on both engines and SoftHSM2
/// (`CKM_SHA256_HMAC`, verified on the token) beside the `hmac` crate, aws-lc-rs and raw
/// cryptoki.
fn hmac_sha256(c: &mut Criterion) {
    use hmac::{KeyInit, Mac};
    let secret = [0x42u8; 32];
    let material = hsmkit::KeyMaterial::hmac(&secret).unwrap();
    let ops = KeyAttributes::with_ops(&[KeyOp::Sign, KeyOp::Verify]);
    let key = store(SoftEngine::RustCrypto).import_key("k", material.clone(), ops.clone()).unwrap();
    let akey = store(SoftEngine::AwsLc).import_key("k", material.clone(), ops.clone()).unwrap();
    let aws_key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &secret);
    let token = hsmkit_pkcs11::testing::SoftHsmToken::new().unwrap();
    let hkey = token.store().unwrap().import_key("k", material, ops).unwrap();
    let session = token_session(&token);
    let raw_h = session
        .create_object(&[
            Attribute::Class(cryptoki::object::ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Value(secret.to_vec()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Sign(true),
            Attribute::Verify(true),
        ])
        .unwrap();
    let tag = key.sign(S::Hs256, MSG).unwrap();
    let raw_mac = || {
        let mut m = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(&secret).unwrap();
        m.update(MSG);
        m
    };
    bench_pair(
        c,
        "HMAC HS256 sign",
        vec![
            ("hsmkit soft rustcrypto", Box::new(|| drop(black_box(key.sign(S::Hs256, MSG).unwrap())))),
            (
                "raw rustcrypto",
                Box::new(|| {
                    black_box(raw_mac().finalize().into_bytes());
                }),
            ),
            ("hsmkit soft aws-lc", Box::new(|| drop(black_box(akey.sign(S::Hs256, MSG).unwrap())))),
            (
                "raw aws-lc-rs",
                Box::new(|| {
                    black_box(aws_lc_rs::hmac::sign(&aws_key, MSG));
                }),
            ),
            ("hsmkit pkcs11 softhsm2", Box::new(|| drop(black_box(hkey.sign(S::Hs256, MSG).unwrap())))),
        ],
        false,
    );
    let mut g = c.benchmark_group("HMAC HS256 sign");
    g.bench_function("raw cryptoki softhsm2", |b| {
        b.iter(|| black_box(session.sign(&Mechanism::Sha256Hmac, raw_h, MSG).unwrap()))
    });
    g.finish();
    bench_pair(
        c,
        "HMAC HS256 verify",
        vec![
            ("hsmkit soft rustcrypto", Box::new(|| key.verify(S::Hs256, MSG, &tag).unwrap())),
            ("raw rustcrypto", Box::new(|| raw_mac().verify_slice(&tag).unwrap())),
            ("hsmkit soft aws-lc", Box::new(|| akey.verify(S::Hs256, MSG, &tag).unwrap())),
            ("raw aws-lc-rs", Box::new(|| aws_lc_rs::hmac::verify(&aws_key, MSG, &tag).unwrap())),
            ("hsmkit pkcs11 softhsm2", Box::new(|| hkey.verify(S::Hs256, MSG, &tag).unwrap())),
        ],
        false,
    );
    let mut g = c.benchmark_group("HMAC HS256 verify");
    g.bench_function("raw cryptoki softhsm2", |b| {
        b.iter(|| session.verify(&Mechanism::Sha256Hmac, raw_h, MSG, &tag).unwrap())
    });
    g.finish();
}

fn rsa(c: &mut Criterion, bits: u32) {
    let spec = KeySpec::Rsa { bits };
    let rc = store(SoftEngine::RustCrypto);
    let key = exportable(&rc, "k", spec, &[KeyOp::Sign, KeyOp::Verify]);
    let der = key.export().unwrap().to_pkcs8_der().unwrap();
    let aws = store(SoftEngine::AwsLc);
    let akey = aws
        .import_key("k", key.export().unwrap(), KeyAttributes::with_ops(&[KeyOp::Sign, KeyOp::Verify]))
        .unwrap();
    let raw_rc = rsa::PrivateKey::from_pkcs8_der(&der).unwrap();
    let raw_aws = RsaKeyPair::from_pkcs8(&der).unwrap();
    let rng = SystemRandom::new();
    let sig_rs = key.sign(S::Rs256, MSG).unwrap();
    let aws_public =
        sig::UnparsedPublicKey::new(&sig::RSA_PKCS1_2048_8192_SHA256, raw_aws.public_key().as_ref().to_vec());

    let token = hsmkit_pkcs11::testing::SoftHsmToken::new().unwrap();
    let hsm = token.store().unwrap();
    let hkey = hsm.create_key("k", spec, KeyAttributes::with_ops(&[KeyOp::Sign, KeyOp::Verify])).unwrap();
    let session = token_session(&token);
    let (priv_h, pub_h) = raw_rsa_pair(&session, u64::from(bits));
    let hsig = hkey.sign(S::Rs256, MSG).unwrap();
    let raw_sig = session.sign(&Mechanism::Sha256RsaPkcs, priv_h, MSG).unwrap();

    bench_pair(
        c,
        &format!("RSA-{bits} sign RS256"),
        vec![
            ("hsmkit soft rustcrypto", Box::new(|| drop(black_box(key.sign(S::Rs256, MSG).unwrap())))),
            (
                "raw rustcrypto",
                Box::new(|| {
                    let d = Sha256::digest(MSG);
                    drop(black_box(raw_rc.pkcs1v15_sign_prehash::<Sha256>(&d).unwrap()));
                }),
            ),
            ("hsmkit soft aws-lc", Box::new(|| drop(black_box(akey.sign(S::Rs256, MSG).unwrap())))),
            (
                "raw aws-lc-rs",
                Box::new(|| {
                    let mut out = vec![0u8; raw_aws.public_modulus_len()];
                    raw_aws.sign(&sig::RSA_PKCS1_SHA256, &rng, MSG, &mut out).unwrap();
                    black_box(out);
                }),
            ),
            ("hsmkit pkcs11 softhsm2", Box::new(|| drop(black_box(hkey.sign(S::Rs256, MSG).unwrap())))),
        ],
        true,
    );
    // Raw cryptoki: one session per thread, as rust-cryptoki advises; single-threaded here.
    let mut g = c.benchmark_group(format!("RSA-{bits} sign RS256"));
    g.bench_function("raw cryptoki softhsm2", |b| {
        b.iter(|| black_box(session.sign(&Mechanism::Sha256RsaPkcs, priv_h, MSG).unwrap()))
    });
    g.finish();

    bench_pair(
        c,
        &format!("RSA-{bits} verify RS256"),
        vec![
            ("hsmkit soft rustcrypto", Box::new(|| key.verify(S::Rs256, MSG, &sig_rs).unwrap())),
            (
                "raw rustcrypto",
                Box::new(|| {
                    let d = Sha256::digest(MSG);
                    raw_rc.as_public_key().pkcs1v15_verify_prehash::<Sha256>(&d, &sig_rs).unwrap();
                }),
            ),
            ("hsmkit soft aws-lc", Box::new(|| akey.verify(S::Rs256, MSG, &sig_rs).unwrap())),
            ("raw aws-lc-rs", Box::new(|| aws_public.verify(MSG, &sig_rs).unwrap())),
            ("hsmkit pkcs11 softhsm2", Box::new(|| hkey.verify(S::Rs256, MSG, &hsig).unwrap())),
        ],
        false,
    );
    let mut g = c.benchmark_group(format!("RSA-{bits} verify RS256"));
    g.bench_function("raw cryptoki softhsm2", |b| {
        b.iter(|| session.verify(&Mechanism::Sha256RsaPkcs, pub_h, MSG, &raw_sig).unwrap())
    });
    g.finish();
    drop(session);
    drop(hsm);
}

fn oaep(c: &mut Criterion) {
    let rc = store(SoftEngine::RustCrypto);
    let key = exportable(&rc, "k", KeySpec::Rsa { bits: 2048 }, &[KeyOp::Encrypt, KeyOp::Decrypt]);
    let aws = store(SoftEngine::AwsLc);
    let akey = aws
        .import_key("k", key.export().unwrap(), KeyAttributes::with_ops(&[KeyOp::Encrypt, KeyOp::Decrypt]))
        .unwrap();
    let der = key.export().unwrap().to_pkcs8_der().unwrap();
    let raw_rc = rsa::PrivateKey::from_pkcs8_der(&der).unwrap();
    let raw_aws = aws_lc_rs::rsa::OaepPrivateDecryptingKey::new(
        aws_lc_rs::rsa::PrivateDecryptingKey::from_pkcs8(&der).unwrap(),
    )
    .unwrap();
    let ct = key.encrypt(E::RsaOaep256, b"a 32-byte data encryption key..").unwrap();
    let ct1 = key.encrypt(E::RsaOaep, b"a 32-byte data encryption key..").unwrap();
    let token = hsmkit_pkcs11::testing::SoftHsmToken::new().unwrap();
    let hsm = token.store().unwrap();
    let hkey = hsm
        .create_key(
            "k",
            KeySpec::Rsa { bits: 2048 },
            KeyAttributes::with_ops(&[KeyOp::Encrypt, KeyOp::Decrypt]),
        )
        .unwrap();
    let hct = hkey.encrypt(E::RsaOaep, b"a 32-byte data encryption key..").unwrap();
    bench_pair(
        c,
        "RSA-2048 decrypt RSA-OAEP-256",
        vec![
            (
                "hsmkit soft rustcrypto",
                Box::new(|| drop(black_box(key.decrypt(E::RsaOaep256, &ct).unwrap()))),
            ),
            (
                "raw rustcrypto",
                Box::new(|| {
                    let mut rng = getrandom::SysRng;
                    black_box(raw_rc.decrypt_blinded(&mut rng, rsa::Oaep::<Sha256>::new(), &ct).unwrap());
                }),
            ),
            ("hsmkit soft aws-lc", Box::new(|| drop(black_box(akey.decrypt(E::RsaOaep256, &ct).unwrap())))),
            (
                "raw aws-lc-rs",
                Box::new(|| {
                    let mut out = [0u8; 256];
                    black_box(
                        raw_aws
                            .decrypt(&aws_lc_rs::rsa::OAEP_SHA256_MGF1SHA256, &ct, &mut out, None)
                            .unwrap(),
                    );
                }),
            ),
        ],
        true,
    );
    // SoftHSM2 2.6 decrypts OAEP with SHA-1 only.
    bench_pair(
        c,
        "RSA-2048 decrypt RSA-OAEP",
        vec![
            ("hsmkit soft aws-lc", Box::new(|| drop(black_box(akey.decrypt(E::RsaOaep, &ct1).unwrap())))),
            ("hsmkit pkcs11 softhsm2", Box::new(|| drop(black_box(hkey.decrypt(E::RsaOaep, &hct).unwrap())))),
        ],
        false,
    );
}

macro_rules! ecdsa {
    ($c:expr, $name:literal, $curve:ident, $bits:literal, $alg:expr, $crate_:ident, $hash:ty, $aws_sign:expr, $aws_verify:expr) => {{
        let spec = KeySpec::Ec(hsmkit::EcCurve::$curve);
        let rc = store(SoftEngine::RustCrypto);
        let key = exportable(&rc, "k", spec, &[KeyOp::Sign, KeyOp::Verify]);
        let der = key.export().unwrap().to_pkcs8_der().unwrap();
        let aws = store(SoftEngine::AwsLc);
        let akey = aws
            .import_key("k", key.export().unwrap(), KeyAttributes::with_ops(&[KeyOp::Sign, KeyOp::Verify]))
            .unwrap();
        let raw_rc = $crate_::ecdsa::SigningKey::from_pkcs8_der(&der).unwrap();
        let raw_aws = EcdsaKeyPair::from_pkcs8($aws_sign, &der).unwrap();
        let rng = SystemRandom::new();
        let aws_public = sig::UnparsedPublicKey::new($aws_verify, raw_aws.public_key().as_ref().to_vec());
        let sig_raw = key.sign($alg, MSG).unwrap();
        let token = hsmkit_pkcs11::testing::SoftHsmToken::new().unwrap();
        let hsm = token.store().unwrap();
        let hkey = hsm.create_key("k", spec, KeyAttributes::with_ops(&[KeyOp::Sign, KeyOp::Verify])).unwrap();
        let hsig = hkey.sign($alg, MSG).unwrap();
        let session = token_session(&token);
        let (priv_h, pub_h) = raw_ec_pair(&session, &hsmkit::EcCurve::$curve.oid());
        let digest = <$hash>::digest(MSG);
        let raw_sig = session.sign(&Mechanism::Ecdsa, priv_h, &digest).unwrap();
        bench_pair(
            $c,
            concat!($name, " sign"),
            vec![
                ("hsmkit soft rustcrypto", Box::new(|| drop(black_box(key.sign($alg, MSG).unwrap())))),
                (
                    "raw rustcrypto",
                    Box::new(|| {
                        let d = <$hash>::digest(MSG);
                        let s: $crate_::ecdsa::Signature = raw_rc.sign_prehash(&d).unwrap();
                        black_box(s);
                    }),
                ),
                ("hsmkit soft aws-lc", Box::new(|| drop(black_box(akey.sign($alg, MSG).unwrap())))),
                (
                    "raw aws-lc-rs",
                    Box::new(|| {
                        black_box(raw_aws.sign(&rng, MSG).unwrap());
                    }),
                ),
                ("hsmkit pkcs11 softhsm2", Box::new(|| drop(black_box(hkey.sign($alg, MSG).unwrap())))),
            ],
            true,
        );
        let mut g = $c.benchmark_group(concat!($name, " sign"));
        g.bench_function("raw cryptoki softhsm2", |b| {
            b.iter(|| {
                let d = <$hash>::digest(MSG);
                black_box(session.sign(&Mechanism::Ecdsa, priv_h, &d).unwrap())
            })
        });
        g.finish();
        bench_pair(
            $c,
            concat!($name, " verify"),
            vec![
                ("hsmkit soft rustcrypto", Box::new(|| key.verify($alg, MSG, &sig_raw).unwrap())),
                ("hsmkit soft aws-lc", Box::new(|| akey.verify($alg, MSG, &sig_raw).unwrap())),
                ("raw aws-lc-rs", Box::new(|| aws_public.verify(MSG, &sig_raw).unwrap())),
                ("hsmkit pkcs11 softhsm2", Box::new(|| hkey.verify($alg, MSG, &hsig).unwrap())),
            ],
            false,
        );
        let mut g = $c.benchmark_group(concat!($name, " verify"));
        g.bench_function("raw cryptoki softhsm2", |b| {
            b.iter(|| {
                let d = <$hash>::digest(MSG);
                session.verify(&Mechanism::Ecdsa, pub_h, &d, &raw_sig).unwrap()
            })
        });
        g.finish();
    }};
}

fn wrap(c: &mut Criterion) {
    use hsmkit::KeyWrapAlgorithm as W;
    let dek = [7u8; 32];
    let rc = store(SoftEngine::RustCrypto);
    let key =
        exportable(&rc, "k", KeySpec::Aes(hsmkit::AesSize::Aes256), &[KeyOp::WrapKey, KeyOp::UnwrapKey]);
    let aws = store(SoftEngine::AwsLc);
    let ops = KeyAttributes::with_ops(&[KeyOp::WrapKey, KeyOp::UnwrapKey]);
    let akey = aws.import_key("k", key.export().unwrap(), ops.clone()).unwrap();
    let hsmkit::KeyMaterial::Aes(raw) = key.export().unwrap() else { unreachable!() };
    let raw = raw.to_vec();
    let token = hsmkit_pkcs11::testing::SoftHsmToken::new().unwrap();
    let hsm = token.store().unwrap();
    let hkey = hsm.create_key("k", KeySpec::Aes(hsmkit::AesSize::Aes256), ops).unwrap();
    let w = key.wrap_key(W::A256Kw, &dek).unwrap();
    let hw = hkey.wrap_key(W::A256Kw, &dek).unwrap();
    bench_pair(
        c,
        "AES-256 unwrap A256KW",
        vec![
            ("hsmkit soft rustcrypto", Box::new(|| drop(black_box(key.unwrap_key(W::A256Kw, &w).unwrap())))),
            (
                "raw rustcrypto",
                Box::new(|| {
                    use aes_kw::KeyInit;
                    let kek = aes_kw::KwAes256::new_from_slice(&raw).unwrap();
                    let mut out = [0u8; 32];
                    black_box(kek.unwrap_key(&w, &mut out).unwrap());
                }),
            ),
            ("hsmkit soft aws-lc", Box::new(|| drop(black_box(akey.unwrap_key(W::A256Kw, &w).unwrap())))),
            (
                "raw aws-lc-rs",
                Box::new(|| {
                    use aws_lc_rs::key_wrap::{AES_256, AesKek, KeyWrap};
                    let mut out = [0u8; 32];
                    black_box(AesKek::new(&AES_256, &raw).unwrap().unwrap(&w, &mut out).unwrap());
                }),
            ),
            (
                "hsmkit pkcs11 softhsm2",
                Box::new(|| drop(black_box(hkey.unwrap_key(W::A256Kw, &hw).unwrap()))),
            ),
        ],
        false,
    );
}

fn keygen(c: &mut Criterion) {
    let rc = store(SoftEngine::RustCrypto);
    let aws = store(SoftEngine::AwsLc);
    let token = hsmkit_pkcs11::testing::SoftHsmToken::new().unwrap();
    let hsm = token.store().unwrap();
    let mut g = c.benchmark_group("RSA-2048 generate");
    g.sample_size(10);
    for (name, s) in
        [("hsmkit soft rustcrypto", &rc), ("hsmkit soft aws-lc", &aws), ("hsmkit pkcs11 softhsm2", &hsm)]
    {
        g.bench_function(name, |b| {
            b.iter(|| {
                s.create_key("k", KeySpec::Rsa { bits: 2048 }, KeyAttributes::default()).unwrap();
                s.destroy_key("k").unwrap();
            })
        });
    }
    g.finish();
}

fn ops(c: &mut Criterion) {
    keygen(c);
    rsa(c, 2048);
    rsa(c, 3072);
    oaep(c);
    wrap(c);
    ecdsa!(
        c,
        "ECDSA P-256",
        P256,
        256,
        S::Es256,
        p256,
        Sha256,
        &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
        &sig::ECDSA_P256_SHA256_FIXED
    );
    ecdsa!(
        c,
        "ECDSA P-384",
        P384,
        384,
        S::Es384,
        p384,
        Sha384,
        &sig::ECDSA_P384_SHA384_FIXED_SIGNING,
        &sig::ECDSA_P384_SHA384_FIXED
    );
    ecdsa!(
        c,
        "ECDSA P-521",
        P521,
        521,
        S::Es512,
        p521,
        Sha512,
        &sig::ECDSA_P521_SHA512_FIXED_SIGNING,
        &sig::ECDSA_P521_SHA512_FIXED
    );
    ecdsa!(
        c,
        "ECDSA P-256K",
        P256K,
        256,
        S::Es256k,
        k256,
        Sha256,
        &sig::ECDSA_P256K1_SHA256_FIXED_SIGNING,
        &sig::ECDSA_P256K1_SHA256_FIXED
    );
    ed25519(c);
    hmac_sha256(c);
}

criterion_group!(benches, ops);
criterion_main!(benches);
