//! Key wrapping on the token. The data key travels as a short-lived, non-token session
//! object: wrap = create + `C_WrapKey` + destroy; unwrap = `C_UnwrapKey` into an
//! extractable session object + read + destroy.

use hsmkit::UnsupportedReason;
use std::cell::Cell;

use cryptoki::context::Function;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use hsmkit::{Error, KeyWrapAlgorithm, Result, WrapScheme, Zeroizing};

use crate::key::TokenKey;
use crate::probe::oaep_params;

/// The short-lived object a data key passes through: a session object, or where the
/// token refuses session objects (`token`), a private token object with a reserved label
/// (hsmkit key names never start with '.'), destroyed at once either way.
fn data_key_template(token: bool) -> Vec<Attribute> {
    let mut t = vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::Token(token),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
    ];
    if token {
        t.extend([Attribute::Private(true), Attribute::Label(b".hsmkit-data-key".to_vec())]);
    }
    t
}

/// What a data-key object made with `data_key_template(token)` is checked against
/// before hsmkit uses or destroys it by handle ([`crate::objects`]).
fn data_key_identity(token: bool) -> Vec<Attribute> {
    let mut t = vec![Attribute::Class(ObjectClass::SECRET_KEY), Attribute::Token(token)];
    if token {
        t.push(Attribute::Label(b".hsmkit-data-key".to_vec()));
    }
    t
}

/// Zeroizes the secret values in a template once the token has them.
#[allow(clippy::wildcard_enum_match_arm, reason = "cryptoki's Attribute: only secret values are wiped")]
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

/// Destroys the data-key object `h`, only if it still names one ([`crate::objects::destroy`]).
fn destroy_quietly(s: &Session, h: ObjectHandle, token: bool) {
    if let Err(e) = crate::objects::destroy(s, h, &data_key_identity(token)) {
        tracing::warn!(target: "hsmkit::pkcs11", "could not destroy a data-key object: {e:?}");
    }
}

/// Fails unless the handle a create or unwrap returned names a data-key object: a token
/// that reuses handles ([`crate::objects`]) would have hsmkit wrap, read or destroy
/// another object.
fn check_data_key(
    s: &Session,
    h: ObjectHandle,
    token: bool,
    function: Function,
) -> cryptoki::error::Result<()> {
    if crate::objects::names(s, h, &data_key_identity(token))? {
        return Ok(());
    }
    tracing::warn!(target: "hsmkit::pkcs11", "{}", crate::objects::reused(&format!("{function}")));
    Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::GeneralError, function))
}

fn aes_mechanism(key: &TokenKey, op: hsmkit::KeyOp, alg: KeyWrapAlgorithm) -> Result<Mechanism<'static>> {
    key.probe.check(op, hsmkit::Algorithm::KeyWrap(alg))?;
    match alg.scheme() {
        WrapScheme::AesKw(_) => Ok(Mechanism::AesKeyWrap),
        WrapScheme::AesKwp(_) => Ok(Mechanism::AesKeyWrapPad),
        _ => Err(Error::unsupported(UnsupportedReason::Algorithm, format!("{alg}"))),
    }
}

/// The exact length of an AES key-wrap output for `data_len` bytes of key: RFC 3394
/// adds one 8-byte block; RFC 5649 pads to 8 bytes and adds one block. `None` for
/// other mechanisms.
#[allow(
    clippy::wildcard_enum_match_arm,
    reason = "cryptoki's Mechanism: only AES key wrap has a fixed output length"
)]
pub(crate) fn wrapped_len(mech: &Mechanism<'_>, data_len: usize) -> Option<usize> {
    match mech {
        Mechanism::AesKeyWrap => data_len.checked_add(8),
        Mechanism::AesKeyWrapPad => data_len.div_ceil(8).checked_mul(8)?.checked_add(8),
        _ => None,
    }
}

