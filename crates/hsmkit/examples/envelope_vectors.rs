//! Made `tests/vectors/envelope/v1.json` (suite 1) and `v1-suite2.json` (suite 2, with the
//! KEKs of v1.json) once; the files are frozen and this stays to show how. Running it
//! again without `--keks` makes different RSA keys and so a different file: do not commit
//! that unless the format changes.
//!
//! `cargo run -p hsmkit --example envelope_vectors -- OUT.json [--suite N] [--keks FROM.json]`

use std::error::Error;

use hsmkit::envelope::{EncryptionContext, Recipient, Sealer, Suite, hazmat};
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
    let usage = "usage: envelope_vectors OUT.json [--suite N] [--keks FROM.json]";
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = args.first().ok_or(usage)?.clone();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1));
    let suite = match flag("--suite") {
        Some(n) => Suite::from_id(n.parse()?).ok_or("unknown suite")?,
        None => Suite::DEFAULT,
    };
    let store = Store::new(hsmkit_soft::SoftBackend::new());
    let wrap_ops = KeyAttributes::with_ops(&[KeyOp::WrapKey, KeyOp::UnwrapKey]);
    let keks = match flag("--keks") {
        Some(path) => import_keks(&store, path, &wrap_ops)?,
        None => make_keks(&store, &wrap_ops)?,
    };

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
        let sealer = Sealer::new(recipients)?
            .with_context(context.clone())?
            .with_chunk_size(case.chunk_size)?
            .with_suite(suite);
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
        "description": format!("hsmkit envelope format version 1, {suite} (docs/envelope-format.md). Frozen: generated once by crates/hsmkit/examples/envelope_vectors.rs."),
        "suite": suite.id(),
        "keks": keks,
        "vectors": vectors,
    });
    std::fs::write(&out, serde_json::to_string_pretty(&doc)? + "\n")?;
    println!("wrote {} vectors to {out}", CASES.len());
    Ok(())
}

/// The KEKs of an existing vectors file, imported as they are.
fn import_keks(store: &Store, path: &str, ops: &KeyAttributes) -> Result<Vec<Value>, Box<dyn Error>> {
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let keks = doc.get("keks").and_then(Value::as_array).ok_or("no keks")?.clone();
    for k in &keks {
        let text = |field: &'static str| k.get(field).and_then(Value::as_str).ok_or(field);
        let material = match text("type")? {
            "aes" => KeyMaterial::aes(&unhex(text("key_hex")?)?)?,
            _ => KeyMaterial::from_pem(text("pkcs8_pem")?)?,
        };
        let name = text("name")?;
        if k.get("version").and_then(Value::as_u64) == Some(1) {
            store.import_key(name, material, ops.clone())?;
        } else {
            store.import_key_version(name, material, ops.clone())?;
        }
    }
    Ok(keks)
}

fn unhex(s: &str) -> Result<Vec<u8>, Box<dyn Error>> {
    (0..s.len()).step_by(2).map(|i| Ok(u8::from_str_radix(s.get(i..i + 2).ok_or("odd hex")?, 16)?)).collect()
}

/// New KEKs: AES from fixed patterns, RSA-2048 generated.
fn make_keks(store: &Store, wrap_ops: &KeyAttributes) -> Result<Vec<Value>, Box<dyn Error>> {
    let mut keks: Vec<Value> = Vec::new();
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
    store.import_key("rsa2048", KeyMaterial::from_pem(&pem)?, wrap_ops.clone())?;
    keks.push(json!({"name": "rsa2048", "version": 1, "type": "rsa", "pkcs8_pem": pem.as_str()}));

    Ok(keks)
}
