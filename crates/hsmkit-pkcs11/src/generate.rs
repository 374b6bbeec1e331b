//! Key generation on the token, and the attribute templates shared with import.
//!
//! Templates carry only attributes that apply to the object's class and key type
//! (strict tokens fail `C_GenerateKeyPair` on, say, `CKA_ENCRYPT` in an EC public
//! template), and what the token made is read back and checked ([`verify_created`]):
//! a token default hsmkit did not ask for is not trusted.

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType as CkKeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use der::Encode;
use hsmkit::{Error, KeyOp, KeySpec, NewKey, Result};
use hsmkit::{InvalidReason, UnsupportedReason};

use crate::error::OpError;
use crate::metadata::ck_date;

/// Attributes every object of a key version carries: label, id, dates.
fn common(req: &NewKey<'_>) -> Vec<Attribute> {
    let mut t = vec![
        Attribute::Token(true),
        Attribute::Label(req.name.as_bytes().to_vec()),
        Attribute::Id(crate::ck_id(&req.object_id)),
    ];
    if let Some(nb) = req.attributes.not_before {
        t.push(Attribute::StartDate(ck_date(nb)));
    }
    if let Some(exp) = req.attributes.expires {
        t.push(Attribute::EndDate(ck_date(exp)));
    }
    t
}

/// The kind of key a template is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Aes,
    Rsa,
    Ec,
    /// Ed25519 (`CKK_EC_EDWARDS`).
    Ed25519,
    /// An HMAC key (`CKK_GENERIC_SECRET`).
    Hmac,
}

impl Kind {
    fn key_type(self) -> CkKeyType {
        match self {
            Kind::Aes => CkKeyType::AES,
            Kind::Rsa => CkKeyType::RSA,
            Kind::Ec => CkKeyType::EC,
            Kind::Ed25519 => CkKeyType::EC_EDWARDS,
            Kind::Hmac => CkKeyType::GENERIC_SECRET,
        }
    }
}

/// Template of a private or secret object: sensitive, never extractable, usage flags
/// from the key's allowed operations (key-role separation was checked by the core),
/// only those that apply to the key type. AES keys that wrap or unwrap also get the KEK
/// templates ([`kek_templates`]).
pub(crate) fn private_template(req: &NewKey<'_>, kind: Kind) -> Vec<Attribute> {
    let ops = req.attributes.allowed();
    let mut t = common(req);
    t.extend([
        Attribute::KeyType(kind.key_type()),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Derive(false),
        Attribute::Sign(ops.contains(KeyOp::Sign)),
    ]);
    match kind {
        Kind::Aes => {
            t.extend([
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::Verify(false),
                Attribute::Encrypt(ops.contains(KeyOp::Encrypt)),
                Attribute::Decrypt(ops.contains(KeyOp::Decrypt)),
                Attribute::Wrap(ops.contains(KeyOp::WrapKey)),
                Attribute::Unwrap(ops.contains(KeyOp::UnwrapKey)),
            ]);
            if ops.contains(KeyOp::WrapKey) || ops.contains(KeyOp::UnwrapKey) {
                t.extend(kek_templates().unwrap_or_default());
            }
        }
        Kind::Rsa => t.extend([
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Decrypt(ops.contains(KeyOp::Decrypt)),
            Attribute::Unwrap(ops.contains(KeyOp::UnwrapKey)),
        ]),
        // HMAC keys sign and verify (C_Verify runs on the token: the key is secret).
        Kind::Hmac => t.extend([
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Verify(ops.contains(KeyOp::Verify)),
            Attribute::Encrypt(false),
            Attribute::Decrypt(false),
            Attribute::Wrap(false),
            Attribute::Unwrap(false),
        ]),
        // ECDSA and EdDSA keys sign; CKA_DECRYPT/CKA_UNWRAP do not apply to them.
        Kind::Ec | Kind::Ed25519 => t.push(Attribute::Class(ObjectClass::PRIVATE_KEY)),
    }
    t
}

