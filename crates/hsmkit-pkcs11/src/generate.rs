//! Key generation on the token, and the attribute templates shared with import.

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType as CkKeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use der::Encode;
use hsmkit::{Error, KeyOp, KeySpec, NewKey, Result};

use crate::error::OpError;
use crate::metadata::ck_date;

/// Attributes every object of a key version carries: label, id, dates.
fn common(req: &NewKey<'_>) -> Vec<Attribute> {
    let mut t = vec![
        Attribute::Token(true),
        Attribute::Label(req.name.as_bytes().to_vec()),
        Attribute::Id(req.object_id.to_vec()),
    ];
    if let Some(nb) = req.attributes.not_before {
        t.push(Attribute::StartDate(ck_date(nb)));
    }
    if let Some(exp) = req.attributes.expires {
        t.push(Attribute::EndDate(ck_date(exp)));
    }
    t
}

/// Template of a private or secret object: sensitive, never extractable, usage flags
/// from the key's allowed operations (key-role separation was checked by the core).
pub(crate) fn private_template(req: &NewKey<'_>, aes: bool) -> Vec<Attribute> {
    let ops = req.attributes.allowed();
    let mut t = common(req);
    t.extend([
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Derive(false),
        Attribute::Sign(ops.contains(KeyOp::Sign)),
        Attribute::Decrypt(ops.contains(KeyOp::Decrypt)),
        Attribute::Unwrap(ops.contains(KeyOp::UnwrapKey)),
    ]);
    if aes {
        t.extend([
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(CkKeyType::AES),
            Attribute::Encrypt(ops.contains(KeyOp::Encrypt)),
            Attribute::Wrap(ops.contains(KeyOp::WrapKey)),
            Attribute::Verify(false),
        ]);
    } else {
        t.push(Attribute::Class(ObjectClass::PRIVATE_KEY));
    }
    t
}

/// Template of a public object.
pub(crate) fn public_template(req: &NewKey<'_>) -> Vec<Attribute> {
    let ops = req.attributes.allowed();
    let mut t = common(req);
    t.extend([
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::Private(false),
        Attribute::Verify(ops.contains(KeyOp::Verify)),
        Attribute::Encrypt(ops.contains(KeyOp::Encrypt)),
        Attribute::Wrap(ops.contains(KeyOp::WrapKey)),
    ]);
    t
}

pub(crate) fn ec_params(curve: hsmkit::EcCurve) -> Result<Vec<u8>> {
    curve.oid().to_der().map_err(|e| Error::invalid(format!("DER: {e}")))
}

/// Generates the objects of a new key version. Returns (private/secret, public) handles.
pub(crate) fn generate(
    s: &Session,
    req: &NewKey<'_>,
    spec: KeySpec,
) -> std::result::Result<(ObjectHandle, Option<ObjectHandle>), OpError> {
    match spec {
        KeySpec::Aes(size) => {
            let mut t = private_template(req, true);
            t.push(Attribute::ValueLen(
                u64::try_from(size.byte_len()).map_err(|_| Error::invalid("size"))?.into(),
            ));
            let h = s.generate_key(&Mechanism::AesKeyGen, &t)?;
            Ok((h, None))
        }
        KeySpec::Rsa { bits } => {
            let mut public = public_template(req);
            public.extend([
                Attribute::KeyType(CkKeyType::RSA),
                Attribute::ModulusBits(u64::from(bits).into()),
                Attribute::PublicExponent(vec![1, 0, 1]),
            ]);
            let mut private = private_template(req, false);
            private.push(Attribute::KeyType(CkKeyType::RSA));
            let (p, k) = s.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private)?;
            Ok((k, Some(p)))
        }
        KeySpec::Ec(curve) => {
            let mut public = public_template(req);
            public.extend([Attribute::KeyType(CkKeyType::EC), Attribute::EcParams(ec_params(curve)?)]);
            let mut private = private_template(req, false);
            private.push(Attribute::KeyType(CkKeyType::EC));
            let (p, k) = s.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)?;
            Ok((k, Some(p)))
        }
        other => Err(Error::unsupported(format!("generating {other} keys")).into()),
    }
}
