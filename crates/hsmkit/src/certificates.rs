//! Certificates as store objects, as a key vault keeps them: a certificate name has
//! versions, each an X.509 certificate (and its chain) bound to a version of the key of
//! the same name; a [`CertificatePolicy`] says how the next version is made and when.
//!
//! - Issuer [`CertificateIssuer::SelfSigned`]: creating (or renewing) makes the key
//!   version and a self-signed certificate at once.
//! - Issuer [`CertificateIssuer::Unknown`]: creating leaves a [`PendingCertificate`]
//!   holding a request (CSR) for the key; a CA signs it elsewhere and
//!   [`Store::merge_certificate`] adds the signed certificate as a version (its public key
//!   must be the pending key's).
//! - [`Store::renew_due_certificates`] renews the self-signed certificates the policy's
//!   [`LifetimeAction`] says are due and reports the others.
//! - [`Store::import_pkcs12`] and [`Store::import_certificate_pem`] bring a certificate
//!   and its private key in; the key goes into the backend (on a token, sensitive and not
//!   extractable unless the policy says exportable).
//!
//! The record lives in the metadata seam ([`RecordKind::Certificate`]), so certificates
//! work wherever keys do. Certificates are public: the record holds them in clear and
//! the metadata store authenticates it.
//!
//! ```
//! # fn main() -> hsmkit::Result<()> {
//! use hsmkit::certificates::{CertificateOperation, CertificatePolicy};
//! use hsmkit::{EcCurve, KeySpec};
//!
//! let store = hsmkit::Store::new(hsmkit_soft::SoftBackend::new());
//! let mut policy = CertificatePolicy::new("CN=api.example.com", KeySpec::Ec(EcCurve::P256));
//! policy.subject_alt_names = vec!["dns:api.example.com".parse()?];
//! let CertificateOperation::Completed(v1) = store.create_certificate("api", &policy)? else {
//!     unreachable!("a self-signed certificate completes at once")
//! };
//! assert_eq!((v1.version, v1.key_version), (1, 1));
//! let bundle = store.get_certificate("api")?;
//! assert!(bundle.to_pem(false)?.starts_with("-----BEGIN CERTIFICATE-----"));
//! # Ok(()) }
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64ct::{Base64, Encoding};
use serde_json::{Value, json};

use crate::attributes::{KeyAttributes, KeyOp};
use crate::error::{Error, ErrorKind, InvalidReason, Result};
use crate::key::Key;
use crate::lifecycle::{Deletion, KeyState, secs, state_from_json, state_to_json, time, whole_seconds};
use crate::material::KeyMaterial;
use crate::metadata::RecordKind;
use crate::spec::KeySpec;
use crate::store::{Store, validate_object_name};
use crate::x509::{
    Certificate, CertificateParams, CertificateRequest, ExtendedKeyUsage, KeyUsage, SubjectAltName,
};

const KIND: RecordKind = RecordKind::Certificate;

/// The longest validity a policy may ask for, in months (as Azure Key Vault: 1200).
pub const MAX_VALIDITY_MONTHS: u32 = 1200;

/// Who signs a certificate's versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CertificateIssuer {
    /// The certificate's own key (Key Vault's `Self`).
    SelfSigned,
    /// A CA outside hsmkit: each version waits as a pending request until the signed
    /// certificate is merged (Key Vault's `Unknown`).
    Unknown,
}

impl CertificateIssuer {
    /// Key Vault's name: `Self` or `Unknown`.
    pub fn name(self) -> &'static str {
        match self {
            CertificateIssuer::SelfSigned => "Self",
            CertificateIssuer::Unknown => "Unknown",
        }
    }
}

impl fmt::Display for CertificateIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CertificateIssuer {
    type Err = Error;
    /// `Self`/`self` or `Unknown`/`unknown`.
    fn from_str(s: &str) -> Result<Self> {
        [CertificateIssuer::SelfSigned, CertificateIssuer::Unknown]
            .into_iter()
            .find(|i| i.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| param(format!("issuer '{s}': expected 'Self' or 'Unknown'")))
    }
}

/// When a certificate is due for renewal (Key Vault's lifetime action trigger).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LifetimeAction {
    /// Once this share of the validity period (1 to 99 %) has passed.
    AtPercentage(u8),
    /// This many days (at least 1) before the certificate expires.
    DaysBeforeExpiry(u32),
}

impl LifetimeAction {
    fn validate(self) -> Result<()> {
        match self {
            LifetimeAction::AtPercentage(p) if !(1..=99).contains(&p) => {
                Err(param(format!("renewal at {p} % of the lifetime: from 1 to 99")))
            }
            LifetimeAction::DaysBeforeExpiry(0) => Err(param("renewal 0 days before expiry: at least 1")),
            LifetimeAction::AtPercentage(_) | LifetimeAction::DaysBeforeExpiry(_) => Ok(()),
        }
    }

    /// When a certificate valid from `not_before` to `not_after` is due.
    pub fn due_at(self, not_before: SystemTime, not_after: SystemTime) -> SystemTime {
        match self {
            LifetimeAction::AtPercentage(p) => {
                // Whole seconds, no floats; a percentage past 100 (never validated in) is 100.
                let life = not_after.duration_since(not_before).unwrap_or_default().as_secs();
                let at = life / 100 * u64::from(p.min(100)) + life % 100 * u64::from(p.min(100)) / 100;
                not_before.checked_add(Duration::from_secs(at)).unwrap_or(not_after)
            }
            LifetimeAction::DaysBeforeExpiry(d) => {
                not_after.checked_sub(days(d)).unwrap_or(UNIX_EPOCH).max(not_before)
            }
        }
    }
}

impl fmt::Display for LifetimeAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LifetimeAction::AtPercentage(p) => write!(f, "renew at {p} % of the lifetime"),
            LifetimeAction::DaysBeforeExpiry(d) => write!(f, "renew {d} days before expiry"),
        }
    }
}

/// How a certificate's versions are made.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CertificatePolicy {
    /// The subject (RFC 4514 or OpenSSL's slash form, as [`CertificateParams::subject`]).
    pub subject: String,
    /// Subject alternative names.
    pub subject_alt_names: Vec<SubjectAltName>,
    /// Key usage; empty: [`CertificateParams::key_usage`]'s default.
    pub key_usage: Vec<KeyUsage>,
    /// Extended key usage; empty: none.
    pub extended_key_usage: Vec<ExtendedKeyUsage>,
    /// The key's type and size.
    pub key_spec: KeySpec,
    /// Whether the private key may be exported (software backend only).
    pub exportable: bool,
    /// Renewal keeps the current key version (`true`) or makes a new one (`false`).
    pub reuse_key: bool,
    /// Validity of each version, in calendar months (1 to [`MAX_VALIDITY_MONTHS`]).
    pub validity_months: u32,
    /// Who signs.
    pub issuer: CertificateIssuer,
    /// A CA certificate (self-signed roots).
    pub ca: bool,
    /// When a version is due for renewal; `None`: never (reported only when it expires).
    pub lifetime_action: Option<LifetimeAction>,
}