/// Template of a public object: only the flags that apply to the key type.
pub(crate) fn public_template(req: &NewKey<'_>, kind: Kind) -> Vec<Attribute> {
    let ops = req.attributes.allowed();
    let mut t = common(req);
    t.extend([
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::KeyType(kind.key_type()),
        Attribute::Private(false),
        Attribute::Verify(ops.contains(KeyOp::Verify)),
    ]);
    if kind == Kind::Rsa {
        t.extend([
            Attribute::Encrypt(ops.contains(KeyOp::Encrypt)),
            Attribute::Wrap(ops.contains(KeyOp::WrapKey)),
        ]);
    }
    t
}

/// `CKA_WRAP_TEMPLATE`.
const CKA_WRAP_TEMPLATE: std::ffi::c_ulong = 0x4000_0211;
/// `CKA_UNWRAP_TEMPLATE`.
const CKA_UNWRAP_TEMPLATE: std::ffi::c_ulong = 0x4000_0212;

/// The KEK templates: `CKA_WRAP_TEMPLATE = {CKA_SENSITIVE=false, CKA_TOKEN=false}` and
/// `CKA_UNWRAP_TEMPLATE = {CKA_TOKEN=false}`.
///
/// Why: an AES KEK with CKA_WRAP/CKA_UNWRAP and no templates lets anyone with the PIN
/// wrap another application's extractable-but-sensitive key and unwrap it again as a
/// readable one (Clulow). hsmkit itself only wraps its own short-lived, non-sensitive
/// session objects (already readable: wrapping them reveals nothing) and unwraps into
/// session objects, so these templates cost it nothing. Whether the token enforces them
/// is probed ([`crate::probe::Probe::kek_templates`]).
///
/// cryptoki 0.12 has no attribute for `CK_ATTRIBUTE` arrays, so the value is built as
/// the bytes of a `CK_ATTRIBUTE[]` and passed as a vendor-defined attribute with the
/// standard type number. Each entry's value pointer points at a `static` `CK_FALSE`
/// byte, valid for the whole program, so the module may read it whenever it copies the
/// template. The layout (`CK_ULONG type; void *pValue; CK_ULONG ulValueLen`, no
/// padding) holds on Unix, where `unsigned long` is pointer-sized; elsewhere (Windows
/// packs the struct with a 32-bit `CK_ULONG`) this returns `None` and KEKs get no
/// templates, which the probe then reports.
pub(crate) fn kek_templates() -> Option<Vec<Attribute>> {
    use std::ffi::c_ulong;
    /// `CK_FALSE`, the one value the templates point at.
    static CK_FALSE: u8 = 0;
    const CKA_SENSITIVE: c_ulong = 0x0103;
    if !cfg!(unix) || size_of::<c_ulong>() != size_of::<usize>() {
        return None;
    }
    let false_ptr = std::ptr::from_ref(&CK_FALSE).expose_provenance();
    let array = |types: &[c_ulong]| {
        let mut bytes = Vec::new();
        for t in types {
            bytes.extend_from_slice(&t.to_ne_bytes());
            bytes.extend_from_slice(&false_ptr.to_ne_bytes());
            bytes.extend_from_slice(&c_ulong::from(1u8).to_ne_bytes());
        }
        bytes
    };
    // Only the wrap side: wrapping a key that is not sensitive reveals nothing its own
    // CKA_VALUE does not, and Clulow's attack needs the wrap of a sensitive key. No unwrap
    // template: hsmkit's unwrap returns the data key by design, and on tokens that refuse
    // session objects it unwraps into a (destroyed) token object.
    Some(vec![Attribute::VendorDefined((
        AttributeType::VendorDefined(CKA_WRAP_TEMPLATE),
        array(&[CKA_SENSITIVE]),
    ))])
}

fn is_kek_template(a: &Attribute) -> bool {
    matches!(a, Attribute::VendorDefined((AttributeType::VendorDefined(t), _))
        if *t == CKA_WRAP_TEMPLATE || *t == CKA_UNWRAP_TEMPLATE)
}

/// Whether the error is a token refusing a template (as some refuse RSA keys with
/// CKA_WRAP/CKA_UNWRAP, or attributes they do not know).
pub(crate) fn refuses_rsa_wrap(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(
            RvError::AttributeTypeInvalid
                | RvError::AttributeValueInvalid
                | RvError::TemplateInconsistent
                | RvError::GeneralError,
            _
        )
    )
}

