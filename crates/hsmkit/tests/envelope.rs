//! Envelope encryption on the software backend: frozen vectors, round trips at the chunk
//! boundaries, one test per tamper class, recipients, rewrap, caching, streaming and files.
//! (The same checks per backend, and across backends, are in the conformance suite.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::io::{Read, Write};
use std::time::Duration;

use hsmkit::envelope::{
    CacheLimits, EncryptionContext, EnvelopeHeader, Opener, Recipient, RewrapMode, Rewrapper, Sealer, Suite,
    hazmat,
};
use hsmkit::{
    ErrorKind, Key, KeyAttributes, KeyMaterial, KeyOp, KeySpec, KeyUpdate, KeyWrapAlgorithm as W, Store,
};
use proptest::prelude::*;

const CS: usize = 256;

fn new_store() -> Store {
    Store::new(hsmkit_soft::SoftBackend::new())
}

fn aes_kek(store: &Store, name: &str) -> Key {
    store.create_key(name, KeySpec::AES_256, KeyAttributes::default()).unwrap()
}

fn rsa_kek(store: &Store, name: &str) -> Key {
    store
        .create_key(name, KeySpec::RSA_2048, KeyAttributes::with_ops(&[KeyOp::WrapKey, KeyOp::UnwrapKey]))
        .unwrap()
}

fn ctx(pairs: &[(&str, &str)]) -> EncryptionContext {
    pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(31) ^ (i >> 8)).to_le_bytes()[0]).collect()
}

fn small_sealer(kek: Key) -> Sealer {
    Sealer::for_key(kek).unwrap().with_chunk_size(u32::try_from(CS).unwrap()).unwrap()
}

/// Header length and the body's chunk boundaries.
fn chunks(env: &[u8]) -> (usize, Vec<std::ops::Range<usize>>) {
    let h = EnvelopeHeader::parse(env).unwrap();
    let start = h.encoded_len();
    let size = usize::try_from(h.chunk_size()).unwrap() + 16;
    let mut out = Vec::new();
    let mut i = start;
    while i < env.len() {
        let end = (i + size).min(env.len());
        out.push(i..end);
        i = end;
    }
    (start, out)
}

fn assert_fails(store: &Store, env: &[u8], what: &str) {
    let e = Opener::new(store).open(env).expect_err(what);
    assert_eq!(e.kind(), ErrorKind::DecryptionFailed, "{what}: {e}");
    assert_eq!(e.to_string(), "decryption failed", "{what}");
}

// ---------------------------------------------------------------- frozen vectors

#[test]
fn frozen_vectors_open_and_reproduce() {
    for (file, suite) in
        [("v1.json", Suite::Aes256GcmHkdfSha512), ("v1-suite2.json", Suite::Aes256GcmHkdfSha256)]
    {
        frozen_vectors_in(file, suite);
    }
}

fn frozen_vectors_in(file: &str, suite: Suite) {
    let path = format!("{}/../../tests/vectors/envelope/{file}", env!("CARGO_MANIFEST_DIR"));
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let store = new_store();
    let ops = KeyAttributes::with_ops(&[KeyOp::WrapKey, KeyOp::UnwrapKey]);
    for k in doc["keks"].as_array().unwrap() {
        let material = match k["type"].as_str().unwrap() {
            "aes" => KeyMaterial::aes(&hex::decode(k["key_hex"].as_str().unwrap()).unwrap()).unwrap(),
            _ => KeyMaterial::from_pem(k["pkcs8_pem"].as_str().unwrap()).unwrap(),
        };
        let name = k["name"].as_str().unwrap();
        if k["version"] == 1 {
            store.import_key(name, material, ops.clone()).unwrap();
        } else {
            store.import_key_version(name, material, ops.clone()).unwrap();
        }
    }
    let vectors = doc["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 6);
    let mut reproduced = 0;
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let env = hex::decode(v["envelope_hex"].as_str().unwrap()).unwrap();
        assert_eq!(EnvelopeHeader::parse(&env).unwrap().suite(), suite, "{file} {name}");
        let want = hex::decode(v["plaintext_hex"].as_str().unwrap()).unwrap();
        let context: EncryptionContext = serde_json::from_value(v["context"].clone()).unwrap();
        let mut recipients = Vec::new();
        for r in v["recipients"].as_array().unwrap() {
            let key = store
                .get_key_version(
                    r["name"].as_str().unwrap(),
                    u32::try_from(r["version"].as_u64().unwrap()).unwrap(),
                )
                .unwrap();
            // Each recipient alone opens it.
            let got = Opener::new(&key).with_context(context.clone()).open(&env).unwrap();
            assert_eq!(&got[..], &want[..], "{name}");
            recipients
                .push(Recipient::with_algorithm(key, r["alg"].as_str().unwrap().parse().unwrap()).unwrap());
        }
        if v["reproducible"] == true {
            let sealer = Sealer::new(recipients)
                .unwrap()
                .with_context(context)
                .unwrap()
                .with_chunk_size(u32::try_from(v["chunk_size"].as_u64().unwrap()).unwrap())
                .unwrap()
                .with_suite(suite);
            let dek: [u8; 32] = hex::decode(v["data_key_hex"].as_str().unwrap()).unwrap().try_into().unwrap();
            let id: [u8; 32] =
                hex::decode(v["message_id_hex"].as_str().unwrap()).unwrap().try_into().unwrap();
            let again = hazmat::seal_with_fixed_secrets(&sealer, &dek, &id, &want).unwrap();
            assert_eq!(hex::encode(again), hex::encode(&env), "{file} {name}: sealing again differs");
            reproduced += 1;
        }
    }
    assert_eq!(reproduced, 4);
}

