//! Opening a store; keys by name; the lifecycle.

use std::ffi::c_char;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hsmkit::{KeyAttributes, KeyMaterial, KeyOps, KeySpec, KeyUpdate, RotationPolicy, Store};
use hsmkit_open::OpenOptions;

use crate::ffi::{
    Castable, OutHandle, bytes, cstr, free_handle, handle, opt_cstr, out_ptr, put, try_ref, try_ref_name,
    try_ref_name_out, try_ref_out,
};
use crate::key::hsmkit_key;
use crate::result::{Fail, guard, hsmkit_result};

/// How to unlock the store a URI names: passphrase or key file for a keystore, PIN for a
/// token, and an optional audit log. Set up by one thread.
pub struct hsmkit_open_options {
    opts: OpenOptions,
}

/// A store: keys behind one backend, by name. Thread-safe.
pub struct hsmkit_store {
    pub(crate) store: Store,
}

impl Castable for hsmkit_store {
    type RustType = Store;
    const ARG: &'static str = "store";
    fn rust(&self) -> &Store {
        &self.store
    }
}

/// Creates empty options.
///
/// # Safety
/// `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_open_options_new(out: *mut *mut hsmkit_open_options) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        unsafe { OutHandle::new(out) }?.put(hsmkit_open_options { opts: OpenOptions::new() });
        Ok(())
    })
}

/// Frees options (their secrets are zeroised). NULL is a no-op.
///
/// # Safety
/// `options` is NULL or from `hsmkit_open_options_new`, not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_open_options_free(options: *mut hsmkit_open_options) {
    // SAFETY: the caller's contract.
    unsafe { free_handle(options) }
}

/// One setter body: the options handle, then a string argument.
///
/// # Safety
/// `options` is NULL or live and not used by another thread; `value` is NULL or a C string.
unsafe fn set(
    options: *mut hsmkit_open_options,
    value: *const c_char,
    arg: &str,
    f: impl FnOnce(OpenOptions, &str) -> OpenOptions,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract; exclusive use is part of it.
        let o = unsafe { options.as_mut() }.ok_or_else(|| Fail::null("options"))?;
        // SAFETY: the caller's contract.
        let v = unsafe { cstr(value, arg) }?;
        o.opts = f(std::mem::take(&mut o.opts), v);
        Ok(())
    })
}

/// The keystore passphrase (`file:` URIs and paths).
///
/// # Safety
/// `options` is live and used by this thread only; `passphrase` is a C string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_open_options_set_passphrase(
    options: *mut hsmkit_open_options,
    passphrase: *const c_char,
) -> hsmkit_result {
    // SAFETY: forwarded contract.
    unsafe { set(options, passphrase, "passphrase", |o, v| o.passphrase(v)) }
}

/// A key file (64 hex digits or 32 raw bytes) instead of a passphrase.
///
/// # Safety
/// As `hsmkit_open_options_set_passphrase`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_open_options_set_key_file(
    options: *mut hsmkit_open_options,
    path: *const c_char,
) -> hsmkit_result {
    // SAFETY: forwarded contract.
    unsafe { set(options, path, "path", |o, v| o.key_file(v)) }
}

/// The token's user PIN (`pkcs11:` URIs); wins over `pin-value`/`pin-source`.
///
/// # Safety
/// As `hsmkit_open_options_set_passphrase`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_open_options_set_pin(
    options: *mut hsmkit_open_options,
    pin: *const c_char,
) -> hsmkit_result {
    // SAFETY: forwarded contract.
    unsafe { set(options, pin, "pin", |o, v| o.pin(v)) }
}

/// Appends an audit record for every operation to this file, chained and authenticated
/// (HMAC-SHA256) under the store's audit key `hsmkit-audit`, which opening the store then
/// creates if it is missing; `hsmkit audit verify` checks the file with the store.
///
/// # Safety
/// As `hsmkit_open_options_set_passphrase`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_open_options_set_audit_log(
    options: *mut hsmkit_open_options,
    path: *const c_char,
) -> hsmkit_result {
    // SAFETY: forwarded contract.
    unsafe { set(options, path, "path", |o, v| o.audit_log(v)) }
}

/// Opens a store: `file:///path` or a path (encrypted keystore, created if missing),
/// `pkcs11:token=...?module-path=...` (RFC 7512), or `memory:`. `options` may be NULL.
///
/// # Safety
/// `uri` is a C string; `options` is NULL or live; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_open(
    uri: *const c_char,
    options: *const hsmkit_open_options,
    out: *mut *mut hsmkit_store,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let uri = unsafe { cstr(uri, "uri") }?;
        // SAFETY: the caller's contract.
        let opts = unsafe { options.as_ref() }.map(|o| o.opts.clone()).unwrap_or_default();
        // SAFETY: the caller's contract.
        let out = unsafe { OutHandle::new(out) }?;
        out.put(hsmkit_store { store: hsmkit_open::open(uri, &opts)? });
        Ok(())
    })
}

