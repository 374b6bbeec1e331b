//! Every `CKR_*` maps to a core error kind here, and only here. The PKCS#11 function
//! and return code stay in the message for diagnostics.

use cryptoki::error::{Error as CkError, RvError};
use hsmkit::{BackendError, Error, InvalidReason, UnsupportedReason};

pub(crate) const KIND: &str = "pkcs11";

/// An error inside a token operation: a raw PKCS#11 error (inspected for session loss
/// and mapped at the end) or an hsmkit error.
#[derive(Debug)]
pub(crate) enum OpError {
    Ck(CkError),
    Hsm(Error),
}

impl From<CkError> for OpError {
    fn from(e: CkError) -> Self {
        OpError::Ck(e)
    }
}

impl From<Error> for OpError {
    fn from(e: Error) -> Self {
        OpError::Hsm(e)
    }
}

/// `PinIncorrect` -> `CKR_PIN_INCORRECT`.
pub(crate) fn ckr_name(rv: RvError) -> String {
    let dbg = format!("{rv:?}");
    let mut out = String::from("CKR");
    for c in dbg.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Whether the error means the session (or login) is gone and a fresh one may succeed:
/// also when the device went away, since reopening looks for the token again (in any
/// slot) and a token back in place answers. A device that stays away fails the reopen
/// with its own typed error.
pub(crate) fn is_session_lost(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::UserNotLoggedIn
                | RvError::DeviceRemoved
                | RvError::TokenNotPresent,
            _
        )
    )
}

/// Whether a cached object handle went stale.
pub(crate) fn is_stale_handle(e: &CkError) -> bool {
    matches!(e, CkError::Pkcs11(RvError::ObjectHandleInvalid | RvError::KeyHandleInvalid, _))
}

/// Maps an error from a decrypt or unwrap call: anything that could say something about
/// the ciphertext is the one opaque [`Error::DecryptionFailed`]; only errors about the
/// session, login, device or mechanism keep their kind.
#[allow(
    clippy::wildcard_enum_match_arm,
    reason = "cryptoki's errors: every one not named is mapped as map() does"
)]
pub(crate) fn map_opaque(e: CkError) -> Error {
    match e {
        CkError::Pkcs11(
            RvError::SessionHandleInvalid
            | RvError::SessionClosed
            | RvError::UserNotLoggedIn
            | RvError::DeviceError
            | RvError::DeviceMemory
            | RvError::DeviceRemoved
            | RvError::TokenNotPresent
            | RvError::HostMemory
            | RvError::CryptokiNotInitialized
            | RvError::MechanismInvalid
            | RvError::MechanismParamInvalid
            | RvError::FunctionNotSupported
            | RvError::KeyFunctionNotPermitted
            | RvError::KeyHandleInvalid
            | RvError::ObjectHandleInvalid
            | RvError::OperationActive
            | RvError::PinIncorrect
            | RvError::PinLocked,
            _,
        ) => map(e),
        CkError::Pkcs11(..) => Error::DecryptionFailed,
        other => map(other),
    }
}

/// The token is in no slot any more.
pub(crate) fn backend_gone(label: &str) -> BackendError {
    BackendError::new(
        KIND,
        "C_GetSlotList",
        format!("token '{label}' is no longer present (CKR_TOKEN_NOT_PRESENT)"),
    )
}

/// Maps a cryptoki error to the core error.
#[allow(
    clippy::wildcard_enum_match_arm,
    reason = "cryptoki's errors: CKR_* codes not named are backend errors with the code"
)]
pub(crate) fn map(e: CkError) -> Error {
    match e {
        CkError::Pkcs11(rv, f) => {
            let code = ckr_name(rv);
            let function = format!("{f:?}");
            let function = if function.starts_with("C_") { function } else { format!("C_{function}") };
            match rv {
                RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange => {
                    Error::Authentication(format!("the token refused the PIN ({code} in {function})"))
                }
                RvError::PinLocked | RvError::PinExpired => {
                    Error::Authentication(format!("the PIN is locked or expired ({code} in {function})"))
                }
                RvError::UserNotLoggedIn | RvError::UserPinNotInitialized => {
                    Error::Authentication(format!("not logged in to the token ({code} in {function})"))
                }
                RvError::EncryptedDataInvalid
                | RvError::EncryptedDataLenRange
                | RvError::WrappedKeyInvalid
                | RvError::WrappedKeyLenRange => Error::DecryptionFailed,
                RvError::SignatureInvalid | RvError::SignatureLenRange => Error::VerificationFailed,
                RvError::MechanismInvalid
                | RvError::MechanismParamInvalid
                | RvError::FunctionNotSupported => Error::unsupported(
                    UnsupportedReason::Mechanism,
                    format!("the token does not support this ({code} in {function})"),
                ),
                _ => Error::Backend(
                    BackendError::new(KIND, function, format!("{code}: {rv}"))
                        .with_source(CkError::Pkcs11(rv, f)),
                ),
            }
        }
        CkError::LibraryLoading(e) => {
            Error::invalid(InvalidReason::Parameter, format!("cannot load the PKCS#11 module: {e}"))
        }
        other => Error::Backend(BackendError::new(KIND, "cryptoki", other.to_string()).with_source(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_kinds() {
        assert_eq!(ckr_name(RvError::PinIncorrect), "CKR_PIN_INCORRECT");
        assert_eq!(ckr_name(RvError::SessionHandleInvalid), "CKR_SESSION_HANDLE_INVALID");
        let f = cryptoki::context::Function::Login;
        assert_eq!(map(CkError::Pkcs11(RvError::PinIncorrect, f)).kind(), hsmkit::ErrorKind::Authentication);
        assert_eq!(map(CkError::Pkcs11(RvError::EncryptedDataInvalid, f)), Error::DecryptionFailed);
        assert_eq!(map(CkError::Pkcs11(RvError::SignatureInvalid, f)), Error::VerificationFailed);
        assert_eq!(
            map(CkError::Pkcs11(RvError::MechanismParamInvalid, f)).kind(),
            hsmkit::ErrorKind::Unsupported
        );
        let e = map(CkError::Pkcs11(RvError::DeviceError, cryptoki::context::Function::Sign));
        assert_eq!(e.kind(), hsmkit::ErrorKind::Backend);
        assert!(e.to_string().contains("C_Sign") && e.to_string().contains("CKR_DEVICE_ERROR"), "{e}");
        // The cryptoki error stays underneath, for callers that walk `source()`.
        let source = std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_default();
        assert!(source.contains("Sign"), "{source}");
        let mech = map(CkError::Pkcs11(RvError::MechanismInvalid, f));
        assert_eq!(mech.unsupported_reason(), Some(hsmkit::UnsupportedReason::Mechanism));
    }
}
