//! Key generation from OS randomness.

use getrandom::SysRng;
use hsmkit::InvalidReason;
use hsmkit::{EcCurve, Error, KeyMaterial, KeySpec, Result, Zeroizing};
use rsa::pkcs8::EncodePrivateKey;

use crate::key::{Ec, RcKey};

fn rng_err(e: impl std::fmt::Display) -> Error {
    Error::backend(crate::KIND, "getrandom", format!("OS random number generator failed: {e}"))
}

macro_rules! ec_generate {
    ($curve:ident, $variant:ident, $crate_:ident) => {{
        let sk = <$crate_::ecdsa::SigningKey as rsa::Generate>::try_generate_from_rng(&mut SysRng)
            .map_err(rng_err)?;
        let point = sk.verifying_key().to_sec1_point(false);
        let d = Zeroizing::new(sk.to_bytes().to_vec());
        let material = KeyMaterial::ec_private(EcCurve::$curve, &d, Some(point.as_bytes()))?;
        (material, RcKey::$variant(Ec::Private(Box::new(sk))))
    }};
}

/// Generates a key of `spec`, returning its material (for storage) and engine form.
pub(crate) fn generate(spec: KeySpec) -> Result<(KeyMaterial, RcKey)> {
    Ok(match spec {
        KeySpec::Rsa { bits } => {
            let bits =
                usize::try_from(bits).map_err(|_| Error::invalid(InvalidReason::Parameter, "RSA size"))?;
            let key = rsa::PrivateKey::new(&mut SysRng, bits)
                .map_err(|e| Error::backend(crate::KIND, "rsa::PrivateKey::new", e.to_string()))?;
            let der =
                key.to_pkcs8_der().map_err(|e| Error::backend(crate::KIND, "to_pkcs8_der", e.to_string()))?;
            (KeyMaterial::from_der(der.as_bytes())?, RcKey::RsaPrivate(Box::new(key)))
        }
        KeySpec::Ec(EcCurve::P256) => ec_generate!(P256, P256, p256),
        KeySpec::Ec(EcCurve::P384) => ec_generate!(P384, P384, p384),
        KeySpec::Ec(EcCurve::P521) => ec_generate!(P521, P521, p521),
        KeySpec::Ec(EcCurve::P256K) => ec_generate!(P256K, P256k, k256),
        KeySpec::Ed25519 => {
            let mut seed = Zeroizing::new([0u8; 32]);
            getrandom::fill(seed.as_mut_slice()).map_err(rng_err)?;
            let sk = ed25519_dalek::SigningKey::from_bytes(&seed);
            let material =
                KeyMaterial::ed25519_private(seed.as_slice(), Some(sk.verifying_key().as_bytes()))?;
            (material, RcKey::Ed25519(Ec::Private(Box::new(sk))))
        }
        KeySpec::Hmac { bits } => {
            let len = usize::try_from(bits / 8)
                .map_err(|_| Error::invalid(InvalidReason::Parameter, "HMAC key size"))?;
            let mut k = Zeroizing::new(vec![0u8; len]);
            getrandom::fill(&mut k).map_err(rng_err)?;
            (KeyMaterial::hmac(&k)?, RcKey::Hmac(k))
        }
        KeySpec::Aes(size) => {
            let mut k = Zeroizing::new(vec![0u8; size.byte_len()]);
            getrandom::fill(&mut k).map_err(rng_err)?;
            (KeyMaterial::aes(&k)?, RcKey::Aes(k))
        }
    })
}
