//! Secrets: named, versioned values sealed under the store's secrets KEK.

use std::ffi::c_char;
use std::time::{Duration, SystemTime};

use hsmkit::report::{secret_description, secret_due, secret_properties};
use hsmkit::{Secret, SecretAttributes, SecretUpdate};

use crate::ffi::{
    Castable, OutHandle, bytes, free_handle, handle, opt_cstr, out_ptr, put, put_opt, try_ref, try_ref_name,
    try_ref_name_out, try_ref_out,
};
use crate::result::{Fail, guard, hsmkit_result};
use crate::store::{enabled, hsmkit_store, rotation_policy, time};

/// A secret version read with its value. Thread-safe; independent of the store it came
/// from. The value is wiped when the handle is freed.
pub struct hsmkit_secret {
    secret: Secret,
}

impl Castable for hsmkit_secret {
    type RustType = Secret;
    const ARG: &'static str = "secret";
    fn rust(&self) -> &Secret {
        &self.secret
    }
}

/// `hsmkit_store_set_secret` flag: the new version starts disabled.
pub const HSMKIT_SECRET_DISABLED: u32 = 1;

/// A change to one secret version's attributes.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct hsmkit_secret_update {
    /// -1 leaves it, 0 disables, 1 enables.
    pub enabled: i32,
    /// Unix seconds, `HSMKIT_TIME_UNCHANGED` or `HSMKIT_TIME_NONE`.
    pub not_before: i64,
    /// Unix seconds, `HSMKIT_TIME_UNCHANGED` or `HSMKIT_TIME_NONE`.
    pub expires: i64,
    /// The content type; NULL leaves it, `""` removes it.
    pub content_type: *const c_char,
}

/// A time given when setting a secret: Unix seconds or `HSMKIT_TIME_NONE`.
fn set_time(t: i64, what: &str) -> Result<Option<SystemTime>, Fail> {
    time(t, what)?.ok_or_else(|| Fail::invalid(format!("{what}: HSMKIT_TIME_UNCHANGED is for updates")))
}

/// A content type from C: NULL or `""` is none.
fn content_type_of(ct: Option<&str>) -> Option<String> {
    ct.filter(|c| !c.is_empty()).map(str::to_owned)
}

/// Sets a secret: adds a version holding the `len` bytes at `value` (binary, at most
/// 25 KiB; more is `HSMKIT_ERR_INVALID_INPUT`), which becomes current. Creates the secret
/// if there is none; a deleted secret is `HSMKIT_ERR_ALREADY_EXISTS` until recovered or
/// purged. `content_type`: NULL or `""` for none, else up to 255 characters.
/// `not_before`, `expires`: Unix seconds or `HSMKIT_TIME_NONE`. `flags`:
/// `HSMKIT_SECRET_*`. The new version number is returned in `*version` (may be NULL).
///
/// # Safety
/// `store` is live; `name` is a C string; `value` has `len` bytes; `content_type` is NULL
/// or a C string; `version` is NULL or writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn hsmkit_store_set_secret(
    store: *const hsmkit_store,
    name: *const c_char,
    value: *const u8,
    len: usize,
    content_type: *const c_char,
    not_before: i64,
    expires: i64,
    flags: u32,
    version: *mut u32,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, name) = unsafe { try_ref_name(store, name) }?;
        // SAFETY: as above.
        let value = unsafe { bytes(value, len, "value") }?;
        // SAFETY: as above.
        let ct = unsafe { opt_cstr(content_type, "content_type") }?;
        if flags & !HSMKIT_SECRET_DISABLED != 0 {
            return Err(Fail::invalid(format!("unknown secret flags {flags:#x}")));
        }
        let attributes = SecretAttributes {
            enabled: flags & HSMKIT_SECRET_DISABLED == 0,
            not_before: set_time(not_before, "not_before")?,
            expires: set_time(expires, "expires")?,
            content_type: content_type_of(ct),
            ..SecretAttributes::default()
        };
        let p = s.set_secret(name, value, attributes)?;
        // SAFETY: NULL or writable (the caller's contract).
        unsafe { put_opt(version, p.version) };
        Ok(())
    })
}

/// A secret at `version`, or its current version when `version` is 0, with its value.
/// A disabled, not yet valid or expired version is `HSMKIT_ERR_PERMISSION_DENIED`; a
/// missing or deleted secret, or a missing version, `HSMKIT_ERR_NOT_FOUND`.
///
/// # Safety
/// `store` is live; `name` is a C string; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_get_secret(
    store: *const hsmkit_store,
    name: *const c_char,
    version: u32,
    out: *mut *mut hsmkit_secret,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, name) = unsafe { try_ref_name(store, name) }?;
        // SAFETY: as above.
        let out = unsafe { OutHandle::new(out) }?;
        let secret = match version {
            0 => s.get_secret(name)?,
            v => s.get_secret_version(name, v)?,
        };
        out.put(hsmkit_secret { secret });
        Ok(())
    })
}

