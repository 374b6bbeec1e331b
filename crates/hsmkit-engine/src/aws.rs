//! The aws-lc engine (feature `aws-lc`): the same operations as the RustCrypto engine,
//! through AWS-LC (BoringSSL lineage, FIPS-validated builds exist). Keys are loaded from
//! the same stored material, so a keystore works under either engine.

use aws_lc_rs::aead;
use aws_lc_rs::digest::{self, Digest};
use aws_lc_rs::hmac;
use aws_lc_rs::key_wrap::{AES_128, AES_256, AesKek, KeyWrap, KeyWrapPadded};
use aws_lc_rs::rsa::{
    OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepAlgorithm, OaepPrivateDecryptingKey,
    OaepPublicEncryptingKey, PrivateDecryptingKey, PublicEncryptingKey,
};
use aws_lc_rs::signature::{
    self as sig, EcdsaKeyPair, Ed25519KeyPair, ParsedPublicKey, RsaKeyPair, VerificationAlgorithm,
};
use hsmkit::HashAlg;
use hsmkit::crypto::{self as gcm, Aes256GcmKey, CryptoProvider, HkdfOutput};
use hsmkit::{
    EcCurve, EncryptionAlgorithm, Error, KeyMaterial, KeyWrapAlgorithm as W, PublicKey, Result,
    SignatureAlgorithm as A, Zeroizing,
};
use hsmkit::{InvalidReason, UnsupportedReason};

/// Whether AWS-LC does `alg` (aws-lc-rs has no AES-192 key wrap; the RustCrypto engine
/// does those).
pub(crate) fn wraps(alg: W) -> bool {
    !matches!(alg, W::A192Kw | W::A192Kwp)
}

/// Whether the aws-lc engine runs this key's operations. secp256k1 keys go to the
/// RustCrypto form instead: AWS-LC's secp256k1 is its generic curve code, about 8 times
/// slower than `k256` (BENCHMARKS.md, ECDSA P-256K), and both pass Wycheproof.
pub(crate) fn serves(material: &KeyMaterial) -> bool {
    let curve = match material {
        KeyMaterial::EcPrivate(k) => Some(k.curve),
        KeyMaterial::Public(PublicKey::Ec(k)) => Some(k.curve()),
        KeyMaterial::RsaPrivate(_)
        | KeyMaterial::Aes(_)
        | KeyMaterial::Ed25519Private(_)
        | KeyMaterial::Hmac(_)
        | KeyMaterial::Public(PublicKey::Rsa(_) | PublicKey::Ed25519(_)) => None,
    };
    match curve {
        Some(EcCurve::P256K) => false,
        Some(EcCurve::P256 | EcCurve::P384 | EcCurve::P521) | None => true,
    }
}

/// A key loaded into AWS-LC.
pub(crate) enum AwsKey {
    Rsa {
        pair: Option<RsaKeyPair>,
        decrypt: Option<OaepPrivateDecryptingKey>,
        encrypt: OaepPublicEncryptingKey,
        verify: Vec<(A, ParsedPublicKey)>,
    },
    Ec {
        pair: Option<EcdsaKeyPair>,
        alg: A,
        verify: ParsedPublicKey,
    },
    Ed25519 {
        pair: Option<Ed25519KeyPair>,
        verify: ParsedPublicKey,
    },
    Aes(Zeroizing<Vec<u8>>),
    /// The key schedule (inner and outer hash states) of each HS* algorithm the key fits,
    /// made once rather than per call.
    Hmac(Vec<(A, hmac::Key)>),
}

/// AWS-LC's HMAC for an HS* algorithm.
fn hmac_alg(alg: A) -> Option<hmac::Algorithm> {
    match alg {
        A::Hs256 => Some(hmac::HMAC_SHA256),
        A::Hs384 => Some(hmac::HMAC_SHA384),
        A::Hs512 => Some(hmac::HMAC_SHA512),
        A::Rs256 | A::Rs384 | A::Rs512 | A::Ps256 | A::Ps384 | A::Ps512 => None,
        A::Es256 | A::Es384 | A::Es512 | A::Es256k | A::EdDsa => None,
    }
}

