//! The two crypto providers against RFC 5869's vectors and against each other, where
//! Wycheproof does not reach (pseudorandom keys longer than a hash, which the RFC allows).
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use hsmkit::{CryptoProvider, HashAlg};

fn providers() -> Vec<&'static dyn CryptoProvider> {
    #[allow(unused_mut)]
    let mut v: Vec<&'static dyn CryptoProvider> = vec![&hsmkit_engine::RUSTCRYPTO];
    #[cfg(feature = "aws-lc")]
    v.push(&hsmkit_engine::AWS_LC);
    v
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

#[test]
fn rfc5869_test_case_1() {
    let ikm = [0x0b; 22];
    let salt = unhex("000102030405060708090a0b0c");
    let info = unhex("f0f1f2f3f4f5f6f7f8f9");
    let prk = "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5";
    let okm = "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865";
    for p in providers() {
        assert_eq!(hex::encode(&*p.hkdf_extract(HashAlg::Sha256, &salt, &ikm).unwrap()), prk, "{}", p.name());
        let mut out = [0u8; 42];
        p.hkdf(HashAlg::Sha256, &salt, &ikm, &[&info[..4], &info[4..]], &mut out).unwrap();
        assert_eq!(hex::encode(out), okm, "{}", p.name());
    }
}

#[test]
fn providers_agree_on_long_pseudorandom_keys_and_every_length() {
    let ps = providers();
    for hash in [HashAlg::Sha1, HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512] {
        let n = hash.output_len();
        for prk_len in [n, 64, 65, 129, 200] {
            let prk: Vec<u8> = (0..prk_len).map(|i| u8::try_from(i % 251).unwrap()).collect();
            for okm_len in [0, 1, n, n + 1, 255 * n] {
                let outs: Vec<Vec<u8>> = ps
                    .iter()
                    .map(|p| {
                        let mut okm = vec![0u8; okm_len];
                        p.hkdf_expand(hash, &prk, &[b"info", b""], &mut okm).unwrap();
                        okm
                    })
                    .collect();
                assert!(outs.windows(2).all(|w| w[0] == w[1]), "{hash:?} prk {prk_len} okm {okm_len}");
            }
            for p in &ps {
                let mut too_long = vec![0u8; 255 * n + 1];
                let e = p.hkdf_expand(hash, &prk, &[], &mut too_long).unwrap_err();
                assert_eq!(e.invalid_reason(), Some(hsmkit::InvalidReason::Length), "{}", p.name());
            }
        }
        let short = vec![0u8; n - 1];
        for p in &ps {
            assert!(p.hkdf_expand(hash, &short, &[], &mut [0u8; 8]).is_err(), "{}", p.name());
            let tags: Vec<Vec<u8>> =
                [&b""[..], &[7u8; 200][..]].iter().map(|k| p.hmac(hash, k, b"message").unwrap()).collect();
            assert_eq!(
                tags,
                ps[0]
                    .hmac(hash, b"", b"message")
                    .into_iter()
                    .chain(ps[0].hmac(hash, &[7u8; 200], b"message"))
                    .collect::<Vec<_>>()
            );
            assert_eq!(p.digest(hash, b"abc"), ps[0].digest(hash, b"abc"));
        }
    }
}

/// `hkdf_expand_each` (one keyed HMAC for several outputs) gives the bytes one
/// `hkdf_expand` per output gives, on both providers, and both agree.
#[test]
fn expand_each_equals_one_expand_per_output() {
    use hsmkit::crypto::HkdfOutput;
    let ps = providers();
    for hash in [HashAlg::Sha1, HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512] {
        let prk: Vec<u8> = (0..hash.output_len() + 7).map(|i| u8::try_from(i % 251).unwrap()).collect();
        let mut reference: Option<Vec<Vec<u8>>> = None;
        for p in &ps {
            let (mut a, mut b, mut c) = (vec![0u8; 32], vec![0u8; 0], vec![0u8; hash.output_len() * 3 + 1]);
            p.hkdf_expand_each(
                hash,
                &prk,
                &mut [
                    HkdfOutput { info: &[b"one", &[1]], okm: &mut a },
                    HkdfOutput { info: &[], okm: &mut b },
                    HkdfOutput { info: &[b"three"], okm: &mut c },
                ],
            )
            .unwrap();
            let one = |info: &[&[u8]], len: usize| {
                let mut out = vec![0u8; len];
                p.hkdf_expand(hash, &prk, info, &mut out).unwrap();
                out
            };
            assert_eq!(a, one(&[b"one", &[1]], 32), "{} {hash:?}", p.name());
            assert_eq!(c, one(&[b"three"], hash.output_len() * 3 + 1), "{} {hash:?}", p.name());
            let got = vec![a, b, c];
            match &reference {
                None => reference = Some(got),
                Some(r) => assert_eq!(&got, r, "{} {hash:?}", p.name()),
            }
        }
        // Too long an output, or too short a key, is refused before anything is written.
        for p in &ps {
            let mut long = vec![0u8; hash.output_len() * 255 + 1];
            let e =
                p.hkdf_expand_each(hash, &prk, &mut [HkdfOutput { info: &[], okm: &mut long }]).unwrap_err();
            assert_eq!(e.kind(), hsmkit::ErrorKind::InvalidInput);
            let mut ok = [0u8; 8];
            let e = p
                .hkdf_expand_each(
                    hash,
                    &prk[..hash.output_len() - 1],
                    &mut [HkdfOutput { info: &[], okm: &mut ok }],
                )
                .unwrap_err();
            assert_eq!(e.kind(), hsmkit::ErrorKind::InvalidInput);
        }
    }
}

