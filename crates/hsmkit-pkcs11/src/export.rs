//! Reading public keys (and foreign keys' specs) off the token.

use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectHandle};
use cryptoki::session::Session;
use der::Decode;
use hsmkit::UnsupportedReason;
use hsmkit::{EcCurve, EcPublicKey, Ed25519PublicKey, Error, KeySpec, PublicKey, Result, RsaPublicKey};

use crate::error::{KIND, map};

fn attr(attrs: &[Attribute], want: AttributeType) -> Option<&Attribute> {
    attrs.iter().find(|a| a.attribute_type() == want)
}

fn missing(what: &str) -> Error {
    Error::backend(KIND, "C_GetAttributeValue", format!("token object lacks {what}"))
}

/// The curve of a DER `CKA_EC_PARAMS` (named curve OID).
pub(crate) fn curve_of(params: &[u8]) -> Result<EcCurve> {
    let oid = const_oid::ObjectIdentifier::from_der(params).map_err(|_| {
        Error::unsupported(UnsupportedReason::KeyType, "EC parameters other than a named curve")
    })?;
    EcCurve::from_oid(&oid)
}

/// A point from `CKA_EC_POINT`: DER OCTET STRING per PKCS#11, raw on some tokens.
fn point_of(curve: EcCurve, value: &[u8]) -> Result<Vec<u8>> {
    if value.len() == 1 + 2 * curve.field_len() && value.first() == Some(&4) {
        return Ok(value.to_vec());
    }
    let os = <&der::asn1::OctetStringRef>::from_der(value).map_err(|_| missing("a valid CKA_EC_POINT"))?;
    Ok(os.as_bytes().to_vec())
}

/// An Ed25519 public key from `CKA_EC_POINT`: the DER OCTET STRING of the 32 bytes per
/// PKCS#11 3.0, the bare 32 bytes on some tokens.
fn ed25519_point(value: &[u8]) -> Result<Ed25519PublicKey> {
    if value.len() == Ed25519PublicKey::LEN {
        return Ed25519PublicKey::new(value);
    }
    let os = <&der::asn1::OctetStringRef>::from_der(value).map_err(|_| missing("a valid CKA_EC_POINT"))?;
    Ed25519PublicKey::new(os.as_bytes())
}