fn hmac_key(keys: &[(A, hmac::Key)], alg: A) -> Result<&hmac::Key> {
    keys.iter()
        .find(|(a, _)| *a == alg)
        .map(|(_, k)| k)
        .ok_or_else(|| Error::invalid(InvalidReason::KeyMismatch, format!("{alg} does not fit this key")))
}

fn rejected(what: &str) -> Error {
    Error::invalid(InvalidReason::Malformed, format!("{what} rejected by aws-lc: not a valid key"))
}

fn engine_err(what: &str) -> Error {
    Error::backend(crate::KIND, what, "aws-lc failed")
}

const RSA_ALGS: [A; 6] = [A::Rs256, A::Rs384, A::Rs512, A::Ps256, A::Ps384, A::Ps512];

fn rsa_verification(alg: A) -> Option<&'static dyn VerificationAlgorithm> {
    Some(match alg {
        A::Rs256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        A::Rs384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        A::Rs512 => &sig::RSA_PKCS1_2048_8192_SHA512,
        A::Ps256 => &sig::RSA_PSS_2048_8192_SHA256,
        A::Ps384 => &sig::RSA_PSS_2048_8192_SHA384,
        A::Ps512 => &sig::RSA_PSS_2048_8192_SHA512,
        A::Es256 | A::Es384 | A::Es512 | A::Es256k | A::EdDsa | A::Hs256 | A::Hs384 | A::Hs512 => {
            return None;
        }
    })
}

fn rsa_encoding(alg: A) -> Option<&'static dyn sig::RsaEncoding> {
    Some(match alg {
        A::Rs256 => &sig::RSA_PKCS1_SHA256,
        A::Rs384 => &sig::RSA_PKCS1_SHA384,
        A::Rs512 => &sig::RSA_PKCS1_SHA512,
        A::Ps256 => &sig::RSA_PSS_SHA256,
        A::Ps384 => &sig::RSA_PSS_SHA384,
        A::Ps512 => &sig::RSA_PSS_SHA512,
        A::Es256 | A::Es384 | A::Es512 | A::Es256k | A::EdDsa | A::Hs256 | A::Hs384 | A::Hs512 => {
            return None;
        }
    })
}

fn digest_alg(alg: A) -> Option<&'static digest::Algorithm> {
    Some(match alg {
        A::Rs256 | A::Ps256 | A::Es256 | A::Es256k => &digest::SHA256,
        A::Rs384 | A::Ps384 | A::Es384 => &digest::SHA384,
        A::Rs512 | A::Ps512 | A::Es512 => &digest::SHA512,
        // No prehash: signed whole.
        A::EdDsa | A::Hs256 | A::Hs384 | A::Hs512 => return None,
    })
}

fn ec_algs(
    curve: EcCurve,
) -> Result<(A, &'static sig::EcdsaSigningAlgorithm, &'static sig::EcdsaVerificationAlgorithm)> {
    Ok(match curve {
        EcCurve::P256 => (A::Es256, &sig::ECDSA_P256_SHA256_FIXED_SIGNING, &sig::ECDSA_P256_SHA256_FIXED),
        EcCurve::P384 => (A::Es384, &sig::ECDSA_P384_SHA384_FIXED_SIGNING, &sig::ECDSA_P384_SHA384_FIXED),
        EcCurve::P521 => (A::Es512, &sig::ECDSA_P521_SHA512_FIXED_SIGNING, &sig::ECDSA_P521_SHA512_FIXED),
        EcCurve::P256K => {
            (A::Es256k, &sig::ECDSA_P256K1_SHA256_FIXED_SIGNING, &sig::ECDSA_P256K1_SHA256_FIXED)
        }
    })
}