impl CertificatePolicy {
    /// A self-signed end-entity policy: 12 months, a new key on renewal, renewal at 80 %
    /// of the lifetime (Key Vault's defaults).
    pub fn new(subject: impl Into<String>, key_spec: KeySpec) -> Self {
        CertificatePolicy {
            subject: subject.into(),
            subject_alt_names: Vec::new(),
            key_usage: Vec::new(),
            extended_key_usage: Vec::new(),
            key_spec,
            exportable: false,
            reuse_key: false,
            validity_months: 12,
            issuer: CertificateIssuer::SelfSigned,
            ca: false,
            lifetime_action: Some(LifetimeAction::AtPercentage(80)),
        }
    }

    fn validate(&self) -> Result<()> {
        if !(1..=MAX_VALIDITY_MONTHS).contains(&self.validity_months) {
            return Err(param(format!(
                "validity of {} months: from 1 to {MAX_VALIDITY_MONTHS}",
                self.validity_months
            )));
        }
        // Everything the certificate step would refuse, before a key is generated: a
        // failure after it would leave a key (version) no certificate names.
        let at = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        crate::x509::check_params(&self.params(at)?, self.key_spec)?;
        if let Some(a) = self.lifetime_action {
            a.validate()?;
            // A trigger at or before the start would renew on every renew-due run.
            let start = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
            let end = add_months(start, self.validity_months)?;
            if let LifetimeAction::DaysBeforeExpiry(d) = a
                && end.duration_since(start).unwrap_or_default() <= days(d)
            {
                return Err(param(format!(
                    "renewal {d} days before expiry with a validity of {} months: it would always be due",
                    self.validity_months
                )));
            }
        }
        if self.subject.trim().is_empty() && self.subject_alt_names.is_empty() {
            return Err(param("a certificate policy needs a subject or alternative names"));
        }
        Ok(())
    }

    fn params(&self, not_before: SystemTime) -> Result<CertificateParams> {
        let mut p = CertificateParams::new(self.subject.clone());
        p.subject_alt_names.clone_from(&self.subject_alt_names);
        p.key_usage.clone_from(&self.key_usage);
        p.extended_key_usage.clone_from(&self.extended_key_usage);
        p.ca = self.ca;
        p.not_before = Some(not_before);
        let not_after = add_months(not_before, self.validity_months)?;
        p.validity = not_after.duration_since(not_before).map_err(|_| param("validity"))?;
        Ok(p)
    }

    fn to_json(&self) -> Value {
        json!({
            "subject": self.subject,
            "subject_alt_names": self.subject_alt_names.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "key_usage": self.key_usage.iter().map(|k| k.name()).collect::<Vec<_>>(),
            "extended_key_usage": self.extended_key_usage.iter().map(|k| k.name()).collect::<Vec<_>>(),
            "key_spec": self.key_spec.to_string(),
            "exportable": self.exportable,
            "reuse_key": self.reuse_key,
            "validity_months": self.validity_months,
            "issuer": self.issuer.name(),
            "ca": self.ca,
            "lifetime_action": match self.lifetime_action {
                None => Value::Null,
                Some(LifetimeAction::AtPercentage(p)) => json!({ "lifetime_percentage": p }),
                Some(LifetimeAction::DaysBeforeExpiry(d)) => json!({ "days_before_expiry": d }),
            },
        })
    }

    fn from_json(name: &str, v: &Value) -> Result<Self> {
        let bad = |what: &str| corrupt(name, what);
        let s = |k: &str| v.get(k).and_then(Value::as_str).ok_or_else(|| bad(k));
        let b = |k: &str| v.get(k).and_then(Value::as_bool).ok_or_else(|| bad(k));
        let list = |k: &str| -> Result<Vec<&str>> {
            v.get(k)
                .and_then(Value::as_array)
                .ok_or_else(|| bad(k))?
                .iter()
                .map(|e| e.as_str().ok_or_else(|| bad(k)))
                .collect()
        };
        let parse_all =
            |k: &str| -> Result<Vec<String>> { Ok(list(k)?.into_iter().map(str::to_owned).collect()) };
        let action = match v.get("lifetime_action") {
            None | Some(Value::Null) => None,
            Some(a) => Some(
                match (
                    a.get("lifetime_percentage").and_then(Value::as_u64),
                    a.get("days_before_expiry").and_then(Value::as_u64),
                ) {
                    (Some(p), None) => {
                        LifetimeAction::AtPercentage(u8::try_from(p).map_err(|_| bad("lifetime_action"))?)
                    }
                    (None, Some(d)) => LifetimeAction::DaysBeforeExpiry(
                        u32::try_from(d).map_err(|_| bad("lifetime_action"))?,
                    ),
                    _ => return Err(bad("lifetime_action")),
                },
            ),
        };
        Ok(CertificatePolicy {
            subject: s("subject")?.to_owned(),
            subject_alt_names: parse_all("subject_alt_names")?
                .iter()
                .map(|x| x.parse())
                .collect::<Result<_>>()
                .map_err(|_| bad("subject_alt_names"))?,
            key_usage: parse_all("key_usage")?
                .iter()
                .map(|x| x.parse())
                .collect::<Result<_>>()
                .map_err(|_| bad("key_usage"))?,
            extended_key_usage: parse_all("extended_key_usage")?
                .iter()
                .map(|x| x.parse())
                .collect::<Result<_>>()
                .map_err(|_| bad("extended_key_usage"))?,
            key_spec: s("key_spec")?.parse().map_err(|_| bad("key_spec"))?,
            exportable: b("exportable")?,
            reuse_key: b("reuse_key")?,
            validity_months: v
                .get("validity_months")
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| bad("validity_months"))?,
            issuer: s("issuer")?.parse().map_err(|_| bad("issuer"))?,
            ca: b("ca")?,
            // Checked as on the way in: a percentage past 100 would schedule past expiry.
            lifetime_action: action
                .map(|a| a.validate().map(|()| a))
                .transpose()
                .map_err(|_| bad("lifetime_action"))?,
        })
    }
}

/// One version's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CertificateProperties {
    /// The certificate's (and its key's) name.
    pub name: String,
    /// The certificate version.
    pub version: u32,
    /// The key version the certificate certifies.
    pub key_version: u32,
    /// The leaf's subject.
    pub subject: String,
    /// The leaf's issuer.
    pub issuer: String,
    /// The leaf's serial number, in hex.
    pub serial: String,
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub expires: SystemTime,
    /// SHA-256 of the leaf's DER, in hex.
    pub thumbprint_sha256: String,
    /// When the version was added.
    pub created: SystemTime,
}

/// A version with its certificates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateBundle {
    /// The version's metadata.
    pub properties: CertificateProperties,
    /// The leaf first, then its issuers as given when it was merged or imported.
    pub chain: Vec<Certificate>,
}

impl CertificateBundle {
    /// The leaf certificate.
    pub fn certificate(&self) -> Result<&Certificate> {
        self.chain.first().ok_or_else(|| corrupt(&self.properties.name, "an empty chain"))
    }

    /// PEM of the leaf, or with `chain` of the leaf and its issuers.
    pub fn to_pem(&self, chain: bool) -> Result<String> {
        let take = if chain { self.chain.len() } else { 1 };
        let mut out = String::new();
        for c in self.chain.iter().take(take) {
            out.push_str(&c.to_pem()?);
        }
        Ok(out)
    }
}

/// A version waiting for a CA: the request and the key version it was made for.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PendingCertificate {
    /// The certificate's name.
    pub name: String,
    /// The key version the request is for.
    pub key_version: u32,
    /// The request (CSR) to take to the CA.
    pub csr: CertificateRequest,
    /// When the operation began.
    pub created: SystemTime,
}

