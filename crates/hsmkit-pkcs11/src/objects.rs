//! Object handles checked against the object they must name.
//!
//! A handle is only the token's word for an object, and some tokens give one handle to
//! two objects: tpm2-pkcs11 1.9 (`token_add_tobject` in src/lib/token.c) numbers new
//! objects from 2 and, once its lowest-numbered object is destroyed while others remain,
//! hands out a handle that is still in use; every later use of it reaches the older
//! object. Seen in hsmkit's tpm2 run: a new EC key's handle named the metadata signer.
//!
//! So hsmkit never destroys by handle alone, and never takes a handle a create returned
//! on trust: it reads the identity back through that same handle (what the token would
//! act on) and compares. A handle that names another object is a typed error, and that
//! other object is left alone.

use cryptoki::error::Error as CkError;
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::Session;
use hsmkit::Error;

use crate::error::{KIND, OpError};

/// Whether `h` names an object that has every attribute in `expect`, with that value.
pub(crate) fn names(s: &Session, h: ObjectHandle, expect: &[Attribute]) -> Result<bool, CkError> {
    let types: Vec<_> = expect.iter().map(Attribute::attribute_type).collect();
    let got = s.get_attributes(h, &types)?;
    Ok(expect.iter().all(|a| got.contains(a)))
}

/// Whether a create, generate or unwrap failed because the token refuses session objects
/// (`CKA_TOKEN=false`) as such; other failures (a device error) are not a reason to try a
/// token object instead.
pub(crate) fn refuses_session_objects(e: &CkError) -> bool {
    use cryptoki::error::RvError;
    matches!(e, CkError::Pkcs11(RvError::TemplateInconsistent | RvError::AttributeValueInvalid, _))
}

/// The error for a handle from `function` that names another object than the one made.
pub(crate) fn reused(function: &str) -> Error {
    Error::backend(
        KIND,
        function,
        "the token returned an object handle that names another, older object (it reuses \
         handles: tpm2-pkcs11 1.9 does once its lowest-numbered object has been destroyed); \
         nothing was destroyed, and the new object is unreachable until the module is \
         loaded again (a new process)",
    )
}

/// `C_DestroyObject` of `h`, only if it names an object with every attribute in
/// `expect`; otherwise nothing is destroyed and the error says why.
pub(crate) fn destroy(s: &Session, h: ObjectHandle, expect: &[Attribute]) -> Result<(), OpError> {
    if !names(s, h, expect)? {
        return Err(reused("C_DestroyObject").into());
    }
    s.destroy_object(h)?;
    Ok(())
}
