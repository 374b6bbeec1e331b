//! The two-call convention for tokens, whose signatures are made only by the second call:
//! the sizing call's length is an upper bound for every algorithm and for claims and
//! headers that re-encode longer (`1E5` is written `100000.0`) or shorter (`\u00e9`),
//! and the second call's is the exact length. The sizing call signs nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

use std::ffi::{CStr, CString};
use std::ptr::{null, null_mut};

use hsmkit_ffi::hsmkit_result::*;
use hsmkit_ffi::*;

struct Store(*mut hsmkit_store);

impl Store {
    fn new() -> Self {
        let mut store = null_mut();
        // SAFETY: a C string, NULL options, a writable out pointer.
        assert_eq!(unsafe { hsmkit_store_open(c"memory:".as_ptr(), null(), &mut store) }, HSMKIT_OK);
        Store(store)
    }

    fn key(&self, name: &CStr, spec: &CStr) -> Key {
        let mut key = null_mut();
        // SAFETY: a live store, C strings, a writable out pointer.
        let r = unsafe { hsmkit_store_create_key(self.0, name.as_ptr(), spec.as_ptr(), null(), 0, &mut key) };
        assert_eq!(r, HSMKIT_OK);
        Key(key)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // SAFETY: from hsmkit_store_open, freed once.
        unsafe { hsmkit_store_free(self.0) }
    }
}

struct Key(*mut hsmkit_key);

impl Drop for Key {
    fn drop(&mut self) {
        // SAFETY: from hsmkit_store_create_key, freed once.
        unsafe { hsmkit_key_free(self.0) }
    }
}

/// The thread's last error message.
fn last_error() -> String {
    let mut buf = [0u8; 1024];
    let mut n = 0;
    // SAFETY: `buf` has 1024 bytes; `n` is writable.
    assert_eq!(unsafe { hsmkit_last_error(buf.as_mut_ptr(), buf.len(), &mut n) }, HSMKIT_OK);
    String::from_utf8_lossy(&buf[..n.saturating_sub(1)]).into_owned()
}

/// JWT sign, both calls: (the sizing call's length, the token).
fn jwt(
    key: &Key,
    alg: &CStr,
    claims: &str,
    header: Option<&str>,
    exp: u64,
    nbf: i64,
    flags: u32,
) -> (usize, String) {
    let claims = CString::new(claims).unwrap();
    let header = header.map(|h| CString::new(h).unwrap());
    let header_ptr = header.as_ref().map_or(null(), |h| h.as_ptr());
    let (mut bound, mut n) = (0, 0);
    // SAFETY: a live key; C strings or NULL; `bound` writable.
    let r = unsafe {
        hsmkit_key_jwt_sign(
            key.0,
            alg.as_ptr(),
            claims.as_ptr(),
            header_ptr,
            exp,
            nbf,
            flags,
            null_mut(),
            0,
            &mut bound,
        )
    };
    assert_eq!(r, HSMKIT_OK, "{alg:?} {claims:?} {header:?} {exp} {nbf} {flags}: {}", last_error());
    let mut buf = vec![0xa5u8; bound];
    // SAFETY: as above; `buf` has `bound` bytes.
    let r = unsafe {
        hsmkit_key_jwt_sign(
            key.0,
            alg.as_ptr(),
            claims.as_ptr(),
            header_ptr,
            exp,
            nbf,
            flags,
            buf.as_mut_ptr(),
            buf.len(),
            &mut n,
        )
    };
    assert_eq!(r, HSMKIT_OK, "{alg:?} {claims:?} {header:?} {exp} {nbf} {flags}: {}", last_error());
    assert!(n <= bound, "{alg:?}: wrote {n} bytes, sized {bound}");
    assert_eq!(buf[n - 1], 0, "NUL-terminated");
    buf.truncate(n - 1);
    (bound, String::from_utf8(buf).unwrap())
}

