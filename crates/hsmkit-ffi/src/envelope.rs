//! Envelopes: one-shot, streaming through callbacks, and files.

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void};
use std::io::{self, Read, Write};
use std::path::Path;

use hsmkit::envelope::{
    EncryptionContext, MAX_RECIPIENTS, MAX_WRAPPED_LEN, RewrapMode, Rewrapper, Sealer, Suite,
};

use crate::ffi::{OutBuf, bytes, cstr, free_handle, handle, out_ptr, put_handle, put_opt};
use crate::result::{Fail, guard, hsmkit_result};
use crate::store::hsmkit_store;

/// One entry of an encryption context (AAD): both NUL-terminated UTF-8.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct hsmkit_context_entry {
    /// The key (1 to 256 bytes).
    pub key: *const c_char,
    /// The value.
    pub value: *const c_char,
}

/// Reads up to `len` bytes into `buf`, setting `*n` (0 at the end of the input). Returns
/// 0, or non-zero for an error (the call then fails with `HSMKIT_ERR_CALLBACK`).
pub type hsmkit_read_callback =
    Option<unsafe extern "C" fn(userdata: *mut c_void, buf: *mut u8, len: usize, n: *mut usize) -> c_int>;

/// Writes all `len` bytes of `buf`. Returns 0, or non-zero for an error.
pub type hsmkit_write_callback =
    Option<unsafe extern "C" fn(userdata: *mut c_void, buf: *const u8, len: usize) -> c_int>;

/// A sealer: recipients (KEKs), a context and a chunk size, for many messages.
/// Thread-safe.
pub struct hsmkit_sealer {
    sealer: Sealer,
}

/// # Safety
/// `entries` is NULL with `len` 0, or points to `len` entries of C strings.
unsafe fn context(entries: *const hsmkit_context_entry, len: usize) -> Result<EncryptionContext, Fail> {
    let mut ctx = EncryptionContext::new();
    if entries.is_null() {
        return if len == 0 { Ok(ctx) } else { Err(Fail::null("context")) };
    }
    if isize::try_from(len.saturating_mul(size_of::<hsmkit_context_entry>())).is_err() {
        return Err(Fail::invalid("context: length too large"));
    }
    // SAFETY: non-NULL, the size fits isize, and the caller guarantees `len` entries.
    let entries = unsafe { std::slice::from_raw_parts(entries, len) };
    for e in entries {
        // SAFETY: the caller's contract.
        let k = unsafe { cstr(e.key, "context key") }?;
        // SAFETY: as above.
        let v = unsafe { cstr(e.value, "context value") }?;
        if ctx.insert(k.to_owned(), v.to_owned()).is_some() {
            return Err(Fail::invalid(format!("context key '{k}' given twice")));
        }
    }
    Ok(ctx)
}

/// The KEK names of a `keks`/`kek_count` pair: 1 to `MAX_RECIPIENTS` C strings.
///
/// # Safety
/// `keks` is NULL or points to `kek_count` C strings.
unsafe fn kek_names<'a>(keks: *const *const c_char, kek_count: usize) -> Result<Vec<&'a str>, Fail> {
    if keks.is_null() || kek_count == 0 {
        return Err(Fail::invalid("at least one key-encryption key is needed"));
    }
    if kek_count > MAX_RECIPIENTS {
        return Err(Fail::invalid("too many key-encryption keys"));
    }
    // SAFETY: non-NULL, a small count (checked), and the caller guarantees the array.
    let names = unsafe { std::slice::from_raw_parts(keks, kek_count) };
    names
        .iter()
        // SAFETY: each entry is a C string (the caller's contract).
        .map(|n| unsafe { cstr(*n, "keks[i]") })
        .collect()
}

/// Builds a sealer for the KEKs named in `keks` (their current versions; AES keys wrap
/// with A*n*KW, RSA keys with RSA-OAEP-256, or RSA-OAEP where the token lacks it), the
/// context `context` (NULL, 0 for none) and `chunk_size` (0: 64 KiB).
///
/// # Safety
/// `store` is live; `keks` points to `kek_count` C strings; `context` as above; `out` is
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_sealer_new(
    store: *const hsmkit_store,
    keks: *const *const c_char,
    kek_count: usize,
    context: *const hsmkit_context_entry,
    context_len: usize,
    chunk_size: u32,
    out: *mut *mut hsmkit_sealer,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let s = unsafe { handle(store, "store") }?;
        // SAFETY: the caller's contract.
        let names = unsafe { kek_names(keks, kek_count) }?;
        // SAFETY: the caller's contract.
        let ctx = unsafe { self::context(context, context_len) }?;
        out_ptr(out, "out")?;
        let mut sealer = s.store.sealer(&names)?.with_context(ctx)?;
        if chunk_size != 0 {
            sealer = sealer.with_chunk_size(chunk_size)?;
        }
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { put_handle(out, hsmkit_sealer { sealer }) };
        Ok(())
    })
}

