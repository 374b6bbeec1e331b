//! SecretCache: hits, refresh ahead, the version check, serve-stale-on-error, refusals.
//! A hand-moved monotonic clock, so nothing here depends on timing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hsmkit::metadata::{RecordEdit, RecordKind};
use hsmkit::secrets::{SecretCache, SecretCacheOptions};
use hsmkit::{
    Backend, DescriptionEdit, Error, ErrorKind, KeyDescription, MetadataStore, Result, SecretAttributes,
    SecretUpdate, SettingsEdit, Store, StoreSettings,
};
use serde_json::Value;

/// The backend's own metadata, failing record reads on demand (a store outage) and
/// counting them.
#[derive(Debug)]
struct Flaky {
    inner: Arc<dyn MetadataStore>,
    down: AtomicBool,
    record_reads: AtomicUsize,
}

impl Flaky {
    fn check(&self) -> Result<()> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::backend("test", "metadata", "the store is down"));
        }
        Ok(())
    }
}

impl MetadataStore for Flaky {
    fn kind(&self) -> &'static str {
        "flaky"
    }
    fn read(&self, name: &str) -> Result<Option<KeyDescription>> {
        self.inner.read(name)
    }
    fn list(&self) -> Result<Vec<KeyDescription>> {
        self.inner.list()
    }
    fn modify(&self, name: &str, edit: DescriptionEdit<'_>) -> Result<()> {
        self.inner.modify(name, edit)
    }
    fn settings(&self) -> Result<StoreSettings> {
        self.inner.settings()
    }
    fn modify_settings(&self, edit: SettingsEdit<'_>) -> Result<StoreSettings> {
        self.inner.modify_settings(edit)
    }
    fn read_record(&self, kind: RecordKind, name: &str) -> Result<Option<Value>> {
        self.check()?;
        self.record_reads.fetch_add(1, Ordering::SeqCst);
        self.inner.read_record(kind, name)
    }
    fn list_records(&self, kind: RecordKind) -> Result<Vec<(String, Value)>> {
        self.check()?;
        self.inner.list_records(kind)
    }
    fn modify_record(&self, kind: RecordKind, name: &str, edit: RecordEdit<'_>) -> Result<()> {
        self.inner.modify_record(kind, name, edit)
    }
}

struct Rig {
    store: Store,
    meta: Arc<Flaky>,
    offset: Arc<AtomicU64>,
    cache: SecretCache,
}

const OPTIONS: SecretCacheOptions = SecretCacheOptions {
    ttl: Duration::from_secs(60),
    refresh_ahead: Duration::from_secs(10),
    max_stale: Duration::from_secs(120),
    max_entries: 2,
};

fn rig() -> Rig {
    let backend: Arc<dyn Backend> = Arc::new(hsmkit_soft::SoftBackend::new());
    let meta = Arc::new(Flaky {
        inner: backend.metadata(),
        down: AtomicBool::new(false),
        record_reads: AtomicUsize::new(0),
    });
    let store = Store::with_metadata(backend, meta.clone());
    let offset = Arc::new(AtomicU64::new(0));
    let base = Instant::now();
    let o = offset.clone();
    let cache = SecretCache::with_options(store.clone(), OPTIONS)
        .unwrap()
        .with_monotonic_clock(move || base + Duration::from_secs(o.load(Ordering::SeqCst)));
    Rig { store, meta, offset, cache }
}

