//! `hsmkit.CertificatePolicy` and what the store's certificate methods (in `store.rs`)
//! return: `CertificateProperties`, `CertificateBundle`, `PendingCertificate`,
//! `CertificateDescription`, `CertificateDue` and `CertificateRenewal`. Certificates are
//! public; the only secrets here are an imported private key and its password, which are
//! copied into wiped buffers and never shown.

use hsmkit::certificates::{
    CertificateBundle as CoreBundle, CertificateDescription as CoreDescription, CertificateDue as CoreDue,
    CertificateIssuer, CertificateOperation, CertificatePolicy as CorePolicy,
    CertificateProperties as CoreProperties, CertificateRenewal as CoreRenewal, LifetimeAction,
    MAX_VALIDITY_MONTHS, PendingCertificate as CorePending,
};
use hsmkit::x509::{Certificate, ExtendedKeyUsage, KeyUsage, SubjectAltName};
use hsmkit::{KeySpec, Zeroizing};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};
use zeroize::Zeroize;

use crate::convert::{bytes_arg, opt_datetime, to_datetime, type_name};
use crate::errors::{PyError, PyResult, invalid};

/// What the policy's renewal trigger is, from the two keyword arguments: Key Vault's
/// default (80 %) unless `days_before_expiry` is given; both None: no trigger.
fn lifetime_action(percentage: Option<u32>, days: Option<u32>) -> PyResult<Option<LifetimeAction>> {
    match (percentage, days) {
        // 80 is the default, so giving days alone must not count as giving both.
        (Some(p), Some(_)) if p != 80 => {
            Err(invalid("give lifetime_percentage or days_before_expiry, not both"))
        }
        (_, Some(0)) => Err(invalid("days_before_expiry: at least 1")),
        (_, Some(d)) => Ok(Some(LifetimeAction::DaysBeforeExpiry(d))),
        (Some(p), None) => match u8::try_from(p) {
            Ok(p) if (1..=99).contains(&p) => Ok(Some(LifetimeAction::AtPercentage(p))),
            _ => Err(invalid(format!("lifetime_percentage {p}: from 1 to 99"))),
        },
        (None, None) => Ok(None),
    }
}

/// How a certificate's versions are made: `Store.create_certificate` takes one,
/// `get_certificate_policy` returns one. Immutable; make a new one to change it.
#[pyclass(frozen, eq, module = "hsmkit", name = "CertificatePolicy")]
#[derive(PartialEq)]
pub(crate) struct CertificatePolicy {
    pub(crate) policy: CorePolicy,
}

