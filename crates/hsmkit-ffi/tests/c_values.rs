//! Numbers C can set (result codes, flags, formats, modes) arrive as integers and are
//! checked: an out-of-range value is `HSMKIT_ERR_INVALID_INPUT` (or `"unknown"` from
//! `hsmkit_result_name`), never a Rust enum outside its variants. And rewrap through the
//! C ABI needs the envelope's encryption context, exactly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

use std::ffi::{CStr, c_char};
use std::ptr::{null, null_mut};

use hsmkit_ffi::hsmkit_result::*;
use hsmkit_ffi::*;

fn name(code: u32) -> &'static str {
    // SAFETY: `hsmkit_result_name` returns a static NUL-terminated string for any number.
    unsafe { CStr::from_ptr(hsmkit_result_name(code)) }.to_str().unwrap()
}

#[test]
fn result_name_takes_any_number() {
    let names: Vec<&str> = (0..=15).map(name).collect();
    assert_eq!(names[0], "HSMKIT_OK");
    assert_eq!(names[3], "HSMKIT_ERR_INVALID_INPUT");
    assert_eq!(names[15], "HSMKIT_ERR_OTHER");
    assert!(names.iter().all(|n| n.starts_with("HSMKIT_")));
    for code in [16, 17, 255, 0x8000_0000, u32::MAX] {
        assert_eq!(name(code), "unknown", "{code}");
    }
}

struct Fixture {
    store: *mut hsmkit_store,
}

impl Fixture {
    fn new() -> Self {
        let mut store = null_mut();
        // SAFETY: a C string, NULL options, a writable out pointer.
        let r = unsafe { hsmkit_store_open(c"memory:".as_ptr(), null(), &mut store) };
        assert_eq!(r, HSMKIT_OK);
        Fixture { store }
    }

    fn create(&self, name: &CStr, spec: &CStr) -> *mut hsmkit_key {
        let mut key = null_mut();
        // SAFETY: a live store, C strings, a writable out pointer.
        let r =
            unsafe { hsmkit_store_create_key(self.store, name.as_ptr(), spec.as_ptr(), null(), 0, &mut key) };
        assert_eq!(r, HSMKIT_OK);
        key
    }

    fn seal(&self, keks: &[*const c_char], ctx: &[hsmkit_context_entry], data: &[u8]) -> Vec<u8> {
        let mut sealer = null_mut();
        let mut n = 0;
        // SAFETY: live store; `keks` and `ctx` are arrays of C strings of the given lengths;
        // the output buffer has `out.len()` bytes; the sealer is freed once.
        unsafe {
            let r = hsmkit_sealer_new(
                self.store,
                keks.as_ptr(),
                keks.len(),
                ctx.as_ptr(),
                ctx.len(),
                0,
                &mut sealer,
            );
            assert_eq!(r, HSMKIT_OK);
            assert_eq!(
                hsmkit_sealer_seal(sealer, data.as_ptr(), data.len(), null_mut(), 0, &mut n),
                HSMKIT_OK
            );
            let mut out = vec![0; n];
            let r =
                hsmkit_sealer_seal(sealer, data.as_ptr(), data.len(), out.as_mut_ptr(), out.len(), &mut n);
            assert_eq!(r, HSMKIT_OK);
            hsmkit_sealer_free(sealer);
            out.truncate(n);
            out
        }
    }

    /// `hsmkit_store_rewrap` into a roomy buffer: the result, and the buffer as left.
    fn rewrap(
        &self,
        keks: &[*const c_char],
        mode: u32,
        ctx: &[hsmkit_context_entry],
        env: &[u8],
    ) -> (hsmkit_result, Vec<u8>) {
        let mut out = vec![0xa5; env.len() + 4096];
        let mut n = usize::MAX;
        // SAFETY: live store; arrays of the given lengths; `out` has `out.len()` bytes.
        let r = unsafe {
            hsmkit_store_rewrap(
                self.store,
                keks.as_ptr(),
                keks.len(),
                mode,
                ctx.as_ptr(),
                ctx.len(),
                env.as_ptr(),
                env.len(),
                out.as_mut_ptr(),
                out.len(),
                &mut n,
            )
        };
        if r == HSMKIT_OK {
            out.truncate(n);
        } else {
            assert_eq!(n, usize::MAX, "a failure reported a length");
        }
        (r, out)
    }

    fn unseal(&self, ctx: &[hsmkit_context_entry], env: &[u8]) -> (hsmkit_result, Vec<u8>) {
        let mut out = vec![0; env.len()];
        let mut n = 0;
        // SAFETY: live store; `ctx` has `ctx.len()` entries; `out` has `out.len()` bytes.
        let r = unsafe {
            hsmkit_store_unseal(
                self.store,
                ctx.as_ptr(),
                ctx.len(),
                env.as_ptr(),
                env.len(),
                out.as_mut_ptr(),
                out.len(),
                &mut n,
            )
        };
        out.truncate(n);
        (r, out)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // SAFETY: from hsmkit_store_open, freed once.
        unsafe { hsmkit_store_free(self.store) }
    }
}

