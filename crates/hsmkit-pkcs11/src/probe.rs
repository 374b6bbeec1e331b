//! What the token can do: its mechanism list, plus a probe of OAEP parameters, since
//! tokens list `CKM_RSA_PKCS_OAEP` but may support only some hashes and no label
//! (SoftHSM2 2.6.1: SHA-1 only, no label).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::Session;
use hsmkit::{
    Algorithm, Capabilities, EncryptionAlgorithm, Error, KeyInfo, KeyOp, KeySpec, Result, SignatureScheme,
    WrapScheme,
};

use crate::context::Token;

/// The token's capabilities, probed once per module and token model.
#[derive(Debug, Clone)]
pub(crate) struct Probe {
    pub(crate) mechanisms: Vec<MechanismType>,
    pub(crate) oaep_sha256: bool,
    pub(crate) oaep_label: bool,
    /// `CKM_AES_KEY_WRAP` passed the RFC 3394 known-answer test.
    pub(crate) kw_ok: bool,
    /// `CKM_AES_KEY_WRAP_PAD` passed the RFC 5649 known-answer tests.
    pub(crate) kwp_ok: bool,
}

/// Probe results by (module path, token manufacturer/model/firmware).
type ProbeCache = Mutex<HashMap<(PathBuf, String), Arc<Probe>>>;
static PROBES: OnceLock<ProbeCache> = OnceLock::new();

