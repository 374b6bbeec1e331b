//! Signing on the token: RSA and ECDSA over a digest computed by hsmkit, EdDSA and HMAC
//! over the whole message (`CKM_EDDSA`, `CKM_SHA*_HMAC`).

use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use hsmkit::{Error, HashAlg, Result, SignatureAlgorithm, SignatureScheme};
use hsmkit::{InvalidReason, UnsupportedReason};

use crate::key::TokenKey;

fn pss_params(hash: HashAlg) -> Result<PkcsPssParams> {
    let (hash_alg, mgf) = match hash {
        HashAlg::Sha256 => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
        HashAlg::Sha384 => (MechanismType::SHA384, PkcsMgfType::MGF1_SHA384),
        HashAlg::Sha512 => (MechanismType::SHA512, PkcsMgfType::MGF1_SHA512),
        other => return Err(Error::unsupported(UnsupportedReason::Algorithm, format!("PSS with {other:?}"))),
    };
    let s_len =
        u64::try_from(hash.output_len()).map_err(|_| Error::invalid(InvalidReason::Length, "salt length"))?;
    Ok(PkcsPssParams { hash_alg, mgf, s_len: s_len.into() })
}

/// `CKM_RSA_PKCS` over a DigestInfo, `CKM_RSA_PKCS_PSS` or `CKM_ECDSA` over the digest.
pub(crate) fn sign_digest(key: &TokenKey, alg: SignatureAlgorithm, digest: &[u8]) -> Result<Vec<u8>> {
    key.probe.check(hsmkit::KeyOp::Sign, hsmkit::Algorithm::Signature(alg))?;
    let (mech, data) = match alg.scheme() {
        SignatureScheme::RsaPkcs1v15 => (Mechanism::RsaPkcs, alg.hash().digest_info(digest)?),
        SignatureScheme::RsaPss => (Mechanism::RsaPkcsPss(pss_params(alg.hash())?), digest.to_vec()),
        SignatureScheme::Ecdsa(_) => (Mechanism::Ecdsa, digest.to_vec()),
        SignatureScheme::Ed25519 | SignatureScheme::Hmac => {
            return Err(Error::invalid(
                InvalidReason::Parameter,
                format!("{alg} signs the whole message: it takes no digest"),
            ));
        }
    };
    key.with_private(false, |s, h| crate::oneshot::sign(s, &mech, h, &data))
}

/// The mechanism of an algorithm that the token runs over the whole message.
pub(crate) fn message_mechanism(alg: SignatureAlgorithm) -> Option<Mechanism<'static>> {
    match alg {
        // Pure Ed25519: CKM_EDDSA without parameters (PKCS#11 3.0 section 2.3.14).
        SignatureAlgorithm::EdDsa => Some(Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure))),
        SignatureAlgorithm::Hs256 => Some(Mechanism::Sha256Hmac),
        SignatureAlgorithm::Hs384 => Some(Mechanism::Sha384Hmac),
        SignatureAlgorithm::Hs512 => Some(Mechanism::Sha512Hmac),
        SignatureAlgorithm::Rs256
        | SignatureAlgorithm::Rs384
        | SignatureAlgorithm::Rs512
        | SignatureAlgorithm::Ps256
        | SignatureAlgorithm::Ps384
        | SignatureAlgorithm::Ps512
        | SignatureAlgorithm::Es256
        | SignatureAlgorithm::Es384
        | SignatureAlgorithm::Es512
        | SignatureAlgorithm::Es256k => None,
    }
}

/// Signs `message` on the token: EdDSA and HMAC whole; the others over hsmkit's digest.
pub(crate) fn sign(key: &TokenKey, alg: SignatureAlgorithm, message: &[u8]) -> Result<Vec<u8>> {
    match (alg.prehash(), message_mechanism(alg)) {
        (Some(hash), _) => sign_digest(key, alg, &crate::crypto().digest(hash, message)),
        (None, Some(mech)) => {
            key.probe.check(hsmkit::KeyOp::Sign, hsmkit::Algorithm::Signature(alg))?;
            key.with_private(false, |s, h| crate::oneshot::sign(s, &mech, h, message))
        }
        (None, None) => Err(Error::unsupported(
            UnsupportedReason::Mechanism,
            format!("{alg}: hsmkit knows no PKCS#11 mechanism for it"),
        )),
    }
}

/// Verifies an HMAC on the token (`C_Verify`: the key is secret, so this is no public
/// operation). A wrong tag is [`Error::VerificationFailed`].
pub(crate) fn verify_secret(
    key: &TokenKey,
    alg: SignatureAlgorithm,
    message: &[u8],
    signature: &[u8],
) -> Result<()> {
    let mech = message_mechanism(alg).ok_or_else(|| {
        Error::unsupported(
            UnsupportedReason::Mechanism,
            format!("{alg}: no PKCS#11 mechanism verifies it with a secret key"),
        )
    })?;
    key.probe.check(hsmkit::KeyOp::Sign, hsmkit::Algorithm::Signature(alg))?;
    key.with_private(false, |s, h| crate::oneshot::verify(s, &mech, h, message, signature))
}