/// Frees a store (keys already obtained from it stay usable). NULL is a no-op.
///
/// # Safety
/// `store` is NULL or from `hsmkit_store_open`, not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_free(store: *mut hsmkit_store) {
    // SAFETY: the caller's contract.
    unsafe { free_handle(store) }
}

/// `"soft"` or `"pkcs11"`, NUL-terminated (two-call output).
///
/// # Safety
/// `store` is live; `buf`/`cap`/`written` as in the conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_backend_kind(
    store: *const hsmkit_store,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, out) = unsafe { try_ref_out(store, buf, cap, written) }?;
        out.put_text(s.backend_kind())
    })
}

/// What the store can do, as JSON (NUL-terminated, two-call output): `engine`
/// (`"aws-lc"`, `"rustcrypto"`, `"pkcs11"`), `metadata` (what holds the key metadata:
/// `"memory"`, `"keystore"`, `"token"`, `"file"`), `generate` (key specs such as
/// `"EC-P-256"`), `sign`, `decrypt`, `wrap`, `unwrap` (algorithm names), `import`,
/// `export`, `oaep_label` (booleans) and `notes` (strings). The same document as
/// `hsmkit info --json`, without `backend` (see `hsmkit_store_backend_kind`).
///
/// # Safety
/// `store` is live; `buf`/`cap`/`written` as in the conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_capabilities(
    store: *const hsmkit_store,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, out) = unsafe { try_ref_out(store, buf, cap, written) }?;
        out.put_json(&s.capabilities().to_json())
    })
}

/// Create and import flag: the private or secret part may be exported (keystore only).
pub const HSMKIT_KEY_EXPORTABLE: u32 = 1;
/// Create and import flag: the key starts disabled.
pub const HSMKIT_KEY_DISABLED: u32 = 2;

fn attributes(ops: Option<&str>, flags: u32) -> Result<KeyAttributes, Fail> {
    if flags & !(HSMKIT_KEY_EXPORTABLE | HSMKIT_KEY_DISABLED) != 0 {
        return Err(Fail::invalid(format!("unknown key flags {flags:#x}")));
    }
    Ok(KeyAttributes {
        ops: ops.map(str::parse::<KeyOps>).transpose()?,
        enabled: flags & HSMKIT_KEY_DISABLED == 0,
        exportable: flags & HSMKIT_KEY_EXPORTABLE != 0,
        ..KeyAttributes::default()
    })
}

/// Creates a key. `spec`: `"RSA-2048"`/`"RSA-3072"`/`"RSA-4096"`, `"EC-P-256"` (or
/// `"P-256"`), `"P-384"`, `"P-521"`, `"P-256K"` (secp256k1), `"AES-128"`/`"AES-192"`/
/// `"AES-256"`, `"Ed25519"`, `"HMAC-256"`/`"HMAC-384"`/`"HMAC-512"` (never exportable).
/// `ops`: NULL for the type's default, or a comma-separated list (`"sign,verify"`,
/// `"wrapKey,unwrapKey"`).
/// `flags`: `HSMKIT_KEY_*`. The new key (version 1) is returned in `*out`.
///
/// # Safety
/// `store` is live; `name`, `spec` are C strings; `ops` is NULL or a C string; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_create_key(
    store: *const hsmkit_store,
    name: *const c_char,
    spec: *const c_char,
    ops: *const c_char,
    flags: u32,
    out: *mut *mut hsmkit_key,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, name) = unsafe { try_ref_name(store, name) }?;
        // SAFETY: as above.
        let spec: KeySpec = unsafe { cstr(spec, "spec") }?.parse()?;
        // SAFETY: as above.
        let ops = unsafe { opt_cstr(ops, "ops") }?;
        // SAFETY: as above.
        let out = unsafe { OutHandle::new(out) }?;
        let key = s.create_key(name, spec, attributes(ops, flags)?)?;
        out.put(hsmkit_key { key });
        Ok(())
    })
}

