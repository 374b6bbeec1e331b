//! One PKCS#11 context per module per process, a token found by URI, pooled sessions,
//! login once, and one transparent reopen-login-retry when sessions are lost.

use hsmkit::InvalidReason;
use std::cell::Cell;
use std::collections::HashMap;
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use hsmkit::{Error, Result};

use crate::error::{KIND, OpError, is_session_lost, map};
use crate::uri::Pkcs11Uri;

/// Initialising the same module twice (or in parallel) crashes some modules, so every
/// backend in the process shares one context per module path. Each context remembers the
/// process that initialised it: a forked child must initialise the module again
/// (PKCS#11 v2.40 section 6.7.7), which [`context`] does on the child's first use.
static CONTEXTS: OnceLock<Mutex<HashMap<PathBuf, (Pkcs11, u32)>>> = OnceLock::new();

/// Serialises slot-list scans with token initialisation within the process: SoftHSM2
/// 2.6.1 aborts (SlotManager::insertToken assertion) when `C_GetSlotList` rescans its
/// token directory while `C_InitToken` is creating a token in it.
pub(crate) static SLOT_LOCK: Mutex<()> = Mutex::new(());

fn poisoned() -> Error {
    Error::backend(KIND, "lock", "internal lock poisoned by a panic in another thread")
}

fn initialize(ctx: &Pkcs11) -> Result<()> {
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(()),
        Err(e) => Err(map(e)),
    }
}

/// The process-wide context for `module`, loading and initialising it on first use, and
/// initialising it again in a forked child (the parent's state copied into the child is
/// not usable: its sessions and login belong to the parent).
pub(crate) fn context(module: &Path) -> Result<Pkcs11> {
    let mut map_ = CONTEXTS.get_or_init(|| Mutex::new(HashMap::new())).lock().map_err(|_| poisoned())?;
    let pid = std::process::id();
    if let Some((ctx, owner)) = map_.get_mut(module) {
        if *owner != pid {
            // C_Finalize first: the module still believes it is initialised.
            let _ = ctx.clone().finalize();
            initialize(ctx)?;
            *owner = pid;
        }
        return Ok(ctx.clone());
    }
    if !module.is_file() {
        return Err(Error::invalid(
            InvalidReason::Parameter,
            format!("PKCS#11 module {} does not exist", module.display()),
        ));
    }
    let ctx = Pkcs11::new(module).map_err(|e| {
        Error::invalid(
            InvalidReason::Parameter,
            format!("cannot load PKCS#11 module {}: {e}", module.display()),
        )
    })?;
    initialize(&ctx)?;
    map_.insert(module.to_owned(), (ctx.clone(), pid));
    Ok(ctx)
}

/// An open token: its slot, PIN and a pool of logged-in sessions.
pub(crate) struct Token {
    pub(crate) ctx: Pkcs11,
    /// The slot the token was last seen in; tokens can move (re-initialised library,
    /// reinserted device), so it is looked up again by label and serial when it fails.
    slot: Mutex<Slot>,
    serial: String,
    pub(crate) label: String,
    pin: AuthPin,
    module: PathBuf,
    /// The process the pooled sessions belong to (see [`Token::take`]).
    pid: AtomicU32,
    /// Bumped whenever every session is rebuilt (lost sessions, a fork): object handles
    /// cached before may be stale, or name other objects after the module renumbers.
    epoch: AtomicU64,
    pool: Mutex<Vec<Session>>,
    /// Operations read the token under the read side; changes to token objects take the
    /// write side. SoftHSM2's file object store fails at random (CKR_GENERAL_ERROR,
    /// CKR_TEMPLATE_INCONSISTENT) when one thread writes token objects while another
    /// reads or writes them (softhsm/SoftHSMv2#573; Parsec serialises the same way).
    /// Writes are lifecycle changes, so rare; operations with keys stay parallel.
    /// Shared by every `Token` opened on the same token in this process.
    objects: Arc<RwLock<()>>,
    /// Identifies this token in [`WRITING`].
    id: u64,
    /// The host lock file: PKCS#11 has no lock another process respects, so hsmkit
    /// processes of one user on this host agree on a file lock (`flock`) in a private
    /// directory ([`lock_dir`]), one per token: exclusive for changes to token objects,
    /// shared for metadata reads.
    lock_path: PathBuf,
    /// Threads of this process queue here (unbounded, like the object lock) before
    /// trying the host lock, so the bounded wait for the host lock is a wait for other
    /// processes only. Shared like `objects`.
    host_gate: Arc<RwLock<()>>,
    /// Whether every call on the token is serialised in the process ([`Serial`]).
    serialise: bool,
}