impl Rig {
    fn advance(&self, secs: u64) {
        self.offset.fetch_add(secs, Ordering::SeqCst);
    }
    fn reads(&self) -> usize {
        self.meta.record_reads.load(Ordering::SeqCst)
    }
    /// Waits (bounded) for a background refresh to have read the store `n` times in all.
    fn wait_reads(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.reads() < n {
            assert!(Instant::now() < deadline, "no background refresh happened");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn set(store: &Store, name: &str, v: &[u8]) {
    store.set_secret(name, v, SecretAttributes::default()).unwrap();
}

#[test]
fn hits_do_not_ask_the_store_and_a_rotation_is_seen_within_the_ttl() {
    let r = rig();
    set(&r.store, "s", b"one");
    assert_eq!(r.cache.get("s").unwrap().value(), b"one");
    let after_miss = r.reads();
    for _ in 0..100 {
        assert_eq!(r.cache.get("s").unwrap().value(), b"one");
    }
    assert_eq!(r.reads(), after_miss, "hits never read the store");
    set(&r.store, "s", b"two");
    r.advance(49);
    assert_eq!(r.cache.get("s").unwrap().value(), b"one", "within the TTL, the cached value");
    // Past the TTL: the reader waits for the version check, which sees version 2.
    r.advance(11);
    let s = r.cache.get("s").unwrap();
    assert_eq!((s.value(), s.properties().version), (&b"two"[..], 2));
}

#[test]
fn refresh_ahead_runs_in_the_background_and_keeps_an_unchanged_value() {
    let r = rig();
    set(&r.store, "s", b"one");
    r.cache.get("s").unwrap();
    set(&r.store, "s", b"two");
    r.advance(55); // inside the refresh-ahead window
    assert_eq!(r.cache.get("s").unwrap().value(), b"one", "served at once, refreshed behind");
    // The clock stands still: only the background refresh can bring version 2 in.
    let deadline = Instant::now() + Duration::from_secs(30);
    let first = loop {
        let s = r.cache.get("s").unwrap();
        if s.value() == b"two" {
            break s;
        }
        assert!(Instant::now() < deadline, "the background refresh never stored version 2");
        std::thread::sleep(Duration::from_millis(5));
    };
    // An unchanged version keeps its cached value (the same allocation: nothing fetched
    // or decrypted again), whether the check runs behind or in front of the reader.
    let before = r.reads();
    r.advance(55);
    assert!(Arc::ptr_eq(&first, &r.cache.get("s").unwrap()));
    r.wait_reads(before + 1);
    r.advance(55);
    assert!(Arc::ptr_eq(&first, &r.cache.get("s").unwrap()));
}

#[test]
fn an_outage_serves_the_stale_value_for_a_bounded_time() {
    let r = rig();
    set(&r.store, "s", b"one");
    r.cache.get("s").unwrap();
    r.meta.down.store(true, Ordering::SeqCst);
    r.advance(61);
    assert_eq!(r.cache.get("s").unwrap().value(), b"one", "stale within max_stale");
    r.advance(118); // 179 s old: just inside ttl + max_stale
    assert_eq!(r.cache.get("s").unwrap().value(), b"one");
    r.advance(1); // ttl + max_stale reached
    let e = r.cache.get("s").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Backend);
    // Back up: served again.
    r.meta.down.store(false, Ordering::SeqCst);
    assert_eq!(r.cache.get("s").unwrap().value(), b"one");
    // Never stale for a secret the store has not given yet.
    r.meta.down.store(true, Ordering::SeqCst);
    assert_eq!(r.cache.get("new").unwrap_err().kind(), ErrorKind::Backend);
}

#[test]
fn disabled_deleted_and_expired_stop_being_served() {
    let r = rig();
    set(&r.store, "s", b"one");
    r.cache.get("s").unwrap();
    r.store.update_secret("s", 1, &SecretUpdate::enabled(false)).unwrap();
    r.advance(61);
    assert_eq!(r.cache.get("s").unwrap_err().kind(), ErrorKind::PermissionDenied);
    r.store.update_secret("s", 1, &SecretUpdate::enabled(true)).unwrap();
    r.cache.get("s").unwrap();
    r.store.delete_secret("s").unwrap();
    r.advance(61);
    assert_eq!(r.cache.get("s").unwrap_err().kind(), ErrorKind::NotFound);
    // Not served stale after the store said it is gone, even while the store is down.
    r.meta.down.store(true, Ordering::SeqCst);
    assert_eq!(r.cache.get("s").unwrap_err().kind(), ErrorKind::Backend);
    r.meta.down.store(false, Ordering::SeqCst);

    // Expiry is checked on every hit, against the store's clock.
    let exp = std::time::SystemTime::now() + Duration::from_secs(3600);
    let clock = Arc::new(AtomicU64::new(0));
    let c = clock.clone();
    let store = r
        .store
        .clone()
        .with_clock(move || std::time::SystemTime::now() + Duration::from_secs(c.load(Ordering::SeqCst)));
    store
        .set_secret("e", b"x", SecretAttributes { expires: Some(exp), ..SecretAttributes::default() })
        .unwrap();
    let cache = SecretCache::with_options(store, OPTIONS).unwrap();
    cache.get("e").unwrap();
    clock.store(7200, Ordering::SeqCst);
    assert_eq!(cache.get("e").unwrap_err().kind(), ErrorKind::PermissionDenied);
}

#[test]
fn bounded_size_and_refused_options() {
    let r = rig();
    for n in ["a", "b", "c"] {
        set(&r.store, n, n.as_bytes());
        r.cache.get(n).unwrap();
        r.advance(1);
    }
    let before = r.reads();
    r.cache.get("c").unwrap();
    r.cache.get("b").unwrap();
    assert_eq!(r.reads(), before, "the two newest are held");
    r.cache.get("a").unwrap();
    assert!(r.reads() > before, "the oldest was dropped");
    r.cache.invalidate("a");
    let before = r.reads();
    r.cache.get("a").unwrap();
    assert!(r.reads() > before);
    let bad = SecretCacheOptions { refresh_ahead: OPTIONS.ttl, ..OPTIONS };
    assert_eq!(SecretCache::with_options(r.store.clone(), bad).unwrap_err().kind(), ErrorKind::InvalidInput);
    // Any positive TTL alone gives valid options (refresh ahead a fifth of it).
    for ttl in [Duration::from_secs(1), Duration::from_secs(30), Duration::from_secs(3600)] {
        let o = SecretCacheOptions::with_ttl(ttl);
        assert_eq!((o.ttl, o.refresh_ahead), (ttl, ttl / 5));
        SecretCache::with_options(r.store.clone(), o).unwrap();
    }
    let bad = SecretCacheOptions { max_entries: 0, ..OPTIONS };
    assert_eq!(SecretCache::with_options(r.store.clone(), bad).unwrap_err().kind(), ErrorKind::InvalidInput);
    assert!(!format!("{:?}", r.cache).contains('a'.to_string().repeat(2).as_str()));
}

/// A store on a hand-moved wall clock, its cache on a hand-moved monotonic one.
fn clocked() -> (Store, SecretCache, Arc<AtomicU64>, Arc<AtomicU64>, Arc<Flaky>) {
    let backend: Arc<dyn Backend> = Arc::new(hsmkit_soft::SoftBackend::new());
    let meta = Arc::new(Flaky {
        inner: backend.metadata(),
        down: AtomicBool::new(false),
        record_reads: AtomicUsize::new(0),
    });
    let wall = Arc::new(AtomicU64::new(0));
    let w = wall.clone();
    let start = std::time::SystemTime::now();
    let store = Store::with_metadata(backend, meta.clone())
        .with_clock(move || start + Duration::from_secs(w.load(Ordering::SeqCst)));
    let mono = Arc::new(AtomicU64::new(0));
    let m = mono.clone();
    let base = Instant::now();
    let cache = SecretCache::with_options(store.clone(), OPTIONS)
        .unwrap()
        .with_monotonic_clock(move || base + Duration::from_secs(m.load(Ordering::SeqCst)));
    (store, cache, wall, mono, meta)
}

#[test]
fn an_expired_cached_version_gives_way_to_a_valid_newer_one() {
    let (store, cache, wall, _mono, _meta) = clocked();
    let soon = std::time::SystemTime::now() + Duration::from_secs(3);
    store
        .set_secret("s", b"one", SecretAttributes { expires: Some(soon), ..SecretAttributes::default() })
        .unwrap();
    assert_eq!(cache.get("s").unwrap().value(), b"one");
    store.set_secret("s", b"two", SecretAttributes::default()).unwrap();
    wall.store(10, Ordering::SeqCst); // version 1 has expired; the cache's TTL has not ended
    assert_eq!(cache.get("s").unwrap().value(), b"two");
}

#[test]
fn a_stale_value_is_never_served_past_its_expiry() {
    let (store, cache, wall, mono, meta) = clocked();
    let soon = std::time::SystemTime::now() + Duration::from_secs(100);
    store
        .set_secret("s", b"one", SecretAttributes { expires: Some(soon), ..SecretAttributes::default() })
        .unwrap();
    cache.get("s").unwrap();
    meta.down.store(true, Ordering::SeqCst);
    mono.store(61, Ordering::SeqCst);
    assert_eq!(cache.get("s").unwrap().value(), b"one", "stale while the store is down");
    wall.store(200, Ordering::SeqCst);
    assert_eq!(cache.get("s").unwrap_err().kind(), ErrorKind::PermissionDenied, "expired, down or not");
}

#[test]
fn a_name_purged_and_set_again_is_a_new_secret_to_the_cache() {
    let (store, cache, _wall, mono, _meta) = clocked();
    store.set_secret("s", b"old", SecretAttributes::default()).unwrap();
    assert_eq!(cache.get("s").unwrap().value(), b"old");
    // Within the same second (the store's clock stands still): same name, same version
    // number, same times; only the version id differs.
    store.delete_secret("s").unwrap();
    store.purge_deleted_secret("s").unwrap();
    store.set_secret("s", b"new", SecretAttributes::default()).unwrap();
    mono.store(61, Ordering::SeqCst);
    assert_eq!(cache.get("s").unwrap().value(), b"new");
}