fn rsa_public(public: &hsmkit::RsaPublicKey, pkcs8: Option<&[u8]>) -> Result<AwsKey> {
    let pkcs1 = public.to_pkcs1_der()?;
    let verify = RSA_ALGS
        .iter()
        .filter_map(|a| rsa_verification(*a).map(|v| (*a, v)))
        .map(|(a, v)| ParsedPublicKey::new(v, &pkcs1).map(|p| (a, p)).map_err(|_| rejected("RSA public key")))
        .collect::<Result<Vec<_>>>()?;
    let spki = PublicKey::Rsa(public.clone()).to_spki_der()?;
    let encrypt = PublicEncryptingKey::from_der(&spki)
        .ok()
        .and_then(|k| OaepPublicEncryptingKey::new(k).ok())
        .ok_or_else(|| rejected("RSA public key"))?;
    let (pair, decrypt) = match pkcs8 {
        Some(der) => (
            Some(RsaKeyPair::from_pkcs8(der).map_err(|_| rejected("RSA private key"))?),
            Some(
                PrivateDecryptingKey::from_pkcs8(der)
                    .ok()
                    .and_then(|k| OaepPrivateDecryptingKey::new(k).ok())
                    .ok_or_else(|| rejected("RSA private key"))?,
            ),
        ),
        None => (None, None),
    };
    Ok(AwsKey::Rsa { pair, decrypt, encrypt, verify })
}

impl AwsKey {
    /// Loads stored material (already validated by the RustCrypto import).
    pub(crate) fn load(material: &KeyMaterial) -> Result<Self> {
        match material {
            KeyMaterial::RsaPrivate(k) => rsa_public(&k.public()?, Some(&material.to_pkcs8_der()?)),
            KeyMaterial::Public(PublicKey::Rsa(k)) => rsa_public(k, None),
            KeyMaterial::EcPrivate(k) => {
                let (alg, signing, verifying) = ec_algs(k.curve)?;
                let pair = EcdsaKeyPair::from_pkcs8(signing, &material.to_pkcs8_der()?)
                    .map_err(|_| rejected("EC private key"))?;
                let point = sig::KeyPair::public_key(&pair).as_ref().to_vec();
                let verify =
                    ParsedPublicKey::new(verifying, &point).map_err(|_| rejected("EC public key"))?;
                Ok(AwsKey::Ec { pair: Some(pair), alg, verify })
            }
            KeyMaterial::Public(PublicKey::Ec(k)) => {
                let (alg, _, verifying) = ec_algs(k.curve())?;
                let verify =
                    ParsedPublicKey::new(verifying, k.point()).map_err(|_| rejected("EC public key"))?;
                Ok(AwsKey::Ec { pair: None, alg, verify })
            }
            KeyMaterial::Aes(k) => Ok(AwsKey::Aes(k.clone())),
            KeyMaterial::Hmac(k) => Ok(AwsKey::Hmac(
                [A::Hs256, A::Hs384, A::Hs512]
                    .into_iter()
                    .filter_map(|a| hmac_alg(a).map(|h| (a, hmac::Key::new(h, k))))
                    .collect(),
            )),
            KeyMaterial::Ed25519Private(k) => {
                let pair = match &k.public {
                    Some(p) => Ed25519KeyPair::from_seed_and_public_key(&k.seed, p.as_bytes()),
                    None => Ed25519KeyPair::from_seed_unchecked(&k.seed),
                }
                .map_err(|_| rejected("Ed25519 private key"))?;
                let verify = ParsedPublicKey::new(&sig::ED25519, sig::KeyPair::public_key(&pair).as_ref())
                    .map_err(|_| rejected("Ed25519 public key"))?;
                Ok(AwsKey::Ed25519 { pair: Some(pair), verify })
            }
            KeyMaterial::Public(PublicKey::Ed25519(k)) => {
                let verify = ParsedPublicKey::new(&sig::ED25519, k.as_bytes())
                    .map_err(|_| rejected("Ed25519 public key"))?;
                Ok(AwsKey::Ed25519 { pair: None, verify })
            }
        }
    }

