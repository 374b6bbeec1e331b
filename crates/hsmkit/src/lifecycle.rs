//! Key lifecycle state: what a key vault keeps besides the versions' material.
//!
//! Every backend stores the same documents (see [`KeyDescription::to_json`]), so that the
//! lifecycle rules, which live in [`crate::Store`], are the same everywhere.

use crate::error::InvalidReason;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::attributes::{KeyAttributes, KeyOps};
use crate::backend::{KeyBinding, KeyInfo};
use crate::error::{Error, Result};
use crate::spec::KeySpec;

/// Seconds in a day, for ISO 8601 `D`.
const DAY: u64 = 86_400;

/// When a key is due for rotation, and what rotated versions look like.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RotationPolicy {
    /// Rotate once the current version is this old (key vault `timeAfterCreate`).
    pub rotate_after: Option<Duration>,
    /// Rotate once the current version expires within this time (`timeBeforeExpiry`).
    pub rotate_before_expiry: Option<Duration>,
    /// Versions made by rotation expire this long after they are created (`expiryTime`).
    pub expires_after: Option<Duration>,
}

impl RotationPolicy {
    /// Why `current` is due for rotation at `now`, or `None` if it is not.
    pub fn due(&self, current: &KeyInfo, now: SystemTime) -> Option<String> {
        self.due_at(current.created, current.attributes.expires, now)
    }

    /// Why a version created at `created` and expiring at `expires` is due for rotation
    /// at `now`, or `None` if it is not.
    pub fn due_at(
        &self,
        created: SystemTime,
        expires: Option<SystemTime>,
        now: SystemTime,
    ) -> Option<String> {
        if let Some(after) = self.rotate_after
            && created.checked_add(after).is_some_and(|t| now >= t)
        {
            return Some(format!("older than {}", format_iso_duration(after)));
        }
        if let (Some(before), Some(exp)) = (self.rotate_before_expiry, expires)
            && exp.checked_sub(before).is_none_or(|t| now >= t)
        {
            return Some(format!("expires within {}", format_iso_duration(before)));
        }
        None
    }

    fn is_empty(&self) -> bool {
        *self == RotationPolicy::default()
    }
}

/// Parses an ISO 8601 duration of days or less: `P90D`, `P2W`, `P1Y` (365 days),
/// `P1M` (30 days), `PT12H`, `P1DT30M`, as key vaults write rotation policies.
pub fn parse_iso_duration(s: &str) -> Result<Duration> {
    let bad = || {
        Error::invalid(
            InvalidReason::Malformed,
            format!("'{}' is not an ISO 8601 duration like P90D or PT12H", s.escape_debug()),
        )
    };
    let rest = s.strip_prefix('P').or_else(|| s.strip_prefix('p')).ok_or_else(bad)?;
    let (date, time) = match rest.split_once(['T', 't']) {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return Err(bad()),
        None => (rest, None),
    };
    let mut total: u64 = 0;
    let mut add = |part: &str, units: &[(char, u64)]| -> Result<()> {
        let mut num = String::new();
        let mut last_unit = 0usize;
        for c in part.chars() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            let c = c.to_ascii_uppercase();
            let idx = units.iter().position(|(u, _)| *u == c).ok_or_else(bad)?;
            // Units must come in order (Y M W D, then H M S), each at most once.
            if num.is_empty() || idx < last_unit {
                return Err(bad());
            }
            last_unit = idx + 1;
            let n: u64 = num.parse().map_err(|_| bad())?;
            let secs = units.get(idx).map(|(_, s)| *s).ok_or_else(bad)?;
            total = n.checked_mul(secs).and_then(|v| total.checked_add(v)).ok_or_else(bad)?;
            num.clear();
        }
        if num.is_empty() { Ok(()) } else { Err(bad()) }
    };
    add(date, &[('Y', 365 * DAY), ('M', 30 * DAY), ('W', 7 * DAY), ('D', DAY)])?;
    if let Some(t) = time {
        add(t, &[('H', 3600), ('M', 60), ('S', 1)])?;
    }
    if date.is_empty() && time.is_none() {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// Writes a duration as ISO 8601: whole days as `P<n>D`, the rest as `PT<n>S` parts.
pub fn format_iso_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (days, rem) = (secs / DAY, secs % DAY);
    let mut out = String::from("P");
    if days > 0 {
        out.push_str(&format!("{days}D"));
    }
    if rem > 0 || days == 0 {
        out.push('T');
        let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
        if h > 0 {
            out.push_str(&format!("{h}H"));
        }
        if m > 0 {
            out.push_str(&format!("{m}M"));
        }
        if s > 0 || (h == 0 && m == 0) {
            out.push_str(&format!("{s}S"));
        }
    }
    out
}

