//! Software backend for hsmkit: RustCrypto engines, keys in zeroizing memory.
//!
//! Keys sit behind the [`Storage`] seam: [`MemoryStorage`] keeps them in memory,
//! [`FileStorage`] in an encrypted keystore directory (the embedded default).
#![forbid(unsafe_code)]
// A new algorithm, key type or operation must be handled everywhere (see hsmkit::algorithm).
#![warn(clippy::wildcard_enum_match_arm)]

mod keystore;
mod storage;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use hsmkit::{
    Backend, BackendKey, Capabilities, Error, KeyDescription, KeyInfo, KeyMaterial, KeySpec, NewKey, Result,
    SettingsEdit, StoreSettings,
};

pub use keystore::{FileStorage, KdfParams, StoreKey};
pub use storage::{DocEdit, KeyDoc, MemoryStorage, Storage, VersionRecord};

use storage::poisoned;

use hsmkit_engine::{EngineKey, Loaded};

pub(crate) const KIND: &str = "soft";

/// Which library does the software backend's cryptography (see [`hsmkit_engine::Engine`]).
/// The default is [`SoftEngine::fastest`] for every constructor ([`SoftBackend::new`],
/// [`SoftBackend::with_storage`], [`SoftBackend::open_dir`]) as for `hsmkit-open`, the
/// CLI, Python and C.
pub use hsmkit_engine::Engine as SoftEngine;

/// Material of versions made but not yet recorded in the metadata, by material id: the
/// software backend's half of the two-step create (see [`hsmkit::Backend`]). Its
/// metadata store moves an entry into the key's document in the same atomic write that
/// records the version, so a crash in between leaves nothing on disk.
type Staging = Arc<Mutex<HashMap<[u8; 16], Arc<KeyMaterial>>>>;

/// The software backend.
#[derive(Debug)]
pub struct SoftBackend {
    storage: Arc<dyn Storage>,
    engine: SoftEngine,
    // Parsed keys by version uid: RSA key construction costs milliseconds, so it is done
    // once per key version, not per operation.
    cache: RwLock<HashMap<[u8; 16], Arc<Loaded>>>,
    staging: Staging,
}

impl Default for SoftBackend {
    fn default() -> Self {
        Self::new()
    }
}

fn uid_of(info: &KeyInfo) -> Option<[u8; 16]> {
    <[u8; 16]>::try_from(info.binding.object_id.as_slice()).ok()
}

fn version_not_found(info: &KeyInfo) -> Error {
    Error::NotFound { what: format!("version {} of key '{}'", info.version, info.name) }
}

impl SoftBackend {
    /// A backend whose keys live in memory only, on the default engine
    /// ([`SoftEngine::fastest`]).
    pub fn new() -> Self {
        Self::with_storage(MemoryStorage::default())
    }

    /// A backend over any [`Storage`]. Its keys' metadata lives in the same storage
    /// (see [`Backend::metadata`]).
    pub fn with_storage(storage: impl Storage + 'static) -> Self {
        SoftBackend {
            storage: Arc::new(storage),
            engine: SoftEngine::default(),
            cache: RwLock::new(HashMap::new()),
            staging: Arc::default(),
        }
    }

    /// The same backend on another engine. Stored keys are the same under either.
    pub fn with_engine(mut self, engine: SoftEngine) -> Self {
        self.engine = engine;
        self.cache = RwLock::new(HashMap::new());
        self
    }

    /// The engine in use.
    pub fn engine(&self) -> SoftEngine {
        self.engine
    }

    /// A backend over an encrypted keystore directory (see [`FileStorage`]), created if
    /// it does not exist.
    pub fn open_dir(dir: impl AsRef<std::path::Path>, unlock: &StoreKey) -> Result<Self> {
        Ok(Self::with_storage(FileStorage::open_or_create(dir, unlock, KdfParams::default())?))
    }

    fn load(&self, info: KeyInfo, uid: [u8; 16], material: Arc<KeyMaterial>) -> Result<EngineKey> {
        let cached = self.cache.read().map_err(|_| poisoned())?.get(&uid).cloned();
        let engine = match cached {
            Some(e) => e,
            None => {
                let e = Arc::new(Loaded::load(&material, self.engine)?);
                self.cache.write().map_err(|_| poisoned())?.insert(uid, e.clone());
                e
            }
        };
        Ok(EngineKey::new(info, engine, material))
    }

    /// Stages new material and returns its key, bound to a fresh material id.
    fn stage(
        &self,
        req: &NewKey<'_>,
        spec: KeySpec,
        material: KeyMaterial,
        loaded: Loaded,
    ) -> Result<EngineKey> {
        let uid = req.object_id;
        let info = req.info(spec, !material.is_public_only());
        let material = Arc::new(material);
        let loaded = Arc::new(loaded);
        self.cache.write().map_err(|_| poisoned())?.insert(uid, loaded.clone());
        self.staging.lock().map_err(|_| poisoned())?.insert(uid, material.clone());
        Ok(EngineKey::new(info, loaded, material))
    }
}

/// The software backend's metadata: the key documents of its [`Storage`], which hold
/// each version's material beside its metadata.
#[derive(Debug)]
struct SoftMetadata {
    storage: Arc<dyn Storage>,
    staging: Staging,
}

