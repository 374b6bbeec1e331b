//! [`SecretCache`]: secrets for readers that ask often, as key vault SDKs advise (cache,
//! refresh ahead of expiry, tolerate a short outage).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, InvalidReason, Result};
use crate::secrets::Secret;
use crate::store::Store;

/// How a [`SecretCache`] keeps values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecretCacheOptions {
    /// How long a value is served without asking the store. A secret rotated (or
    /// disabled, or deleted) in the store is seen within this time.
    pub ttl: Duration,
    /// How long before the TTL ends a read starts a background refresh, so that readers
    /// do not wait for the store (zero: refresh only when the TTL has ended).
    pub refresh_ahead: Duration,
    /// How long past its TTL a value is still served while the store fails with an
    /// availability error (backend or I/O; never after the store said the secret is gone,
    /// disabled or expired). Zero: never serve a stale value.
    pub max_stale: Duration,
    /// The most secrets held; beyond it, the least recently fetched is dropped.
    pub max_entries: usize,
}

impl SecretCacheOptions {
    /// The defaults with another `ttl`, and `refresh_ahead` a fifth of it (so that any
    /// positive TTL gives valid options).
    pub fn with_ttl(ttl: Duration) -> Self {
        SecretCacheOptions { ttl, refresh_ahead: ttl / 5, ..Self::default() }
    }
}

impl Default for SecretCacheOptions {
    fn default() -> Self {
        SecretCacheOptions {
            ttl: Duration::from_secs(300),
            refresh_ahead: Duration::from_secs(60),
            max_stale: Duration::from_secs(900),
            max_entries: 1024,
        }
    }
}

/// A monotonic clock, replaceable in tests.
type Now = Arc<dyn Fn() -> Instant + Send + Sync>;

struct Entry {
    secret: Arc<Secret>,
    /// When the store last confirmed this value is current.
    fetched: Instant,
}

struct Inner {
    store: Store,
    options: SecretCacheOptions,
    entries: RwLock<HashMap<String, Entry>>,
    refreshing: Mutex<HashSet<String>>,
    now: Now,
    /// Bumped whenever an entry is dropped (invalidate, clear, the store said it is
    /// gone): a refresh that started before only stores its answer if nothing was dropped
    /// meanwhile, so a slow background refresh never brings back what was removed.
    generation: AtomicU64,
}

/// The current version of secrets, cached in memory.
///
/// A hit costs a map lookup and a clock read: no store call, no decryption. Values stay
/// in memory (wiped when dropped) for as long as the cache holds them; a reader that
/// cannot have that should read from the [`Store`].
///
/// - Within `ttl - refresh_ahead` of its fetch a value is served as is.
/// - From then until `ttl`, it is still served, and one background thread asks the store
///   for the secret's current version: the same version keeps its value (only the
///   metadata is read, nothing decrypted); a new one is fetched.
/// - After `ttl` the reader waits for that check. If the store then fails with an
///   availability error, the old value is served until `ttl + max_stale`.
/// - The version's own validity (expiry, not-before) is checked on every hit against the
///   store's clock; a disabled or deleted secret stops being served once the store says
///   so (within `ttl`).
///
/// ```
/// # fn main() -> hsmkit::Result<()> {
/// use hsmkit::secrets::{SecretAttributes, SecretCache};
///
/// let store = hsmkit::Store::new(hsmkit_soft::SoftBackend::new());
/// store.set_secret("api-token", b"t0", SecretAttributes::default())?;
/// let cache = SecretCache::new(store.clone());
/// assert_eq!(cache.get("api-token")?.value(), b"t0");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SecretCache {
    inner: Arc<Inner>,
}

impl fmt::Debug for SecretCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let held = self.inner.entries.read().map(|e| e.len()).unwrap_or(0);
        f.debug_struct("SecretCache").field("options", &self.inner.options).field("held", &held).finish()
    }
}

fn poisoned() -> Error {
    Error::backend("secret cache", "lock", "internal lock poisoned by a panic in another thread")
}

/// Whether a failure says the store is unreachable (serve stale) rather than that the
/// secret changed (never serve it again).
fn is_outage(e: &Error) -> bool {
    match e.kind() {
        ErrorKind::Backend | ErrorKind::Io => true,
        ErrorKind::NotFound
        | ErrorKind::AlreadyExists
        | ErrorKind::PermissionDenied
        | ErrorKind::InvalidInput
        | ErrorKind::VerificationFailed
        | ErrorKind::DecryptionFailed
        | ErrorKind::Unsupported
        | ErrorKind::Authentication => false,
    }
}

impl SecretCache {
    /// A cache over `store` with [`SecretCacheOptions::default`] (5 minutes TTL).
    pub fn new(store: Store) -> Self {
        Self::build(store, SecretCacheOptions::default(), Arc::new(Instant::now))
    }

    /// A cache over `store` with these options. `refresh_ahead` must be below `ttl`,
    /// `ttl` and `max_entries` above zero.
    pub fn with_options(store: Store, options: SecretCacheOptions) -> Result<Self> {
        if options.ttl.is_zero() || options.refresh_ahead >= options.ttl || options.max_entries == 0 {
            return Err(Error::invalid(
                InvalidReason::Parameter,
                "a secret cache needs ttl > 0, refresh_ahead < ttl and max_entries > 0",
            ));
        }
        Ok(Self::build(store, options, Arc::new(Instant::now)))
    }

