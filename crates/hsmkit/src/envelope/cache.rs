//! Data-key caching: one wrapped data key reused for many small envelopes, within limits
//! (the AWS Encryption SDK's caching materials manager, for one sealer).

use crate::error::InvalidReason;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::format::RecipientInfo;
use super::keys::Dek;
use crate::error::{Error, Result};

/// When a cached data key must be replaced: whichever limit is reached first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheLimits {
    /// Oldest a cached data key may be.
    pub max_age: Duration,
    /// Most envelopes sealed under one data key (at most 2^32).
    pub max_messages: u64,
    /// Most plaintext bytes sealed under one data key.
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
        // A poisoned lock only means another thread panicked mid-update: start afresh.
        let mut slot = self.entry.lock().unwrap_or_else(|p| {
            let mut g = p.into_inner();
            *g = None;
            g
        });
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
