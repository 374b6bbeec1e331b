//! [`Store`]: the front door. Keys by name over any [`Backend`].

use std::sync::Arc;

use crate::attributes::KeyAttributes;
use crate::backend::{Backend, Capabilities, KeyInfo, NewKey};
use crate::error::{Error, Result};
use crate::key::Key;
use crate::material::KeyMaterial;
use crate::spec::KeySpec;

/// Longest key name accepted.
pub const MAX_NAME_LEN: usize = 127;

/// Checks a key name: 1 to 127 characters of `A-Z a-z 0-9 - _ .`, not starting with `.`
/// (as key vaults do, so names are safe as file names, PKCS#11 labels and URL segments).
pub fn validate_name(name: &str) -> Result<()> {
    let ok_chars = name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if name.is_empty() || name.len() > MAX_NAME_LEN || !ok_chars || name.starts_with('.') {
        return Err(Error::invalid(format!(
            "key name '{}' must be 1-{MAX_NAME_LEN} characters of A-Z a-z 0-9 - _ . and not start with '.'",
            name.escape_debug()
        )));
    }
    Ok(())
}

/// Keys by name over one backend. Cheap to clone; safe to share between threads.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Arc<dyn Backend>,
}

impl Store {
    /// A store over `backend`.
    pub fn new(backend: impl Backend + 'static) -> Self {
        Store { backend: Arc::new(backend) }
    }

    /// A store over a shared backend.
    pub fn from_arc(backend: Arc<dyn Backend>) -> Self {
        Store { backend }
    }

    /// The backend's kind (`soft`, `pkcs11`).
    pub fn backend_kind(&self) -> &'static str {
        self.backend.kind()
    }

    /// What the backend can do.
    pub fn capabilities(&self) -> Capabilities {
        self.backend.capabilities()
    }

    /// Generates a new key called `name` inside the backend.
    pub fn create_key(&self, name: &str, spec: KeySpec, attributes: KeyAttributes) -> Result<Key> {
        validate_name(name)?;
        spec.check_generatable()?;
        if !self.backend.capabilities().generate.contains(&spec) {
            return Err(Error::unsupported(format!(
                "{} backend cannot generate {spec} keys",
                self.backend.kind()
            )));
        }
        let attributes = attributes.resolve(spec.key_type())?;
        let req = NewKey { name, version: 1, attributes: &attributes };
        let r = self.backend.generate(&req, spec).map(Key::from_backend);
        lifecycle_event(name, "create", &r);
        r
    }

    /// Imports key material (see [`KeyMaterial`]) under `name`.
    pub fn import_key(&self, name: &str, material: KeyMaterial, attributes: KeyAttributes) -> Result<Key> {
        validate_name(name)?;
        let spec = material.spec()?;
        if let KeySpec::Rsa { bits } = spec {
            if !(crate::spec::RSA_MIN_BITS..=crate::spec::RSA_MAX_BITS).contains(&bits) {
                return Err(Error::invalid(format!("RSA keys of {bits} bits are not accepted (2048-8192)")));
            }
        }
        if !self.backend.capabilities().import {
            return Err(Error::unsupported(format!("{} backend cannot import keys", self.backend.kind())));
        }
        let mut attributes = attributes.resolve(spec.key_type())?;
        if material.is_public_only() {
            // A public key can only do public operations; say so in its attributes.
            let public_ops = attributes.allowed().iter().filter(|op| !op.is_private()).collect();
            attributes.ops = Some(public_ops);
        }
        let req = NewKey { name, version: 1, attributes: &attributes };
        let r = self.backend.import(&req, material).map(Key::from_backend);
        lifecycle_event(name, "import", &r);
        r
    }

    /// Opens the key called `name`.
    pub fn get_key(&self, name: &str) -> Result<Key> {
        validate_name(name)?;
        self.backend.get(name).map(Key::from_backend)
    }

    /// Metadata of every key, sorted by name.
    pub fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        let mut v = self.backend.list()?;
        v.sort_by(|a, b| a.name.cmp(&b.name).then(a.version.cmp(&b.version)));
        Ok(v)
    }

    /// Destroys the key called `name` at once (every version).
    pub fn destroy_key(&self, name: &str) -> Result<()> {
        validate_name(name)?;
        let r = self.backend.destroy(name);
        lifecycle_event(name, "destroy", &r);
        r
    }
}

fn lifecycle_event<T>(name: &str, op: &str, r: &Result<T>) {
    match r {
        Ok(_) => tracing::info!(target: "hsmkit::audit", key = %name, op, outcome = "ok"),
        Err(e) => tracing::info!(target: "hsmkit::audit", key = %name, op, outcome = ?e.kind()),
    }
}