#[pymethods]
impl CertificatePolicy {
    /// `key_type` is `"ec"` (P-256), `"rsa"` (2048), `"ed25519"` or a key spec
    /// (`"P-384"`, `"RSA-3072"`); `sans`, `key_usage` and `extended_key_usage` as
    /// `Key.create_csr` takes them; `issuer` `"Self"` (self-signed at once) or `"Unknown"`
    /// (a pending request for a CA to sign). Renewal is due at `lifetime_percentage` of
    /// the validity or `days_before_expiry` days before it ends (giving it replaces the
    /// default percentage); with both None, only once expired.
    #[new]
    #[pyo3(signature = (subject, key_type = "ec", *, sans = Vec::new(), key_usage = Vec::new(),
                        extended_key_usage = Vec::new(), exportable = false, reuse_key = false,
                        validity_months = 12, issuer = "Self", ca = false,
                        lifetime_percentage = Some(80), days_before_expiry = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        subject: String,
        key_type: &str,
        sans: Vec<String>,
        key_usage: Vec<String>,
        extended_key_usage: Vec<String>,
        exportable: bool,
        reuse_key: bool,
        validity_months: u32,
        issuer: &str,
        ca: bool,
        lifetime_percentage: Option<u32>,
        days_before_expiry: Option<u32>,
    ) -> PyResult<Self> {
        // `KeySpec` parses both the type names ("ec" is P-256) and full specs.
        let spec = key_type.parse::<KeySpec>()?;
        if !(1..=MAX_VALIDITY_MONTHS).contains(&validity_months) {
            return Err(invalid(format!(
                "validity_months {validity_months}: from 1 to {MAX_VALIDITY_MONTHS}"
            )));
        }
        let mut p = CorePolicy::new(subject, spec);
        p.subject_alt_names = sans.iter().map(|s| s.parse::<SubjectAltName>()).collect::<Result<_, _>>()?;
        p.key_usage = key_usage.iter().map(|s| s.parse::<KeyUsage>()).collect::<Result<_, _>>()?;
        p.extended_key_usage =
            extended_key_usage.iter().map(|s| s.parse::<ExtendedKeyUsage>()).collect::<Result<_, _>>()?;
        p.exportable = exportable;
        p.reuse_key = reuse_key;
        p.validity_months = validity_months;
        p.issuer = issuer.parse::<CertificateIssuer>()?;
        p.ca = ca;
        p.lifetime_action = lifetime_action(lifetime_percentage, days_before_expiry)?;
        Ok(CertificatePolicy { policy: p })
    }

    /// The subject, as given.
    #[getter]
    fn subject(&self) -> &str {
        &self.policy.subject
    }
    /// `"ec"`, `"rsa"` or `"ed25519"`, as `create_key` takes it.
    #[getter]
    fn key_type(&self) -> String {
        self.policy.key_spec.key_type().name().to_ascii_lowercase()
    }
    /// The key spec: `"EC-P-256"`, `"RSA-2048"`, `"Ed25519"` ...
    #[getter]
    fn key_spec(&self) -> String {
        self.policy.key_spec.to_string()
    }
    /// Subject alternative names: `"dns:H"`, `"ip:A"`, `"email:E"`, `"uri:U"`.
    #[getter]
    fn sans(&self) -> Vec<String> {
        self.policy.subject_alt_names.iter().map(ToString::to_string).collect()
    }
    /// Key usages (`"digitalSignature"` ...); empty: the default for the key type.
    #[getter]
    fn key_usage(&self) -> Vec<&'static str> {
        self.policy.key_usage.iter().map(|k| k.name()).collect()
    }
    /// Extended key usages (`"serverAuth"` ...).
    #[getter]
    fn extended_key_usage(&self) -> Vec<&'static str> {
        self.policy.extended_key_usage.iter().map(|k| k.name()).collect()
    }
    /// Whether the private key may be exported (`export_certificate_key`).
    #[getter]
    fn exportable(&self) -> bool {
        self.policy.exportable
    }
    /// Renewal keeps the key version (True) or makes a new one (False).
    #[getter]
    fn reuse_key(&self) -> bool {
        self.policy.reuse_key
    }
    /// Validity of each version, in calendar months.
    #[getter]
    fn validity_months(&self) -> u32 {
        self.policy.validity_months
    }
    /// `"Self"` or `"Unknown"`.
    #[getter]
    fn issuer(&self) -> &'static str {
        self.policy.issuer.name()
    }
    /// A CA certificate.
    #[getter]
    fn ca(&self) -> bool {
        self.policy.ca
    }
    /// Renewal is due at this share of the validity; None if another trigger (or none).
    #[getter]
    fn lifetime_percentage(&self) -> Option<u8> {
        match self.policy.lifetime_action {
            Some(LifetimeAction::AtPercentage(p)) => Some(p),
            Some(LifetimeAction::DaysBeforeExpiry(_)) | None => None,
        }
    }
    /// Renewal is due this many days before expiry; None if another trigger (or none).
    #[getter]
    fn days_before_expiry(&self) -> Option<u32> {
        match self.policy.lifetime_action {
            Some(LifetimeAction::DaysBeforeExpiry(d)) => Some(d),
            Some(LifetimeAction::AtPercentage(_)) | None => None,
        }
    }
    fn __repr__(&self) -> String {
        let p = &self.policy;
        let renew = p.lifetime_action.map_or_else(|| "renew when expired".to_owned(), |a| a.to_string());
        format!(
            "<CertificatePolicy {} {} issuer={} validity_months={} ({renew})>",
            quoted(&p.subject),
            p.key_spec,
            p.issuer,
            p.validity_months
        )
    }
}

/// A str as Python shows one in a repr.
fn quoted(s: &str) -> String {
    format!("'{}'", s.escape_debug())
}