/// What creating (or renewing) a certificate did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertificateOperation {
    /// A new version (self-signed).
    Completed(CertificateProperties),
    /// A request waits for a CA ([`Store::merge_certificate`]).
    Pending(PendingCertificate),
}

/// A certificate: state, policy, versions and any pending operation.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CertificateDescription {
    /// The name.
    pub name: String,
    /// Soft-delete state.
    pub state: KeyState,
    /// The policy.
    pub policy: CertificatePolicy,
    /// Every version, oldest first.
    pub versions: Vec<CertificateProperties>,
    /// A version waiting for its CA.
    pub pending: Option<PendingCertificate>,
}

impl CertificateDescription {
    /// The current (newest) version.
    pub fn current(&self) -> Option<&CertificateProperties> {
        self.versions.last()
    }
}

/// A certificate version due for renewal.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CertificateDue {
    /// The certificate's name.
    pub name: String,
    /// The current version.
    pub version: u32,
    /// When it expires.
    pub expires: SystemTime,
    /// Why it is due.
    pub reason: String,
    /// Its policy's issuer: [`Store::renew_due_certificates`] renews only `SelfSigned`.
    pub issuer: CertificateIssuer,
}

/// What [`Store::renew_due_certificates`] did for one due certificate.
#[derive(Debug)]
#[non_exhaustive]
pub struct CertificateRenewal {
    /// What was due.
    pub due: CertificateDue,
    /// The renewal: a new version (`SelfSigned`), `None` for an `Unknown` issuer (reported,
    /// not renewed: [`Store::renew_certificate`] makes its pending request), or why it
    /// failed.
    pub result: Result<Option<CertificateOperation>>,
}

struct Version {
    props: CertificateProperties,
    chain: Vec<Vec<u8>>,
}

struct Pending {
    key_version: u32,
    csr: Vec<u8>,
    created: SystemTime,
}

/// A certificate as stored in its record.
struct CertDoc {
    name: String,
    state: KeyState,
    policy: CertificatePolicy,
    versions: Vec<Version>,
    pending: Option<Pending>,
}

fn param(msg: impl Into<String>) -> Error {
    Error::invalid(InvalidReason::Parameter, msg)
}

fn corrupt(name: &str, what: &str) -> Error {
    Error::backend("store", "metadata", format!("corrupt certificate record '{name}': {what}"))
}

fn not_found(name: &str) -> Error {
    Error::NotFound { what: format!("certificate '{name}'") }
}

fn deleted_not_found(name: &str) -> Error {
    Error::NotFound { what: format!("deleted certificate '{name}'") }
}

fn days(n: u32) -> Duration {
    Duration::from_secs(u64::from(n) * 86_400)
}

/// `t` plus `months` calendar months, the day clamped to the month's last (Jan 31 + 1
/// month is Feb 28 or 29), the time of day kept, to the whole second. The calendar is
/// `der`'s (the one certificate times are written in): 1970 to 9999.
fn add_months(t: SystemTime, months: u32) -> Result<SystemTime> {
    let bad = || param("a validity outside the years 1970 to 9999");
    let secs = t.duration_since(UNIX_EPOCH).map_err(|_| bad())?.as_secs();
    let dt = der::DateTime::from_unix_duration(Duration::from_secs(secs)).map_err(|_| bad())?;
    let total = u32::from(dt.month()).saturating_sub(1).checked_add(months).ok_or_else(bad)?;
    let year =
        u32::from(dt.year()).checked_add(total / 12).and_then(|y| u16::try_from(y).ok()).ok_or_else(bad)?;
    let month = u8::try_from(total % 12 + 1).map_err(|_| bad())?;
    (1..=dt.day())
        .rev()
        .find_map(|day| der::DateTime::new(year, month, day, dt.hour(), dt.minutes(), dt.seconds()).ok())
        .map(|d| UNIX_EPOCH + d.unix_duration())
        .ok_or_else(bad)
}

fn b64_list(v: &Value) -> Option<Vec<Vec<u8>>> {
    v.as_array()?.iter().map(|e| e.as_str().and_then(|s| Base64::decode_vec(s).ok())).collect()
}

impl CertDoc {
    fn max_version(&self) -> u32 {
        self.versions.iter().map(|v| v.props.version).max().unwrap_or(0)
    }

    fn pending(&self) -> Result<Option<PendingCertificate>> {
        self.pending
            .as_ref()
            .map(|p| {
                Ok(PendingCertificate {
                    name: self.name.clone(),
                    key_version: p.key_version,
                    csr: CertificateRequest::from_der(&p.csr).map_err(|_| corrupt(&self.name, "csr"))?,
                    created: p.created,
                })
            })
            .transpose()
    }

    fn describe(&self) -> Result<CertificateDescription> {
        Ok(CertificateDescription {
            name: self.name.clone(),
            state: self.state.clone(),
            policy: self.policy.clone(),
            versions: self.versions.iter().map(|v| v.props.clone()).collect(),
            pending: self.pending()?,
        })
    }

    fn bundle(&self, v: &Version) -> Result<CertificateBundle> {
        let chain = v
            .chain
            .iter()
            .map(|d| Certificate::from_der(d).map_err(|_| corrupt(&self.name, "certificate")))
            .collect::<Result<Vec<_>>>()?;
        Ok(CertificateBundle { properties: v.props.clone(), chain })
    }