#[test]
fn both_suites_seal_open_and_rewrap_and_the_suite_byte_is_bound() {
    let store = new_store();
    let kek = aes_kek(&store, "kek");
    let pt = data(3 * CS + 11);
    assert_eq!(small_sealer(kek.clone()).suite(), Suite::DEFAULT);
    for (suite, id, other) in [(Suite::Aes256GcmHkdfSha512, 1u8, 2u8), (Suite::Aes256GcmHkdfSha256, 2, 1)] {
        let env = small_sealer(kek.clone()).with_suite(suite).seal(&pt).unwrap();
        assert_eq!((env[5], EnvelopeHeader::parse(&env).unwrap().suite()), (id, suite));
        assert_eq!(&Opener::new(&store).open(&env).unwrap()[..], &pt[..]);
        // The other suite's byte: another key schedule, and the header tag covers it.
        let mut swapped = env.clone();
        swapped[5] = other;
        assert_fails(&store, &swapped, "suite byte swapped");
        // Rewrap keeps the suite (the body's keys depend on it).
        let rewrapped = Rewrapper::new(&store, [Recipient::new(kek.clone()).unwrap()], RewrapMode::Replace)
            .unwrap()
            .rewrap(&env)
            .unwrap();
        assert_eq!(EnvelopeHeader::parse(&rewrapped).unwrap().suite(), suite);
        assert_eq!(&Opener::new(&store).open(&rewrapped).unwrap()[..], &pt[..]);
    }
    // A suite this build does not know: the one opaque error, and a precise parse error.
    let mut unknown = small_sealer(kek).seal(&pt).unwrap();
    unknown[5] = 3;
    assert_fails(&store, &unknown, "suite 3");
    let e = EnvelopeHeader::parse(&unknown).unwrap_err();
    assert!(e.to_string().contains("suite 3 is not supported"), "{e}");
}

// ---------------------------------------------------------------- round trips

#[test]
fn round_trips_at_chunk_boundaries() {
    let store = new_store();
    let sealer = small_sealer(aes_kek(&store, "kek"));
    for len in [0, 1, CS - 1, CS, CS + 1, 2 * CS, 3 * CS + 7] {
        let pt = data(len);
        let env = sealer.seal(&pt).unwrap();
        let (_, c) = chunks(&env);
        assert_eq!(c.len(), len.div_ceil(CS).max(1), "chunk count for {len}");
        assert_eq!(&Opener::new(&store).open(&env).unwrap()[..], &pt[..], "len {len}");
    }
}

#[test]
fn multi_megabyte_round_trip_in_every_mode() {
    let store = new_store();
    let sealer = Sealer::for_key(aes_kek(&store, "kek")).unwrap();
    let pt = data(5 * 1024 * 1024 + 3);
    let one_shot = sealer.seal(&pt).unwrap();
    assert_eq!(&Opener::new(&store).open(&one_shot).unwrap()[..], &pt[..]);

    // Writer fed in odd-sized pieces; reader read in other odd-sized pieces.
    let mut w = sealer.writer(Vec::new()).unwrap();
    for piece in pt.chunks(7919) {
        w.write_all(piece).unwrap();
    }
    assert_eq!(w.plaintext_len(), u64::try_from(pt.len()).unwrap());
    let streamed = w.finish().unwrap();
    assert_eq!(streamed.len(), one_shot.len());
    let mut r = Opener::new(&store).reader(&streamed[..]).unwrap();
    let mut back = Vec::new();
    let mut buf = [0u8; 4099];
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        back.extend_from_slice(&buf[..n]);
    }
    assert_eq!(back, pt);

    // Reader to writer.
    let mut env = Vec::new();
    assert_eq!(sealer.seal_stream(&pt[..], &mut env).unwrap(), u64::try_from(pt.len()).unwrap());
    let mut out = Vec::new();
    assert_eq!(
        Opener::new(&store).open_stream(&env[..], &mut out).unwrap(),
        u64::try_from(pt.len()).unwrap()
    );
    assert_eq!(out, pt);
}

#[test]
fn every_envelope_is_different() {
    let store = new_store();
    let sealer = small_sealer(aes_kek(&store, "kek"));
    let a = sealer.seal(b"same").unwrap();
    let b = sealer.seal(b"same").unwrap();
    assert_ne!(
        EnvelopeHeader::parse(&a).unwrap().message_id(),
        EnvelopeHeader::parse(&b).unwrap().message_id()
    );
    assert_ne!(a, b);
}

// ---------------------------------------------------------------- tamper classes

fn three_chunks() -> (Store, Sealer, Vec<u8>) {
    let store = new_store();
    let sealer = small_sealer(aes_kek(&store, "kek"));
    let env = sealer.seal(&data(2 * CS + 100)).unwrap();
    (store, sealer, env)
}

#[test]
fn tamper_truncation() {
    let (store, _, env) = three_chunks();
    let (start, c) = chunks(&env);
    assert_fails(&store, &env[..c[2].start], "last chunk dropped");
    assert_fails(&store, &env[..c[1].start], "two chunks dropped");
    assert_fails(&store, &env[..env.len() - 1], "one byte short");
    assert_fails(&store, &env[..c[1].start + 5], "cut inside a chunk");
    assert_fails(&store, &env[..start], "body missing");
    assert_fails(&store, &env[..start - 1], "header cut");
    assert_fails(&store, &[], "empty input");
}

#[test]
fn tamper_reordering() {
    let (store, _, env) = three_chunks();
    let (start, c) = chunks(&env);
    let mut swapped = env[..start].to_vec();
    swapped.extend_from_slice(&env[c[1].clone()]);
    swapped.extend_from_slice(&env[c[0].clone()]);
    swapped.extend_from_slice(&env[c[2].clone()]);
    assert_fails(&store, &swapped, "chunks 0 and 1 swapped");
}

