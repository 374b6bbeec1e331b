//! Software backend for hsmkit: RustCrypto engines, keys in zeroizing memory.
//!
//! Keys sit behind the [`Storage`] seam: [`MemoryStorage`] keeps them in memory,
//! [`FileStorage`] in an encrypted keystore directory (the embedded default).
#![forbid(unsafe_code)]

#[cfg(feature = "aws-lc")]
mod aws;
mod encrypt;
mod export;
mod generate;
mod import;
mod key;
mod keystore;
mod sign;
mod storage;
mod wrap;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use hsmkit::{
    Backend, BackendKey, Capabilities, Error, KeyDescription, KeyInfo, KeyMaterial, KeySpec, KeyState,
    NewKey, Result, SettingsEdit, StateEdit, StoreSettings, VersionEdit,
};

pub use keystore::{FileStorage, KdfParams, StoreKey};
pub use storage::{DocEdit, KeyDoc, MemoryStorage, Storage, VersionRecord};

use storage::poisoned;

use key::SoftKey;

pub(crate) const KIND: &str = "soft";

/// Which library does the software backend's cryptography.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SoftEngine {
    /// RustCrypto (`rsa`, `p256`/`p384`/`p521`, `aes-kw`): pure Rust, portable.
    #[default]
    RustCrypto,
    /// AWS-LC through `aws-lc-rs` (feature `aws-lc`): C and assembly, about OpenSSL's
    /// speed; FIPS-validated builds of AWS-LC exist.
    #[cfg(feature = "aws-lc")]
    AwsLc,
}

impl SoftEngine {
    /// This engine's AES-256-GCM (the envelope cipher for its KEKs).
    pub fn aes_gcm(self) -> &'static dyn hsmkit::hazmat::aead::Aes256GcmEngine {
        match self {
            SoftEngine::RustCrypto => &hsmkit::hazmat::aead::RUSTCRYPTO,
            #[cfg(feature = "aws-lc")]
            SoftEngine::AwsLc => &aws::AES_256_GCM,
        }
    }

    /// The fastest engine this build has.
    pub fn fastest() -> Self {
        #[cfg(feature = "aws-lc")]
        return SoftEngine::AwsLc;
        #[cfg(not(feature = "aws-lc"))]
        SoftEngine::RustCrypto
    }
}

/// The software backend.
#[derive(Debug)]
pub struct SoftBackend {
    storage: Box<dyn Storage>,
    engine: SoftEngine,
    // Parsed keys by version uid: RSA key construction costs milliseconds, so it is done
    // once per key version, not per operation.
    cache: RwLock<HashMap<[u8; 16], Arc<key::Loaded>>>,
}

impl Default for SoftBackend {
    fn default() -> Self {
        Self::new()
    }
}

fn not_found(name: &str) -> Error {
    Error::NotFound { what: format!("key '{name}'") }
}

fn new_uid() -> Result<[u8; 16]> {
    let mut uid = [0u8; 16];
    getrandom::fill(&mut uid)
        .map_err(|e| Error::backend(KIND, "getrandom", format!("OS random number generator failed: {e}")))?;
    Ok(uid)
}

impl SoftBackend {
    /// A backend whose keys live in memory only.
    pub fn new() -> Self {
        Self::with_storage(MemoryStorage::default())
    }

