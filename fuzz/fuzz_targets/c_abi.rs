//! The C ABI with arbitrary bytes, lengths, NULL pointers and too-small buffers. The first
//! bytes choose the call, the key, the algorithm string and which pointers are NULL; the
//! rest is the input. Every call must return a defined result code (never PANIC), must
//! not touch a buffer it reports too small, and must write no more than it was given
//! (the buffers are exact-size allocations, so ASan catches an overrun).
#![no_main]
// Calling a C ABI is unsafe by nature; each call passes pointers to live buffers of the
// stated lengths, or NULL on purpose.
#![allow(unsafe_code)]

use std::ffi::{CString, c_char};
use std::ptr::{null, null_mut};

use hsmkit_ffi::*;
use libfuzzer_sys::fuzz_target;

struct Handles {
    store: *mut hsmkit_store,
    keys: [*mut hsmkit_key; 4],
    sealer: *mut hsmkit_sealer,
}

fn setup() -> Handles {
    let mut store = null_mut();
    // SAFETY: a NUL-terminated URI, NULL options, a writable out pointer.
    assert_eq!(unsafe { hsmkit_store_open(c"memory:".as_ptr(), null(), &mut store) }, hsmkit_result::HSMKIT_OK);
    let mut keys = [null_mut(); 4];
    for (k, (name, spec)) in
        keys.iter_mut().zip([(c"rsa", c"RSA-2048"), (c"ec", c"P-256"), (c"aes", c"AES-256"), (c"ec5", c"P-521")])
    {
        // SAFETY: live store, NUL-terminated strings, NULL ops (the spec's defaults).
        let r = unsafe { hsmkit_store_create_key(store, name.as_ptr(), spec.as_ptr(), null(), 0, k) };
        assert_eq!(r, hsmkit_result::HSMKIT_OK);
    }
    let mut sealer = null_mut();
    let keks = [c"aes".as_ptr()];
    // SAFETY: one KEK name, no context, a writable out pointer.
    let r = unsafe { hsmkit_sealer_new(store, keks.as_ptr(), 1, null(), 0, 0, &mut sealer) };
    assert_eq!(r, hsmkit_result::HSMKIT_OK);
    Handles { store, keys, sealer }
}

thread_local! {
    // libFuzzer runs the target on one thread; the handles live for the process.
    static HANDLES: Handles = setup();
}

const ALGS: [&[u8]; 16] = [
    b"RS256\0", b"PS384\0", b"ES256\0", b"ES512\0", b"RSA-OAEP\0", b"RSA-OAEP-256\0", b"RSA1_5\0", b"A256KW\0",
    b"A256KWP\0", b"A128KW\0", b"\0", b"es256\0", b"ES256 \0", b"\xff\xfe\0", b"A256GCM\0", b"RS256\0",
];

/// An output buffer: NULL (sizing), exact-size too small, or roomy; filled with a canary.
struct Out {
    buf: Option<Vec<u8>>,
    written: usize,
    written_null: bool,
}