impl Probe {
    pub(crate) fn get(token: &Token, module: &std::path::Path) -> Result<Arc<Probe>> {
        let info = token.ctx.get_token_info(token.slot()?).map_err(crate::error::map)?;
        let key = (
            module.to_owned(),
            format!("{}/{}/{:?}", info.manufacturer_id(), info.model(), info.firmware_version()),
        );
        let cache = PROBES.get_or_init(|| Mutex::new(HashMap::new()));
        if let Some(p) = cache.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(p);
        }
        let p = Arc::new(Probe::run(token)?);
        if let Ok(mut m) = cache.lock() {
            m.insert(key, p.clone());
        }
        Ok(p)
    }

    fn run(token: &Token) -> Result<Probe> {
        let mechanisms = token.ctx.get_mechanism_list(token.slot()?).map_err(crate::error::map)?;
        let mut p = Probe { mechanisms, oaep_sha256: false, oaep_label: false, kw_ok: false, kwp_ok: false };
        if p.has(MechanismType::RSA_PKCS_OAEP) && p.has(MechanismType::RSA_PKCS_KEY_PAIR_GEN) {
            let (sha256, label) = token.with_session(|s| Ok::<_, crate::error::OpError>(oaep_probe(s)))?;
            p.oaep_sha256 = sha256;
            p.oaep_label = label;
        }
        if p.has(MechanismType::AES_KEY_WRAP) {
            p.kw_ok = token
                .with_session(|s| Ok::<_, crate::error::OpError>(kat(s, &KW_KAT, &Mechanism::AesKeyWrap)))?;
        }
        if p.has(MechanismType::AES_KEY_WRAP_PAD) {
            p.kwp_ok = token.with_session(|s| {
                Ok::<_, crate::error::OpError>(KWP_KATS.iter().all(|k| kat(s, k, &Mechanism::AesKeyWrapPad)))
            })?;
        }
        tracing::debug!(target: "hsmkit::pkcs11", token = %token.label, oaep_sha256 = p.oaep_sha256,
            oaep_label = p.oaep_label, kw = p.kw_ok, kwp = p.kwp_ok, "probed");
        Ok(p)
    }

    pub(crate) fn has(&self, m: MechanismType) -> bool {
        self.mechanisms.contains(&m)
    }

    pub(crate) fn oaep_ok(&self, alg: EncryptionAlgorithm, label: &[u8]) -> bool {
        let hash_ok = match alg {
            EncryptionAlgorithm::RsaOaep => self.has(MechanismType::RSA_PKCS_OAEP),
            _ => self.oaep_sha256,
        };
        hash_ok && (label.is_empty() || self.oaep_label)
    }

    /// Whether the token can do `op` with `alg`; an Unsupported error naming the
    /// mechanism if not. Public operations run in software and are always possible.
    pub(crate) fn check(&self, op: KeyOp, alg: Algorithm) -> Result<()> {
        let missing = |name: &str| Err(Error::unsupported(format!("{alg}: the token has no {name}")));
        let failed_kat = |name: &str| {
            Err(Error::unsupported(format!(
                "{alg}: the token's {name} fails the standard's known-answer test, so hsmkit does not use it"
            )))
        };
        match (op, alg) {
            (KeyOp::Sign, Algorithm::Signature(a)) => {
                let (m, name) = match a.scheme() {
                    SignatureScheme::RsaPkcs1v15 => (MechanismType::RSA_PKCS, "CKM_RSA_PKCS"),
                    SignatureScheme::RsaPss => (MechanismType::RSA_PKCS_PSS, "CKM_RSA_PKCS_PSS"),
                    _ => (MechanismType::ECDSA, "CKM_ECDSA"),
                };
                if self.has(m) { Ok(()) } else { missing(name) }
            }
            (KeyOp::Decrypt, Algorithm::Encryption(e)) => self.check_oaep(e, &[]),
            (KeyOp::WrapKey | KeyOp::UnwrapKey, Algorithm::KeyWrap(w)) => match w.scheme() {
                WrapScheme::AesKw(_) => match (self.kw_ok, self.has(MechanismType::AES_KEY_WRAP)) {
                    (true, _) => Ok(()),
                    (false, true) => failed_kat("CKM_AES_KEY_WRAP (RFC 3394)"),
                    (false, false) => missing("CKM_AES_KEY_WRAP"),
                },
                WrapScheme::AesKwp(_) => match (self.kwp_ok, self.has(MechanismType::AES_KEY_WRAP_PAD)) {
                    (true, _) => Ok(()),
                    (false, true) => failed_kat("CKM_AES_KEY_WRAP_PAD (RFC 5649)"),
                    (false, false) => missing("CKM_AES_KEY_WRAP_PAD"),
                },
                WrapScheme::RsaOaep(e) if op == KeyOp::UnwrapKey => self.check_oaep(e, &[]),
                _ => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// Whether OAEP decryption with these parameters works on the token.
    pub(crate) fn check_oaep(&self, alg: EncryptionAlgorithm, label: &[u8]) -> Result<()> {
        if self.oaep_ok(alg, label) {
            return Ok(());
        }
        let params = match alg {
            EncryptionAlgorithm::RsaOaep => "SHA-1/MGF1-SHA-1",
            _ => "SHA-256/MGF1-SHA-256",
        };
        let label = if label.is_empty() { "" } else { " and a label" };
        Err(Error::unsupported(format!("{alg}: this token has no CKM_RSA_PKCS_OAEP with {params}{label}")))
    }

    pub(crate) fn capabilities(&self) -> Capabilities {
        let all = Capabilities::all();
        let can_generate = |spec: &KeySpec| match spec {
            KeySpec::Rsa { .. } => self.has(MechanismType::RSA_PKCS_KEY_PAIR_GEN),
            KeySpec::Ec(_) => self.has(MechanismType::ECC_KEY_PAIR_GEN),
            _ => self.has(MechanismType::AES_KEY_GEN),
        };
        let ok = |op, alg| self.check(op, alg).is_ok();
        Capabilities {
            generate: all.generate.into_iter().filter(|s| can_generate(s)).collect(),
            import: true,
            export: false,
            sign: all.sign.into_iter().filter(|a| ok(KeyOp::Sign, Algorithm::Signature(*a))).collect(),
            decrypt: all
                .decrypt
                .into_iter()
                .filter(|a| ok(KeyOp::Decrypt, Algorithm::Encryption(*a)))
                .collect(),
            wrap: all.wrap.into_iter().filter(|a| ok(KeyOp::WrapKey, Algorithm::KeyWrap(*a))).collect(),
            unwrap: all.unwrap.into_iter().filter(|a| ok(KeyOp::UnwrapKey, Algorithm::KeyWrap(*a))).collect(),
            oaep_label: self.oaep_label,
            engine: "pkcs11",
            metadata: "token",
            notes: Vec::new(),
        }
    }
}

pub(crate) fn oaep_params(alg: EncryptionAlgorithm, label: &[u8]) -> PkcsOaepParams<'_> {
    let source =
        if label.is_empty() { PkcsOaepSource::empty() } else { PkcsOaepSource::data_specified(label) };
    match alg {
        EncryptionAlgorithm::RsaOaep => {
            PkcsOaepParams::new(MechanismType::SHA1, PkcsMgfType::MGF1_SHA1, source)
        }
        _ => PkcsOaepParams::new(MechanismType::SHA256, PkcsMgfType::MGF1_SHA256, source),
    }
}

/// Makes a throw-away session key pair and checks which OAEP variants decrypt.
fn oaep_probe(s: &Session) -> (bool, bool) {
    let public = [
        Attribute::Token(false),
        Attribute::ModulusBits(1024u64.into()),
        Attribute::PublicExponent(vec![1, 0, 1]),
        Attribute::Encrypt(true),
    ];
    let private = [
        Attribute::Token(false),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Decrypt(true),
    ];
    let Ok((pub_h, priv_h)) = s.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private) else {
        return (false, false);
    };
    let try_decrypt = |alg: EncryptionAlgorithm, label: &[u8]| -> bool {
        let Ok(Some(Ok(pk))) = crate::export::read_public(s, pub_h) else { return false };
        let info = KeyInfo {
            name: "probe".into(),
            version: 1,
            spec: pk.spec(),
            attributes: hsmkit::KeyAttributes::default(),
            has_private: false,
            created: std::time::SystemTime::now(),
            updated: std::time::SystemTime::now(),
            binding: hsmkit::KeyBinding::default(),
        };
        let Ok(ops) = hsmkit_soft::public_key_ops(info, &pk) else { return false };
        let Ok(ct) = ops.encrypt(alg, b"probe", label) else { return false };
        let mech = Mechanism::RsaPkcsOaep(oaep_params(alg, label));
        matches!(s.decrypt(&mech, priv_h, &ct), Ok(pt) if pt == b"probe")
    };
    let sha256 = try_decrypt(EncryptionAlgorithm::RsaOaep256, &[]);
    let label = try_decrypt(EncryptionAlgorithm::RsaOaep, b"label");
    destroy(s, &[pub_h, priv_h]);
    (sha256, label)
}

