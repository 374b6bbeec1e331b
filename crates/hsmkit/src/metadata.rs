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

use serde_json::Value;

use crate::backend::SettingsEdit;
use crate::error::{Error, Result};
use crate::lifecycle::{KeyDescription, StoreSettings};

/// A kind of store object other than a key, kept as a record: a JSON document per name,
/// in a namespace of its own (a secret and a key may share a name). Not
/// `#[non_exhaustive]`: every metadata store must place every kind (exhaustive matches).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordKind {
    /// A secret ([`crate::secrets`]): its versions, each value sealed under the store's
    /// secrets KEK.
    Secret,
    /// A certificate ([`crate::certificates`]): its policy, versions (each bound to a
    /// version of the key of the same name) and any pending request.
    Certificate,
}

impl RecordKind {
    /// Every kind.
    pub const ALL: &'static [RecordKind] = &[RecordKind::Secret, RecordKind::Certificate];

    /// The kind's name, as implementations use it in labels, directories and audit
    /// records: `secret`, `certificate`.
    pub fn name(self) -> &'static str {
        match self {
            RecordKind::Secret => "secret",
            RecordKind::Certificate => "certificate",
        }
    }
}

/// An edit of one record: gets the current document (`None` if there is none) and
/// returns the new one (`None` removes the record).
pub type RecordEdit<'a> = &'a mut dyn FnMut(Option<Value>) -> Result<Option<Value>>;

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

    /// One record of `kind`, `None` if there is none. Records are authenticated as key
    /// descriptions are (a record edited or moved to another name outside hsmkit is an
    /// error, never a silent answer).
    fn read_record(&self, kind: RecordKind, name: &str) -> Result<Option<Value>>;

    /// Every record of `kind`, by name.
    fn list_records(&self, kind: RecordKind) -> Result<Vec<(String, Value)>>;

    /// Changes one record atomically, with [`modify`](MetadataStore::modify)'s
    /// guarantees: all or nothing, `Ok` only once the change is persisted.
    fn modify_record(&self, kind: RecordKind, name: &str, edit: RecordEdit<'_>) -> Result<()>;
}

fn poisoned() -> Error {
    Error::backend("memory", "lock", "internal lock poisoned by a panic in another thread")
}

/// Metadata in memory, gone with the process.
#[derive(Debug, Default)]
pub struct MemoryMetadata {
    docs: RwLock<BTreeMap<String, KeyDescription>>,
    settings: Mutex<StoreSettings>,
    records: RwLock<BTreeMap<(RecordKind, String), Value>>,
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

    fn read_record(&self, kind: RecordKind, name: &str) -> Result<Option<Value>> {
        Ok(self.records.read().map_err(|_| poisoned())?.get(&(kind, name.to_owned())).cloned())
    }

    fn list_records(&self, kind: RecordKind) -> Result<Vec<(String, Value)>> {
        let records = self.records.read().map_err(|_| poisoned())?;
        Ok(records
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|((_, n), v)| (n.clone(), v.clone()))
            .collect())
    }

    fn modify_record(&self, kind: RecordKind, name: &str, edit: RecordEdit<'_>) -> Result<()> {
        let mut records = self.records.write().map_err(|_| poisoned())?;
        let key = (kind, name.to_owned());
        match edit(records.get(&key).cloned())? {
            Some(doc) => records.insert(key, doc),
            None => records.remove(&key),
        };
        Ok(())
    }
}
