//! Signing and verification: messages (hashed here) and, as hazmat, digests.

use hsmkit::{Denied, Error, Result, SignatureAlgorithm as A};
use rsa::sha2::{Sha256, Sha384, Sha512};
use signature::hazmat::{PrehashSigner, PrehashVerifier};

use crate::key::{Ec, RcKey};

fn engine_err(e: impl std::fmt::Display) -> Error {
    Error::backend(crate::KIND, "sign", e.to_string())
}

fn public_only() -> Error {
    Error::PermissionDenied { key: String::new(), reason: Denied::PublicOnly }
}

macro_rules! ec_sign {
    ($k:expr, $sig:ty, $digest:expr) => {{
        match $k {
            Ec::Private(sk) => {
                let sig: $sig = sk.sign_prehash($digest).map_err(engine_err)?;
                Ok(sig.to_vec())
            }
            Ec::Public(_) => Err(public_only()),
        }
    }};
}

macro_rules! ec_verify {
    ($k:expr, $sig:ty, $digest:expr, $signature:expr) => {{
        let vk = match $k {
            Ec::Private(sk) => sk.verifying_key(),
            Ec::Public(vk) => vk.as_ref(),
        };
        let sig = <$sig>::from_slice($signature).map_err(|_| Error::VerificationFailed)?;
        vk.verify_prehash($digest, &sig).map_err(|_| Error::VerificationFailed)
    }};
}

/// Signs `message`, hashed with the algorithm's prehash.
pub(crate) fn sign(engine: &RcKey, alg: A, message: &[u8]) -> Result<Vec<u8>> {
    match alg.prehash() {
        Some(hash) => sign_digest(engine, alg, &hash.digest(message)),
        None => Err(Error::unsupported(format!("{alg} signing"))),
    }
}

/// Verifies a signature over `message`, hashed with the algorithm's prehash.
pub(crate) fn verify(engine: &RcKey, alg: A, message: &[u8], sig: &[u8]) -> Result<()> {
    match alg.prehash() {
        Some(hash) => verify_digest(engine, alg, &hash.digest(message), sig),
        None => Err(Error::unsupported(format!("{alg} verification"))),
    }
}

/// Signs a digest. ECDSA signatures are raw `r || s`.
pub(crate) fn sign_digest(engine: &RcKey, alg: A, digest: &[u8]) -> Result<Vec<u8>> {
    match (engine, alg) {
        (RcKey::RsaPrivate(k), A::Rs256) => k.pkcs1v15_sign_prehash::<Sha256>(digest).map_err(engine_err),
        (RcKey::RsaPrivate(k), A::Rs384) => k.pkcs1v15_sign_prehash::<Sha384>(digest).map_err(engine_err),
        (RcKey::RsaPrivate(k), A::Rs512) => k.pkcs1v15_sign_prehash::<Sha512>(digest).map_err(engine_err),
        (RcKey::RsaPrivate(k), A::Ps256) => k.pss_sign_prehash::<Sha256>(digest).map_err(engine_err),
        (RcKey::RsaPrivate(k), A::Ps384) => k.pss_sign_prehash::<Sha384>(digest).map_err(engine_err),
        (RcKey::RsaPrivate(k), A::Ps512) => k.pss_sign_prehash::<Sha512>(digest).map_err(engine_err),
        (RcKey::P256(k), A::Es256) => ec_sign!(k, p256::ecdsa::Signature, digest),
        (RcKey::P384(k), A::Es384) => ec_sign!(k, p384::ecdsa::Signature, digest),
        (RcKey::P521(k), A::Es512) => ec_sign!(k, p521::ecdsa::Signature, digest),
        (RcKey::RsaPublic(_), _) => Err(public_only()),
        _ => Err(Error::invalid(format!("{alg} does not fit this key"))),
    }
}

/// Verifies a signature over a digest. ECDSA signatures are raw `r || s`.
pub(crate) fn verify_digest(engine: &RcKey, alg: A, digest: &[u8], sig: &[u8]) -> Result<()> {
    let bad = |_| Error::VerificationFailed;
    match (engine, alg) {
        (RcKey::P256(k), A::Es256) => ec_verify!(k, p256::ecdsa::Signature, digest, sig),
        (RcKey::P384(k), A::Es384) => ec_verify!(k, p384::ecdsa::Signature, digest, sig),
        (RcKey::P521(k), A::Es512) => ec_verify!(k, p521::ecdsa::Signature, digest, sig),
        (RcKey::RsaPrivate(_) | RcKey::RsaPublic(_), _) => {
            let k = engine.rsa_public().ok_or(Error::VerificationFailed)?;
            match alg {
                A::Rs256 => k.pkcs1v15_verify_prehash::<Sha256>(digest, sig).map_err(bad),
                A::Rs384 => k.pkcs1v15_verify_prehash::<Sha384>(digest, sig).map_err(bad),
                A::Rs512 => k.pkcs1v15_verify_prehash::<Sha512>(digest, sig).map_err(bad),
                A::Ps256 => k.pss_verify_prehash::<Sha256>(digest, sig).map_err(bad),
                A::Ps384 => k.pss_verify_prehash::<Sha384>(digest, sig).map_err(bad),
                A::Ps512 => k.pss_verify_prehash::<Sha512>(digest, sig).map_err(bad),
                A::Es256 | A::Es384 | A::Es512 => Err(Error::invalid(format!("{alg} does not fit this key"))),
            }
        }
        _ => Err(Error::invalid(format!("{alg} does not fit this key"))),
    }
}
