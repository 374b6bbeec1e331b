//! Python values to hsmkit's and back: bytes-like inputs, datetimes, durations, ops, tags, JSON.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hsmkit::envelope::EncryptionContext;
use hsmkit::{KeyOps, Zeroizing, parse_iso_duration};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PySlice, PyString};

use crate::errors::{PyResult, invalid};

/// A bytes-like argument for a call that runs without the GIL: a `bytes` object is
/// immutable, so it is read in place (no copy, nothing held while the GIL is released);
/// any other buffer is copied by [`bytes_arg`], as a mutable one could change meanwhile.
pub(crate) enum DataArg<'py> {
    Borrowed(&'py [u8]),
    Copied(Zeroizing<Vec<u8>>),
}

impl<'py> DataArg<'py> {
    pub(crate) fn new(obj: &'py Bound<'py, PyAny>, what: &str) -> PyResult<Self> {
        match obj.cast::<PyBytes>() {
            Ok(b) => Ok(DataArg::Borrowed(b.as_bytes())),
            Err(_) => bytes_arg(obj, what).map(DataArg::Copied),
        }
    }
}

impl std::ops::Deref for DataArg<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            DataArg::Borrowed(b) => b,
            DataArg::Copied(v) => v,
        }
    }
}

/// A copy of any bytes-like argument (bytes, bytearray, memoryview, array ...), taken
/// while the GIL is held so that the caller may mutate its buffer once the GIL is
/// released. Zeroised on drop: it may be a plaintext or a key.
///
/// No other copy is left behind: bytes and bytearray are copied straight from their
/// buffer; any other buffer goes through a scratch bytearray that is wiped before it is
/// freed (a `memoryview.tobytes()` would leave an immutable, unwipeable copy in freed
/// memory). Buffers must be C-contiguous, as pyca/cryptography requires too.
pub(crate) fn bytes_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Zeroizing<Vec<u8>>> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Zeroizing::new(b.as_bytes().to_vec()));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        // Copied under the GIL with no Python code running: the buffer cannot change.
        return Ok(Zeroizing::new(b.to_vec()));
    }
    if obj.is_instance_of::<PyString>() {
        return Err(invalid(format!("{what}: expected a bytes-like object, not str (encode it first)")));
    }
    let py = obj.py();
    // memoryview() takes any object with the buffer protocol and refuses the rest (an int
    // would make bytes(n) zeros), and works under the stable ABI on CPython 3.9 (where
    // pyo3's PyBuffer is not available).
    let memoryview = py.import("builtins")?.getattr("memoryview")?;
    let view = memoryview
        .call1((obj,))
        .map_err(|_| invalid(format!("{what}: expected a bytes-like object, not {}", type_name(obj))))?;
    // The same bytes as one flat run of unsigned bytes (any item format, any shape).
    let flat = match view.call_method1("cast", ("B",)) {
        Ok(flat) => flat,
        Err(_) => {
            view.call_method0("release")?;
            return Err(invalid(format!("{what}: expected a C-contiguous buffer")));
        }
    };
    let n = flat.len()?;
    let scratch = PyByteArray::new_with(py, n, |_| Ok(()))?; // zero-filled
    let into = memoryview.call1((&scratch,))?;
    let all = PySlice::full(py);
    let copied = into.set_item(&all, &flat);
    flat.call_method0("release")?;
    view.call_method0("release")?;
    let out = copied.map(|()| Zeroizing::new(scratch.to_vec()));
    // Wiped in place (a memoryview cannot resize what it views), copied or not.
    into.set_item(&all, PyBytes::new(py, &vec![0u8; n]))?;
    into.call_method0("release")?;
    Ok(out?)
}

pub(crate) fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
}

/// An aware `datetime` in UTC.
pub(crate) fn to_datetime<'py>(py: Python<'py>, t: SystemTime) -> PyResult<Bound<'py, PyAny>> {
    let dt = py.import("datetime")?;
    let utc = dt.getattr("timezone")?.getattr("utc")?;
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    };
    Ok(dt.getattr("datetime")?.call_method1("fromtimestamp", (secs, utc))?)
}

pub(crate) fn opt_datetime<'py>(
    py: Python<'py>,
    t: Option<SystemTime>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    t.map(|t| to_datetime(py, t)).transpose()
}