fn destroy(s: &Session, handles: &[ObjectHandle]) {
    for h in handles {
        let _ = s.destroy_object(*h);
    }
}

/// A key-wrap known-answer test: KEK, key data, wrapped form.
struct Kat {
    kek: &'static str,
    data: &'static str,
    wrapped: &'static str,
}

/// RFC 3394 section 4.1.
const KW_KAT: Kat = Kat {
    kek: "000102030405060708090A0B0C0D0E0F",
    data: "00112233445566778899AABBCCDDEEFF",
    wrapped: "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5",
};

/// RFC 5649 section 6: a 20-byte and a 7-byte key (the second takes the one-block path).
const KWP_KATS: [Kat; 2] = [
    Kat {
        kek: "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8",
        data: "c37b7e6492584340bed12207808941155068f738",
        wrapped: "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a",
    },
    Kat {
        kek: "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8",
        data: "466f7250617369",
        wrapped: "afbeb0f07dfbf5419200f2ccb50bb24f",
    },
];

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| s.get(2 * i..2 * i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

/// Wraps and unwraps a known key with session objects and compares with the standard's
/// answer. Tokens whose mechanism disagrees do not get the capability: hsmkit will not
/// produce non-standard wrapped keys under a standard name.
fn kat(s: &Session, k: &Kat, mech: &Mechanism<'_>) -> bool {
    use cryptoki::object::{AttributeType, KeyType, ObjectClass};
    let secret = |value: Vec<u8>, key_type: KeyType, kek: bool| {
        s.create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(key_type),
            Attribute::Token(false),
            Attribute::Sensitive(false),
            Attribute::Extractable(!kek),
            Attribute::Wrap(kek),
            Attribute::Unwrap(kek),
            Attribute::Value(value),
        ])
    };
    let Ok(kek) = secret(unhex(k.kek), KeyType::AES, true) else { return false };
    let Ok(data) = secret(unhex(k.data), KeyType::GENERIC_SECRET, false) else {
        destroy(s, &[kek]);
        return false;
    };
    let wrapped_ok = matches!(s.wrap_key(mech, kek, data), Ok(w) if w == unhex(k.wrapped));
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::Token(false),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
    ];
    let unwrapped_ok = match s.unwrap_key(mech, kek, &unhex(k.wrapped), &template) {
        Ok(h) => {
            let v = s.get_attributes(h, &[AttributeType::Value]);
            destroy(s, &[h]);
            matches!(v.as_deref(), Ok([Attribute::Value(v)]) if *v == unhex(k.data))
        }
        Err(_) => false,
    };
    destroy(s, &[kek, data]);
    wrapped_ok && unwrapped_ok
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    /// The known answers the probe holds tokens to are themselves right: the software
    /// engine (which passes Wycheproof's KW and KWP sets) gives the same bytes.
    #[test]
    fn kat_constants_match_the_software_engine() {
        let store = hsmkit::Store::new(hsmkit_soft::SoftBackend::new());
        let cases = [(&KW_KAT, false), (&KWP_KATS[0], true), (&KWP_KATS[1], true)];
        for (i, (k, padded)) in cases.into_iter().enumerate() {
            let kek = store
                .import_key(
                    &format!("kat{i}"),
                    hsmkit::KeyMaterial::aes(&unhex(k.kek)).unwrap(),
                    Default::default(),
                )
                .unwrap();
            let alg = match (kek.spec(), padded) {
                (hsmkit::KeySpec::Aes(hsmkit::AesSize::Aes128), false) => hsmkit::KeyWrapAlgorithm::A128Kw,
                (hsmkit::KeySpec::Aes(hsmkit::AesSize::Aes192), true) => hsmkit::KeyWrapAlgorithm::A192Kwp,
                other => panic!("unexpected {other:?}"),
            };
            assert_eq!(kek.wrap_key(alg, &unhex(k.data)).unwrap(), unhex(k.wrapped), "KAT {i}");
        }
    }
}
