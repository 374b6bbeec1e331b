//! Key, secret and certificate metadata as JSON, in one shape for every front end: what `hsmkit --json` prints and
//! what the C ABI returns. (Not the backends' storage format, which is private to them.)

use std::time::SystemTime;

use serde_json::{Value, json};

use crate::backend::KeyInfo;
use crate::certificates::{
    CertificateDescription, CertificateDue, CertificatePolicy, CertificateProperties, LifetimeAction,
    PendingCertificate,
};
use crate::lifecycle::{KeyDescription, RotationPolicy, format_iso_duration};
use crate::secrets::{SecretAttributes, SecretDescription, SecretDue, SecretProperties};

/// An RFC 3339 time in UTC, to the second. A time RFC 3339 cannot write (before 1970 or
/// after 9999, which stores refuse for new attributes but old documents may hold) is
/// written as seconds from the Unix epoch instead, never a panic.
pub fn rfc3339(t: SystemTime) -> String {
    if crate::attributes::time_in_range(t) {
        humantime::format_rfc3339_seconds(t).to_string()
    } else {
        format!("{}s from the Unix epoch", crate::lifecycle::secs(t))
    }
}

/// One key version: name, version, kid, spec, ops, enabled, times, tags, exportable,
/// has_private.
pub fn key_info(i: &KeyInfo) -> Value {
    let a = &i.attributes;
    json!({
        "name": i.name,
        "version": i.version,
        "kid": i.kid(),
        "spec": i.spec.to_string(),
        "ops": a.allowed().to_string(),
        "enabled": a.enabled,
        "not_before": a.not_before.map(rfc3339),
        "expires": a.expires.map(rfc3339),
        "tags": a.tags,
        "exportable": a.exportable,
        "has_private": i.has_private,
        "created": rfc3339(i.created),
        "updated": rfc3339(i.updated),
    })
}

/// A key with every version, its deletion state and rotation policy.
pub fn key_description(d: &KeyDescription) -> Value {
    json!({
        "name": d.name,
        "current_version": d.current().map(|c| c.version),
        "deleted": d.state.deleted.map(|x| json!({
            "deleted_on": rfc3339(x.deleted_on),
            "scheduled_purge": rfc3339(x.scheduled_purge),
        })),
        "rotation_policy": d.state.rotation.map(|p| rotation_policy(&p)),
        "versions": d.versions.iter().map(key_info).collect::<Vec<_>>(),
    })
}

/// A rotation policy, durations in ISO 8601 (`P90D`).
pub fn rotation_policy(p: &RotationPolicy) -> Value {
    json!({
        "rotate_after": p.rotate_after.map(format_iso_duration),
        "rotate_before_expiry": p.rotate_before_expiry.map(format_iso_duration),
        "expires_after": p.expires_after.map(format_iso_duration),
    })
}

/// One secret version's metadata (never its value): name, version, enabled, times,
/// content type, tags. Every field is named, so a new attribute cannot be left out.
pub fn secret_properties(p: &SecretProperties) -> Value {
    let SecretProperties { name, version, attributes, created, updated } = p;
    let SecretAttributes { enabled, not_before, expires, content_type, tags } = attributes;
    json!({
        "name": name,
        "version": version,
        "enabled": enabled,
        "not_before": not_before.map(rfc3339),
        "expires": expires.map(rfc3339),
        "content_type": content_type,
        "tags": tags,
        "created": rfc3339(*created),
        "updated": rfc3339(*updated),
    })
}

/// A secret with every version's metadata, its deletion state and rotation policy (the
/// shape of [`key_description`]).
pub fn secret_description(d: &SecretDescription) -> Value {
    json!({
        "name": d.name,
        "current_version": d.current().map(|c| c.version),
        "deleted": d.state.deleted.map(|x| json!({
            "deleted_on": rfc3339(x.deleted_on),
            "scheduled_purge": rfc3339(x.scheduled_purge),
        })),
        "rotation_policy": d.state.rotation.map(|p| rotation_policy(&p)),
        "versions": d.versions.iter().map(secret_properties).collect::<Vec<_>>(),
    })
}

/// A secret version due for rotation.
pub fn secret_due(d: &SecretDue) -> Value {
    json!({ "name": d.name, "version": d.version, "expires": d.expires.map(rfc3339), "reason": d.reason })
}

/// One certificate version: the fields of [`CertificateProperties`], times in RFC 3339,
/// and the kid of the key version it certifies.
pub fn certificate_properties(p: &CertificateProperties) -> Value {
    json!({
        "name": p.name,
        "version": p.version,
        "key_version": p.key_version,
        "kid": format!("{}/{}", p.name, p.key_version),
        "subject": p.subject,
        "issuer": p.issuer,
        "serial": p.serial,
        "not_before": rfc3339(p.not_before),
        "expires": rfc3339(p.expires),
        "thumbprint_sha256": p.thumbprint_sha256,
        "created": rfc3339(p.created),
    })
}

/// A certificate policy: subject, SANs (`dns:...`), key usages by OpenSSL's names, key
/// spec, exportable, reuse_key, validity_months, issuer (`Self`/`Unknown`), ca, and the
/// lifetime action (`{"lifetime_percentage": N}`, `{"days_before_expiry": N}` or null).
pub fn certificate_policy(p: &CertificatePolicy) -> Value {
    json!({
        "subject": p.subject,
        "subject_alt_names": p.subject_alt_names.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "key_usage": p.key_usage.iter().map(|k| k.name()).collect::<Vec<_>>(),
        "extended_key_usage": p.extended_key_usage.iter().map(|k| k.name()).collect::<Vec<_>>(),
        "key_spec": p.key_spec.to_string(),
        "exportable": p.exportable,
        "reuse_key": p.reuse_key,
        "validity_months": p.validity_months,
        "issuer": p.issuer.name(),
        "ca": p.ca,
        "lifetime_action": match p.lifetime_action {
            None => Value::Null,
            Some(LifetimeAction::AtPercentage(p)) => json!({ "lifetime_percentage": p }),
            Some(LifetimeAction::DaysBeforeExpiry(d)) => json!({ "days_before_expiry": d }),
        },
    })
}

/// A pending request: name, key version, subject, when, and the CSR as PEM.
pub fn pending_certificate(p: &PendingCertificate) -> crate::Result<Value> {
    Ok(json!({
        "name": p.name,
        "key_version": p.key_version,
        "subject": p.csr.subject(),
        "created": rfc3339(p.created),
        "csr": p.csr.to_pem()?,
    }))
}

/// A certificate with every version, its policy, pending request and deletion state (the
/// shape of [`key_description`]).
pub fn certificate_description(d: &CertificateDescription) -> crate::Result<Value> {
    Ok(json!({
        "name": d.name,
        "current_version": d.current().map(|c| c.version),
        "deleted": d.state.deleted.map(|x| json!({
            "deleted_on": rfc3339(x.deleted_on),
            "scheduled_purge": rfc3339(x.scheduled_purge),
        })),
        "policy": certificate_policy(&d.policy),
        "pending": d.pending.as_ref().map(pending_certificate).transpose()?,
        "versions": d.versions.iter().map(certificate_properties).collect::<Vec<_>>(),
    }))
}

/// A certificate due for renewal.
pub fn certificate_due(d: &CertificateDue) -> Value {
    json!({
        "name": d.name,
        "version": d.version,
        "expires": rfc3339(d.expires),
        "reason": d.reason,
        "issuer": d.issuer.name(),
    })
}
