//! Loading key material into engine objects, with every check the engines offer.

use hsmkit::InvalidReason;
use hsmkit::{EcCurve, Error, KeyMaterial, KeySpec, PublicKey, Result};
use rsa::pkcs1::DecodeRsaPublicKey;

use crate::key::{Ec, RcKey};

fn rejected(what: &str) -> Error {
    Error::invalid(InvalidReason::Malformed, format!("{what} rejected: not a valid key"))
}

macro_rules! ec_private {
    ($k:expr, $variant:ident, $crate_:ident) => {{
        let sk = $crate_::ecdsa::SigningKey::from_slice(&$k.d).map_err(|_| rejected("EC private key"))?;
        if let Some(point) = &$k.public_point {
            let given = $crate_::ecdsa::VerifyingKey::from_sec1_bytes(point)
                .map_err(|_| rejected("EC public point"))?;
            if &given != sk.verifying_key() {
                return Err(Error::invalid(
                    InvalidReason::KeyMismatch,
                    "EC public point does not match the private key",
                ));
            }
        }
        RcKey::$variant(Ec::Private(Box::new(sk)))
    }};
}

macro_rules! ec_public {
    ($point:expr, $variant:ident, $crate_:ident) => {{
        let vk =
            $crate_::ecdsa::VerifyingKey::from_sec1_bytes($point).map_err(|_| rejected("EC public key"))?;
        RcKey::$variant(Ec::Public(Box::new(vk)))
    }};
}

/// Builds the engine form of `material`, validating it.
pub(crate) fn import(material: &KeyMaterial) -> Result<(KeySpec, RcKey)> {
    let spec = material.spec()?;
    let engine = match material {
        KeyMaterial::RsaPrivate(k) => {
            // From (n, e, d, p, q), as rsa's own PKCS#1 decoder does: from_components
            // validates the key and computes the CRT values, so JWKs without dp/dq/qi load.
            let bits = u32::try_from(k.n.len())
                .ok()
                .and_then(|l| l.checked_mul(8))
                .ok_or_else(|| rejected("RSA modulus"))?;
            let e_bits = u32::try_from(k.e.len())
                .ok()
                .and_then(|l| l.checked_mul(8))
                .ok_or_else(|| rejected("RSA exponent"))?;
            let uint = |b: &[u8], bits: u32| {
                rsa::BoxedUint::from_be_slice(b, bits).map_err(|_| rejected("RSA private key"))
            };
            let key = rsa::PrivateKey::from_components(
                uint(&k.n, bits)?,
                uint(&k.e, e_bits)?,
                uint(&k.d, bits)?,
                vec![uint(&k.p, bits)?, uint(&k.q, bits)?],
            )
            .map_err(|_| rejected("RSA private key"))?;
            RcKey::RsaPrivate(Box::new(key))
        }
        KeyMaterial::EcPrivate(k) => match k.curve {
            EcCurve::P256 => ec_private!(k, P256, p256),
            EcCurve::P384 => ec_private!(k, P384, p384),
            EcCurve::P521 => ec_private!(k, P521, p521),
            EcCurve::P256K => ec_private!(k, P256k, k256),
        },
        KeyMaterial::Public(PublicKey::Rsa(k)) => {
            let key =
                rsa::PublicKey::from_pkcs1_der(&k.to_pkcs1_der()?).map_err(|_| rejected("RSA public key"))?;
            RcKey::RsaPublic(Box::new(key))
        }
        KeyMaterial::Public(PublicKey::Ec(k)) => match k.curve() {
            EcCurve::P256 => ec_public!(k.point(), P256, p256),
            EcCurve::P384 => ec_public!(k.point(), P384, p384),
            EcCurve::P521 => ec_public!(k.point(), P521, p521),
            EcCurve::P256K => ec_public!(k.point(), P256k, k256),
        },
        KeyMaterial::Aes(k) => RcKey::Aes(k.clone()),
        KeyMaterial::Hmac(k) => RcKey::Hmac(k.clone()),
        KeyMaterial::Ed25519Private(k) => {
            let sk = ed25519_dalek::SigningKey::from_bytes(&k.seed);
            if let Some(public) = &k.public
                && public.as_bytes() != sk.verifying_key().as_bytes()
            {
                return Err(Error::invalid(
                    InvalidReason::KeyMismatch,
                    "Ed25519 public key does not match the private key",
                ));
            }
            RcKey::Ed25519(Ec::Private(Box::new(sk)))
        }
        KeyMaterial::Public(PublicKey::Ed25519(k)) => {
            // Decompresses the point: a string that is no point on the curve is refused.
            let vk = ed25519_dalek::VerifyingKey::from_bytes(k.as_bytes())
                .map_err(|_| rejected("Ed25519 public key"))?;
            RcKey::Ed25519(Ec::Public(Box::new(vk)))
        }
    };
    Ok((spec, engine))
}