/// One `#[pymethods]` block per class: the version getters shared by
/// `CertificateProperties` and `CertificateBundle`, then the class's own methods.
macro_rules! with_cert_getters {
    ($t:ty, $props:ident, { $($own:tt)* }) => {
        #[pymethods]
        impl $t {
            $($own)*

            /// The certificate's (and its key's) name.
            #[getter]
            fn name(&self) -> &str {
                &self.$props().name
            }
            /// The certificate version (1 for the first).
            #[getter]
            fn version(&self) -> u32 {
                self.$props().version
            }
            /// The version of the key of the same name that the certificate certifies.
            #[getter]
            fn key_version(&self) -> u32 {
                self.$props().key_version
            }
            /// The leaf's subject (RFC 4514).
            #[getter]
            fn subject(&self) -> &str {
                &self.$props().subject
            }
            /// The leaf's issuer (RFC 4514).
            #[getter]
            fn issuer(&self) -> &str {
                &self.$props().issuer
            }
            /// The leaf's serial number, in hex.
            #[getter]
            fn serial(&self) -> &str {
                &self.$props().serial
            }
            /// Start of validity (UTC).
            #[getter]
            fn not_before<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                to_datetime(py, self.$props().not_before)
            }
            /// End of validity (UTC).
            #[getter]
            fn expires<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                to_datetime(py, self.$props().expires)
            }
            /// SHA-256 of the leaf's DER, in hex.
            #[getter]
            fn thumbprint_sha256(&self) -> &str {
                &self.$props().thumbprint_sha256
            }
            /// When the version was added (UTC).
            #[getter]
            fn created<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                to_datetime(py, self.$props().created)
            }
        }
    };
}

fn props_repr(class: &str, p: &CoreProperties) -> String {
    format!(
        "<{class} {}/{} key_version={} subject={} expires={}>",
        p.name,
        p.version,
        p.key_version,
        quoted(&p.subject),
        hsmkit::report::rfc3339(p.expires)
    )
}

/// Metadata of one certificate version: what `create_certificate` (self-signed),
/// `merge_certificate`, `import_certificate` and `list_certificate_versions` return.
#[pyclass(frozen, eq, module = "hsmkit", name = "CertificateProperties")]
#[derive(PartialEq)]
pub(crate) struct CertificateProperties {
    pub(crate) props: CoreProperties,
}

impl CertificateProperties {
    fn props(&self) -> &CoreProperties {
        &self.props
    }
}

with_cert_getters!(CertificateProperties, props, {
    fn __repr__(&self) -> String {
        props_repr("CertificateProperties", &self.props)
    }
});

/// A certificate version with its certificates (the leaf first, then its issuers), as
/// `get_certificate` returns it. PEM and DER as `bytes`, what pyca/cryptography loads.
#[pyclass(frozen, module = "hsmkit", name = "CertificateBundle")]
pub(crate) struct CertificateBundle {
    pub(crate) bundle: CoreBundle,
}

impl CertificateBundle {
    fn props(&self) -> &CoreProperties {
        &self.bundle.properties
    }
}

with_cert_getters!(CertificateBundle, props, {
    /// The metadata alone.
    #[getter]
    fn properties(&self) -> CertificateProperties {
        CertificateProperties { props: self.bundle.properties.clone() }
    }

    /// PEM of the leaf, or with `chain=True` of the leaf and then its issuers.
    #[pyo3(signature = (chain = false))]
    fn pem<'py>(&self, py: Python<'py>, chain: bool) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, self.bundle.to_pem(chain)?.as_bytes()))
    }

    /// DER of the leaf.
    fn der<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, self.bundle.certificate()?.to_der()))
    }

    /// DER of every certificate: the leaf, then its issuers.
    fn chain_der<'py>(&self, py: Python<'py>) -> Vec<Bound<'py, PyBytes>> {
        self.bundle.chain.iter().map(|c| PyBytes::new(py, c.to_der())).collect()
    }

    fn __repr__(&self) -> String {
        props_repr("CertificateBundle", &self.bundle.properties)
    }
});

/// A version waiting for a CA (issuer `"Unknown"`): the request to take to it, and the
/// key version it was made for. `merge_certificate` completes it.
#[pyclass(frozen, module = "hsmkit", name = "PendingCertificate")]
pub(crate) struct PendingCertificate {
    pub(crate) pending: CorePending,
}

#[pymethods]
impl PendingCertificate {
    /// The certificate's name.
    #[getter]
    fn name(&self) -> &str {
        &self.pending.name
    }
    /// The key version the request is for.
    #[getter]
    fn key_version(&self) -> u32 {
        self.pending.key_version
    }
    /// The request (PKCS#10) as PEM bytes, as `Key.create_csr` returns one.
    #[getter]
    fn csr<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, self.pending.csr.to_pem()?.as_bytes()))
    }
    /// The request as DER.
    #[getter]
    fn csr_der<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.pending.csr.to_der())
    }
    /// When the operation began (UTC).
    #[getter]
    fn created<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_datetime(py, self.pending.created)
    }
    fn __repr__(&self) -> String {
        format!(
            "<PendingCertificate {} key_version={} subject={}>",
            self.pending.name,
            self.pending.key_version,
            quoted(&self.pending.csr.subject())
        )
    }
}