/// Calls into modules that fail under concurrency, one at a time per process: held by a
/// thread for a whole [`Token::with_session`] (re-entrant through [`SERIAL_HELD`]).
///
/// tpm2-pkcs11 1.9.0 does: with eight threads on one token, `C_Sign` fails with
/// CKR_GENERAL_ERROR and OAEP decryptions come out wrong; with two tokens, concurrent
/// `C_CreateObject` fails ("cannot start a transaction within a transaction": one SQLite
/// handle for all tokens). hsmkit's keys are used from many threads, so it queues them.
static SERIAL: Mutex<()> = Mutex::new(());

thread_local! {
    /// This thread holds [`SERIAL`].
    static SERIAL_HELD: Cell<bool> = const { Cell::new(false) };
}

/// Holds [`SERIAL`] (or nothing, for modules that need no serialising).
struct Serial(Option<std::sync::MutexGuard<'static, ()>>);

impl Drop for Serial {
    fn drop(&mut self) {
        if self.0.is_some() {
            SERIAL_HELD.with(|h| h.set(false));
        }
    }
}

/// Whether the module is one whose calls must be serialised (see [`SERIAL`]): by its
/// library manufacturer, tpm2-pkcs11's "tpm2-software.github.io".
fn needs_serialising(ctx: &Pkcs11) -> bool {
    is_tpm2_pkcs11(ctx)
}

/// Whether the module is tpm2-pkcs11 (library manufacturer "tpm2-software.github.io"),
/// whose known defects hsmkit works around by name (serialised calls; metadata in a file).
pub(crate) fn is_tpm2_pkcs11(ctx: &Pkcs11) -> bool {
    ctx.get_library_info().is_ok_and(|i| i.manufacturer_id().trim_end().starts_with("tpm2-software"))
}

/// `s` with every byte outside `[A-Za-z0-9_-]` hex-escaped: safe in a file name.
fn safe(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                char::from(b).to_string()
            } else {
                format!("%{b:02x}")
            }
        })
        .collect()
}

/// The host lock of one token: `hsmkit-pkcs11-<serial>-<label>.lock` (any byte of the
/// serial or label outside `[A-Za-z0-9_-]` hex-escaped, so every hsmkit build names it
/// alike) in the per-user directory [`lock_dir`] names.
fn lock_path(serial: &str, label: &str) -> PathBuf {
    lock_dir().join(lock_file_name(serial, label))
}

/// The lock file's name in [`lock_dir`].
fn lock_file_name(serial: &str, label: &str) -> String {
    format!("hsmkit-pkcs11-{}-{}.lock", safe(serial), safe(label))
}

/// The directory of this user's host lock files: `$XDG_RUNTIME_DIR/hsmkit` when
/// `XDG_RUNTIME_DIR` is set to an absolute path of a directory owned by the effective
/// user, else `hsmkit-<euid>` in the temp directory. Only named here; [`private_dir`]
/// creates and checks it when a lock is taken. A directory per user means another user
/// can neither hold our lock nor plant files or links in it.
fn lock_dir() -> PathBuf {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let uid = rustix::process::geteuid().as_raw();
        let runtime = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|d| d.is_absolute())
            .filter(|d| std::fs::metadata(d).is_ok_and(|m| m.is_dir() && m.uid() == uid));
        match runtime {
            Some(d) => d.join("hsmkit"),
            None => std::env::temp_dir().join(format!("hsmkit-{uid}")),
        }
    }
    #[cfg(not(unix))]
    {
        std::env::temp_dir().join("hsmkit")
    }
}

/// The host lock could not be set up safely.
fn lock_refused(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::backend(KIND, "host lock", format!("refusing the token lock directory {}: {why}", path.display()))
}

