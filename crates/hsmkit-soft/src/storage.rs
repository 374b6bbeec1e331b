//! The storage seam: where key records live.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use hsmkit::{Error, KeyInfo, KeyMaterial, Result};

/// One stored key version: metadata and material.
#[derive(Clone)]
pub struct KeyRecord {
    /// Metadata.
    pub info: KeyInfo,
    /// The key material (zeroized when the last reference drops).
    pub material: Arc<KeyMaterial>,
}

impl fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRecord").field("info", &self.info).field("material", &self.material).finish()
    }
}

/// Where the software backend keeps its key records.
pub trait Storage: Send + Sync + fmt::Debug {
    /// Stores a new record; [`Error::AlreadyExists`] if the name is taken.
    fn insert(&self, record: KeyRecord) -> Result<()>;
    /// Loads the current record for `name`.
    fn load(&self, name: &str) -> Result<KeyRecord>;
    /// Metadata of every record.
    fn list(&self) -> Result<Vec<KeyInfo>>;
    /// Removes every record for `name`.
    fn remove(&self, name: &str) -> Result<()>;
}

/// Records in memory, gone with the process.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    records: RwLock<BTreeMap<String, KeyRecord>>,
}

fn poisoned() -> Error {
    Error::backend(crate::KIND, "lock", "internal lock poisoned")
}

fn not_found(name: &str) -> Error {
    Error::NotFound { what: format!("key '{name}'") }
}

impl Storage for MemoryStorage {
    fn insert(&self, record: KeyRecord) -> Result<()> {
        let mut map = self.records.write().map_err(|_| poisoned())?;
        if map.contains_key(&record.info.name) {
            return Err(Error::AlreadyExists { name: record.info.name });
        }
        map.insert(record.info.name.clone(), record);
        Ok(())
    }

    fn load(&self, name: &str) -> Result<KeyRecord> {
        self.records.read().map_err(|_| poisoned())?.get(name).cloned().ok_or_else(|| not_found(name))
    }

    fn list(&self) -> Result<Vec<KeyInfo>> {
        Ok(self.records.read().map_err(|_| poisoned())?.values().map(|r| r.info.clone()).collect())
    }

    fn remove(&self, name: &str) -> Result<()> {
        self.records.write().map_err(|_| poisoned())?.remove(name).map(|_| ()).ok_or_else(|| not_found(name))
    }
}