/// Imports a key from PEM, DER (PKCS#8, SPKI, PKCS#1, SEC1) or JWK (JSON) bytes. Public
/// keys import as verify/encrypt/wrap-only keys; AES keys come as JWK `{"kty":"oct",...}`.
///
/// # Safety
/// `store` is live; `name` is a C string; `data` has `len` bytes; `ops` is NULL or a C
/// string; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_import_key(
    store: *const hsmkit_store,
    name: *const c_char,
    data: *const u8,
    len: usize,
    ops: *const c_char,
    flags: u32,
    out: *mut *mut hsmkit_key,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, name) = unsafe { try_ref_name(store, name) }?;
        // SAFETY: as above.
        let data = unsafe { bytes(data, len, "data") }?;
        // SAFETY: as above.
        let ops = unsafe { opt_cstr(ops, "ops") }?;
        // SAFETY: as above.
        let out = unsafe { OutHandle::new(out) }?;
        let material = KeyMaterial::from_bytes(data)?;
        let key = s.import_key(name, material, attributes(ops, flags)?)?;
        out.put(hsmkit_key { key });
        Ok(())
    })
}

/// A key at `version`, or its current version when `version` is 0.
///
/// # Safety
/// `store` is live; `name` is a C string; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_get_key(
    store: *const hsmkit_store,
    name: *const c_char,
    version: u32,
    out: *mut *mut hsmkit_key,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, name) = unsafe { try_ref_name(store, name) }?;
        // SAFETY: as above.
        let out = unsafe { OutHandle::new(out) }?;
        let key = match version {
            0 => s.get_key(name)?,
            v => s.get_key_version(name, v)?,
        };
        out.put(hsmkit_key { key });
        Ok(())
    })
}

/// The key names, one per line (each followed by `\n`), NUL-terminated.
///
/// # Safety
/// `store` is live; `buf`/`cap`/`written` as in the conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_list_keys(
    store: *const hsmkit_store,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, out) = unsafe { try_ref_out(store, buf, cap, written) }?;
        out.put_lines(s.list_keys()?.into_iter().map(|i| i.name))
    })
}

/// A key, every version and its state, as JSON (NUL-terminated): `name`,
/// `current_version`, `deleted`, `rotation_policy`, `versions` (each with `kid`, `spec`,
/// `ops`, `enabled`, `not_before`, `expires`, `tags`, `created` ...). Works on deleted keys.
///
/// # Safety
/// `store` is live; `name` is a C string; `buf`/`cap`/`written` as in the conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_describe_key(
    store: *const hsmkit_store,
    name: *const c_char,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, name, out) = unsafe { try_ref_name_out(store, name, buf, cap, written) }?;
        let d = match s.describe_key(name) {
            Err(e) if e.kind() == hsmkit::ErrorKind::NotFound => s.get_deleted_key(name).map_err(|_| e)?,
            r => r?,
        };
        out.put_json(&hsmkit::report::key_description(&d))
    })
}

/// Makes a new version with the same type and attributes; it becomes current and is
/// returned in `*out`.
///
/// # Safety
/// `store` is live; `name` is a C string; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_rotate_key(
    store: *const hsmkit_store,
    name: *const c_char,
    out: *mut *mut hsmkit_key,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, name) = unsafe { try_ref_name(store, name) }?;
        // SAFETY: as above.
        let out = unsafe { OutHandle::new(out) }?;
        out.put(hsmkit_key { key: s.rotate_key(name)? });
        Ok(())
    })
}

/// `hsmkit_key_update` and `hsmkit_secret_update` time: leave as it is.
pub const HSMKIT_TIME_UNCHANGED: i64 = -1;
/// `hsmkit_key_update` and `hsmkit_secret_update` time: remove (no not-before / never
/// expires); for `hsmkit_store_set_secret`: none.
pub const HSMKIT_TIME_NONE: i64 = -2;

/// A change to one version's attributes.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct hsmkit_key_update {
    /// -1 leaves it, 0 disables, 1 enables.
    pub enabled: i32,
    /// Unix seconds, `HSMKIT_TIME_UNCHANGED` or `HSMKIT_TIME_NONE`.
    pub not_before: i64,
    /// Unix seconds, `HSMKIT_TIME_UNCHANGED` or `HSMKIT_TIME_NONE`.
    pub expires: i64,
    /// A comma-separated list of operations, or NULL to leave them.
    pub ops: *const c_char,
}

/// An update's time: `None` leaves it, `Some(None)` removes it.
pub(crate) fn time(t: i64, what: &str) -> Result<Option<Option<SystemTime>>, Fail> {
    match t {
        HSMKIT_TIME_UNCHANGED => Ok(None),
        HSMKIT_TIME_NONE => Ok(Some(None)),
        t => {
            let secs = u64::try_from(t).map_err(|_| Fail::invalid(format!("{what}: {t} is not a time")))?;
            let at = UNIX_EPOCH
                .checked_add(Duration::from_secs(secs))
                .ok_or_else(|| Fail::invalid(format!("{what}: out of range")))?;
            Ok(Some(Some(at)))
        }
    }
}

