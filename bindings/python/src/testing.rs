//! The native half of `hsmkit.testing`: throw-away SoftHSM2 tokens.

use std::sync::Mutex;

use hsmkit_pkcs11::testing::SoftHsmToken as CoreToken;
use pyo3::prelude::*;

use crate::errors::{PyResult, invalid};

/// A fresh, initialised SoftHSM2 token (user PIN 1234), deleted by `close()`.
#[pyclass(frozen, module = "hsmkit._hsmkit", name = "SoftHsmToken")]
pub(crate) struct SoftHsmToken {
    token: Mutex<Option<CoreToken>>,
    uri: String,
    label: String,
}

#[pymethods]
impl SoftHsmToken {
    #[new]
    fn new(py: Python<'_>) -> PyResult<Self> {
        let token = py.detach(CoreToken::new)?;
        let (uri, label) = (token.uri().to_owned(), token.label().to_owned());
        Ok(SoftHsmToken { token: Mutex::new(Some(token)), uri, label })
    }

    /// `pkcs11:token=...?module-path=...&pin-value=1234`
    #[getter]
    fn uri(&self) -> &str {
        &self.uri
    }

    /// The token label.
    #[getter]
    fn label(&self) -> &str {
        &self.label
    }

    /// Deletes the token. Idempotent.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let token = self.token.lock().map_err(|_| invalid("token lock poisoned"))?.take();
        py.detach(|| drop(token));
        Ok(())
    }
}