/// Reads the public key of an RSA, EC or Ed25519 key object (public or private).
pub(crate) fn read_public(
    s: &Session,
    h: ObjectHandle,
) -> cryptoki::error::Result<Option<Result<PublicKey>>> {
    let kt = s.get_attributes(h, &[AttributeType::KeyType])?;
    let public = match attr(&kt, AttributeType::KeyType) {
        Some(Attribute::KeyType(t)) if *t == KeyType::RSA => {
            let a = s.get_attributes(h, &[AttributeType::Modulus, AttributeType::PublicExponent])?;
            match (attr(&a, AttributeType::Modulus), attr(&a, AttributeType::PublicExponent)) {
                (Some(Attribute::Modulus(n)), Some(Attribute::PublicExponent(e))) => {
                    RsaPublicKey::new(n, e).map(PublicKey::Rsa)
                }
                _ => Err(missing("CKA_MODULUS")),
            }
        }
        Some(Attribute::KeyType(t)) if *t == KeyType::EC => {
            let a = s.get_attributes(h, &[AttributeType::EcParams, AttributeType::EcPoint])?;
            match (attr(&a, AttributeType::EcParams), attr(&a, AttributeType::EcPoint)) {
                (Some(Attribute::EcParams(p)), Some(Attribute::EcPoint(q))) => curve_of(p)
                    .and_then(|c| point_of(c, q).and_then(|pt| EcPublicKey::new(c, &pt)))
                    .map(PublicKey::Ec),
                _ => Err(missing("CKA_EC_POINT")),
            }
        }
        Some(Attribute::KeyType(t)) if *t == KeyType::EC_EDWARDS => {
            let a = s.get_attributes(h, &[AttributeType::EcParams, AttributeType::EcPoint])?;
            match (attr(&a, AttributeType::EcParams), attr(&a, AttributeType::EcPoint)) {
                (Some(Attribute::EcParams(p)), Some(Attribute::EcPoint(q))) => {
                    if crate::generate::is_ed25519_params(p) {
                        ed25519_point(q).map(PublicKey::Ed25519)
                    } else {
                        Err(Error::unsupported(
                            UnsupportedReason::KeyType,
                            "Edwards curves other than Ed25519",
                        ))
                    }
                }
                _ => Err(missing("CKA_EC_POINT")),
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(public))
}

/// The spec of a key object hsmkit did not create (found by label only).
pub(crate) fn foreign_spec(s: &Session, h: ObjectHandle) -> Result<KeySpec> {
    let a = s
        .get_attributes(
            h,
            &[
                AttributeType::KeyType,
                AttributeType::Modulus,
                AttributeType::EcParams,
                AttributeType::ValueLen,
            ],
        )
        .map_err(map)?;
    match attr(&a, AttributeType::KeyType) {
        Some(Attribute::KeyType(t)) if *t == KeyType::RSA => match attr(&a, AttributeType::Modulus) {
            Some(Attribute::Modulus(n)) => Ok(KeySpec::Rsa { bits: RsaPublicKey::new(n, &[1])?.bits() }),
            _ => Err(missing("CKA_MODULUS")),
        },
        Some(Attribute::KeyType(t)) if *t == KeyType::EC => match attr(&a, AttributeType::EcParams) {
            Some(Attribute::EcParams(p)) => Ok(KeySpec::Ec(curve_of(p)?)),
            _ => Err(missing("CKA_EC_PARAMS")),
        },
        Some(Attribute::KeyType(t)) if *t == KeyType::AES => match attr(&a, AttributeType::ValueLen) {
            Some(Attribute::ValueLen(n)) => {
                let len = usize::try_from(u64::from(*n)).map_err(|_| missing("CKA_VALUE_LEN"))?;
                Ok(KeySpec::Aes(hsmkit::AesSize::from_len(len)?))
            }
            _ => Err(missing("CKA_VALUE_LEN")),
        },
        Some(Attribute::KeyType(t)) if *t == KeyType::EC_EDWARDS => match attr(&a, AttributeType::EcParams) {
            Some(Attribute::EcParams(p)) if crate::generate::is_ed25519_params(p) => Ok(KeySpec::Ed25519),
            Some(Attribute::EcParams(_)) => {
                Err(Error::unsupported(UnsupportedReason::KeyType, "Edwards curves other than Ed25519"))
            }
            _ => Err(missing("CKA_EC_PARAMS")),
        },
        Some(Attribute::KeyType(t)) if *t == KeyType::GENERIC_SECRET => {
            match attr(&a, AttributeType::ValueLen) {
                Some(Attribute::ValueLen(n)) => {
                    let bits = u32::try_from(u64::from(*n))
                        .ok()
                        .and_then(|n| n.checked_mul(8))
                        .ok_or_else(|| missing("CKA_VALUE_LEN"))?;
                    KeySpec::check_hmac_bits(bits)?;
                    Ok(KeySpec::Hmac { bits })
                }
                _ => Err(missing("CKA_VALUE_LEN")),
            }
        }
        _ => Err(Error::unsupported(UnsupportedReason::KeyType, "this token key type")),
    }
}

/// The usage flags of a key object, as hsmkit operations.
#[allow(clippy::wildcard_enum_match_arm, reason = "cryptoki's Attribute: only usage flags are read")]
pub(crate) fn foreign_ops(s: &Session, handles: &[ObjectHandle]) -> Result<hsmkit::KeyOps> {
    use hsmkit::KeyOp;
    let mut ops = hsmkit::KeyOps::NONE;
    for h in handles {
        let a = s
            .get_attributes(
                *h,
                &[
                    AttributeType::Sign,
                    AttributeType::Verify,
                    AttributeType::Encrypt,
                    AttributeType::Decrypt,
                    AttributeType::Wrap,
                    AttributeType::Unwrap,
                ],
            )
            .map_err(map)?;
        for at in a {
            match at {
                Attribute::Sign(true) => ops = ops.with(KeyOp::Sign),
                Attribute::Verify(true) => ops = ops.with(KeyOp::Verify),
                Attribute::Encrypt(true) => ops = ops.with(KeyOp::Encrypt),
                Attribute::Decrypt(true) => ops = ops.with(KeyOp::Decrypt),
                Attribute::Wrap(true) => ops = ops.with(KeyOp::WrapKey),
                Attribute::Unwrap(true) => ops = ops.with(KeyOp::UnwrapKey),
                _ => {}
            }
        }
    }
    Ok(ops)
}
