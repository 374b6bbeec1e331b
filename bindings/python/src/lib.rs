//! The native part of the `hsmkit` Python package (`hsmkit._hsmkit`).
//!
//! Thin: every call parses its Python arguments, copies caller buffers, releases the GIL
//! and calls the Rust API. Objects are frozen and the core is `Send + Sync`, so one store
//! or key may be used from many threads.
#![forbid(unsafe_code)]
// A new algorithm, key type or operation must be handled everywhere (see hsmkit::algorithm).
#![warn(clippy::wildcard_enum_match_arm)]

mod cache;
mod certs;
mod convert;
mod errors;
mod key;
mod pki;
mod secrets;
mod store;
mod testing;

use pyo3::prelude::*;

#[pymodule]
fn _hsmkit(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(store::open, m)?)?;
    m.add_class::<store::Store>()?;
    m.add_class::<store::DeletedKey>()?;
    m.add_class::<key::Key>()?;
    m.add_class::<key::KeyProperties>()?;
    m.add_class::<secrets::Secret>()?;
    m.add_class::<secrets::SecretProperties>()?;
    m.add_class::<secrets::SecretDescription>()?;
    m.add_class::<secrets::SecretDue>()?;
    m.add_class::<cache::SecretCache>()?;
    m.add_class::<certs::CertificatePolicy>()?;
    m.add_class::<certs::CertificateProperties>()?;
    m.add_class::<certs::CertificateBundle>()?;
    m.add_class::<certs::PendingCertificate>()?;
    m.add_class::<certs::CertificateDescription>()?;
    m.add_class::<certs::CertificateDue>()?;
    m.add_class::<certs::CertificateRenewal>()?;
    m.add_class::<testing::SoftHsmToken>()?;
    Ok(())
}
