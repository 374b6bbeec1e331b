//! Secrets are wiped before their memory is freed. A global allocator that, while armed,
//! scans every block being freed (and every block a `realloc` moves away from) for a
//! canary: the first 16 bytes of a secret the test planted. Any hit is a copy of the
//! secret left in freed memory. Checked for key material (memory store and encrypted
//! keystore), a keystore passphrase, envelope data keys, and a PKCS#11 PIN given through
//! the Rust API and through the C ABI.
//!
//! The scan sees the Rust heap only: memory AWS-LC or SoftHSM2 allocate with C `malloc`
//! is theirs to wipe (AWS-LC's `OPENSSL_free` cleanses; see SECURITY.md). It lives in the
//! FFI crate because an allocator needs `unsafe`, which only this crate may use.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::CString;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

use hsmkit::envelope::{EnvelopeHeader, Sealer};
use hsmkit::{KeyAttributes, KeyMaterial, KeyOp, KeySpec, KeyWrapAlgorithm};
use hsmkit_open::OpenOptions;

const CANARY_LEN: usize = 16;

static ARMED: AtomicBool = AtomicBool::new(false);
static CANARY: [AtomicU8; CANARY_LEN] = [const { AtomicU8::new(0) }; CANARY_LEN];
static FOUND: AtomicUsize = AtomicUsize::new(0);

struct Scanning;

fn contains_canary(block: &[u8]) -> bool {
    let canary: [u8; CANARY_LEN] = std::array::from_fn(|i| CANARY[i].load(Ordering::Relaxed));
    block.windows(CANARY_LEN).any(|w| w == canary)
}

// SAFETY: every call is forwarded to the system allocator with the caller's arguments;
// the scan only reads a block the caller still owns (before it is freed).
unsafe impl GlobalAlloc for Scanning {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ARMED.load(Ordering::Relaxed) && layout.size() >= CANARY_LEN {
            // SAFETY: `ptr` is a live block of `layout.size()` bytes until freed below.
            let block = unsafe { std::slice::from_raw_parts(ptr, layout.size()) };
            if contains_canary(block) {
                FOUND.fetch_add(1, Ordering::Relaxed);
            }
        }
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) }
    }
    // `realloc` keeps its default (allocate, copy, `dealloc` the old block), so a moved
    // buffer's old copy is scanned too.
}

#[global_allocator]
static ALLOCATOR: Scanning = Scanning;

/// One check at a time: the allocator state is global.
static SERIAL: Mutex<()> = Mutex::new(());

/// Runs `f` with `secret` as the canary and returns how many freed blocks held it.
fn freed_copies(secret: &[u8], f: impl FnOnce()) -> usize {
    for (slot, b) in CANARY.iter().zip(secret) {
        slot.store(*b, Ordering::Relaxed);
    }
    FOUND.store(0, Ordering::Relaxed);
    ARMED.store(true, Ordering::SeqCst);
    f();
    ARMED.store(false, Ordering::SeqCst);
    FOUND.load(Ordering::Relaxed)
}

/// The scanner itself works: a plain `Vec` holding the canary is found, a zeroized one is not.
#[test]
fn the_scanner_finds_an_unwiped_secret() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let secret = *b"CANARY-scanner-self-test-0123456";
    assert!(freed_copies(&secret, || drop(std::hint::black_box(secret.to_vec()))) >= 1);
    assert_eq!(freed_copies(&secret, || drop(zeroize::Zeroizing::new(secret.to_vec()))), 0);
}

#[test]
fn key_material_is_wiped_memory_store() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let secret = *b"CANARY-aes-key-in-memory-store!!";
    let found = freed_copies(&secret, || {
        let store = hsmkit_open::open("memory:", &OpenOptions::new()).unwrap();
        let attrs = KeyAttributes {
            exportable: true,
            ..KeyAttributes::with_ops(&[KeyOp::WrapKey, KeyOp::UnwrapKey])
        };
        let key = store.import_key("k", KeyMaterial::aes(&secret).unwrap(), attrs).unwrap();
        let w = key.wrap_key(KeyWrapAlgorithm::A256Kw, &[1; 32]).unwrap();
        key.unwrap_key(KeyWrapAlgorithm::A256Kw, &w).unwrap();
        drop(key.export().unwrap());
        let env = Sealer::for_key(key).unwrap().seal(b"data").unwrap();
        store.opener().open(&env).unwrap();
    });
    assert_eq!(found, 0, "freed blocks held the AES key");
}