/// A copy of `sealer` that writes envelopes of suite `suite` (docs/envelope-format.md:
/// 1 = HKDF-SHA-512, for readers older than suite 2; 2 = HKDF-SHA-256, the default) into
/// `*out`; free both. An unknown suite is `HSMKIT_INVALID_INPUT`.
///
/// # Safety
/// `sealer` is live; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_sealer_with_suite(
    sealer: *const hsmkit_sealer,
    suite: u8,
    out: *mut *mut hsmkit_sealer,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let s = unsafe { handle(sealer, "sealer") }?;
        out_ptr(out, "out")?;
        let sealer = s.sealer.clone().with_suite(Suite::try_from(suite)?);
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { put_handle(out, hsmkit_sealer { sealer }) };
        Ok(())
    })
}

/// Frees a sealer. NULL is a no-op.
///
/// # Safety
/// `sealer` is NULL or from `hsmkit_sealer_new`, not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_sealer_free(sealer: *mut hsmkit_sealer) {
    // SAFETY: the caller's contract.
    unsafe { free_handle(sealer) }
}

/// Seals `data` into one envelope. Sizing (`buf` NULL) gives the exact length and wraps
/// nothing.
///
/// # Safety
/// `sealer` is live; `data` has `len` bytes; `buf`/`cap`/`written` as in the conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_sealer_seal(
    sealer: *const hsmkit_sealer,
    data: *const u8,
    len: usize,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let s = unsafe { handle(sealer, "sealer") }?;
        // SAFETY: as above.
        let data = unsafe { bytes(data, len, "data") }?;
        // SAFETY: as above.
        let out = unsafe { OutBuf::new(buf, cap, written) }?;
        let n = s.sealer.sealed_len(data.len())?;
        if out.sizing() {
            return out.report(n);
        }
        // Before sealing, so no wrap is spent on a buffer that cannot take it.
        out.check_fits(n)?;
        out.put(&s.sealer.seal(data)?)
    })
}

/// C callbacks as `Read`/`Write`, remembering whether a callback (rather than hsmkit)
/// failed.
struct Callbacks {
    read: hsmkit_read_callback,
    write: hsmkit_write_callback,
    userdata: *mut c_void,
    failed: Cell<bool>,
}

impl Callbacks {
    fn fail(&self, what: &str) -> io::Error {
        self.failed.set(true);
        io::Error::other(format!("the {what} callback reported an error"))
    }

    /// The result of a streaming call: a callback failure wins over the error it caused.
    fn finish(&self, r: hsmkit::Result<u64>, n: *mut u64) -> Result<(), Fail> {
        if self.failed.get() {
            return Err(Fail::new(hsmkit_result::HSMKIT_ERR_CALLBACK, "a callback reported an error"));
        }
        let total = r?;
        // SAFETY: NULL or writable (the caller's contract).
        unsafe { put_opt(n, total) };
        Ok(())
    }
}

impl Read for &Callbacks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(cb) = self.read else { return Err(self.fail("read")) };
        let mut n = 0usize;
        // SAFETY: `buf` is valid for `buf.len()` writable bytes and `n` is a local; the C
        // function's own contract is the caller's.
        let rc = unsafe { cb(self.userdata, buf.as_mut_ptr(), buf.len(), &mut n) };
        if rc != 0 || n > buf.len() {
            return Err(self.fail("read"));
        }
        Ok(n)
    }
}