/// The names of the secrets that are not deleted, one per line (each followed by `\n`),
/// NUL-terminated.
///
/// # Safety
/// `store` is live; `buf`/`cap`/`written` as in the conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_list_secrets(
    store: *const hsmkit_store,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, out) = unsafe { try_ref_out(store, buf, cap, written) }?;
        out.put_lines(s.list_secrets()?.into_iter().map(|p| p.name))
    })
}

/// Every version of a secret that is not deleted, oldest first, as a JSON array
/// (NUL-terminated) of what `hsmkit_secret_info` gives; never the values.
///
/// # Safety
/// `store` is live; `name` is a C string; `buf`/`cap`/`written` as in the conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_list_secret_versions(
    store: *const hsmkit_store,
    name: *const c_char,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, name, out) = unsafe { try_ref_name_out(store, name, buf, cap, written) }?;
        out.put_json_array(&s.list_secret_versions(name)?, secret_properties)
    })
}

/// Changes a secret version's attributes (`version` 0: the current one); not its value
/// (set a new version for that).
///
/// # Safety
/// `store` is live; `name` is a C string; `update` points to an `hsmkit_secret_update`
/// whose `content_type` is NULL or a C string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_update_secret(
    store: *const hsmkit_store,
    name: *const c_char,
    version: u32,
    update: *const hsmkit_secret_update,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, name) = unsafe { try_ref_name(store, name) }?;
        // SAFETY: as above.
        let u = unsafe { handle(update, "update") }?;
        // SAFETY: as above.
        let ct = unsafe { opt_cstr(u.content_type, "update.content_type") }?;
        let update = SecretUpdate {
            enabled: enabled(u.enabled, "update.enabled")?,
            not_before: time(u.not_before, "update.not_before")?,
            expires: time(u.expires, "update.expires")?,
            content_type: ct.map(|c| content_type_of(Some(c))),
            tags: None,
        };
        let v = match version {
            0 => {
                // The newest version's number, without reading (or needing to read) a value.
                let versions = s.list_secret_versions(name)?;
                versions.last().map(|p| p.version).ok_or_else(|| {
                    Fail::new(hsmkit_result::HSMKIT_ERR_NOT_FOUND, format!("secret '{name}' has no versions"))
                })?
            }
            v => v,
        };
        s.update_secret(name, v, &update)?;
        Ok(())
    })
}

/// Soft-deletes a secret (every version); `hsmkit_store_recover_deleted_secret` undoes it
/// until it is purged.
///
/// # Safety
/// `store` is live; `name` is a C string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_delete_secret(
    store: *const hsmkit_store,
    name: *const c_char,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, name) = unsafe { try_ref_name(store, name) }?;
        s.delete_secret(name)?;
        Ok(())
    })
}

/// Recovers a soft-deleted secret; its current version number is returned in `*version`
/// (may be NULL).
///
/// # Safety
/// `store` is live; `name` is a C string; `version` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_recover_deleted_secret(
    store: *const hsmkit_store,
    name: *const c_char,
    version: *mut u32,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, name) = unsafe { try_ref_name(store, name) }?;
        let p = s.recover_deleted_secret(name)?;
        // SAFETY: NULL or writable (the caller's contract).
        unsafe { put_opt(version, p.version) };
        Ok(())
    })
}

/// Removes a soft-deleted secret for good (refused under purge protection before the
/// retention period ends).
///
/// # Safety
/// `store` is live; `name` is a C string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_purge_deleted_secret(
    store: *const hsmkit_store,
    name: *const c_char,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, name) = unsafe { try_ref_name(store, name) }?;
        s.purge_deleted_secret(name)?;
        Ok(())
    })
}

/// A secret, every version's metadata and its state, as JSON (NUL-terminated), never a
/// value: `name`, `current_version`, `deleted` (null, or `deleted_on` and
/// `scheduled_purge`), `rotation_policy` (null, or `rotate_after`, `rotate_before_expiry`,
/// `expires_after` as ISO 8601 durations or null) and `versions` (oldest first, each as
/// `hsmkit_secret_info` gives it). Works on deleted secrets.
///
/// # Safety
/// `store` is live; `name` is a C string; `buf`/`cap`/`written` as in the conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_describe_secret(
    store: *const hsmkit_store,
    name: *const c_char,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, name, out) = unsafe { try_ref_name_out(store, name, buf, cap, written) }?;
        out.put_json(&secret_description(&s.describe_secret(name)?))
    })
}

