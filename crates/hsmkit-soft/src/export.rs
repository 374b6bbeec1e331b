//! Public halves of software keys.

use hsmkit::{EcCurve, EcPublicKey, Error, PublicKey, Result, RsaPublicKey};
use rsa::traits::PublicKeyParts;

use crate::key::{Ec, Engine};

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

/// The public key of an RSA or EC engine key.
pub(crate) fn public_key(engine: &Engine) -> Result<PublicKey> {
    Ok(match engine {
        Engine::RsaPrivate(k) => rsa_public(k.as_ref())?,
        Engine::RsaPublic(k) => rsa_public(k.as_ref())?,
        Engine::P256(k) => ec_public!(k, P256),
        Engine::P384(k) => ec_public!(k, P384),
        Engine::P521(k) => ec_public!(k, P521),
        Engine::Aes(_) => return Err(Error::unsupported("AES keys have no public key")),
    })
}