#[test]
fn tamper_duplication() {
    let (store, _, env) = three_chunks();
    let (_, c) = chunks(&env);
    let mut dup = env[..c[1].end].to_vec();
    dup.extend_from_slice(&env[c[1].clone()]);
    dup.extend_from_slice(&env[c[2].clone()]);
    assert_fails(&store, &dup, "chunk 1 twice");
    let mut extended = env.clone();
    extended.extend_from_slice(&env[c[2].clone()]);
    assert_fails(&store, &extended, "final chunk twice");
    let mut trailing = env.clone();
    trailing.push(0);
    assert_fails(&store, &trailing, "a byte appended");
}

#[test]
fn tamper_splicing_between_envelopes() {
    let (store, sealer, a) = three_chunks();
    let b = sealer.seal(&data(2 * CS + 100)).unwrap();
    let (sa, ca) = chunks(&a);
    let (sb, cb) = chunks(&b);
    // Same KEK, same context, same length: only the message id differs.
    let mut mixed = a[..ca[1].start].to_vec();
    mixed.extend_from_slice(&b[cb[1].clone()]);
    mixed.extend_from_slice(&a[ca[2].clone()]);
    assert_fails(&store, &mixed, "chunk from another envelope");
    let mut header_swap = b[..sb].to_vec();
    header_swap.extend_from_slice(&a[sa..]);
    assert_fails(&store, &header_swap, "header of one, body of the other");
}

#[test]
fn tamper_every_body_bit_flip() {
    let store = new_store();
    let env = small_sealer(aes_kek(&store, "kek")).seal(&data(CS + 10)).unwrap();
    let (start, _) = chunks(&env);
    for i in start..env.len() {
        for bit in [0x01, 0x80] {
            let mut t = env.clone();
            t[i] ^= bit;
            assert_fails(&store, &t, &format!("body byte {i} ^ {bit:#x}"));
        }
    }
}

/// Flipping a byte of the recipient's name or version makes it name a key the store does
/// not have (NotFound, as for any envelope for another key); everything else in the
/// header is DecryptionFailed. Nothing ever opens.
#[test]
fn tamper_every_header_bit_flip() {
    let store = new_store();
    let env = small_sealer(aes_kek(&store, "kek"))
        .with_context(ctx(&[("tenant", "a")]))
        .unwrap()
        .seal(b"hello")
        .unwrap();
    let (start, _) = chunks(&env);
    // fixed 42 + context (2 + 2+6 + 2+1) = 55; recipient: name_len at 56, name 57..60, version 60..64.
    let recipient_id = 57..64;
    let mut not_found = 0;
    for i in 0..start {
        let mut t = env.clone();
        t[i] ^= 0x01;
        let e = Opener::new(&store).with_context(ctx(&[("tenant", "a")])).open(&t).unwrap_err();
        if recipient_id.contains(&i) {
            assert!(matches!(e.kind(), ErrorKind::NotFound | ErrorKind::DecryptionFailed), "byte {i}: {e}");
            not_found += usize::from(e.kind() == ErrorKind::NotFound);
        } else {
            assert_eq!(e.kind(), ErrorKind::DecryptionFailed, "header byte {i}: {e}");
        }
    }
    assert!(not_found >= 4, "{not_found}");
}

#[test]
fn wrong_context_fails() {
    let store = new_store();
    let sealer =
        small_sealer(aes_kek(&store, "kek")).with_context(ctx(&[("tenant", "a"), ("x", "1")])).unwrap();
    let env = sealer.seal(b"data").unwrap();
    for wrong in [
        ctx(&[]),
        ctx(&[("tenant", "a")]),
        ctx(&[("tenant", "b"), ("x", "1")]),
        ctx(&[("tenant", "a"), ("x", "1"), ("y", "")]),
    ] {
        let e = Opener::new(&store).with_context(wrong.clone()).open(&env).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DecryptionFailed, "{wrong:?}");
    }
    assert_eq!(&store.unseal(&env, &ctx(&[("tenant", "a"), ("x", "1")])).unwrap()[..], b"data");
}

#[test]
fn wrong_key_with_the_same_name_fails() {
    let a = new_store();
    let b = new_store();
    let env = small_sealer(aes_kek(&a, "kek")).seal(b"data").unwrap();
    aes_kek(&b, "kek"); // same name and version, different key
    assert_fails(&b, &env, "another store's kek v1");
}

/// Invisible salamanders: a recipient entry whose wrapped key is a different data key
/// must not open, even for that recipient alone. The commitment catches it.
#[test]
fn recipients_with_different_data_keys_do_not_open() {
    let store = new_store();
    let a = aes_kek(&store, "a");
    let b = aes_kek(&store, "b");
    let sealer =
        Sealer::new([Recipient::new(a.clone()).unwrap(), Recipient::new(b.clone()).unwrap()]).unwrap();
    let id = [9u8; 32];
    let e1 = hazmat::seal_with_fixed_secrets(&sealer, &[1; 32], &id, b"plaintext one").unwrap();
    let e2 = hazmat::seal_with_fixed_secrets(&sealer, &[2; 32], &id, b"plaintext one").unwrap();
    let h1 = EnvelopeHeader::parse(&e1).unwrap();
    let h2 = EnvelopeHeader::parse(&e2).unwrap();
    let wb1 = h1.recipients()[1].wrapped_key();
    let wb2 = h2.recipients()[1].wrapped_key();
    let at = e1.windows(wb1.len()).position(|w| w == wb1).unwrap();
    let mut forged = e1.clone();
    forged[at..at + wb2.len()].copy_from_slice(wb2);
    assert_eq!(&Opener::new(&a).open(&e1).unwrap()[..], b"plaintext one");
    let e = Opener::new(&b).open(&forged).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DecryptionFailed);
    let e = Opener::new(&a).open(&forged).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DecryptionFailed);
}