/// Creates `dir` (mode 0700) if it is missing, and checks that it is a directory (not a
/// link to one) owned by the effective user with no access for group or others.
/// Anything else is refused with an error naming the directory, rather than used: a
/// directory another user made (or opened up) would let them hold or replace our locks.
#[cfg(unix)]
fn private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let uid = rustix::process::geteuid().as_raw();
    match std::fs::symlink_metadata(dir) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            match std::fs::DirBuilder::new().mode(0o700).create(dir) {
                // The umask may have taken bits off 0700; the directory is ours to fix.
                Ok(()) => std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                    .map_err(|e| lock_refused(dir, format_args!("cannot set its mode: {e}")))?,
                // Made by another process meanwhile: checked below like any other.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(lock_refused(dir, format_args!("cannot create it: {e}"))),
            }
        }
        Err(e) => return Err(lock_refused(dir, e)),
    }
    let m = std::fs::symlink_metadata(dir).map_err(|e| lock_refused(dir, e))?;
    if !m.file_type().is_dir() {
        return Err(lock_refused(dir, "it is not a directory (a symbolic link is not followed)"));
    }
    if m.uid() != uid {
        return Err(lock_refused(dir, format_args!("it is owned by uid {}, not {uid}", m.uid())));
    }
    if m.mode() & 0o077 != 0 {
        return Err(lock_refused(
            dir,
            format_args!(
                "its mode is {:o}; it must be 700 (no access for group or others)",
                m.mode() & 0o7777
            ),
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn private_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| lock_refused(dir, format_args!("cannot create it: {e}")))
}

/// Opens (creating, mode 0600) the lock file without following a symbolic link at its
/// path and without leaking it into child processes.
fn open_lock_file(path: &Path) -> std::io::Result<File> {
    let mut o = std::fs::OpenOptions::new();
    o.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use rustix::fs::OFlags;
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600).custom_flags((OFlags::NOFOLLOW | OFlags::CLOEXEC).bits().cast_signed());
    }
    o.open(path)
}

/// How long a lifecycle change or metadata read waits for another process's hold on
/// the host lock: `HSMKIT_LOCK_TIMEOUT_MS` milliseconds, else 30 seconds.
fn lock_timeout() -> Duration {
    std::env::var("HSMKIT_LOCK_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .map_or(Duration::from_secs(30), Duration::from_millis)
}

/// Takes `file`'s lock (exclusive or shared), trying again with short sleeps until
/// `timeout` has passed; then the error names the lock file.
fn lock_within(file: &File, path: &Path, exclusive: bool, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        let r = if exclusive { file.try_lock() } else { file.try_lock_shared() };
        match r {
            Ok(()) => return Ok(()),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => {
                return Err(Error::backend(
                    KIND,
                    "flock",
                    format!("cannot lock the token lock file {}: {e}", path.display()),
                ));
            }
        }
        let waited = start.elapsed();
        if waited >= timeout {
            return Err(Error::backend(
                KIND,
                "flock",
                format!(
                    "another process holds the token lock {} (gave up after {} ms; \
                     HSMKIT_LOCK_TIMEOUT_MS sets how long to wait)",
                    path.display(),
                    waited.as_millis()
                ),
            ));
        }
        std::thread::sleep(pause.min(timeout.saturating_sub(waited)));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// A token's object lock, its host-lock gate and its id for [`WRITING`].
type ObjectLock = (Arc<RwLock<()>>, Arc<RwLock<()>>, u64);

/// The object lock of each token (by serial and label) opened in this process.
fn object_lock(serial: &str, label: &str) -> ObjectLock {
    static LOCKS: OnceLock<Mutex<HashMap<(String, String), ObjectLock>>> = OnceLock::new();
    let mut map = LOCKS.get_or_init(Default::default).lock().unwrap_or_else(PoisonError::into_inner);
    map.entry((serial.to_owned(), label.to_owned()))
        .or_insert_with(|| {
            let id = NEXT_TOKEN_ID.fetch_add(1, Ordering::Relaxed);
            (Arc::new(RwLock::new(())), Arc::new(RwLock::new(())), id)
        })
        .clone()
}

thread_local! {
    /// The token whose write lock this thread holds, so its own sessions do not also
    /// ask for the read lock (the lock is not reentrant).
    static WRITING: Cell<Option<u64>> = const { Cell::new(None) };
}

static NEXT_TOKEN_ID: AtomicU64 = AtomicU64::new(1);

/// Held while changing token objects; see [`Token`]'s `objects`.
pub(crate) struct WriteGuard<'a> {
    previous: Option<u64>,
    _guard: RwLockWriteGuard<'a, ()>,
    // Dropped (closed, so unlocked) after the in-process lock is released, and before
    // the gate lets the next thread of this process try it.
    _host: File,
    _gate: RwLockWriteGuard<'a, ()>,
}

/// A shared hold on the host lock while reading metadata; see [`Token::read_guard`].
/// The file (so its lock) is released before the gate.
pub(crate) struct ReadGuard<'a>(#[allow(dead_code)] Option<(File, RwLockReadGuard<'a, ()>)>);

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        WRITING.with(|w| w.set(self.previous));
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("label", &self.label)
            .field("serial", &self.serial)
            .finish_non_exhaustive()
    }
}