    fn to_json(&self) -> Value {
        let versions: Vec<Value> = self
            .versions
            .iter()
            .map(|v| {
                json!({
                    "version": v.props.version,
                    "key_version": v.props.key_version,
                    "created": secs(v.props.created),
                    "chain": v.chain.iter().map(|d| Base64::encode_string(d)).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({
            "format": 1,
            "name": self.name,
            "state": state_to_json(&self.state),
            "policy": self.policy.to_json(),
            "versions": versions,
            "pending": self.pending.as_ref().map(|p| json!({
                "key_version": p.key_version,
                "csr": Base64::encode_string(&p.csr),
                "created": secs(p.created),
            })),
        })
    }

    fn from_json(crypto: &dyn crate::CryptoProvider, name: &str, v: &Value) -> Result<Self> {
        let bad = |what: &str| corrupt(name, what);
        if v.get("format").and_then(Value::as_u64) != Some(1) {
            return Err(bad("unknown format"));
        }
        // The record store authenticates the record under its name; this catches a record
        // whose body names another certificate.
        if v.get("name").and_then(Value::as_str) != Some(name) {
            return Err(bad("it describes another certificate"));
        }
        let state = state_from_json(v.get("state").unwrap_or(&Value::Null))?;
        let policy = CertificatePolicy::from_json(name, v.get("policy").unwrap_or(&Value::Null))?;
        let u32_of = |e: &Value, k: &str| {
            e.get(k).and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok()).ok_or_else(|| bad(k))
        };
        let mut versions = Vec::new();
        for e in v.get("versions").and_then(Value::as_array).ok_or_else(|| bad("versions"))? {
            let chain = e.get("chain").and_then(b64_list).ok_or_else(|| bad("chain"))?;
            let leaf = chain.first().ok_or_else(|| bad("an empty chain"))?;
            let cert = Certificate::from_der(leaf).map_err(|_| bad("certificate"))?;
            let props = properties(
                crypto,
                name,
                u32_of(e, "version")?,
                u32_of(e, "key_version")?,
                &cert,
                e.get("created").and_then(time).ok_or_else(|| bad("created"))?,
            );
            versions.push(Version { props, chain });
        }
        versions.sort_by_key(|v| v.props.version);
        let pending = match v.get("pending") {
            None | Some(Value::Null) => None,
            Some(p) => Some(Pending {
                key_version: u32_of(p, "key_version")?,
                csr: p
                    .get("csr")
                    .and_then(Value::as_str)
                    .and_then(|s| Base64::decode_vec(s).ok())
                    .ok_or_else(|| bad("csr"))?,
                created: p.get("created").and_then(time).ok_or_else(|| bad("created"))?,
            }),
        };
        Ok(CertDoc { name: name.to_owned(), state, policy, versions, pending })
    }
}

fn properties(
    crypto: &dyn crate::CryptoProvider,
    name: &str,
    version: u32,
    key_version: u32,
    leaf: &Certificate,
    created: SystemTime,
) -> CertificateProperties {
    let (not_before, expires) = leaf.validity();
    CertificateProperties {
        name: name.to_owned(),
        version,
        key_version,
        subject: leaf.subject(),
        issuer: leaf.issuer(),
        serial: leaf.serial_hex(),
        not_before,
        expires,
        thumbprint_sha256: leaf.sha256_fingerprint(crypto),
        created,
    }
}

/// The chain from `leaf`: each next certificate is the one that issued the one before
/// (its subject is that one's issuer and its key verifies that one's signature), whatever
/// order `others` come in (files do not promise one); it ends at a self-issued
/// certificate or where no issuer is given. Copies of a certificate count once; a
/// certificate that is not on the chain is refused ([`InvalidReason::Parameter`]).
fn build_chain(
    crypto: &dyn crate::CryptoProvider,
    leaf: &Certificate,
    others: &[Certificate],
) -> Result<Vec<Certificate>> {
    let mut rest: Vec<&Certificate> = Vec::new();
    for c in others {
        if c != leaf && !rest.contains(&c) {
            rest.push(c);
        }
    }
    let mut chain = vec![leaf.clone()];
    while let Some(last) = chain.last() {
        if last.subject() == last.issuer() {
            break;
        }
        let mut found = None;
        for (i, c) in rest.iter().enumerate() {
            if c.subject() != last.issuer() {
                continue;
            }
            match last.verify_issued_by(c, crypto) {
                Ok(()) => {
                    found = Some(i);
                    break;
                }
                // Same name, other key: not this one.
                Err(e) if e.kind() == ErrorKind::VerificationFailed => {}
                // An algorithm hsmkit does not verify, a malformed certificate: say so.
                Err(e) => return Err(e),
            }
        }
        match found {
            Some(i) => chain.push(rest.remove(i).clone()),
            None => break,
        }
    }
    if let Some(stray) = rest.first() {
        return Err(param(format!(
            "certificate '{}' is not on the chain of '{}' (each must have issued the one before it)",
            stray.subject(),
            leaf.subject()
        )));
    }
    Ok(chain)
}

/// Attributes of a certificate's key: it signs and verifies.
fn key_attributes(exportable: bool) -> KeyAttributes {
    let mut a = KeyAttributes::with_ops(&[KeyOp::Sign, KeyOp::Verify]);
    a.exportable = exportable;
    a
}

impl Store {
    fn cert_event<T>(&self, name: &str, version: Option<u32>, op: &str, r: &Result<T>) {
        self.ctx.emit_object("certificate", name, version, op, None, r);
    }

    fn read_cert_doc(&self, name: &str) -> Result<Option<CertDoc>> {
        self.meta.read_record(KIND, name)?.map(|v| CertDoc::from_json(self.ctx.crypto, name, &v)).transpose()
    }

    /// A certificate that exists and is not deleted.
    fn live_cert(&self, name: &str) -> Result<CertDoc> {
        validate_object_name(name, "certificate")?;
        let d = self.read_cert_doc(name)?.ok_or_else(|| not_found(name))?;
        if d.state.deleted.is_some() {
            return Err(Error::NotFound {
                what: format!("certificate '{name}' (it is deleted: recover or purge it)"),
            });
        }
        Ok(d)
    }

    fn modify_cert(
        &self,
        name: &str,
        edit: &mut dyn FnMut(Option<CertDoc>) -> Result<Option<CertDoc>>,
    ) -> Result<()> {
        let crypto = self.ctx.crypto;
        self.meta.modify_record(KIND, name, &mut |v| {
            let doc = v.map(|v| CertDoc::from_json(crypto, name, &v)).transpose()?;
            Ok(edit(doc)?.map(|d| d.to_json()))
        })
    }

    /// Creates a certificate called `name` under `policy` (self-signed: version 1 at once;
    /// `Unknown` issuer: a pending request), with a new key of the same name. On a
    /// certificate that exists, makes its next version under `policy`, which becomes its
    /// policy (Key Vault's create on an existing name).
    pub fn create_certificate(&self, name: &str, policy: &CertificatePolicy) -> Result<CertificateOperation> {
        let r = (|| {
            validate_object_name(name, "certificate")?;
            policy.validate()?;
            match self.read_cert_doc(name)? {
                None => {
                    let key = self.create_key(name, policy.key_spec, key_attributes(policy.exportable))?;
                    let doc = CertDoc {
                        name: name.to_owned(),
                        state: KeyState::default(),
                        policy: policy.clone(),
                        versions: Vec::new(),
                        pending: None,
                    };
                    let r =
                        self.certify(name, &key, policy).and_then(|op| self.record_operation(doc, None, op));
                    if r.is_err() {
                        // No certificate record names the key: take it back (under purge
                        // protection too: it was never in use).
                        let _ = self.discard_key_version(name, key.version());
                    }
                    r
                }
                Some(d) if d.state.deleted.is_some() => Err(Error::AlreadyExists {
                    name: format!("certificate/{name} (deleted: recover or purge it)"),
                }),
                Some(d) => self.next_version(d, policy),
            }
        })();
        let version = match &r {
            Ok(CertificateOperation::Completed(p)) => Some(p.version),
            Ok(CertificateOperation::Pending(_)) | Err(_) => None,
        };
        self.cert_event(name, version, "create", &r);
        r
    }

    /// Renews a certificate under its policy: a new version (self-signed) or a pending
    /// request (`Unknown` issuer), with the current key version or a new one as the
    /// policy's `reuse_key` says.
    pub fn renew_certificate(&self, name: &str) -> Result<CertificateOperation> {
        let r = (|| {
            let d = self.live_cert(name)?;
            let policy = d.policy.clone();
            self.next_version(d, &policy)
        })();
        let version = match &r {
            Ok(CertificateOperation::Completed(p)) => Some(p.version),
            Ok(CertificateOperation::Pending(_)) | Err(_) => None,
        };
        self.cert_event(name, version, "renew", &r);
        r
    }

    /// The next version of an existing certificate under `policy`.
    fn next_version(&self, d: CertDoc, policy: &CertificatePolicy) -> Result<CertificateOperation> {
        let name = d.name.clone();
        policy.validate()?;
        if d.pending.is_some() {
            return Err(Error::AlreadyExists {
                name: format!("certificate/{name} (a request is pending: merge or cancel it first)"),
            });
        }
        // Reuse: the key version the current certificate certifies (not whatever version
        // is newest); none yet (a first request was cancelled): the newest.
        let current = match d.versions.last() {
            Some(v) => self.get_key_version(&name, v.props.key_version)?,
            None => self.get_key(&name)?,
        };
        let (key, fresh) = if policy.reuse_key && current.spec() == policy.key_spec {
            (current, false)
        } else {
            (self.generate_key_version(&name, policy.key_spec, key_attributes(policy.exportable))?, true)
        };
        let expected = d.max_version();
        let r = self
            .certify(&name, &key, policy)
            .and_then(|op| self.record_operation(d, Some((expected, policy)), op));
        if r.is_err() && fresh {
            // Another writer went first, or the certificate step failed: the version made
            // for it is taken back, so the key's current version stays the certified one.
            let _ = self.discard_key_version(&name, key.version());
        }
        r
    }

    /// Makes the certificate (self-signed) or the request (`Unknown`) for `key`.
    fn certify(
        &self,
        name: &str,
        key: &Key,
        policy: &CertificatePolicy,
    ) -> Result<(CertificateOperation, Vec<u8>)> {
        let now = whole_seconds(self.ctx.now());
        let params = policy.params(now)?;
        match policy.issuer {
            CertificateIssuer::SelfSigned => {
                let cert = crate::x509::self_signed(key, &params)?;
                let props = properties(self.ctx.crypto, name, 0, key.version(), &cert, now);
                Ok((CertificateOperation::Completed(props), cert.to_der().to_vec()))
            }
            CertificateIssuer::Unknown => {
                let csr = crate::x509::create_csr(key, &params)?;
                let der = csr.to_der().to_vec();
                Ok((
                    CertificateOperation::Pending(PendingCertificate {
                        name: name.to_owned(),
                        key_version: key.version(),
                        csr,
                        created: now,
                    }),
                    der,
                ))
            }
        }
    }

    /// Writes what [`certify`](Self::certify) made into the record: a version numbered
    /// after the newest or the pending request. With `expect`, the record must still be
    /// at that version with no pending request (another writer in between is a conflict),
    /// and the policy is replaced.
    fn record_operation(
        &self,
        doc: CertDoc,
        expect: Option<(u32, &CertificatePolicy)>,
        op: (CertificateOperation, Vec<u8>),
    ) -> Result<CertificateOperation> {
        let name = doc.name.clone();
        let mut fresh = Some(doc);
        let (mut op, der) = op;
        let mut version_out = 0;
        self.modify_cert(&name, &mut |current| {
            let mut d = match (current, expect) {
                (None, None) => fresh.take().ok_or_else(|| not_found(&name))?,
                (Some(_), None) => return Err(Error::AlreadyExists { name: format!("certificate/{name}") }),
                (None, Some(_)) => return Err(not_found(&name)),
                (Some(d), Some((max, policy))) => {
                    if d.state.deleted.is_some() || d.pending.is_some() || d.max_version() != max {
                        return Err(Error::AlreadyExists {
                            name: format!("certificate/{name} (changed by another writer: try again)"),
                        });
                    }
                    let mut d = d;
                    d.policy = policy.clone();
                    d
                }
            };
            match &op {
                CertificateOperation::Completed(p) => {
                    let version = d.max_version().checked_add(1).ok_or_else(|| param("too many versions"))?;
                    let mut props = p.clone();
                    props.version = version;
                    version_out = version;
                    d.versions.push(Version { props, chain: vec![der.clone()] });
                }
                CertificateOperation::Pending(p) => {
                    d.pending =
                        Some(Pending { key_version: p.key_version, csr: der.clone(), created: p.created });
                }
            }
            Ok(Some(d))
        })?;
        // The number the record gave.
        if let CertificateOperation::Completed(p) = &mut op {
            p.version = version_out;
        }
        Ok(op)
    }

    /// The pending request of a certificate, if any.
    pub fn pending_certificate(&self, name: &str) -> Result<PendingCertificate> {
        self.live_cert(name)?
            .pending()?
            .ok_or_else(|| Error::NotFound { what: format!("pending operation of certificate '{name}'") })
    }

    /// Cancels a pending request. The key version made for it goes (a reused one that a
    /// version certifies stays); a certificate that never had a version goes with its key,
    /// as if never created.
    pub fn cancel_pending_certificate(&self, name: &str) -> Result<()> {
        let r = (|| {
            self.live_cert(name)?;
            let no_pending =
                || Error::NotFound { what: format!("pending operation of certificate '{name}'") };
            // Decided inside the edit, on the record as it is then: a merge that went first
            // leaves nothing to cancel, and its key version is kept.
            let mut unused_key_version = None;
            self.modify_cert(name, &mut |c| {
                let mut c = c.ok_or_else(|| not_found(name))?;
                if c.state.deleted.is_some() {
                    return Err(not_found(name));
                }
                let p = c.pending.take().ok_or_else(no_pending)?;
                let certified = c.versions.iter().any(|v| v.props.key_version == p.key_version);
                unused_key_version = (!certified).then_some(p.key_version);
                Ok(if c.versions.is_empty() { None } else { Some(c) })
            })?;
            // The key version made for the request: nothing certifies it, so it goes (with
            // the key, for a certificate that never had a version).
            match unused_key_version {
                Some(v) => self.discard_key_version(name, v),
                None => Ok(()),
            }
        })();
        self.cert_event(name, None, "cancel-pending", &r);
        r
    }

    /// Completes a pending request with the certificate the CA signed (the leaf first,
    /// then any issuers, in any order; the chain is kept leaf first, each certificate
    /// followed by its issuer). The leaf's public key must be the
    /// pending key version's ([`InvalidReason::KeyMismatch`] otherwise; nothing changes).
    pub fn merge_certificate(&self, name: &str, chain: &[Certificate]) -> Result<CertificateProperties> {
        let r = (|| {
            let d = self.live_cert(name)?;
            let pending = d.pending.as_ref().ok_or_else(|| Error::NotFound {
                what: format!("pending operation of certificate '{name}' (nothing to merge)"),
            })?;
            let leaf = chain.first().ok_or_else(|| param("merge needs at least one certificate"))?;
            let key = self.get_key_version(name, pending.key_version)?;
            if leaf.public_key()? != key.public_key()? {
                return Err(Error::invalid(
                    InvalidReason::KeyMismatch,
                    format!(
                        "the certificate's public key is not the key of the pending request of '{name}' (version {})",
                        pending.key_version
                    ),
                ));
            }
            let chain = build_chain(self.ctx.crypto, leaf, chain.get(1..).unwrap_or_default())?;
            let key_version = pending.key_version;
            let now = whole_seconds(self.ctx.now());
            let ders: Vec<Vec<u8>> = chain.iter().map(|c| c.to_der().to_vec()).collect();
            let mut out = None;
            self.modify_cert(name, &mut |c| {
                let mut c = c.ok_or_else(|| not_found(name))?;
                if c.state.deleted.is_some() || c.pending.as_ref().map(|p| p.key_version) != Some(key_version)
                {
                    return Err(Error::AlreadyExists {
                        name: format!("certificate/{name} (changed by another writer: try again)"),
                    });
                }
                let version = c.max_version().checked_add(1).ok_or_else(|| param("too many versions"))?;
                let props = properties(self.ctx.crypto, name, version, key_version, leaf, now);
                c.versions.push(Version { props: props.clone(), chain: ders.clone() });
                c.pending = None;
                out = Some(props);
                Ok(Some(c))
            })?;
            out.ok_or_else(|| not_found(name))
        })();
        self.cert_event(name, r.as_ref().ok().map(|p| p.version), "merge", &r);
        r
    }

    /// Imports a certificate (the leaf first, then any issuers) and its private key: the
    /// key goes into the backend as a new key called `name` (or a new version of it, if
    /// the certificate exists), and the certificate becomes the newest version. The policy
    /// is taken from the leaf (issuer `Self` if it is self-issued, else `Unknown`).
    pub fn import_certificate(
        &self,
        name: &str,
        chain: &[Certificate],
        key: KeyMaterial,
        exportable: bool,
    ) -> Result<CertificateProperties> {
        let r = self.import_certificate_inner(name, chain, key, exportable);
        self.cert_event(name, r.as_ref().ok().map(|p| p.version), "import", &r);
        r
    }

    fn import_certificate_inner(
        &self,
        name: &str,
        chain: &[Certificate],
        key: KeyMaterial,
        exportable: bool,
    ) -> Result<CertificateProperties> {
        validate_object_name(name, "certificate")?;
        let leaf = chain.first().ok_or_else(|| param("no certificate to import"))?;
        match &key {
            KeyMaterial::RsaPrivate(_) | KeyMaterial::EcPrivate(_) | KeyMaterial::Ed25519Private(_) => {}
            KeyMaterial::Public(_) | KeyMaterial::Aes(_) | KeyMaterial::Hmac(_) => {
                return Err(Error::invalid(
                    InvalidReason::KeyMismatch,
                    "importing a certificate needs its private key (RSA, EC or Ed25519)",
                ));
            }
        }
        // The key is checked against the certificate before it goes into the backend.
        let leaf_public = leaf.public_key()?;
        let known = match self.ctx.crypto.public_key_of(&key) {
            Ok(p) => Some(p),
            Err(e) if e.kind() == ErrorKind::Unsupported => material_public(&key)?,
            Err(e) => return Err(e),
        };
        if known.as_ref().is_some_and(|k| *k != leaf_public) {
            return Err(key_mismatch());
        }
        let rest = chain.get(1..).unwrap_or_default();
        let chain = build_chain(self.ctx.crypto, leaf, rest)?;
        let spec = key.spec()?;
        let (not_before, not_after) = leaf.validity();
        let mut policy = CertificatePolicy::new(leaf.subject(), spec);
        policy.subject_alt_names = leaf.subject_alt_names()?;
        policy.key_usage = leaf.key_usage()?.unwrap_or_default();
        policy.ca = leaf.basic_constraints()?.0;
        policy.exportable = exportable;
        policy.issuer = if leaf.subject() == leaf.issuer() {
            CertificateIssuer::SelfSigned
        } else {
            CertificateIssuer::Unknown
        };
        policy.validity_months = months_between(not_before, not_after).clamp(1, MAX_VALIDITY_MONTHS);
        let existing = self.read_cert_doc(name)?;
        let now = whole_seconds(self.ctx.now());
        let ders: Vec<Vec<u8>> = chain.iter().map(|c| c.to_der().to_vec()).collect();
        let (k, max) = match existing {
            None => (self.import_key(name, key, key_attributes(exportable))?, None),
            Some(d) if d.state.deleted.is_some() => {
                return Err(Error::AlreadyExists {
                    name: format!("certificate/{name} (deleted: recover or purge it)"),
                });
            }
            Some(d) => {
                let max = d.max_version();
                (self.import_key_version_of_any(name, key, key_attributes(exportable))?, Some(max))
            }
        };
        let mut out = None;
        let r = (|| {
            // Where the encoding had no public part and the provider could not derive it.
            if k.public_key()? != leaf_public {
                return Err(key_mismatch());
            }
            self.modify_cert(name, &mut |c| {
                let mut c = match (c, max) {
                    (None, None) => CertDoc {
                        name: name.to_owned(),
                        state: KeyState::default(),
                        policy: policy.clone(),
                        versions: Vec::new(),
                        pending: None,
                    },
                    (Some(c), Some(max)) if c.state.deleted.is_none() && c.max_version() == max => {
                        let mut c = c;
                        c.policy.exportable = exportable;
                        c
                    }
                    (Some(_), _) | (None, Some(_)) => {
                        return Err(Error::AlreadyExists {
                            name: format!("certificate/{name} (changed by another writer: try again)"),
                        });
                    }
                };
                let version = c.max_version().checked_add(1).ok_or_else(|| param("too many versions"))?;
                let props = properties(self.ctx.crypto, name, version, k.version(), leaf, now);
                c.versions.push(Version { props: props.clone(), chain: ders.clone() });
                out = Some(props);
                Ok(Some(c))
            })?;
            out.take().ok_or_else(|| not_found(name))
        })();
        if r.is_err() {
            // Nothing names the imported version: take it back.
            let _ = self.discard_key_version(name, k.version());
        }
        r
    }

    /// Imports a PKCS#12 (`.pfx`/`.p12`) file: its private key and certificates (the one
    /// whose public key is the key's first, the others after it). A wrong password is
    /// [`Error::Authentication`]; legacy encryption (3DES, RC2) is [`Error::Unsupported`].
    pub fn import_pkcs12(
        &self,
        name: &str,
        pfx: &[u8],
        password: &str,
        exportable: bool,
    ) -> Result<CertificateProperties> {
        let r = (|| {
            let contents = crate::pkcs12::decode(self.ctx.crypto, pfx, password)?;
            let key_der =
                contents.key.as_ref().ok_or_else(|| param("the PKCS#12 file holds no private key"))?;
            let key = KeyMaterial::from_der(key_der)?;
            let certs =
                contents.certificates.iter().map(|d| Certificate::from_der(d)).collect::<Result<Vec<_>>>()?;
            let chain = order_chain(&key_public(&certs, &key)?, certs);
            Ok((key, chain))
        })();
        match r {
            Ok((key, chain)) => self.import_certificate(name, &chain, key, exportable),
            Err(e) => {
                let r = Err(e);
                self.cert_event(name, None, "import", &r);
                r
            }
        }
    }

    /// Imports a PEM file holding the certificate (and any issuers) and its private key
    /// (PKCS#8 `PRIVATE KEY`, or the PKCS#1/SEC1 forms), in any order.
    pub fn import_certificate_pem(
        &self,
        name: &str,
        pem: &str,
        exportable: bool,
    ) -> Result<CertificateProperties> {
        let r = (|| {
            let certs = Certificate::from_pem_chain(pem)?;
            let key_pem = private_key_block(pem).ok_or_else(|| param("the PEM holds no private key"))?;
            let key = KeyMaterial::from_pem(key_pem)?;
            let chain = order_chain(&key_public(&certs, &key)?, certs);
            Ok((key, chain))
        })();
        match r {
            Ok((key, chain)) => self.import_certificate(name, &chain, key, exportable),
            Err(e) => {
                let r = Err(e);
                self.cert_event(name, None, "import", &r);
                r
            }
        }
    }

    /// The current version of a certificate, with its chain.
    pub fn get_certificate(&self, name: &str) -> Result<CertificateBundle> {
        let r = (|| {
            let d = self.live_cert(name)?;
            let v = d.versions.last().ok_or_else(|| Error::NotFound {
                what: format!("certificate '{name}' has no version yet (a request is pending: merge it)"),
            })?;
            d.bundle(v)
        })();
        self.cert_event(name, r.as_ref().ok().map(|b| b.properties.version), "get", &r);
        r
    }

    /// One version of a certificate, with its chain.
    pub fn get_certificate_version(&self, name: &str, version: u32) -> Result<CertificateBundle> {
        let r = (|| {
            let d = self.live_cert(name)?;
            let v = d.versions.iter().find(|v| v.props.version == version).ok_or_else(|| {
                Error::NotFound { what: format!("version {version} of certificate '{name}'") }
            })?;
            d.bundle(v)
        })();
        self.cert_event(name, Some(version), "get", &r);
        r
    }

    /// The private key of a certificate's current version, as PKCS#8 PEM: only if its key
    /// is exportable ([`crate::Denied::NotExportable`] otherwise).
    pub fn export_certificate_key(
        &self,
        name: &str,
        version: Option<u32>,
    ) -> Result<zeroize::Zeroizing<String>> {
        let r = (|| {
            let b = match version {
                Some(v) => self.get_certificate_version(name, v)?,
                None => self.get_certificate(name)?,
            };
            let key = self.get_key_version(name, b.properties.key_version)?;
            key.export()?.to_pkcs8_pem()
        })();
        self.cert_event(name, version, "export-key", &r);
        r
    }

    /// A certificate's state, policy, versions and pending request, deleted or not.
    pub fn describe_certificate(&self, name: &str) -> Result<CertificateDescription> {
        validate_object_name(name, "certificate")?;
        self.read_cert_doc(name)?.ok_or_else(|| not_found(name))?.describe()
    }

    /// A certificate's policy.
    pub fn certificate_policy(&self, name: &str) -> Result<CertificatePolicy> {
        Ok(self.live_cert(name)?.policy)
    }

    /// Replaces a certificate's policy (for the next version).
    pub fn set_certificate_policy(&self, name: &str, policy: &CertificatePolicy) -> Result<()> {
        let r = (|| {
            policy.validate()?;
            self.live_cert(name)?;
            self.modify_cert(name, &mut |d| {
                let mut d = d.ok_or_else(|| not_found(name))?;
                if d.state.deleted.is_some() {
                    return Err(not_found(name));
                }
                d.policy = policy.clone();
                Ok(Some(d))
            })
        })();
        self.cert_event(name, None, "set-policy", &r);
        r
    }

    fn cert_docs(&self) -> Result<Vec<CertDoc>> {
        let mut docs = self
            .meta
            .list_records(KIND)?
            .into_iter()
            .filter(|(name, _)| validate_object_name(name, "certificate").is_ok())
            .map(|(name, v)| CertDoc::from_json(self.ctx.crypto, &name, &v))
            .collect::<Result<Vec<_>>>()?;
        docs.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(docs)
    }

    /// Every certificate that is not deleted, sorted by name.
    pub fn list_certificates(&self) -> Result<Vec<CertificateDescription>> {
        self.cert_docs()?.into_iter().filter(|d| d.state.deleted.is_none()).map(|d| d.describe()).collect()
    }

    /// Every version of a certificate, oldest first.
    pub fn list_certificate_versions(&self, name: &str) -> Result<Vec<CertificateProperties>> {
        Ok(self.live_cert(name)?.versions.into_iter().map(|v| v.props).collect())
    }

    /// The certificates due for renewal now, sorted by name: each whose current version
    /// its policy's lifetime action says is due, or that has expired.
    pub fn certificates_due(&self) -> Result<Vec<CertificateDue>> {
        let now = self.ctx.now();
        let mut out = Vec::new();
        for d in self.cert_docs()? {
            if d.state.deleted.is_some() || d.pending.is_some() {
                continue;
            }
            let Some(v) = d.versions.last() else { continue };
            let p = &v.props;
            let reason = match d.policy.lifetime_action {
                Some(a) if now >= a.due_at(p.not_before, p.expires) => Some(format!(
                    "{a}: due since {}",
                    crate::report::rfc3339(a.due_at(p.not_before, p.expires))
                )),
                Some(_) | None if now >= p.expires => {
                    Some(format!("expired at {}", crate::report::rfc3339(p.expires)))
                }
                Some(_) | None => None,
            };
            if let Some(reason) = reason {
                out.push(CertificateDue {
                    name: d.name.clone(),
                    version: p.version,
                    expires: p.expires,
                    reason,
                    issuer: d.policy.issuer,
                });
            }
        }
        Ok(out)
    }

    /// Renews every self-signed certificate that is due ([`certificates_due`](Self::certificates_due))
    /// and reports the others (`Unknown` issuer: a CA must sign; `result` is `Ok(None)`).
    pub fn renew_due_certificates(&self) -> Result<Vec<CertificateRenewal>> {
        Ok(self
            .certificates_due()?
            .into_iter()
            .map(|due| {
                let result = match due.issuer {
                    CertificateIssuer::SelfSigned => self.renew_certificate(&due.name).map(Some),
                    CertificateIssuer::Unknown => Ok(None),
                };
                CertificateRenewal { due, result }
            })
            .collect())
    }

    /// Soft-deletes a certificate and its key: both are kept, unusable, for the store's
    /// retention period, then recovered or purged together.
    pub fn delete_certificate(&self, name: &str) -> Result<CertificateDescription> {
        let r = (|| {
            self.live_cert(name)?;
            let retention = self.meta.settings()?.retention;
            let now = whole_seconds(self.ctx.now());
            let scheduled_purge = now.checked_add(retention).ok_or_else(|| param("retention"))?;
            // The key first: a certificate deleted while its key stays usable would be a
            // half-done delete; the reverse is undone below.
            let key_deleted = match self.delete_key_of_any(name) {
                Ok(_) => true,
                Err(e) if e.kind() == ErrorKind::NotFound => false,
                Err(e) => return Err(e),
            };
            let mut out = None;
            let r = self.modify_cert(name, &mut |d| {
                let mut d = d.ok_or_else(|| not_found(name))?;
                if d.state.deleted.is_some() {
                    return Err(Error::NotFound { what: format!("certificate '{name}' (already deleted)") });
                }
                d.state.deleted = Some(Deletion { deleted_on: now, scheduled_purge });
                out = Some(d.describe());
                Ok(Some(d))
            });
            if let Err(e) = r {
                if key_deleted {
                    let _ = self.recover_deleted_key_of_any(name);
                }
                return Err(e);
            }
            out.ok_or_else(|| not_found(name))?
        })();
        self.cert_event(name, None, "delete", &r);
        r
    }

    /// A deleted certificate's description.
    pub fn get_deleted_certificate(&self, name: &str) -> Result<CertificateDescription> {
        validate_object_name(name, "certificate")?;
        let d = self.read_cert_doc(name)?.ok_or_else(|| deleted_not_found(name))?;
        if d.state.deleted.is_none() {
            return Err(deleted_not_found(name));
        }
        d.describe()
    }

    /// Every deleted certificate, sorted by name.
    pub fn list_deleted_certificates(&self) -> Result<Vec<CertificateDescription>> {
        self.cert_docs()?.into_iter().filter(|d| d.state.deleted.is_some()).map(|d| d.describe()).collect()
    }

    /// Recovers a deleted certificate and its key.
    pub fn recover_deleted_certificate(&self, name: &str) -> Result<CertificateDescription> {
        let r = (|| {
            self.get_deleted_certificate(name)?;
            match self.recover_deleted_key_of_any(name) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            let mut out = None;
            self.modify_cert(name, &mut |d| {
                let mut d = d.ok_or_else(|| deleted_not_found(name))?;
                if d.state.deleted.take().is_none() {
                    return Err(deleted_not_found(name));
                }
                out = Some(d.describe());
                Ok(Some(d))
            })?;
            out.ok_or_else(|| not_found(name))?
        })();
        self.cert_event(name, None, "recover", &r);
        r
    }

    /// Removes a deleted certificate and its key for good. Refused under purge protection
    /// until the retention period has ended.
    pub fn purge_deleted_certificate(&self, name: &str) -> Result<()> {
        let r = (|| {
            self.get_deleted_certificate(name)?;
            // The key's purge applies purge protection; the record goes only after it.
            match self.purge_deleted_key_of_any(name) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            self.modify_cert(name, &mut |d| {
                let d = d.ok_or_else(|| deleted_not_found(name))?;
                if d.state.deleted.is_none() {
                    return Err(deleted_not_found(name));
                }
                Ok(None)
            })
        })();
        self.cert_event(name, None, "purge", &r);
        r
    }
}

/// The public key of `key`, checked against some certificate of `certs`.
/// The public key of private key material, where the encoding carries it (RSA always;
/// EC and Ed25519 when the file has the public part, as OpenSSL and pyca write them).
fn material_public(key: &KeyMaterial) -> Result<Option<crate::PublicKey>> {
    use crate::{EcPublicKey, PublicKey};
    Ok(match key {
        KeyMaterial::RsaPrivate(k) => Some(PublicKey::Rsa(k.public()?)),
        KeyMaterial::EcPrivate(k) => {
            k.public_point.as_deref().map(|p| EcPublicKey::new(k.curve, p)).transpose()?.map(PublicKey::Ec)
        }
        KeyMaterial::Ed25519Private(k) => k.public.clone().map(PublicKey::Ed25519),
        KeyMaterial::Public(p) => Some(p.clone()),
        KeyMaterial::Aes(_) | KeyMaterial::Hmac(_) => None,
    })
}

fn key_mismatch() -> Error {
    Error::invalid(
        InvalidReason::KeyMismatch,
        "the private key is not the certificate's (their public keys differ)",
    )
}

/// The key's public key if the encoding has it, else the first certificate's (the
/// import then checks the imported key against it).
fn key_public(certs: &[Certificate], key: &KeyMaterial) -> Result<crate::PublicKey> {
    let first = certs.first().ok_or_else(|| param("no certificate found"))?;
    match material_public(key)? {
        Some(p) => Ok(p),
        None => first.public_key(),
    }
}

/// The certificate of `public` first, then the others in their order.
fn order_chain(public: &crate::PublicKey, certs: Vec<Certificate>) -> Vec<Certificate> {
    let (mut leaf, rest): (Vec<_>, Vec<_>) =
        certs.into_iter().partition(|c| c.public_key().is_ok_and(|k| &k == public));
    leaf.extend(rest);
    leaf
}

/// The first PEM private key block in `pem`.
fn private_key_block(pem: &str) -> Option<&str> {
    let mut rest = pem;
    while let Some(start) = rest.find("-----BEGIN ") {
        let tail = rest.get(start..)?;
        let line_end = tail.find('\n').unwrap_or(tail.len());
        let header = tail.get(..line_end)?.trim_end();
        let label = header.strip_prefix("-----BEGIN ")?.strip_suffix("-----")?;
        let end = format!("-----END {label}-----");
        let stop = tail.find(&end)?;
        if label.ends_with("PRIVATE KEY") {
            return tail.get(..stop + end.len());
        }
        rest = tail.get(stop + end.len()..)?;
    }
    None
}

/// Whole calendar months from `a` to `b` (at least the months `add_months` would need).
fn months_between(a: SystemTime, b: SystemTime) -> u32 {
    let mut n = 0;
    while n < MAX_VALIDITY_MONTHS && add_months(a, n + 1).is_ok_and(|t| t <= b) {
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]
    use super::*;

    fn at(y: u16, m: u8, d: u8) -> SystemTime {
        UNIX_EPOCH + der::DateTime::new(y, m, d, 0, 0, 0).expect("a date").unix_duration()
    }

    #[test]
    fn calendar_months() {
        assert_eq!(add_months(at(2024, 1, 29), 1).expect("ok"), at(2024, 2, 29));
        assert_eq!(add_months(at(2024, 1, 31), 1).expect("ok"), at(2024, 2, 29));
        assert_eq!(add_months(at(2023, 1, 31), 1).expect("ok"), at(2023, 2, 28));
        assert_eq!(add_months(at(2026, 12, 8), 12).expect("ok"), at(2027, 12, 8));
        assert_eq!(add_months(at(2026, 11, 30), 3).expect("ok"), at(2027, 2, 28));
        assert_eq!(months_between(at(2026, 1, 1), at(2027, 1, 1)), 12);
        assert_eq!(at(1970, 1, 1), UNIX_EPOCH);
        // 2000-03-01 is day 11017.
        assert_eq!(at(2000, 3, 1), UNIX_EPOCH + days(11_017));
    }

    #[test]
    fn lifetime_actions() {
        let (a, b) = (at(2026, 1, 1), at(2026, 1, 11));
        assert_eq!(LifetimeAction::AtPercentage(50).due_at(a, b), at(2026, 1, 6));
        assert_eq!(LifetimeAction::DaysBeforeExpiry(3).due_at(a, b), at(2026, 1, 8));
        assert_eq!(LifetimeAction::DaysBeforeExpiry(30).due_at(a, b), a);
        assert!(LifetimeAction::AtPercentage(0).validate().is_err());
        assert!(LifetimeAction::AtPercentage(100).validate().is_err());
        assert!(LifetimeAction::DaysBeforeExpiry(0).validate().is_err());
    }

    #[test]
    fn policy_round_trips() {
        let mut p = CertificatePolicy::new("CN=x", KeySpec::RSA_2048);
        p.subject_alt_names =
            vec!["dns:x.example".parse().expect("san"), "ip:10.0.0.1".parse().expect("san")];
        p.key_usage = vec![KeyUsage::DigitalSignature];
        p.extended_key_usage = vec![ExtendedKeyUsage::ServerAuth];
        p.issuer = CertificateIssuer::Unknown;
        p.lifetime_action = Some(LifetimeAction::DaysBeforeExpiry(30));
        p.reuse_key = true;
        assert_eq!(CertificatePolicy::from_json("n", &p.to_json()).expect("parses"), p);
        p.lifetime_action = None;
        assert_eq!(CertificatePolicy::from_json("n", &p.to_json()).expect("parses"), p);
    }

    #[test]
    fn private_key_blocks() {
        let pem = "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n-----BEGIN EC PRIVATE KEY-----\nBB==\n-----END EC PRIVATE KEY-----\n";
        assert_eq!(
            private_key_block(pem),
            Some("-----BEGIN EC PRIVATE KEY-----\nBB==\n-----END EC PRIVATE KEY-----")
        );
        assert_eq!(private_key_block("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----"), None);
    }
}