#[test]
fn streaming_open_releases_only_verified_chunks() {
    let (store, _, env) = three_chunks();
    let (_, c) = chunks(&env);
    let mut t = env.clone();
    t[c[1].end - 1] ^= 1; // chunk 1's tag
    let mut r = Opener::new(&store).reader(&t[..]).unwrap();
    let mut got = Vec::new();
    let e = r.read_to_end(&mut got).unwrap_err();
    assert_eq!(hsmkit::Error::from(e).kind(), ErrorKind::DecryptionFailed);
    assert_eq!(got, data(2 * CS + 100)[..CS], "exactly chunk 0, nothing of chunk 1");
    // And it stays failed.
    assert!(r.read(&mut [0u8; 10]).is_err());
}

// ---------------------------------------------------------------- recipients

#[test]
fn multi_recipient_opens_with_each_kek() {
    let store = new_store();
    let aes = aes_kek(&store, "aes");
    let rsa = rsa_kek(&store, "rsa");
    let aes128 = store.create_key("aes128", KeySpec::AES_128, KeyAttributes::default()).unwrap();
    let sealer = Sealer::new([
        Recipient::new(aes.clone()).unwrap(),
        Recipient::new(rsa.clone()).unwrap(),
        Recipient::with_algorithm(aes128.clone(), W::A128Kwp).unwrap(),
    ])
    .unwrap();
    let env = sealer.seal(&data(1000)).unwrap();
    let h = EnvelopeHeader::parse(&env).unwrap();
    let algs: Vec<W> = h.recipients().iter().map(|r| r.algorithm).collect();
    assert_eq!(algs, [W::A256Kw, W::RsaOaep256, W::A128Kwp]);
    for k in [aes, rsa, aes128] {
        assert_eq!(&Opener::new(&k).open(&env).unwrap()[..], &data(1000)[..], "{}", k.name());
    }
}

#[test]
fn missing_recipient_is_not_found() {
    let a = new_store();
    let env = small_sealer(aes_kek(&a, "kek")).seal(b"x").unwrap();
    let e = Opener::new(&new_store()).open(&env).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("kek v1"), "{e}");
}

#[test]
fn disabled_or_deleted_kek_refuses() {
    let store = new_store();
    let env = small_sealer(aes_kek(&store, "kek")).seal(b"x").unwrap();
    store.update_key("kek", 1, &KeyUpdate::enabled(false)).unwrap();
    assert_eq!(store.unseal(&env, &ctx(&[])).unwrap_err().kind(), ErrorKind::PermissionDenied);
    store.update_key("kek", 1, &KeyUpdate::enabled(true)).unwrap();
    store.delete_key("kek").unwrap();
    assert_eq!(store.unseal(&env, &ctx(&[])).unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn bad_recipients_and_settings_are_typed_errors() {
    let store = new_store();
    let ec = store.create_key("ec", KeySpec::P256, KeyAttributes::default()).unwrap();
    assert_eq!(Recipient::new(ec.clone()).unwrap_err().kind(), ErrorKind::InvalidInput);
    let aes = aes_kek(&store, "kek");
    assert_eq!(
        Recipient::with_algorithm(aes.clone(), W::A128Kw).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(Sealer::new([]).unwrap_err().kind(), ErrorKind::InvalidInput);
    let twice = [Recipient::new(aes.clone()).unwrap(), Recipient::new(aes.clone()).unwrap()];
    assert_eq!(Sealer::new(twice).unwrap_err().kind(), ErrorKind::InvalidInput);
    let s = Sealer::for_key(aes.clone()).unwrap();
    for n in [0, 255, (1 << 24) + 1] {
        assert_eq!(s.clone().with_chunk_size(n).unwrap_err().kind(), ErrorKind::InvalidInput);
    }
    assert_eq!(s.clone().with_context(ctx(&[("", "v")])).unwrap_err().kind(), ErrorKind::InvalidInput);
    let big = "v".repeat(4097);
    assert_eq!(s.clone().with_context(ctx(&[("k", &big)])).unwrap_err().kind(), ErrorKind::InvalidInput);
    // An RSA key that may not wrap.
    let rsa = store.create_key("rsa", KeySpec::RSA_2048, KeyAttributes::default()).unwrap();
    let e = Sealer::for_key(rsa).unwrap().seal(b"x").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    // Header inspection explains what is wrong.
    let e = EnvelopeHeader::parse(b"HKEV\x02").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("version 2"), "{e}");
}

// ---------------------------------------------------------------- rewrap

#[test]
fn rewrap_after_rotation_retires_the_old_version() {
    let store = new_store();
    let v1 = aes_kek(&store, "kek");
    let env = small_sealer(v1).with_context(ctx(&[("t", "1")])).unwrap().seal(&data(3 * CS)).unwrap();
    let v2 = store.rotate_key("kek").unwrap();
    let rewrapped = Rewrapper::new(&store, [Recipient::new(v2).unwrap()], RewrapMode::Replace)
        .unwrap()
        .with_context(ctx(&[("t", "1")]))
        .rewrap(&env)
        .unwrap();
    // Body byte for byte the same.
    let (s1, _) = chunks(&env);
    let (s2, _) = chunks(&rewrapped);
    assert_eq!(env[s1..], rewrapped[s2..]);
    let h = EnvelopeHeader::parse(&rewrapped).unwrap();
    assert_eq!(h.recipients().iter().map(|r| (r.name.as_str(), r.version)).collect::<Vec<_>>(), [("kek", 2)]);
    assert_eq!(h.context(), &ctx(&[("t", "1")]));
    store.update_key("kek", 1, &KeyUpdate::enabled(false)).unwrap();
    assert_eq!(&store.unseal(&rewrapped, &ctx(&[("t", "1")])).unwrap()[..], &data(3 * CS)[..]);
    assert_eq!(store.unseal(&env, &ctx(&[("t", "1")])).unwrap_err().kind(), ErrorKind::PermissionDenied);
}

#[test]
fn rewrap_add_keeps_old_recipients() {
    let store = new_store();
    let a = aes_kek(&store, "a");
    let b = rsa_kek(&store, "b");
    let env = small_sealer(a.clone()).seal(b"shared").unwrap();
    let rw = Rewrapper::new(
        &a,
        [Recipient::new(b.clone()).unwrap(), Recipient::new(a.clone()).unwrap()],
        RewrapMode::Add,
    )
    .unwrap();
    let both = rw.rewrap(&env).unwrap();
    assert_eq!(EnvelopeHeader::parse(&both).unwrap().recipients().len(), 2);
    assert_eq!(&Opener::new(&a).open(&both).unwrap()[..], b"shared");
    assert_eq!(&Opener::new(&b).open(&both).unwrap()[..], b"shared");
    // Rewrap needs a key that opens the envelope.
    let other = new_store();
    let c = aes_kek(&other, "c");
    let e = Rewrapper::new(&c, [Recipient::new(c.clone()).unwrap()], RewrapMode::Replace)
        .unwrap()
        .rewrap(&env)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    // A tampered header is not rewrapped into a valid one.
    let mut t = env.clone();
    t[10] ^= 1;
    let e = rw.rewrap(&t).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DecryptionFailed);
}

#[test]
fn rewrap_needs_the_encryption_context() {
    let store = new_store();
    let kek = aes_kek(&store, "kek");
    let other = aes_kek(&store, "other");
    let bound = ctx(&[("dept", "finance")]);
    let env = small_sealer(kek).with_context(bound.clone()).unwrap().seal(b"payroll").unwrap();
    let rewrapper = |context: EncryptionContext| {
        Rewrapper::new(&store, [Recipient::new(other.clone()).unwrap()], RewrapMode::Replace)
            .unwrap()
            .with_context(context)
    };
    // Holding the KEK is not enough: no context, a wrong one, or a superset all fail as a
    // wrong key does, and nothing is written.
    for wrong in [ctx(&[]), ctx(&[("dept", "hr")]), ctx(&[("dept", "finance"), ("x", "y")])] {
        let mut out = Vec::new();
        let e = rewrapper(wrong).rewrap_stream(&env[..], &mut out).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DecryptionFailed);
        assert!(out.is_empty());
    }
    let moved = rewrapper(bound.clone()).rewrap(&env).unwrap();
    assert_eq!(&store.unseal(&moved, &bound).unwrap()[..], b"payroll");
}