impl Write for &Callbacks {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(cb) = self.write else { return Err(self.fail("write")) };
        // SAFETY: `buf` is valid for `buf.len()` readable bytes.
        if unsafe { cb(self.userdata, buf.as_ptr(), buf.len()) } != 0 {
            return Err(self.fail("write"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn callbacks(
    read: hsmkit_read_callback,
    write: hsmkit_write_callback,
    userdata: *mut c_void,
) -> Result<Callbacks, Fail> {
    if read.is_none() {
        return Err(Fail::null("read"));
    }
    if write.is_none() {
        return Err(Fail::null("write"));
    }
    Ok(Callbacks { read, write, userdata, failed: Cell::new(false) })
}

/// Seals everything `read` gives into `write`, in constant memory. `*plaintext_len` (if
/// not NULL) is set to the number of bytes sealed. On failure the output written so far
/// is not an envelope; discard it.
///
/// # Safety
/// `sealer` is live; the callbacks are valid functions that may be called with
/// `userdata`; `plaintext_len` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_sealer_seal_stream(
    sealer: *const hsmkit_sealer,
    read: hsmkit_read_callback,
    write: hsmkit_write_callback,
    userdata: *mut c_void,
    plaintext_len: *mut u64,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let s = unsafe { handle(sealer, "sealer") }?;
        let cb = callbacks(read, write, userdata)?;
        let r = s.sealer.seal_stream(&cb, &cb);
        cb.finish(r, plaintext_len)
    })
}

/// # Safety
/// `p` is a C string.
unsafe fn path<'a>(p: *const c_char, arg: &str) -> Result<&'a Path, Fail> {
    // SAFETY: forwarded contract.
    unsafe { cstr(p, arg) }.map(Path::new)
}

/// Seals the file `src` into `dst` (written to a temporary file, renamed when complete).
///
/// # Safety
/// `sealer` is live; `src`, `dst` are C strings; `plaintext_len` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_sealer_seal_file(
    sealer: *const hsmkit_sealer,
    src: *const c_char,
    dst: *const c_char,
    plaintext_len: *mut u64,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let s = unsafe { handle(sealer, "sealer") }?;
        // SAFETY: as above.
        let (src, dst) = unsafe { (path(src, "src")?, path(dst, "dst")?) };
        let n = s.sealer.seal_file(src, dst)?;
        // SAFETY: NULL or writable (the caller's contract).
        unsafe { put_opt(plaintext_len, n) };
        Ok(())
    })
}

/// Opens an envelope with whichever of its KEKs the store holds; `context` must equal the
/// sealing context. Sizing gives an upper bound (the envelope's length). Every failure
/// to authenticate is `HSMKIT_ERR_DECRYPTION_FAILED`.
///
/// # Safety
/// `store` is live; `context` points to `context_len` entries (or NULL, 0); `envelope` has
/// `len` bytes; `buf`/`cap`/`written` as in the conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_unseal(
    store: *const hsmkit_store,
    context: *const hsmkit_context_entry,
    context_len: usize,
    envelope: *const u8,
    len: usize,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let s = unsafe { handle(store, "store") }?;
        // SAFETY: as above.
        let ctx = unsafe { self::context(context, context_len) }?;
        // SAFETY: as above.
        let env = unsafe { bytes(envelope, len, "envelope") }?;
        // SAFETY: as above.
        let out = unsafe { OutBuf::new(buf, cap, written) }?;
        if out.sizing() {
            return out.report(env.len());
        }
        out.put(&s.store.opener().with_context(ctx).open(env)?)
    })
}

/// Opens an envelope from `read` into `write`, in constant memory. Chunks are written as
/// they verify: on failure, discard what was written.
///
/// # Safety
/// As `hsmkit_sealer_seal_stream`, with a live `store` and `context` as in
/// `hsmkit_store_unseal`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_unseal_stream(
    store: *const hsmkit_store,
    context: *const hsmkit_context_entry,
    context_len: usize,
    read: hsmkit_read_callback,
    write: hsmkit_write_callback,
    userdata: *mut c_void,
    plaintext_len: *mut u64,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let s = unsafe { handle(store, "store") }?;
        // SAFETY: as above.
        let ctx = unsafe { self::context(context, context_len) }?;
        let cb = callbacks(read, write, userdata)?;
        let r = s.store.opener().with_context(ctx).open_stream(&cb, &cb);
        cb.finish(r, plaintext_len)
    })
}

/// Opens the envelope file `src` into `dst`; `dst` appears only when every chunk verified.
///
/// # Safety
/// `store` is live; `context` as in `hsmkit_store_unseal`; `src`, `dst` are C strings;
/// `plaintext_len` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_unseal_file(
    store: *const hsmkit_store,
    context: *const hsmkit_context_entry,
    context_len: usize,
    src: *const c_char,
    dst: *const c_char,
    plaintext_len: *mut u64,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let s = unsafe { handle(store, "store") }?;
        // SAFETY: as above.
        let ctx = unsafe { self::context(context, context_len) }?;
        // SAFETY: as above.
        let (src, dst) = unsafe { (path(src, "src")?, path(dst, "dst")?) };
        let n = s.store.opener().with_context(ctx).open_file(src, dst)?;
        // SAFETY: NULL or writable (the caller's contract).
        unsafe { put_opt(plaintext_len, n) };
        Ok(())
    })
}

/// `hsmkit_store_rewrap` mode: the new recipients replace all the old ones (after a KEK
/// rotation, so that the old version can be disabled).
pub const HSMKIT_REWRAP_REPLACE: u32 = 0;
/// `hsmkit_store_rewrap` mode: the new recipients are added to the old ones.
pub const HSMKIT_REWRAP_ADD: u32 = 1;

