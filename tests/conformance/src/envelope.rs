//! Envelope encryption on every backend: the KEKs live in the backend, so wrap/unwrap,
//! versions and attributes are the backend's; the data path is the same code everywhere.
//! The byte-level tamper tests are in `crates/hsmkit/tests/envelope.rs`.

use hsmkit::envelope::{EncryptionContext, EnvelopeHeader, Opener, Recipient, RewrapMode, Rewrapper, Sealer};
use hsmkit::{ErrorKind, Key, KeyAttributes, KeyMaterial, KeyOp, KeySpec, KeyUpdate, Store};

fn wrap_ops() -> KeyAttributes {
    KeyAttributes::with_ops(&[KeyOp::WrapKey, KeyOp::UnwrapKey])
}

fn ctx(pairs: &[(&str, &str)]) -> EncryptionContext {
    pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(131) ^ (i >> 9)).to_le_bytes()[0]).collect()
}

/// The KEKs: an AES-256 one ("env-aes") and an RSA-2048 one ("env-rsa"). Where the
/// capabilities say the backend cannot generate AES keys (tpm2-pkcs11), creating
/// "env-aes" must say Unsupported, and the first KEK is a second RSA one ("env-kek").
fn keks(store: &Store) -> (Key, Key) {
    let aes = crate::checks::create_or_unsupported(
        store,
        "env-aes",
        KeySpec::AES_256,
        &[KeyOp::WrapKey, KeyOp::UnwrapKey],
    )
    .unwrap_or_else(|| store.create_key("env-kek", KeySpec::RSA_2048, wrap_ops()).unwrap());
    let rsa = store.create_key("env-rsa", KeySpec::RSA_2048, wrap_ops()).unwrap();
    (aes, rsa)
}

pub fn envelope_round_trips(store: &Store) {
    let (aes, rsa) = keks(store);
    let c = ctx(&[("tenant", "t1")]);
    let sealer = Sealer::new([Recipient::new(aes.clone()).unwrap(), Recipient::new(rsa.clone()).unwrap()])
        .unwrap()
        .with_context(c.clone())
        .unwrap();
    // RSA recipients default to RSA-OAEP-256 where the backend can unwrap with it.
    let want = if store.capabilities().unwrap.contains(&hsmkit::KeyWrapAlgorithm::RsaOaep256) {
        hsmkit::KeyWrapAlgorithm::RsaOaep256
    } else {
        hsmkit::KeyWrapAlgorithm::RsaOaep
    };
    assert_eq!(sealer.recipients()[1].algorithm(), want);
    let cs = 64 * 1024;
    for len in [0, 1, cs - 1, cs, cs + 1, 3 * cs + 5] {
        let pt = data(len);
        let env = sealer.seal(&pt).unwrap();
        for k in [&aes, &rsa] {
            let got = Opener::new(k).with_context(c.clone()).open(&env).unwrap();
            assert_eq!(&got[..], &pt[..], "len {len} via {}", k.name());
        }
        assert_eq!(&store.unseal(&env, &c).unwrap()[..], &pt[..]);
    }
    // The store's one-call form picks the current version.
    let env = store.seal(aes.name(), b"by name", &c).unwrap();
    assert_eq!(&store.unseal(&env, &c).unwrap()[..], b"by name");
}

pub fn envelope_after_rotations_and_rewrap(store: &Store) {
    let (v1, _) = keks(store);
    let name = v1.name().to_owned();
    let env = Sealer::for_key(v1).unwrap().seal(&data(100_000)).unwrap();
    store.rotate_key(&name).unwrap();
    let v3 = store.rotate_key(&name).unwrap();
    // Version 1 still opens what it sealed after two rotations.
    assert_eq!(&store.unseal(&env, &ctx(&[])).unwrap()[..], &data(100_000)[..]);
    let rewrapped = Rewrapper::new(store, [Recipient::new(v3).unwrap()], RewrapMode::Replace)
        .unwrap()
        .rewrap(&env)
        .unwrap();
    let h = EnvelopeHeader::parse(&rewrapped).unwrap();
    assert_eq!((h.recipients()[0].name.as_str(), h.recipients()[0].version), (name.as_str(), 3));
    store.update_key(&name, 1, &KeyUpdate::enabled(false)).unwrap();
    assert_eq!(store.unseal(&env, &ctx(&[])).unwrap_err().kind(), ErrorKind::PermissionDenied);
    assert_eq!(&store.unseal(&rewrapped, &ctx(&[])).unwrap()[..], &data(100_000)[..]);
}

