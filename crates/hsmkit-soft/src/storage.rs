//! The storage seam: where the software backend keeps key documents.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, RwLock};

use hsmkit::metadata::{RecordEdit, RecordKind};
use hsmkit::{Error, KeyDescription, KeyInfo, KeyMaterial, KeyState, Result, SettingsEdit, StoreSettings};
use serde_json::Value;

/// One stored key version: metadata and material.
#[derive(Clone)]
pub struct VersionRecord {
    /// Metadata.
    pub info: KeyInfo,
    /// The key material (zeroized when the last reference drops).
    pub material: Arc<KeyMaterial>,
    /// A random id, unique to this version's material, under which the parsed engine key
    /// is cached (a name and version can be purged and made again by another process).
    pub uid: [u8; 16],
}

impl fmt::Debug for VersionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VersionRecord").field("info", &self.info).field("material", &self.material).finish()
    }
}

/// Everything stored for one key: state and versions.
#[derive(Clone, Debug)]
pub struct KeyDoc {
    /// The key name.
    pub name: String,
    /// Key-level state.
    pub state: KeyState,
    /// Versions by number.
    pub versions: BTreeMap<u32, VersionRecord>,
}

impl KeyDoc {
    /// The document without material. Each version's binding is its material id.
    pub fn describe(&self) -> KeyDescription {
        KeyDescription {
            name: self.name.clone(),
            state: self.state.clone(),
            versions: self
                .versions
                .values()
                .map(|r| {
                    let mut info = r.info.clone();
                    info.binding.object_id = r.uid.to_vec();
                    info
                })
                .collect(),
        }
    }
}

/// An edit of one key's document: gets the current document (`None` if there is no such
/// key) and returns the new one (`None` removes the key).
pub type DocEdit<'a> = &'a mut dyn FnMut(Option<KeyDoc>) -> Result<Option<KeyDoc>>;

/// Where the software backend keeps its keys.
///
/// [`modify`](Storage::modify) is a read-modify-write that is atomic with respect to other
/// writers (threads, and for on-disk storage, processes) and all-or-nothing: if the edit
/// fails or the process dies, the old document stays.
pub trait Storage: Send + Sync + fmt::Debug {
    /// What this storage is, as [`hsmkit::MetadataStore::kind`] says it: `memory`,
    /// `keystore`.
    fn kind(&self) -> &'static str {
        "storage"
    }

    /// One key's document.
    fn read(&self, name: &str) -> Result<Option<KeyDoc>>;
    /// The names of every key.
    fn names(&self) -> Result<Vec<String>>;
    /// Changes one key's document atomically.
    fn modify(&self, name: &str, edit: DocEdit<'_>) -> Result<()>;
    /// The store settings.
    fn settings(&self) -> Result<StoreSettings>;
    /// Changes the store settings atomically.
    fn modify_settings(&self, edit: SettingsEdit<'_>) -> Result<StoreSettings>;
    /// One record (a secret, ...): see [`hsmkit::MetadataStore::read_record`].
    fn read_record(&self, kind: RecordKind, name: &str) -> Result<Option<Value>>;
    /// The names of every record of `kind`.
    fn record_names(&self, kind: RecordKind) -> Result<Vec<String>>;
    /// Changes one record atomically (all or nothing, as [`modify`](Storage::modify)).
    fn modify_record(&self, kind: RecordKind, name: &str, edit: RecordEdit<'_>) -> Result<()>;
}

/// Keys in memory, gone with the process.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    docs: RwLock<BTreeMap<String, KeyDoc>>,
    settings: Mutex<StoreSettings>,
    records: RwLock<BTreeMap<(RecordKind, String), Value>>,
}

pub(crate) fn poisoned() -> Error {
    Error::backend(crate::KIND, "lock", "internal lock poisoned by a panic in another thread")
}

impl Storage for MemoryStorage {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn read(&self, name: &str) -> Result<Option<KeyDoc>> {
        Ok(self.docs.read().map_err(|_| poisoned())?.get(name).cloned())
    }

    fn names(&self) -> Result<Vec<String>> {
        Ok(self.docs.read().map_err(|_| poisoned())?.keys().cloned().collect())
    }

    fn modify(&self, name: &str, edit: DocEdit<'_>) -> Result<()> {
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

    fn record_names(&self, kind: RecordKind) -> Result<Vec<String>> {
        let records = self.records.read().map_err(|_| poisoned())?;
        Ok(records.keys().filter(|(k, _)| *k == kind).map(|(_, n)| n.clone()).collect())
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
