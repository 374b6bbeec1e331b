//! A test rig: throw-away tpm2-pkcs11 tokens on a software TPM.
//!
//! ```no_run
//! # fn main() -> hsmkit::Result<()> {
//! let token = hsmkit_pkcs11::testing::Tpm2Token::new()?;
//! let store = token.store()?;            // an hsmkit::Store on a fresh, empty token
//! println!("{}", token.uri());           // pkcs11:token=...?module-path=...&pin-value=...
//! # Ok(()) }
//! ```
//!
//! # One software TPM per process
//!
//! `tests/tpm2/token.sh start DIR` starts swtpm, a private D-Bus session bus and
//! tpm2-abrmd (swtpm alone holds three transient objects, too few for tpm2-pkcs11), and
//! makes a tpm2-pkcs11 store in `DIR`. libtpm2_pkcs11 finds the store and the TPM through
//! environment variables (`TPM2_PKCS11_STORE`, `TPM2_PKCS11_TCTI`,
//! `DBUS_SESSION_BUS_ADDRESS`), read once, at `C_Initialize`, and a module is initialised
//! once per process. So all the tokens of a process live in one TPM, one store: the
//! first [`Tpm2Token::new`] starts it (or finds it), later calls add tokens to it.
//!
//! This crate forbids `unsafe` and `std::env::set_var` is unsafe, so the rig cannot give
//! its own process that environment. Two ways in:
//!
//! * The caller starts the token and exports what the script prints
//!   (`eval "$(tests/tpm2/token.sh start DIR | sed 's/^/export /')"`), then runs the tests:
//!   the rig sees `TPM2_PKCS11_STORE` and uses that instance (and never stops it).
//! * Without that environment, the first [`Tpm2Token::new`] starts the token in a
//!   temporary directory and runs **this same executable again**, with the same
//!   arguments, as a child that has the environment; when the child ends the rig stops
//!   the daemons, removes the directory and exits this process with the child's status.
//!   For a test binary that means `cargo test` just works: the child is the run you see.
//!   A watcher left by the script stops the daemons even if this process is killed.
//!
//! Each [`Tpm2Token::new`] initialises a fresh token (`C_InitToken` on the store's free
//! slot; tpm2-pkcs11 then offers a new free slot). tpm2-pkcs11 cannot delete a token, so
//! dropping a [`Tpm2Token`] leaves it: the tokens go with the store at the end. The module
//! holds one tpm2-abrmd connection per token of the store and abrmd allows 100, so a store
//! serves about 95 tokens in all: give a caller-started store to one test run only.
//! (Under a runner that starts a process per test, each process starts its own TPM, ~2 s.)
//!
//! Where the token cannot be started (packages missing and not installable, a daemon that
//! does not come up) [`Tpm2Token::new`] returns an error: tests do not skip.

use hsmkit::InvalidReason;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use hsmkit::{Error, Result, Store};

use super::{SO_PIN, USER_PIN};
use crate::Pkcs11Backend;
use crate::context::{SLOT_LOCK, context};
use crate::error::map;

const RIG: &str = "tpm2-rig";

/// Set in the child the rig re-runs, so that a child still without the environment fails
/// instead of re-running itself again.
const CHILD_MARK: &str = "HSMKIT_TPM2_RIG_CHILD";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The process-wide tpm2-pkcs11 instance, as found in the environment.
#[derive(Debug)]
struct Instance {
    module: PathBuf,
    store: PathBuf,
}

static INSTANCE: OnceLock<std::result::Result<Instance, String>> = OnceLock::new();

fn rig_error(msg: impl Into<String>) -> Error {
    Error::backend("pkcs11", RIG, msg)
}

/// The script, `HSMKIT_TPM2_SCRIPT` or `tests/tpm2/token.sh` in this repository.
fn script() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("HSMKIT_TPM2_SCRIPT") {
        return Ok(PathBuf::from(p));
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/tpm2/token.sh");
    if p.is_file() {
        Ok(p)
    } else {
        Err(Error::invalid(
            InvalidReason::Parameter,
            format!("{} not found: set HSMKIT_TPM2_SCRIPT to tests/tpm2/token.sh", p.display()),
        ))
    }
}

/// The module: `HSMKIT_TPM2_MODULE`, else the usual install paths.
fn module_path() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("HSMKIT_TPM2_MODULE") {
        return Ok(PathBuf::from(p));
    }
    [
        "/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so",
        "/usr/lib/aarch64-linux-gnu/pkcs11/libtpm2_pkcs11.so",
        "/usr/lib/x86_64-linux-gnu/libtpm2_pkcs11.so.1",
        "/usr/lib/aarch64-linux-gnu/libtpm2_pkcs11.so.1",
        "/usr/local/lib/libtpm2_pkcs11.so",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
    .ok_or_else(|| {
        Error::invalid(
            InvalidReason::Parameter,
            "libtpm2_pkcs11.so not found (apt-get install libtpm2-pkcs11-1)",
        )
    })
}

/// The instance this process's environment names, if any.
fn from_env() -> Option<Result<Instance>> {
    let store = PathBuf::from(std::env::var_os("TPM2_PKCS11_STORE")?);
    Some((|| {
        if !store.is_dir() {
            return Err(Error::invalid(
                InvalidReason::Parameter,
                format!("TPM2_PKCS11_STORE {} is not a directory", store.display()),
            ));
        }
        if std::env::var_os("TPM2_PKCS11_TCTI").is_none() {
            return Err(Error::invalid(
                InvalidReason::Parameter,
                "TPM2_PKCS11_STORE is set but TPM2_PKCS11_TCTI is not",
            ));
        }
        Ok(Instance { module: module_path()?, store })
    })())
}