    fn digest(alg: A, digest: &[u8]) -> Result<Digest> {
        let d = digest_alg(alg).ok_or_else(|| {
            Error::invalid(InvalidReason::KeyMismatch, format!("{alg} does not fit this key"))
        })?;
        Digest::import_less_safe(digest, d)
            .map_err(|_| Error::invalid(InvalidReason::Length, "digest length does not fit the algorithm"))
    }

    pub(crate) fn sign_digest(&self, alg: A, digest: &[u8]) -> Result<Vec<u8>> {
        let d = Self::digest(alg, digest)?;
        let public_only = crate::public_only;
        match self {
            AwsKey::Rsa { pair, .. } => {
                let pair = pair.as_ref().ok_or_else(public_only)?;
                let enc = rsa_encoding(alg).ok_or_else(|| {
                    Error::invalid(InvalidReason::KeyMismatch, format!("{alg} does not fit this key"))
                })?;
                let mut out = vec![0u8; pair.public_modulus_len()];
                pair.sign_digest(enc, &d, &mut out).map_err(|_| engine_err("sign"))?;
                Ok(out)
            }
            AwsKey::Ec { pair, alg: key_alg, .. } if *key_alg == alg => {
                let pair = pair.as_ref().ok_or_else(public_only)?;
                Ok(pair.sign_digest(&d).map_err(|_| engine_err("sign"))?.as_ref().to_vec())
            }
            AwsKey::Ec { .. } | AwsKey::Ed25519 { .. } | AwsKey::Aes(_) | AwsKey::Hmac(_) => {
                Err(Error::invalid(InvalidReason::KeyMismatch, format!("{alg} does not fit this key")))
            }
        }
    }

    /// Signs `message`, hashing it inside AWS-LC.
    pub(crate) fn sign(&self, alg: A, message: &[u8]) -> Result<Vec<u8>> {
        let public_only = crate::public_only;
        let rng = aws_lc_rs::rand::SystemRandom::new();
        match self {
            AwsKey::Rsa { pair, .. } => {
                let pair = pair.as_ref().ok_or_else(public_only)?;
                let enc = rsa_encoding(alg).ok_or_else(|| {
                    Error::invalid(InvalidReason::KeyMismatch, format!("{alg} does not fit this key"))
                })?;
                let mut out = vec![0u8; pair.public_modulus_len()];
                pair.sign(enc, &rng, message, &mut out).map_err(|_| engine_err("sign"))?;
                Ok(out)
            }
            AwsKey::Ec { pair, alg: key_alg, .. } if *key_alg == alg => {
                let pair = pair.as_ref().ok_or_else(public_only)?;
                Ok(pair.sign(&rng, message).map_err(|_| engine_err("sign"))?.as_ref().to_vec())
            }
            AwsKey::Ed25519 { pair, .. } if alg == A::EdDsa => {
                let pair = pair.as_ref().ok_or_else(public_only)?;
                Ok(pair.sign(message).as_ref().to_vec())
            }
            AwsKey::Hmac(keys) => Ok(hmac::sign(hmac_key(keys, alg)?, message).as_ref().to_vec()),
            AwsKey::Ec { .. } | AwsKey::Ed25519 { .. } | AwsKey::Aes(_) => {
                Err(Error::invalid(InvalidReason::KeyMismatch, format!("{alg} does not fit this key")))
            }
        }
    }

    fn verifier(&self, alg: A) -> Result<&ParsedPublicKey> {
        let key = match self {
            AwsKey::Rsa { verify, .. } => verify.iter().find(|(a, _)| *a == alg).map(|(_, k)| k),
            AwsKey::Ec { alg: key_alg, verify, .. } if *key_alg == alg => Some(verify),
            AwsKey::Ed25519 { verify, .. } if alg == A::EdDsa => Some(verify),
            AwsKey::Ec { .. } | AwsKey::Ed25519 { .. } | AwsKey::Aes(_) | AwsKey::Hmac(_) => None,
        };
        key.ok_or_else(|| Error::invalid(InvalidReason::KeyMismatch, format!("{alg} does not fit this key")))
    }

