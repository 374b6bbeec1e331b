//! Key import with `C_CreateObject`, after validation by the software engines.

use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::Session;
use der::Encode;
use hsmkit::InvalidReason;
use hsmkit::{Error, KeyMaterial, NewKey, PublicKey, Result};

use crate::error::OpError;
use crate::generate::{
    Kind, Omitted, Undo, ec_params, ed25519_params, identity, private_template, public_template,
    verify_created, with_fallbacks,
};
use crate::wrap::wipe;

/// `C_CreateObject` with the template fallbacks of [`with_fallbacks`]; the secret values
/// in the template are wiped afterwards, whatever happened. The usage flags left out are
/// added to `omitted`.
/// The handle is checked to name the object made and kept in `undo` ([`Undo::made`]).
#[allow(clippy::wildcard_enum_match_arm, reason = "cryptoki's Attribute: only CKA_CLASS is read")]
fn create(
    undo: &mut Undo<'_>,
    s: &Session,
    req: &NewKey<'_>,
    t: Vec<Attribute>,
    omitted: &mut Omitted,
) -> std::result::Result<ObjectHandle, OpError> {
    let class = t.iter().find_map(|a| match a {
        Attribute::Class(c) => Some(*c),
        _ => None,
    });
    let mut ts = [t];
    let r = with_fallbacks(&mut ts, |[t]| s.create_object(t));
    ts.iter_mut().for_each(|t| wipe(t));
    let (h, o) = r?;
    omitted.extend(o);
    let class =
        class.ok_or_else(|| Error::invalid(InvalidReason::Malformed, "a key template without CKA_CLASS"))?;
    undo.made("C_CreateObject", [(h, identity(req, class))])?;
    Ok(h)
}

fn ec_point(point: &[u8]) -> Result<Vec<u8>> {
    der::asn1::OctetStringRef::new(point)
        .and_then(|o| o.to_der())
        .map_err(|e| Error::invalid(InvalidReason::Malformed, format!("DER: {e}")))
}

fn public_object(
    undo: &mut Undo<'_>,
    s: &Session,
    req: &NewKey<'_>,
    public: &PublicKey,
    omitted: &mut Omitted,
) -> std::result::Result<ObjectHandle, OpError> {
    let t = match public {
        PublicKey::Rsa(k) => {
            let mut t = public_template(req, Kind::Rsa);
            t.extend([Attribute::Modulus(k.n().to_vec()), Attribute::PublicExponent(k.e().to_vec())]);
            t
        }
        PublicKey::Ec(k) => {
            let mut t = public_template(req, Kind::Ec);
            t.extend([Attribute::EcParams(ec_params(k.curve())?), Attribute::EcPoint(ec_point(k.point())?)]);
            t
        }
        PublicKey::Ed25519(k) => {
            // PKCS#11 3.0: CKA_EC_POINT of an Edwards key is the DER OCTET STRING of the
            // RFC 8032 encoding.
            let mut t = public_template(req, Kind::Ed25519);
            t.extend([Attribute::EcParams(ed25519_params()?), Attribute::EcPoint(ec_point(k.as_bytes())?)]);
            t
        }
    };
    create(undo, s, req, t, omitted)
}

/// Creates the objects for `material` (already normalised), checks what the token made
/// ([`verify_created`]) and destroys everything made if any step fails. Returns
/// (private, public).
pub(crate) fn import(
    s: &Session,
    req: &NewKey<'_>,
    material: &KeyMaterial,
) -> std::result::Result<(Option<ObjectHandle>, Option<ObjectHandle>), OpError> {
    let mut undo = Undo::new(s);
    let mut omitted = Omitted::new();
    let (private, public) = match material {
        KeyMaterial::RsaPrivate(k) => {
            let mut t = private_template(req, Kind::Rsa);
            t.extend([
                Attribute::Modulus(k.n.clone()),
                Attribute::PublicExponent(k.e.clone()),
                Attribute::PrivateExponent(k.d.clone()),
                Attribute::Prime1(k.p.clone()),
                Attribute::Prime2(k.q.clone()),
                Attribute::Exponent1(k.dp.clone()),
                Attribute::Exponent2(k.dq.clone()),
                Attribute::Coefficient(k.qinv.clone()),
            ]);
            let private = create(&mut undo, s, req, t, &mut omitted)?;
            let public = public_object(&mut undo, s, req, &PublicKey::Rsa(k.public()?), &mut omitted)?;
            (Some(private), Some(public))
        }
        KeyMaterial::EcPrivate(k) => {
            let point = k
                .public_point
                .clone()
                .ok_or_else(|| Error::invalid(InvalidReason::Malformed, "EC key without its public point"))?;
            let mut t = private_template(req, Kind::Ec);
            t.extend([Attribute::EcParams(ec_params(k.curve)?), Attribute::Value(k.d.clone())]);
            let private = create(&mut undo, s, req, t, &mut omitted)?;
            let public = public_object(
                &mut undo,
                s,
                req,
                &PublicKey::Ec(hsmkit::EcPublicKey::new(k.curve, &point)?),
                &mut omitted,
            )?;
            (Some(private), Some(public))
        }
        KeyMaterial::Ed25519Private(k) => {
            let public = k.public.clone().ok_or_else(|| {
                Error::invalid(InvalidReason::Malformed, "Ed25519 key without its public key")
            })?;
            let mut t = private_template(req, Kind::Ed25519);
            t.extend([Attribute::EcParams(ed25519_params()?), Attribute::Value(k.seed.to_vec())]);
            let private = create(&mut undo, s, req, t, &mut omitted)?;
            let public = public_object(&mut undo, s, req, &PublicKey::Ed25519(public), &mut omitted)?;
            (Some(private), Some(public))
        }
        KeyMaterial::Aes(k) => {
            let mut t = private_template(req, Kind::Aes);
            t.push(Attribute::Value(k.to_vec()));
            let h = create(&mut undo, s, req, t, &mut omitted)?;
            (Some(h), None)
        }
        KeyMaterial::Hmac(k) => {
            let mut t = private_template(req, Kind::Hmac);
            t.push(Attribute::Value(k.to_vec()));
            let h = create(&mut undo, s, req, t, &mut omitted)?;
            (Some(h), None)
        }
        KeyMaterial::Public(p) => {
            let h = public_object(&mut undo, s, req, p, &mut omitted)?;
            (None, Some(h))
        }
    };
    verify_created(s, &undo.handles(), req, &omitted)?;
    undo.defuse();
    Ok((private, public))
}