/// An update's `enabled`: -1 leaves it, 0 disables, 1 enables.
pub(crate) fn enabled(e: i32, what: &str) -> Result<Option<bool>, Fail> {
    match e {
        -1 => Ok(None),
        0 => Ok(Some(false)),
        1 => Ok(Some(true)),
        e => Err(Fail::invalid(format!("{what} must be -1, 0 or 1, not {e}"))),
    }
}

/// Changes a version's attributes (`version` 0: the current one).
///
/// # Safety
/// `store` is live; `name` is a C string; `update` points to an `hsmkit_key_update` whose
/// `ops` is NULL or a C string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_update_key(
    store: *const hsmkit_store,
    name: *const c_char,
    version: u32,
    update: *const hsmkit_key_update,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, name) = unsafe { try_ref_name(store, name) }?;
        // SAFETY: as above.
        let u = unsafe { handle(update, "update") }?;
        // SAFETY: as above.
        let ops = unsafe { opt_cstr(u.ops, "update.ops") }?;
        let update = KeyUpdate {
            enabled: enabled(u.enabled, "update.enabled")?,
            not_before: time(u.not_before, "update.not_before")?,
            expires: time(u.expires, "update.expires")?,
            ops: ops.map(str::parse::<KeyOps>).transpose()?,
            tags: None,
        };
        let v = match version {
            0 => s.get_key(name)?.version(),
            v => v,
        };
        s.update_key(name, v, &update)?;
        Ok(())
    })
}

/// Soft-deletes a key; `hsmkit_store_recover_deleted_key` undoes it until it is purged.
///
/// # Safety
/// `store` is live; `name` is a C string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_delete_key(
    store: *const hsmkit_store,
    name: *const c_char,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, name) = unsafe { try_ref_name(store, name) }?;
        s.delete_key(name)?;
        Ok(())
    })
}

/// Recovers a soft-deleted key; its current version is returned in `*out`.
///
/// # Safety
/// `store` is live; `name` is a C string; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_recover_deleted_key(
    store: *const hsmkit_store,
    name: *const c_char,
    out: *mut *mut hsmkit_key,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, name) = unsafe { try_ref_name(store, name) }?;
        // SAFETY: as above.
        let out = unsafe { OutHandle::new(out) }?;
        out.put(hsmkit_key { key: s.recover_deleted_key(name)? });
        Ok(())
    })
}

/// Destroys a soft-deleted key for good (refused under purge protection before the
/// retention period ends).
///
/// # Safety
/// `store` is live; `name` is a C string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_purge_deleted_key(
    store: *const hsmkit_store,
    name: *const c_char,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (s, name) = unsafe { try_ref_name(store, name) }?;
        s.purge_deleted_key(name)?;
        Ok(())
    })
}

/// Sets a key's rotation policy, in seconds (0: not set); all three 0 removes it.
///
/// # Safety
/// `store` is live; `name` is a C string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_set_rotation_policy(
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
        s.set_rotation_policy(name, policy)?;
        Ok(())
    })
}

/// A rotation policy from C's seconds (0: not set); `None` (no policy) when all are 0.
pub(crate) fn rotation_policy(
    rotate_after_secs: u64,
    rotate_before_expiry_secs: u64,
    expires_after_secs: u64,
) -> Option<RotationPolicy> {
    let d = |secs: u64| (secs > 0).then(|| Duration::from_secs(secs));
    let policy = RotationPolicy {
        rotate_after: d(rotate_after_secs),
        rotate_before_expiry: d(rotate_before_expiry_secs),
        expires_after: d(expires_after_secs),
    };
    (policy != RotationPolicy::default()).then_some(policy)
}

/// Rotates every key whose policy says it is due; `*rotated` is how many were. A failure
/// to rotate one key is returned after trying the others.
///
/// # Safety
/// `store` is live; `rotated` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hsmkit_store_rotate_due(
    store: *const hsmkit_store,
    rotated: *mut usize,
) -> hsmkit_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let s = unsafe { try_ref(store) }?;
        out_ptr(rotated, "rotated")?;
        let results = s.rotate_due()?;
        let n = results.iter().filter(|r| r.result.is_ok()).count();
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { put(rotated, n) };
        match results.into_iter().find_map(|r| r.result.err()) {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    })
}