/// A slot whose token info could not be read during the search for a token.
struct Unreadable {
    slot: u64,
    /// The mapped error's text.
    cause: String,
    /// Whether the module failed the call (a PKCS#11 return code), as opposed to
    /// answering with token info cryptoki cannot parse.
    call_failed: bool,
}

/// The error when no token matches `uri`, naming the slots in `unreadable`. If the
/// module answered for one of them with token info that cannot be parsed, the token may
/// well be that one: a backend error, not "not found" (which also earns the CLI's hint
/// about `key list`). Slots whose call failed (often a token deleted meanwhile) are only
/// named in the not-found message.
fn no_token(uri: &Pkcs11Uri, module: &Path, unreadable: &[Unreadable]) -> Error {
    let mut wanted = Vec::new();
    let attrs = [
        ("token", &uri.token),
        ("serial", &uri.serial),
        ("manufacturer", &uri.manufacturer),
        ("model", &uri.model),
    ];
    for (name, value) in attrs {
        if let Some(v) = value {
            wanted.push(format!("{name}={v:?}"));
        }
    }
    if let Some(id) = uri.slot_id {
        wanted.push(format!("slot-id={id}"));
    }
    let wanted = if wanted.is_empty() { "any initialised token".to_owned() } else { wanted.join(", ") };
    let what = format!("PKCS#11 token ({wanted}) in module {}", module.display());
    if unreadable.is_empty() {
        return Error::NotFound { what };
    }
    let slots: Vec<String> =
        unreadable.iter().map(|u| format!("slot {}: token info unreadable: {}", u.slot, u.cause)).collect();
    let slots = slots.join("; ");
    if unreadable.iter().all(|u| u.call_failed) {
        return Error::NotFound { what: format!("{what} (also: {slots})") };
    }
    Error::backend(KIND, "C_GetTokenInfo", format!("no readable token matches: {what}; {slots}"))
}

/// Whether `s` is still a valid session of a logged-in user.
fn logged_in(s: &Session) -> bool {
    use cryptoki::session::SessionState;
    s.get_session_info()
        .is_ok_and(|i| matches!(i.session_state(), SessionState::RwUser | SessionState::RoUser))
}

fn field(s: &str) -> &str {
    s.trim_end_matches([' ', '\0'])
}