#[test]
fn out_of_range_flags_formats_and_modes_are_invalid_input() {
    let f = Fixture::new();
    let key = f.create(c"ec", c"P-256");
    let mut buf = [0u8; 512];
    let mut n = 0;
    for bad in [3, 7, 0x8000_0000, u32::MAX] {
        // SAFETY: a live key; `buf` has `buf.len()` bytes.
        let r = unsafe { hsmkit_key_public_key(key, bad, buf.as_mut_ptr(), buf.len(), &mut n) };
        assert_eq!(r, HSMKIT_ERR_INVALID_INPUT, "format {bad}");
    }
    for bad in [4, 0x8000_0000, u32::MAX] {
        // SAFETY: a live key; C strings; `buf` has `buf.len()` bytes.
        let r = unsafe {
            hsmkit_key_sign(key, c"ES256".as_ptr(), bad, b"m".as_ptr(), 1, buf.as_mut_ptr(), 512, &mut n)
        };
        assert_eq!(r, HSMKIT_ERR_INVALID_INPUT, "sign flags {bad}");
        // SAFETY: as above.
        let r = unsafe { hsmkit_key_verify(key, c"ES256".as_ptr(), bad, b"m".as_ptr(), 1, buf.as_ptr(), 64) };
        assert_eq!(r, HSMKIT_ERR_INVALID_INPUT, "verify flags {bad}");
        let mut k = null_mut();
        // SAFETY: a live store; C strings; a writable out pointer.
        let r = unsafe {
            hsmkit_store_create_key(f.store, c"x".as_ptr(), c"P-256".as_ptr(), null(), bad, &mut k)
        };
        assert_eq!(r, HSMKIT_ERR_INVALID_INPUT, "key flags {bad}");
        assert!(k.is_null());
    }
    // SAFETY: from hsmkit_store_create_key, freed once.
    unsafe { hsmkit_key_free(key) };

    f.create(c"kek", c"AES-256");
    let keks = [c"kek".as_ptr()];
    let env = f.seal(&keks, &[], b"data");
    for bad in [2, 3, 0x8000_0000, u32::MAX] {
        let (r, out) = f.rewrap(&keks, bad, &[], &env);
        assert_eq!(r, HSMKIT_ERR_INVALID_INPUT, "rewrap mode {bad}");
        assert!(out.iter().all(|b| *b == 0xa5), "nothing written");
    }
    assert_eq!(f.rewrap(&keks, HSMKIT_REWRAP_REPLACE, &[], &env).0, HSMKIT_OK);
    assert_eq!(f.rewrap(&keks, HSMKIT_REWRAP_ADD, &[], &env).0, HSMKIT_OK);
}

#[test]
fn rewrap_needs_the_context_and_moves_the_envelope_to_the_new_version() {
    let f = Fixture::new();
    let k = f.create(c"kek", c"AES-256");
    // SAFETY: from hsmkit_store_create_key, freed once.
    unsafe { hsmkit_key_free(k) };
    let keks = [c"kek".as_ptr()];
    let ctx = [hsmkit_context_entry { key: c"tenant".as_ptr(), value: c"acme".as_ptr() }];
    let wrong = [hsmkit_context_entry { key: c"tenant".as_ptr(), value: c"other".as_ptr() }];
    let env = f.seal(&keks, &ctx, b"payload");

    let mut v2 = null_mut();
    // SAFETY: a live store, a C string, a writable out pointer; the key is freed once.
    unsafe {
        assert_eq!(hsmkit_store_rotate_key(f.store, c"kek".as_ptr(), &mut v2), HSMKIT_OK);
        hsmkit_key_free(v2);
    }

    for (what, c) in [("wrong", &wrong[..]), ("missing", &[][..])] {
        let (r, out) = f.rewrap(&keks, HSMKIT_REWRAP_REPLACE, c, &env);
        assert_eq!(r, HSMKIT_ERR_DECRYPTION_FAILED, "{what} context");
        assert!(out.iter().all(|b| *b == 0xa5), "{what} context: nothing written");
    }
    let (r, rewrapped) = f.rewrap(&keks, HSMKIT_REWRAP_REPLACE, &ctx, &env);
    assert_eq!(r, HSMKIT_OK);

    // Version 1 retired: only the rewrapped envelope (for version 2) opens.
    let off = hsmkit_key_update {
        enabled: 0,
        not_before: HSMKIT_TIME_UNCHANGED,
        expires: HSMKIT_TIME_UNCHANGED,
        ops: null(),
    };
    // SAFETY: a live store, a C string, an update with NULL ops.
    assert_eq!(unsafe { hsmkit_store_update_key(f.store, c"kek".as_ptr(), 1, &off) }, HSMKIT_OK);
    assert_eq!(f.unseal(&ctx, &env).0, HSMKIT_ERR_PERMISSION_DENIED, "version 1 is disabled");
    assert_eq!(f.unseal(&wrong, &rewrapped).0, HSMKIT_ERR_DECRYPTION_FAILED);
    let (r, plain) = f.unseal(&ctx, &rewrapped);
    assert_eq!(r, HSMKIT_OK);
    assert_eq!(plain, b"payload");
}