/// Usage flags (`CKA_SIGN`, `CKA_VERIFY`, `CKA_ENCRYPT`, `CKA_DECRYPT`, `CKA_WRAP`,
/// `CKA_UNWRAP`) that [`with_fallbacks`] left out of a template where hsmkit had asked
/// for them to be false: the token's defaults decide them (see [`verify_usage`]).
pub(crate) type Omitted = Vec<AttributeType>;

/// A usage flag set to false: what the last fallback leaves out.
#[allow(clippy::wildcard_enum_match_arm, reason = "cryptoki's Attribute: only usage flags matter")]
fn usage_false(a: &Attribute) -> Option<AttributeType> {
    match a {
        Attribute::Sign(false) => Some(AttributeType::Sign),
        Attribute::Verify(false) => Some(AttributeType::Verify),
        Attribute::Encrypt(false) => Some(AttributeType::Encrypt),
        Attribute::Decrypt(false) => Some(AttributeType::Decrypt),
        Attribute::Wrap(false) => Some(AttributeType::Wrap),
        Attribute::Unwrap(false) => Some(AttributeType::Unwrap),
        _ => None,
    }
}

/// Runs `make` with `templates`; if the token refuses them, retries with each of these
/// changes in turn, cumulatively: KEK templates left out (the probe reports whether the
/// token honours them anyway); on RSA templates, CKA_WRAP/CKA_UNWRAP replaced by
/// CKA_ENCRYPT/CKA_DECRYPT ("wrap-only RSA keys" some tokens refuse); and last, the usage
/// flags hsmkit asked to be false left out, only the true ones given (tpm2-pkcs11 refuses
/// a false CKA_SIGN/VERIFY/ENCRYPT/DECRYPT: a TPM RSA key always signs and decrypts).
/// The second and third are safe because hsmkit's core enforces a key's allowed
/// operations itself, for every hsmkit user, whatever flags the token sets; RSA-OAEP
/// unwrapping falls back to `C_Decrypt` ([`crate::wrap::unwrap_key`]). Never left out:
/// CKA_SENSITIVE, CKA_EXTRACTABLE, CKA_PRIVATE, CKA_DERIVE, which [`verify_usage`] still
/// checks. Returns what `make` made and the usage flags left out ([`Omitted`]).
/// The templates are changed in place, so the caller can wipe them afterwards.
pub(crate) fn with_fallbacks<T, const N: usize>(
    templates: &mut [Vec<Attribute>; N],
    make: impl Fn(&[Vec<Attribute>; N]) -> std::result::Result<T, CkError>,
) -> std::result::Result<(T, Omitted), CkError> {
    let mut r = make(templates);
    let has_kek = |ts: &[Vec<Attribute>]| ts.iter().flatten().any(is_kek_template);
    if matches!(&r, Err(e) if refuses_rsa_wrap(e)) && has_kek(templates) {
        tracing::debug!(target: "hsmkit::pkcs11", "the token refused KEK templates ({:?}); creating the KEK without", r.as_ref().err());
        templates.iter_mut().for_each(|t| t.retain(|a| !is_kek_template(a)));
        r = make(templates);
    }
    let rsa = templates.iter().flatten().any(|a| matches!(a, Attribute::KeyType(k) if *k == CkKeyType::RSA));
    let wraps = |t: &[Vec<Attribute>]| {
        // Also when false: some tokens refuse the attribute on RSA keys whatever its value.
        t.iter().flatten().any(|a| matches!(a, Attribute::Wrap(_) | Attribute::Unwrap(_)))
    };
    let mut omitted = Omitted::new();
    if matches!(&r, Err(e) if refuses_rsa_wrap(e)) && rsa && wraps(templates) {
        tracing::debug!(target: "hsmkit::pkcs11", "the token refused an RSA key with CKA_WRAP/CKA_UNWRAP ({:?}); using CKA_ENCRYPT/CKA_DECRYPT", r.as_ref().err());
        for t in templates.iter_mut() {
            let wrap = t.iter().any(|a| matches!(a, Attribute::Wrap(true)));
            let unwrap = t.iter().any(|a| matches!(a, Attribute::Unwrap(true)));
            // Left out whatever their value: they count as omitted for the read-back.
            omitted.extend(
                t.iter()
                    .filter_map(usage_false)
                    .filter(|a| matches!(a, AttributeType::Wrap | AttributeType::Unwrap)),
            );
            t.retain(|a| !matches!(a, Attribute::Wrap(_) | Attribute::Unwrap(_)));
            if wrap {
                t.retain(|a| !matches!(a, Attribute::Encrypt(_)));
                t.push(Attribute::Encrypt(true));
            }
            if unwrap {
                t.retain(|a| !matches!(a, Attribute::Decrypt(_)));
                t.push(Attribute::Decrypt(true));
            }
        }
        r = make(templates);
    }
    let has_false = |t: &[Vec<Attribute>]| t.iter().flatten().any(|a| usage_false(a).is_some());
    if matches!(&r, Err(e) if refuses_rsa_wrap(e)) && has_false(templates) {
        tracing::debug!(target: "hsmkit::pkcs11", "the token refused usage flags set to false ({:?}); giving only the true ones", r.as_ref().err());
        for t in templates.iter_mut() {
            omitted.extend(t.iter().filter_map(usage_false));
            t.retain(|a| usage_false(a).is_none());
        }
        r = make(templates);
    }
    r.map(|v| (v, omitted))
}