/// SECURITY.md: an unwrap that succeeds but gives a data key of the wrong length fails later
/// than one that fails its integrity check. For an RSA KEK, making such input needs only
/// the public key (not the KEK, as SECURITY.md once said); what pins the claim that this
/// reveals nothing is that the error is the one `DecryptionFailed`, word for word.
#[test]
fn a_wrong_length_data_key_needs_only_the_rsa_public_key_and_is_the_one_error() {
    let store = new_store();
    let kek = rsa_kek(&store, "kek");
    let env = small_sealer(kek.clone()).seal(b"payload").unwrap();
    let wrapped = EnvelopeHeader::parse(&env).unwrap().recipients()[0].wrapped_key().to_vec();
    let at = env.windows(wrapped.len()).position(|w| w == wrapped).unwrap();
    let with_wrapped = |w: &[u8]| {
        let mut e = env.clone();
        e[at..at + w.len()].copy_from_slice(w);
        e
    };
    // Someone holding only the public key wraps a 16-byte "data key" (32 are expected).
    let outsider = new_store();
    let public = outsider
        .import_key(
            "kek-public",
            KeyMaterial::from_der(&kek.public_key_der().unwrap()).unwrap(),
            KeyAttributes::with_ops(&[KeyOp::WrapKey]),
        )
        .unwrap();
    let short = public.wrap_key(W::RsaOaep256, &[7u8; 16]).unwrap();
    assert_eq!(short.len(), wrapped.len());
    // It unwraps (valid OAEP), then fails; a flipped byte fails OAEP itself. One error.
    assert_eq!(kek.unwrap_key(W::RsaOaep256, &short).unwrap().len(), 16);
    let mut flipped = wrapped.clone();
    flipped[0] ^= 1;
    let e_short = store.unseal(&with_wrapped(&short), &ctx(&[])).unwrap_err();
    let e_flipped = store.unseal(&with_wrapped(&flipped), &ctx(&[])).unwrap_err();
    assert_eq!(e_short.kind(), ErrorKind::DecryptionFailed);
    assert_eq!((e_short.kind(), e_short.to_string()), (e_flipped.kind(), e_flipped.to_string()));
}

// ---------------------------------------------------------------- data-key caching

/// SECURITY.md: a `Key` is a snapshot of its attributes (README), so a sealer made from a
/// handle keeps sealing after its KEK is disabled, with or without a data-key cache;
/// sealing by name and opening look the KEK up, so they refuse at once (a documented
/// decision, pinned here).
#[test]
fn a_kek_disabled_after_the_sealer_was_made_refuses_only_new_lookups() {
    let store = new_store();
    let kek = aes_kek(&store, "kek");
    let cached = small_sealer(kek.clone())
        .with_data_key_cache(CacheLimits::new(Duration::from_secs(600), 2, 1 << 20).unwrap());
    let uncached = small_sealer(kek);
    cached.seal(b"first").unwrap();
    store.update_key("kek", 1, &KeyUpdate::enabled(false)).unwrap();
    let sealed =
        [cached.seal(b"second").unwrap(), cached.seal(b"third").unwrap(), uncached.seal(b"x").unwrap()];
    let e = store.seal("kek", b"by name", &ctx(&[])).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    for env in &sealed {
        assert_eq!(store.unseal(env, &ctx(&[])).unwrap_err().kind(), ErrorKind::PermissionDenied);
    }
    store.update_key("kek", 1, &KeyUpdate::enabled(true)).unwrap();
    assert_eq!(&store.unseal(&sealed[1], &ctx(&[])).unwrap()[..], b"third");
}

