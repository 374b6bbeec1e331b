//! Result codes, the thread's last error message, and the panic boundary.

use std::cell::{Cell, RefCell};
use std::ffi::{CStr, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use hsmkit::{Error, ErrorKind, InvalidReason, UnsupportedReason};

/// What a call did. The numbers are stable: a code is never renumbered or reused.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum hsmkit_result {
    /// Success.
    HSMKIT_OK = 0,
    /// A required pointer argument was NULL.
    HSMKIT_ERR_NULL_ARGUMENT = 1,
    /// The output buffer is too small; `*written` holds the length needed and the buffer
    /// is untouched.
    HSMKIT_ERR_BUFFER_TOO_SMALL = 2,
    /// Malformed input, bad UTF-8, or input that does not fit the key or algorithm.
    HSMKIT_ERR_INVALID_INPUT = 3,
    /// No key (or version, or deleted key) by that name.
    HSMKIT_ERR_NOT_FOUND = 4,
    /// A key by that name exists already.
    HSMKIT_ERR_ALREADY_EXISTS = 5,
    /// The key's attributes forbid the operation.
    HSMKIT_ERR_PERMISSION_DENIED = 6,
    /// A signature (or an audit chain) did not verify.
    HSMKIT_ERR_VERIFICATION_FAILED = 7,
    /// Decryption, unwrap or envelope opening failed; deliberately says no more.
    HSMKIT_ERR_DECRYPTION_FAILED = 8,
    /// The backend or this build cannot do it.
    HSMKIT_ERR_UNSUPPORTED = 9,
    /// Wrong passphrase, key file or PIN; a locked token.
    HSMKIT_ERR_AUTHENTICATION = 10,
    /// The backend failed (PKCS#11 error, keystore storage).
    HSMKIT_ERR_BACKEND = 11,
    /// Reading or writing the caller's file or stream failed.
    HSMKIT_ERR_IO = 12,
    /// A caller's callback reported an error.
    HSMKIT_ERR_CALLBACK = 13,
    /// hsmkit panicked; a bug. The call had no effect visible through its outputs.
    HSMKIT_ERR_PANIC = 14,
    /// An error of a kind newer than this list.
    HSMKIT_ERR_OTHER = 15,
}

use hsmkit_result::*;

impl hsmkit_result {
    /// The code numbered `code`, or `None`. C can hand any `uint32_t` back (e.g. to
    /// `hsmkit_result_name`), so a number from C is matched here and never transmuted: a
    /// Rust enum holding a value outside its variants is undefined behaviour.
    pub(crate) const fn from_code(code: u32) -> Option<Self> {
        Some(match code {
            0 => HSMKIT_OK,
            1 => HSMKIT_ERR_NULL_ARGUMENT,
            2 => HSMKIT_ERR_BUFFER_TOO_SMALL,
            3 => HSMKIT_ERR_INVALID_INPUT,
            4 => HSMKIT_ERR_NOT_FOUND,
            5 => HSMKIT_ERR_ALREADY_EXISTS,
            6 => HSMKIT_ERR_PERMISSION_DENIED,
            7 => HSMKIT_ERR_VERIFICATION_FAILED,
            8 => HSMKIT_ERR_DECRYPTION_FAILED,
            9 => HSMKIT_ERR_UNSUPPORTED,
            10 => HSMKIT_ERR_AUTHENTICATION,
            11 => HSMKIT_ERR_BACKEND,
            12 => HSMKIT_ERR_IO,
            13 => HSMKIT_ERR_CALLBACK,
            14 => HSMKIT_ERR_PANIC,
            15 => HSMKIT_ERR_OTHER,
            _ => return None,
        })
    }
}

/// A failed call: its code and a message for `hsmkit_last_error`.
#[derive(Debug)]
pub(crate) struct Fail {
    pub(crate) code: hsmkit_result,
    pub(crate) message: String,
    /// The core's typed reason, for `hsmkit_last_error_reason` (empty: none).
    pub(crate) reason: &'static CStr,
}

impl Fail {
    pub(crate) fn new(code: hsmkit_result, message: impl Into<String>) -> Self {
        Fail { code, message: message.into(), reason: c"" }
    }

    pub(crate) fn null(arg: &str) -> Self {
        Fail::new(HSMKIT_ERR_NULL_ARGUMENT, format!("{arg} is NULL"))
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Fail::new(HSMKIT_ERR_INVALID_INPUT, message)
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        let code = match e.kind() {
            ErrorKind::NotFound => HSMKIT_ERR_NOT_FOUND,
            ErrorKind::AlreadyExists => HSMKIT_ERR_ALREADY_EXISTS,
            ErrorKind::PermissionDenied => HSMKIT_ERR_PERMISSION_DENIED,
            ErrorKind::InvalidInput => HSMKIT_ERR_INVALID_INPUT,
            ErrorKind::VerificationFailed => HSMKIT_ERR_VERIFICATION_FAILED,
            ErrorKind::DecryptionFailed => HSMKIT_ERR_DECRYPTION_FAILED,
            ErrorKind::Unsupported => HSMKIT_ERR_UNSUPPORTED,
            ErrorKind::Authentication => HSMKIT_ERR_AUTHENTICATION,
            ErrorKind::Backend => HSMKIT_ERR_BACKEND,
            ErrorKind::Io => HSMKIT_ERR_IO,
            _ => HSMKIT_ERR_OTHER,
        };
        // The core's messages never hold secrets.
        Fail { reason: reason(&e), ..Fail::new(code, e.to_string()) }
    }
}