/// What creating or renewing made: a `CertificateProperties` (self-signed) or a
/// `PendingCertificate` (issuer `"Unknown"`).
pub(crate) fn operation<'py>(py: Python<'py>, op: CertificateOperation) -> PyResult<Bound<'py, PyAny>> {
    Ok(match op {
        CertificateOperation::Completed(props) => Bound::new(py, CertificateProperties { props })?.into_any(),
        CertificateOperation::Pending(pending) => Bound::new(py, PendingCertificate { pending })?.into_any(),
    })
}

/// A certificate: its policy, every version, any pending request and, while it is
/// soft-deleted, when it was deleted and when its retention ends. What
/// `describe_certificate`, `list_certificates`, `delete_certificate`,
/// `get_deleted_certificate`, `list_deleted_certificates` and
/// `recover_deleted_certificate` return.
#[pyclass(frozen, module = "hsmkit", name = "CertificateDescription")]
pub(crate) struct CertificateDescription {
    pub(crate) desc: CoreDescription,
}

#[pymethods]
impl CertificateDescription {
    /// The name.
    #[getter]
    fn name(&self) -> &str {
        &self.desc.name
    }
    /// The policy the next version is made under.
    #[getter]
    fn policy(&self) -> CertificatePolicy {
        CertificatePolicy { policy: self.desc.policy.clone() }
    }
    /// Every version, oldest first.
    #[getter]
    fn versions(&self) -> Vec<CertificateProperties> {
        self.desc.versions.iter().map(|p| CertificateProperties { props: p.clone() }).collect()
    }
    /// The current (newest) version; None while the first request is pending.
    #[getter]
    fn current(&self) -> Option<CertificateProperties> {
        self.desc.current().map(|p| CertificateProperties { props: p.clone() })
    }
    /// The request waiting for a CA, if any.
    #[getter]
    fn pending(&self) -> Option<PendingCertificate> {
        self.desc.pending.clone().map(|pending| PendingCertificate { pending })
    }
    /// When the certificate was deleted (UTC); None unless it is soft-deleted.
    #[getter]
    fn deleted_on<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        opt_datetime(py, self.desc.state.deleted.map(|d| d.deleted_on))
    }
    /// When the retention period ends; None unless it is soft-deleted.
    #[getter]
    fn scheduled_purge<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        opt_datetime(py, self.desc.state.deleted.map(|d| d.scheduled_purge))
    }
    fn __repr__(&self) -> String {
        let d = &self.desc;
        let pending = if d.pending.is_some() { " pending" } else { "" };
        let deleted = if d.state.deleted.is_some() { " deleted" } else { "" };
        format!("<CertificateDescription {} versions={}{pending}{deleted}>", d.name, d.versions.len())
    }
}

/// The fields of a due certificate, shared by `CertificateDue` and `CertificateRenewal`.
macro_rules! with_due_getters {
    ($t:ty, $due:ident, { $($own:tt)* }) => {
        #[pymethods]
        impl $t {
            $($own)*

            /// The certificate's name.
            #[getter]
            fn name(&self) -> &str {
                &self.$due.name
            }
            /// The current version, the one that is due.
            #[getter]
            fn version(&self) -> u32 {
                self.$due.version
            }
            /// When it expires (UTC).
            #[getter]
            fn expires<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                to_datetime(py, self.$due.expires)
            }
            /// Why it is due: `"renew at 80 % of the lifetime: due since ..."`, `"expired at ..."`.
            #[getter]
            fn reason(&self) -> &str {
                &self.$due.reason
            }
            /// Its policy's issuer, `"Self"` or `"Unknown"` (only `"Self"` renews unattended).
            #[getter]
            fn issuer(&self) -> &'static str {
                self.$due.issuer.name()
            }
        }
    };
}

/// A certificate due for renewal, as `certificates_due` returns it.
#[pyclass(frozen, module = "hsmkit", name = "CertificateDue")]
pub(crate) struct CertificateDue {
    pub(crate) due: CoreDue,
}

with_due_getters!(CertificateDue, due, {
    fn __repr__(&self) -> String {
        format!("<CertificateDue {}/{} {}>", self.due.name, self.due.version, quoted(&self.due.reason))
    }
});

/// What `renew_due_certificates` did for one due certificate: `result` is the new
/// version (issuer `"Self"`), or None for an `"Unknown"` issuer (reported, not renewed:
/// a CA must sign) or when the renewal failed, in which case `error` is the exception it
/// raised.
#[pyclass(frozen, module = "hsmkit", name = "CertificateRenewal")]
pub(crate) struct CertificateRenewal {
    due: CoreDue,
    result: Option<Py<PyAny>>,
    error: Option<Py<PyAny>>,
}

