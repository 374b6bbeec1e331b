//! Software backend for hsmkit: RustCrypto engines, keys in zeroizing memory.
//!
//! Key records sit behind the [`Storage`] seam; [`MemoryStorage`] keeps them in memory.
//! (The encrypted on-disk keystore plugs in at the same seam.)
#![forbid(unsafe_code)]

mod encrypt;
mod export;
mod generate;
mod import;
mod key;
mod sign;
mod storage;
mod wrap;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use hsmkit::{Backend, BackendKey, Capabilities, Error, KeyInfo, KeyMaterial, KeySpec, NewKey, Result};

pub use storage::{KeyRecord, MemoryStorage, Storage};

use key::SoftKey;

pub(crate) const KIND: &str = "soft";

/// The software backend.
#[derive(Debug)]
pub struct SoftBackend {
    storage: Box<dyn Storage>,
    // Parsed keys by (name, version): RSA key construction costs milliseconds, so it is
    // done once per key version, not per operation.
    cache: RwLock<HashMap<(String, u32), Arc<key::Engine>>>,
}

impl Default for SoftBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl SoftBackend {
    /// A backend whose keys live in memory only.
    pub fn new() -> Self {
        Self::with_storage(MemoryStorage::default())
    }

    /// A backend over any [`Storage`].
    pub fn with_storage(storage: impl Storage + 'static) -> Self {
        SoftBackend { storage: Box::new(storage), cache: RwLock::new(HashMap::new()) }
    }

    fn open(&self, record: KeyRecord) -> Result<SoftKey> {
        let id = (record.info.name.clone(), record.info.version);
        let cached = self.cache.read().map_err(|_| poisoned())?.get(&id).cloned();
        let engine = match cached {
            Some(e) => e,
            None => {
                let e = Arc::new(key::Engine::load(&record.material)?);
                self.cache.write().map_err(|_| poisoned())?.insert(id, e.clone());
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
        let info = KeyInfo {
            name: req.name.to_owned(),
            version: req.version,
            spec,
            attributes: req.attributes.clone(),
            has_private: !material.is_public_only(),
            created: std::time::SystemTime::now(),
        };
        let material = Arc::new(material);
        self.storage.insert(KeyRecord { info: info.clone(), material: material.clone() })?;
        let engine = Arc::new(engine);
        self.cache.write().map_err(|_| poisoned())?.insert((info.name.clone(), info.version), engine.clone());
        Ok(SoftKey::new(info, engine, material))
    }
}

/// A key that does the public operations (verify, encrypt, RSA-OAEP wrap) of `public` in
/// software. Backends whose devices hold only private keys use it for public operations.
pub fn public_key_ops(info: KeyInfo, public: &hsmkit::PublicKey) -> Result<Box<dyn BackendKey>> {
    let material = Arc::new(KeyMaterial::Public(public.clone()));
    let engine = Arc::new(key::Engine::load(&material)?);
    Ok(Box::new(SoftKey::new(info, engine, material)))
}

/// Validates key material with the software engines and returns it normalised: RSA
/// private keys with their CRT values, EC private keys with their public point, EC
/// public points uncompressed. Invalid keys are [`Error::InvalidInput`].
pub fn normalize(material: &KeyMaterial) -> Result<KeyMaterial> {
    let (_, engine) = import::import(material)?;
    export::normalized(&engine, material)
}

fn poisoned() -> Error {
    Error::backend(KIND, "lock", "internal lock poisoned by a panic in another thread")
}

impl Backend for SoftBackend {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::all()
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

    fn get(&self, name: &str) -> Result<Box<dyn BackendKey>> {
        let record = self.storage.load(name)?;
        Ok(Box::new(self.open(record)?))
    }

    fn list(&self) -> Result<Vec<KeyInfo>> {
        self.storage.list()
    }

    fn destroy(&self, name: &str) -> Result<()> {
        self.storage.remove(name)?;
        self.cache.write().map_err(|_| poisoned())?.retain(|(n, _), _| n != name);
        Ok(())
    }
}
