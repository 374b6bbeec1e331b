//! Opening, streaming and rewrapping arbitrary bytes with a real KEK (the frozen vectors'
//! `aes256`, so that the seed corpus reaches the body): never panics, never opens
//! anything but a genuine envelope, and one-shot and streaming agree.
#![no_main]

use std::io::Read;
use std::sync::OnceLock;

use hsmkit::envelope::{Opener, Recipient, RewrapMode, Rewrapper};
use hsmkit::{ErrorKind, KeyAttributes, KeyMaterial, Store};
use libfuzzer_sys::fuzz_target;

fn store() -> &'static Store {
    static STORE: OnceLock<Store> = OnceLock::new();
    STORE.get_or_init(|| {
        let store = Store::new(hsmkit_soft::SoftBackend::new());
        // tests/vectors/envelope/v1.json, kek "aes256" v1.
        let key: Vec<u8> = (0u8..32).map(|i| (i % 251).wrapping_mul(7).wrapping_add(0x30)).collect();
        store.import_key("aes256", KeyMaterial::aes(&key).unwrap(), KeyAttributes::default()).unwrap();
        store.import_key("other", KeyMaterial::aes(&[1; 32]).unwrap(), KeyAttributes::default()).unwrap();
        store
    })
}

fuzz_target!(|data: &[u8]| {
    let store = store();
    let opener = Opener::new(store);
    let one_shot = opener.open(data);
    let mut streamed = Vec::new();
    let stream = opener.reader(data).and_then(|mut r| r.read_to_end(&mut streamed).map_err(hsmkit::Error::from));
    match (&one_shot, &stream) {
        (Ok(a), Ok(_)) => assert_eq!(&a[..], &streamed[..]),
        (Err(a), Err(b)) => {
            assert_eq!(a.kind(), b.kind());
            assert!(matches!(a.kind(), ErrorKind::DecryptionFailed | ErrorKind::NotFound), "{a}");
        }
        _ => panic!("one-shot and streaming disagree: {:?} / {:?}", one_shot.is_ok(), stream.is_ok()),
    }
    let to = Recipient::new(store.get_key("other").unwrap()).unwrap();
    if let Ok(rewrapped) = Rewrapper::new(store, [to], RewrapMode::Add).unwrap().rewrap(data) {
        // Rewrap does not look at the body, so it can succeed where open fails; when open
        // succeeded, the rewrapped envelope opens to the same plaintext.
        if let Ok(a) = &one_shot {
            assert_eq!(&opener.open(&rewrapped).unwrap()[..], &a[..]);
        }
    }
});
