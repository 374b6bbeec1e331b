//! ECDSA signature encodings: fixed-width `r || s` and DER.

use crate::error::InvalidReason;
use der::asn1::UintRef;
use der::{Decode, Encode, Sequence};

use crate::error::{Error, Result};
use crate::public::copy_right_aligned;
use crate::spec::EcCurve;

#[derive(Sequence)]
struct EcdsaSigValue<'a> {
    r: UintRef<'a>,
    s: UintRef<'a>,
}

/// Converts a raw `r || s` signature to DER.
pub fn raw_to_der(curve: EcCurve, raw: &[u8]) -> Result<Vec<u8>> {
    if raw.len() != 2 * curve.field_len() {
        return Err(Error::invalid(
            InvalidReason::Length,
            format!("a raw {curve} signature is {} bytes", 2 * curve.field_len()),
        ));
    }
    let (r, s) = raw.split_at(curve.field_len());
    let v = EcdsaSigValue {
        r: UintRef::new(r).map_err(|_| Error::invalid(InvalidReason::Malformed, "bad r"))?,
        s: UintRef::new(s).map_err(|_| Error::invalid(InvalidReason::Malformed, "bad s"))?,
    };
    v.to_der().map_err(|e| Error::invalid(InvalidReason::Malformed, format!("DER encoding failed: {e}")))
}

/// Converts a strict-DER signature to raw `r || s`. Anything but canonical DER with
/// integers that fit the curve is a verification failure, not a parse error: callers use
/// this on untrusted signatures.
pub fn der_to_raw(curve: EcCurve, der: &[u8]) -> Result<Vec<u8>> {
    let v = EcdsaSigValue::from_der(der).map_err(|_| Error::VerificationFailed)?;
    let fl = curve.field_len();
    let (r, s) = (v.r.as_bytes(), v.s.as_bytes());
    if r.len() > fl || s.len() > fl {
        return Err(Error::VerificationFailed);
    }
    let mut raw = vec![0u8; 2 * fl];
    let (rd, sd) = raw.split_at_mut(fl);
    copy_right_aligned(rd, r);
    copy_right_aligned(sd, s);
    Ok(raw)
}
