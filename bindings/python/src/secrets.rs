//! `hsmkit.Secret`, `hsmkit.SecretProperties`, `hsmkit.SecretDescription` and
//! `hsmkit.SecretDue`: what the store's secret methods (in `store.rs`) return.

use std::collections::BTreeMap;
use std::sync::Arc;

use hsmkit::{
    Secret as CoreSecret, SecretAttributes, SecretDescription as CoreDescription, SecretDue as CoreDue,
    SecretProperties as CoreProperties,
};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::convert::{from_datetime, opt_datetime, str_map, to_datetime};
use crate::errors::PyResult;

/// The attributes `set_secret` takes.
pub(crate) fn attributes(
    enabled: bool,
    not_before: Option<&Bound<'_, PyAny>>,
    expires: Option<&Bound<'_, PyAny>>,
    content_type: Option<String>,
    tags: Option<BTreeMap<String, String>>,
) -> PyResult<SecretAttributes> {
    Ok(SecretAttributes {
        enabled,
        not_before: not_before.map(|t| from_datetime(t, "not_before")).transpose()?,
        expires: expires.map(|t| from_datetime(t, "expires")).transpose()?,
        content_type,
        tags: str_map(tags),
    })
}

/// A str as Python shows one in a repr (quoted), or `None`.
fn quoted(s: Option<&str>) -> String {
    s.map_or_else(|| "None".to_owned(), |s| format!("'{}'", s.escape_debug()))
}

/// Metadata of one secret version (never its value): what `set_secret`, `list_secrets`,
/// `list_secret_versions` and `update_secret` return, and what a `Secret` exposes too.
#[pyclass(frozen, module = "hsmkit", name = "SecretProperties")]
pub(crate) struct SecretProperties {
    pub(crate) props: CoreProperties,
}

impl SecretProperties {
    fn props(&self) -> &CoreProperties {
        &self.props
    }
}

/// One `#[pymethods]` block per class (pyo3 allows one without `multiple-pymethods`):
/// the shared property getters, then the class's own methods.
macro_rules! with_props_getters {
    ($t:ty, $props:ident, { $($own:tt)* }) => {
        #[pymethods]
        impl $t {
            $($own)*

            /// The secret's name.
            #[getter]
            fn name(&self) -> &str {
                &self.$props().name
            }
            /// The version number (1 for the first value set).
            #[getter]
            fn version(&self) -> u32 {
                self.$props().version
            }
            /// A disabled version refuses to be read.
            #[getter]
            fn enabled(&self) -> bool {
                self.$props().attributes.enabled
            }
            /// Before this time the version refuses to be read.
            #[getter]
            fn not_before<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
                opt_datetime(py, self.$props().attributes.not_before)
            }
            /// From this time on the version refuses to be read.
            #[getter]
            fn expires<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
                opt_datetime(py, self.$props().attributes.expires)
            }
            /// What the value is (`"text/plain"` ...), as given; hsmkit does not interpret it.
            #[getter]
            fn content_type(&self) -> Option<&str> {
                self.$props().attributes.content_type.as_deref()
            }
            /// Free-form tags.
            #[getter]
            fn tags(&self) -> BTreeMap<String, String> {
                self.$props().attributes.tags.clone()
            }
            /// When the version was set (UTC).
            #[getter]
            fn created<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                to_datetime(py, self.$props().created)
            }
            /// When its attributes last changed (UTC).
            #[getter]
            fn updated<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                to_datetime(py, self.$props().updated)
            }
        }
    };
}

with_props_getters!(SecretProperties, props, {
    fn __repr__(&self) -> String {
        let p = &self.props;
        format!(
            "<SecretProperties {}/{} enabled={} content_type={}>",
            p.name,
            p.version,
            if p.attributes.enabled { "True" } else { "False" },
            quoted(p.attributes.content_type.as_deref()),
        )
    }
});

