//! Reading C arguments and writing C outputs: every pointer the C side hands in is
//! checked for NULL here, and every `unsafe` dereference of one is here or in a `_free`.
//!
//! Entry points start with the checks their arguments need, in argument order, before any
//! work: [`try_ref`] and its variants for the common shapes (a handle; a handle and a name;
//! either with a two-call output), [`OutHandle`] for a new handle.

use std::ffi::{CStr, c_char};

use serde_json::Value;

use crate::result::{Fail, hsmkit_result};

/// A `&str` from a NUL-terminated UTF-8 C string.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that stays valid and unchanged for
/// the call.
pub(crate) unsafe fn cstr<'a>(p: *const c_char, arg: &str) -> Result<&'a str, Fail> {
    if p.is_null() {
        return Err(Fail::null(arg));
    }
    // SAFETY: non-NULL, and the caller guarantees a NUL-terminated string.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str().map_err(|_| Fail::invalid(format!("{arg} is not UTF-8")))
}

/// Like [`cstr`], with NULL meaning "not given".
///
/// # Safety
/// As [`cstr`].
pub(crate) unsafe fn opt_cstr<'a>(p: *const c_char, arg: &str) -> Result<Option<&'a str>, Fail> {
    if p.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded contract.
        unsafe { cstr(p, arg) }.map(Some)
    }
}

/// `len` bytes at `p`; NULL is allowed only with `len == 0`.
///
/// # Safety
/// `p` is NULL or points to `len` readable bytes that stay valid and unchanged for the call.
pub(crate) unsafe fn bytes<'a>(p: *const u8, len: usize, arg: &str) -> Result<&'a [u8], Fail> {
    if p.is_null() {
        return if len == 0 { Ok(&[]) } else { Err(Fail::null(arg)) };
    }
    if isize::try_from(len).is_err() {
        return Err(Fail::invalid(format!("{arg}: length too large")));
    }
    // SAFETY: non-NULL, len fits isize, and the caller guarantees `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// The object behind a handle.
///
/// # Safety
/// `p` is NULL or a live handle of this type from hsmkit (not freed).
pub(crate) unsafe fn handle<'a, T>(p: *const T, arg: &str) -> Result<&'a T, Fail> {
    // SAFETY: the caller guarantees a live handle, which is an aligned, initialised T.
    unsafe { p.as_ref() }.ok_or_else(|| Fail::null(arg))
}

/// A handle type, as rustls-ffi's `Castable`: C holds a pointer to this struct (boxed by
/// [`OutHandle::put`]), which wraps the Rust object the entry points work on. Handles own
/// what they hold, hence `'static`.
pub(crate) trait Castable: 'static {
    /// The Rust object behind the handle.
    type RustType: 'static;
    /// The argument name a NULL handle is reported under (`"store is NULL"`).
    const ARG: &'static str;
    /// The Rust object.
    fn rust(&self) -> &Self::RustType;
}

/// The Rust object behind a handle argument (named `T::ARG`).
///
/// # Safety
/// As [`handle`].
pub(crate) unsafe fn try_ref<'a, T: Castable>(p: *const T) -> Result<&'a T::RustType, Fail> {
    // SAFETY: forwarded contract.
    unsafe { handle(p, T::ARG) }.map(T::rust)
}

/// A handle, then a two-call output.
///
/// # Safety
/// As [`handle`] for `p`, [`OutBuf::new`] for `buf`, `cap`, `written`.
pub(crate) unsafe fn try_ref_out<'a, T: Castable>(
    p: *const T,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> Result<(&'a T::RustType, OutBuf), Fail> {
    // SAFETY: forwarded contract (one each).
    unsafe { Ok((try_ref(p)?, OutBuf::new(buf, cap, written)?)) }
}

/// A handle, then the C string `name`.
///
/// # Safety
/// As [`handle`] for `p`, [`cstr`] for `name`.
pub(crate) unsafe fn try_ref_name<'a, T: Castable>(
    p: *const T,
    name: *const c_char,
) -> Result<(&'a T::RustType, &'a str), Fail> {
    // SAFETY: forwarded contract (one each).
    unsafe { Ok((try_ref(p)?, cstr(name, "name")?)) }
}