    /// This cache on another monotonic clock (tests).
    #[doc(hidden)]
    #[must_use]
    pub fn with_monotonic_clock(self, now: impl Fn() -> Instant + Send + Sync + 'static) -> Self {
        let inner = &self.inner;
        Self::build(inner.store.clone(), inner.options, Arc::new(now))
    }

    fn build(store: Store, options: SecretCacheOptions, now: Now) -> Self {
        SecretCache {
            inner: Arc::new(Inner {
                store,
                options,
                entries: RwLock::default(),
                refreshing: Mutex::default(),
                now,
                generation: AtomicU64::new(0),
            }),
        }
    }

    /// The options.
    pub fn options(&self) -> SecretCacheOptions {
        self.inner.options
    }

    /// The current version of `name`, from the cache when fresh enough.
    pub fn get(&self, name: &str) -> Result<Arc<Secret>> {
        let inner = &self.inner;
        let now = (inner.now)();
        let held = {
            let entries = inner.entries.read().map_err(|_| poisoned())?;
            entries.get(name).map(|e| (e.secret.clone(), now.saturating_duration_since(e.fetched)))
        };
        if let Some((secret, age)) = held {
            let o = inner.options;
            let valid = |s: &Secret| {
                s.properties()
                    .attributes
                    .check(inner.store.ctx.now())
                    .map_err(|reason| Error::PermissionDenied { key: format!("secret/{name}"), reason })
            };
            // A cached version that has expired (or is not yet valid) is not an answer: the
            // store may have a newer, valid one.
            if age < o.ttl && valid(&secret).is_ok() {
                if age >= o.ttl.saturating_sub(o.refresh_ahead) {
                    self.refresh_in_background(name);
                }
                return Ok(secret);
            }
            return match inner.refresh(name, Some(&secret)) {
                Ok(s) => Ok(s),
                Err(e) if is_outage(&e) && age < o.ttl.saturating_add(o.max_stale) => {
                    // Stale, but never past the version's own validity.
                    valid(&secret)?;
                    tracing::warn!(target: "hsmkit::secret_cache", secret = %name, error = %e,
                        "the store failed; serving the cached value");
                    Ok(secret)
                }
                Err(e) => Err(e),
            };
        }
        inner.refresh(name, None)
    }

    /// Drops `name` from the cache: the next read asks the store.
    pub fn invalidate(&self, name: &str) {
        self.inner.drop_entry(name);
    }

    /// Drops every value.
    pub fn clear(&self) {
        if let Ok(mut entries) = self.inner.entries.write() {
            self.inner.generation.fetch_add(1, Ordering::SeqCst);
            entries.clear();
        }
    }

    /// Starts one background refresh of `name` unless one is running.
    fn refresh_in_background(&self, name: &str) {
        let Ok(mut running) = self.inner.refreshing.lock() else { return };
        if !running.insert(name.to_owned()) {
            return;
        }
        drop(running);
        let inner = self.inner.clone();
        let owned = name.to_owned();
        let spawned = std::thread::Builder::new().name("hsmkit-secret-refresh".into()).spawn(move || {
            let held = inner.entries.read().ok().and_then(|e| e.get(&owned).map(|e| e.secret.clone()));
            if let Err(e) = inner.refresh(&owned, held.as_ref()) {
                tracing::debug!(target: "hsmkit::secret_cache", secret = %owned, error = %e,
                    "background refresh failed; the next read past the TTL retries");
            }
            if let Ok(mut running) = inner.refreshing.lock() {
                running.remove(&owned);
            }
        });
        if spawned.is_err()
            && let Ok(mut running) = self.inner.refreshing.lock()
        {
            // No thread: the read past the TTL refreshes instead.
            running.remove(name);
        }
    }
}

impl Inner {
    /// Asks the store for `name`'s current version; keeps `held` if it still is the
    /// current version (the same metadata and the same random version id: not a name
    /// purged and set again), else fetches the value. A failure that says the secret is
    /// gone or refused drops it from the cache.
    fn refresh(&self, name: &str, held: Option<&Arc<Secret>>) -> Result<Arc<Secret>> {
        let generation = self.generation.load(Ordering::SeqCst);
        let r = (|| {
            if let Some(held) = held {
                let (current, id) = self.store.current_secret_version(name)?;
                if held.properties() == &current && held.id() == &id {
                    current.attributes.check(self.store.ctx.now()).map_err(|reason| {
                        Error::PermissionDenied { key: format!("secret/{name}"), reason }
                    })?;
                    return Ok(held.clone());
                }
            }
            self.store.get_secret(name).map(Arc::new)
        })();
        match &r {
            Ok(secret) => self.put(name, secret.clone(), generation)?,
            Err(e) if !is_outage(e) => self.drop_entry(name),
            Err(_) => {}
        }
        r
    }

    fn drop_entry(&self, name: &str) {
        if let Ok(mut entries) = self.entries.write() {
            self.generation.fetch_add(1, Ordering::SeqCst);
            entries.remove(name);
        }
    }

    /// Stores an answer fetched when the generation was `generation`, unless an entry
    /// was dropped since (then the next read asks again).
    fn put(&self, name: &str, secret: Arc<Secret>, generation: u64) -> Result<()> {
        let mut entries = self.entries.write().map_err(|_| poisoned())?;
        if self.generation.load(Ordering::SeqCst) != generation {
            return Ok(());
        }
        if entries.len() >= self.options.max_entries && !entries.contains_key(name) {
            let oldest = entries.iter().min_by_key(|(_, e)| e.fetched).map(|(n, _)| n.clone());
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
            }
        }
        entries.insert(name.to_owned(), Entry { secret, fetched: (self.now)() });
        Ok(())
    }
}