#[test]
fn jwk_import_leaves_no_copy_of_the_key() {
    use base64ct::Encoding;
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let secret = *b"CANARY-aes-key-given-as-a-JWK!!!";
    let k = base64ct::Base64UrlUnpadded::encode_string(&secret);
    let jwk = format!(r#"{{"kty":"oct","k":"{k}","alg":"A256KW"}}"#);
    // Both the key and its base64url text (what the parsed JSON holds).
    for canary in [&secret[..], k.as_bytes()] {
        let found = freed_copies(canary, || {
            drop(KeyMaterial::from_jwk_str(&jwk).unwrap());
            drop(KeyMaterial::from_bytes(jwk.as_bytes()).unwrap());
        });
        assert_eq!(found, 0, "freed blocks held {}", String::from_utf8_lossy(&canary[..16]));
    }
}

#[test]
fn key_material_and_passphrase_are_wiped_keystore() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let uri = format!("file://{}", dir.path().join("ks").display());
    let secret = *b"CANARY-aes-key-in-the-keystore!!";
    let found = freed_copies(&secret, || {
        let store = hsmkit_open::open(&uri, &OpenOptions::new().passphrase("correct horse")).unwrap();
        store.import_key("k", KeyMaterial::aes(&secret).unwrap(), KeyAttributes::default()).unwrap();
        drop(store);
        // Reopened: the material is read back and decrypted.
        let store = hsmkit_open::open(&uri, &OpenOptions::new().passphrase("correct horse")).unwrap();
        let key = store.get_key("k").unwrap();
        key.wrap_key(KeyWrapAlgorithm::A256Kw, &[1; 32]).unwrap();
    });
    assert_eq!(found, 0, "freed blocks held the key material");

    let passphrase = "CANARY-keystore-passphrase-0123";
    let found = freed_copies(passphrase.as_bytes(), || {
        let store = hsmkit_open::open(&uri, &OpenOptions::new().passphrase(passphrase));
        // A wrong passphrase for this keystore: refused, and wiped all the same.
        assert!(store.is_err());
        let fresh = format!("file://{}", dir.path().join("ks2").display());
        let store = hsmkit_open::open(&fresh, &OpenOptions::new().passphrase(passphrase)).unwrap();
        store.create_key("k", KeySpec::P256, KeyAttributes::default()).unwrap();
    });
    assert_eq!(found, 0, "freed blocks held the passphrase");
}

/// The first bytes of an envelope's data key, learnt the way an opener does, to watch for
/// in freed memory.
fn data_key_canary(kek: &hsmkit::Key, env: &[u8]) -> [u8; CANARY_LEN] {
    let header = EnvelopeHeader::read_from(&mut &env[..]).unwrap();
    let r = &header.recipients()[0];
    let dek = kek.unwrap_key(r.algorithm, r.wrapped_key()).unwrap();
    let mut canary = [0u8; CANARY_LEN];
    canary.copy_from_slice(&dek[..CANARY_LEN]);
    canary
}

#[test]
fn data_keys_are_wiped() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let store = hsmkit_open::open("memory:", &OpenOptions::new()).unwrap();
    let kek = store.create_key("kek", KeySpec::AES_256, KeyAttributes::default()).unwrap();
    let env = Sealer::for_key(kek.clone()).unwrap().seal(&[3u8; 100_000]).unwrap();
    let canary = data_key_canary(&kek, &env);
    let found = freed_copies(&canary, || {
        let opener = store.opener();
        opener.open(&env).unwrap();
        // The opener's data-key cache wipes the keys it held when dropped.
        let limits =
            hsmkit::envelope::CacheLimits::new(std::time::Duration::from_secs(60), 10, 1 << 30).unwrap();
        let cached = store.opener().with_data_key_cache(limits);
        cached.open(&env).unwrap();
        cached.open(&env).unwrap();
        drop(cached);
        let mut out = Vec::new();
        opener.open_stream(&env[..], &mut out).unwrap();
        hsmkit::envelope::Rewrapper::new(
            &store,
            [hsmkit::envelope::Recipient::new(kek).unwrap()],
            hsmkit::envelope::RewrapMode::Replace,
        )
        .unwrap()
        .rewrap(&env)
        .unwrap();
    });
    assert_eq!(found, 0, "freed blocks held the data key");
}

/// The opener's data-key cache moves its entries (growth, eviction): no move may leave a
/// copy of a data key in freed memory. A used-up first entry of six makes the eviction
/// shift the others down, which leaves the last key's old slot (the canary) past the end
/// unless only pointers move.
#[test]
fn the_opener_cache_leaves_no_data_key_behind() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let store = hsmkit_open::open("memory:", &OpenOptions::new()).unwrap();
    let kek = store.create_key("kek", KeySpec::AES_256, KeyAttributes::default()).unwrap();
    let sealer = Sealer::for_key(kek.clone()).unwrap();
    let envs: Vec<Vec<u8>> = (0..6).map(|i| sealer.seal(&[i; 100]).unwrap()).collect();
    let canary = data_key_canary(&kek, &envs[5]);
    let found = freed_copies(&canary, || {
        let limits =
            hsmkit::envelope::CacheLimits::new(std::time::Duration::from_secs(60), 2, 1 << 30).unwrap();
        let opener = store.opener().with_data_key_cache(limits);
        for env in &envs {
            opener.open(env).unwrap();
        }
        opener.open(&envs[0]).unwrap(); // the first entry's second and last use
        opener.open(&envs[2]).unwrap(); // evicts it: the entries after it move down
        drop(opener);
    });
    assert_eq!(found, 0, "freed blocks held a cached data key");
}