    /// Verifies a signature over `message`, hashing it inside AWS-LC; an HMAC in
    /// constant time.
    pub(crate) fn verify(&self, alg: A, message: &[u8], signature: &[u8]) -> Result<()> {
        if let AwsKey::Hmac(keys) = self {
            return hmac::verify(hmac_key(keys, alg)?, message, signature)
                .map_err(|_| Error::VerificationFailed);
        }
        self.verifier(alg)?.verify_sig(message, signature).map_err(|_| Error::VerificationFailed)
    }

    pub(crate) fn verify_digest(&self, alg: A, digest: &[u8], signature: &[u8]) -> Result<()> {
        let d = Self::digest(alg, digest)?;
        self.verifier(alg)?.verify_digest_sig(&d, signature).map_err(|_| Error::VerificationFailed)
    }

    fn oaep(alg: EncryptionAlgorithm) -> Result<&'static OaepAlgorithm> {
        match alg {
            EncryptionAlgorithm::RsaOaep => Ok(&OAEP_SHA1_MGF1SHA1),
            EncryptionAlgorithm::RsaOaep256 => Ok(&OAEP_SHA256_MGF1SHA256),
        }
    }

    pub(crate) fn encrypt(
        &self,
        alg: EncryptionAlgorithm,
        plaintext: &[u8],
        label: &[u8],
    ) -> Result<Vec<u8>> {
        let AwsKey::Rsa { encrypt, .. } = self else {
            return Err(Error::invalid(InvalidReason::KeyMismatch, format!("{alg} needs an RSA key")));
        };
        let mut out = vec![0u8; encrypt.ciphertext_size()];
        let label = (!label.is_empty()).then_some(label);
        let n = encrypt
            .encrypt(Self::oaep(alg)?, plaintext, &mut out, label)
            .map_err(|_| {
                Error::invalid(InvalidReason::Length, format!("{alg}: plaintext too long for this key"))
            })?
            .len();
        out.truncate(n);
        Ok(out)
    }

    pub(crate) fn decrypt(
        &self,
        alg: EncryptionAlgorithm,
        ciphertext: &[u8],
        label: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let key = match self {
            AwsKey::Rsa { decrypt: Some(k), .. } => k,
            AwsKey::Rsa { decrypt: None, .. } => {
                return Err(crate::public_only());
            }
            AwsKey::Ec { .. } | AwsKey::Ed25519 { .. } | AwsKey::Aes(_) | AwsKey::Hmac(_) => {
                return Err(Error::invalid(InvalidReason::KeyMismatch, format!("{alg} needs an RSA key")));
            }
        };
        let oaep = Self::oaep(alg)?;
        let mut out = Zeroizing::new(vec![0u8; key.min_output_size()]);
        let label = (!label.is_empty()).then_some(label);
        let n = key.decrypt(oaep, ciphertext, &mut out, label).map_err(|_| Error::DecryptionFailed)?.len();
        out.truncate(n);
        Ok(out)
    }

    fn kek(&self, alg: W) -> Result<AesKek> {
        let AwsKey::Aes(k) = self else {
            return Err(Error::invalid(InvalidReason::KeyMismatch, "AES key wrap needs an AES key"));
        };
        let cipher = match alg {
            W::A128Kw | W::A128Kwp => &AES_128,
            W::A256Kw | W::A256Kwp => &AES_256,
            // aws-lc-rs has no AES-192 key wrap (see `wraps`); RSA-OAEP is not a KEK.
            other @ (W::A192Kw | W::A192Kwp | W::RsaOaep | W::RsaOaep256) => {
                return Err(Error::unsupported(UnsupportedReason::Algorithm, format!("{other} on aws-lc")));
            }
        };
        AesKek::new(cipher, k).map_err(|_| {
            Error::invalid(InvalidReason::KeyMismatch, "AES key has the wrong length for this algorithm")
        })
    }

    pub(crate) fn wrap_key(&self, alg: W, key: &[u8]) -> Result<Vec<u8>> {
        match alg {
            W::RsaOaep => return self.encrypt(EncryptionAlgorithm::RsaOaep, key, &[]),
            W::RsaOaep256 => return self.encrypt(EncryptionAlgorithm::RsaOaep256, key, &[]),
            W::A128Kw | W::A192Kw | W::A256Kw | W::A128Kwp | W::A192Kwp | W::A256Kwp => {}
        }
        let padded = matches!(alg, W::A128Kwp | W::A256Kwp);
        let kek = self.kek(alg)?;
        let mut out = vec![0u8; key.len().div_ceil(8) * 8 + 8];
        let n = if padded { kek.wrap_with_padding(key, &mut out) } else { kek.wrap(key, &mut out) }
            .map_err(|_| Error::invalid(InvalidReason::Length, format!("{alg}: input length not accepted")))?
            .len();
        out.truncate(n);
        Ok(out)
    }

    pub(crate) fn unwrap_key(&self, alg: W, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        match alg {
            W::RsaOaep => return self.decrypt(EncryptionAlgorithm::RsaOaep, wrapped, &[]),
            W::RsaOaep256 => return self.decrypt(EncryptionAlgorithm::RsaOaep256, wrapped, &[]),
            W::A128Kw | W::A192Kw | W::A256Kw | W::A128Kwp | W::A192Kwp | W::A256Kwp => {}
        }
        let padded = matches!(alg, W::A128Kwp | W::A256Kwp);
        let kek = self.kek(alg)?;
        let mut out = Zeroizing::new(vec![0u8; wrapped.len()]);
        let n =
            if padded { kek.unwrap_with_padding(wrapped, &mut out) } else { kek.unwrap(wrapped, &mut out) }
                .map_err(|_| Error::DecryptionFailed)?
                .len();
        out.truncate(n);
        Ok(out)
    }
}

