//! Key import from arbitrary bytes (PEM, DER: PKCS#8, SPKI, PKCS#1, SEC1; JWK): never
//! panics; what parses either imports or is refused with a typed error; an imported key's
//! public half exports and parses back to the same key; both engines agree.
#![no_main]

use std::sync::OnceLock;

use hsmkit::{ErrorKind, KeyAttributes, KeyMaterial, Store};
use hsmkit_soft::{SoftBackend, SoftEngine};
use libfuzzer_sys::fuzz_target;

fn stores() -> &'static [Store; 2] {
    static STORES: OnceLock<[Store; 2]> = OnceLock::new();
    STORES.get_or_init(|| {
        [SoftEngine::RustCrypto, SoftEngine::AwsLc].map(|e| Store::new(SoftBackend::new().with_engine(e)))
    })
}

fuzz_target!(|data: &[u8]| {
    let text = std::str::from_utf8(data).ok();
    let parsed = [
        KeyMaterial::from_bytes(data),
        KeyMaterial::from_der(data),
        text.map_or(Err(hsmkit::Error::malformed("not UTF-8")), KeyMaterial::from_pem),
        text.map_or(Err(hsmkit::Error::malformed("not UTF-8")), KeyMaterial::from_jwk_str),
    ];
    for m in parsed {
        let m = match m {
            Ok(m) => m,
            Err(e) => {
                assert!(matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::Unsupported), "{e:?}");
                continue;
            }
        };
        let attrs = KeyAttributes { exportable: true, ..KeyAttributes::default() };
        let results = stores().each_ref().map(|s| s.import_key("k", m.clone(), attrs.clone()));
        match &results {
            [Ok(a), Ok(b)] => {
                assert_eq!(a.info().spec, b.info().spec);
                let pa = a.public_key().ok();
                assert_eq!(pa, b.public_key().ok(), "engines disagree on the public key");
                if let Some(p) = pa {
                    let back = KeyMaterial::from_der(&p.to_spki_der().unwrap()).unwrap();
                    assert!(matches!(back, KeyMaterial::Public(q) if q == p));
                }
            }
            [Err(a), Err(b)] => {
                assert!(matches!(a.kind(), ErrorKind::InvalidInput | ErrorKind::Unsupported), "{a:?}");
                assert!(matches!(b.kind(), ErrorKind::InvalidInput | ErrorKind::Unsupported), "{b:?}");
            }
            [a, b] => panic!("engines disagree on import: {:?} / {:?}", a.as_ref().err(), b.as_ref().err()),
        }
        for s in stores() {
            let _ = s.destroy_key("k");
        }
    }
});
