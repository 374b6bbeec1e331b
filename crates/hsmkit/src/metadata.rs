//! The metadata seam: where a store keeps everything that is not key material.
//!
//! Names, versions, attributes, rotation policies, soft-delete state and the store
//! settings live in a [`MetadataStore`]; key material lives in a [`crate::Backend`].
//! [`crate::Store`] runs versions, rotation, soft delete and attribute changes over the
//! seam once, for every backend, so the lifecycle rules cannot drift between backends.
//!
//! Implementations: the software keystore's own files (`hsmkit-soft`), authenticated data
//! objects on a PKCS#11 token, an authenticated file beside a token that refuses data
//! objects (`hsmkit-pkcs11`), and [`MemoryMetadata`] here.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, RwLock};

use crate::backend::SettingsEdit;
use crate::error::{Error, Result};
use crate::lifecycle::{KeyDescription, StoreSettings};

/// An edit of one key's description: gets the current description (`None` if there is no
/// such key) and returns the new one (`None` removes the key's metadata).
pub type DescriptionEdit<'a> = &'a mut dyn FnMut(Option<KeyDescription>) -> Result<Option<KeyDescription>>;

/// Where a store keeps key metadata.
///
/// [`modify`](MetadataStore::modify) is a read-modify-write that is atomic with respect
/// to other writers (threads, and where the implementation can, processes) and
/// all-or-nothing. It returns `Ok` only once the change is persisted: implementations
/// whose medium can silently drop a write (some PKCS#11 tokens) read it back first, and
/// report a write that did not persist as an error, never as done.
pub trait MetadataStore: Send + Sync + fmt::Debug {
    /// A short name for what holds the metadata: `memory`, `keystore`, `token`, `file`.
    fn kind(&self) -> &'static str;

    /// One key's description, `None` if there is no such key.
    fn read(&self, name: &str) -> Result<Option<KeyDescription>>;

    /// Every key's description, deleted keys included.
    fn list(&self) -> Result<Vec<KeyDescription>>;

    /// Changes one key's description atomically.
    fn modify(&self, name: &str, edit: DescriptionEdit<'_>) -> Result<()>;

    /// The store settings (defaults if none were written).
    fn settings(&self) -> Result<StoreSettings>;

    /// Changes the store settings atomically; returns the new settings.
    fn modify_settings(&self, edit: SettingsEdit<'_>) -> Result<StoreSettings>;
}

fn poisoned() -> Error {
    Error::backend("memory", "lock", "internal lock poisoned by a panic in another thread")
}

/// Metadata in memory, gone with the process.
#[derive(Debug, Default)]
pub struct MemoryMetadata {
    docs: RwLock<BTreeMap<String, KeyDescription>>,
    settings: Mutex<StoreSettings>,
}

impl MetadataStore for MemoryMetadata {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn read(&self, name: &str) -> Result<Option<KeyDescription>> {
        Ok(self.docs.read().map_err(|_| poisoned())?.get(name).cloned())
    }

    fn list(&self) -> Result<Vec<KeyDescription>> {
        Ok(self.docs.read().map_err(|_| poisoned())?.values().cloned().collect())
    }

    fn modify(&self, name: &str, edit: DescriptionEdit<'_>) -> Result<()> {
        let mut docs = self.docs.write().map_err(|_| poisoned())?;
        match edit(docs.get(name).cloned())? {
            Some(doc) => docs.insert(name.to_owned(), doc),
            None => docs.remove(name),
        };
        Ok(())
    }

    fn settings(&self) -> Result<StoreSettings> {
        Ok(*self.settings.lock().map_err(|_| poisoned())?)
    }

    fn modify_settings(&self, edit: SettingsEdit<'_>) -> Result<StoreSettings> {
        let mut s = self.settings.lock().map_err(|_| poisoned())?;
        let mut new = *s;
        edit(&mut new)?;
        *s = new;
        Ok(new)
    }
}