impl hsmkit::MetadataStore for SoftMetadata {
    fn kind(&self) -> &'static str {
        self.storage.kind()
    }

    fn read(&self, name: &str) -> Result<Option<KeyDescription>> {
        Ok(self.storage.read(name)?.map(|d| d.describe()))
    }

    fn list(&self) -> Result<Vec<KeyDescription>> {
        let mut out = Vec::new();
        for name in self.storage.names()? {
            // A key purged between names() and read() is simply gone.
            if let Some(doc) = self.storage.read(&name)? {
                out.push(doc.describe());
            }
        }
        Ok(out)
    }

    fn modify(&self, name: &str, edit: hsmkit::DescriptionEdit<'_>) -> Result<()> {
        let mut taken = Vec::new();
        self.storage.modify(name, &mut |doc| {
            taken.clear();
            let Some(new) = edit(doc.as_ref().map(KeyDoc::describe))? else { return Ok(None) };
            let mut old = doc.map(|d| d.versions).unwrap_or_default();
            let mut versions = BTreeMap::new();
            for mut info in new.versions {
                let uid = uid_of(&info);
                let record = match old.remove(&info.version) {
                    Some(r) if uid.is_none_or(|u| u == r.uid) => VersionRecord { info, ..r },
                    _ => {
                        // A version the backend staged: its material joins the document now.
                        let uid = uid.ok_or_else(|| version_not_found(&info))?;
                        let material = self
                            .staging
                            .lock()
                            .map_err(|_| poisoned())?
                            .get(&uid)
                            .cloned()
                            .ok_or_else(|| version_not_found(&info))?;
                        taken.push(uid);
                        info.binding.object_id.clear();
                        VersionRecord { info, material, uid }
                    }
                };
                versions.insert(record.info.version, record);
            }
            Ok(Some(KeyDoc { name: name.to_owned(), state: new.state, versions }))
        })?;
        let mut staging = self.staging.lock().map_err(|_| poisoned())?;
        for uid in taken {
            staging.remove(&uid);
        }
        Ok(())
    }

    fn settings(&self) -> Result<StoreSettings> {
        self.storage.settings()
    }

    fn modify_settings(&self, edit: SettingsEdit<'_>) -> Result<StoreSettings> {
        self.storage.modify_settings(edit)
    }

    fn read_record(
        &self,
        kind: hsmkit::metadata::RecordKind,
        name: &str,
    ) -> Result<Option<serde_json::Value>> {
        self.storage.read_record(kind, name)
    }

    fn list_records(&self, kind: hsmkit::metadata::RecordKind) -> Result<Vec<(String, serde_json::Value)>> {
        let mut out = Vec::new();
        for name in self.storage.record_names(kind)? {
            // A record removed between record_names() and read_record() is simply gone.
            if let Some(doc) = self.storage.read_record(kind, &name)? {
                out.push((name, doc));
            }
        }
        Ok(out)
    }

    fn modify_record(
        &self,
        kind: hsmkit::metadata::RecordKind,
        name: &str,
        edit: hsmkit::metadata::RecordEdit<'_>,
    ) -> Result<()> {
        self.storage.modify_record(kind, name, edit)
    }
}

pub use hsmkit_engine::{normalize, public_key_ops};

impl Backend for SoftBackend {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn crypto(&self) -> &'static dyn hsmkit::CryptoProvider {
        self.engine.provider()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { engine: self.engine.name(), metadata: self.storage.kind(), ..Capabilities::all() }
    }

    fn metadata(&self) -> Arc<dyn hsmkit::MetadataStore> {
        Arc::new(SoftMetadata { storage: self.storage.clone(), staging: self.staging.clone() })
    }

    fn generate(&self, req: &NewKey<'_>, spec: KeySpec) -> Result<Box<dyn BackendKey>> {
        let (material, loaded) = self.engine.generate(spec)?;
        Ok(Box::new(self.stage(req, spec, material, loaded)?))
    }

    fn import(&self, req: &NewKey<'_>, material: KeyMaterial) -> Result<Box<dyn BackendKey>> {
        // The engine stores the normalised form (RSA CRT values, EC public point).
        let (spec, material, loaded) = self.engine.import(&material)?;
        Ok(Box::new(self.stage(req, spec, material, loaded)?))
    }

    fn open(&self, info: &KeyInfo) -> Result<Box<dyn BackendKey>> {
        let want = uid_of(info);
        let stored = self
            .storage
            .read(&info.name)?
            .and_then(|mut d| d.versions.remove(&info.version))
            .filter(|r| want.is_none_or(|u| u == r.uid));
        let (uid, material) = match (stored, want) {
            (Some(r), _) => (r.uid, r.material),
            // Recorded in another metadata store (see `Store::with_metadata`): staged here.
            (None, Some(uid)) => {
                let staged = self.staging.lock().map_err(|_| poisoned())?.get(&uid).cloned();
                (uid, staged.ok_or_else(|| version_not_found(info))?)
            }
            (None, None) => return Err(version_not_found(info)),
        };
        Ok(Box::new(self.load(info.clone(), uid, material)?))
    }

    fn destroy(&self, info: &KeyInfo) -> Result<()> {
        let Some(uid) = uid_of(info) else { return Ok(()) };
        self.staging.lock().map_err(|_| poisoned())?.remove(&uid);
        self.cache.write().map_err(|_| poisoned())?.remove(&uid);
        // A recorded version whose metadata is still there (purge removes the whole
        // document first, so this finds nothing then).
        self.storage.modify(&info.name, &mut |doc| {
            Ok(doc.map(|mut d| {
                d.versions.retain(|_, r| r.uid != uid);
                d
            }))
        })
    }
}
