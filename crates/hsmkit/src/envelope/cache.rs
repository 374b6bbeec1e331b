//! Data-key caching: one wrapped data key reused for many small envelopes, within limits
//! (the AWS Encryption SDK's caching materials manager, for one sealer).

use crate::error::InvalidReason;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::format::RecipientInfo;
use super::keys::Dek;
use crate::crypto::CryptoProvider;
use crate::error::{Error, Result};

/// When a cached data key must be replaced: whichever limit is reached first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheLimits {
    /// Oldest a cached data key may be.
    pub max_age: Duration,
    /// Most envelopes sealed (or opened) under one cached data key (at most 2^32).
    pub max_messages: u64,
    /// Most plaintext bytes sealed (or opened) under one cached data key.
    pub max_bytes: u64,
}

impl CacheLimits {
    /// Hard ceiling on messages per data key, as the AWS Encryption SDK sets.
    pub const MAX_MESSAGES: u64 = 1 << 32;

    /// Limits, checked: every one positive, messages at most [`CacheLimits::MAX_MESSAGES`].
    pub fn new(max_age: Duration, max_messages: u64, max_bytes: u64) -> Result<Self> {
        if max_age.is_zero() || max_messages == 0 || max_bytes == 0 {
            return Err(Error::invalid(InvalidReason::Parameter, "data-key cache limits must be positive"));
        }
        if max_messages > Self::MAX_MESSAGES {
            return Err(Error::invalid(
                InvalidReason::Parameter,
                "a data key may seal at most 2^32 messages",
            ));
        }
        Ok(CacheLimits { max_age, max_messages, max_bytes })
    }
}

struct Entry {
    dek: Dek,
    recipients: Vec<RecipientInfo>,
    created: Instant,
    messages: u64,
    bytes: u64,
}

/// A cache's lock. A poisoned lock only means another thread panicked mid-update: the
/// cache starts afresh (empty) rather than trust what that thread left.
fn lock_afresh<T: Default>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| {
        let mut g = p.into_inner();
        *g = T::default();
        g
    })
}

/// The cache of one sealer (shared by its clones).
#[derive(Clone)]
pub(crate) struct DataKeyCache {
    limits: CacheLimits,
    entry: Arc<Mutex<Option<Entry>>>,
}

impl std::fmt::Debug for DataKeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKeyCache").field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl DataKeyCache {
    pub(crate) fn new(limits: CacheLimits) -> Self {
        DataKeyCache { limits, entry: Arc::new(Mutex::new(None)) }
    }

    /// The data key and recipient entries for a message of `len` bytes: the cached ones
    /// while within limits, else fresh ones from `fresh` (cached in turn). A message
    /// larger than `max_bytes` bypasses the cache.
    pub(crate) fn materials(
        &self,
        len: u64,
        fresh: impl FnOnce() -> Result<(Dek, Vec<RecipientInfo>)>,
    ) -> Result<(Dek, Vec<RecipientInfo>)> {
        if len > self.limits.max_bytes {
            return fresh();
        }
        let mut slot = lock_afresh(&self.entry);
        if let Some(e) = slot.as_mut() {
            let usable = e.created.elapsed() < self.limits.max_age
                && e.messages < self.limits.max_messages
                && e.bytes.saturating_add(len) <= self.limits.max_bytes;
            if usable {
                e.messages += 1;
                e.bytes += len;
                return Ok((e.dek.clone(), e.recipients.clone()));
            }
        }
        *slot = None;
        let (dek, recipients) = fresh()?;
        *slot = Some(Entry {
            dek: dek.clone(),
            recipients: recipients.clone(),
            created: Instant::now(),
            messages: 1,
            bytes: len,
        });
        Ok((dek, recipients))
    }
}

/// Most unwrapped data keys one opener keeps.
const OPEN_CACHE_ENTRIES: usize = 64;

struct Unwrapped {
    recipient: RecipientInfo,
    // Boxed: the entries move (retain shifts them) and only a pointer may move with them,
    // or a copy of the key would be left in the old slot.
    dek: Box<Dek>,
    crypto: &'static dyn CryptoProvider,
    created: Instant,
    messages: u64,
    bytes: u64,
}

/// The unwrapped data keys of one opener (shared by its clones): an envelope whose
/// recipient entry (KEK name, version, algorithm and wrapped bytes) matches one already
/// unwrapped skips the KEK, as the AWS Encryption SDK's caching materials manager does
/// for decryption. The header's commitment and tag are still checked with the cached key;
/// a hit whose header fails falls back to the KEK, so the cache changes no answer the
/// KEK would give while it still allows the unwrap (see `Opener::with_data_key_cache` for
/// what a hit skips).
#[derive(Clone)]
pub(crate) struct UnwrapCache {
    limits: CacheLimits,
    entries: Arc<Mutex<Vec<Unwrapped>>>,
}

impl std::fmt::Debug for UnwrapCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnwrapCache").field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl UnwrapCache {
    pub(crate) fn new(limits: CacheLimits) -> Self {
        UnwrapCache { limits, entries: Arc::new(Mutex::new(Vec::with_capacity(OPEN_CACHE_ENTRIES))) }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Unwrapped>> {
        lock_afresh(&self.entries)
    }

    /// The data key unwrapped earlier from exactly this entry, if it is still within the
    /// limits for a message of `len` bytes. The use is counted at once (so that threads
    /// racing for the last use cannot all get it); [`refund`](Self::refund) takes it back
    /// if the header then fails.
    pub(crate) fn get(
        &self,
        recipient: &RecipientInfo,
        len: u64,
    ) -> Option<(Dek, &'static dyn CryptoProvider)> {
        let mut entries = self.lock();
        let limits = self.limits;
        entries.retain(|e| {
            e.created.elapsed() < limits.max_age
                && e.messages < limits.max_messages
                && e.bytes < limits.max_bytes
        });
        let e = entries.iter_mut().find(|e| e.recipient == *recipient)?;
        if e.bytes.saturating_add(len) > limits.max_bytes {
            return None;
        }
        e.messages = e.messages.saturating_add(1);
        e.bytes = e.bytes.saturating_add(len);
        Some((Dek::clone(&e.dek), e.crypto))
    }

    /// Takes back a use [`get`](Self::get) counted for a message whose header then failed
    /// (a forgery must not use up a key's budget).
    pub(crate) fn refund(&self, recipient: &RecipientInfo, len: u64) {
        let mut entries = self.lock();
        if let Some(e) = entries.iter_mut().find(|e| e.recipient == *recipient) {
            e.messages = e.messages.saturating_sub(1);
            e.bytes = e.bytes.saturating_sub(len);
        }
    }

    /// Remembers `dek` as the key `recipient` unwraps to (after its header verified).
    pub(crate) fn put(
        &self,
        recipient: &RecipientInfo,
        dek: &Dek,
        crypto: &'static dyn CryptoProvider,
        len: u64,
    ) {
        if len > self.limits.max_bytes {
            return;
        }
        let mut entries = self.lock();
        entries.retain(|e| e.recipient != *recipient);
        if entries.len() >= OPEN_CACHE_ENTRIES {
            // The oldest goes first.
            if let Some(i) = entries.iter().enumerate().min_by_key(|(_, e)| e.created).map(|(i, _)| i) {
                entries.swap_remove(i);
            }
        }
        entries.push(Unwrapped {
            recipient: recipient.clone(),
            dek: Box::new(dek.clone()),
            crypto,
            created: Instant::now(),
            messages: 1,
            bytes: len,
        });
    }
}