#[test]
fn data_key_cache_reuses_within_limits() {
    let store = new_store();
    let kek = aes_kek(&store, "kek");
    let wrapped = |env: &[u8]| EnvelopeHeader::parse(env).unwrap().recipients()[0].wrapped_key().to_vec();
    let limits = CacheLimits::new(Duration::from_secs(600), 3, 1000).unwrap();
    let sealer = small_sealer(kek.clone()).with_data_key_cache(limits);
    let envs: Vec<Vec<u8>> = (0..4).map(|_| sealer.seal(b"0123456789").unwrap()).collect();
    assert_eq!(wrapped(&envs[0]), wrapped(&envs[1]));
    assert_eq!(wrapped(&envs[0]), wrapped(&envs[2]));
    assert_ne!(wrapped(&envs[0]), wrapped(&envs[3]), "max_messages = 3");
    let ids: std::collections::HashSet<[u8; 32]> =
        envs.iter().map(|e| *EnvelopeHeader::parse(e).unwrap().message_id()).collect();
    assert_eq!(ids.len(), 4, "every envelope has its own message id");
    for e in &envs {
        assert_eq!(&Opener::new(&kek).open(e).unwrap()[..], b"0123456789");
    }
    // Bytes: 600 + 600 > 1000 forces a new key; a message over max_bytes bypasses the cache.
    let sealer = small_sealer(kek.clone())
        .with_data_key_cache(CacheLimits::new(Duration::from_secs(600), 100, 1000).unwrap());
    let a = sealer.seal(&[1; 600]).unwrap();
    let b = sealer.seal(&[1; 600]).unwrap();
    let c = sealer.seal(&[1; 300]).unwrap();
    assert_ne!(wrapped(&a), wrapped(&b));
    assert_eq!(wrapped(&b), wrapped(&c));
    let d = sealer.seal(&[1; 2000]).unwrap();
    let e = sealer.seal(&[1; 10]).unwrap();
    assert_ne!(wrapped(&d), wrapped(&c));
    assert_eq!(wrapped(&e), wrapped(&c), "the bypass did not evict the cached key");
    // Age.
    let sealer = small_sealer(kek.clone())
        .with_data_key_cache(CacheLimits::new(Duration::from_millis(50), 100, 1 << 20).unwrap());
    let a = sealer.seal(b"a").unwrap();
    std::thread::sleep(Duration::from_millis(80));
    let b = sealer.seal(b"b").unwrap();
    assert_ne!(wrapped(&a), wrapped(&b));
    assert_eq!(CacheLimits::new(Duration::ZERO, 1, 1).unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(
        CacheLimits::new(Duration::from_secs(1), (1 << 32) + 1, 1).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

/// One-shot and streaming open give the same answer for a malformed body: the key is
/// looked for first (fuzz: a header naming a key the store lacks, body too short).
#[test]
fn a_malformed_body_gets_the_same_answer_one_shot_and_streaming() {
    let (a, b) = (new_store(), new_store());
    let env = small_sealer(aes_kek(&a, "elsewhere")).seal(&data(3 * CS)).unwrap();
    let (header_len, _) = chunks(&env);
    for cut in [header_len, header_len + 5, env.len() - 1] {
        let bad = &env[..cut];
        for (store, want) in [(&b, ErrorKind::NotFound), (&a, ErrorKind::DecryptionFailed)] {
            let one_shot = Opener::new(store).open(bad).unwrap_err().kind();
            let mut sink = Vec::new();
            let streamed = Opener::new(store).open_stream(bad, &mut sink).unwrap_err().kind();
            assert_eq!((one_shot, streamed), (want, want), "cut at {cut}");
        }
    }
}

/// `seal_into` / `open_into` (the Python binding's path): the same envelopes as `seal` /
/// `open` at every chunk boundary, for AES and RSA KEKs; a short or wrong-sized buffer is
/// a typed error; a failed open leaves the buffer zeroed, with no verified prefix in it.
#[test]
fn seal_into_and_open_into_write_caller_buffers() {
    let store = new_store();
    for kek in [aes_kek(&store, "aes"), rsa_kek(&store, "rsa")] {
        let sealer = small_sealer(kek.clone());
        let opener = Opener::new(&kek);
        for len in [0, 1, CS - 1, CS, CS + 1, 3 * CS, 3 * CS + 7] {
            let pt = data(len);
            let mut out = vec![0xEE; sealer.sealed_len(len).unwrap()];
            let n = sealer.seal_into(&pt, &mut out).unwrap();
            assert_eq!(n, out.len(), "sealed_len is exact ({}, {len})", kek.name());
            assert_eq!(opener.plaintext_len(&out).unwrap(), len);
            assert_eq!(&opener.open(&out).unwrap()[..], &pt[..]);
            let mut back = vec![0xEE; len];
            assert_eq!(opener.open_into(&out, &mut back).unwrap(), len);
            assert_eq!(back, pt);
            let mut short = vec![0; n - 1];
            let e = sealer.seal_into(&pt, &mut short).unwrap_err();
            assert_eq!(e.invalid_reason(), Some(hsmkit::InvalidReason::Length));
            let mut wrong = vec![0xEE; len + 1];
            let e = opener.open_into(&out, &mut wrong).unwrap_err();
            assert_eq!(e.invalid_reason(), Some(hsmkit::InvalidReason::Length));
            assert!(wrong.iter().all(|b| *b == 0), "what the buffer held is wiped on every error");
            // A longer buffer: the envelope is its prefix, the rest untouched.
            let mut long = vec![0xEE; n + 9];
            assert_eq!(sealer.seal_into(&pt, &mut long).unwrap(), n);
            assert!(long[n..].iter().all(|b| *b == 0xEE));
            assert_eq!(&opener.open(&long[..n]).unwrap()[..], &pt[..]);
        }
        let mut held = vec![0xEE; 10];
        assert_eq!(
            opener.open_into(b"not an envelope", &mut held).unwrap_err().kind(),
            ErrorKind::DecryptionFailed
        );
        assert!(held.iter().all(|b| *b == 0), "a malformed envelope wipes the buffer too");
        // The last chunk tampered: the first two chunks verified and were written, and
        // are wiped again before the error returns.
        let pt = data(3 * CS);
        let mut env = sealer.seal(&pt).unwrap();
        let last = env.len() - 1;
        env[last] ^= 1;
        let mut out = vec![0xEE; 3 * CS];
        assert_eq!(opener.open_into(&env, &mut out).unwrap_err().kind(), ErrorKind::DecryptionFailed);
        assert!(out.iter().all(|b| *b == 0), "a verified prefix was left in the buffer");
    }
    assert_eq!(
        Opener::new(&store).plaintext_len(b"not an envelope").unwrap_err().kind(),
        ErrorKind::DecryptionFailed
    );
}

/// The opener's data-key cache: an envelope whose recipient entry was unwrapped before
/// opens without the KEK (here disabled meanwhile, as documented) within the limits;
/// the header is still checked; clones share the cache; the context still binds.
#[test]
fn opener_data_key_cache_skips_the_kek_within_limits_and_still_checks_headers() {
    let store = new_store();
    let kek = aes_kek(&store, "kek");
    let sealer = small_sealer(kek)
        .with_data_key_cache(CacheLimits::new(Duration::from_secs(600), 3, 1 << 20).unwrap());
    // Envelopes 0-2 share one data key, 3-4 the next.
    let envs: Vec<Vec<u8>> =
        (0..5).map(|i| sealer.seal(format!("message {i}").as_bytes()).unwrap()).collect();
    let opener =
        store.opener().with_data_key_cache(CacheLimits::new(Duration::from_secs(600), 3, 1 << 20).unwrap());
    let opens = |o: &Opener<'_>, i: usize| o.open(&envs[i]).map(|p| p.into_unwiped_vec());
    assert_eq!(opens(&opener, 0).unwrap(), b"message 0");
    store.update_key("kek", 1, &KeyUpdate::enabled(false)).unwrap();
    assert_eq!(store.unseal(&envs[1], &ctx(&[])).unwrap_err().kind(), ErrorKind::PermissionDenied, "control");
    assert_eq!(opens(&opener, 1).unwrap(), b"message 1", "from the cache");
    // Another message id under the same recipient entry: the derived keys differ, the
    // commitment fails, whatever the cache holds.
    // With the cache the header fails and the KEK is asked, which (disabled) refuses, as
    // it would uncached: the cache changes no answer.
    let mut forged = envs[2].clone();
    forged[6] ^= 1;
    assert_eq!(opener.open(&forged).unwrap_err().kind(), ErrorKind::PermissionDenied);
    assert_eq!(store.unseal(&forged, &ctx(&[])).unwrap_err().kind(), ErrorKind::PermissionDenied);
    // The forgery was not counted: the third use opens; a fourth finds the entry gone,
    // asks the KEK, and is refused.
    assert_eq!(opens(&opener, 2).unwrap(), b"message 2");
    assert_eq!(opens(&opener, 2).unwrap_err().kind(), ErrorKind::PermissionDenied);
    assert_eq!(opens(&opener, 3).unwrap_err().kind(), ErrorKind::PermissionDenied, "never cached");
    store.update_key("kek", 1, &KeyUpdate::enabled(true)).unwrap();
    assert_eq!(opens(&opener, 3).unwrap(), b"message 3");
    store.update_key("kek", 1, &KeyUpdate::enabled(false)).unwrap();
    assert_eq!(opens(&opener.clone(), 4).unwrap(), b"message 4", "clones share the cache");
    let wrong = opener.clone().with_context(ctx(&[("tenant", "b")]));
    assert_eq!(wrong.open(&envs[4]).unwrap_err().kind(), ErrorKind::DecryptionFailed);
    // Bytes: a message larger than max_bytes is never cached.
    store.update_key("kek", 1, &KeyUpdate::enabled(true)).unwrap();
    let big = small_sealer(store.get_key("kek").unwrap()).seal(&[7; 300]).unwrap();
    let small_limit =
        store.opener().with_data_key_cache(CacheLimits::new(Duration::from_secs(600), 10, 100).unwrap());
    assert_eq!(small_limit.open(&big).unwrap().len(), 300);
    store.update_key("kek", 1, &KeyUpdate::enabled(false)).unwrap();
    assert_eq!(small_limit.open(&big).unwrap_err().kind(), ErrorKind::PermissionDenied);
}

// ---------------------------------------------------------------- files and I/O

#[test]
fn files_are_written_whole_or_not_at_all() {
    let store = new_store();
    let sealer = small_sealer(aes_kek(&store, "kek"));
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("plain.bin");
    let sealed = dir.path().join("plain.bin.hkev");
    let out = dir.path().join("out.bin");
    std::fs::write(&src, data(10 * CS + 3)).unwrap();
    assert_eq!(sealer.seal_file(&src, &sealed).unwrap(), u64::try_from(10 * CS + 3).unwrap());
    assert_eq!(Opener::new(&store).open_file(&sealed, &out).unwrap(), u64::try_from(10 * CS + 3).unwrap());
    assert_eq!(std::fs::read(&out).unwrap(), data(10 * CS + 3));

    // Tampered last chunk: nine chunks verify before the failure, yet no output appears
    // and an existing output is left alone.
    let mut env = std::fs::read(&sealed).unwrap();
    let n = env.len();
    env[n - 1] ^= 1;
    let bad = dir.path().join("bad.hkev");
    std::fs::write(&bad, &env).unwrap();
    let fresh = dir.path().join("fresh.bin");
    assert_eq!(Opener::new(&store).open_file(&bad, &fresh).unwrap_err().kind(), ErrorKind::DecryptionFailed);
    assert!(!fresh.exists());
    assert_eq!(Opener::new(&store).open_file(&bad, &out).unwrap_err().kind(), ErrorKind::DecryptionFailed);
    assert_eq!(std::fs::read(&out).unwrap(), data(10 * CS + 3));
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["bad.hkev", "out.bin", "plain.bin", "plain.bin.hkev"], "no temporary files left");

    // Missing input is an I/O error, and still no output.
    let e = sealer.seal_file(&dir.path().join("nope"), &dir.path().join("x")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io);
    assert!(!dir.path().join("x").exists());

    // Rewrap in place.
    let v2 = store.rotate_key("kek").unwrap();
    Rewrapper::new(&store, [Recipient::new(v2).unwrap()], RewrapMode::Replace)
        .unwrap()
        .rewrap_file(&sealed, &sealed)
        .unwrap();
    assert_eq!(EnvelopeHeader::parse(&std::fs::read(&sealed).unwrap()).unwrap().recipients()[0].version, 2);
}

struct FailingReader(usize);
impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.0 == 0 {
            return Err(std::io::Error::other("disk on fire"));
        }
        let n = self.0.min(buf.len());
        buf[..n].fill(7);
        self.0 -= n;
        Ok(n)
    }
}