/// A soft-deleted key: when, and when it may be (or will be) purged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deletion {
    /// When the key was deleted.
    pub deleted_on: SystemTime,
    /// When the retention period ends; purge is refused before then under purge protection.
    pub scheduled_purge: SystemTime,
}

/// Key-level state: shared by every version of a key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyState {
    /// The rotation policy, if any.
    pub rotation: Option<RotationPolicy>,
    /// Set while the key is soft-deleted.
    pub deleted: Option<Deletion>,
}

/// A key: its state and every version, oldest first. The last version is current.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyDescription {
    /// The key name.
    pub name: String,
    /// Key-level state.
    pub state: KeyState,
    /// Versions, in increasing version order.
    pub versions: Vec<KeyInfo>,
}

impl KeyDescription {
    /// The current (newest) version.
    pub fn current(&self) -> Option<&KeyInfo> {
        self.versions.last()
    }

    /// One version.
    pub fn version(&self, version: u32) -> Option<&KeyInfo> {
        self.versions.iter().find(|v| v.version == version)
    }

    /// The highest version number (0 for a key without versions).
    pub fn max_version(&self) -> u32 {
        self.versions.iter().map(|v| v.version).max().unwrap_or(0)
    }

    /// The document every backend stores for a key (JSON, no key material).
    pub fn to_json(&self) -> Value {
        json!({
            "format": 2,
            "name": self.name,
            "state": state_to_json(&self.state),
            "versions": self.versions.iter().map(info_to_json).collect::<Vec<_>>(),
        })
    }

    /// Reads a document written by [`to_json`](Self::to_json). Also reads the
    /// single-version documents of format 1.
    pub fn from_json(v: &Value) -> Result<Self> {
        match v.get("format").and_then(Value::as_u64) {
            Some(1) => {
                let info = info_from_json(v)?;
                Ok(KeyDescription {
                    name: info.name.clone(),
                    state: KeyState::default(),
                    versions: vec![info],
                })
            }
            Some(2) => {
                let name = str_field(v, "name")?.to_owned();
                let state = state_from_json(v.get("state").unwrap_or(&Value::Null))?;
                let mut versions = v
                    .get("versions")
                    .and_then(Value::as_array)
                    .ok_or_else(|| corrupt("versions"))?
                    .iter()
                    .map(info_from_json)
                    .collect::<Result<Vec<_>>>()?;
                if versions.iter().any(|i| i.name != name) {
                    return Err(corrupt("version of another key"));
                }
                versions.sort_by_key(|i| i.version);
                Ok(KeyDescription { name, state, versions })
            }
            _ => Err(corrupt("unknown format")),
        }
    }
}

/// Store-wide settings (a key vault's soft-delete settings).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreSettings {
    /// How long a deleted key is kept before it may be purged (default 90 days).
    pub retention: Duration,
    /// When on, deleted keys cannot be purged before their retention period ends. Once
    /// on, it cannot be turned off.
    pub purge_protection: bool,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings { retention: Duration::from_secs(90 * DAY), purge_protection: false }
    }
}

impl StoreSettings {
    /// As JSON.
    pub fn to_json(&self) -> Value {
        json!({ "retention_secs": self.retention.as_secs(), "purge_protection": self.purge_protection })
    }