fn jws(key: &Key, alg: &CStr, header: Option<&CStr>, payload: &[u8]) -> (usize, String) {
    let header_ptr = header.map_or(null(), CStr::as_ptr);
    let (mut bound, mut n) = (0, 0);
    // SAFETY: a live key; C strings or NULL; `payload` has its length; `bound` writable.
    let r = unsafe {
        hsmkit_key_jws_sign(
            key.0,
            alg.as_ptr(),
            header_ptr,
            payload.as_ptr(),
            payload.len(),
            null_mut(),
            0,
            &mut bound,
        )
    };
    assert_eq!(r, HSMKIT_OK);
    let mut buf = vec![0u8; bound];
    // SAFETY: as above; `buf` has `bound` bytes.
    let r = unsafe {
        hsmkit_key_jws_sign(
            key.0,
            alg.as_ptr(),
            header_ptr,
            payload.as_ptr(),
            payload.len(),
            buf.as_mut_ptr(),
            buf.len(),
            &mut n,
        )
    };
    assert_eq!(r, HSMKIT_OK);
    assert!(n <= bound && buf[n - 1] == 0);
    buf.truncate(n - 1);
    (bound, String::from_utf8(buf).unwrap())
}

/// Every signature algorithm with a key of its kind, claims and headers of every shape.
#[test]
fn the_sizing_call_bounds_every_token() {
    let store = Store::new();
    let keys = [
        (store.key(c"p256", c"P-256"), &[c"ES256"][..]),
        (store.key(c"p384", c"P-384"), &[c"ES384"][..]),
        (store.key(c"p521", c"P-521"), &[c"ES512"][..]),
        (store.key(c"k256", c"P-256K"), &[c"ES256K"][..]),
        (store.key(c"ed", c"Ed25519"), &[c"EdDSA"][..]),
        (store.key(c"rsa", c"RSA-2048"), &[c"RS256", c"RS512", c"PS256", c"PS384"][..]),
        (store.key(c"hs256", c"HMAC-256"), &[c"HS256"][..]),
        (store.key(c"hs512", c"HMAC-512"), &[c"HS512"][..]),
    ];
    let claims = [
        "{}",
        r#"{"sub":"alice","aud":["a","b"],"n":1E5,"f":1.0e-7,"big":18446744073709551615}"#,
        r#"{"name":"\u00e9\u00e8 \ud83d\ude00","nested":{"a":[1,2,{"b":null}]},"s":"\"\\\/"}"#,
    ];
    let headers = [None, Some(r#"{"typ":"at+jwt"}"#), Some(r#"{"cty":"\u0001x","x5t#S256":"abc"}"#)];
    for (key, algs) in &keys {
        for alg in *algs {
            for c in claims {
                for h in headers {
                    for (exp, nbf, flags) in
                        [(0, 0, 0), (3600, 1, 0), (u64::from(u32::MAX), i64::MAX / 4, 0), (0, 0, 1)]
                    {
                        let (bound, token) = jwt(key, alg, c, h, exp, nbf, flags);
                        assert_eq!(token.split('.').count(), 3);
                        // The bound is near the length, not a blanket over-allocation.
                        assert!(bound - token.len() < 200, "{alg:?} {c} {h:?}: {bound} for {}", token.len());
                    }
                }
            }
            for payload in [&b""[..], b"x", b"xy", b"xyz", &[0xffu8; 1000][..]] {
                jws(key, alg, None, payload);
                jws(key, alg, Some(c"{\"cty\":\"\\u00e9\"}"), payload);
            }
        }
    }
}

/// A failed or refused call writes nothing; the buffer stays as it was.
#[test]
fn a_short_buffer_reports_the_bound_and_writes_nothing() {
    let store = Store::new();
    let key = store.key(c"k", c"P-256");
    let (bound, _) = jws(&key, c"ES256", None, b"payload");
    let mut buf = [0xa5u8; 16];
    let mut n = 0;
    // SAFETY: a live key; C strings; `buf` has 16 bytes.
    let r = unsafe {
        hsmkit_key_jws_sign(
            key.0,
            c"ES256".as_ptr(),
            null(),
            b"payload".as_ptr(),
            7,
            buf.as_mut_ptr(),
            16,
            &mut n,
        )
    };
    assert_eq!(r, HSMKIT_ERR_BUFFER_TOO_SMALL);
    assert!(n >= 16 && n <= bound);
    assert_eq!(buf, [0xa5; 16]);
}