/// A handle, the C string `name`, then a two-call output.
///
/// # Safety
/// As [`try_ref_name`] and [`OutBuf::new`].
pub(crate) unsafe fn try_ref_name_out<'a, T: Castable>(
    p: *const T,
    name: *const c_char,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> Result<(&'a T::RustType, &'a str, OutBuf), Fail> {
    // SAFETY: forwarded contract (one each).
    unsafe {
        let (r, name) = try_ref_name(p, name)?;
        Ok((r, name, OutBuf::new(buf, cap, written)?))
    }
}

/// Checks an out-pointer before any work, so that nothing happens when it is NULL.
pub(crate) fn out_ptr<T>(p: *mut T, arg: &str) -> Result<(), Fail> {
    if p.is_null() { Err(Fail::null(arg)) } else { Ok(()) }
}

/// Stores `value` through an out-pointer checked by [`out_ptr`].
///
/// # Safety
/// `p` is non-NULL, aligned and writable for a `T`.
pub(crate) unsafe fn put<T>(p: *mut T, value: T) {
    // SAFETY: the caller guarantees a writable T; `write` drops nothing.
    unsafe { p.write(value) }
}

/// Stores `value` through an out-pointer that may be NULL (the caller does not want it).
///
/// # Safety
/// `p` is NULL, or aligned and writable for a `T`.
pub(crate) unsafe fn put_opt<T>(p: *mut T, value: T) {
    if !p.is_null() {
        // SAFETY: non-NULL, and writable by the caller's contract.
        unsafe { put(p, value) }
    }
}

/// Makes `value` a handle and stores it through an out-pointer checked by [`out_ptr`].
///
/// # Safety
/// `out` is non-NULL, aligned and writable.
pub(crate) unsafe fn put_handle<T>(out: *mut *mut T, value: T) {
    // SAFETY: forwarded contract.
    unsafe { put(out, Box::into_raw(Box::new(value))) }
}

/// An out-pointer for a new handle (argument `out`), checked before any work; the handle is
/// stored by [`OutHandle::put`], after the work.
pub(crate) struct OutHandle<T> {
    out: *mut *mut T,
}

impl<T> OutHandle<T> {
    /// # Safety
    /// `out` is NULL, or aligned and writable for a pointer.
    pub(crate) unsafe fn new(out: *mut *mut T) -> Result<Self, Fail> {
        out_ptr(out, "out")?;
        Ok(OutHandle { out })
    }

    /// Makes `value` a handle and stores it in `*out`.
    pub(crate) fn put(self, value: T) {
        // SAFETY: `out` was checked non-NULL in `new`, whose contract makes it writable.
        unsafe { put_handle(self.out, value) }
    }
}

/// Drops a handle made by [`put_handle`]; NULL is a no-op.
///
/// # Safety
/// `p` is NULL or a handle of this type from [`put_handle`], not yet freed.
pub(crate) unsafe fn free_handle<T>(p: *mut T) {
    if !p.is_null() {
        // SAFETY: a pointer from Box::into_raw, freed once (the caller's contract).
        drop(unsafe { Box::from_raw(p) });
    }
}

/// A variable-size output: `buf` of `cap` bytes and `*written`. With `buf` NULL the call
/// only reports a length (an upper bound); otherwise the result is written whole, or not at
/// all with `HSMKIT_ERR_BUFFER_TOO_SMALL` and the length needed in `*written`.
pub(crate) struct OutBuf {
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
}

impl OutBuf {
    /// # Safety
    /// `buf` is NULL or points to `cap` writable bytes; `written` is NULL or writable;
    /// neither overlaps the call's inputs.
    pub(crate) unsafe fn new(buf: *mut u8, cap: usize, written: *mut usize) -> Result<Self, Fail> {
        out_ptr(written, "written")?;
        Ok(OutBuf { buf, cap, written })
    }

    /// True when the caller asks for the length only.
    pub(crate) fn sizing(&self) -> bool {
        self.buf.is_null()
    }

    fn set_written(&self, n: usize) {
        // SAFETY: `written` was checked non-NULL in `new`, whose contract makes it writable.
        unsafe { put(self.written, n) }
    }

    /// Reports the length a later call needs.
    pub(crate) fn report(&self, n: usize) -> Result<(), Fail> {
        self.set_written(n);
        Ok(())
    }

