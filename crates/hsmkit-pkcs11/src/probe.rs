//! What the token can do: its mechanism list, plus probes of what the list cannot say.
//! Tokens list `CKM_RSA_PKCS_OAEP` but may support only some hashes, no label, or only
//! `C_Decrypt` and not `C_UnwrapKey` with it; they list `CKM_AES_KEY_WRAP` with
//! non-standard output; and they may ignore `CKA_WRAP_TEMPLATE`. Each of these is probed
//! separately with throw-away objects, so a capability claims exactly what was tested.
//!
//! SoftHSM2 2.6.1, as probed: OAEP `C_Decrypt` with SHA-1 only and no label;
//! `C_UnwrapKey` with OAEP SHA-1 (not SHA-256); `CKM_AES_KEY_WRAP` passes its known
//! answer, `CKM_AES_KEY_WRAP_PAD` does not (its wrap output differs from RFC 5649, its
//! unwrap is right); `CKA_WRAP_TEMPLATE` enforced.
//!
//! Probing generates an RSA-2048 key pair, so results are cached: in the process, and
//! in a per-user JSON file (see [`cache_file`]) keyed by module path and the token's
//! manufacturer, model, firmware and serial. `HSMKIT_PROBE_CACHE=off` turns the file off.

use hsmkit::{InvalidReason, UnsupportedReason};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use cryptoki::error::Error as CkError;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use hsmkit::{
    Algorithm, Capabilities, EcCurve, EncryptionAlgorithm, Error, KeyOp, KeySpec, Result, SignatureAlgorithm,
    SignatureScheme, WrapScheme,
};

use crate::context::Token;
use crate::error::OpError;

/// The label of objects the probe has to make as token objects (on tokens that refuse
/// session objects). hsmkit key names never start with '.', so it names no key.
pub(crate) const PROBE_LABEL: &str = ".hsmkit-probe";

/// Which `CKM_RSA_PKCS_OAEP` variants work, each probed on its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Oaep {
    /// `C_Decrypt`, SHA-1/MGF1-SHA-1, no label.
    pub(crate) sha1: bool,
    /// `C_Decrypt`, SHA-256/MGF1-SHA-256, no label.
    pub(crate) sha256: bool,
    /// `C_Decrypt`, SHA-1/MGF1-SHA-1, with a label.
    pub(crate) sha1_label: bool,
    /// `C_Decrypt`, SHA-256/MGF1-SHA-256, with a label.
    pub(crate) sha256_label: bool,
    /// `C_UnwrapKey`, SHA-1/MGF1-SHA-1, no label.
    pub(crate) unwrap_sha1: bool,
    /// `C_UnwrapKey`, SHA-256/MGF1-SHA-256, no label.
    pub(crate) unwrap_sha256: bool,
}

impl Oaep {
    /// Whether `C_Decrypt` works with these parameters.
    pub(crate) fn decrypt(&self, alg: EncryptionAlgorithm, label: bool) -> bool {
        match (alg, label) {
            (EncryptionAlgorithm::RsaOaep, false) => self.sha1,
            (EncryptionAlgorithm::RsaOaep, true) => self.sha1_label,
            (_, false) => self.sha256,
            (_, true) => self.sha256_label,
        }
    }

    /// Whether `C_UnwrapKey` works with these parameters (no label).
    pub(crate) fn unwrap(&self, alg: EncryptionAlgorithm) -> bool {
        match alg {
            EncryptionAlgorithm::RsaOaep => self.unwrap_sha1,
            _ => self.unwrap_sha256,
        }
    }
}

/// The token's capabilities, probed once per module and token (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Probe {
    pub(crate) mechanisms: Vec<MechanismType>,
    pub(crate) oaep: Oaep,
    /// `CKM_AES_KEY_WRAP` passed the RFC 3394 known-answer test.
    pub(crate) kw_ok: bool,
    /// `CKM_AES_KEY_WRAP_PAD` passed the RFC 5649 known-answer tests.
    pub(crate) kwp_ok: bool,
    /// The token enforces `CKA_WRAP_TEMPLATE`: a KEK whose wrap template requires
    /// `CKA_SENSITIVE=false` refused to wrap a sensitive key and wrapped a non-sensitive
    /// one. Without it, hsmkit's AES KEKs can be used (by anyone with the PIN) to wrap
    /// other applications' extractable sensitive keys and unwrap them readable.
    pub(crate) kek_templates: bool,
    /// `C_GenerateKey` made a throw-away AES-128 key (tpm2-pkcs11 lists
    /// `CKM_AES_KEY_GEN` but does not implement it).
    pub(crate) aes_gen: bool,
    /// Per curve of [`EcCurve::ALL`]: `C_GenerateKeyPair` made a throw-away key pair.
    pub(crate) ec_gen: [bool; CURVES],
    /// Per curve of [`EcCurve::ALL`]: `C_Sign` with `CKM_ECDSA` worked with that key
    /// (tpm2-pkcs11 fails on P-521 keys with CKR_HOST_MEMORY).
    pub(crate) ecdsa: [bool; CURVES],
    /// `C_GenerateKeyPair` with `CKM_EC_EDWARDS_KEY_PAIR_GEN` made an Ed25519 key pair
    /// whose public key reads back.
    pub(crate) ed25519_gen: bool,
    /// `C_Sign` with `CKM_EDDSA` (pure Ed25519) made a signature the software engine
    /// verifies with that public key.
    pub(crate) eddsa: bool,
    /// `C_GenerateKey` with `CKM_GENERIC_SECRET_KEY_GEN` made a 512-bit secret.
    pub(crate) hmac_gen: bool,
    /// Per HS256/HS384/HS512: `C_Sign` with `CKM_SHA*_HMAC` gave the software engine's MAC
    /// for a known key, and `C_Verify` took it and refused a changed one.
    pub(crate) hmac: [bool; 3],
    /// `C_GetMechanismInfo` key sizes (min, max) of `CKM_RSA_PKCS_KEY_PAIR_GEN` (bits),
    /// `CKM_EC_KEY_PAIR_GEN` (bits) and `CKM_AES_KEY_GEN` (bytes); (0, 0) if not said.
    pub(crate) rsa_bits: (u64, u64),
    pub(crate) ec_bits: (u64, u64),
    pub(crate) aes_bytes: (u64, u64),
    /// `C_CreateObject` took a throw-away AES key, RSA private key, EC private key and EC
    /// public key: what import needs (tpm2-pkcs11 takes RSA public keys only).
    pub(crate) import_aes: bool,
    pub(crate) import_rsa: bool,
    pub(crate) import_ec: bool,
    /// The token refused an RSA key pair with CKA_SIGN/CKA_VERIFY set to false and took
    /// it without them: its keys get every usage flag they can have.
    pub(crate) usage_defaults: bool,
}

/// How many curves [`EcCurve::ALL`] has (the per-curve probe flags).
pub(crate) const CURVES: usize = 4;
const _: () = assert!(EcCurve::ALL.len() == CURVES);

/// The HS* algorithms in the order of [`Probe::hmac`].
const HMAC_ALGS: [SignatureAlgorithm; 3] =
    [SignatureAlgorithm::Hs256, SignatureAlgorithm::Hs384, SignatureAlgorithm::Hs512];

/// Whether `value` is within a mechanism's (min, max) key size; (0, 0) says nothing.
fn in_range((min, max): (u64, u64), value: u64) -> bool {
    max == 0 || (min..=max).contains(&value)
}

/// The flag of `curve` in a per-curve array (in [`EcCurve::ALL`] order).
fn curve_flag(flags: &[bool; CURVES], curve: EcCurve) -> bool {
    EcCurve::ALL.iter().position(|c| *c == curve).and_then(|i| flags.get(i)).copied().unwrap_or(false)
}

/// The curve's size as PKCS#11 mechanism info gives it (bits of the order).
fn curve_bits(c: EcCurve) -> u64 {
    match c {
        EcCurve::P256 | EcCurve::P256K => 256,
        EcCurve::P384 => 384,
        EcCurve::P521 => 521,
    }
}

/// Where a probe result came from (for tests and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// Probed now, on the token.
    Ran,
    /// This process probed the token before.
    Memory,
    /// The per-user cache file.
    Disk,
}

/// Probe results by [`cache_key`].
type ProbeCache = Mutex<HashMap<String, Arc<Probe>>>;
static PROBES: OnceLock<ProbeCache> = OnceLock::new();

/// Serialises probe runs and cache-file writes in the process.
static PROBE_LOCK: Mutex<()> = Mutex::new(());

fn field(s: &str) -> &str {
    s.trim_end_matches([' ', '\0'])
}

/// Identifies a token for the cache: module path, manufacturer, model, firmware, serial.
fn cache_key(token: &Token, module: &Path) -> Result<String> {
    let info = token.ctx.get_token_info(token.slot()?).map_err(crate::error::map)?;
    let fw = info.firmware_version();
    Ok(format!(
        "{}|{}|{}|{}.{}|{}",
        module.display(),
        field(info.manufacturer_id()),
        field(info.model()),
        fw.major(),
        fw.minor(),
        field(info.serial_number())
    ))
}

