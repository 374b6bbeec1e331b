//! Key import with `C_CreateObject`, after validation by the software engines.

use cryptoki::object::{Attribute, KeyType as CkKeyType, ObjectHandle};
use cryptoki::session::Session;
use der::Encode;
use hsmkit::{Error, KeyMaterial, NewKey, PublicKey, Result};

use crate::error::OpError;
use crate::generate::{ec_params, private_template, public_template};
use crate::wrap::wipe;

fn create(s: &Session, mut t: Vec<Attribute>) -> std::result::Result<ObjectHandle, OpError> {
    let r = s.create_object(&t);
    wipe(&mut t);
    Ok(r?)
}

fn ec_point(point: &[u8]) -> Result<Vec<u8>> {
    der::asn1::OctetStringRef::new(point)
        .and_then(|o| o.to_der())
        .map_err(|e| Error::invalid(format!("DER: {e}")))
}

fn public_object(
    s: &Session,
    req: &NewKey<'_>,
    public: &PublicKey,
) -> std::result::Result<ObjectHandle, OpError> {
    let mut t = public_template(req);
    match public {
        PublicKey::Rsa(k) => t.extend([
            Attribute::KeyType(CkKeyType::RSA),
            Attribute::Modulus(k.n().to_vec()),
            Attribute::PublicExponent(k.e().to_vec()),
        ]),
        PublicKey::Ec(k) => t.extend([
            Attribute::KeyType(CkKeyType::EC),
            Attribute::EcParams(ec_params(k.curve())?),
            Attribute::EcPoint(ec_point(k.point())?),
        ]),
        _ => return Err(Error::unsupported("this public key type").into()),
    }
    create(s, t)
}

/// Creates the objects for `material` (already normalised). Returns (private, public).
pub(crate) fn import(
    s: &Session,
    req: &NewKey<'_>,
    material: &KeyMaterial,
) -> std::result::Result<(Option<ObjectHandle>, Option<ObjectHandle>), OpError> {
    match material {
        KeyMaterial::RsaPrivate(k) => {
            let mut t = private_template(req, false);
            t.extend([
                Attribute::KeyType(CkKeyType::RSA),
                Attribute::Modulus(k.n.clone()),
                Attribute::PublicExponent(k.e.clone()),
                Attribute::PrivateExponent(k.d.clone()),
                Attribute::Prime1(k.p.clone()),
                Attribute::Prime2(k.q.clone()),
                Attribute::Exponent1(k.dp.clone()),
                Attribute::Exponent2(k.dq.clone()),
                Attribute::Coefficient(k.qinv.clone()),
            ]);
            let private = create(s, t)?;
            let public = public_object(s, req, &PublicKey::Rsa(k.public()?))?;
            Ok((Some(private), Some(public)))
        }
        KeyMaterial::EcPrivate(k) => {
            let point =
                k.public_point.clone().ok_or_else(|| Error::invalid("EC key without its public point"))?;
            let mut t = private_template(req, false);
            t.extend([
                Attribute::KeyType(CkKeyType::EC),
                Attribute::EcParams(ec_params(k.curve)?),
                Attribute::Value(k.d.clone()),
            ]);
            let private = create(s, t)?;
            let public = public_object(s, req, &PublicKey::Ec(hsmkit::EcPublicKey::new(k.curve, &point)?))?;
            Ok((Some(private), Some(public)))
        }
        KeyMaterial::Aes(k) => {
            let mut t = private_template(req, true);
            t.push(Attribute::Value(k.to_vec()));
            Ok((Some(create(s, t)?), None))
        }
        KeyMaterial::Public(p) => Ok((None, Some(public_object(s, req, p)?))),
        _ => Err(Error::unsupported("this kind of key material").into()),
    }
}
