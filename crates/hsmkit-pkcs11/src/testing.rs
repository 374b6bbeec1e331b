//! A test rig: throw-away SoftHSM2 tokens.
//!
//! ```no_run
//! # fn main() -> hsmkit::Result<()> {
//! let token = hsmkit_pkcs11::testing::SoftHsmToken::new()?;
//! let store = token.store()?;            // an hsmkit::Store on a fresh, empty token
//! // or token.into_store()?: a store that owns the token and deletes it when dropped
//! println!("{}", token.uri());           // pkcs11:token=...?module-path=...&pin-value=...
//! # Ok(()) }                             // the token is deleted when `token` drops
//! ```
//!
//! SoftHSM2 reads its configuration from `SOFTHSM2_CONF` when the module loads, and only
//! then. Set it for your test process (this repository does, in `.cargo/config.toml`
//! `[env]`); if the file does not exist the rig writes it, with a token directory beside
//! it. The module is `HSMKIT_PKCS11_MODULE` or the usual SoftHSM2 install paths.

use hsmkit::InvalidReason;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use hsmkit::{Error, Result, Store};

use crate::Pkcs11Backend;
use crate::context::{SLOT_LOCK, context};
use crate::error::map;

#[path = "testing/tpm2.rs"]
mod tpm2;
pub use tpm2::Tpm2Token;

const MODULE_CANDIDATES: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/opt/homebrew/lib/softhsm/libsofthsm2.so",
];

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The SoftHSM2 module: `HSMKIT_PKCS11_MODULE`, else the first install path that exists.
pub fn softhsm_module() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("HSMKIT_PKCS11_MODULE") {
        return Ok(PathBuf::from(p));
    }
    MODULE_CANDIDATES.iter().map(PathBuf::from).find(|p| p.is_file()).ok_or_else(|| {
        Error::invalid(
            InvalidReason::Parameter,
            "SoftHSM2 is not installed (apt-get install softhsm2) and HSMKIT_PKCS11_MODULE is not set",
        )
    })
}

/// Makes sure the file `SOFTHSM2_CONF` names exists, writing a private one if not.
fn ensure_config() -> Result<PathBuf> {
    let conf = std::env::var_os("SOFTHSM2_CONF").map(PathBuf::from).ok_or_else(|| {
        Error::invalid(
            InvalidReason::Parameter,
            "SOFTHSM2_CONF is not set: point it at a (possibly not yet existing) file for the test tokens, \
             e.g. in .cargo/config.toml [env]",
        )
    })?;
    // Every test thread of the process may get here at once: one writes, the others see
    // the file. (Other processes are covered by the write-then-rename below.)
    let _guard = SLOT_LOCK.lock().map_err(|_| Error::backend("pkcs11", "rig", "rig lock poisoned"))?;
    if !conf.is_file() {
        let dir = conf.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
        let tokens = dir.join("tokens");
        std::fs::create_dir_all(&tokens).map_err(|e| {
            Error::invalid(InvalidReason::Parameter, format!("cannot create {}: {e}", tokens.display()))
        })?;
        let text = format!(
            "# written by the hsmkit test rig\ndirectories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            tokens.display()
        );
        // Write then rename, so a concurrent test process never reads half a file.
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".softhsm2.conf.{}.{n}", std::process::id()));
        std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &conf)).map_err(|e| {
            Error::invalid(InvalidReason::Parameter, format!("cannot write {}: {e}", conf.display()))
        })?;
    }
    Ok(conf)
}

/// A fresh SoftHSM2 token, deleted on drop.
pub struct SoftHsmToken {
    label: String,
    module: PathBuf,
    uri: String,
    pin: zeroize::Zeroizing<String>,
}

/// The user PIN of rig tokens.
pub const USER_PIN: &str = "1234";
/// The security officer PIN of rig tokens.
pub const SO_PIN: &str = "5678";

impl std::fmt::Debug for SoftHsmToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URI carries the PIN: neither is shown.
        f.debug_struct("SoftHsmToken")
            .field("label", &self.label)
            .field("module", &self.module)
            .finish_non_exhaustive()
    }
}

impl SoftHsmToken {
    /// Creates a new, empty, initialised token with user PIN [`USER_PIN`].
    pub fn new() -> Result<Self> {
        Self::with_user_pin(USER_PIN)
    }

    /// Creates a new, empty, initialised token with the user PIN `pin` (in its URI too).
    pub fn with_user_pin(pin: &str) -> Result<Self> {
        ensure_config()?;
        let module = softhsm_module()?;
        let ctx = context(&module)?;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let label = format!("hsmkit-{}-{n}", std::process::id());
        {
            // Also keeps two threads from initialising the same free slot.
            let _guard =
                SLOT_LOCK.lock().map_err(|_| Error::backend("pkcs11", "rig", "rig lock poisoned"))?;
            let free = ctx
                .get_all_slots()
                .map_err(map)?
                .into_iter()
                .find(|s| ctx.get_token_info(*s).is_ok_and(|t| !t.token_initialized()))
                .ok_or_else(|| Error::backend("pkcs11", "C_GetSlotList", "SoftHSM2 offers no free slot"))?;
            let so = AuthPin::new(SO_PIN.into());
            ctx.init_token(free, &so, &label).map_err(map)?;
            let s = ctx.open_rw_session(free).map_err(map)?;
            s.login(UserType::So, Some(&so)).map_err(map)?;
            s.init_pin(&AuthPin::new(pin.into())).map_err(map)?;
            s.logout().map_err(map)?;
        }
        let uri = format!("pkcs11:token={label}?module-path={}&pin-value={pin}", module.display());
        Ok(SoftHsmToken { label, module, uri, pin: zeroize::Zeroizing::new(pin.to_owned()) })
    }