/// The aws-lc [`CryptoProvider`]: AWS-LC's digests, HMAC, HKDF, AES-256-GCM and random
/// source.
#[derive(Clone, Copy, Debug, Default)]
pub struct AwsLcProvider;

/// [`AwsLcProvider`] as a `'static` provider.
pub static AWS_LC: AwsLcProvider = AwsLcProvider;

// The key schedule lives in OPENSSL_malloc memory, which AWS-LC cleanses on free.
struct AwsGcmKey(aead::LessSafeKey);

fn aws_digest(hash: HashAlg) -> &'static aws_lc_rs::digest::Algorithm {
    match hash {
        HashAlg::Sha1 => &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
        HashAlg::Sha256 => &aws_lc_rs::digest::SHA256,
        HashAlg::Sha384 => &aws_lc_rs::digest::SHA384,
        HashAlg::Sha512 => &aws_lc_rs::digest::SHA512,
    }
}

fn aws_hmac(hash: HashAlg) -> aws_lc_rs::hmac::Algorithm {
    match hash {
        HashAlg::Sha1 => aws_lc_rs::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        HashAlg::Sha256 => aws_lc_rs::hmac::HMAC_SHA256,
        HashAlg::Sha384 => aws_lc_rs::hmac::HMAC_SHA384,
        HashAlg::Sha512 => aws_lc_rs::hmac::HMAC_SHA512,
    }
}