pub fn envelope_refusals(store: &Store) {
    let (aes, _) = keks(store);
    let name = aes.name().to_owned();
    let env = Sealer::for_key(aes).unwrap().with_context(ctx(&[("a", "b")])).unwrap().seal(b"x").unwrap();
    assert_eq!(store.unseal(&env, &ctx(&[("a", "c")])).unwrap_err().kind(), ErrorKind::DecryptionFailed);
    let mut t = env.clone();
    let n = t.len();
    t[n - 1] ^= 1;
    assert_eq!(store.unseal(&t, &ctx(&[("a", "b")])).unwrap_err().kind(), ErrorKind::DecryptionFailed);
    store.update_key(&name, 1, &KeyUpdate::enabled(false)).unwrap();
    assert_eq!(store.unseal(&env, &ctx(&[("a", "b")])).unwrap_err().kind(), ErrorKind::PermissionDenied);
    store.destroy_key(&name).unwrap();
    assert_eq!(store.unseal(&env, &ctx(&[("a", "b")])).unwrap_err().kind(), ErrorKind::NotFound);
    // A key that may not wrap cannot be a recipient in practice.
    let signer = store.create_key("env-rsa-sign", KeySpec::RSA_2048, KeyAttributes::default()).unwrap();
    let e = Sealer::for_key(signer).unwrap().seal(b"x").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
}

/// The KEKs of the frozen vectors, imported into `store`.
/// `None` after asserting the typed Unsupported where the backend imports nothing.
pub fn import_vector_keks(store: &Store) -> Option<serde_json::Value> {
    let imports = store.capabilities().import;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../vectors/envelope/v1.json");
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for k in doc["keks"].as_array().unwrap() {
        let material = match k["type"].as_str().unwrap() {
            "aes" => KeyMaterial::aes(&hex::decode(k["key_hex"].as_str().unwrap()).unwrap()).unwrap(),
            _ => KeyMaterial::from_pem(k["pkcs8_pem"].as_str().unwrap()).unwrap(),
        };
        let name = k["name"].as_str().unwrap();
        let r = if k["version"] == 1 {
            store.import_key(name, material, wrap_ops())
        } else {
            store.import_key_version(name, material, wrap_ops())
        };
        if !imports {
            assert_eq!(r.unwrap_err().kind(), ErrorKind::Unsupported, "{name}");
            return None;
        }
        r.unwrap();
    }
    Some(doc)
}

/// Vectors made once on the software backend open on this one; a recipient whose wrap
/// algorithm the backend lacks gives Unsupported.
pub fn envelope_frozen_vectors(store: &Store) {
    let Some(doc) = import_vector_keks(store) else { return };
    let caps = store.capabilities();
    let (mut opened, mut unsupported) = (0, 0);
    // Suite 2's vectors use the same KEKs.
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../vectors/envelope/v1-suite2.json");
    let suite2: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(suite2["keks"], doc["keks"]);
    for v in doc["vectors"].as_array().unwrap().iter().chain(suite2["vectors"].as_array().unwrap()) {
        let env = hex::decode(v["envelope_hex"].as_str().unwrap()).unwrap();
        let want = hex::decode(v["plaintext_hex"].as_str().unwrap()).unwrap();
        let context: EncryptionContext = serde_json::from_value(v["context"].clone()).unwrap();
        for r in v["recipients"].as_array().unwrap() {
            let version = u32::try_from(r["version"].as_u64().unwrap()).unwrap();
            let key = store.get_key_version(r["name"].as_str().unwrap(), version).unwrap();
            let alg: hsmkit::KeyWrapAlgorithm = r["alg"].as_str().unwrap().parse().unwrap();
            let result = Opener::new(&key).with_context(context.clone()).open(&env);
            if caps.unwrap.contains(&alg) {
                assert_eq!(&result.unwrap()[..], &want[..], "{}", v["name"]);
                opened += 1;
            } else {
                assert_eq!(result.unwrap_err().kind(), ErrorKind::Unsupported, "{} {alg}", v["name"]);
                unsupported += 1;
            }
        }
    }
    assert_eq!(opened + unsupported, 14);
    assert!(opened >= 8, "{opened}");
    if caps == hsmkit::Capabilities::all() {
        assert_eq!(opened, 14);
    }
    println!(
        "envelope vectors on {}: {opened} vector/recipient pairs opened, {unsupported} Unsupported by the backend",
        store.backend_kind()
    );
}
