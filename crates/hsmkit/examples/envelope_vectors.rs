//! Made `tests/vectors/envelope/v1.json` once; the file is frozen and this stays to show
//! how. Running it again makes different RSA keys and so a different file: do not commit
//! that unless the format version changes.
//!
//! `cargo run -p hsmkit --example envelope_vectors -- OUT.json`

use std::error::Error;

use hsmkit::envelope::{EncryptionContext, Recipient, Sealer, hazmat};
use hsmkit::{KeyAttributes, KeyMaterial, KeyOp, KeySpec, KeyWrapAlgorithm as W, Store};
use serde_json::{Value, json};

struct Case {
    name: &'static str,
    len: usize,
    chunk_size: u32,
    context: &'static [(&'static str, &'static str)],
    recipients: &'static [(&'static str, u32, W)],
}

const CASES: &[Case] = &[
    Case { name: "empty", len: 0, chunk_size: 256, context: &[], recipients: &[("aes256", 1, W::A256Kw)] },
    Case {
        name: "one-byte-context",
        len: 1,
        chunk_size: 256,
        context: &[("tenant", "a")],
        recipients: &[("aes128", 1, W::A128Kw)],
    },
    Case {
        name: "chunk-minus-one-kwp",
        len: 255,
        chunk_size: 256,
        context: &[],
        recipients: &[("aes256", 1, W::A256Kwp)],
    },
    Case {
        name: "exact-chunk-v2",
        len: 256,
        chunk_size: 256,
        context: &[],
        recipients: &[("aes192", 2, W::A192Kw)],
    },
    Case {
        name: "chunk-plus-one-two-recipients",
        len: 257,
        chunk_size: 256,
        context: &[("purpose", "backup"), ("tenant", "b")],
        recipients: &[("aes256", 1, W::A256Kw), ("rsa2048", 1, W::RsaOaep256)],
    },
    Case {
        name: "multi-chunk-rsa-oaep-sha1",
        len: 3000,
        chunk_size: 1024,
        context: &[("a", ""), ("\u{e9}t\u{e9}", "\u{2603}")],
        recipients: &[("rsa2048", 1, W::RsaOaep)],
    },
];

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| u8::try_from(i % 251).unwrap_or(0).wrapping_mul(7).wrapping_add(seed)).collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn main() -> Result<(), Box<dyn Error>> {
    let out = std::env::args().nth(1).ok_or("usage: envelope_vectors OUT.json")?;
    let store = Store::new(hsmkit_soft::SoftBackend::new());
    let mut keks: Vec<Value> = Vec::new();
    let wrap_ops = KeyAttributes::with_ops(&[KeyOp::WrapKey, KeyOp::UnwrapKey]);
    for (name, len, seed) in [("aes128", 16, 0x10u8), ("aes192", 24, 0x20), ("aes256", 32, 0x30)] {
        let bytes = pattern(len, seed);
        store.import_key(name, KeyMaterial::aes(&bytes)?, wrap_ops.clone())?;
        keks.push(json!({"name": name, "version": 1, "type": "aes", "key_hex": hex(&bytes)}));
    }
    // aes192 version 2, so that a vector names a version other than 1.
    let v2 = pattern(24, 0x21);
    store.import_key_version("aes192", KeyMaterial::aes(&v2)?, wrap_ops.clone())?;
    keks.push(json!({"name": "aes192", "version": 2, "type": "aes", "key_hex": hex(&v2)}));
    let rsa = store.create_key(
        "rsa-gen",
        KeySpec::RSA_2048,
        KeyAttributes { exportable: true, ..KeyAttributes::default() },
    )?;
    let pem = rsa.export()?.to_pkcs8_pem()?;
    store.import_key("rsa2048", KeyMaterial::from_pem(&pem)?, wrap_ops)?;
    keks.push(json!({"name": "rsa2048", "version": 1, "type": "rsa", "pkcs8_pem": pem.as_str()}));

    let mut vectors = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        let seed = u8::try_from(i).unwrap_or(0);
        let recipients = case
            .recipients
            .iter()
            .map(|(name, version, alg)| {
                Recipient::with_algorithm(store.get_key_version(name, *version)?, *alg)
            })
            .collect::<hsmkit::Result<Vec<_>>>()?;
        let context: EncryptionContext =
            case.context.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect();
        let sealer =
            Sealer::new(recipients)?.with_context(context.clone())?.with_chunk_size(case.chunk_size)?;
        let dek: [u8; 32] = pattern(32, 0x40 + seed).try_into().map_err(|_| "dek")?;
        let id: [u8; 32] = pattern(32, 0x80 + seed).try_into().map_err(|_| "id")?;
        let plaintext = pattern(case.len, 0xC0 + seed);
        let envelope = hazmat::seal_with_fixed_secrets(&sealer, &dek, &id, &plaintext)?;
        // RSA-OAEP is randomised: such vectors can be opened but not re-made byte for byte.
        let reproducible = case.recipients.iter().all(|(_, _, a)| !matches!(a, W::RsaOaep | W::RsaOaep256));
        vectors.push(json!({
            "name": case.name,
            "recipients": case.recipients.iter().map(|(n, v, a)| json!({"name": n, "version": v, "alg": a.name()})).collect::<Vec<_>>(),
            "chunk_size": case.chunk_size,
            "context": context,
            "data_key_hex": hex(&dek),
            "message_id_hex": hex(&id),
            "plaintext_hex": hex(&plaintext),
            "envelope_hex": hex(&envelope),
            "reproducible": reproducible,
        }));
    }
    let doc = json!({
        "description": "hsmkit envelope format version 1 (docs/envelope-format.md). Frozen: generated once by crates/hsmkit/examples/envelope_vectors.rs.",
        "keks": keks,
        "vectors": vectors,
    });
    std::fs::write(&out, serde_json::to_string_pretty(&doc)? + "\n")?;
    println!("wrote {} vectors to {out}", CASES.len());
    Ok(())
}