impl CryptoProvider for AwsLcProvider {
    fn name(&self) -> &'static str {
        "aws-lc"
    }

    fn digest(&self, hash: HashAlg, data: &[u8]) -> Vec<u8> {
        aws_lc_rs::digest::digest(aws_digest(hash), data).as_ref().to_vec()
    }

    fn hmac(&self, hash: HashAlg, key: &[u8], data: &[u8]) -> Result<Vec<u8>> {
        let key = aws_lc_rs::hmac::Key::new(aws_hmac(hash), key);
        Ok(aws_lc_rs::hmac::sign(&key, data).as_ref().to_vec())
    }

    // Extract is one HMAC (RFC 5869 section 2.2); aws-lc-rs' own extract hides the
    // pseudorandom key, and the extract/expand split is what lets the envelope extract once.
    fn hkdf_extract(&self, hash: HashAlg, salt: &[u8], ikm: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        Ok(Zeroizing::new(self.hmac(hash, salt, ikm)?))
    }

    // RFC 5869 section 2.3 over AWS-LC's HMAC: aws-lc-rs' `Prk::new_less_safe` panics on a
    // pseudorandom key over 64 bytes, which the RFC allows.
    fn hkdf_expand(&self, hash: HashAlg, prk: &[u8], info: &[&[u8]], okm: &mut [u8]) -> Result<()> {
        self.hkdf_expand_each(hash, prk, &mut [HkdfOutput { info, okm }])
    }

    // The HMAC is keyed once (its inner and outer states computed once) for every output.
    fn hkdf_expand_each(&self, hash: HashAlg, prk: &[u8], outputs: &mut [HkdfOutput<'_>]) -> Result<()> {
        let n = hash.output_len();
        if prk.len() < n {
            return Err(Error::invalid(InvalidReason::Length, "HKDF pseudorandom key shorter than the hash"));
        }
        if outputs.iter().any(|o| o.okm.len() > n.saturating_mul(255)) {
            return Err(Error::invalid(InvalidReason::Length, "HKDF output longer than 255 hash lengths"));
        }
        let key = hmac::Key::new(aws_hmac(hash), prk);
        for o in outputs.iter_mut() {
            let mut t: Option<hmac::Tag> = None;
            for (counter, block) in (1u8..=255).zip(o.okm.chunks_mut(n)) {
                let mut ctx = hmac::Context::with_key(&key);
                if let Some(prev) = &t {
                    ctx.update(prev.as_ref());
                }
                for part in o.info {
                    ctx.update(part);
                }
                ctx.update(&[counter]);
                let tag = ctx.sign();
                let take = tag.as_ref().get(..block.len()).ok_or_else(|| engine_err("HKDF-Expand"))?;
                block.copy_from_slice(take);
                t = Some(tag);
            }
        }
        Ok(())
    }

    fn pbkdf2_hmac(
        &self,
        hash: HashAlg,
        password: &[u8],
        salt: &[u8],
        iterations: u32,
        out: &mut [u8],
    ) -> Result<()> {
        hsmkit::crypto::check_pbkdf2_iterations(iterations)?;
        let iterations = std::num::NonZeroU32::new(iterations)
            .ok_or_else(|| Error::invalid(InvalidReason::Parameter, "PBKDF2 iteration count 0"))?;
        // aws-lc-rs panics past (2^32 - 1) blocks (RFC 8018's limit); refuse it first.
        let blocks = out.len().div_ceil(hash.output_len());
        if u32::try_from(blocks).is_err() {
            return Err(Error::invalid(InvalidReason::Length, "PBKDF2 output longer than 2^32 - 1 blocks"));
        }
        if out.is_empty() {
            return Ok(());
        }
        let alg = match hash {
            HashAlg::Sha1 => aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA1,
            HashAlg::Sha256 => aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256,
            HashAlg::Sha384 => aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA384,
            HashAlg::Sha512 => aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA512,
        };
        aws_lc_rs::pbkdf2::derive(alg, iterations, salt, password, out);
        Ok(())
    }

    fn public_key_of(&self, material: &hsmkit::KeyMaterial) -> hsmkit::Result<hsmkit::PublicKey> {
        crate::public_key_of(material)
    }

    fn aes_cbc_decrypt(&self, key: &[u8], iv: &[u8; 16], ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        use aws_lc_rs::cipher::{
            AES_128, AES_192, AES_256, DecryptionContext, PaddedBlockDecryptingKey, UnboundCipherKey,
        };
        if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(16) {
            return Err(Error::DecryptionFailed);
        }
        let alg = match key.len() {
            16 => &AES_128,
            24 => &AES_192,
            32 => &AES_256,
            other => {
                return Err(Error::invalid(
                    InvalidReason::Length,
                    format!("an AES key is 16, 24 or 32 bytes, not {other}"),
                ));
            }
        };
        let key = UnboundCipherKey::new(alg, key)
            .and_then(PaddedBlockDecryptingKey::cbc_pkcs7)
            .map_err(|_| engine_err("AES-CBC key"))?;
        let mut buf = Zeroizing::new(ciphertext.to_vec());
        let n = key
            .decrypt(&mut buf, DecryptionContext::Iv128((*iv).into()))
            .map_err(|_| Error::DecryptionFailed)?
            .len();
        buf.truncate(n);
        Ok(buf)
    }

    fn aes_256_gcm(&self, key: &[u8; gcm::KEY_LEN]) -> Result<Box<dyn Aes256GcmKey>> {
        let unbound =
            aead::UnboundKey::new(&aead::AES_256_GCM, key).map_err(|_| engine_err("AES-GCM key"))?;
        Ok(Box::new(AwsGcmKey(aead::LessSafeKey::new(unbound))))
    }

    // The OS source, as on RustCrypto: AWS-LC's DRBG costs about 40 ms on its first use in
    // a process (measured: the first rotation in a fresh process went from 2 ms to 42 ms),
    // which every short-lived process (the CLI, the crash test's writers) would pay.
    fn fill_random(&self, buf: &mut [u8]) -> Result<()> {
        crate::RUSTCRYPTO.fill_random(buf)
    }

    fn verify(
        &self,
        key: &hsmkit::PublicKey,
        alg: hsmkit::SignatureAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<()> {
        crate::key::verify_public(crate::Engine::AwsLc, key, alg, message, signature)
    }
}

impl Aes256GcmKey for AwsGcmKey {
    fn seal_in_place(
        &self,
        nonce: &[u8; gcm::NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; gcm::TAG_LEN]> {
        let tag = self
            .0
            .seal_in_place_separate_tag(
                aead::Nonce::assume_unique_for_key(*nonce),
                aead::Aad::from(aad),
                in_out,
            )
            .map_err(|_| Error::invalid(InvalidReason::Length, "input too long for AES-GCM"))?;
        tag.as_ref().try_into().map_err(|_| engine_err("AES-GCM tag"))
    }

    // Out of place: `extra_in` is encrypted into `extra_out_and_tag` by the same AES-GCM
    // code as `in_out` (measured: as fast as in place; a copy first costs 30%). aws-lc-rs
    // documents the scatter seal as outside its FIPS-approved services: a build with its
    // `fips` feature should use the default (copy, then `seal_in_place`) instead.
    fn seal_to(
        &self,
        nonce: &[u8; gcm::NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
        out_and_tag: &mut [u8],
    ) -> Result<()> {
        gcm::split_for_tag(plaintext.len(), out_and_tag)?;
        self.0
            .seal_in_place_scatter(
                aead::Nonce::assume_unique_for_key(*nonce),
                aead::Aad::from(aad),
                &mut [],
                plaintext,
                out_and_tag,
            )
            .map_err(|_| Error::invalid(InvalidReason::Length, "input too long for AES-GCM"))
    }

    fn open_in_place(
        &self,
        nonce: &[u8; gcm::NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; gcm::TAG_LEN],
    ) -> Result<()> {
        self.0
            .open_in_place_separate_tag(
                aead::Nonce::assume_unique_for_key(*nonce),
                aead::Aad::from(aad),
                tag,
                in_out,
            )
            .map(|_| ())
            .map_err(|_| Error::DecryptionFailed)
    }

    fn open_to(
        &self,
        nonce: &[u8; gcm::NONCE_LEN],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8; gcm::TAG_LEN],
        out: &mut [u8],
    ) -> Result<()> {
        if out.len() != ciphertext.len() {
            return Err(Error::DecryptionFailed);
        }
        self.0
            .open_separate_gather(
                aead::Nonce::assume_unique_for_key(*nonce),
                aead::Aad::from(aad),
                ciphertext,
                tag,
                out,
            )
            .map_err(|_| Error::DecryptionFailed)
    }
}
