//! Signing and verification: messages (hashed here) and, as hazmat, digests.

use hmac::{KeyInit, Mac};
use hsmkit::InvalidReason;
use hsmkit::{Error, Result, SignatureAlgorithm as A};
use rsa::sha2::{Sha256, Sha384, Sha512};
use signature::hazmat::{PrehashSigner, PrehashVerifier};
use signature::{Signer, Verifier};

use crate::key::{Ec, RcKey};

fn engine_err(e: impl std::fmt::Display) -> Error {
    Error::backend(crate::KIND, "sign", e.to_string())
}

use crate::public_only;

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

fn hmac_tag<M: Mac + KeyInit>(key: &[u8], message: &[u8]) -> Result<M> {
    let mut mac = <M as KeyInit>::new_from_slice(key)
        .map_err(|_| Error::invalid(InvalidReason::Length, "HMAC key length"))?;
    mac.update(message);
    Ok(mac)
}

/// HMAC-SHA-2 of `message` under `key` (`sign`), or its constant-time check (`verify`).
macro_rules! hmac_op {
    (sign, $hash:ty, $key:expr, $message:expr) => {
        Ok(hmac_tag::<hmac::Hmac<$hash>>($key, $message)?.finalize().into_bytes().to_vec())
    };
    (verify, $hash:ty, $key:expr, $message:expr, $tag:expr) => {
        // verify_slice compares in constant time and refuses a truncated tag.
        hmac_tag::<hmac::Hmac<$hash>>($key, $message)?
            .verify_slice($tag)
            .map_err(|_| Error::VerificationFailed)
    };
}

/// Signs `message`: hashed with the algorithm's prehash (RSA, ECDSA), or whole (EdDSA,
/// HMAC).
pub(crate) fn sign(engine: &RcKey, alg: A, message: &[u8]) -> Result<Vec<u8>> {
    if let Some(hash) = alg.prehash() {
        return sign_digest(engine, alg, &crate::provider::digest(hash, message));
    }
    match (engine, alg) {
        (RcKey::Ed25519(Ec::Private(sk)), A::EdDsa) => Ok(sk.sign(message).to_bytes().to_vec()),
        (RcKey::Ed25519(Ec::Public(_)), A::EdDsa) => Err(public_only()),
        (RcKey::Hmac(k), A::Hs256) => hmac_op!(sign, Sha256, k, message),
        (RcKey::Hmac(k), A::Hs384) => hmac_op!(sign, Sha384, k, message),
        (RcKey::Hmac(k), A::Hs512) => hmac_op!(sign, Sha512, k, message),
        _ => Err(Error::invalid(InvalidReason::KeyMismatch, format!("{alg} does not fit this key"))),
    }
}

/// Verifies a signature over `message`, as [`sign`] makes it.
pub(crate) fn verify(engine: &RcKey, alg: A, message: &[u8], sig: &[u8]) -> Result<()> {
    if let Some(hash) = alg.prehash() {
        return verify_digest(engine, alg, &crate::provider::digest(hash, message), sig);
    }
    match (engine, alg) {
        (RcKey::Ed25519(k), A::EdDsa) => {
            let vk = match k {
                Ec::Private(sk) => sk.verifying_key(),
                Ec::Public(vk) => **vk,
            };
            let sig = ed25519_dalek::Signature::from_slice(sig).map_err(|_| Error::VerificationFailed)?;
            // RFC 8032 section 5.1.7 (cofactorless; S must be below the group order).
            vk.verify(message, &sig).map_err(|_| Error::VerificationFailed)
        }
        (RcKey::Hmac(k), A::Hs256) => hmac_op!(verify, Sha256, k, message, sig),
        (RcKey::Hmac(k), A::Hs384) => hmac_op!(verify, Sha384, k, message, sig),
        (RcKey::Hmac(k), A::Hs512) => hmac_op!(verify, Sha512, k, message, sig),
        _ => Err(Error::invalid(InvalidReason::KeyMismatch, format!("{alg} does not fit this key"))),
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
        (RcKey::P256k(k), A::Es256k) => ec_sign!(k, k256::ecdsa::Signature, digest),
        (RcKey::RsaPublic(_), _) => Err(public_only()),
        _ => Err(Error::invalid(InvalidReason::KeyMismatch, format!("{alg} does not fit this key"))),
    }
}

/// Verifies a signature over a digest. ECDSA signatures are raw `r || s`.
pub(crate) fn verify_digest(engine: &RcKey, alg: A, digest: &[u8], sig: &[u8]) -> Result<()> {
    let bad = |_| Error::VerificationFailed;
    match (engine, alg) {
        (RcKey::P256(k), A::Es256) => ec_verify!(k, p256::ecdsa::Signature, digest, sig),
        (RcKey::P384(k), A::Es384) => ec_verify!(k, p384::ecdsa::Signature, digest, sig),
        (RcKey::P521(k), A::Es512) => ec_verify!(k, p521::ecdsa::Signature, digest, sig),
        (RcKey::P256k(k), A::Es256k) => {
            let vk = match k {
                Ec::Private(sk) => sk.verifying_key(),
                Ec::Public(vk) => vk.as_ref(),
            };
            // k256 refuses a high S (Bitcoin's rule); ECDSA accepts (r, s) and (r, n - s)
            // alike, so the signature is normalised first.
            let sig = k256::ecdsa::Signature::from_slice(sig).map_err(|_| Error::VerificationFailed)?;
            vk.verify_prehash(digest, &sig.normalize_s()).map_err(|_| Error::VerificationFailed)
        }
        (RcKey::RsaPrivate(_) | RcKey::RsaPublic(_), _) => {
            let k = engine.rsa_public().ok_or(Error::VerificationFailed)?;
            match alg {
                A::Rs256 => k.pkcs1v15_verify_prehash::<Sha256>(digest, sig).map_err(bad),
                A::Rs384 => k.pkcs1v15_verify_prehash::<Sha384>(digest, sig).map_err(bad),
                A::Rs512 => k.pkcs1v15_verify_prehash::<Sha512>(digest, sig).map_err(bad),
                A::Ps256 => k.pss_verify_prehash::<Sha256>(digest, sig).map_err(bad),
                A::Ps384 => k.pss_verify_prehash::<Sha384>(digest, sig).map_err(bad),
                A::Ps512 => k.pss_verify_prehash::<Sha512>(digest, sig).map_err(bad),
                A::Es256 | A::Es384 | A::Es512 | A::Es256k | A::EdDsa | A::Hs256 | A::Hs384 | A::Hs512 => {
                    Err(Error::invalid(InvalidReason::KeyMismatch, format!("{alg} does not fit this key")))
                }
            }
        }
        _ => Err(Error::invalid(InvalidReason::KeyMismatch, format!("{alg} does not fit this key"))),
    }
}
