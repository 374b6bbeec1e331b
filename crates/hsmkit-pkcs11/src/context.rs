//! One PKCS#11 context per module per process, a token found by URI, pooled sessions,
//! login once, and one transparent reopen-login-retry when sessions are lost.

use std::cell::Cell;
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock, RwLockWriteGuard};

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
        return Err(Error::invalid(format!("PKCS#11 module {} does not exist", module.display())));
    }
    let ctx = Pkcs11::new(module)
        .map_err(|e| Error::invalid(format!("cannot load PKCS#11 module {}: {e}", module.display())))?;
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
    /// processes on this host agree on a file lock (`flock`) in the temp directory, one
    /// per token: exclusive for changes to token objects, shared for metadata reads.
    lock_path: PathBuf,
}

/// `hsmkit-pkcs11-<serial>-<label>.lock` in the temp directory, with any byte of the
/// label outside `[A-Za-z0-9_-]` hex-escaped, so every hsmkit build names it alike.
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

fn lock_path(serial: &str, label: &str) -> PathBuf {
    std::env::temp_dir().join(format!("hsmkit-pkcs11-{}-{}.lock", safe(serial), safe(label)))
}

/// A token's object lock and its id for [`WRITING`].
type ObjectLock = (Arc<RwLock<()>>, u64);

/// The object lock of each token (by serial and label) opened in this process.
fn object_lock(serial: &str, label: &str) -> ObjectLock {
    static LOCKS: OnceLock<Mutex<HashMap<(String, String), ObjectLock>>> = OnceLock::new();
    let mut map = LOCKS.get_or_init(Default::default).lock().unwrap_or_else(PoisonError::into_inner);
    map.entry((serial.to_owned(), label.to_owned()))
        .or_insert_with(|| (Arc::new(RwLock::new(())), NEXT_TOKEN_ID.fetch_add(1, Ordering::Relaxed)))
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
    // Dropped (closed, so unlocked) after the in-process lock is released.
    _host: Option<File>,
}

/// A shared hold on the host lock while reading metadata; see [`Token::read_guard`].
pub(crate) struct ReadGuard(#[allow(dead_code)] Option<File>);

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
        let scan_guard = SLOT_LOCK.lock().map_err(|_| poisoned())?;
        // Not get_slots_with_initialized_token: it fails as a whole if any one slot's
        // token info cannot be read.
        for slot in ctx.get_slots_with_token().map_err(map)? {
            if uri.slot_id.is_some_and(|id| id != slot.id()) {
                continue;
            }
            // A slot whose token vanished (removed, or deleted by another process) cannot
            // be the one asked for; skip it rather than fail the whole search.
            let Ok(info) = ctx.get_token_info(slot) else { continue };
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
        let (slot, label, serial) = match found.len() {
            1 => found.remove(0),
            0 => {
                return Err(Error::NotFound {
                    what: format!("PKCS#11 token matching {:?} in {}", uri.token, module.display()),
                });
            }
            n => {
                return Err(Error::invalid(format!(
                    "{n} tokens match the URI; add token=, serial= or slot-id="
                )));
            }
        };
        let (objects, id) = object_lock(&serial, &label);
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
        };
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

    fn drop_pool(&self) {
        if let Ok(mut pool) = self.pool.lock() {
            // Closing a session whose handle is already invalid just fails; that is fine.
            pool.clear();
        }
    }

    /// Takes the write side of the object lock for a change to token objects: every
    /// session this thread uses until the guard drops is inside it.
    pub(crate) fn write_guard(&self) -> WriteGuard<'_> {
        // Host lock first, then the process's: readers take them in the same order.
        let host = self.host_lock(true);
        // A poisoned lock guards no data: carry on.
        let guard = self.objects.write().unwrap_or_else(PoisonError::into_inner);
        let previous = WRITING.with(|w| w.replace(Some(self.id)));
        WriteGuard { previous, _guard: guard, _host: host }
    }

    /// Holds the host lock shared while metadata is read, so that another process's
    /// replace-the-document write is not seen half done. Not taken by the thread holding
    /// the write guard, nor on the operation path (which reads no metadata).
    pub(crate) fn read_guard(&self) -> ReadGuard {
        if WRITING.with(Cell::get) == Some(self.id) {
            return ReadGuard(None);
        }
        ReadGuard(self.host_lock(false))
    }

    /// Opens and locks the host lock file. Best effort: without a writable temp
    /// directory, processes fall back to the in-process lock alone.
    fn host_lock(&self, exclusive: bool) -> Option<File> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.lock_path)
            .or_else(|_| File::open(&self.lock_path));
        let file = match file {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!(target: "hsmkit::pkcs11", path = %self.lock_path.display(), error = %e, "no host lock file");
                return None;
            }
        };
        let locked = if exclusive { file.lock() } else { file.lock_shared() };
        locked.ok().map(|()| file)
    }

    /// Runs `f` on a session opened for it and closed after it, never a pooled one: for
    /// reading back what another session wrote, as a later process would see it.
    pub(crate) fn with_fresh_session<T, E: Into<OpError>>(
        &self,
        f: impl FnOnce(&Session) -> std::result::Result<T, E>,
    ) -> Result<T> {
        let s = self.new_session()?;
        f(&s).map_err(|e| match e.into() {
            OpError::Ck(e) => map(e),
            OpError::Hsm(e) => e,
        })
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
                    self.give_back(s);
                    return Err(finish(e));
                }
                tracing::debug!(target: "hsmkit::pkcs11", token = %self.label, "session or login lost; reopening and retrying once");
                drop(s);
                self.drop_pool();
                self.epoch.fetch_add(1, Ordering::AcqRel);
                let s = self.new_session()?;
                let r = f(&s).map_err(|e| finish(e.into()));
                self.give_back(s);
                r
            }
        }
    }
}