/// A rewrap mode from C: any other number is `HSMKIT_ERR_INVALID_INPUT`.
fn rewrap_mode(mode: u32) -> Result<RewrapMode, Fail> {
    match mode {
        HSMKIT_REWRAP_REPLACE => Ok(RewrapMode::Replace),
        HSMKIT_REWRAP_ADD => Ok(RewrapMode::Add),
        m => Err(Fail::invalid(format!(
            "unknown rewrap mode {m} (HSMKIT_REWRAP_REPLACE or HSMKIT_REWRAP_ADD)"
        ))),
    }
}

/// The arguments every rewrap takes, checked, and the store's rewrapper.
///
/// # Safety
/// As `hsmkit_store_rewrap`.
unsafe fn rewrapper<'a>(
    store: *const hsmkit_store,
    keks: *const *const c_char,
    kek_count: usize,
    mode: u32,
    context: *const hsmkit_context_entry,
    context_len: usize,
) -> Result<(Rewrapper<'a>, Vec<&'a str>), Fail> {
    // SAFETY: the caller's contract.
    let s: &'a hsmkit_store = unsafe { handle(store, "store") }?;
    // SAFETY: as above.
    let names = unsafe { kek_names(keks, kek_count) }?;
    let mode = rewrap_mode(mode)?;
    // SAFETY: as above.
    let ctx = unsafe { self::context(context, context_len) }?;
    let rewrapper = Rewrapper::new(&s.store, s.store.recipients(&names)?, mode)?.with_context(ctx);
    Ok((rewrapper, names))
}

/// Rewraps an envelope for new recipients without touching its body: the data key is
/// unwrapped with whichever of the envelope's KEKs the store holds and wrapped for the
/// current versions of the KEKs named in `keks` (as `hsmkit_sealer_new`). `mode` is
/// `HSMKIT_REWRAP_REPLACE` (the new recipients replace the old ones, e.g. after a rotation,
/// so that the old version can be disabled) or `HSMKIT_REWRAP_ADD` (they are added).
/// `context` must equal the sealing context, as for `hsmkit_store_unseal`: a wrong or
/// missing context fails with `HSMKIT_ERR_DECRYPTION_FAILED`, like a wrong key. Sizing
/// (`buf` NULL) gives an upper bound and unwraps nothing.
///
/// # Safety
/// `store` is live; `keks` points to `kek_count` C strings; `context` points to
/// `context_len` entries (or NULL, 0); `envelope` has `len` bytes; `buf`/`cap`/`written`
/// as in the conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_rewrap(
    store: *const hsmkit_store,
    keks: *const *const c_char,
    kek_count: usize,
    mode: u32,
    context: *const hsmkit_context_entry,
    context_len: usize,
    envelope: *const u8,
    len: usize,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (rewrapper, names) = unsafe { rewrapper(store, keks, kek_count, mode, context, context_len) }?;
        // SAFETY: as above.
        let env = unsafe { bytes(envelope, len, "envelope") }?;
        // SAFETY: as above.
        let out = unsafe { OutBuf::new(buf, cap, written) }?;
        if out.sizing() {
            // The body is copied and the header keeps its other fields; with `Add` the old
            // recipients stay. Each new recipient entry is a length byte, the name, a 4-byte
            // version, an algorithm byte, a 2-byte length and at most MAX_WRAPPED_LEN bytes.
            let bound = names
                .iter()
                .try_fold(env.len(), |n, name| n.checked_add(name.len())?.checked_add(8 + MAX_WRAPPED_LEN))
                .ok_or_else(|| Fail::invalid("envelope: length too large"))?;
            return out.report(bound);
        }
        out.put(&rewrapper.rewrap(env)?)
    })
}

/// Rewraps the envelope file `src` into `dst` (which may be `src`), as
/// `hsmkit_store_rewrap`; `dst` appears (or is replaced) only when complete. `*body_len`
/// (if not NULL) is set to the length of the body, copied unchanged.
///
/// # Safety
/// As `hsmkit_store_rewrap` without the buffers; `src`, `dst` are C strings; `body_len`
/// is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_rewrap_file(
    store: *const hsmkit_store,
    keks: *const *const c_char,
    kek_count: usize,
    mode: u32,
    context: *const hsmkit_context_entry,
    context_len: usize,
    src: *const c_char,
    dst: *const c_char,
    body_len: *mut u64,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (rewrapper, _) = unsafe { rewrapper(store, keks, kek_count, mode, context, context_len) }?;
        // SAFETY: as above.
        let (src, dst) = unsafe { (path(src, "src")?, path(dst, "dst")?) };
        let n = rewrapper.rewrap_file(src, dst)?;
        // SAFETY: NULL or writable (the caller's contract).
        unsafe { put_opt(body_len, n) };
        Ok(())
    })
}