impl Probe {
    /// The token's probe: from this process's cache, the per-user cache file, or a run.
    pub(crate) fn get(token: &Token, module: &Path) -> Result<Arc<Probe>> {
        let file = if std::env::var_os("HSMKIT_PROBE_CACHE").is_some_and(|v| v == "off") {
            None
        } else {
            cache_file()
        };
        Self::lookup(token, module, file.as_deref()).map(|(p, _)| p)
    }

    /// [`Probe::get`] with the cache file given (`None`: in-process cache only).
    pub(crate) fn lookup(token: &Token, module: &Path, file: Option<&Path>) -> Result<(Arc<Probe>, Source)> {
        let key = cache_key(token, module)?;
        let cache = PROBES.get_or_init(|| Mutex::new(HashMap::new()));
        if let Some(p) = cache.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok((p, Source::Memory));
        }
        let _one = PROBE_LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(p) = cache.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok((p, Source::Memory));
        }
        let (p, source) = match file.and_then(|f| disk::load(f, &key)) {
            Some(p) => (p, Source::Disk),
            None => {
                let p = Probe::run(token)?;
                if let Some(f) = file {
                    disk::store(f, &key, &p);
                }
                (p, Source::Ran)
            }
        };
        tracing::debug!(target: "hsmkit::pkcs11", token = %token.label, ?source, probe = ?p, "token capabilities");
        let p = Arc::new(p);
        if let Ok(mut m) = cache.lock() {
            m.insert(key, p.clone());
        }
        Ok((p, source))
    }

    /// Forgets this process's probe results (tests of the cache file).
    #[cfg(test)]
    pub(crate) fn forget_in_process() {
        if let Some(Ok(mut m)) = PROBES.get().map(Mutex::lock) {
            m.clear();
        }
    }

    fn run(token: &Token) -> Result<Probe> {
        let mechanisms = token.ctx.get_mechanism_list(token.slot()?).map_err(crate::error::map)?;
        let mut p = Probe { mechanisms, ..Probe::default() };
        // Token objects the probe may have to make are changes to token objects.
        let _g = token.write_guard()?;
        // Leftovers of a probe that crashed before it could clean up.
        if let Err(e) = token.with_session(remove_leftovers) {
            tracing::warn!(target: "hsmkit::pkcs11", token = %token.label, "leftover probe objects: {e}");
        }
        let range = |m: MechanismType| {
            token.slot().ok().and_then(|slot| token.ctx.get_mechanism_info(slot, m).ok()).map_or(
                (0, 0),
                |i| {
                    (
                        u64::try_from(i.min_key_size()).unwrap_or(u64::MAX),
                        u64::try_from(i.max_key_size()).unwrap_or(u64::MAX),
                    )
                },
            )
        };
        p.rsa_bits = range(MechanismType::RSA_PKCS_KEY_PAIR_GEN);
        p.ec_bits = range(MechanismType::ECC_KEY_PAIR_GEN);
        p.aes_bytes = range(MechanismType::AES_KEY_GEN);
        // Each probe that runs operations gets a session of its own, closed after it: a
        // failed operation can leave the session's operation active (tpm2-pkcs11 after
        // an OAEP label it cannot take), and a pooled session must not inherit that.
        if p.has(MechanismType::RSA_PKCS_OAEP) && p.has(MechanismType::RSA_PKCS_KEY_PAIR_GEN) {
            (p.oaep, p.usage_defaults) =
                token.with_fresh_session(|s| Ok::<_, crate::error::OpError>(oaep_probe(s)))?;
        }
        if p.has(MechanismType::AES_KEY_GEN) {
            p.aes_gen = token.with_fresh_session(|s| Ok::<_, crate::error::OpError>(aes_gen_probe(s)))?;
        }
        if p.has(MechanismType::ECC_KEY_PAIR_GEN) {
            for (i, &c) in EcCurve::ALL.iter().enumerate() {
                if in_range(p.ec_bits, curve_bits(c)) {
                    let sign = p.has(MechanismType::ECDSA);
                    let (made, signed) = token
                        .with_fresh_session(|s| Ok::<_, crate::error::OpError>(ecdsa_probe(s, c, sign)))?;
                    if let (Some(g), Some(e)) = (p.ec_gen.get_mut(i), p.ecdsa.get_mut(i)) {
                        (*g, *e) = (made, signed);
                    }
                }
            }
        }
        if p.has(MechanismType::ECC_EDWARDS_KEY_PAIR_GEN) {
            let sign = p.has(MechanismType::EDDSA);
            (p.ed25519_gen, p.eddsa) =
                token.with_fresh_session(|s| Ok::<_, crate::error::OpError>(ed25519_probe(s, sign)))?;
        }
        if p.has(MechanismType::GENERIC_SECRET_KEY_GEN) {
            p.hmac_gen = token.with_fresh_session(|s| Ok::<_, crate::error::OpError>(hmac_gen_probe(s)))?;
        }
        for (i, alg) in HMAC_ALGS.into_iter().enumerate() {
            if crate::sign::message_mechanism(alg).is_some_and(|m| p.has(m.mechanism_type())) {
                let ok = token.with_fresh_session(|s| Ok::<_, crate::error::OpError>(hmac_probe(s, alg)))?;
                if let Some(f) = p.hmac.get_mut(i) {
                    *f = ok;
                }
            }
        }
        (p.import_aes, p.import_rsa, p.import_ec) =
            token.with_fresh_session(|s| Ok::<_, crate::error::OpError>(import_probe(s)))?;
        if p.has(MechanismType::AES_KEY_WRAP) {
            p.kw_ok = token.with_fresh_session(|s| {
                Ok::<_, crate::error::OpError>(kat(s, &KW_KAT, &Mechanism::AesKeyWrap, "CKM_AES_KEY_WRAP"))
            })?;
        }
        if p.has(MechanismType::AES_KEY_WRAP_PAD) {
            p.kwp_ok = token.with_fresh_session(|s| {
                Ok::<_, crate::error::OpError>(
                    KWP_KATS.iter().all(|k| kat(s, k, &Mechanism::AesKeyWrapPad, "CKM_AES_KEY_WRAP_PAD")),
                )
            })?;
        }
        let kek_mech = match (p.kw_ok, p.kwp_ok) {
            (true, _) => Some(Mechanism::AesKeyWrap),
            (false, true) => Some(Mechanism::AesKeyWrapPad),
            _ => None,
        };
        if let Some(m) = kek_mech {
            p.kek_templates =
                token.with_fresh_session(|s| Ok::<_, crate::error::OpError>(kek_template_probe(s, &m)))?;
        }
        // Token objects a probe could not destroy in its own session (see `Temp`), now
        // that those sessions are closed.
        if let Err(e) = token.with_fresh_session(remove_leftovers) {
            tracing::warn!(target: "hsmkit::pkcs11", token = %token.label, "probe objects left on the token: {e}");
        }
        tracing::debug!(target: "hsmkit::pkcs11", token = %token.label, oaep = ?p.oaep, kw = p.kw_ok,
            kwp = p.kwp_ok, kek_templates = p.kek_templates, aes_gen = p.aes_gen, ec_gen = ?p.ec_gen,
            ecdsa = ?p.ecdsa, ed25519 = ?(p.ed25519_gen, p.eddsa), hmac = ?(p.hmac_gen, p.hmac),
            import = ?(p.import_aes, p.import_rsa, p.import_ec), "probed");
        Ok(p)
    }

    pub(crate) fn has(&self, m: MechanismType) -> bool {
        self.mechanisms.contains(&m)
    }

    /// Whether `C_Decrypt` with OAEP and these parameters works on the token.
    pub(crate) fn oaep_ok(&self, alg: EncryptionAlgorithm, label: &[u8]) -> bool {
        self.oaep.decrypt(alg, !label.is_empty())
    }

    /// Whether OAEP unwrapping (no label) works, by `C_UnwrapKey` or `C_Decrypt`.
    pub(crate) fn oaep_unwrap_ok(&self, alg: EncryptionAlgorithm) -> bool {
        self.oaep.unwrap(alg) || self.oaep.decrypt(alg, false)
    }

    /// Whether the token can do `op` with `alg`; an Unsupported error naming the
    /// mechanism if not. Public operations run in software and are always possible.
    pub(crate) fn check(&self, op: KeyOp, alg: Algorithm) -> Result<()> {
        let missing = |name: &str| {
            Err(Error::unsupported(UnsupportedReason::Mechanism, format!("{alg}: the token has no {name}")))
        };
        let failed_kat = |name: &str| {
            Err(Error::unsupported(
                UnsupportedReason::Algorithm,
                format!(
                    "{alg}: the token's {name} fails the standard's known-answer test, so hsmkit does not use it"
                ),
            ))
        };
        match (op, alg) {
            // An HMAC is verified with the secret key, on the token, by the MAC mechanism.
            (KeyOp::Sign, Algorithm::Signature(a))
            | (
                KeyOp::Verify,
                Algorithm::Signature(
                    a @ (SignatureAlgorithm::Hs256 | SignatureAlgorithm::Hs384 | SignatureAlgorithm::Hs512),
                ),
            ) => {
                let (m, name, curve) = match a.scheme() {
                    SignatureScheme::RsaPkcs1v15 => (MechanismType::RSA_PKCS, "CKM_RSA_PKCS", None),
                    SignatureScheme::RsaPss => (MechanismType::RSA_PKCS_PSS, "CKM_RSA_PKCS_PSS", None),
                    SignatureScheme::Ecdsa(c) => (MechanismType::ECDSA, "CKM_ECDSA", Some(c)),
                    SignatureScheme::Ed25519 => {
                        return match (self.has(MechanismType::EDDSA), self.eddsa) {
                            (false, _) => missing("CKM_EDDSA"),
                            (true, false) => Err(Error::unsupported(
                                UnsupportedReason::Algorithm,
                                format!(
                                    "{alg}: the token's CKM_EDDSA made no Ed25519 signature the standard verifies \
                                 with a key it made (probed)"
                                ),
                            )),
                            (true, true) => Ok(()),
                        };
                    }
                    SignatureScheme::Hmac => {
                        let Some(m) = crate::sign::message_mechanism(a).map(|m| m.mechanism_type()) else {
                            return missing("an HMAC mechanism");
                        };
                        let i = HMAC_ALGS.iter().position(|h| *h == a);
                        return match (self.has(m), i.and_then(|i| self.hmac.get(i)).copied().unwrap_or(false))
                        {
                            (false, _) => missing(&m.to_string()),
                            (true, false) => failed_kat(&m.to_string()),
                            (true, true) => Ok(()),
                        };
                    }
                };
                if !self.has(m) {
                    return missing(name);
                }
                match curve {
                    // Probed where the token makes EC keys (keys another tool made on a
                    // token that cannot are tried).
                    Some(c) if self.has(MechanismType::ECC_KEY_PAIR_GEN) && !curve_flag(&self.ecdsa, c) => {
                        Err(Error::unsupported(
                            UnsupportedReason::Algorithm,
                            format!(
                                "{alg}: the token's CKM_ECDSA failed to sign with a {c} key it made (probed)"
                            ),
                        ))
                    }
                    _ => Ok(()),
                }
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
                WrapScheme::RsaOaep(e) if op == KeyOp::UnwrapKey => {
                    if self.oaep_unwrap_ok(e) {
                        Ok(())
                    } else {
                        Err(Error::unsupported(
                            UnsupportedReason::Mechanism,
                            format!(
                                "{alg}: this token has no CKM_RSA_PKCS_OAEP with {} (for unwrapping or decryption)",
                                oaep_name(e)
                            ),
                        ))
                    }
                }
                // Wrapping with an RSA public key runs in software.
                WrapScheme::RsaOaep(_) => Ok(()),
            },
            // Public operations run in software from the public key.
            (KeyOp::Verify, Algorithm::Signature(_)) | (KeyOp::Encrypt, Algorithm::Encryption(_)) => Ok(()),
            (KeyOp::Sign | KeyOp::Verify, Algorithm::Encryption(_) | Algorithm::KeyWrap(_))
            | (KeyOp::Encrypt | KeyOp::Decrypt, Algorithm::Signature(_) | Algorithm::KeyWrap(_))
            | (KeyOp::WrapKey | KeyOp::UnwrapKey, Algorithm::Signature(_) | Algorithm::Encryption(_)) => {
                Err(Error::invalid(InvalidReason::Parameter, format!("{alg} is not an algorithm for {op}")))
            }
        }
    }

    /// Whether OAEP decryption with these parameters works on the token.
    pub(crate) fn check_oaep(&self, alg: EncryptionAlgorithm, label: &[u8]) -> Result<()> {
        if self.oaep_ok(alg, label) {
            return Ok(());
        }
        let label = if label.is_empty() { "" } else { " and a label" };
        Err(Error::unsupported(
            UnsupportedReason::Mechanism,
            format!("{alg}: this token has no CKM_RSA_PKCS_OAEP with {}{label}", oaep_name(alg)),
        ))
    }

    pub(crate) fn capabilities(&self) -> Capabilities {
        let all = Capabilities::all();
        let can_generate = |spec: &KeySpec| match *spec {
            KeySpec::Rsa { bits } => {
                self.has(MechanismType::RSA_PKCS_KEY_PAIR_GEN) && in_range(self.rsa_bits, u64::from(bits))
            }
            KeySpec::Ec(c) => self.has(MechanismType::ECC_KEY_PAIR_GEN) && curve_flag(&self.ec_gen, c),
            KeySpec::Aes(size) => {
                self.has(MechanismType::AES_KEY_GEN)
                    && self.aes_gen
                    && u64::try_from(size.byte_len()).is_ok_and(|n| in_range(self.aes_bytes, n))
            }
            KeySpec::Ed25519 => self.has(MechanismType::ECC_EDWARDS_KEY_PAIR_GEN) && self.ed25519_gen,
            KeySpec::Hmac { .. } => self.has(MechanismType::GENERIC_SECRET_KEY_GEN) && self.hmac_gen,
        };
        let ok = |op, alg| self.check(op, alg).is_ok();
        let decrypt: Vec<_> =
            all.decrypt.into_iter().filter(|a| ok(KeyOp::Decrypt, Algorithm::Encryption(*a))).collect();
        // Labels are usable if every algorithm the token decrypts takes one.
        let oaep_label = !decrypt.is_empty() && decrypt.iter().all(|a| self.oaep.decrypt(*a, true));
        let import = self.import_aes && self.import_rsa && self.import_ec;
        let mut notes = Vec::new();
        if !import {
            let refused: Vec<&str> = [
                (self.import_aes, "AES secret keys"),
                (self.import_rsa, "RSA private keys"),
                (self.import_ec, "EC private and public keys"),
            ]
            .into_iter()
            .filter(|(ok, _)| !ok)
            .map(|(_, what)| what)
            .collect();
            notes.push(format!("import: the token's C_CreateObject refused {} (probed)", refused.join(", ")));
        }
        for &c in EcCurve::ALL {
            if self.has(MechanismType::ECC_KEY_PAIR_GEN)
                && in_range(self.ec_bits, curve_bits(c))
                && !curve_flag(&self.ec_gen, c)
            {
                notes.push(format!(
                    "generate: EC-{c}: the token's CKM_EC_KEY_PAIR_GEN made no {c} key pair with a readable public key (probed)"
                ));
            }
        }
        if self.has(MechanismType::AES_KEY_GEN) && !self.aes_gen {
            notes.push(
                "generate: AES: the token lists CKM_AES_KEY_GEN but its C_GenerateKey failed (probed)"
                    .to_owned(),
            );
        }
        if self.usage_defaults {
            notes.push(
                "the token grants every usage flag its keys can have; hsmkit enforces allowed operations itself"
                    .to_owned(),
            );
        }
        Capabilities {
            generate: all.generate.into_iter().filter(|s| can_generate(s)).collect(),
            import,
            export: false,
            sign: all.sign.into_iter().filter(|a| ok(KeyOp::Sign, Algorithm::Signature(*a))).collect(),
            decrypt,
            wrap: all.wrap.into_iter().filter(|a| ok(KeyOp::WrapKey, Algorithm::KeyWrap(*a))).collect(),
            unwrap: all.unwrap.into_iter().filter(|a| ok(KeyOp::UnwrapKey, Algorithm::KeyWrap(*a))).collect(),
            oaep_label,
            engine: "pkcs11",
            metadata: "token",
            notes,
        }
    }
}