/// Plaintext an envelope opens to, and the chunk buffers of streaming seal and open, are
/// wiped before they are freed (a bulk `fill` now, no longer `zeroize`'s byte loop); a
/// `Vec` holding the same bytes is found (the control).
#[test]
fn plaintext_buffers_are_wiped() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let store = hsmkit_open::open("memory:", &OpenOptions::new()).unwrap();
    store.create_key("kek", KeySpec::AES_256, KeyAttributes::default()).unwrap();
    let sealer = store.sealer(&["kek"]).unwrap().with_chunk_size(4096).unwrap();
    let secret = b"CANARY-plaintext-0123456789abcdef";
    let plain = secret.repeat(500);
    let env = sealer.seal(&plain).unwrap();
    let control = freed_copies(secret, || drop(std::hint::black_box(secret.to_vec())));
    assert!(control > 0, "the scanner missed a plain Vec");
    let found = freed_copies(secret, || {
        let opened = store.opener().open(&env).unwrap();
        assert_eq!(&opened[..], &plain[..]);
        // Truncated bytes stay in the allocation: the wipe covers spare capacity too.
        let mut s = hsmkit::SecretVec::with_capacity(64);
        s.extend_from_slice(secret);
        s.truncate(1);
        drop(s);
        let mut sealed = Vec::new();
        sealer.seal_stream(&plain[..], &mut sealed).unwrap();
        let mut w = sealer.writer(Vec::new()).unwrap();
        std::io::Write::write_all(&mut w, &plain).unwrap();
        sealed = w.finish().unwrap();
        let mut out = hsmkit::SecretVec::new();
        store.opener().open_stream(&sealed[..], &mut out).unwrap();
        assert_eq!(&out[..], &plain[..]);
        // File to file: no buffered reader or writer frees plaintext.
        let dir = tempfile::tempdir().unwrap();
        let (src, env_file, back) = (dir.path().join("p"), dir.path().join("e"), dir.path().join("o"));
        std::fs::write(&src, &plain).unwrap();
        sealer.seal_file(&src, &env_file).unwrap();
        store.opener().open_file(&env_file, &back).unwrap();
        let mut reread = hsmkit::SecretVec::with_capacity(plain.len());
        std::io::copy(&mut std::fs::File::open(&back).unwrap(), &mut reread).unwrap();
        assert!(reread[..] == plain[..]);
    });
    assert_eq!(found, 0, "freed blocks held plaintext");
}

#[test]
fn pin_is_wiped_rust_api_and_c_abi() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let pin = "CANARY-user-pin-0123456789abcdef";
    let token = hsmkit_pkcs11::testing::SoftHsmToken::with_user_pin(pin).unwrap();
    // The token's URI without its PIN: the PIN comes through the options.
    let uri = token.uri().split_once("&pin-value").map_or(token.uri(), |(u, _)| u).to_owned();
    assert!(!uri.contains(pin));
    let found = freed_copies(pin.as_bytes(), || {
        let store = hsmkit_open::open(&uri, &OpenOptions::new().pin(pin)).unwrap();
        let key = store.create_key("k", KeySpec::P256, KeyAttributes::default()).unwrap();
        key.sign(hsmkit::SignatureAlgorithm::Es256, b"m").unwrap();
    });
    assert_eq!(found, 0, "freed blocks held the PIN (Rust API)");

    let c_uri = CString::new(uri).unwrap();
    let c_pin = CString::new(pin).unwrap();
    let found = freed_copies(pin.as_bytes(), || {
        use hsmkit_ffi::*;
        let mut options = std::ptr::null_mut();
        let mut store = std::ptr::null_mut();
        // SAFETY: valid out pointers and NUL-terminated strings; each handle freed once.
        unsafe {
            assert_eq!(hsmkit_open_options_new(&mut options), hsmkit_result::HSMKIT_OK);
            assert_eq!(hsmkit_open_options_set_pin(options, c_pin.as_ptr()), hsmkit_result::HSMKIT_OK);
            assert_eq!(hsmkit_store_open(c_uri.as_ptr(), options, &mut store), hsmkit_result::HSMKIT_OK);
            hsmkit_open_options_free(options);
            hsmkit_store_free(store);
        }
    });
    // The caller's own C string (c_pin) is the caller's to wipe; it is not freed here.
    assert_eq!(found, 0, "freed blocks held the PIN (C ABI)");
}

