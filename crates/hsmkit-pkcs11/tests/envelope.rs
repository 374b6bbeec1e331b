//! Envelopes cross backends: with the same KEKs imported into the software store and a
//! SoftHSM2 token, what one seals the other opens and rewraps.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use hsmkit::envelope::{EncryptionContext, EnvelopeHeader, Recipient, RewrapMode, Rewrapper, Sealer};
use hsmkit::{KeyAttributes, KeyMaterial, KeyOp, KeySpec, KeyWrapAlgorithm as W, Store};
use hsmkit_pkcs11::testing::SoftHsmToken;

fn both() -> (Store, Store) {
    let soft = Store::new(hsmkit_soft::SoftBackend::new());
    let hsm = SoftHsmToken::new().and_then(|t| t.into_store()).expect("SoftHSM2 token");
    let ops = KeyAttributes::with_ops(&[KeyOp::WrapKey, KeyOp::UnwrapKey]);
    let aes: Vec<u8> = (0u8..32).map(|i| i.wrapping_mul(37)).collect();
    let rsa = soft
        .create_key(
            "rsa-gen",
            KeySpec::RSA_2048,
            KeyAttributes { exportable: true, ..KeyAttributes::default() },
        )
        .unwrap()
        .export()
        .unwrap()
        .to_pkcs8_pem()
        .unwrap();
    for store in [&soft, &hsm] {
        store.import_key("kek-aes", KeyMaterial::aes(&aes).unwrap(), ops.clone()).unwrap();
        store.import_key("kek-rsa", KeyMaterial::from_pem(&rsa).unwrap(), ops.clone()).unwrap();
    }
    (soft, hsm)
}

fn ctx() -> EncryptionContext {
    [("app".to_string(), "cross".to_string())].into()
}

#[test]
fn sealed_on_one_backend_opens_on_the_other() {
    let (soft, hsm) = both();
    let data: Vec<u8> = (0..200_000u32).map(|i| i.to_le_bytes()[1]).collect();
    for (from, to) in [(&soft, &hsm), (&hsm, &soft)] {
        // RSA-OAEP (SHA-1): the one OAEP both can unwrap with (SoftHSM2 lacks SHA-256).
        let sealer = Sealer::new([
            Recipient::new(from.get_key("kek-aes").unwrap()).unwrap(),
            Recipient::with_algorithm(from.get_key("kek-rsa").unwrap(), W::RsaOaep).unwrap(),
        ])
        .unwrap()
        .with_context(ctx())
        .unwrap();
        let env = sealer.seal(&data).unwrap();
        assert_eq!(
            &to.unseal(&env, &ctx()).unwrap()[..],
            &data[..],
            "{} -> {}",
            from.backend_kind(),
            to.backend_kind()
        );
        for name in ["kek-aes", "kek-rsa"] {
            let only = to.get_key(name).unwrap();
            let got = hsmkit::envelope::Opener::new(&only).with_context(ctx()).open(&env).unwrap();
            assert_eq!(&got[..], &data[..], "{name} alone on {}", to.backend_kind());
        }
        // Streaming on the other side too.
        let mut out = Vec::new();
        to.opener().with_context(ctx()).open_stream(&env[..], &mut out).unwrap();
        assert_eq!(out, data);
    }
}

#[test]
fn rewrapped_on_the_token_opens_in_software() {
    let (soft, hsm) = both();
    let env = Sealer::for_key(soft.get_key("kek-aes").unwrap()).unwrap().seal(b"rewrap me").unwrap();
    let to_rsa = Recipient::with_algorithm(hsm.get_key("kek-rsa").unwrap(), W::RsaOaep).unwrap();
    let rewrapped = Rewrapper::new(&hsm, [to_rsa], RewrapMode::Replace).unwrap().rewrap(&env).unwrap();
    let h = EnvelopeHeader::parse(&rewrapped).unwrap();
    assert_eq!(h.recipients().len(), 1);
    assert_eq!(h.recipients()[0].name, "kek-rsa");
    let only_rsa = soft.get_key("kek-rsa").unwrap();
    assert_eq!(&hsmkit::envelope::Opener::new(&only_rsa).open(&rewrapped).unwrap()[..], b"rewrap me");
}

/// Finding 13: sealing to a recipient whose token cannot unwrap what the envelope would
/// hold is refused up front (SoftHSM2 2.6.1 has no OAEP with SHA-256), not written as an
/// envelope that can never be opened there; the default algorithm is one it can unwrap.
#[test]
fn seal_refuses_a_recipient_the_token_cannot_unwrap_for() {
    let (soft, hsm) = both();
    let kek = hsm.get_key("kek-rsa").unwrap();
    assert!(!hsm.capabilities().unwrap.contains(&W::RsaOaep256), "SoftHSM2 2.6.1 has no OAEP-256");
    let e = Recipient::with_algorithm(kek.clone(), W::RsaOaep256).unwrap_err();
    assert_eq!(e.kind(), hsmkit::ErrorKind::Unsupported, "{e}");
    assert!(e.to_string().contains("CKM_RSA_PKCS_OAEP"), "names the mechanism: {e}");
    // The software store's copy of the same key can: sealing to it works, and rewrapping
    // an envelope to the token's key with OAEP-256 is refused the same way.
    let soft_kek = soft.get_key("kek-rsa").unwrap();
    let sealed = Sealer::new([Recipient::with_algorithm(soft_kek, W::RsaOaep256).unwrap()])
        .unwrap()
        .seal(b"x")
        .unwrap();
    assert!(Recipient::with_algorithm(kek.clone(), W::RsaOaep256).is_err());
    // With the default algorithm the token's key is a valid recipient, and opens.
    let sealed_here = Sealer::for_key(kek).unwrap().seal(b"y").unwrap();
    assert_eq!(&hsmkit::envelope::Opener::new(&hsm).open(&sealed_here).unwrap()[..], b"y");
    let _ = sealed;
}