impl Out {
    fn new(mode: u8, len_hint: usize, written_null: bool) -> Self {
        let buf = match mode % 3 {
            0 => None,
            1 => Some(vec![0xa5; len_hint % 64]),
            _ => Some(vec![0xa5; 8192]),
        };
        Out { buf, written: usize::MAX, written_null }
    }
    fn ptr(&mut self) -> *mut u8 {
        self.buf.as_mut().map_or(null_mut(), |b| b.as_mut_ptr())
    }
    fn cap(&self) -> usize {
        self.buf.as_ref().map_or(0, Vec::len)
    }
    /// `writes`: the call has an output buffer (not verify or import).
    fn check(&self, r: hsmkit_result, writes: bool) {
        let code = r as u32;
        assert!(code <= 15, "undefined result {code}");
        assert_ne!(r, hsmkit_result::HSMKIT_ERR_PANIC, "a panic reached the boundary");
        if !writes || self.written_null {
            return;
        }
        if r == hsmkit_result::HSMKIT_OK || r == hsmkit_result::HSMKIT_ERR_BUFFER_TOO_SMALL {
            assert_ne!(self.written, usize::MAX, "success without the length written");
        }
        if r == hsmkit_result::HSMKIT_ERR_BUFFER_TOO_SMALL {
            assert!(self.written > self.cap(), "too small, yet {} <= {}", self.written, self.cap());
            if let Some(b) = &self.buf {
                assert!(b.iter().all(|&x| x == 0xa5), "a too-small buffer was written");
            }
        }
        if r == hsmkit_result::HSMKIT_OK && self.buf.is_some() {
            assert!(self.written <= self.cap());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let &[op, sel, flags, ref input @ ..] = data else { return };
    HANDLES.with(|h| {
        let key = if flags & 0x40 != 0 { null() } else { h.keys[usize::from(sel & 3)].cast_const() };
        let alg = if flags & 0x80 != 0 { null() } else { ALGS[usize::from(sel >> 4)].as_ptr().cast::<c_char>() };
        // NULL input with its length kept: the ABI must refuse it (or accept len 0).
        let (ptr, len) = if flags & 0x20 != 0 { (null(), input.len()) } else { (input.as_ptr(), input.len()) };
        let half = input.len() / 2;
        let mut out = Out::new(flags, usize::from(sel), flags & 0x10 != 0);
        let written: *mut usize = if flags & 0x10 != 0 { null_mut() } else { &mut out.written };
        let (buf, cap) = (out.ptr(), out.cap());
        let cflags = u32::from(flags >> 2 & 3);
        // SAFETY (every call below): `key`/`alg`/`ptr` are NULL or live; `ptr` has `len`
        // bytes; `buf` is NULL or has `cap` bytes; `written` is NULL or writable.
        let r = unsafe {
            match op % 12 {
                0 => hsmkit_key_sign(key, alg, cflags, ptr, len, buf, cap, written),
                1 => hsmkit_key_verify(key, alg, cflags, ptr, half, input.as_ptr().add(half), len - half),
                2 => hsmkit_key_encrypt(key, alg, ptr, half.min(3), input.as_ptr(), len, buf, cap, written),
                3 => hsmkit_key_decrypt(key, alg, ptr, half.min(3), input.as_ptr(), len, buf, cap, written),
                4 => hsmkit_key_wrap(key, alg, ptr, len, buf, cap, written),
                5 => hsmkit_key_unwrap(key, alg, ptr, len, buf, cap, written),
                6 => hsmkit_key_public_key(key, u32::from(sel), buf, cap, written),
                7 => hsmkit_sealer_seal(h.sealer, ptr, len, buf, cap, written),
                8 => hsmkit_store_unseal(h.store, null(), 0, ptr, len, buf, cap, written),
                9 => {
                    let name = CString::new(input.iter().copied().filter(|&b| b != 0).collect::<Vec<u8>>()).unwrap();
                    hsmkit_store_describe_key(h.store, name.as_ptr(), buf, cap, written)
                }
                10 => {
                    let mut k = null_mut();
                    let name = c"imported".as_ptr();
                    let r = hsmkit_store_import_key(h.store, name, ptr, len, null(), u32::from(sel & 1), &mut k);
                    if r == hsmkit_result::HSMKIT_OK {
                        hsmkit_key_free(k);
                        let r = hsmkit_store_delete_key(h.store, name);
                        assert_eq!(r, hsmkit_result::HSMKIT_OK);
                        // Purge is refused when the store says so; either way the name is reused next time.
                        let _ = hsmkit_store_purge_deleted_key(h.store, name);
                    }
                    r
                }
                _ => hsmkit_last_error(buf, cap, written),
            }
        };
        out.check(r, !matches!(op % 12, 1 | 10));
    });
});