pub(crate) fn ec_params(curve: hsmkit::EcCurve) -> Result<Vec<u8>> {
    curve.oid().to_der().map_err(|e| Error::invalid(InvalidReason::Malformed, format!("DER: {e}")))
}

/// `CKA_EC_PARAMS` of an Ed25519 key: the DER of `id-Ed25519` (PKCS#11 3.0 section
/// 2.3.5 allows it beside the PrintableString "edwards25519"; tokens write either).
pub(crate) fn ed25519_params() -> Result<Vec<u8>> {
    const_oid::db::rfc8410::ID_ED_25519
        .to_der()
        .map_err(|e| Error::invalid(InvalidReason::Malformed, format!("DER: {e}")))
}

/// Whether `CKA_EC_PARAMS` names Ed25519, in either form PKCS#11 3.0 allows.
pub(crate) fn is_ed25519_params(params: &[u8]) -> bool {
    // PrintableString "edwards25519".
    const NAMED: &[u8] = b"\x13\x0cedwards25519";
    params == NAMED || ed25519_params().is_ok_and(|p| p == params)
}

/// Reads back the usage attributes of the objects just made for `req` and fails if the
/// token granted what hsmkit forbids: a private or secret object that is not sensitive,
/// extractable, not private, derives, or has a usage flag hsmkit did not ask for (token
/// defaults, or a template attribute the token ignored). Public objects are not checked
/// (their operations run in software). An attribute the token does not report is not a
/// grant. The caller destroys the objects on error.
///
/// `omitted` are the usage flags [`with_fallbacks`] had to leave out because the token
/// refused them false: those the token may grant (hsmkit's core enforces the key's
/// allowed operations for every hsmkit user; [`crate::probe::Probe::capabilities`] says
/// so in its notes). A usage flag asked false and granted anyway is still refused, and
/// so are CKA_SENSITIVE=false, CKA_EXTRACTABLE=true, CKA_PRIVATE=false and
/// CKA_DERIVE=true, always.
pub(crate) fn verify_created(
    s: &Session,
    handles: &[ObjectHandle],
    req: &NewKey<'_>,
    omitted: &[AttributeType],
) -> std::result::Result<(), OpError> {
    verify_usage(s, handles, req.name, req.attributes.allowed(), omitted)
}

