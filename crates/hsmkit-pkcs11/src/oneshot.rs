//! One-shot `C_Decrypt` and `C_Sign` that leave no operation active when they fail.
//!
//! PKCS#11 says a failed `C_Decrypt`/`C_Sign` (other than `CKR_BUFFER_TOO_SMALL`) ends
//! the operation. tpm2-pkcs11 1.9 keeps it active (`decrypt_oneshot_op` in
//! src/lib/encrypt.c returns before its final step), and while it is active the key
//! cannot be destroyed (`C_DestroyObject` gives `CKR_FUNCTION_FAILED`), even after the
//! session is closed. `C_DecryptFinal`/`C_SignFinal` end it there; on a token that did
//! end the operation they just answer `CKR_OPERATION_NOT_INITIALIZED`, which is ignored.

use cryptoki::error::Result;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;

/// `C_DecryptInit` + `C_Decrypt`; after a failure, `C_DecryptFinal` (see the module).
pub(crate) fn decrypt(s: &Session, mech: &Mechanism<'_>, key: ObjectHandle, data: &[u8]) -> Result<Vec<u8>> {
    let r = s.decrypt(mech, key, data);
    if r.is_err() {
        // Its output, if any, is discarded unread.
        let _ = s.decrypt_final().map(zeroize::Zeroizing::new);
    }
    r
}

/// `C_VerifyInit` + `C_Verify`; after a failure, `C_VerifyFinal` (see the module).
pub(crate) fn verify(
    s: &Session,
    mech: &Mechanism<'_>,
    key: ObjectHandle,
    data: &[u8],
    signature: &[u8],
) -> Result<()> {
    let r = s.verify(mech, key, data, signature);
    if r.is_err() {
        let _ = s.verify_final(signature);
    }
    r
}

/// `C_SignInit` + `C_Sign`; after a failure, `C_SignFinal` (see the module).
pub(crate) fn sign(s: &Session, mech: &Mechanism<'_>, key: ObjectHandle, data: &[u8]) -> Result<Vec<u8>> {
    let r = s.sign(mech, key, data);
    if r.is_err() {
        let _ = s.sign_final();
    }
    r
}