    /// A backend over any [`Storage`].
    pub fn with_storage(storage: impl Storage + 'static) -> Self {
        SoftBackend {
            storage: Box::new(storage),
            engine: SoftEngine::default(),
            cache: RwLock::new(HashMap::new()),
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

    fn open_record(&self, record: VersionRecord) -> Result<SoftKey> {
        let cached = self.cache.read().map_err(|_| poisoned())?.get(&record.uid).cloned();
        let engine = match cached {
            Some(e) => e,
            None => {
                let e = Arc::new(key::Loaded::new(
                    key::Engine::load(&record.material)?,
                    &record.material,
                    self.engine,
                )?);
                self.cache.write().map_err(|_| poisoned())?.insert(record.uid, e.clone());
                e
            }
        };
        Ok(SoftKey::new(record.info, engine, record.material))
    }

    fn insert(
        &self,
        req: &NewKey<'_>,
        spec: KeySpec,
        material: KeyMaterial,
        engine: key::Engine,
    ) -> Result<SoftKey> {
        let info = req.info(spec, !material.is_public_only());
        let record = VersionRecord { info: info.clone(), material: Arc::new(material), uid: new_uid()? };
        self.storage.modify(req.name, &mut |doc| {
            let mut doc = match (doc, req.version) {
                (None, 1) => KeyDoc {
                    name: req.name.to_owned(),
                    state: KeyState::default(),
                    versions: BTreeMap::new(),
                },
                (Some(_), 1) => return Err(Error::AlreadyExists { name: req.name.to_owned() }),
                (None, _) => return Err(not_found(req.name)),
                (Some(d), v) if d.versions.contains_key(&v) => {
                    return Err(Error::AlreadyExists { name: format!("{}/{v}", req.name) });
                }
                (Some(d), _) => d,
            };
            doc.versions.insert(req.version, record.clone());
            Ok(Some(doc))
        })?;
        let engine = Arc::new(key::Loaded::new(engine, &record.material, self.engine)?);
        self.cache.write().map_err(|_| poisoned())?.insert(record.uid, engine.clone());
        Ok(SoftKey::new(info, engine, record.material))
    }

    fn doc(&self, name: &str) -> Result<KeyDoc> {
        self.storage.read(name)?.ok_or_else(|| not_found(name))
    }
}

/// A key that does the public operations (verify, encrypt, RSA-OAEP wrap) of `public` in
/// software. Backends whose devices hold only private keys use it for public operations.
pub fn public_key_ops(info: KeyInfo, public: &hsmkit::PublicKey) -> Result<Box<dyn BackendKey>> {
    let material = Arc::new(KeyMaterial::Public(public.clone()));
    let engine = key::Engine::load(&material)?;
    let loaded = Arc::new(key::Loaded::new(engine, &material, SoftEngine::fastest())?);
    Ok(Box::new(SoftKey::new(info, loaded, material)))
}

/// Validates key material with the software engines and returns it normalised: RSA
/// private keys with their CRT values, EC private keys with their public point, EC
/// public points uncompressed. Invalid keys are [`Error::InvalidInput`].
pub fn normalize(material: &KeyMaterial) -> Result<KeyMaterial> {
    let (_, engine) = import::import(material)?;
    export::normalized(&engine, material)
}

impl Backend for SoftBackend {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn capabilities(&self) -> Capabilities {
        let engine = match self.engine {
            SoftEngine::RustCrypto => "rustcrypto",
            #[cfg(feature = "aws-lc")]
            SoftEngine::AwsLc => "aws-lc",
        };
        Capabilities { engine, ..Capabilities::all() }
    }

    fn generate(&self, req: &NewKey<'_>, spec: KeySpec) -> Result<Box<dyn BackendKey>> {
        let (material, engine) = generate::generate(spec)?;
        Ok(Box::new(self.insert(req, spec, material, engine)?))
    }

    fn import(&self, req: &NewKey<'_>, material: KeyMaterial) -> Result<Box<dyn BackendKey>> {
        let (spec, engine) = import::import(&material)?;
        // Store the normalised form (RSA CRT values, EC public point), so that an exported
        // key is complete even if it was imported from, say, a JWK without dp/dq/qi.
        let material = export::normalized(&engine, &material)?;
        Ok(Box::new(self.insert(req, spec, material, engine)?))
    }

    fn open(&self, name: &str, version: u32) -> Result<Box<dyn BackendKey>> {
        let record = self
            .doc(name)?
            .versions
            .remove(&version)
            .ok_or_else(|| Error::NotFound { what: format!("version {version} of key '{name}'") })?;
        Ok(Box::new(self.open_record(record)?))
    }

    fn describe(&self, name: &str) -> Result<KeyDescription> {
        Ok(self.doc(name)?.describe())
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

    fn update_version(&self, name: &str, version: u32, edit: VersionEdit<'_>) -> Result<KeyInfo> {
        let mut out = None;
        self.storage.modify(name, &mut |doc| {
            let mut doc = doc.ok_or_else(|| not_found(name))?;
            let rec = doc
                .versions
                .get_mut(&version)
                .ok_or_else(|| Error::NotFound { what: format!("version {version} of key '{name}'") })?;
            let mut info = rec.info.clone();
            edit(&mut info)?;
            rec.info = info.clone();
            out = Some(info);
            Ok(Some(doc))
        })?;
        out.ok_or_else(|| not_found(name))
    }

    fn update_state(&self, name: &str, edit: StateEdit<'_>) -> Result<KeyState> {
        let mut out = None;
        self.storage.modify(name, &mut |doc| {
            let mut doc = doc.ok_or_else(|| not_found(name))?;
            let mut state = doc.state.clone();
            edit(&mut state)?;
            doc.state = state.clone();
            out = Some(state);
            Ok(Some(doc))
        })?;
        out.ok_or_else(|| not_found(name))
    }

    fn purge(&self, name: &str, check: StateEdit<'_>) -> Result<()> {
        let mut uids = Vec::new();
        self.storage.modify(name, &mut |doc| {
            let doc = doc.ok_or_else(|| not_found(name))?;
            let mut state = doc.state.clone();
            check(&mut state)?;
            uids = doc.versions.values().map(|r| r.uid).collect();
            Ok(None)
        })?;
        let mut cache = self.cache.write().map_err(|_| poisoned())?;
        for uid in uids {
            cache.remove(&uid);
        }
        Ok(())
    }

    fn settings(&self) -> Result<StoreSettings> {
        self.storage.settings()
    }

    fn update_settings(&self, edit: SettingsEdit<'_>) -> Result<StoreSettings> {
        self.storage.modify_settings(edit)
    }
}
