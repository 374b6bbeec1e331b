//! Public halves of software keys.

use hsmkit::UnsupportedReason;
use hsmkit::{
    EcCurve, EcPublicKey, Ed25519PublicKey, Error, KeyMaterial, PublicKey, Result, RsaPublicKey, Zeroizing,
};
use rsa::pkcs8::EncodePrivateKey;
use rsa::traits::PublicKeyParts;

use crate::key::{Ec, RcKey};

fn rsa_public(k: &impl PublicKeyParts) -> Result<PublicKey> {
    Ok(PublicKey::Rsa(RsaPublicKey::new(&k.n().to_be_bytes(), &k.e().to_be_bytes())?))
}

macro_rules! ec_public {
    ($k:expr, $curve:ident) => {{
        let vk = match $k {
            Ec::Private(sk) => *sk.verifying_key(),
            Ec::Public(vk) => **vk,
        };
        PublicKey::Ec(EcPublicKey::new(EcCurve::$curve, vk.to_sec1_point(false).as_bytes())?)
    }};
}

fn ed25519_verifying(
    k: &Ec<ed25519_dalek::SigningKey, ed25519_dalek::VerifyingKey>,
) -> ed25519_dalek::VerifyingKey {
    match k {
        Ec::Private(sk) => sk.verifying_key(),
        Ec::Public(vk) => **vk,
    }
}

/// The public key of an RSA, EC or Ed25519 engine key.
pub(crate) fn public_key(engine: &RcKey) -> Result<PublicKey> {
    Ok(match engine {
        RcKey::RsaPrivate(k) => rsa_public(k.as_ref())?,
        RcKey::RsaPublic(k) => rsa_public(k.as_ref())?,
        RcKey::P256(k) => ec_public!(k, P256),
        RcKey::P384(k) => ec_public!(k, P384),
        RcKey::P521(k) => ec_public!(k, P521),
        RcKey::P256k(k) => ec_public!(k, P256K),
        RcKey::Ed25519(k) => PublicKey::Ed25519(Ed25519PublicKey::new(ed25519_verifying(k).as_bytes())?),
        RcKey::Aes(_) => {
            return Err(Error::unsupported(UnsupportedReason::Operation, "AES keys have no public key"));
        }
        RcKey::Hmac(_) => {
            return Err(Error::unsupported(UnsupportedReason::Operation, "HMAC keys have no public key"));
        }
    })
}

macro_rules! ec_private_material {
    ($k:expr, $curve:ident) => {{
        match $k {
            Ec::Private(sk) => {
                let d = Zeroizing::new(sk.to_bytes().to_vec());
                KeyMaterial::ec_private(
                    EcCurve::$curve,
                    &d,
                    Some(sk.verifying_key().to_sec1_point(false).as_bytes()),
                )?
            }
            Ec::Public(_) => KeyMaterial::Public(ec_public!($k, $curve)),
        }
    }};
}

/// The normalised material of a loaded engine key (see [`crate::normalize`]).
pub(crate) fn normalized(engine: &RcKey, original: &KeyMaterial) -> Result<KeyMaterial> {
    Ok(match engine {
        RcKey::RsaPrivate(k) => {
            let der =
                k.to_pkcs8_der().map_err(|e| Error::backend(crate::KIND, "to_pkcs8_der", e.to_string()))?;
            KeyMaterial::from_der(der.as_bytes())?
        }
        RcKey::P256(k) => ec_private_material!(k, P256),
        RcKey::P384(k) => ec_private_material!(k, P384),
        RcKey::P521(k) => ec_private_material!(k, P521),
        RcKey::P256k(k) => ec_private_material!(k, P256K),
        RcKey::Ed25519(Ec::Private(sk)) => {
            KeyMaterial::ed25519_private(sk.as_bytes(), Some(sk.verifying_key().as_bytes()))?
        }
        RcKey::RsaPublic(_) | RcKey::Ed25519(Ec::Public(_)) => KeyMaterial::Public(public_key(engine)?),
        RcKey::Aes(_) | RcKey::Hmac(_) => original.clone(),
    })
}