/// A secret's value, set and read through the Rust API and through the C ABI, on a memory
/// store and an encrypted keystore (reopened, so that the sealed value is read back): the
/// sealing, the opening and the `hsmkit_secret` handle leave no copy in freed memory. The
/// caller's own buffers (the value handed in, the buffer `hsmkit_secret_value` fills)
/// are the caller's; here they are wiped by `Zeroizing` before they are freed.
#[test]
fn secret_values_are_wiped_rust_api_and_c_abi() {
    use hsmkit::SecretAttributes;
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let keystore = format!("file://{}", dir.path().join("ks").display());
    let opts = OpenOptions::new().passphrase("correct horse");
    let secret = *b"CANARY-secret-value-0123456789ab";

    for uri in ["memory:", keystore.as_str()] {
        let found = freed_copies(&secret, || {
            let store = hsmkit_open::open(uri, &opts).unwrap();
            store.set_secret("s", &secret, SecretAttributes::default()).unwrap();
            let got = store.get_secret("s").unwrap();
            assert_eq!(got.value(), &secret[..]);
            drop(got);
            let (_, value) = store.get_secret_version("s", 1).unwrap().into_parts();
            assert_eq!(&value[..], &secret[..]);
            drop(value);
            drop(store);
            // Reopened: the sealed value is read from the keystore and opened again.
            let store = hsmkit_open::open(uri, &opts).unwrap();
            if uri != "memory:" {
                assert_eq!(store.get_secret("s").unwrap().value(), &secret[..]);
            }
        });
        assert_eq!(found, 0, "freed blocks held the secret value (Rust API, {uri})");
    }

    let c_uri = CString::new(keystore).unwrap();
    let c_pass = CString::new("correct horse").unwrap();
    let found = freed_copies(&secret, || {
        use hsmkit_ffi::*;
        let mut options = std::ptr::null_mut();
        let mut store = std::ptr::null_mut();
        let mut handle = std::ptr::null_mut();
        let (mut version, mut n) = (0u32, 0usize);
        let mut out = zeroize::Zeroizing::new(vec![0u8; 64]);
        // SAFETY: valid out pointers, NUL-terminated strings, `secret` has its length and
        // `out` its capacity; each handle freed once.
        unsafe {
            assert_eq!(hsmkit_open_options_new(&mut options), hsmkit_result::HSMKIT_OK);
            assert_eq!(
                hsmkit_open_options_set_passphrase(options, c_pass.as_ptr()),
                hsmkit_result::HSMKIT_OK
            );
            assert_eq!(hsmkit_store_open(c_uri.as_ptr(), options, &mut store), hsmkit_result::HSMKIT_OK);
            let r = hsmkit_store_set_secret(
                store,
                c"c".as_ptr(),
                secret.as_ptr(),
                secret.len(),
                c"text/plain".as_ptr(),
                HSMKIT_TIME_NONE,
                HSMKIT_TIME_NONE,
                0,
                &mut version,
            );
            assert_eq!(r, hsmkit_result::HSMKIT_OK);
            assert_eq!(
                hsmkit_store_get_secret(store, c"c".as_ptr(), 0, &mut handle),
                hsmkit_result::HSMKIT_OK
            );
            assert_eq!(
                hsmkit_secret_value(handle, std::ptr::null_mut(), 0, &mut n),
                hsmkit_result::HSMKIT_OK
            );
            assert_eq!(n, secret.len());
            let r = hsmkit_secret_value(handle, out.as_mut_ptr(), 4, &mut n);
            assert_eq!(r, hsmkit_result::HSMKIT_ERR_BUFFER_TOO_SMALL);
            let r = hsmkit_secret_value(handle, out.as_mut_ptr(), out.len(), &mut n);
            assert_eq!(r, hsmkit_result::HSMKIT_OK);
            assert_eq!(&out[..n], &secret[..]);
            let mut info = vec![0u8; 1024];
            let r = hsmkit_secret_info(handle, info.as_mut_ptr(), info.len(), &mut n);
            assert_eq!(r, hsmkit_result::HSMKIT_OK);
            hsmkit_secret_free(handle);
            assert_eq!(hsmkit_store_delete_secret(store, c"c".as_ptr()), hsmkit_result::HSMKIT_OK);
            assert_eq!(hsmkit_store_purge_deleted_secret(store, c"c".as_ptr()), hsmkit_result::HSMKIT_OK);
            hsmkit_open_options_free(options);
            hsmkit_store_free(store);
        }
        drop(out); // the caller's copy, wiped by its owner
    });
    assert_eq!(found, 0, "freed blocks held the secret value (C ABI)");

    // The control: the same value in a buffer its owner does not wipe is found.
    let control = freed_copies(&secret, || drop(std::hint::black_box(secret.to_vec())));
    assert!(control > 0, "the scanner missed a plain Vec");
}