/// `seal_to` (out of place: AWS-LC's scatter seal, RustCrypto's in-out buffer) gives the
/// ciphertext and tag that `seal_in_place` gives, on both providers; the output must be
/// exactly the plaintext and a tag.
#[test]
fn seal_to_equals_seal_in_place() {
    let key = [0x42u8; 32];
    let nonce = [7u8; 12];
    for len in [0usize, 1, 15, 16, 17, 1000, 65_536 + 3] {
        let pt: Vec<u8> = (0..len).map(|i| u8::try_from(i % 253).unwrap()).collect();
        let mut reference: Option<Vec<u8>> = None;
        for p in providers() {
            let k = p.aes_256_gcm(&key).unwrap();
            let mut in_place = pt.clone();
            let tag = k.seal_in_place(&nonce, b"aad", &mut in_place).unwrap();
            in_place.extend_from_slice(&tag);
            let mut out = vec![0u8; len + 16];
            k.seal_to(&nonce, b"aad", &pt, &mut out).unwrap();
            assert_eq!(out, in_place, "{} {len}", p.name());
            let (ct, tag) = out.split_at_mut(len);
            k.open_in_place(&nonce, b"aad", ct, &(*tag).try_into().unwrap()).unwrap();
            assert_eq!(ct, &pt[..], "{} {len}", p.name());
            match &reference {
                None => reference = Some(in_place),
                Some(r) => assert_eq!(&in_place, r, "{} {len}", p.name()),
            }
            for wrong in [len + 15, len + 17] {
                let mut out = vec![0u8; wrong];
                let e = k.seal_to(&nonce, b"aad", &pt, &mut out).unwrap_err();
                assert_eq!(e.kind(), hsmkit::ErrorKind::InvalidInput, "{} {len}", p.name());
                assert!(out.iter().all(|&b| b == 0), "nothing written on a length error");
            }
        }
    }
}

/// A key that implements only the required methods, so that the trait's default
/// `seal_to` (copy, then seal in place) is what runs.
struct InPlaceOnly(Box<dyn hsmkit::crypto::Aes256GcmKey>);

impl hsmkit::crypto::Aes256GcmKey for InPlaceOnly {
    fn seal_in_place(&self, nonce: &[u8; 12], aad: &[u8], in_out: &mut [u8]) -> hsmkit::Result<[u8; 16]> {
        self.0.seal_in_place(nonce, aad, in_out)
    }
    fn open_in_place(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; 16],
    ) -> hsmkit::Result<()> {
        self.0.open_in_place(nonce, aad, in_out, tag)
    }
}

#[test]
fn the_default_seal_to_equals_the_engines() {
    for p in providers() {
        let engine = p.aes_256_gcm(&[9u8; 32]).unwrap();
        let default = InPlaceOnly(p.aes_256_gcm(&[9u8; 32]).unwrap());
        for len in [0usize, 5, 4096 + 1] {
            let pt = vec![0xA5u8; len];
            let (mut a, mut b) = (vec![0u8; len + 16], vec![0u8; len + 16]);
            engine.seal_to(&[1; 12], b"x", &pt, &mut a).unwrap();
            hsmkit::crypto::Aes256GcmKey::seal_to(&default, &[1; 12], b"x", &pt, &mut b).unwrap();
            assert_eq!(a, b, "{} {len}", p.name());
            let mut short = vec![0u8; len + 15];
            assert!(
                hsmkit::crypto::Aes256GcmKey::seal_to(&default, &[1; 12], b"x", &pt, &mut short).is_err()
            );
        }
    }
}