impl Token {
    /// Finds the token the URI names and logs in once to check the PIN.
    pub(crate) fn open(uri: &Pkcs11Uri) -> Result<Self> {
        let module = uri.module()?;
        let pin = uri.pin()?;
        let ctx = context(&module)?;
        let mut found = Vec::new();
        let mut unreadable = Vec::new();
        let scan_guard = SLOT_LOCK.lock().map_err(|_| poisoned())?;
        // Not get_slots_with_initialized_token: it fails as a whole if any one slot's
        // token info cannot be read.
        for slot in ctx.get_slots_with_token().map_err(map)? {
            if uri.slot_id.is_some_and(|id| id != slot.id()) {
                continue;
            }
            // A slot whose token vanished (removed, or deleted by another process) cannot
            // be the one asked for: skipped. One whose token info cannot be read otherwise
            // might be: the search goes on, and the slot is named if nothing matches.
            let info = match ctx.get_token_info(slot) {
                Ok(info) => info,
                Err(CkError::Pkcs11(
                    RvError::TokenNotPresent | RvError::SlotIdInvalid | RvError::DeviceRemoved,
                    _,
                )) => continue,
                Err(e) => {
                    // A PKCS#11 error (SoftHSM2 answers CKR_GENERAL_ERROR for a token
                    // deleted under it) versus an answer cryptoki cannot parse (a
                    // non-standard utcTime with CKF_CLOCK_ON_TOKEN): the token is there.
                    let call_failed = matches!(e, CkError::Pkcs11(..));
                    unreadable.push(Unreadable { slot: slot.id(), cause: map(e).to_string(), call_failed });
                    continue;
                }
            };
            if !info.token_initialized() {
                continue;
            }
            let matches = |want: &Option<String>, have: &str| want.as_ref().is_none_or(|w| w == field(have));
            if matches(&uri.token, info.label())
                && matches(&uri.serial, info.serial_number())
                && matches(&uri.manufacturer, info.manufacturer_id())
                && matches(&uri.model, info.model())
            {
                found.push((slot, field(info.label()).to_owned(), field(info.serial_number()).to_owned()));
            }
        }
        drop(scan_guard);
        if !found.is_empty() {
            for u in &unreadable {
                tracing::debug!(target: "hsmkit::pkcs11", slot = u.slot, "token info unreadable: {}", u.cause);
            }
        }
        let (slot, label, serial) = match found.len() {
            1 => found.remove(0),
            0 => return Err(no_token(uri, &module, &unreadable)),
            n => {
                return Err(Error::invalid(
                    InvalidReason::Parameter,
                    format!("{n} tokens match the URI; add token=, serial= or slot-id="),
                ));
            }
        };
        let (objects, host_gate, id) = object_lock(&serial, &label);
        let lock_path = lock_path(&serial, &label);
        let token = Token {
            ctx,
            slot: Mutex::new(slot),
            serial,
            label,
            pin: AuthPin::new(pin.as_str().into()),
            module,
            pid: AtomicU32::new(std::process::id()),
            epoch: AtomicU64::new(0),
            pool: Mutex::new(Vec::new()),
            objects,
            id,
            lock_path,
            host_gate,
            serialise: false,
        };
        let token = Token { serialise: needs_serialising(&token.ctx), ..token };
        // Open (and log in) one session now, so a wrong PIN fails at open, not later.
        let s = token.new_session()?;
        token.give_back(s);
        Ok(token)
    }

    /// The session epoch: see the field.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The token's current slot.
    pub(crate) fn slot(&self) -> Result<Slot> {
        self.slot.lock().map(|g| *g).map_err(|_| poisoned())
    }

    /// Finds the token again by label and serial after its slot went away.
    fn relocate(&self) -> Result<Slot> {
        let _scan = SLOT_LOCK.lock().map_err(|_| poisoned())?;
        for slot in self.ctx.get_slots_with_token().map_err(map)? {
            let Ok(info) = self.ctx.get_token_info(slot) else { continue };
            if field(info.label()) == self.label && field(info.serial_number()) == self.serial {
                *self.slot.lock().map_err(|_| poisoned())? = slot;
                return Ok(slot);
            }
        }
        Err(Error::Backend(crate::error::backend_gone(&self.label)))
    }

    fn new_session(&self) -> Result<Session> {
        let s = match self.ctx.open_rw_session(self.slot()?) {
            Err(CkError::Pkcs11(
                RvError::SlotIdInvalid | RvError::TokenNotPresent | RvError::DeviceRemoved,
                _,
            )) => self.ctx.open_rw_session(self.relocate()?),
            r => r,
        }
        .map_err(map)?;
        match s.login(UserType::User, Some(&self.pin)) {
            // Login state is per token, shared by every session of the application.
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(s),
            Err(e) => Err(map(e)),
        }
    }

    fn take(&self) -> Result<Session> {
        let pid = std::process::id();
        if self.pid.load(Ordering::Acquire) != pid {
            self.after_fork(pid)?;
        }
        let pooled = self.pool.lock().map_err(|_| poisoned())?.pop();
        match pooled {
            Some(s) => Ok(s),
            None => self.new_session(),
        }
    }

    /// First use in a forked child: the pooled sessions are the parent's. They are
    /// forgotten, not closed: after the module is initialised again, their handle
    /// numbers may name the child's own new sessions.
    fn after_fork(&self, pid: u32) -> Result<()> {
        let mut pool = self.pool.lock().map_err(|_| poisoned())?;
        if self.pid.load(Ordering::Acquire) == pid {
            return Ok(()); // another thread of the child got here first
        }
        context(&self.module)?;
        pool.drain(..).for_each(std::mem::forget);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.pid.store(pid, Ordering::Release);
        Ok(())
    }

    fn give_back(&self, s: Session) {
        if let Ok(mut pool) = self.pool.lock() {
            pool.push(s);
        }
    }