    /// The token's PKCS#11 URI, with the module path and PIN.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The token label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The SoftHSM2 module path.
    pub fn module(&self) -> &Path {
        &self.module
    }

    /// A raw, logged-in read-write session on this token, on the process-wide context
    /// hsmkit uses (a second context for the same module could finalise it).
    pub fn raw_session(&self) -> Result<cryptoki::session::Session> {
        let ctx = context(&self.module)?;
        let scan = SLOT_LOCK.lock().map_err(|_| Error::backend("pkcs11", "rig", "rig lock poisoned"))?;
        let slot = ctx
            .get_slots_with_token()
            .map_err(map)?
            .into_iter()
            .find(|s| ctx.get_token_info(*s).is_ok_and(|t| t.label().trim_end() == self.label))
            .ok_or_else(|| Error::NotFound { what: format!("token {}", self.label) })?;
        drop(scan);
        let s = ctx.open_rw_session(slot).map_err(map)?;
        match s.login(UserType::User, Some(&AuthPin::new(self.pin.as_str().into()))) {
            Ok(())
            | Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::UserAlreadyLoggedIn, _)) => Ok(s),
            Err(e) => Err(map(e)),
        }
    }

    /// The process-wide context for this token's module.
    pub fn context(&self) -> Result<cryptoki::context::Pkcs11> {
        context(&self.module)
    }

    /// A backend on this token.
    pub fn backend(&self) -> Result<Pkcs11Backend> {
        Pkcs11Backend::open(&self.uri)
    }

    /// A store on this token.
    pub fn store(&self) -> Result<Store> {
        Ok(Store::new(self.backend()?))
    }

    /// A store that owns the token: the token is deleted when the last clone of the
    /// store drops.
    pub fn into_store(self) -> Result<Store> {
        let uri = self.uri.clone();
        self.into_store_at(&uri)
    }

    /// [`into_store`](Self::into_store) through another URI for this token: another
    /// module in front of it (a fault-injection shim), other query attributes.
    pub fn into_store_at(self, uri: &str) -> Result<Store> {
        let backend = Pkcs11Backend::open(uri)?;
        Ok(Store::new(OwningBackend { backend, _token: self }))
    }
}

/// A backend that keeps its throw-away token alive (see [`SoftHsmToken::into_store`]).
#[derive(Debug)]
struct OwningBackend {
    backend: Pkcs11Backend,
    _token: SoftHsmToken,
}

impl hsmkit::Backend for OwningBackend {
    fn kind(&self) -> &'static str {
        self.backend.kind()
    }
    fn crypto(&self) -> &'static dyn hsmkit::CryptoProvider {
        self.backend.crypto()
    }
    fn capabilities(&self) -> hsmkit::Capabilities {
        self.backend.capabilities()
    }
    fn metadata(&self) -> std::sync::Arc<dyn hsmkit::MetadataStore> {
        self.backend.metadata()
    }
    fn generate(
        &self,
        req: &hsmkit::NewKey<'_>,
        spec: hsmkit::KeySpec,
    ) -> Result<Box<dyn hsmkit::BackendKey>> {
        self.backend.generate(req, spec)
    }
    fn import(
        &self,
        req: &hsmkit::NewKey<'_>,
        m: hsmkit::KeyMaterial,
    ) -> Result<Box<dyn hsmkit::BackendKey>> {
        self.backend.import(req, m)
    }
    fn open(&self, info: &hsmkit::KeyInfo) -> Result<Box<dyn hsmkit::BackendKey>> {
        self.backend.open(info)
    }
    fn destroy(&self, info: &hsmkit::KeyInfo) -> Result<()> {
        self.backend.destroy(info)
    }
    fn apply_attributes(&self, info: &hsmkit::KeyInfo) -> Result<()> {
        self.backend.apply_attributes(info)
    }
    fn unmanaged(&self, name: &str) -> Result<Option<hsmkit::KeyInfo>> {
        self.backend.unmanaged(name)
    }
}

impl Drop for SoftHsmToken {
    fn drop(&mut self) {
        // softhsm2-util removes the token's directory; this process does not use the
        // token again (its label is unique).
        let r = Command::new("softhsm2-util").args(["--delete-token", "--token", &self.label]).output();
        match r {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                tracing::warn!(target: "hsmkit::pkcs11", token = %self.label, "could not delete test token: {}", String::from_utf8_lossy(&o.stderr))
            }
            Err(e) => {
                tracing::warn!(target: "hsmkit::pkcs11", token = %self.label, "could not run softhsm2-util: {e}")
            }
        }
    }
}