/// [`verify_created`] for key `name` whose allowed operations are `ops` (also for
/// objects whose flags were just changed).
#[allow(clippy::wildcard_enum_match_arm, reason = "cryptoki's Attribute: only the attributes read matter")]
pub(crate) fn verify_usage(
    s: &Session,
    handles: &[ObjectHandle],
    name: &str,
    ops: hsmkit::KeyOps,
    omitted: &[AttributeType],
) -> std::result::Result<(), OpError> {
    for &h in handles {
        let head = s.get_attributes(h, &[AttributeType::Class, AttributeType::KeyType])?;
        let class = head.iter().find_map(|a| match a {
            Attribute::Class(c) => Some(*c),
            _ => None,
        });
        let rsa = head.iter().any(|a| matches!(a, Attribute::KeyType(k) if *k == CkKeyType::RSA));
        let secret = match class {
            Some(c) if c == ObjectClass::SECRET_KEY => true,
            Some(c) if c == ObjectClass::PRIVATE_KEY => false,
            _ => continue,
        };
        let mut types = vec![
            AttributeType::Sensitive,
            AttributeType::Extractable,
            AttributeType::Private,
            AttributeType::Sign,
            AttributeType::Derive,
        ];
        // Not on EC keys: hsmkit does not ask for them there (strict tokens refuse
        // them in EC templates, and SoftHSM2 defaults them to true); no EC mechanism
        // hsmkit checks for decrypts, and CKA_DERIVE (ECDH) is checked.
        // So: checked where they mean something to hsmkit's mechanisms: RSA private keys and
        // secret keys (an object whose key type reads as neither is not held to them).
        if rsa || secret {
            types.extend([AttributeType::Decrypt, AttributeType::Unwrap]);
        }
        if secret {
            types.extend([AttributeType::Encrypt, AttributeType::Wrap]);
        }
        // One at a time: some tokens fail the whole call on one attribute that does not
        // apply to the key type (CKR_ATTRIBUTE_TYPE_INVALID) instead of marking it.
        let mut got = Vec::new();
        for t in types {
            match s.get_attributes(h, &[t]) {
                Ok(a) => got.extend(a),
                Err(CkError::Pkcs11(RvError::AttributeTypeInvalid | RvError::AttributeSensitive, _)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        // The RSA fallback of `with_fallbacks` grants CKA_DECRYPT for unwrapping.
        let decrypt_ok = ops.contains(KeyOp::Decrypt) || (rsa && ops.contains(KeyOp::UnwrapKey));
        for a in &got {
            // A usage flag hsmkit could not ask false: the token's default is accepted.
            let defaulted = |t: AttributeType| omitted.contains(&t);
            let bad = match a {
                Attribute::Sensitive(false) => Some("CKA_SENSITIVE=false"),
                Attribute::Extractable(true) => Some("CKA_EXTRACTABLE=true"),
                Attribute::Private(false) => Some("CKA_PRIVATE=false"),
                Attribute::Derive(true) => Some("CKA_DERIVE=true"),
                Attribute::Sign(true) if !ops.contains(KeyOp::Sign) && !defaulted(AttributeType::Sign) => {
                    Some("CKA_SIGN=true")
                }
                Attribute::Decrypt(true) if !decrypt_ok && !defaulted(AttributeType::Decrypt) => {
                    Some("CKA_DECRYPT=true")
                }
                Attribute::Unwrap(true)
                    if !ops.contains(KeyOp::UnwrapKey) && !defaulted(AttributeType::Unwrap) =>
                {
                    Some("CKA_UNWRAP=true")
                }
                Attribute::Encrypt(true)
                    if !ops.contains(KeyOp::Encrypt) && !defaulted(AttributeType::Encrypt) =>
                {
                    Some("CKA_ENCRYPT=true")
                }
                Attribute::Wrap(true) if !ops.contains(KeyOp::WrapKey) && !defaulted(AttributeType::Wrap) => {
                    Some("CKA_WRAP=true")
                }
                _ => None,
            };
            if let Some(bad) = bad {
                return Err(Error::unsupported(
                    UnsupportedReason::Operation,
                    format!(
                        "the token gave key '{name}' {bad}, which hsmkit did not ask for and does not allow \
                     (new objects are destroyed)"
                    ),
                )
                .into());
            }
        }
    }
    Ok(())
}

/// The attributes a key object hsmkit made for `req` must have: its class and CKA_ID.
pub(crate) fn identity(req: &NewKey<'_>, class: ObjectClass) -> Vec<Attribute> {
    vec![Attribute::Class(class), Attribute::Id(crate::ck_id(&req.object_id))]
}

/// Objects of a creation, destroyed unless defused (a creation that failed half-way).
/// Only handles checked to name the object made are kept ([`Undo::made`]), and each is
/// checked again before it is destroyed ([`crate::objects::destroy`]).
pub(crate) struct Undo<'a> {
    s: &'a Session,
    made: Vec<(ObjectHandle, Vec<Attribute>)>,
}

impl<'a> Undo<'a> {
    pub(crate) fn new(s: &'a Session) -> Self {
        Undo { s, made: Vec::new() }
    }

    /// Takes the handles `function` returned, each with the attributes its object must
    /// have. A handle that names another object (a token reusing handles) is left out,
    /// so never destroyed, and the creation fails with [`crate::objects::reused`].
    pub(crate) fn made(
        &mut self,
        function: &str,
        handles: impl IntoIterator<Item = (ObjectHandle, Vec<Attribute>)>,
    ) -> std::result::Result<(), OpError> {
        let mut reused = false;
        for (h, expect) in handles {
            if crate::objects::names(self.s, h, &expect)? {
                self.made.push((h, expect));
            } else {
                reused = true;
            }
        }
        if reused { Err(crate::objects::reused(function).into()) } else { Ok(()) }
    }

    pub(crate) fn handles(&self) -> Vec<ObjectHandle> {
        self.made.iter().map(|(h, _)| *h).collect()
    }

    /// Keeps the objects.
    pub(crate) fn defuse(mut self) {
        self.made.clear();
    }
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        for (h, expect) in self.made.drain(..).rev() {
            if let Err(e) = crate::objects::destroy(self.s, h, &expect) {
                tracing::warn!(target: "hsmkit::pkcs11", "could not destroy a half-made key object: {e:?}");
            }
        }
    }
}

/// Generates the objects of a new key version. Returns (private/secret, public) handles.
pub(crate) fn generate(
    s: &Session,
    req: &NewKey<'_>,
    spec: KeySpec,
) -> std::result::Result<(ObjectHandle, Option<ObjectHandle>), OpError> {
    let mut undo = Undo::new(s);
    let omitted: Omitted;
    let (k, p) = match spec {
        KeySpec::Aes(size) => {
            let mut t = private_template(req, Kind::Aes);
            t.push(Attribute::ValueLen(
                u64::try_from(size.byte_len())
                    .map_err(|_| Error::invalid(InvalidReason::Parameter, "size"))?
                    .into(),
            ));
            let (h, o) = with_fallbacks(&mut [t], |[t]| s.generate_key(&Mechanism::AesKeyGen, t))?;
            omitted = o;
            (h, None)
        }
        KeySpec::Rsa { bits } => {
            let mut public = public_template(req, Kind::Rsa);
            public.extend([
                Attribute::ModulusBits(u64::from(bits).into()),
                Attribute::PublicExponent(vec![1, 0, 1]),
            ]);
            let private = private_template(req, Kind::Rsa);
            let ((p, k), o) = with_fallbacks(&mut [public, private], |[public, private]| {
                s.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, public, private)
            })?;
            omitted = o;
            (k, Some(p))
        }
        KeySpec::Ec(curve) => {
            let mut public = public_template(req, Kind::Ec);
            public.push(Attribute::EcParams(ec_params(curve)?));
            let private = private_template(req, Kind::Ec);
            let ((p, k), o) = with_fallbacks(&mut [public, private], |[public, private]| {
                s.generate_key_pair(&Mechanism::EccKeyPairGen, public, private)
            })?;
            omitted = o;
            (k, Some(p))
        }
        KeySpec::Ed25519 => {
            let mut public = public_template(req, Kind::Ed25519);
            public.push(Attribute::EcParams(ed25519_params()?));
            let private = private_template(req, Kind::Ed25519);
            let ((p, k), o) = with_fallbacks(&mut [public, private], |[public, private]| {
                s.generate_key_pair(&Mechanism::EccEdwardsKeyPairGen, public, private)
            })?;
            omitted = o;
            (k, Some(p))
        }
        KeySpec::Hmac { bits } => {
            let mut t = private_template(req, Kind::Hmac);
            t.push(Attribute::ValueLen(u64::from(bits / 8).into()));
            let (h, o) = with_fallbacks(&mut [t], |[t]| s.generate_key(&Mechanism::GenericSecretKeyGen, t))?;
            omitted = o;
            (h, None)
        }
    };
    let function = if p.is_some() { "C_GenerateKeyPair" } else { "C_GenerateKey" };
    let class = if p.is_some() { ObjectClass::PRIVATE_KEY } else { ObjectClass::SECRET_KEY };
    undo.made(
        function,
        std::iter::once((k, identity(req, class)))
            .chain(p.map(|p| (p, identity(req, ObjectClass::PUBLIC_KEY)))),
    )?;
    verify_created(s, &undo.handles(), req, &omitted)?;
    undo.defuse();
    Ok((k, p))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use cryptoki::context::Function;

    use super::*;

    fn req(attributes: &hsmkit::KeyAttributes) -> NewKey<'_> {
        NewKey {
            name: "k",
            version: 1,
            attributes,
            created: std::time::SystemTime::now(),
            object_id: [7; 16],
        }
    }

    fn has(t: &[Attribute], f: fn(&Attribute) -> bool) -> bool {
        t.iter().any(f)
    }

    /// EC templates carry no CKA_ENCRYPT/CKA_WRAP (public) nor CKA_DECRYPT/CKA_UNWRAP
    /// (private); RSA and AES templates carry what applies to them.
    #[test]
    fn templates_carry_only_what_applies() {
        let a = hsmkit::KeyAttributes::with_ops(&[KeyOp::Sign, KeyOp::Verify]);
        let r = req(&a);
        let ec_pub = public_template(&r, Kind::Ec);
        let ec_priv = private_template(&r, Kind::Ec);
        assert!(!has(&ec_pub, |a| matches!(a, Attribute::Encrypt(_) | Attribute::Wrap(_))));
        assert!(!has(&ec_priv, |a| matches!(
            a,
            Attribute::Decrypt(_) | Attribute::Unwrap(_) | Attribute::Encrypt(_)
        )));
        assert!(has(&ec_priv, |a| matches!(a, Attribute::Sign(true))));
        assert!(has(&ec_priv, |a| matches!(a, Attribute::Derive(false))));
        let rsa_pub = public_template(&r, Kind::Rsa);
        assert!(has(&rsa_pub, |a| matches!(a, Attribute::Wrap(false))));
        let rsa_priv = private_template(&r, Kind::Rsa);
        assert!(has(&rsa_priv, |a| matches!(a, Attribute::Unwrap(false))));
        assert!(!has(&rsa_priv, |a| matches!(a, Attribute::Encrypt(_) | Attribute::Wrap(_))));
        // Only KEKs get the KEK template (the wrap side only: see `kek_templates`).
        assert!(!has(&private_template(&r, Kind::Aes), is_kek_template));
        let kek = hsmkit::KeyAttributes::with_ops(&[KeyOp::WrapKey, KeyOp::UnwrapKey]);
        assert_eq!(private_template(&req(&kek), Kind::Aes).iter().filter(|a| is_kek_template(a)).count(), 1);
    }

    /// A token refusing RSA templates with CKA_WRAP/CKA_UNWRAP gets one retry with
    /// CKA_ENCRYPT/CKA_DECRYPT in their place (after one without KEK templates).
    #[test]
    fn rsa_wrap_refusal_retries_with_encrypt_decrypt() {
        let a = hsmkit::KeyAttributes::with_ops(&[KeyOp::WrapKey, KeyOp::UnwrapKey]);
        let r = req(&a);
        let mut ts = [public_template(&r, Kind::Rsa), private_template(&r, Kind::Rsa)];
        let calls = std::sync::Mutex::new(0);
        let out = with_fallbacks(&mut ts, |t| {
            *calls.lock().unwrap() += 1;
            if has(&t[0], |a| matches!(a, Attribute::Wrap(_)))
                || has(&t[1], |a| matches!(a, Attribute::Unwrap(_)))
            {
                Err(CkError::Pkcs11(RvError::AttributeTypeInvalid, Function::GenerateKeyPair))
            } else {
                Ok(())
            }
        });
        assert!(out.is_ok());
        assert_eq!(*calls.lock().unwrap(), 2);
        assert!(has(&ts[0], |a| matches!(a, Attribute::Encrypt(true))));
        assert!(has(&ts[1], |a| matches!(a, Attribute::Decrypt(true))));
        // Other refusals of other templates are not retried.
        let e = hsmkit::KeyAttributes::with_ops(&[KeyOp::Sign]);
        let mut ts = [private_template(&req(&e), Kind::Ec)];
        let calls = std::sync::Mutex::new(0);
        let out: std::result::Result<((), Omitted), _> = with_fallbacks(&mut ts, |_| {
            *calls.lock().unwrap() += 1;
            Err(CkError::Pkcs11(RvError::GeneralError, Function::GenerateKeyPair))
        });
        assert!(out.is_err());
        assert_eq!(*calls.lock().unwrap(), 1);
    }

    /// A token refusing usage flags set to false (tpm2-pkcs11) gets one retry with only
    /// the true ones; what was left out is reported, nothing else is left out.
    #[test]
    fn false_usage_flags_are_left_out_on_refusal() {
        let a = hsmkit::KeyAttributes::with_ops(&[KeyOp::Decrypt, KeyOp::Encrypt]);
        let r = req(&a);
        let mut ts = [public_template(&r, Kind::Rsa), private_template(&r, Kind::Rsa)];
        let calls = std::sync::Mutex::new(0);
        let (_, omitted) = with_fallbacks(&mut ts, |t| {
            *calls.lock().unwrap() += 1;
            if has(&t[0], |a| matches!(a, Attribute::Verify(false)))
                || has(&t[1], |a| matches!(a, Attribute::Sign(false)))
            {
                Err(CkError::Pkcs11(RvError::GeneralError, Function::GenerateKeyPair))
            } else {
                Ok(())
            }
        })
        .unwrap();
        // First call, the wrap fallback (CKA_WRAP/UNWRAP false on RSA), then this one.
        assert_eq!(*calls.lock().unwrap(), 3);
        for t in [AttributeType::Sign, AttributeType::Verify, AttributeType::Wrap, AttributeType::Unwrap] {
            assert!(omitted.contains(&t), "{t:?} not reported as left out");
        }
        assert!(!omitted.contains(&AttributeType::Decrypt));
        assert!(ts.iter().flatten().all(|a| usage_false(a).is_none()));
        for keep in [
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Private(true),
            Attribute::Derive(false),
        ] {
            assert!(ts[1].contains(&keep), "{keep:?} was left out");
        }
    }

    /// What the token made is read back: a grant hsmkit forbids is a typed error naming
    /// the attribute.
    #[test]
    fn verify_created_refuses_forbidden_grants() {
        let t = crate::testing::SoftHsmToken::new().unwrap();
        let s = t.raw_session().unwrap();
        let a = hsmkit::KeyAttributes::with_ops(&[KeyOp::WrapKey, KeyOp::UnwrapKey]);
        let r = req(&a);
        let make = |extra: &[Attribute]| {
            let mut t = vec![
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(CkKeyType::AES),
                Attribute::Token(false),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Derive(false),
                Attribute::Sign(false),
                Attribute::Encrypt(false),
                Attribute::Decrypt(false),
                Attribute::Wrap(true),
                Attribute::Unwrap(true),
                Attribute::Value(vec![1; 32]),
            ];
            t.retain(|a| !extra.iter().any(|e| std::mem::discriminant(e) == std::mem::discriminant(a)));
            t.extend(extra.iter().cloned());
            s.create_object(&t).unwrap()
        };
        assert!(verify_created(&s, &[make(&[])], &r, &[]).is_ok());
        for (bad, name) in [
            (Attribute::Extractable(true), "CKA_EXTRACTABLE"),
            (Attribute::Sensitive(false), "CKA_SENSITIVE"),
            (Attribute::Derive(true), "CKA_DERIVE"),
            (Attribute::Encrypt(true), "CKA_ENCRYPT"),
        ] {
            let h = make(std::slice::from_ref(&bad));
            match verify_created(&s, &[h], &r, &[]) {
                Err(OpError::Hsm(e)) => {
                    assert_eq!(e.kind(), hsmkit::ErrorKind::Unsupported);
                    assert!(e.to_string().contains(name), "{e}");
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
}