/// "SHA-1/MGF1-SHA-1" or "SHA-256/MGF1-SHA-256".
fn oaep_name(alg: EncryptionAlgorithm) -> &'static str {
    match alg {
        EncryptionAlgorithm::RsaOaep => "SHA-1/MGF1-SHA-1",
        _ => "SHA-256/MGF1-SHA-256",
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

/// Objects the probe made, destroyed when it is dropped: on every path out of a probe.
struct Temp<'a> {
    s: &'a Session,
    handles: Vec<ObjectHandle>,
}

impl<'a> Temp<'a> {
    fn new(s: &'a Session) -> Self {
        Temp { s, handles: Vec::new() }
    }

    fn keep(&mut self, h: ObjectHandle) -> ObjectHandle {
        self.handles.push(h);
        h
    }
}

impl Drop for Temp<'_> {
    /// Destroys the objects, newest first, each only if its handle still names a probe
    /// object ([`crate::objects`]). At the first failure it stops: a token can refuse to
    /// destroy a key an operation left active (tpm2-pkcs11 after a failed `C_Decrypt`),
    /// and destroying the rest would leave a gap under it, which tpm2-pkcs11 numbers
    /// badly. Token objects left are swept by [`remove_leftovers`] in a fresh session
    /// once this one is closed; session objects go with the session.
    fn drop(&mut self) {
        for h in self.handles.drain(..).rev() {
            let r = match is_probe_object(self.s, h) {
                Ok(true) => self.s.destroy_object(h).map_err(OpError::from),
                Ok(false) => Err(crate::objects::reused("C_DestroyObject").into()),
                Err(e) => Err(e.into()),
            };
            if let Err(e) = r {
                tracing::warn!(target: "hsmkit::pkcs11", "could not destroy a probe object now: {e:?}");
                break;
            }
        }
    }
}

