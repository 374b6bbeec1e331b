//! Signing on the token over a digest computed by hsmkit.

use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use hsmkit::{Error, HashAlg, Result, SignatureAlgorithm, SignatureScheme};

use crate::key::TokenKey;

fn pss_params(hash: HashAlg) -> Result<PkcsPssParams> {
    let (hash_alg, mgf) = match hash {
        HashAlg::Sha256 => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
        HashAlg::Sha384 => (MechanismType::SHA384, PkcsMgfType::MGF1_SHA384),
        HashAlg::Sha512 => (MechanismType::SHA512, PkcsMgfType::MGF1_SHA512),
        other => return Err(Error::unsupported(format!("PSS with {other:?}"))),
    };
    let s_len = u64::try_from(hash.output_len()).map_err(|_| Error::invalid("salt length"))?;
    Ok(PkcsPssParams { hash_alg, mgf, s_len: s_len.into() })
}

/// `CKM_RSA_PKCS` over a DigestInfo, `CKM_RSA_PKCS_PSS` or `CKM_ECDSA` over the digest.
pub(crate) fn sign_digest(key: &TokenKey, alg: SignatureAlgorithm, digest: &[u8]) -> Result<Vec<u8>> {
    key.probe.check(hsmkit::KeyOp::Sign, hsmkit::Algorithm::Signature(alg))?;
    let (mech, data) = match alg.scheme() {
        SignatureScheme::RsaPkcs1v15 => (Mechanism::RsaPkcs, alg.hash().digest_info(digest)?),
        SignatureScheme::RsaPss => (Mechanism::RsaPkcsPss(pss_params(alg.hash())?), digest.to_vec()),
        SignatureScheme::Ecdsa(_) => (Mechanism::Ecdsa, digest.to_vec()),
    };
    key.with_private(false, |s, h| crate::oneshot::sign(s, &mech, h, &data))
}