/// A timezone-aware `datetime` (a naive one would silently mean local time).
pub(crate) fn from_datetime(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<SystemTime> {
    let dt = obj.py().import("datetime")?.getattr("datetime")?;
    if !obj.is_instance(&dt)? {
        return Err(invalid(format!("{what}: expected a datetime, not {}", type_name(obj))));
    }
    if obj.call_method0("utcoffset")?.is_none() {
        return Err(invalid(format!(
            "{what}: the datetime has no time zone (use datetime.now(timezone.utc) or .replace(tzinfo=...))"
        )));
    }
    let secs: f64 = obj.call_method0("timestamp")?.extract()?;
    let d = Duration::try_from_secs_f64(secs.abs()).map_err(|_| invalid(format!("{what}: out of range")))?;
    let t = if secs >= 0.0 { UNIX_EPOCH.checked_add(d) } else { UNIX_EPOCH.checked_sub(d) };
    t.ok_or_else(|| invalid(format!("{what}: out of range")))
}

/// A `timedelta`, or an ISO 8601 duration string ("P90D"); positive.
pub(crate) fn from_duration(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Duration> {
    duration(obj, what, false)
}

/// A `timedelta` or an ISO 8601 duration that may be zero: a look-ahead window, where
/// zero means "now".
pub(crate) fn from_window(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Duration> {
    duration(obj, what, true)
}

fn duration(obj: &Bound<'_, PyAny>, what: &str, zero_ok: bool) -> PyResult<Duration> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(parse_iso_duration(&s.to_cow()?)?);
    }
    let td = obj.py().import("datetime")?.getattr("timedelta")?;
    if !obj.is_instance(&td)? {
        return Err(invalid(format!(
            "{what}: expected a timedelta or an ISO 8601 duration, not {}",
            type_name(obj)
        )));
    }
    let secs: f64 = obj.call_method0("total_seconds")?.extract()?;
    if secs < 0.0 || (!zero_ok && secs <= 0.0) {
        let want = if zero_ok { "zero or positive" } else { "positive" };
        return Err(invalid(format!("{what}: must be {want}")));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| invalid(format!("{what}: out of range")))
}

pub(crate) fn to_timedelta<'py>(py: Python<'py>, d: Duration) -> PyResult<Bound<'py, PyAny>> {
    let td = py.import("datetime")?.getattr("timedelta")?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("seconds", d.as_secs_f64())?;
    Ok(td.call((), Some(&kwargs))?)
}

/// Key operations by their key-vault names: `["sign", "verify"]`.
pub(crate) fn ops_arg(ops: &[String]) -> PyResult<KeyOps> {
    Ok(ops.join(",").parse::<KeyOps>()?)
}

pub(crate) fn ops_list(ops: KeyOps) -> Vec<&'static str> {
    ops.iter().map(|o| o.name()).collect()
}

/// Tags or an encryption context: a `dict[str, str]`.
pub(crate) fn str_map(map: Option<BTreeMap<String, String>>) -> BTreeMap<String, String> {
    map.unwrap_or_default()
}

pub(crate) fn context(aad: Option<BTreeMap<String, String>>) -> EncryptionContext {
    str_map(aad)
}

/// JSON to Python (through the json module, so objects become plain dicts).
pub(crate) fn json_to_py<'py>(py: Python<'py>, v: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(py.import("json")?.call_method1("loads", (v.to_string(),))?)
}

/// Python (a dict) to JSON text.
pub(crate) fn py_to_json(obj: &Bound<'_, PyAny>) -> PyResult<Zeroizing<String>> {
    if !obj.is_instance_of::<PyDict>() {
        return Err(invalid(format!("expected a dict, not {}", type_name(obj))));
    }
    let s = obj.py().import("json")?.call_method1("dumps", (obj,))?;
    Ok(Zeroizing::new(s.extract::<String>()?))
}

/// A path argument: `str` or `os.PathLike`.
pub(crate) fn path_arg(obj: &Bound<'_, PyAny>) -> PyResult<std::path::PathBuf> {
    let s = obj.py().import("os")?.call_method1("fspath", (obj,))?;
    let s: String = s.extract().map_err(|_| invalid("paths must be str (bytes paths are not supported)"))?;
    Ok(std::path::PathBuf::from(s))
}