    /// From JSON written by [`to_json`](Self::to_json).
    pub fn from_json(v: &Value) -> Result<Self> {
        Ok(StoreSettings {
            retention: Duration::from_secs(
                v.get("retention_secs").and_then(Value::as_u64).ok_or_else(|| corrupt("retention"))?,
            ),
            purge_protection: v
                .get("purge_protection")
                .and_then(Value::as_bool)
                .ok_or_else(|| corrupt("purge_protection"))?,
        })
    }
}

/// A change to one version's attributes. `None` fields stay as they are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyUpdate {
    /// Enable or disable.
    pub enabled: Option<bool>,
    /// Set (`Some(Some(t))`) or clear (`Some(None)`) not-before.
    pub not_before: Option<Option<SystemTime>>,
    /// Set or clear expires.
    pub expires: Option<Option<SystemTime>>,
    /// Replace the allowed operations.
    pub ops: Option<KeyOps>,
    /// Replace the tags.
    pub tags: Option<BTreeMap<String, String>>,
}

impl KeyUpdate {
    /// An update that only enables or disables.
    pub fn enabled(enabled: bool) -> Self {
        KeyUpdate { enabled: Some(enabled), ..Self::default() }
    }
}

fn corrupt(what: &str) -> Error {
    Error::backend("store", "metadata", format!("corrupt key metadata: {what}"))
}

/// `t` to the whole second, as every metadata store keeps times: what a call returns is
/// then what a later read returns.
pub(crate) fn whole_seconds(t: SystemTime) -> SystemTime {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => UNIX_EPOCH + Duration::from_secs(d.as_secs()),
        Err(_) => t,
    }
}

/// Seconds since the epoch, negative before it.
pub(crate) fn secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

pub(crate) fn time(v: &Value) -> Option<SystemTime> {
    let s = v.as_i64()?;
    if s >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(s.unsigned_abs()))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(s.unsigned_abs()))
    }
}

fn str_field<'a>(v: &'a Value, k: &str) -> Result<&'a str> {
    v.get(k).and_then(Value::as_str).ok_or_else(|| corrupt(k))
}

fn dur(d: Option<Duration>) -> Value {
    d.map_or(Value::Null, |d| Value::String(format_iso_duration(d)))
}

fn dur_from(v: Option<&Value>) -> Result<Option<Duration>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => parse_iso_duration(s).map(Some).map_err(|_| corrupt("duration")),
        Some(_) => Err(corrupt("duration")),
    }
}

pub(crate) fn state_to_json(s: &KeyState) -> Value {
    json!({
        "rotation": s.rotation.filter(|r| !r.is_empty()).map(|r| json!({
            "rotate_after": dur(r.rotate_after),
            "rotate_before_expiry": dur(r.rotate_before_expiry),
            "expires_after": dur(r.expires_after),
        })),
        "deleted": s.deleted.map(|d| json!({
            "deleted_on": secs(d.deleted_on),
            "scheduled_purge": secs(d.scheduled_purge),
        })),
    })
}

pub(crate) fn state_from_json(v: &Value) -> Result<KeyState> {
    let rotation = match v.get("rotation") {
        None | Some(Value::Null) => None,
        Some(r) => Some(RotationPolicy {
            rotate_after: dur_from(r.get("rotate_after"))?,
            rotate_before_expiry: dur_from(r.get("rotate_before_expiry"))?,
            expires_after: dur_from(r.get("expires_after"))?,
        }),
    };
    let deleted = match v.get("deleted") {
        None | Some(Value::Null) => None,
        Some(d) => Some(Deletion {
            deleted_on: d.get("deleted_on").and_then(time).ok_or_else(|| corrupt("deleted_on"))?,
            scheduled_purge: d
                .get("scheduled_purge")
                .and_then(time)
                .ok_or_else(|| corrupt("scheduled_purge"))?,
        }),
    };
    Ok(KeyState { rotation, deleted })
}