    /// Returns a session to the pool after `e` only if `e` cannot have left an operation
    /// active on it. A token may leave an operation active when a call fails (some do
    /// after `C_Decrypt` fails), and a pooled session in that state would fail every
    /// later call with `CKR_OPERATION_ACTIVE`. So after a PKCS#11 error, or a backend
    /// error (possibly a PKCS#11 error mapped inside the closure), the session is closed
    /// instead, and the pool opens a new one on demand (the login is the application's,
    /// so it carries over). hsmkit's own refusals (not found, already exists, ...) keep
    /// it. Only failures pay for this; success returns the session as before.
    fn give_back_after(&self, s: Session, e: &OpError) {
        let clean = matches!(e, OpError::Hsm(h) if h.kind() != hsmkit::ErrorKind::Backend);
        if clean {
            self.give_back(s);
            return;
        }
        tracing::debug!(target: "hsmkit::pkcs11", token = %self.label, "closing a session after a failed call");
        // Closing the application's last session would end its login (PKCS#11 v2.40
        // C_CloseSession): with the pool empty, open the replacement first (best effort).
        // (`is_ok_and` consumes the pool guard before the new session is given back.)
        if self.pool.lock().is_ok_and(|p| p.is_empty())
            && let Ok(fresh) = self.new_session()
        {
            self.give_back(fresh);
        }
        drop(s);
    }

    fn drop_pool(&self) {
        if let Ok(mut pool) = self.pool.lock() {
            // Closing a session whose handle is already invalid just fails; that is fine.
            pool.clear();
        }
    }