/// A secret version with its value, as `get_secret` and `SecretCache.get` return it. The
/// value is held in memory that is wiped when the last holder frees it; `repr()` never
/// shows it.
#[pyclass(frozen, module = "hsmkit", name = "Secret")]
pub(crate) struct Secret {
    /// Shared with a `SecretCache` that holds the same version: the value exists once, in
    /// the core's wiped buffer, however many `Secret` objects a cache hands out.
    secret: Arc<CoreSecret>,
}

impl Secret {
    fn props(&self) -> &CoreProperties {
        self.secret.properties()
    }
}

/// A secret read from the store: moved into its `Arc` (the struct moves; the value's
/// buffer stays where it is, so no copy of the value is made).
impl From<CoreSecret> for Secret {
    fn from(secret: CoreSecret) -> Self {
        Secret { secret: Arc::new(secret) }
    }
}

/// A secret a cache holds: shared, not copied.
impl From<Arc<CoreSecret>> for Secret {
    fn from(secret: Arc<CoreSecret>) -> Self {
        Secret { secret }
    }
}

with_props_getters!(Secret, props, {
    /// The value, as a new `bytes` object on every access. Python cannot wipe a `bytes`
    /// object: drop it (and this `Secret`) as soon as it has been used.
    #[getter]
    fn value<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.secret.value())
    }

    /// The metadata alone (a snapshot, without the value).
    #[getter]
    fn properties(&self) -> SecretProperties {
        SecretProperties { props: self.props().clone() }
    }

    fn __repr__(&self) -> String {
        let p = self.props();
        // The length only, as the core's Debug shows it; never a byte of the value.
        format!(
            "<Secret {}/{} content_type={} value=<{} bytes, redacted>>",
            p.name,
            p.version,
            quoted(p.attributes.content_type.as_deref()),
            self.secret.value().len(),
        )
    }
});

/// A secret: every version's metadata and, while it is soft-deleted, when it was deleted
/// and when the retention period ends. What `describe_secret`, `delete_secret`,
/// `get_deleted_secret` and `list_deleted_secrets` return.
#[pyclass(frozen, module = "hsmkit", name = "SecretDescription")]
pub(crate) struct SecretDescription {
    pub(crate) desc: CoreDescription,
}

#[pymethods]
impl SecretDescription {
    /// The secret's name.
    #[getter]
    fn name(&self) -> &str {
        &self.desc.name
    }
    /// Every version, oldest first.
    #[getter]
    fn versions(&self) -> Vec<SecretProperties> {
        self.desc.versions.iter().map(|p| SecretProperties { props: p.clone() }).collect()
    }
    /// The current (newest) version.
    #[getter]
    fn current(&self) -> Option<SecretProperties> {
        self.desc.current().map(|p| SecretProperties { props: p.clone() })
    }
    /// When the secret was deleted (UTC); None unless it is soft-deleted.
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
        let deleted = if self.desc.state.deleted.is_some() { " deleted" } else { "" };
        format!("<SecretDescription {} versions={}{}>", self.desc.name, self.desc.versions.len(), deleted)
    }
}

/// A secret version due for rotation, as `secrets_due` returns it.
#[pyclass(frozen, module = "hsmkit", name = "SecretDue")]
pub(crate) struct SecretDue {
    pub(crate) due: CoreDue,
}

#[pymethods]
impl SecretDue {
    /// The secret's name.
    #[getter]
    fn name(&self) -> &str {
        &self.due.name
    }
    /// The version.
    #[getter]
    fn version(&self) -> u32 {
        self.due.version
    }
    /// When it expires, if it does (UTC).
    #[getter]
    fn expires<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        opt_datetime(py, self.due.expires)
    }
    /// Why it is due: `"expires at ..."`, `"expired at ..."`, `"older than P60D"` ...
    #[getter]
    fn reason(&self) -> &str {
        &self.due.reason
    }
    fn __repr__(&self) -> String {
        format!("<SecretDue {}/{} {}>", self.due.name, self.due.version, quoted(Some(&self.due.reason)))
    }
}