#[test]
fn stream_errors_are_io_errors() {
    let store = new_store();
    let sealer = small_sealer(aes_kek(&store, "kek"));
    let e = sealer.seal_stream(FailingReader(1000), Vec::new()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io);
    assert!(e.to_string().contains("disk on fire"), "{e}");
    let env = sealer.seal(&data(3 * CS)).unwrap();
    let half = env.len() / 2;
    let e = Opener::new(&store).open_stream(env[..half].chain(FailingReader(0)), Vec::new()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io);
}

#[test]
fn dropped_writer_leaves_an_envelope_that_does_not_open() {
    let store = new_store();
    let sealer = small_sealer(aes_kek(&store, "kek"));
    let mut out = Vec::new();
    {
        let mut w = sealer.writer(&mut out).unwrap();
        w.write_all(&data(5 * CS)).unwrap();
    }
    assert_fails(&store, &out, "unfinished writer");
}

/// `write` may take less than it is given; a caller that stops after any short write and
/// finishes gets an envelope of exactly what was taken. Writes longer than a chunk take the
/// engine's out-of-place path, shorter ones the buffer.
#[test]
fn every_short_write_then_finish_opens_to_what_was_taken() {
    let store = new_store();
    let sealer = small_sealer(aes_kek(&store, "kek"));
    let pt = data(6 * CS + 3);
    for first in [1, CS - 1, CS, CS + 1, 2 * CS, 2 * CS + 1, 5 * CS + 7] {
        for second in [0, 1, CS, 3 * CS + 1] {
            let mut w = sealer.writer(Vec::new()).unwrap();
            let a = w.write(&pt[..first]).unwrap();
            assert!(a >= 1 && a <= first, "{first}: took {a}");
            let end = (a + second).min(pt.len());
            let b = w.write(&pt[a..end]).unwrap();
            let taken = a + b;
            assert_eq!(w.plaintext_len(), u64::try_from(taken).unwrap());
            let env = w.finish().unwrap();
            assert_eq!(&Opener::new(&store).open(&env).unwrap()[..], &pt[..taken], "{first} then {second}");
            // The same chunking as a one-shot seal of those bytes.
            assert_eq!(env.len(), sealer.seal(&pt[..taken]).unwrap().len(), "{first} then {second}");
        }
    }
}