    /// Takes the write side of the object lock for a change to token objects: every
    /// session this thread uses until the guard drops is inside it. Fails, rather than
    /// waits for ever, when another process holds the host lock longer than
    /// [`lock_timeout`], or when the lock directory is unsafe (see [`Token::host_lock`]).
    pub(crate) fn write_guard(&self) -> Result<WriteGuard<'_>> {
        // Gate, host lock, then the process's object lock: readers take them in the
        // same order. A poisoned lock guards no data: carry on.
        let gate = self.host_gate.write().unwrap_or_else(PoisonError::into_inner);
        let host = self.host_lock(true)?;
        let guard = self.objects.write().unwrap_or_else(PoisonError::into_inner);
        let previous = WRITING.with(|w| w.replace(Some(self.id)));
        Ok(WriteGuard { previous, _guard: guard, _host: host, _gate: gate })
    }

    /// Holds the host lock shared while metadata is read, so that another process's
    /// replace-the-document write is not seen half done. Not taken by the thread holding
    /// the write guard, nor on the operation path (which reads no metadata). Fails like
    /// [`Token::write_guard`].
    pub(crate) fn read_guard(&self) -> Result<ReadGuard<'_>> {
        if WRITING.with(Cell::get) == Some(self.id) {
            return Ok(ReadGuard(None));
        }
        let gate = self.host_gate.read().unwrap_or_else(PoisonError::into_inner);
        let host = self.host_lock(false)?;
        Ok(ReadGuard(Some((host, gate))))
    }

    /// Opens and locks the host lock file, waiting at most [`lock_timeout`] for other
    /// processes. Not best effort: an unsafe lock directory (a link, another owner, open
    /// to group or others), a link at the lock file's path, or a directory that cannot
    /// be made are typed errors naming the path, since going on without the host lock
    /// would let two processes change the token's metadata at once.
    fn host_lock(&self, exclusive: bool) -> Result<File> {
        let path = &self.lock_path;
        if let Some(dir) = path.parent() {
            private_dir(dir)?;
        }
        let file = open_lock_file(path).map_err(|e| {
            let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
            let why = if link { " (it is a symbolic link, which is not followed)" } else { "" };
            Error::backend(
                KIND,
                "host lock",
                format!("cannot open the token lock file {}: {e}{why}", path.display()),
            )
        })?;
        lock_within(&file, path, exclusive, lock_timeout())?;
        Ok(file)
    }

    /// Runs `f` on a session opened for it and closed after it, never a pooled one: for
    /// reading back what another session wrote, as a later process would see it.
    pub(crate) fn with_fresh_session<T, E: Into<OpError>>(
        &self,
        f: impl FnOnce(&Session) -> std::result::Result<T, E>,
    ) -> Result<T> {
        let _serial = self.serial();
        let s = self.new_session()?;
        f(&s).map_err(|e| match e.into() {
            OpError::Ck(e) => map(e),
            OpError::Hsm(e) => e,
        })
    }

    /// Takes [`SERIAL`] for this thread if the module needs it and the thread does not
    /// hold it already.
    fn serial(&self) -> Serial {
        if !self.serialise || SERIAL_HELD.with(Cell::get) {
            return Serial(None);
        }
        let g = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        SERIAL_HELD.with(|h| h.set(true));
        Serial(Some(g))
    }

    /// `<serial>-<label>`, with every byte outside `[A-Za-z0-9_-]` hex-escaped: a file
    /// name for things kept per token.
    pub(crate) fn file_stem(&self) -> String {
        format!("{}-{}", safe(&self.serial), safe(&self.label))
    }

    /// Runs `f` on a pooled session. If the session or the login was lost behind our
    /// back (`C_CloseAllSessions`, `C_Logout`, token reinsert), reopens, logs in and
    /// retries once.
    pub(crate) fn with_session<T, E: Into<OpError>>(
        &self,
        f: impl Fn(&Session) -> std::result::Result<T, E>,
    ) -> Result<T> {
        self.with_session_mapped(f, map)
    }

    /// [`Token::with_session`] for decrypt/unwrap: ciphertext errors become opaque.
    pub(crate) fn with_session_opaque<T, E: Into<OpError>>(
        &self,
        f: impl Fn(&Session) -> std::result::Result<T, E>,
    ) -> Result<T> {
        self.with_session_mapped(f, crate::error::map_opaque)
    }

    fn with_session_mapped<T, E: Into<OpError>>(
        &self,
        f: impl Fn(&Session) -> std::result::Result<T, E>,
        map: fn(CkError) -> Error,
    ) -> Result<T> {
        let finish = |e: OpError| match e {
            OpError::Ck(e) => map(e),
            OpError::Hsm(e) => e,
        };
        let _reading = if WRITING.with(Cell::get) == Some(self.id) {
            None
        } else {
            Some(self.objects.read().unwrap_or_else(PoisonError::into_inner))
        };
        // After the object lock, always: the one lock order.
        let _serial = self.serial();
        let s = self.take()?;
        match f(&s).map_err(Into::into) {
            Ok(v) => {
                self.give_back(s);
                Ok(v)
            }
            Err(e) => {
                // A failure may really be a lost session or login: a logged-out
                // application sees no private objects, so handles look stale and keys
                // look missing. Asked only on the failure path, so success costs nothing.
                let lost = matches!(&e, OpError::Ck(ck) if is_session_lost(ck)) || !logged_in(&s);
                if !lost {
                    self.give_back_after(s, &e);
                    return Err(finish(e));
                }
                tracing::debug!(target: "hsmkit::pkcs11", token = %self.label, "session or login lost; reopening and retrying once");
                drop(s);
                self.drop_pool();
                self.epoch.fetch_add(1, Ordering::AcqRel);
                let s = self.new_session()?;
                match f(&s).map_err(Into::into) {
                    Ok(v) => {
                        self.give_back(s);
                        Ok(v)
                    }
                    Err(e) => {
                        self.give_back_after(s, &e);
                        Err(finish(e))
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use cryptoki::context::Function;
    use cryptoki::mechanism::Mechanism;

    /// A call that fails with an operation still active (here: a digest begun and never
    /// finished, as a token that keeps a failed `C_Decrypt` active would leave it) must
    /// not hand that session to the next call, which would fail CKR_OPERATION_ACTIVE.
    #[test]
    fn a_failed_call_does_not_poison_the_pool() {
        let rig = crate::testing::SoftHsmToken::new().unwrap();
        let token = Token::open(&Pkcs11Uri::parse(rig.uri()).unwrap()).unwrap();
        let begin = |s: &Session| s.digest_init(&Mechanism::Sha256);
        let failed = token.with_session(|s| {
            begin(s)?;
            Err::<(), _>(CkError::Pkcs11(RvError::EncryptedDataInvalid, Function::Decrypt))
        });
        assert!(failed.is_err());
        // Every later call starts an operation on whatever session the pool hands out.
        for _ in 0..3 {
            token.with_session(|s| begin(s).and_then(|()| s.digest_final().map(drop))).unwrap();
        }
    }

    /// The same on the retry path: the first try looks like a lost session, the retry
    /// (on a fresh session) fails with an operation active.
    #[test]
    fn a_failed_retry_does_not_poison_the_pool() {
        let rig = crate::testing::SoftHsmToken::new().unwrap();
        let token = Token::open(&Pkcs11Uri::parse(rig.uri()).unwrap()).unwrap();
        let begin = |s: &Session| s.digest_init(&Mechanism::Sha256);
        let tries = Cell::new(0);
        let retried = token.with_session(|s| -> std::result::Result<(), CkError> {
            tries.set(tries.get() + 1);
            if tries.get() == 1 {
                return Err(CkError::Pkcs11(RvError::SessionHandleInvalid, Function::Sign));
            }
            begin(s)?;
            Err(CkError::Pkcs11(RvError::DataLenRange, Function::Digest))
        });
        assert!(retried.is_err());
        assert_eq!(tries.get(), 2, "the retry path ran");
        for _ in 0..3 {
            token.with_session(|s| begin(s).and_then(|()| s.digest_final().map(drop))).unwrap();
        }
    }

    /// hsmkit's own refusals leave no operation active: the session stays pooled. A
    /// failed PKCS#11 call's session is replaced, and the login outlives it.
    #[test]
    fn a_refusal_keeps_the_session() {
        use cryptoki::session::SessionState;
        let rig = crate::testing::SoftHsmToken::new().unwrap();
        let token = Token::open(&Pkcs11Uri::parse(rig.uri()).unwrap()).unwrap();
        let pooled = || token.pool.lock().unwrap().iter().map(Session::handle).collect::<Vec<_>>();
        let first = pooled();
        assert_eq!(first.len(), 1);
        let r = token.with_session(|_| Err::<(), _>(Error::NotFound { what: "x".into() }));
        assert!(r.is_err());
        assert_eq!(pooled(), first);
        let r =
            token.with_session(|_| Err::<(), _>(CkError::Pkcs11(RvError::DataLenRange, Function::Digest)));
        assert!(r.is_err());
        let now = pooled();
        assert_eq!(now.len(), 1);
        assert_ne!(now, first, "the session of a failed PKCS#11 call is closed, not pooled");
        let state = token.with_session(|s| s.get_session_info().map(|i| i.session_state())).unwrap();
        assert_eq!(state, SessionState::RwUser, "still logged in");
    }

    #[test]
    fn no_token_names_the_unreadable_slots() {
        let uri = Pkcs11Uri::parse("pkcs11:token=prod;serial=42").unwrap();
        let module = Path::new("/m.so");
        let e = no_token(&uri, module, &[]);
        assert_eq!(e.kind(), hsmkit::ErrorKind::NotFound);
        let text = e.to_string();
        assert!(
            text.contains("token=\"prod\"") && text.contains("serial=\"42\"") && text.contains("/m.so"),
            "{text}"
        );

        // A slot whose C_GetTokenInfo failed (SoftHSM2: a token deleted meanwhile) is
        // named, and the token is still not found.
        let failed = map(CkError::Pkcs11(RvError::GeneralError, Function::GetTokenInfo)).to_string();
        let gone = Unreadable { slot: 3, cause: failed.clone(), call_failed: true };
        let e = no_token(&uri, module, std::slice::from_ref(&gone));
        assert_eq!(e.kind(), hsmkit::ErrorKind::NotFound);
        assert!(e.to_string().contains(&format!("slot 3: token info unreadable: {failed}")), "{e}");

        // Token info cryptoki cannot parse: not "not found", the token may be that one
        // (and the CLI's not-found hint, about `key list`, would mislead).
        let bad_time = map(CkError::ParseInt("x".parse::<u8>().unwrap_err())).to_string();
        let e = no_token(
            &uri,
            module,
            &[gone, Unreadable { slot: 7, cause: bad_time.clone(), call_failed: false }],
        );
        assert_eq!(e.kind(), hsmkit::ErrorKind::Backend);
        let text = e.to_string();
        assert!(text.contains(&format!("slot 3: token info unreadable: {failed}")), "{text}");
        assert!(text.contains(&format!("slot 7: token info unreadable: {bad_time}")), "{text}");
        assert!(text.contains("token=\"prod\""), "{text}");
    }

    #[test]
    fn lock_file_names_escape_odd_bytes() {
        assert_eq!(lock_file_name("0a1b", "my token/x"), "hsmkit-pkcs11-0a1b-my%20token%2fx.lock");
    }
}
