//! Key metadata on the token: one `CKO_DATA` object per key (label = key name,
//! application = `hsmkit`) whose value is JSON. Two processes sharing the token agree on
//! it; the key objects themselves carry `CKA_LABEL` = name and `CKA_ID` = version.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hsmkit::{Error, KeyAttributes, KeyInfo, KeyOps, KeySpec, Result};
use serde_json::{Value, json};

pub(crate) const APPLICATION: &[u8] = b"hsmkit";

fn secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

fn time(v: &Value) -> Option<SystemTime> {
    let s = v.as_i64()?;
    if s >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(s.unsigned_abs()))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(s.unsigned_abs()))
    }
}

/// The `CKA_ID` of a key version.
pub(crate) fn object_id(version: u32) -> Vec<u8> {
    version.to_be_bytes().to_vec()
}

pub(crate) fn encode(info: &KeyInfo) -> Vec<u8> {
    let a = &info.attributes;
    json!({
        "format": 1,
        "name": info.name,
        "version": info.version,
        "spec": info.spec.to_string(),
        "ops": a.allowed().to_string(),
        "enabled": a.enabled,
        "not_before": a.not_before.map(secs),
        "expires": a.expires.map(secs),
        "tags": a.tags,
        "exportable": a.exportable,
        "has_private": info.has_private,
        "created": secs(info.created),
    })
    .to_string()
    .into_bytes()
}

pub(crate) fn decode(bytes: &[u8]) -> Result<KeyInfo> {
    let bad = |what: &str| {
        Error::backend(crate::error::KIND, "metadata", format!("corrupt hsmkit metadata object: {what}"))
    };
    let v: Value = serde_json::from_slice(bytes).map_err(|_| bad("not JSON"))?;
    let get = |k: &str| v.get(k).unwrap_or(&Value::Null);
    if get("format") != &json!(1) {
        return Err(bad("unknown format"));
    }
    let s = |k: &str| get(k).as_str().ok_or_else(|| bad(k));
    let ops: KeyOps = s("ops")?.parse().map_err(|_| bad("ops"))?;
    let tags: BTreeMap<String, String> =
        serde_json::from_value(get("tags").clone()).map_err(|_| bad("tags"))?;
    Ok(KeyInfo {
        name: s("name")?.to_owned(),
        version: get("version").as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(|| bad("version"))?,
        spec: s("spec")?.parse::<KeySpec>().map_err(|_| bad("spec"))?,
        attributes: KeyAttributes {
            ops: Some(ops),
            enabled: get("enabled").as_bool().ok_or_else(|| bad("enabled"))?,
            not_before: time(get("not_before")),
            expires: time(get("expires")),
            tags,
            exportable: false,
        },
        has_private: get("has_private").as_bool().ok_or_else(|| bad("has_private"))?,
        created: time(get("created")).unwrap_or(UNIX_EPOCH),
    })
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

    #[test]
    fn round_trip() {
        let info = KeyInfo {
            name: "k".into(),
            version: 3,
            spec: KeySpec::P384,
            attributes: KeyAttributes {
                ops: Some("sign,verify".parse().unwrap()),
                enabled: false,
                not_before: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
                expires: None,
                tags: [("team".to_owned(), "pay".to_owned())].into(),
                exportable: false,
            },
            has_private: true,
            created: UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        };
        assert_eq!(decode(&encode(&info)).unwrap(), info);
        assert!(decode(b"{}").is_err());
        assert!(decode(b"\xff").is_err());
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
