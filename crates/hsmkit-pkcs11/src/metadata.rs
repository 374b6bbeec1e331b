//! Key metadata on the token: one `CKO_DATA` object per key name (label = key name,
//! application = `hsmkit`) whose value is the key's JSON document (state and every
//! version's attributes, see [`hsmkit::KeyDescription::to_json`]); one more, labelled
//! `.hsmkit-settings`, holds the store settings. Key names cannot start with `.`, so the
//! labels never clash. The key objects themselves carry `CKA_LABEL` = name and `CKA_ID`
//! = version (4 bytes, big-endian), so two processes sharing the token agree on it.

use std::time::{SystemTime, UNIX_EPOCH};

use cryptoki::error::RvError;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use hsmkit::{Error, KeyDescription, StoreSettings};
use serde_json::Value;

use crate::OpResult;
use crate::error::OpError;

pub(crate) const APPLICATION: &[u8] = b"hsmkit";
const SETTINGS_LABEL: &str = ".hsmkit-settings";

fn secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// The `CKA_ID` of a key version.
pub(crate) fn object_id(version: u32) -> Vec<u8> {
    version.to_be_bytes().to_vec()
}

/// The version a `CKA_ID` names, if it is one of ours.
pub(crate) fn version_of_id(id: &[u8]) -> Option<u32> {
    <[u8; 4]>::try_from(id).ok().map(u32::from_be_bytes)
}

/// The template that finds hsmkit's data object with `label`.
pub(crate) fn data_template(label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::DATA),
        Attribute::Application(APPLICATION.to_vec()),
        Attribute::Label(label.as_bytes().to_vec()),
    ]
}

fn corrupt(what: &str) -> OpError {
    Error::backend(crate::error::KIND, "metadata", format!("corrupt hsmkit metadata object: {what}")).into()
}

fn value_of(s: &Session, h: ObjectHandle) -> OpResult<Vec<u8>> {
    let v = s.get_attributes(h, &[AttributeType::Value])?;
    v.into_iter()
        .find_map(|a| match a {
            Attribute::Value(v) => Some(v),
            _ => None,
        })
        .ok_or_else(|| corrupt("no value"))
}

fn read_json(s: &Session, label: &str) -> OpResult<Option<(ObjectHandle, Value)>> {
    let Some(h) = s.find_objects(&data_template(label))?.into_iter().next() else {
        return Ok(None);
    };
    let v = serde_json::from_slice(&value_of(s, h)?).map_err(|_| corrupt("not JSON"))?;
    Ok(Some((h, v)))
}

/// Writes `value` into the data object `existing`, or a new one labelled `label`.
fn write_json(
    s: &Session,
    existing: Option<ObjectHandle>,
    label: &str,
    value: &Value,
) -> OpResult<ObjectHandle> {
    let bytes = value.to_string().into_bytes();
    if let Some(h) = existing {
        match s.update_attributes(h, &[Attribute::Value(bytes.clone())]) {
            Ok(()) => return Ok(h),
            // A token that will not modify CKA_VALUE gets a new object instead.
            Err(cryptoki::error::Error::Pkcs11(RvError::AttributeReadOnly, _)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let mut t = data_template(label);
    t.extend([Attribute::Token(true), Attribute::Private(true), Attribute::Value(bytes)]);
    let h = s.create_object(&t)?;
    if let Some(old) = existing {
        s.destroy_object(old)?;
    }
    Ok(h)
}

/// A key's document and the handle of the object that holds it.
pub(crate) fn read_doc(s: &Session, name: &str) -> OpResult<Option<(ObjectHandle, KeyDescription)>> {
    match read_json(s, name)? {
        Some((h, v)) => Ok(Some((h, KeyDescription::from_json(&v)?))),
        None => Ok(None),
    }
}

/// Writes a key's document.
pub(crate) fn write_doc(
    s: &Session,
    existing: Option<ObjectHandle>,
    doc: &KeyDescription,
) -> OpResult<ObjectHandle> {
    write_json(s, existing, &doc.name, &doc.to_json())
}

/// Every key document on the token.
pub(crate) fn all_docs(s: &Session) -> OpResult<Vec<KeyDescription>> {
    let objs =
        s.find_objects(&[Attribute::Class(ObjectClass::DATA), Attribute::Application(APPLICATION.to_vec())])?;
    let mut out = Vec::new();
    for h in objs {
        let v: Value = serde_json::from_slice(&value_of(s, h)?).map_err(|_| corrupt("not JSON"))?;
        if v.get("name").is_some() {
            out.push(KeyDescription::from_json(&v)?);
        }
    }
    Ok(out)
}

/// The store settings (defaults if none were written).
pub(crate) fn read_settings(s: &Session) -> OpResult<(Option<ObjectHandle>, StoreSettings)> {
    match read_json(s, SETTINGS_LABEL)? {
        Some((h, v)) => Ok((Some(h), StoreSettings::from_json(&v)?)),
        None => Ok((None, StoreSettings::default())),
    }
}

/// Writes the store settings.
pub(crate) fn write_settings(
    s: &Session,
    existing: Option<ObjectHandle>,
    settings: &StoreSettings,
) -> OpResult<()> {
    write_json(s, existing, SETTINGS_LABEL, &settings.to_json()).map(|_| ())
}

/// `CKA_START_DATE` / `CKA_END_DATE` from a time (UTC day; the core enforces the exact time).
pub(crate) fn ck_date(t: SystemTime) -> cryptoki::types::Date {
    // Howard Hinnant's days-to-civil algorithm.
    let days = secs(t).div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = (yoe + era * 400 + i64::from(m <= 2)).clamp(0, 9999);
    let digits = |n: i64, w: usize| format!("{n:0w$}").into_bytes();
    let (yy, mm, dd) = (digits(y, 4), digits(m, 2), digits(d, 2));
    let arr4 = |v: &[u8]| -> [u8; 4] {
        [v.first(), v.get(1), v.get(2), v.get(3)].map(|b| b.copied().unwrap_or(b'0'))
    };
    let arr2 = |v: &[u8]| -> [u8; 2] { [v.first(), v.get(1)].map(|b| b.copied().unwrap_or(b'0')) };
    cryptoki::types::Date::new(arr4(&yy), arr2(&mm), arr2(&dd))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    #[test]
    fn ids() {
        assert_eq!(version_of_id(&object_id(7)), Some(7));
        assert_eq!(version_of_id(b"abc"), None);
    }

    #[test]
    fn dates() {
        // cryptoki prints dates as "Month: M\nDay: D\nYear: Y".
        let ymd = |t: u64| ck_date(UNIX_EPOCH + Duration::from_secs(t)).to_string().replace('\n', " ");
        assert_eq!(ymd(1_764_000_000), "Month: 11 Day: 24 Year: 2025");
        assert_eq!(ymd(0), "Month: 01 Day: 01 Year: 1970");
        assert_eq!(ymd(951_782_400), "Month: 02 Day: 29 Year: 2000");
        assert_eq!(ymd(4_102_444_799), "Month: 12 Day: 31 Year: 2099");
    }
}