/// Whether `h` names an object [`throwaway`] makes: a session object, or a token object
/// labelled [`PROBE_LABEL`].
fn is_probe_object(s: &Session, h: ObjectHandle) -> std::result::Result<bool, CkError> {
    let got = s.get_attributes(h, &[AttributeType::Token, AttributeType::Label])?;
    Ok(got.contains(&Attribute::Token(false))
        || got.contains(&Attribute::Label(PROBE_LABEL.as_bytes().to_vec())))
}

/// Runs `make` with the attributes of a throw-away object: a session object, or, if the
/// token refuses session objects, a private token object labelled [`PROBE_LABEL`].
fn throwaway<T>(
    what: &str,
    make: impl Fn(&[Attribute]) -> std::result::Result<T, CkError>,
) -> std::result::Result<T, CkError> {
    match make(&[Attribute::Token(false)]) {
        Err(e) if crate::objects::refuses_session_objects(&e) => {
            tracing::debug!(target: "hsmkit::pkcs11", "probe: {what} as a session object: {e}; trying a token object");
            make(&[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Label(PROBE_LABEL.as_bytes().to_vec()),
            ])
        }
        r => r,
    }
}

/// Destroys token objects a crashed probe left behind.
fn remove_leftovers(s: &Session) -> std::result::Result<(), OpError> {
    let label = [Attribute::Label(PROBE_LABEL.as_bytes().to_vec())];
    // Newest first, as `Temp` does (handles usually grow; see there why it matters).
    for h in s.find_objects(&label)?.into_iter().rev() {
        tracing::debug!(target: "hsmkit::pkcs11", "probe: destroying a leftover probe object");
        crate::objects::destroy(s, h, &label)?;
    }
    Ok(())
}

/// Makes a throw-away RSA-2048 key pair and checks each OAEP variant on its own:
/// `C_Decrypt` with SHA-1 and SHA-256, with and without a label, and `C_UnwrapKey`
/// with SHA-1 and SHA-256. Ciphertexts come from the software engine.
///
/// The key pair is asked with CKA_VERIFY and CKA_SIGN false, as hsmkit asks for a
/// decrypt-only key; a token that refuses that and takes the pair without them grants
/// usage flags by default (the second value, see [`Probe::usage_defaults`]).
fn oaep_probe(s: &Session) -> (Oaep, bool) {
    let mut out = Oaep::default();
    let mut temp = Temp::new(s);
    let defaults = std::cell::Cell::new(false);
    let pair = throwaway("an RSA key pair", |store| {
        let mut public: Vec<_> = [
            Attribute::ModulusBits(2048u64.into()),
            Attribute::PublicExponent(vec![1, 0, 1]),
            Attribute::Encrypt(true),
            Attribute::Verify(false),
        ]
        .into_iter()
        .chain(store.iter().filter(|a| !matches!(a, Attribute::Private(_))).cloned())
        .collect();
        let mut private: Vec<_> = [
            Attribute::Sensitive(true),
            Attribute::Decrypt(true),
            Attribute::Unwrap(true),
            Attribute::Sign(false),
        ]
        .into_iter()
        .chain(store.iter().cloned())
        .chain(std::iter::once(Attribute::Private(true)).filter(|_| store.len() == 1))
        .collect();
        let first = s.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private);
        let first = match first {
            Err(e) if crate::generate::refuses_rsa_wrap(&e) => {
                tracing::debug!(target: "hsmkit::pkcs11", "probe: RSA key pair with CKA_SIGN/CKA_VERIFY false: {e}; trying without");
                public.retain(|a| !matches!(a, Attribute::Verify(_)));
                private.retain(|a| !matches!(a, Attribute::Sign(_)));
                let r = s.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private);
                if r.is_ok() {
                    defaults.set(true);
                }
                r
            }
            r => r,
        };
        match first {
            // A token refusing RSA keys with CKA_UNWRAP: the C_Decrypt variants can
            // still be probed.
            Err(e) if crate::generate::refuses_rsa_wrap(&e) => {
                tracing::debug!(target: "hsmkit::pkcs11", "probe: RSA key pair with CKA_UNWRAP: {e}; trying without");
                let private: Vec<_> =
                    private.iter().filter(|a| !matches!(a, Attribute::Unwrap(_))).cloned().collect();
                s.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private)
            }
            r => r,
        }
    });
    let (pub_h, priv_h) = match pair {
        Ok((p, k)) => (temp.keep(p), temp.keep(k)),
        Err(e) => {
            tracing::debug!(target: "hsmkit::pkcs11", "probe: cannot make an RSA-2048 key pair: {e}");
            return (out, false);
        }
    };
    let ops = match crate::export::read_public(s, pub_h) {
        Ok(Some(Ok(pk))) => crate::software_public(&pk),
        other => {
            tracing::debug!(target: "hsmkit::pkcs11", "probe: cannot read the RSA public key: {other:?}");
            return (out, defaults.get());
        }
    };
    let ops = match ops {
        Ok(o) => o,
        Err(e) => {
            tracing::debug!(target: "hsmkit::pkcs11", "probe: no software engine for the RSA public key: {e}");
            return (out, defaults.get());
        }
    };
    let secret = b"hsmkit probe: 32 bytes of secret";
    let try_decrypt = |alg: EncryptionAlgorithm, label: &[u8]| -> bool {
        let ct = match ops.encrypt(alg, secret, label) {
            Ok(ct) => ct,
            Err(e) => {
                tracing::debug!(target: "hsmkit::pkcs11", "probe: software {alg} encryption failed: {e}");
                return false;
            }
        };
        let mech = Mechanism::RsaPkcsOaep(oaep_params(alg, label));
        let r = crate::oneshot::decrypt(s, &mech, priv_h, &ct);
        tracing::debug!(target: "hsmkit::pkcs11", "probe: C_Decrypt {alg} label={}: {:?}", !label.is_empty(),
            r.as_ref().map(|pt| pt.as_slice() == secret));
        matches!(r, Ok(pt) if pt == secret)
    };
    let try_unwrap = |alg: EncryptionAlgorithm| -> bool {
        let Ok(ct) = ops.encrypt(alg, secret, &[]) else { return false };
        let mech = Mechanism::RsaPkcsOaep(oaep_params(alg, &[]));
        let r = throwaway("an unwrapped key", |store| {
            let mut t = vec![
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::GENERIC_SECRET),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
            ];
            t.extend(store.iter().cloned());
            s.unwrap_key(&mech, priv_h, &ct, &t)
        });
        let ok = match r {
            Ok(h) => {
                let mut t = Temp::new(s);
                t.keep(h);
                let v = s.get_attributes(h, &[AttributeType::Value]);
                matches!(v.as_deref(), Ok([Attribute::Value(v)]) if v.as_slice() == secret)
            }
            Err(e) => {
                tracing::debug!(target: "hsmkit::pkcs11", "probe: C_UnwrapKey {alg}: {e}");
                false
            }
        };
        tracing::debug!(target: "hsmkit::pkcs11", "probe: C_UnwrapKey {alg}: {ok}");
        ok
    };
    out.sha1 = try_decrypt(EncryptionAlgorithm::RsaOaep, &[]);
    out.sha256 = try_decrypt(EncryptionAlgorithm::RsaOaep256, &[]);
    out.unwrap_sha1 = try_unwrap(EncryptionAlgorithm::RsaOaep);
    out.unwrap_sha256 = try_unwrap(EncryptionAlgorithm::RsaOaep256);
    // Last: tpm2-pkcs11 leaves the operation active after a label it cannot take.
    out.sha1_label = try_decrypt(EncryptionAlgorithm::RsaOaep, b"hsmkit label");
    out.sha256_label = try_decrypt(EncryptionAlgorithm::RsaOaep256, b"hsmkit label");
    (out, defaults.get())
}

