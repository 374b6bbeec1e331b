//! Key wrapping on the token. The data key travels as a short-lived, non-token session
//! object: wrap = create + `C_WrapKey` + destroy; unwrap = `C_UnwrapKey` into an
//! extractable session object + read + destroy.

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use hsmkit::{Error, KeyWrapAlgorithm, Result, WrapScheme, Zeroizing};

use crate::key::TokenKey;
use crate::probe::oaep_params;

fn data_key_template() -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::Token(false),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
    ]
}

/// Zeroizes the secret values in a template once the token has them.
pub(crate) fn wipe(template: &mut [Attribute]) {
    use zeroize::Zeroize;
    for a in template {
        match a {
            Attribute::Value(v)
            | Attribute::PrivateExponent(v)
            | Attribute::Prime1(v)
            | Attribute::Prime2(v)
            | Attribute::Exponent1(v)
            | Attribute::Exponent2(v)
            | Attribute::Coefficient(v) => v.zeroize(),
            _ => {}
        }
    }
}

fn destroy_quietly(s: &Session, h: ObjectHandle) {
    if let Err(e) = s.destroy_object(h) {
        tracing::warn!(target: "hsmkit::pkcs11", "could not destroy a session data-key object: {e}");
    }
}

fn aes_mechanism(key: &TokenKey, op: hsmkit::KeyOp, alg: KeyWrapAlgorithm) -> Result<Mechanism<'static>> {
    key.probe.check(op, hsmkit::Algorithm::KeyWrap(alg))?;
    match alg.scheme() {
        WrapScheme::AesKw(_) => Ok(Mechanism::AesKeyWrap),
        WrapScheme::AesKwp(_) => Ok(Mechanism::AesKeyWrapPad),
        _ => Err(Error::unsupported(format!("{alg}"))),
    }
}

pub(crate) fn wrap_key(key: &TokenKey, alg: KeyWrapAlgorithm, dek: &[u8]) -> Result<Vec<u8>> {
    if let WrapScheme::RsaOaep(_) = alg.scheme() {
        // Public operation: OAEP encryption with the public key, in software.
        let ops =
            key.public_ops.as_deref().ok_or_else(|| Error::unsupported("the token holds no public key"))?;
        return ops.wrap_key(alg, dek);
    }
    let mech = aes_mechanism(key, hsmkit::KeyOp::WrapKey, alg)?;
    key.with_private(false, |s, kek| {
        let mut t = data_key_template();
        t.push(Attribute::Value(dek.to_vec()));
        let temp = s.create_object(&t);
        wipe(&mut t);
        let temp = temp?;
        let r = s.wrap_key(&mech, kek, temp);
        destroy_quietly(s, temp);
        r
    })
}

pub(crate) fn unwrap_key(
    key: &TokenKey,
    alg: KeyWrapAlgorithm,
    wrapped: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let mech = match alg.scheme() {
        WrapScheme::RsaOaep(enc) => {
            key.probe.check_oaep(enc, &[])?;
            Mechanism::RsaPkcsOaep(oaep_params(enc, &[]))
        }
        _ => aes_mechanism(key, hsmkit::KeyOp::UnwrapKey, alg)?,
    };
    key.with_private(true, |s, kek| {
        let temp = s.unwrap_key(&mech, kek, wrapped, &data_key_template())?;
        let value = s.get_attributes(temp, &[AttributeType::Value]);
        destroy_quietly(s, temp);
        let value = value?.into_iter().find_map(|a| match a {
            Attribute::Value(v) => Some(Zeroizing::new(v)),
            _ => None,
        });
        value.ok_or(cryptoki::error::Error::Pkcs11(
            cryptoki::error::RvError::AttributeTypeInvalid,
            cryptoki::context::Function::GetAttributeValue,
        ))
    })
}
