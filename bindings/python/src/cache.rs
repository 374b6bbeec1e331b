//! `hsmkit.SecretCache`: the core's [`SecretCache`], for readers that ask for the same
//! secrets often.

use std::time::Duration;

use hsmkit::format_iso_duration;
use hsmkit::secrets::{SecretCache as CoreCache, SecretCacheOptions};
use pyo3::prelude::*;

use crate::convert::{from_duration, from_window, to_timedelta};
use crate::errors::{PyResult, invalid, secret_error};
use crate::secrets::Secret;
use crate::store::Store;

/// `refresh_ahead` when not given: `ttl` divided by this (the core's default 1 minute of
/// 5).
const REFRESH_AHEAD_DIVISOR: u32 = 5;

/// A count that must be positive (a negative one is bad input, not an `OverflowError`).
fn positive(n: i64, what: &str) -> PyResult<usize> {
    usize::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| invalid(format!("{what}: must be positive")))
}

/// The current version of secrets, cached in memory, as key vault SDKs advise: a hit
/// costs a map lookup (no store call, no decryption); a value is served for `ttl`, checked
/// against the store in the background `refresh_ahead` before that, and served up to
/// `max_stale` past it while the store is unreachable. Values are held in memory that is
/// wiped when dropped, for as long as the cache holds them.
#[pyclass(frozen, module = "hsmkit", name = "SecretCache")]
pub(crate) struct SecretCache {
    cache: CoreCache,
}

#[pymethods]
impl SecretCache {
    /// A cache over `store`. Durations are `timedelta`s or ISO 8601 strings; None takes
    /// the default: `ttl` 5 minutes, `refresh_ahead` a fifth of `ttl` (it must be below
    /// `ttl`; zero: refresh only once the TTL has ended), `max_stale` 15 minutes (zero:
    /// never serve a stale value). `max_entries`: the most secrets held (the least
    /// recently fetched goes).
    #[new]
    #[pyo3(signature = (store, *, ttl = None, refresh_ahead = None, max_stale = None, max_entries = 1024))]
    fn new(
        store: PyRef<'_, Store>,
        ttl: Option<&Bound<'_, PyAny>>,
        refresh_ahead: Option<&Bound<'_, PyAny>>,
        max_stale: Option<&Bound<'_, PyAny>>,
        max_entries: i64,
    ) -> PyResult<Self> {
        let d = SecretCacheOptions::default();
        let ttl = ttl.map_or(Ok(d.ttl), |t| from_duration(t, "ttl"))?;
        let options = SecretCacheOptions {
            ttl,
            // The core's default (1 minute of 5) in proportion, so that a short `ttl`
            // alone is accepted.
            refresh_ahead: match refresh_ahead {
                Some(t) => from_window(t, "refresh_ahead")?,
                None => ttl.checked_div(REFRESH_AHEAD_DIVISOR).unwrap_or_default(),
            },
            max_stale: max_stale.map_or(Ok(d.max_stale), |t| from_window(t, "max_stale"))?,
            max_entries: positive(max_entries, "max_entries")?,
        };
        // No store call: the first `get` of a name reads it.
        let cache = CoreCache::with_options(store.store.clone(), options)?;
        Ok(SecretCache { cache })
    }

    /// The current version of `name`: from the cache while fresh, else from the store.
    /// Raises as `Store.get_secret` does (`SecretNotFound`, `PermissionDenied` once the
    /// version is disabled, expired or not yet valid). The `Secret` shares the cache's
    /// copy of the value.
    fn get(&self, py: Python<'_>, name: &str) -> PyResult<Secret> {
        // Released for hits too: a hit past `ttl` waits for the store (an HSM round trip),
        // and releasing costs a fraction of a microsecond.
        let secret = py.detach(|| self.cache.get(name)).map_err(secret_error)?;
        Ok(Secret::from(secret))
    }

    /// Drops `name` from the cache: the next `get` asks the store.
    fn invalidate(&self, name: &str) {
        self.cache.invalidate(name);
    }

    /// Drops every value.
    fn clear(&self) {
        self.cache.clear();
    }

    /// How long a value is served without asking the store.
    #[getter]
    fn ttl<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_timedelta(py, self.cache.options().ttl)
    }

    /// How long before `ttl` ends a `get` starts a background refresh.
    #[getter]
    fn refresh_ahead<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_timedelta(py, self.cache.options().refresh_ahead)
    }

    /// How long past `ttl` a value is served while the store is unreachable.
    #[getter]
    fn max_stale<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_timedelta(py, self.cache.options().max_stale)
    }

    /// The most secrets held.
    #[getter]
    fn max_entries(&self) -> usize {
        self.cache.options().max_entries
    }

    fn __repr__(&self) -> String {
        let o = self.cache.options();
        let iso = |d: Duration| {
            // Whole seconds as ISO 8601; a sub-second option as seconds.
            if d.subsec_nanos() == 0 { format_iso_duration(d) } else { format!("{}s", d.as_secs_f64()) }
        };
        format!(
            "<SecretCache ttl={} refresh_ahead={} max_stale={} max_entries={}>",
            iso(o.ttl),
            iso(o.refresh_ahead),
            iso(o.max_stale),
            o.max_entries
        )
    }
}
