//! Argument parsing for the JOSE (JWS, JWT, JWKS) and X.509 methods of `Key` and `Store`:
//! Python values to `hsmkit::jose` and `hsmkit::x509` options. The methods themselves
//! live in `key.rs` and `store.rs` (one `#[pymethods]` block per class).

use std::time::Duration;

use hsmkit::SignatureAlgorithm;
use hsmkit::jose::{JwsOptions, JwtSignOptions, JwtValidation};
use hsmkit::x509::{
    Certificate, CertificateParams, CertificateRequest, ExtendedKeyUsage, KeyUsage, SubjectAltName,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyInt, PyString};
use serde_json::{Map, Value};

use crate::convert::{bytes_arg, from_datetime, from_duration, py_to_json, type_name};
use crate::errors::{PyError, PyResult, invalid};

/// A `dict` (JWT claims, a JWS header) as a JSON object.
pub(crate) fn json_object(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Map<String, Value>> {
    if !obj.is_instance_of::<PyDict>() {
        return Err(invalid(format!("{what}: expected a dict, not {}", type_name(obj))));
    }
    // json.dumps raises for values JSON has no form for (bytes, sets, datetimes...).
    let text = py_to_json(obj)
        .map_err(|e| invalid(format!("{what}: not representable as JSON: {}", describe(e))))?;
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) | Value::Array(_)) => {
            Err(invalid(format!("{what}: expected a dict")))
        }
        Err(e) => Err(invalid(format!("{what}: not representable as JSON: {e}"))),
    }
}

/// The message of an error raised while converting an argument.
fn describe(e: PyError) -> String {
    match e {
        PyError::Core(e) => e.to_string(),
        PyError::Py(e) => e.to_string(),
    }
}

/// Algorithm names (`["RS256", "ES256"]`) as the core's algorithms.
fn algorithms(names: Option<Vec<String>>) -> PyResult<Option<Vec<SignatureAlgorithm>>> {
    names.map(|v| v.iter().map(|n| Ok(n.parse::<SignatureAlgorithm>()?)).collect()).transpose()
}

