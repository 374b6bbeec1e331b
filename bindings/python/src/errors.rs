//! One `From<Error> for PyErr`: the exception classes live in Python (`hsmkit/exceptions.py`).

use hsmkit::InvalidReason;
use hsmkit::{Error, ErrorKind};
use pyo3::PyErr;

mod py {
    pyo3::import_exception!(hsmkit.exceptions, HsmkitError);
    pyo3::import_exception!(hsmkit.exceptions, KeyNotFound);
    pyo3::import_exception!(hsmkit.exceptions, KeyAlreadyExists);
    pyo3::import_exception!(hsmkit.exceptions, SecretNotFound);
    pyo3::import_exception!(hsmkit.exceptions, SecretAlreadyExists);
    pyo3::import_exception!(hsmkit.exceptions, PermissionDenied);
    pyo3::import_exception!(hsmkit.exceptions, InvalidInput);
    pyo3::import_exception!(hsmkit.exceptions, InvalidSignature);
    pyo3::import_exception!(hsmkit.exceptions, DecryptionFailed);
    pyo3::import_exception!(hsmkit.exceptions, Unsupported);
    pyo3::import_exception!(hsmkit.exceptions, AuthenticationError);
    pyo3::import_exception!(hsmkit.exceptions, BackendError);
    pyo3::import_exception!(hsmkit.exceptions, StreamError);
}

/// The error of every binding function: an hsmkit error, or one Python raised while
/// reading the arguments. (A type of this crate, because `PyErr` and `hsmkit::Error` are
/// both foreign here.)
#[derive(Debug)]
pub(crate) enum PyError {
    Core(Error),
    Py(PyErr),
}

impl From<Error> for PyError {
    fn from(e: Error) -> Self {
        PyError::Core(e)
    }
}

impl From<std::convert::Infallible> for PyError {
    fn from(e: std::convert::Infallible) -> Self {
        match e {}
    }
}

impl From<PyErr> for PyError {
    fn from(e: PyErr) -> Self {
        PyError::Py(e)
    }
}

pub(crate) type PyResult<T> = Result<T, PyError>;

impl From<PyError> for PyErr {
    #[allow(
        clippy::wildcard_enum_match_arm,
        reason = "Error is non_exhaustive: one conversion for every error"
    )]
    fn from(e: PyError) -> PyErr {
        let e = match e {
            PyError::Core(e) => e,
            PyError::Py(e) => return e,
        };
        // The message never holds secrets (the core's rule); DecryptionFailed carries none.
        let msg = e.to_string();
        match e.kind() {
            ErrorKind::NotFound => py::KeyNotFound::new_err(msg),
            ErrorKind::AlreadyExists => py::KeyAlreadyExists::new_err(msg),
            ErrorKind::PermissionDenied => py::PermissionDenied::new_err(msg),
            ErrorKind::InvalidInput => {
                py::InvalidInput::new_err((msg, e.invalid_reason().map(|r| r.as_str())))
            }
            ErrorKind::VerificationFailed => py::InvalidSignature::new_err(msg),
            ErrorKind::DecryptionFailed => py::DecryptionFailed::new_err(msg),
            ErrorKind::Unsupported => {
                py::Unsupported::new_err((msg, e.unsupported_reason().map(|r| r.as_str())))
            }
            ErrorKind::Authentication => py::AuthenticationError::new_err(msg),
            ErrorKind::Backend => match &e {
                Error::Backend(b) => py::BackendError::new_err((msg, b.backend, b.function.clone(), b.code)),
                _ => py::BackendError::new_err((msg, "", String::new(), None::<u64>)),
            },
            ErrorKind::Io => py::StreamError::new_err(msg),
            _ => py::HsmkitError::new_err(msg),
        }
    }
}

/// The error of a secrets call: a missing or clashing name raises the secret classes
/// (`SecretNotFound`, `SecretAlreadyExists`) rather than the key ones; every other error
/// maps as for keys. The core's kinds do not say which object was missing, the call does.
#[allow(clippy::wildcard_enum_match_arm, reason = "ErrorKind is non_exhaustive")]
pub(crate) fn secret_error(e: Error) -> PyError {
    match e.kind() {
        ErrorKind::NotFound => PyError::Py(py::SecretNotFound::new_err(e.to_string())),
        ErrorKind::AlreadyExists => PyError::Py(py::SecretAlreadyExists::new_err(e.to_string())),
        ErrorKind::PermissionDenied
        | ErrorKind::InvalidInput
        | ErrorKind::VerificationFailed
        | ErrorKind::DecryptionFailed
        | ErrorKind::Unsupported
        | ErrorKind::Authentication
        | ErrorKind::Backend
        | ErrorKind::Io => PyError::Core(e),
        // A kind added later maps as for keys.
        _ => PyError::Core(e),
    }
}

/// An `InvalidInput` for a bad Python-side argument.
pub(crate) fn invalid(msg: impl Into<String>) -> PyError {
    PyError::Core(Error::invalid(InvalidReason::Parameter, msg))
}