    /// Writes `data`, or reports its length when sizing.
    pub(crate) fn put(&self, data: &[u8]) -> Result<(), Fail> {
        self.set_written(data.len());
        if self.sizing() {
            return Ok(());
        }
        self.check_fits(data.len())?;
        // SAFETY: `buf` is non-NULL (not sizing) with `cap >= data.len()` writable bytes that
        // do not overlap `data` (contract of `new`).
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.buf, data.len()) };
        Ok(())
    }

    /// Fails with `HSMKIT_ERR_BUFFER_TOO_SMALL` (and `*written = n`) unless `n` bytes fit.
    pub(crate) fn check_fits(&self, n: usize) -> Result<(), Fail> {
        if n > self.cap {
            self.set_written(n);
            return Err(Fail::new(
                hsmkit_result::HSMKIT_ERR_BUFFER_TOO_SMALL,
                format!("the output needs {n} bytes, the buffer has {}", self.cap),
            ));
        }
        Ok(())
    }

    /// Writes `text` and a terminating NUL (counted in `*written`).
    pub(crate) fn put_text(&self, text: &str) -> Result<(), Fail> {
        let mut v = zeroize::Zeroizing::new(Vec::with_capacity(text.len() + 1));
        v.extend_from_slice(text.as_bytes());
        v.push(0);
        self.put(&v)
    }

    /// Writes `lines`, each followed by `\n`, as text.
    pub(crate) fn put_lines(&self, lines: impl IntoIterator<Item = String>) -> Result<(), Fail> {
        self.put_text(&lines.into_iter().map(|l| l + "\n").collect::<String>())
    }

    /// Writes `value` as JSON text.
    pub(crate) fn put_json(&self, value: &Value) -> Result<(), Fail> {
        self.put_text(&value.to_string())
    }

    /// Writes a JSON array of `items`, each made by `f` (an `hsmkit::report` function).
    pub(crate) fn put_json_array<T>(&self, items: &[T], f: impl FnMut(&T) -> Value) -> Result<(), Fail> {
        self.put_json(&Value::Array(items.iter().map(f).collect()))
    }
}

#[cfg(test)]
mod tests {
    use std::ptr::{null, null_mut};

    use crate::result::{hsmkit_result::*, last_error};
    use crate::*;

    fn null_arg(r: hsmkit_result, message: &str) {
        assert_eq!((r, last_error().as_str()), (HSMKIT_ERR_NULL_ARGUMENT, message));
    }

    /// The shapes check their arguments in order and before any work: a NULL `written` or
    /// `out` is reported even for a secret that does not exist.
    #[test]
    fn arguments_are_checked_in_order_before_any_work() {
        let (mut store, mut n) = (null_mut(), 0usize);
        let missing = c"missing".as_ptr();
        // SAFETY: a C string, NULL options, a writable out pointer.
        assert_eq!(unsafe { hsmkit_store_open(c"memory:".as_ptr(), null(), &mut store) }, HSMKIT_OK);
        // SAFETY: NULL or live handles, C strings, `n` writable.
        let r = unsafe { hsmkit_store_describe_secret(null(), null(), null_mut(), 0, null_mut()) };
        null_arg(r, "store is NULL");
        // SAFETY: as above.
        let r = unsafe { hsmkit_store_describe_secret(store, null(), null_mut(), 0, null_mut()) };
        null_arg(r, "name is NULL");
        // SAFETY: as above.
        let r = unsafe { hsmkit_store_describe_secret(store, missing, null_mut(), 0, null_mut()) };
        null_arg(r, "written is NULL");
        // SAFETY: as above.
        let r = unsafe { hsmkit_store_get_secret(store, missing, 0, null_mut()) };
        null_arg(r, "out is NULL");
        // SAFETY: as above.
        let r = unsafe { hsmkit_store_list_secrets(store, null_mut(), 0, null_mut()) };
        null_arg(r, "written is NULL");
        // SAFETY: as above.
        let r = unsafe { hsmkit_secret_value(null(), null_mut(), 0, &mut n) };
        null_arg(r, "secret is NULL");
        // SAFETY: as above.
        let r = unsafe { hsmkit_key_name(null(), null_mut(), 0, &mut n) };
        null_arg(r, "key is NULL");
        // With every argument in place, the work runs (and finds nothing).
        // SAFETY: as above.
        let r = unsafe { hsmkit_store_backup_secret(store, missing, null_mut(), 0, &mut n) };
        assert_eq!(r, HSMKIT_ERR_NOT_FOUND);
        // SAFETY: from hsmkit_store_open, freed once.
        unsafe { hsmkit_store_free(store) };
    }
}
