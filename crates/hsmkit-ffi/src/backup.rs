//! Backup and restore of secrets and keys: opaque blobs sealed under the store's backup
//! key (`hsmkit-backup`, made on first use), restorable only into a store that holds the
//! same backup key.
//!
//! How the two-call convention holds for blobs that are random: see
//! `hsmkit_store_backup_secret`.

use std::ffi::c_char;

use crate::ffi::{OutHandle, bytes, put_opt, try_ref, try_ref_name_out};
use crate::key::hsmkit_key;
use crate::result::{Fail, guard, hsmkit_result};
use crate::store::hsmkit_store;

/// A backup of the secret `name`: every version (values included) and its state, as an
/// opaque blob (binary, no NUL) sealed under the store's backup key, `hsmkit-backup`,
/// which the first backup makes (it is listed with the keys). Only a store holding the
/// same backup key restores it. A missing or deleted secret is `HSMKIT_ERR_NOT_FOUND`.
///
/// Every call makes a new backup, the sizing call (`buf` NULL) too, as there is no length
/// to give without making one; each is a backup in the audit log. Each seals under a fresh
/// random data key, so two calls give different blobs, both restorable. Their length is
/// the same while the secret is unchanged (the envelope's length is fixed by the
/// plaintext's, and the plaintext's by the secret's versions): the sizing call's
/// `*written` is the exact length the next call needs. If the secret changes in between,
/// that call may fail with `HSMKIT_ERR_BUFFER_TOO_SMALL` and the new length in
/// `*written`; call again. A caller with a buffer it knows is big enough may skip sizing.
///
/// # Safety
/// `store` is live; `name` is a C string; `buf`/`cap`/`written` as in the conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_backup_secret(
    store: *const hsmkit_store,
    name: *const c_char,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, name, out) = unsafe { try_ref_name_out(store, name, buf, cap, written) }?;
        out.put(&s.backup_secret(name)?)
    })
}

/// Restores a secret from `hsmkit_store_backup_secret`'s blob (`len` bytes), under the
/// name it was backed up from, with every version, value and attribute and its rotation
/// policy; its current version number is returned in `*version` (may be NULL). A secret
/// (live or deleted) holding the name is `HSMKIT_ERR_ALREADY_EXISTS`; a blob that was
/// altered, or made by a store without this store's backup key, is
/// `HSMKIT_ERR_DECRYPTION_FAILED`; a key backup or no backup at all is
/// `HSMKIT_ERR_INVALID_INPUT`.
///
/// # Safety
/// `store` is live; `backup` has `len` bytes; `version` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_restore_secret(
    store: *const hsmkit_store,
    backup: *const u8,
    len: usize,
    version: *mut u32,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let s = unsafe { try_ref(store) }?;
        // SAFETY: as above.
        let backup = unsafe { bytes(backup, len, "backup") }?;
        let d = s.restore_secret(backup)?;
        // A backup always holds a version; 0 would mean it held none.
        // SAFETY: NULL or writable (the caller's contract).
        unsafe { put_opt(version, d.current().map_or(0, |c| c.version)) };
        Ok(())
    })
}

/// A backup of the key `name`: every version's attributes and material and its rotation
/// policy, as an opaque blob (binary, no NUL) sealed under the store's backup key. The
/// blob holds the material even of a key that is not exportable: whoever holds the backup
/// key can read it. Only where keys can leave the backend (memory and keystore stores); a
/// PKCS#11 token's keys never leave it: `HSMKIT_ERR_UNSUPPORTED` (reason `"operation"`).
/// A missing or deleted key is `HSMKIT_ERR_NOT_FOUND`; the backup key itself
/// `HSMKIT_ERR_INVALID_INPUT`. Every call makes a new blob, as for
/// `hsmkit_store_backup_secret`.
///
/// # Safety
/// `store` is live; `name` is a C string; `buf`/`cap`/`written` as in the conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_backup_key(
    store: *const hsmkit_store,
    name: *const c_char,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, name, out) = unsafe { try_ref_name_out(store, name, buf, cap, written) }?;
        out.put(&s.backup_key(name)?)
    })
}

/// Restores a key from `hsmkit_store_backup_key`'s blob (`len` bytes), under the name it
/// was backed up from, with every version, attribute and its rotation policy; its current
/// version is returned in `*out` (as `hsmkit_store_recover_deleted_key`). All or nothing.
/// A key (live or deleted) holding the name is `HSMKIT_ERR_ALREADY_EXISTS`; a blob that was
/// altered, or made by a store without this store's backup key,
/// `HSMKIT_ERR_DECRYPTION_FAILED`; a secret backup or no backup at all
/// `HSMKIT_ERR_INVALID_INPUT`; a backend that cannot import `HSMKIT_ERR_UNSUPPORTED`.
///
/// # Safety
/// `store` is live; `backup` has `len` bytes; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_restore_key(
    store: *const hsmkit_store,
    backup: *const u8,
    len: usize,
    out: *mut *mut hsmkit_key,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let s = unsafe { try_ref(store) }?;
        // SAFETY: as above.
        let backup = unsafe { bytes(backup, len, "backup") }?;
        // SAFETY: as above.
        let out = unsafe { OutHandle::new(out) }?;
        let d = s.restore_key(backup)?;
        let current = d.current().ok_or_else(|| {
            Fail::new(hsmkit_result::HSMKIT_ERR_NOT_FOUND, format!("key '{}' has no versions", d.name))
        })?;
        let key = s.get_key_version(&d.name, current.version)?;
        out.put(hsmkit_key { key });
        Ok(())
    })
}