/// Whether `C_GenerateKey` with `mech` makes a throw-away secret key of `key_type`,
/// `bytes` long, with the usage flags `usage`.
fn secret_gen_probe(
    s: &Session,
    key_type: KeyType,
    bytes: u64,
    mech: &Mechanism<'_>,
    usage: &[Attribute],
) -> bool {
    let mut temp = Temp::new(s);
    let r = throwaway(&format!("a {key_type} key"), |store| {
        let mut t = vec![
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(key_type),
            Attribute::ValueLen(bytes.into()),
            Attribute::Sensitive(true),
        ];
        t.extend(usage.iter().cloned());
        t.extend(store.iter().cloned());
        s.generate_key(mech, &t)
    });
    tracing::debug!(target: "hsmkit::pkcs11", "probe: C_GenerateKey {}: {:?}", mech.mechanism_type(), r.as_ref().map(|_| "ok"));
    r.map(|h| temp.keep(h)).is_ok()
}

/// Whether `C_GenerateKey` makes a throw-away AES-128 key.
fn aes_gen_probe(s: &Session) -> bool {
    secret_gen_probe(s, KeyType::AES, 16, &Mechanism::AesKeyGen, &[Attribute::Extractable(false)])
}

/// Whether `C_GenerateKeyPair` makes a throw-away key pair on `curve` whose public key
/// hsmkit can read (tpm2-pkcs11's P-521 CKA_EC_POINT is not), and (if `sign`) whether
/// `C_Sign` with `CKM_ECDSA` then signs a digest with it.
fn ecdsa_probe(s: &Session, curve: EcCurve, sign: bool) -> (bool, bool) {
    let mut temp = Temp::new(s);
    let Ok(params) = crate::generate::ec_params(curve) else { return (false, false) };
    let pair = throwaway("an EC key pair", |store| {
        let public: Vec<_> = [Attribute::EcParams(params.clone()), Attribute::Verify(true)]
            .into_iter()
            .chain(store.iter().filter(|a| !matches!(a, Attribute::Private(_))).cloned())
            .collect();
        let private: Vec<_> = [Attribute::Sensitive(true), Attribute::Sign(true)]
            .into_iter()
            .chain(store.iter().cloned())
            .chain(std::iter::once(Attribute::Private(true)).filter(|_| store.len() == 1))
            .collect();
        s.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
    });
    let private = match pair {
        Ok((p, k)) => {
            temp.keep(p);
            let readable = crate::export::read_public(s, p);
            if !matches!(readable, Ok(Some(Ok(_)))) {
                tracing::debug!(target: "hsmkit::pkcs11", "probe: {curve} public key unreadable: {readable:?}");
                temp.keep(k);
                return (false, false);
            }
            temp.keep(k)
        }
        Err(e) => {
            tracing::debug!(target: "hsmkit::pkcs11", "probe: {curve} key pair: {e}");
            return (false, false);
        }
    };
    if !sign {
        return (true, false);
    }
    // A digest as long as the curve's hash: SHA-256, SHA-384, SHA-512.
    let digest = vec![0x5a; curve.field_len().min(64)];
    let r = crate::oneshot::sign(s, &Mechanism::Ecdsa, private, &digest);
    tracing::debug!(target: "hsmkit::pkcs11", "probe: CKM_ECDSA on {curve}: {:?}", r.as_ref().map(Vec::len));
    (true, matches!(r, Ok(sig) if sig.len() == 2 * curve.field_len()))
}

/// Makes a throw-away Ed25519 key pair (`CKM_EC_EDWARDS_KEY_PAIR_GEN`) and, if `sign`,
/// signs with `CKM_EDDSA`: (made with a readable public key, signature verified by the
/// software engine under RFC 8032).
fn ed25519_probe(s: &Session, sign: bool) -> (bool, bool) {
    let mut temp = Temp::new(s);
    let Ok(params) = crate::generate::ed25519_params() else { return (false, false) };
    let pair = throwaway("an Ed25519 key pair", |store| {
        let public: Vec<_> = [Attribute::EcParams(params.clone()), Attribute::Verify(true)]
            .into_iter()
            .chain(store.iter().filter(|a| !matches!(a, Attribute::Private(_))).cloned())
            .collect();
        let private: Vec<_> = [Attribute::Sensitive(true), Attribute::Sign(true)]
            .into_iter()
            .chain(store.iter().cloned())
            .chain(std::iter::once(Attribute::Private(true)).filter(|_| store.len() == 1))
            .collect();
        s.generate_key_pair(&Mechanism::EccEdwardsKeyPairGen, &public, &private)
    });
    let (public, private) = match pair {
        Ok((p, k)) => {
            temp.keep(p);
            let readable = crate::export::read_public(s, p);
            temp.keep(k);
            match readable {
                Ok(Some(Ok(pk @ hsmkit::PublicKey::Ed25519(_)))) => (pk, k),
                other => {
                    tracing::debug!(target: "hsmkit::pkcs11", "probe: Ed25519 public key unreadable: {other:?}");
                    return (false, false);
                }
            }
        }
        Err(e) => {
            tracing::debug!(target: "hsmkit::pkcs11", "probe: Ed25519 key pair: {e}");
            return (false, false);
        }
    };
    if !sign {
        return (true, false);
    }
    let message = b"hsmkit probe: pure Ed25519";
    let Some(mech) = crate::sign::message_mechanism(SignatureAlgorithm::EdDsa) else { return (true, false) };
    let sig = crate::oneshot::sign(s, &mech, private, message);
    let verified = match (&sig, crate::software_public(&public)) {
        (Ok(sig), Ok(ops)) => ops.verify(SignatureAlgorithm::EdDsa, message, sig).is_ok(),
        _ => false,
    };
    tracing::debug!(target: "hsmkit::pkcs11", "probe: CKM_EDDSA: {:?}, verified: {verified}", sig.as_ref().map(Vec::len));
    (true, verified)
}

/// Makes a throw-away 512-bit generic secret with `CKM_GENERIC_SECRET_KEY_GEN`.
fn hmac_gen_probe(s: &Session) -> bool {
    let usage = [Attribute::Sign(true), Attribute::Verify(true)];
    secret_gen_probe(s, KeyType::GENERIC_SECRET, 64, &Mechanism::GenericSecretKeyGen, &usage)
}

/// The known-answer test of one HS* mechanism: a fixed 512-bit key (made for this probe),
/// `C_Sign` must give the software engine's MAC, `C_Verify` must take it and refuse it
/// with its last bit flipped.
fn hmac_probe(s: &Session, alg: SignatureAlgorithm) -> bool {
    let mut temp = Temp::new(s);
    let key: Vec<u8> = (0u8..64).map(|i| i.wrapping_mul(37) ^ 0x5c).collect();
    let message = b"hsmkit probe: HMAC known answer";
    let (Some(mech), Ok(expected)) =
        (crate::sign::message_mechanism(alg), hsmkit_engine::hmac(alg, &key, message))
    else {
        return false;
    };
    let attrs = [Attribute::Sensitive(true), Attribute::Sign(true), Attribute::Verify(true)];
    let h = match secret_object(s, &key, KeyType::GENERIC_SECRET, &attrs) {
        Ok(h) => temp.keep(h),
        Err(e) => {
            tracing::debug!(target: "hsmkit::pkcs11", "probe: {alg} key: {e}");
            return false;
        }
    };
    let tag = crate::oneshot::sign(s, &mech, h, message);
    let signed = matches!(&tag, Ok(t) if *t == expected);
    let mut wrong = expected.clone();
    if let Some(last) = wrong.last_mut() {
        *last ^= 1;
    }
    let verified = crate::oneshot::verify(s, &mech, h, message, &expected).is_ok()
        && crate::oneshot::verify(s, &mech, h, message, &wrong).is_err();
    tracing::debug!(target: "hsmkit::pkcs11", "probe: {alg} known answer: sign {signed}, verify {verified}");
    signed && verified
}

/// A fixed RSA-2048 key (made for this probe, used for nothing else): its components.
struct RsaKat {
    n: &'static str,
    d: &'static str,
    p: &'static str,
    q: &'static str,
    dp: &'static str,
    dq: &'static str,
    qinv: &'static str,
}