// ---------------------------------------------------------------- properties

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn prop_round_trip(pt in proptest::collection::vec(any::<u8>(), 0..2000),
                       chunk in 256u32..700,
                       ctx_pairs in proptest::collection::btree_map("[a-z]{1,8}", ".{0,12}", 0..4)) {
        let store = new_store();
        let sealer = Sealer::for_key(aes_kek(&store, "kek")).unwrap().with_chunk_size(chunk).unwrap()
            .with_context(ctx_pairs.clone()).unwrap();
        let env = sealer.seal(&pt).unwrap();
        prop_assert_eq!(&store.unseal(&env, &ctx_pairs).unwrap()[..], &pt[..]);
        let h = EnvelopeHeader::parse(&env).unwrap();
        prop_assert_eq!(h.context(), &ctx_pairs);
        prop_assert_eq!(h.chunk_size(), chunk);
    }

    #[test]
    fn prop_any_flip_or_cut_fails(pt in proptest::collection::vec(any::<u8>(), 0..1500),
                                  at in any::<prop::sample::Index>(),
                                  bit in 0u8..8,
                                  cut in any::<prop::sample::Index>()) {
        let store = new_store();
        let env = small_sealer(aes_kek(&store, "kek")).seal(&pt).unwrap();
        let i = at.index(env.len());
        let mut t = env.clone();
        t[i] ^= 1 << bit;
        prop_assert!(store.unseal(&t, &ctx(&[])).is_err());
        let n = cut.index(env.len());
        prop_assert!(store.unseal(&env[..n], &ctx(&[])).is_err());
    }
}

#[test]
fn sealed_len_is_exact() {
    let store = new_store();
    let (a, r) = (aes_kek(&store, "a"), rsa_kek(&store, "r"));
    let sealers = [
        small_sealer(a.clone()),
        Sealer::new([Recipient::new(a.clone()).unwrap(), Recipient::new(r).unwrap()])
            .unwrap()
            .with_context(ctx(&[("tenant", "acme"), ("k", "")]))
            .unwrap(),
        Sealer::new([Recipient::with_algorithm(a, W::A256Kwp).unwrap()]).unwrap(),
    ];
    for s in &sealers {
        for len in [0, 1, CS - 1, CS, CS + 1, 3 * CS, 65536, 65537, 200_000] {
            assert_eq!(s.sealed_len(len).unwrap(), s.seal(&data(len)).unwrap().len(), "{len}");
        }
    }
}