/// Starts the token in a temporary directory, runs this executable again with its
/// environment, stops the token and exits with the child's status. Returns only on error.
fn run_self_with_token() -> Result<Instance> {
    if std::env::var_os(CHILD_MARK).is_some() {
        return Err(rig_error("re-run child has no TPM2_PKCS11_STORE: the environment did not reach it"));
    }
    let script = script()?;
    let dir = tempfile::Builder::new()
        .prefix("hsmkit-tpm2-")
        .tempdir()
        .map_err(|e| rig_error(format!("cannot make a temporary directory: {e}")))?;
    let out = Command::new("bash")
        .arg(&script)
        .arg("start")
        .arg(dir.path())
        .env("HSMKIT_TPM2_WATCH_PID", std::process::id().to_string())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| rig_error(format!("cannot run {}: {e}", script.display())))?;
    if !out.status.success() {
        return Err(rig_error(format!(
            "{} start failed ({}): {}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let vars: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    let exe = std::env::current_exe().map_err(|e| rig_error(format!("no current executable: {e}")))?;
    let status = Command::new(exe).args(std::env::args_os().skip(1)).envs(vars).env(CHILD_MARK, "1").status();
    let stop = Command::new("bash")
        .arg(&script)
        .arg("stop")
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    drop(dir);
    let status = status.map_err(|e| rig_error(format!("cannot re-run this executable: {e}")))?;
    if !stop.is_ok_and(|s| s.success()) {
        tracing::warn!(target: "hsmkit::pkcs11", "{} stop failed", script.display());
    }
    std::process::exit(status.code().unwrap_or(1));
}

fn instance() -> Result<&'static Instance> {
    INSTANCE
        .get_or_init(|| from_env().unwrap_or_else(run_self_with_token).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| rig_error(format!("no tpm2-pkcs11 token: {e}")))
}

/// A fresh token in the process's tpm2-pkcs11 store (see the notes at the top of `src/testing/tpm2.rs`).
pub struct Tpm2Token {
    label: String,
    uri: String,
    pin: zeroize::Zeroizing<String>,
    instance: &'static Instance,
}

impl std::fmt::Debug for Tpm2Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URI carries the PIN: neither is shown.
        f.debug_struct("Tpm2Token")
            .field("label", &self.label)
            .field("module", &self.instance.module)
            .field("store", &self.instance.store)
            .finish_non_exhaustive()
    }
}

impl Tpm2Token {
    /// Initialises a new, empty token with user PIN [`USER_PIN`] and SO PIN [`SO_PIN`],
    /// starting the process's software TPM first if need be (see the notes at the top of `src/testing/tpm2.rs`:
    /// without the environment, the first call re-runs this executable).
    pub fn new() -> Result<Self> {
        let instance = instance()?;
        let ctx = context(&instance.module)?;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let label = format!("hsmkit-{}-{n}", std::process::id());
        {
            let _guard = SLOT_LOCK.lock().map_err(|_| rig_error("rig lock poisoned"))?;
            let free = ctx
                .get_all_slots()
                .map_err(map)?
                .into_iter()
                .find(|s| ctx.get_token_info(*s).is_ok_and(|t| !t.token_initialized()))
                .ok_or_else(|| {
                    Error::backend("pkcs11", "C_GetSlotList", "tpm2-pkcs11 offers no free slot")
                })?;
            let so = AuthPin::new(SO_PIN.into());
            ctx.init_token(free, &so, &label).map_err(map)?;
            let s = ctx.open_rw_session(free).map_err(map)?;
            s.login(UserType::So, Some(&so)).map_err(map)?;
            s.init_pin(&AuthPin::new(USER_PIN.into())).map_err(map)?;
            s.logout().map_err(map)?;
        }
        let uri =
            format!("pkcs11:token={label}?module-path={}&pin-value={USER_PIN}", instance.module.display());
        Ok(Tpm2Token { label, uri, pin: zeroize::Zeroizing::new(USER_PIN.to_owned()), instance })
    }

    /// The token's PKCS#11 URI, with the module path and PIN.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The token label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The libtpm2_pkcs11 module path.
    pub fn module(&self) -> &Path {
        &self.instance.module
    }

    /// The tpm2-pkcs11 store directory (`TPM2_PKCS11_STORE`) all of the process's tokens
    /// live in.
    pub fn store_dir(&self) -> &Path {
        &self.instance.store
    }

    /// A raw, logged-in read-write session on this token, on the process-wide context.
    pub fn raw_session(&self) -> Result<cryptoki::session::Session> {
        let ctx = context(&self.instance.module)?;
        let scan = SLOT_LOCK.lock().map_err(|_| rig_error("rig lock poisoned"))?;
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

    /// The process-wide context for the module.
    pub fn context(&self) -> Result<cryptoki::context::Pkcs11> {
        context(&self.instance.module)
    }

    /// A backend on this token.
    pub fn backend(&self) -> Result<Pkcs11Backend> {
        Pkcs11Backend::open(&self.uri)
    }

    /// A store on this token.
    pub fn store(&self) -> Result<Store> {
        Ok(Store::new(self.backend()?))
    }

    /// A store on this token, consuming the handle (the token itself stays until the
    /// process's store goes: tpm2-pkcs11 cannot delete tokens).
    pub fn into_store(self) -> Result<Store> {
        self.store()
    }
}