fn info_to_json(info: &KeyInfo) -> Value {
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
        "updated": secs(info.updated),
        "binding": {
            "object_id": to_hex(&info.binding.object_id),
            "public_sha256": info.binding.public_sha256.map(|f| to_hex(&f)),
        },
    })
}

pub(crate) fn to_hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len() / 2).map(|i| s.get(2 * i..2 * i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect()
}

fn binding_from_json(v: &Value) -> Result<KeyBinding> {
    if v.is_null() {
        // Documents written before bindings existed.
        return Ok(KeyBinding::default());
    }
    let object_id = v
        .get("object_id")
        .and_then(Value::as_str)
        .and_then(from_hex)
        .ok_or_else(|| corrupt("binding object_id"))?;
    let public_sha256 = match v.get("public_sha256") {
        None | Some(Value::Null) => None,
        Some(f) => Some(
            f.as_str()
                .and_then(from_hex)
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| corrupt("binding public_sha256"))?,
        ),
    };
    Ok(KeyBinding { object_id, public_sha256 })
}

fn info_from_json(v: &Value) -> Result<KeyInfo> {
    let get = |k: &str| v.get(k).unwrap_or(&Value::Null);
    let ops: KeyOps = str_field(v, "ops")?.parse().map_err(|_| corrupt("ops"))?;
    let tags: BTreeMap<String, String> =
        serde_json::from_value(get("tags").clone()).map_err(|_| corrupt("tags"))?;
    let created = time(get("created")).unwrap_or(UNIX_EPOCH);
    Ok(KeyInfo {
        name: str_field(v, "name")?.to_owned(),
        version: get("version")
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| corrupt("version"))?,
        spec: KeySpec::from_str(str_field(v, "spec")?).map_err(|_| corrupt("spec"))?,
        attributes: KeyAttributes {
            ops: Some(ops),
            enabled: get("enabled").as_bool().ok_or_else(|| corrupt("enabled"))?,
            not_before: time(get("not_before")),
            expires: time(get("expires")),
            tags,
            exportable: get("exportable").as_bool().unwrap_or(false),
        },
        has_private: get("has_private").as_bool().ok_or_else(|| corrupt("has_private"))?,
        created,
        updated: time(get("updated")).unwrap_or(created),
        binding: binding_from_json(get("binding"))?,
    })
}

impl fmt::Display for RotationPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(d) = self.rotate_after {
            parts.push(format!("rotate after {}", format_iso_duration(d)));
        }
        if let Some(d) = self.rotate_before_expiry {
            parts.push(format!("rotate {} before expiry", format_iso_duration(d)));
        }
        if let Some(d) = self.expires_after {
            parts.push(format!("new versions expire after {}", format_iso_duration(d)));
        }
        if parts.is_empty() { f.write_str("no rotation") } else { f.write_str(&parts.join(", ")) }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn iso_durations() {
        let d = |s: &str| parse_iso_duration(s).map(|d| d.as_secs());
        assert_eq!(d("P90D").unwrap(), 90 * DAY);
        assert_eq!(d("P1Y2M3W4D").unwrap(), (365 + 60 + 21 + 4) * DAY);
        assert_eq!(d("PT12H30M5S").unwrap(), 12 * 3600 + 30 * 60 + 5);
        assert_eq!(d("P1DT1M").unwrap(), DAY + 60);
        for bad in ["", "P", "90D", "PT", "P1H", "PD", "P1D2Y", "P1DT", "P99999999999999999999D", "P1.5D"] {
            assert!(d(bad).is_err(), "{bad}");
        }
        for secs in [0, 1, 59, 3600, DAY, 90 * DAY, DAY + 3661] {
            let s = format_iso_duration(Duration::from_secs(secs));
            assert_eq!(d(&s).unwrap(), secs, "{s}");
        }
        assert_eq!(format_iso_duration(Duration::from_secs(90 * DAY)), "P90D");
    }
}