/// Cuts the output of cryptoki's `Session::wrap_key` to the mechanism's exact length.
///
/// cryptoki 0.12.1's `wrap_key` sizes its buffer with the length query (first
/// `C_WrapKey` call) and returns the whole buffer, ignoring the length the token
/// writes back on the second call. A token may over-report in the query (PKCS#11
/// allows "somewhat larger" answers), and its output would then carry trailing
/// bytes. For AES-KW/KWP the length is known exactly, so the output is cut to it,
/// after checking the token gave at least that many bytes. `None` if it gave fewer.
/// Other mechanisms are returned as they are.
pub(crate) fn fit_wrapped(mut wrapped: Vec<u8>, mech: &Mechanism<'_>, data_len: usize) -> Option<Vec<u8>> {
    match wrapped_len(mech, data_len) {
        Some(n) if wrapped.len() < n => None,
        Some(n) => {
            wrapped.truncate(n);
            Some(wrapped)
        }
        None => Some(wrapped),
    }
}

pub(crate) fn wrap_key(key: &TokenKey, alg: KeyWrapAlgorithm, dek: &[u8]) -> Result<Vec<u8>> {
    if let WrapScheme::RsaOaep(_) = alg.scheme() {
        // Public operation: OAEP encryption with the public key, in software.
        let ops = key.public_ops.as_deref().ok_or_else(|| {
            Error::unsupported(UnsupportedReason::Operation, "the token holds no public key")
        })?;
        return ops.wrap_key(alg, dek);
    }
    let mech = aes_mechanism(key, hsmkit::KeyOp::WrapKey, alg)?;
    with_data_key_objects(key, |token, refused| {
        key.with_private(false, |s, kek| {
            let mut t = data_key_template(token);
            t.push(Attribute::Value(dek.to_vec()));
            let temp = s.create_object(&t);
            wipe(&mut t);
            let temp =
                temp.inspect_err(|e| refused.set(!token && crate::objects::refuses_session_objects(e)))?;
            check_data_key(s, temp, token, Function::CreateObject)?;
            let r = s.wrap_key(&mech, kek, temp);
            destroy_quietly(s, temp, token);
            // A token that wrote fewer bytes than the standard's length broke the mechanism.
            fit_wrapped(r?, &mech, dek.len()).ok_or(cryptoki::error::Error::Pkcs11(
                cryptoki::error::RvError::GeneralError,
                cryptoki::context::Function::WrapKey,
            ))
        })
    })
}

/// Whether `C_UnwrapKey` failed in a way `C_Decrypt` may not: the token cannot unwrap
/// with OAEP, or the key may not unwrap (an RSA key made with CKA_DECRYPT in place of
/// CKA_UNWRAP; see [`crate::generate::with_fallbacks`]).
fn unwrap_refused(e: &cryptoki::error::Error) -> bool {
    use cryptoki::error::{Error as CkError, RvError};
    matches!(
        e,
        CkError::Pkcs11(
            RvError::MechanismInvalid | RvError::KeyFunctionNotPermitted | RvError::KeyTypeInconsistent,
            _
        )
    )
}

/// `C_UnwrapKey` into an extractable session object, then read its value.
#[allow(clippy::wildcard_enum_match_arm, reason = "cryptoki's Attribute: only CKA_VALUE is read")]
fn unwrap_object(
    s: &Session,
    mech: &Mechanism<'_>,
    kek: ObjectHandle,
    wrapped: &[u8],
    (token, refused): (bool, &Cell<bool>),
) -> cryptoki::error::Result<Zeroizing<Vec<u8>>> {
    let temp = s
        .unwrap_key(mech, kek, wrapped, &data_key_template(token))
        .inspect_err(|e| refused.set(!token && crate::objects::refuses_session_objects(e)))?;
    check_data_key(s, temp, token, Function::UnwrapKey)?;
    let value = s.get_attributes(temp, &[AttributeType::Value]);
    destroy_quietly(s, temp, token);
    let value = value?.into_iter().find_map(|a| match a {
        Attribute::Value(v) => Some(Zeroizing::new(v)),
        _ => None,
    });
    value.ok_or(cryptoki::error::Error::Pkcs11(
        cryptoki::error::RvError::AttributeTypeInvalid,
        cryptoki::context::Function::GetAttributeValue,
    ))
}