/// The stable name of an error's reason (as `InvalidReason::as_str`), as a C string.
fn reason(e: &Error) -> &'static CStr {
    match (e.invalid_reason(), e.unsupported_reason()) {
        (Some(InvalidReason::Malformed), _) => c"malformed",
        (Some(InvalidReason::Length), _) => c"length",
        (Some(InvalidReason::KeyMismatch), _) => c"key-mismatch",
        (Some(InvalidReason::Name), _) => c"name",
        (Some(InvalidReason::Parameter), _) => c"parameter",
        (None, Some(UnsupportedReason::Algorithm)) => c"algorithm",
        (None, Some(UnsupportedReason::KeyType)) => c"key-type",
        (None, Some(UnsupportedReason::Mechanism)) => c"mechanism",
        (None, Some(UnsupportedReason::Operation)) => c"operation",
        (None, Some(UnsupportedReason::Encoding)) => c"encoding",
        (None, None) => c"",
    }
}

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
    static LAST_REASON: Cell<&'static CStr> = const { Cell::new(c"") };
}

pub(crate) fn last_reason() -> &'static CStr {
    LAST_REASON.with(Cell::get)
}

pub(crate) fn set_last_error(message: &str) {
    LAST_ERROR.with(|l| {
        if let Ok(mut l) = l.try_borrow_mut() {
            l.clear();
            l.push_str(message);
        }
    });
}

pub(crate) fn last_error() -> String {
    LAST_ERROR.with(|l| l.try_borrow().map(|l| l.clone()).unwrap_or_default())
}

/// The panic boundary every entry point runs in: a panic becomes `HSMKIT_ERR_PANIC`, a
/// failure sets the thread's last error.
pub(crate) fn guard(f: impl FnOnce() -> Result<(), Fail>) -> hsmkit_result {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => HSMKIT_OK,
        Ok(Err(fail)) => {
            set_last_error(&fail.message);
            LAST_REASON.with(|r| r.set(fail.reason));
            fail.code
        }
        Err(_) => {
            set_last_error("hsmkit panicked (a bug; please report it)");
            LAST_REASON.with(|r| r.set(c""));
            HSMKIT_ERR_PANIC
        }
    }
}

/// Static names, for logs: `"HSMKIT_ERR_NOT_FOUND"`.
pub(crate) fn name(r: hsmkit_result) -> &'static std::ffi::CStr {
    match r {
        HSMKIT_OK => c"HSMKIT_OK",
        HSMKIT_ERR_NULL_ARGUMENT => c"HSMKIT_ERR_NULL_ARGUMENT",
        HSMKIT_ERR_BUFFER_TOO_SMALL => c"HSMKIT_ERR_BUFFER_TOO_SMALL",
        HSMKIT_ERR_INVALID_INPUT => c"HSMKIT_ERR_INVALID_INPUT",
        HSMKIT_ERR_NOT_FOUND => c"HSMKIT_ERR_NOT_FOUND",
        HSMKIT_ERR_ALREADY_EXISTS => c"HSMKIT_ERR_ALREADY_EXISTS",
        HSMKIT_ERR_PERMISSION_DENIED => c"HSMKIT_ERR_PERMISSION_DENIED",
        HSMKIT_ERR_VERIFICATION_FAILED => c"HSMKIT_ERR_VERIFICATION_FAILED",
        HSMKIT_ERR_DECRYPTION_FAILED => c"HSMKIT_ERR_DECRYPTION_FAILED",
        HSMKIT_ERR_UNSUPPORTED => c"HSMKIT_ERR_UNSUPPORTED",
        HSMKIT_ERR_AUTHENTICATION => c"HSMKIT_ERR_AUTHENTICATION",
        HSMKIT_ERR_BACKEND => c"HSMKIT_ERR_BACKEND",
        HSMKIT_ERR_IO => c"HSMKIT_ERR_IO",
        HSMKIT_ERR_CALLBACK => c"HSMKIT_ERR_CALLBACK",
        HSMKIT_ERR_PANIC => c"HSMKIT_ERR_PANIC",
        HSMKIT_ERR_OTHER => c"HSMKIT_ERR_OTHER",
    }
}

pub(crate) const fn as_ptr(s: &'static std::ffi::CStr) -> *const c_char {
    s.as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::panic)]
    fn a_panic_becomes_a_code_and_a_message() {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {})); // keep the test output quiet
        let r = guard(|| panic!("boom"));
        std::panic::set_hook(prev);
        assert_eq!(r, HSMKIT_ERR_PANIC);
        assert!(last_error().contains("panicked"));
        assert_eq!(guard(|| Err(Fail::null("x"))), HSMKIT_ERR_NULL_ARGUMENT);
        assert_eq!(last_error(), "x is NULL");
        assert_eq!(guard(|| Ok(())), HSMKIT_OK);
        assert_eq!(last_error(), "x is NULL"); // success leaves the last error alone
    }

    #[test]
    #[allow(clippy::as_conversions)] // the enum's C value is what is under test
    fn every_code_has_its_name_and_no_other_number_is_a_code() {
        for code in 0u32..=15 {
            let r = hsmkit_result::from_code(code);
            assert_eq!(r.map(|r| r as u32), Some(code), "codes are 0..=15 with no gap");
            assert!(r.is_some_and(|r| name(r).to_str().is_ok_and(|n| n.starts_with("HSMKIT_"))));
        }
        for code in [16, 17, 255, 256, 0x8000_0000, u32::MAX] {
            assert_eq!(hsmkit_result::from_code(code), None, "{code}");
        }
    }
}