impl CertificateRenewal {
    /// The core's report as Python objects (the error as the exception it would raise).
    pub(crate) fn new(py: Python<'_>, r: CoreRenewal) -> PyResult<Self> {
        let (result, error) = match r.result {
            Ok(Some(op)) => (Some(operation(py, op)?.unbind()), None),
            Ok(None) => (None, None),
            Err(e) => (None, Some(PyErr::from(PyError::Core(e)).into_value(py).into_any())),
        };
        Ok(CertificateRenewal { due: r.due, result, error })
    }
}

with_due_getters!(CertificateRenewal, due, {
    /// The new version (`CertificateProperties`), a `PendingCertificate`, or None.
    #[getter]
    fn result(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.result.as_ref().map(|r| r.clone_ref(py))
    }
    /// The `HsmkitError` the renewal raised; None if it did not fail.
    #[getter]
    fn error(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.error.as_ref().map(|e| e.clone_ref(py))
    }
    fn __repr__(&self) -> String {
        let outcome = match (&self.result, &self.error) {
            (_, Some(_)) => "failed",
            (Some(_), None) => "renewed",
            (None, None) => "reported",
        };
        format!("<CertificateRenewal {}/{} {outcome}>", self.due.name, self.due.version)
    }
});

/// The certificates `merge_certificate` takes: PEM (one or more, leaf first) as `str` or
/// bytes, DER of one certificate, or a list of those.
pub(crate) fn chain_arg(obj: &Bound<'_, PyAny>) -> PyResult<Vec<Certificate>> {
    if !(obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>()) {
        return one_or_chain(obj);
    }
    let mut out = Vec::new();
    for item in obj.try_iter()? {
        out.extend(one_or_chain(&item?)?);
    }
    Ok(out)
}

fn one_or_chain(obj: &Bound<'_, PyAny>) -> PyResult<Vec<Certificate>> {
    let bytes = match obj.cast::<PyString>() {
        Ok(s) => s.to_cow()?.as_bytes().to_vec(),
        Err(_) => bytes_arg(obj, "chain")
            .map_err(|_| {
                invalid(format!(
                    "chain: expected PEM (str or bytes), DER bytes or a list of them, not {}",
                    type_name(obj)
                ))
            })?
            .to_vec(),
    };
    if is_pem(&bytes) {
        let text = String::from_utf8(bytes).map_err(|_| invalid("chain: PEM that is not UTF-8"))?;
        Ok(Certificate::from_pem_chain(&text)?)
    } else {
        Ok(vec![Certificate::from_der(&bytes)?])
    }
}

fn is_pem(data: &[u8]) -> bool {
    data.trim_ascii_start().starts_with(b"-----BEGIN")
}

/// What `import_certificate` was given: a PKCS#12 file and its password, or PEM with the
/// key. Both hold a private key: wiped on drop.
pub(crate) enum Import {
    Pkcs12 { pfx: Zeroizing<Vec<u8>>, password: Zeroizing<String> },
    Pem(Zeroizing<String>),
}

/// PKCS#12 when a password is given or the data is not PEM (a PKCS#12 file without a
/// password has the empty one), PEM otherwise.
pub(crate) fn import_arg(data: &Bound<'_, PyAny>, password: Option<&Bound<'_, PyAny>>) -> PyResult<Import> {
    let mut data = match data.cast::<PyString>() {
        // Python's str is not wiped; ours is.
        Ok(s) => Zeroizing::new(s.to_cow()?.as_bytes().to_vec()),
        Err(_) => bytes_arg(data, "data")?,
    };
    if password.is_none() && is_pem(&data) {
        return Ok(Import::Pem(Zeroizing::new(utf8(std::mem::take(&mut *data), "data")?)));
    }
    let password = match password {
        None => Zeroizing::new(String::new()),
        Some(p) => match p.cast::<PyString>() {
            Ok(s) => Zeroizing::new(s.to_cow()?.into_owned()),
            Err(_) => Zeroizing::new(utf8(std::mem::take(&mut *bytes_arg(p, "password")?), "password")?),
        },
    };
    Ok(Import::Pkcs12 { pfx: data, password })
}

/// Bytes as UTF-8 without a copy; on failure the bytes are wiped before they are freed.
fn utf8(bytes: Vec<u8>, what: &str) -> PyResult<String> {
    String::from_utf8(bytes).map_err(|e| {
        e.into_bytes().zeroize();
        invalid(format!("{what}: not UTF-8"))
    })
}