/// Seconds (`int` or `float`, positive and finite) or a `timedelta` / ISO 8601 duration.
fn seconds(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Duration> {
    if obj.is_instance_of::<PyFloat>() || obj.is_instance_of::<PyInt>() {
        let s: f64 = obj.extract()?;
        if !(s.is_finite() && s > 0.0) {
            return Err(invalid(format!("{what}: must be a positive number of seconds")));
        }
        return Duration::try_from_secs_f64(s).map_err(|_| invalid(format!("{what}: out of range")));
    }
    from_duration(obj, what)
}

/// Leeway in seconds: zero or more, finite.
fn leeway(s: f64) -> PyResult<Duration> {
    if !(s.is_finite() && s >= 0.0) {
        return Err(invalid("leeway: must be zero or a positive number of seconds"));
    }
    Duration::try_from_secs_f64(s).map_err(|_| invalid("leeway: out of range"))
}

/// The options of `Key.jwt_sign`.
pub(crate) fn jwt_sign_options(
    expires_in: Option<&Bound<'_, PyAny>>,
    not_before: Option<&Bound<'_, PyAny>>,
    issued_at: bool,
    header: Option<&Bound<'_, PyAny>>,
) -> PyResult<JwtSignOptions> {
    let mut o = JwtSignOptions::new().issued_at(issued_at);
    if let Some(d) = expires_in {
        o = o.expires_in(seconds(d, "expires_in")?);
    }
    if let Some(t) = not_before {
        o = o.not_before(from_datetime(t, "not_before")?);
    }
    if let Some(h) = header {
        o.header = json_object(h, "header")?;
    }
    Ok(o)
}

/// The validation of `Store.jwt_verify`.
pub(crate) fn jwt_validation(
    audience: Option<&Bound<'_, PyAny>>,
    issuer: Option<String>,
    leeway_secs: f64,
    algorithms_: Option<Vec<String>>,
    require_exp: bool,
) -> PyResult<JwtValidation> {
    let mut v = JwtValidation::new().require_exp(require_exp).leeway(leeway(leeway_secs)?);
    v.algorithms = algorithms(algorithms_)?;
    if let Some(iss) = issuer {
        v = v.issuer(&iss);
    }
    if let Some(aud) = audience {
        if let Ok(s) = aud.cast::<PyString>() {
            v = v.audience(&s.to_cow()?);
        } else {
            let list: Vec<String> = aud.extract().map_err(|_| {
                invalid(format!("audience: expected a str or a list of str, not {}", type_name(aud)))
            })?;
            for a in &list {
                v = v.audience(a);
            }
        }
    }
    Ok(v)
}

/// The options of `Store.jws_verify`.
pub(crate) fn jws_options(algorithms_: Option<Vec<String>>) -> PyResult<JwsOptions> {
    let mut o = JwsOptions::new();
    o.algorithms = algorithms(algorithms_)?;
    Ok(o)
}

/// Days of validity as a duration (at least one day).
fn validity(days: u32) -> PyResult<Duration> {
    if days == 0 {
        return Err(invalid("validity_days: must be at least 1"));
    }
    Ok(Duration::from_secs(u64::from(days).saturating_mul(24 * 3600)))
}

/// The parameters of `Key.create_csr` and `Key.self_signed_certificate`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn certificate_params(
    subject: &str,
    sans: &[String],
    key_usage: &[String],
    extended_key_usage: &[String],
    ca: bool,
    path_len: Option<u8>,
    validity_days: u32,
    signature_algorithm: Option<&str>,
) -> PyResult<CertificateParams> {
    let mut p = CertificateParams::new(subject);
    p.subject_alt_names = sans.iter().map(|s| s.parse::<SubjectAltName>()).collect::<Result<_, _>>()?;
    p.key_usage = key_usage.iter().map(|s| s.parse::<KeyUsage>()).collect::<Result<_, _>>()?;
    p.extended_key_usage =
        extended_key_usage.iter().map(|s| s.parse::<ExtendedKeyUsage>()).collect::<Result<_, _>>()?;
    p.ca = ca;
    p.path_len = path_len;
    p.validity = validity(validity_days)?;
    p.signature_algorithm = signature_algorithm.map(str::parse::<SignatureAlgorithm>).transpose()?;
    Ok(p)
}

/// The parameters of `Key.issue_certificate`.
pub(crate) fn issue_params(
    ca: bool,
    path_len: Option<u8>,
    validity_days: u32,
    signature_algorithm: Option<&str>,
) -> PyResult<hsmkit::x509::IssueParams> {
    let mut p = hsmkit::x509::IssueParams::default();
    p.ca = ca;
    p.path_len = path_len;
    p.validity = validity(validity_days)?;
    p.signature_algorithm = signature_algorithm.map(str::parse::<SignatureAlgorithm>).transpose()?;
    Ok(p)
}

/// PEM text (starts with `-----BEGIN`) or DER, from a bytes-like or `str` argument.
enum Encoded {
    Pem(String),
    Der(Vec<u8>),
}

fn encoded(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Encoded> {
    let bytes = match obj.cast::<PyString>() {
        Ok(s) => s.to_cow()?.as_bytes().to_vec(),
        Err(_) => bytes_arg(obj, what)?.to_vec(),
    };
    if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
        let text = String::from_utf8(bytes).map_err(|_| invalid(format!("{what}: PEM that is not UTF-8")))?;
        Ok(Encoded::Pem(text))
    } else {
        Ok(Encoded::Der(bytes))
    }
}

/// A certificate from PEM or DER.
pub(crate) fn certificate_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Certificate> {
    Ok(match encoded(obj, what)? {
        Encoded::Pem(p) => Certificate::from_pem(&p)?,
        Encoded::Der(d) => Certificate::from_der(&d)?,
    })
}

/// A certificate request from PEM or DER.
pub(crate) fn csr_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<CertificateRequest> {
    Ok(match encoded(obj, what)? {
        Encoded::Pem(p) => CertificateRequest::from_pem(&p)?,
        Encoded::Der(d) => CertificateRequest::from_der(&d)?,
    })
}