const IMPORT_RSA: RsaKat = RsaKat {
    n: "a86a2e58beb147a395f62a5de6e1dc8502d50b02037607529aafb1389b44088987bcabd19c6b1fbc7457b47d03ab0a5596130898b0f9e8f10a7e391837d24d67eb511b9787ab0220fe214ec755983e6fd0fbd5dcdc788cadf4897fe72088a9eaed1963dd9e49a9acac02da764730a2e33b42e0fc638c1e68584ccae86c096e835e990606d3ef83af2222bef83de0769b3030d1ac79855a9ad22597c6cafbd4ae4a64eff37ade3db747aa98e23de6b229fc06ebce5411cef3a1e100f3ce4ddb937b1b4cddb9f5769cc6f4507d69c1b16fe0efc58d92d467e823c2b028311bab8bc7d6e50321942576f56e57622ae2c5a955cd74bae5d56e3ee697fd3ea09c351f",
    d: "308e4484839e3b2857e11c3fec842bff115cf90a8092f3f385f3a7a5c966290bf5dd98b01b67eb437b4b9a16fd0ac03502cac40cb9e1a39e734707110b6f0fb029713e0247342fadf1770aee7fa820403ec18cdc5b9849ff1164df4274e7d20d9084647d8dd87119fe91e80877e7f6de8ac47277720000f85694f55f635ea8c4b1b34073589ccf46c355620e678b08f2449f8f85d309de7ca965789d4532d1118df2dbfbeb197d78f2c27f1c02d49e6f7343c8ce216555fdb67dad11c79672b2471afbf1fbe7e6f6f1c7be4a806ff85e5367fb0a86aaabe4a58ff05692ecbdb1ed79df0bfcc88330f3aade9651d22b2d889d5e1b5f45678b22cd888eb87a0371",
    p: "cfd879fe23af406ae90a1fd431362632a47c4d4324587348068cbd11b7c359a84c419db1186ec0b0e961708b492d386b47165e3f5de8b371b88ecece2ae4bbd98c01f6161e4f0088e6070e49e27609b728ac5b987f363566a6cce3abe4ae2339f2b7ee66ba87d94db8be6c7d775577f414011c2df8e53c91279b42279defa6b7",
    q: "cf6f05f67dedf86728104c2c1dc56b0a6e024fa27599ebf6a0445a1138aaebee9b910d504fb13b55e52b4fd723c1aeb11834ee7c692e77aa02345ab8020ecab67b562863cfb49129cdbb9337e5127f15de81bb3007c61a8faad3dfe15022ca4e3d64b447749386a84f96ff90def476581d0e4dd64ca5f6ca1246525b28c33cd9",
    dp: "83f683ee11a611964f83b815b77113eb8f77c46e5ec331de871a1069116d9c9d385d68cbaa2197823b8b3c3393307ce3cfeca9c63dcfa32f0ee8ccf12556b8d6350881c0255a2f92bbc9bb0eba140bb318c5e619fa9ae668d87aba0ac754b0d4f8004403416743570f7707d6d94f90ab8d8feede596ae27b9ed3fabac0920a1d",
    dq: "369c7e2f64fc0fd7e8be51af93aef3fd6cf502ce3cb3e761a8d415fa4eb7012272a67fa0d33a4feacf48d5de4835a7ae4c37334a61ceb0067c4a1850358a7b680b94a55191cf7220555fbae48e548e4ccda5ce08592398be9634edce3df0cade4a5f86ef010c0df9a5ea952228f0a76f8f46c2cb56a6a310943b1b5790a5c611",
    qinv: "0166949b7072410a735f19397af70fe17e8af3ac1d142cd1a332d7628786d3b4f15c4ef402ce71145b58591066352aa01ec4667c7988c0e2008d70138621b32ae40c5735f3380dd737aa1bc54e12e6e231512f545c95b8cda84c2a87c44ca481e52efe0aecd50b2f6b91f67040a77ef72fc4b89e56669a63250f5c25c580efe8",
};

/// A fixed P-256 key (made for this probe, used for nothing else): scalar and point.
const IMPORT_EC_D: &str = "64adba4ebbd8453a92970b6c621f9d85b0abbc1d1a18b01c467073ef2d3fde18";
const IMPORT_EC_POINT: &str = "04a3dbed22833c6387043d65d87da148626e9f53ba4a429bcfbcfc4727396176096cdb9a562fec84a40720bbd55f3761e9ab5707fa781dcc5def470d9ddd772e34";