/// The deleted secrets, sorted by name, as a JSON array (NUL-terminated) of what
/// `hsmkit_store_describe_secret` gives (each with `deleted` set); `[]` when there are none.
///
/// # Safety
/// `store` is live; `buf`/`cap`/`written` as in the conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_list_deleted_secrets(
    store: *const hsmkit_store,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, out) = unsafe { try_ref_out(store, buf, cap, written) }?;
        out.put_json_array(&s.list_deleted_secrets()?, secret_description)
    })
}

/// The secret versions due for rotation, sorted by name and version, as a JSON array
/// (NUL-terminated) of `{"name", "version", "expires", "reason"}`: every enabled version
/// of a secret that is not deleted and expires within `within_secs` seconds (or has
/// expired), and every current version its secret's rotation policy says is due.
///
/// # Safety
/// `store` is live; `buf`/`cap`/`written` as in the conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_secrets_due(
    store: *const hsmkit_store,
    within_secs: u64,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, out) = unsafe { try_ref_out(store, buf, cap, written) }?;
        out.put_json_array(&s.secrets_due(Duration::from_secs(within_secs))?, secret_due)
    })
}

/// Sets a secret's rotation policy, in seconds (0: not set); all three 0 removes it, as
/// `hsmkit_store_set_rotation_policy` for keys. `expires_after_secs` gives versions set
/// without an expiry one; `rotate_after_secs` and `rotate_before_expiry_secs` say when
/// `hsmkit_store_secrets_due` reports the current version. `hsmkit_store_describe_secret`
/// shows the policy.
///
/// # Safety
/// `store` is live; `name` is a C string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_set_secret_rotation_policy(
    store: *const hsmkit_store,
    name: *const c_char,
    rotate_after_secs: u64,
    rotate_before_expiry_secs: u64,
    expires_after_secs: u64,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, name) = unsafe { try_ref_name(store, name) }?;
        let policy = rotation_policy(rotate_after_secs, rotate_before_expiry_secs, expires_after_secs);
        s.set_secret_rotation_policy(name, policy)?;
        Ok(())
    })
}

/// Frees a secret, wiping its value. NULL is a no-op.
///
/// # Safety
/// `secret` is NULL or a secret handle not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_secret_free(secret: *mut hsmkit_secret) {
    // SAFETY: the caller's contract.
    unsafe { free_handle(secret) }
}

/// The value (binary, no NUL; two-call output). The copy in `buf` is the caller's, to
/// wipe when done with it; the handle's own is wiped by `hsmkit_secret_free`.
///
/// # Safety
/// `secret` is live; `buf`/`cap`/`written` as in the conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_secret_value(
    secret: *const hsmkit_secret,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, out) = unsafe { try_ref_out(secret, buf, cap, written) }?;
        out.put(s.value())
    })
}

/// The secret's name, NUL-terminated.
///
/// # Safety
/// `secret` is live; `buf`/`cap`/`written` as in the conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_secret_name(
    secret: *const hsmkit_secret,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, out) = unsafe { try_ref_out(secret, buf, cap, written) }?;
        out.put_text(&s.properties().name)
    })
}

/// The version number.
///
/// # Safety
/// `secret` is live; `version` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_secret_version(
    secret: *const hsmkit_secret,
    version: *mut u32,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let s = unsafe { try_ref(secret) }?;
        out_ptr(version, "version")?;
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { put(version, s.properties().version) };
        Ok(())
    })
}

/// The content type, NUL-terminated; empty (`*written` 1) when there is none.
///
/// # Safety
/// `secret` is live; `buf`/`cap`/`written` as in the conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_secret_content_type(
    secret: *const hsmkit_secret,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, out) = unsafe { try_ref_out(secret, buf, cap, written) }?;
        out.put_text(s.properties().attributes.content_type.as_deref().unwrap_or(""))
    })
}

/// The version's metadata as JSON (NUL-terminated), never the value: `name`, `version`,
/// `enabled`, `not_before`, `expires`, `content_type`, `tags`, `created`, `updated`
/// (times in RFC 3339, or null).
///
/// # Safety
/// `secret` is live; `buf`/`cap`/`written` as in the conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_secret_info(
    secret: *const hsmkit_secret,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, out) = unsafe { try_ref_out(secret, buf, cap, written) }?;
        out.put_json(&secret_properties(s.properties()))
    })
}