pub(crate) fn unwrap_key(
    key: &TokenKey,
    alg: KeyWrapAlgorithm,
    wrapped: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    if let WrapScheme::RsaOaep(enc) = alg.scheme() {
        key.probe.check(hsmkit::KeyOp::UnwrapKey, hsmkit::Algorithm::KeyWrap(alg))?;
        let mech = Mechanism::RsaPkcsOaep(oaep_params(enc, &[]));
        // C_UnwrapKey where the probe saw it work, else (or if this key or token
        // refuses it) C_Decrypt with the same parameters. Either way every failure about
        // the ciphertext is the one opaque DecryptionFailed (`with_private(true, ..)`).
        let try_unwrap = key.probe.oaep.unwrap(enc);
        let can_decrypt = key.probe.oaep.decrypt(enc, false);
        return with_data_key_objects(key, |token, refused| {
            key.with_private(true, |s, h| {
                let decrypt = || crate::oneshot::decrypt(s, &mech, h, wrapped).map(Zeroizing::new);
                if !try_unwrap {
                    return decrypt();
                }
                match unwrap_object(s, &mech, h, wrapped, (token, refused)) {
                    Err(e) if can_decrypt && unwrap_refused(&e) => {
                        tracing::debug!(target: "hsmkit::pkcs11", "C_UnwrapKey with {alg} refused ({e}); using C_Decrypt");
                        decrypt()
                    }
                    r => r,
                }
            })
        });
    }
    let mech = aes_mechanism(key, hsmkit::KeyOp::UnwrapKey, alg)?;
    with_data_key_objects(key, |token, refused| {
        key.with_private(true, |s, kek| unwrap_object(s, &mech, kek, wrapped, (token, refused)))
    })
}

/// Runs `op` with the data key in a session object; where the token refuses session
/// objects (`op` sets the flag), once more with a token object, under the token's write
/// guard, as every change to token objects is (see `Token`).
fn with_data_key_objects<T>(key: &TokenKey, op: impl Fn(bool, &Cell<bool>) -> Result<T>) -> Result<T> {
    let refused = Cell::new(false);
    match op(false, &refused) {
        Err(_) if refused.get() => {
            let _g = key.token.write_guard()?;
            op(true, &refused)
        }
        r => r,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// cryptoki 0.12's `wrap_key` returns the query-sized buffer: trailing bytes of an
    /// over-reporting token are cut, a short answer is refused.
    #[test]
    fn wrapped_output_is_cut_to_the_standard_length() {
        let kw = Mechanism::AesKeyWrap;
        let kwp = Mechanism::AesKeyWrapPad;
        assert_eq!(wrapped_len(&kw, 16), Some(24));
        assert_eq!(wrapped_len(&kw, 32), Some(40));
        assert_eq!(wrapped_len(&kwp, 7), Some(16));
        assert_eq!(wrapped_len(&kwp, 20), Some(32));
        assert_eq!(wrapped_len(&kwp, 32), Some(40));
        let mut over = vec![7u8; 24];
        over.extend([0u8; 16]);
        assert_eq!(fit_wrapped(over, &kw, 16), Some(vec![7u8; 24]));
        assert_eq!(fit_wrapped(vec![7u8; 24], &kw, 16), Some(vec![7u8; 24]));
        assert_eq!(fit_wrapped(vec![7u8; 23], &kw, 16), None);
        assert_eq!(fit_wrapped(vec![1u8; 40], &kwp, 20), Some(vec![1u8; 32]));
        let other = Mechanism::AesEcb;
        assert_eq!(fit_wrapped(vec![1u8; 40], &other, 20), Some(vec![1u8; 40]));
    }
}