/// Whether `C_CreateObject` takes (a) an AES secret key, (b) an RSA private key, (c) an
/// EC private and an EC public key: throw-away objects made from fixed keys.
fn import_probe(s: &Session) -> (bool, bool, bool) {
    let mut temp = Temp::new(s);
    let mut create = |what: &str, t: Vec<Attribute>| {
        let r = throwaway(what, |store| {
            let mut t = t.clone();
            let public = t.contains(&Attribute::Class(ObjectClass::PUBLIC_KEY));
            t.extend(store.iter().filter(|a| !(public && matches!(a, Attribute::Private(_)))).cloned());
            s.create_object(&t)
        });
        tracing::debug!(target: "hsmkit::pkcs11", "probe: C_CreateObject {what}: {:?}", r.as_ref().map(|_| "ok"));
        r.map(|h| temp.keep(h)).is_ok()
    };
    let secret = [Attribute::Sensitive(true), Attribute::Extractable(false)];
    let aes = create(
        "an AES key",
        [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Value(vec![0x42; 16]),
        ]
        .into_iter()
        .chain(secret.iter().cloned())
        .collect(),
    );
    let k = &IMPORT_RSA;
    let rsa = create(
        "an RSA private key",
        [
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(KeyType::RSA),
            Attribute::Modulus(unhex(k.n)),
            Attribute::PublicExponent(vec![1, 0, 1]),
            Attribute::PrivateExponent(unhex(k.d)),
            Attribute::Prime1(unhex(k.p)),
            Attribute::Prime2(unhex(k.q)),
            Attribute::Exponent1(unhex(k.dp)),
            Attribute::Exponent2(unhex(k.dq)),
            Attribute::Coefficient(unhex(k.qinv)),
        ]
        .into_iter()
        .chain(secret.iter().cloned())
        .collect(),
    );
    let ec = match crate::generate::ec_params(EcCurve::P256) {
        Ok(params) => {
            let private = create(
                "an EC private key",
                [
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::KeyType(KeyType::EC),
                    Attribute::EcParams(params.clone()),
                    Attribute::Value(unhex(IMPORT_EC_D)),
                ]
                .into_iter()
                .chain(secret.iter().cloned())
                .collect(),
            );
            let point =
                der::asn1::OctetString::new(unhex(IMPORT_EC_POINT)).and_then(|o| der::Encode::to_der(&o));
            let public = match point {
                Ok(point) => create(
                    "an EC public key",
                    vec![
                        Attribute::Class(ObjectClass::PUBLIC_KEY),
                        Attribute::KeyType(KeyType::EC),
                        Attribute::EcParams(params),
                        Attribute::EcPoint(point),
                    ],
                ),
                Err(_) => false,
            };
            private && public
        }
        Err(_) => false,
    };
    (aes, rsa, ec)
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

/// A throw-away secret key object holding `value`.
fn secret_object(
    s: &Session,
    value: &[u8],
    key_type: KeyType,
    extra: &[Attribute],
) -> std::result::Result<ObjectHandle, CkError> {
    throwaway("a secret key", |store| {
        let mut t = vec![
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(key_type),
            Attribute::Value(value.to_vec()),
        ];
        t.extend(extra.iter().cloned());
        t.extend(store.iter().cloned());
        s.create_object(&t)
    })
}

/// Wraps and unwraps a known key with throw-away objects and compares with the
/// standard's answer. Tokens whose mechanism disagrees do not get the capability:
/// hsmkit will not produce non-standard wrapped keys under a standard name.
fn kat(s: &Session, k: &Kat, mech: &Mechanism<'_>, name: &str) -> bool {
    let mut temp = Temp::new(s);
    let kek_attrs = [
        Attribute::Sensitive(false),
        Attribute::Extractable(false),
        Attribute::Wrap(true),
        Attribute::Unwrap(true),
    ];
    let kek = match secret_object(s, &unhex(k.kek), KeyType::AES, &kek_attrs) {
        Ok(h) => temp.keep(h),
        Err(e) => {
            tracing::debug!(target: "hsmkit::pkcs11", "probe: {name} KEK: {e}");
            return false;
        }
    };
    let data_attrs = [Attribute::Sensitive(false), Attribute::Extractable(true)];
    let data = match secret_object(s, &unhex(k.data), KeyType::GENERIC_SECRET, &data_attrs) {
        Ok(h) => temp.keep(h),
        Err(e) => {
            tracing::debug!(target: "hsmkit::pkcs11", "probe: {name} data key: {e}");
            return false;
        }
    };
    let data_len = unhex(k.data).len();
    let wrapped = s.wrap_key(mech, kek, data).map(|w| crate::wrap::fit_wrapped(w, mech, data_len));
    tracing::debug!(target: "hsmkit::pkcs11", "probe: {name} wrap: {wrapped:?}");
    let wrapped_ok = matches!(wrapped, Ok(Some(w)) if w == unhex(k.wrapped));
    let unwrapped = throwaway("an unwrapped key", |store| {
        let mut t = vec![
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Sensitive(false),
            Attribute::Extractable(true),
        ];
        t.extend(store.iter().cloned());
        s.unwrap_key(mech, kek, &unhex(k.wrapped), &t)
    });
    let unwrapped_ok = match unwrapped {
        Ok(h) => {
            temp.keep(h);
            let v = s.get_attributes(h, &[AttributeType::Value]);
            matches!(v.as_deref(), Ok([Attribute::Value(v)]) if *v == unhex(k.data))
        }
        Err(e) => {
            tracing::debug!(target: "hsmkit::pkcs11", "probe: {name} unwrap: {e}");
            false
        }
    };
    tracing::debug!(target: "hsmkit::pkcs11", "probe: {name} known answers: wrap {wrapped_ok}, unwrap {unwrapped_ok}");
    wrapped_ok && unwrapped_ok
}

/// Whether the token enforces the KEK templates hsmkit sets (see
/// [`crate::generate::kek_templates`]): a KEK carrying them must refuse to wrap a
/// sensitive extractable key, and must wrap a non-sensitive one.
fn kek_template_probe(s: &Session, mech: &Mechanism<'_>) -> bool {
    let Some(templates) = crate::generate::kek_templates() else {
        tracing::debug!(target: "hsmkit::pkcs11", "probe: KEK templates cannot be expressed on this platform");
        return false;
    };
    let mut temp = Temp::new(s);
    let mut kek_attrs = vec![
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Wrap(true),
        Attribute::Unwrap(true),
    ];
    kek_attrs.extend(templates);
    let kek = match secret_object(s, &[0x42; 16], KeyType::AES, &kek_attrs) {
        Ok(h) => temp.keep(h),
        Err(e) => {
            tracing::debug!(target: "hsmkit::pkcs11", "probe: KEK with wrap templates: {e}");
            return false;
        }
    };
    let key = |sensitive: bool| {
        secret_object(
            s,
            &[0x17; 16],
            KeyType::GENERIC_SECRET,
            &[Attribute::Sensitive(sensitive), Attribute::Extractable(true)],
        )
    };
    let (sensitive, readable) = match (key(true), key(false)) {
        (Ok(a), Ok(b)) => (temp.keep(a), temp.keep(b)),
        (a, b) => {
            a.into_iter().chain(b).for_each(|h| {
                temp.keep(h);
            });
            tracing::debug!(target: "hsmkit::pkcs11", "probe: cannot make keys to wrap");
            return false;
        }
    };
    let refused = s.wrap_key(mech, kek, sensitive);
    let allowed = s.wrap_key(mech, kek, readable);
    tracing::debug!(target: "hsmkit::pkcs11", "probe: KEK template: wrapping a sensitive key: {:?}; a readable one: {:?}",
        refused.as_ref().map(|_| "wrapped"), allowed.as_ref().map(|_| "wrapped"));
    refused.is_err() && allowed.is_ok()
}

/// The per-user cache file: `$XDG_CACHE_HOME/hsmkit/probes.json`, else
/// `~/.cache/hsmkit/probes.json`, else `<temp>/hsmkit-<uid>/probes.json`. The directory
/// is made mode 0700; `None` (no file cache) if it cannot be made or is not ours.
pub(crate) fn cache_file() -> Option<PathBuf> {
    let nonempty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let dir = match nonempty("XDG_CACHE_HOME").filter(|p| p.is_absolute()) {
        Some(d) => d.join("hsmkit"),
        None => match nonempty("HOME").filter(|p| p.is_absolute()) {
            Some(h) => h.join(".cache").join("hsmkit"),
            None => std::env::temp_dir().join(format!("hsmkit-{}", disk::uid()?)),
        },
    };
    disk::private_dir(&dir).then(|| dir.join("probes.json"))
}

/// The cache file. The results only ever reduce what hsmkit tries (a capability the
/// token lacks fails with the token's error), but a file that is not ours, is a
/// symbolic link, or does not parse is still ignored and replaced, never trusted.
mod disk {
    use std::path::Path;

    use cryptoki::mechanism::MechanismType;
    use serde_json::{Map, Value, json};

    use super::{Oaep, Probe};

    /// At most this many tokens are remembered (test runs make many fresh tokens).
    const MAX_ENTRIES: usize = 64;
    /// Bumped when the probe's meaning changes: older entries are probed again.
    const FORMAT: u64 = 4;

    /// This process's user id: the owner of a file it just made.
    #[cfg(unix)]
    pub(super) fn uid() -> Option<u32> {
        use std::os::unix::fs::MetadataExt;
        let f = tempfile::NamedTempFile::new().ok()?;
        f.as_file().metadata().ok().map(|m| m.uid())
    }

    #[cfg(not(unix))]
    pub(super) fn uid() -> Option<u32> {
        Some(0)
    }

    /// Makes `dir` (mode 0700) if needed; whether it is a directory of ours, private.
    #[cfg(unix)]
    pub(super) fn private_dir(dir: &Path) -> bool {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
        if let Err(e) = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir) {
            tracing::debug!(target: "hsmkit::pkcs11", dir = %dir.display(), "no probe cache: {e}");
            return false;
        }
        let Ok(m) = std::fs::symlink_metadata(dir) else { return false };
        if !m.is_dir() || Some(m.uid()) != uid() {
            tracing::debug!(target: "hsmkit::pkcs11", dir = %dir.display(), "no probe cache: not our directory");
            return false;
        }
        if m.mode() & 0o077 != 0 {
            return std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).is_ok();
        }
        true
    }

    #[cfg(not(unix))]
    pub(super) fn private_dir(dir: &Path) -> bool {
        std::fs::create_dir_all(dir).is_ok()
    }

    /// Whether `file` is a regular file of ours (not a link).
    fn trusted(file: &Path) -> bool {
        let Ok(m) = std::fs::symlink_metadata(file) else { return false };
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            if Some(m.uid()) != uid() {
                tracing::debug!(target: "hsmkit::pkcs11", file = %file.display(), "probe cache not ours: ignored");
                return false;
            }
        }
        m.file_type().is_file()
    }

    /// All entries of the file, or none if it cannot be trusted or parsed.
    fn read_all(file: &Path) -> Map<String, Value> {
        if !trusted(file) {
            return Map::new();
        }
        let parsed = std::fs::read(file).ok().and_then(|b| serde_json::from_slice::<Value>(&b).ok());
        match parsed {
            Some(Value::Object(mut m)) if m.get("format").and_then(Value::as_u64) == Some(FORMAT) => {
                match m.remove("tokens") {
                    Some(Value::Object(t)) => t,
                    _ => Map::new(),
                }
            }
            _ => {
                tracing::debug!(target: "hsmkit::pkcs11", file = %file.display(), "probe cache unreadable: ignored");
                Map::new()
            }
        }
    }

    fn to_json(p: &Probe) -> Value {
        // CK_ULONG is u64 here but u32 on some platforms.
        #[allow(clippy::useless_conversion)]
        let mechs: Vec<u64> = p.mechanisms.iter().map(|m| u64::from(**m)).collect();
        json!({
            "written": std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            "mechanisms": mechs,
            "oaep": [p.oaep.sha1, p.oaep.sha256, p.oaep.sha1_label, p.oaep.sha256_label,
                     p.oaep.unwrap_sha1, p.oaep.unwrap_sha256],
            "kw": p.kw_ok,
            "kwp": p.kwp_ok,
            "kek_templates": p.kek_templates,
            "aes_gen": p.aes_gen,
            "ec_gen": p.ec_gen,
            "ecdsa": p.ecdsa,
            "ed25519": [p.ed25519_gen, p.eddsa],
            "hmac_gen": p.hmac_gen,
            "hmac": p.hmac,
            "rsa_bits": [p.rsa_bits.0, p.rsa_bits.1],
            "ec_bits": [p.ec_bits.0, p.ec_bits.1],
            "aes_bytes": [p.aes_bytes.0, p.aes_bytes.1],
            "import": [p.import_aes, p.import_rsa, p.import_ec],
            "usage_defaults": p.usage_defaults,
        })
    }

    fn from_json(v: &Value) -> Option<Probe> {
        let flag = |k: &str| v.get(k).and_then(Value::as_bool);
        let mechanisms = v
            .get("mechanisms")?
            .as_array()?
            .iter()
            .map(|m| m.as_u64().and_then(|m| std::ffi::c_ulong::try_from(m).ok()))
            .collect::<Option<Vec<_>>>()?
            .into_iter()
            // Mechanisms this cryptoki does not know were dropped from the list anyway.
            .filter_map(|m| MechanismType::try_from(m).ok())
            .collect();
        let o: Vec<bool> = v.get("oaep")?.as_array()?.iter().map(Value::as_bool).collect::<Option<_>>()?;
        let [sha1, sha256, sha1_label, sha256_label, unwrap_sha1, unwrap_sha256] = o.as_slice() else {
            return None;
        };
        fn bools<const N: usize>(v: &Value, k: &str) -> Option<[bool; N]> {
            let v: Vec<bool> = v.get(k)?.as_array()?.iter().map(Value::as_bool).collect::<Option<_>>()?;
            v.try_into().ok()
        }
        let range = |k: &str| -> Option<(u64, u64)> {
            match v.get(k)?.as_array()?.as_slice() {
                [a, b] => Some((a.as_u64()?, b.as_u64()?)),
                _ => None,
            }
        };
        let [import_aes, import_rsa, import_ec] = bools(v, "import")?;
        let [ed25519_gen, eddsa] = bools(v, "ed25519")?;
        Some(Probe {
            mechanisms,
            oaep: Oaep {
                sha1: *sha1,
                sha256: *sha256,
                sha1_label: *sha1_label,
                sha256_label: *sha256_label,
                unwrap_sha1: *unwrap_sha1,
                unwrap_sha256: *unwrap_sha256,
            },
            kw_ok: flag("kw")?,
            kwp_ok: flag("kwp")?,
            kek_templates: flag("kek_templates")?,
            aes_gen: flag("aes_gen")?,
            ec_gen: bools(v, "ec_gen")?,
            ecdsa: bools(v, "ecdsa")?,
            ed25519_gen,
            eddsa,
            hmac_gen: flag("hmac_gen")?,
            hmac: bools(v, "hmac")?,
            rsa_bits: range("rsa_bits")?,
            ec_bits: range("ec_bits")?,
            aes_bytes: range("aes_bytes")?,
            import_aes,
            import_rsa,
            import_ec,
            usage_defaults: flag("usage_defaults")?,
        })
    }

    /// The cached probe of the token `key`, if the file has a usable one.
    pub(super) fn load(file: &Path, key: &str) -> Option<Probe> {
        read_all(file).get(key).and_then(from_json)
    }

    /// Adds the token's probe to the file: written to a temporary file (mode 0600) in
    /// the same directory, then renamed over it. Best effort: failing costs a re-probe.
    pub(super) fn store(file: &Path, key: &str, p: &Probe) {
        let mut all = read_all(file);
        all.insert(key.to_owned(), to_json(p));
        while all.len() > MAX_ENTRIES {
            let oldest = all
                .iter()
                .min_by_key(|(_, v)| v.get("written").and_then(Value::as_u64).unwrap_or(0))
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => all.remove(&k),
                None => break,
            };
        }
        let doc = json!({ "format": FORMAT, "tokens": Value::Object(all) });
        let write = || -> std::io::Result<()> {
            let dir = file.parent().ok_or_else(|| std::io::Error::other("no directory"))?;
            // tempfile creates it mode 0600.
            let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
            serde_json::to_writer(&mut tmp, &doc)?;
            tmp.as_file().sync_all()?;
            tmp.persist(file).map_err(|e| e.error)?;
            Ok(())
        };
        if let Err(e) = write() {
            tracing::debug!(target: "hsmkit::pkcs11", file = %file.display(), "could not write the probe cache: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    fn token(t: &crate::testing::SoftHsmToken) -> Token {
        Token::open(&crate::uri::Pkcs11Uri::parse(t.uri()).unwrap()).unwrap()
    }

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

    /// Each OAEP variant is probed on its own and the answers are what SoftHSM2 2.6.1
    /// does; the probe leaves no objects behind. (`--nocapture` prints the probe.)
    #[test]
    fn softhsm_probe_tests_each_variant() {
        let t = crate::testing::SoftHsmToken::new().unwrap();
        let p = Probe::run(&token(&t)).unwrap();
        println!("SoftHSM2: {:?} kw {} kwp {} kek_templates {}", p.oaep, p.kw_ok, p.kwp_ok, p.kek_templates);
        let want = Oaep {
            sha1: true,
            sha256: false,
            sha1_label: false,
            sha256_label: false,
            unwrap_sha1: true,
            unwrap_sha256: false,
        };
        assert_eq!(p.oaep, want);
        assert!(p.kw_ok && p.kek_templates);
        let caps = p.capabilities();
        assert_eq!(caps.decrypt, vec![EncryptionAlgorithm::RsaOaep]);
        assert!(!caps.oaep_label);
        assert!(caps.unwrap.contains(&hsmkit::KeyWrapAlgorithm::RsaOaep));
        assert!(!caps.unwrap.contains(&hsmkit::KeyWrapAlgorithm::RsaOaep256));
        let e = p.check_oaep(EncryptionAlgorithm::RsaOaep256, &[]).unwrap_err();
        assert!(e.to_string().contains("CKM_RSA_PKCS_OAEP with SHA-256"), "{e}");
        let s = t.raw_session().unwrap();
        assert!(s.find_objects(&[]).unwrap().is_empty(), "the probe left objects on the token");
    }

    /// RSA-OAEP unwrap is claimed when either `C_UnwrapKey` or `C_Decrypt` works.
    #[test]
    fn oaep_unwrap_is_claimed_by_either_path() {
        let mut p = Probe { mechanisms: vec![MechanismType::RSA_PKCS_OAEP], ..Probe::default() };
        let unwrap = |p: &Probe| p.capabilities().unwrap.contains(&hsmkit::KeyWrapAlgorithm::RsaOaep256);
        assert!(!unwrap(&p));
        p.oaep.sha256 = true;
        assert!(unwrap(&p));
        p.oaep = Oaep { unwrap_sha256: true, ..Oaep::default() };
        assert!(unwrap(&p));
        assert!(p.capabilities().decrypt.is_empty());
    }

    /// A token refusing session objects gets token objects with the reserved label.
    #[test]
    fn probe_objects_fall_back_to_labelled_token_objects() {
        let seen = Mutex::new(Vec::new());
        let r = throwaway("a test object", |store| {
            seen.lock().unwrap().push(store.to_vec());
            if store.contains(&Attribute::Token(false)) {
                Err(CkError::Pkcs11(
                    cryptoki::error::RvError::TemplateInconsistent,
                    cryptoki::context::Function::CreateObject,
                ))
            } else {
                Ok(())
            }
        });
        assert!(r.is_ok());
        let seen = seen.into_inner().unwrap();
        assert_eq!(seen.len(), 2);
        assert!(seen[1].contains(&Attribute::Token(true)));
        assert!(seen[1].contains(&Attribute::Label(PROBE_LABEL.as_bytes().to_vec())));
        assert!(!PROBE_LABEL.is_empty() && PROBE_LABEL.starts_with('.'));
    }

    /// Probe token objects go on every path out: dropped guards destroy them, and the
    /// leftovers of a crashed probe are removed.
    #[test]
    fn probe_token_objects_are_destroyed() {
        let t = crate::testing::SoftHsmToken::new().unwrap();
        let s = t.raw_session().unwrap();
        let label = Attribute::Label(PROBE_LABEL.as_bytes().to_vec());
        let make = || {
            s.create_object(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Token(true),
                Attribute::Private(true),
                label.clone(),
            ])
            .unwrap()
        };
        {
            let mut temp = Temp::new(&s);
            temp.keep(make());
            assert_eq!(s.find_objects(std::slice::from_ref(&label)).unwrap().len(), 1);
        }
        assert!(s.find_objects(std::slice::from_ref(&label)).unwrap().is_empty());
        make();
        remove_leftovers(&s).unwrap();
        assert!(s.find_objects(std::slice::from_ref(&label)).unwrap().is_empty());
    }

    /// The cache file: a second lookup after the process's cache is cleared reads the
    /// file and does not probe (no key generation); the file is private; planted, foreign
    /// or broken files are ignored and replaced.
    #[cfg(unix)]
    #[test]
    fn probe_results_persist_in_a_private_file() {
        use std::os::unix::fs::PermissionsExt;
        let t = crate::testing::SoftHsmToken::new().unwrap();
        let tok = token(&t);
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("hsmkit");
        assert!(disk::private_dir(&dir));
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        let file = dir.join("probes.json");
        let (first, src) = Probe::lookup(&tok, t.module(), Some(&file)).unwrap();
        assert_eq!(src, Source::Ran);
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        let (_, src) = Probe::lookup(&tok, t.module(), Some(&file)).unwrap();
        assert_eq!(src, Source::Memory);
        Probe::forget_in_process();
        let (again, src) = Probe::lookup(&tok, t.module(), Some(&file)).unwrap();
        assert_eq!(src, Source::Disk, "a new process would not probe again");
        assert_eq!(*again, *first);
        // Broken file: ignored, probed again, rewritten.
        std::fs::write(&file, b"{ not json").unwrap();
        Probe::forget_in_process();
        assert_eq!(Probe::lookup(&tok, t.module(), Some(&file)).unwrap().1, Source::Ran);
        assert!(serde_json::from_slice::<serde_json::Value>(&std::fs::read(&file).unwrap()).is_ok());
        // A symbolic link (even to a good file) is not trusted, and is replaced by a file.
        let good = dir.join("elsewhere.json");
        std::fs::rename(&file, &good).unwrap();
        std::os::unix::fs::symlink(&good, &file).unwrap();
        Probe::forget_in_process();
        assert_eq!(Probe::lookup(&tok, t.module(), Some(&file)).unwrap().1, Source::Ran);
        assert!(std::fs::symlink_metadata(&file).unwrap().file_type().is_file());
        // Another token (fresh serial) is its own entry.
        let t2 = crate::testing::SoftHsmToken::new().unwrap();
        assert_eq!(Probe::lookup(&token(&t2), t2.module(), Some(&file)).unwrap().1, Source::Ran);
        Probe::forget_in_process();
        assert_eq!(Probe::lookup(&tok, t.module(), Some(&file)).unwrap().1, Source::Disk);
    }
}
