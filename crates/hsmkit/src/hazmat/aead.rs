//! AES-256-GCM as an engine provides it: the cipher of envelope headers and bodies.
//!
//! The envelope format is fixed (docs/envelope-format.md); which implementation runs the
//! AES-GCM is the engine's choice, so that a store on the aws-lc engine seals at AWS-LC's
//! speed. The KEK that wraps an envelope's data key names the engine
//! ([`BackendKey::aes_gcm`](crate::BackendKey::aes_gcm)); the default is
//! [`RustCryptoAes256Gcm`]. Every engine must produce byte-identical output: the
//! envelope vectors and the conformance suite check it per backend.
//!
//! Errors are opaque: a failed open is [`Error::DecryptionFailed`], nothing more.

use std::fmt;

use aes_gcm::aead::inout::InOutBuf;
use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};

use crate::error::{Error, Result};

/// AES-256-GCM nonce length.
pub const NONCE_LEN: usize = 12;
/// AES-256-GCM tag length.
pub const TAG_LEN: usize = 16;
/// AES-256 key length.
pub const KEY_LEN: usize = 32;

/// Makes AES-256-GCM keys.
pub trait Aes256GcmEngine: Send + Sync + fmt::Debug {
    /// The engine's name, as in [`Capabilities::engine`](crate::Capabilities::engine).
    fn name(&self) -> &'static str;

    /// A key ready for use. The caller zeroizes `key`; the engine keeps its own copy (its
    /// key schedule) and must wipe it on drop.
    fn key(&self, key: &[u8; KEY_LEN]) -> Result<Box<dyn Aes256GcmKey>>;
}

/// One AES-256-GCM key. Nonces are the caller's business (the envelope derives a fresh
/// key per message and numbers its chunks).
pub trait Aes256GcmKey: Send + Sync {
    /// Encrypts `in_out` in place and returns the tag.
    fn seal_in_place(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], in_out: &mut [u8]) -> Result<[u8; TAG_LEN]>;

    /// Decrypts `in_out` in place if `tag` verifies. On failure `in_out` holds no
    /// plaintext the caller may use (it must be discarded).
    fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<()>;

    /// Decrypts `ciphertext` into `out` (same length) if `tag` verifies.
    fn open_to(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8; TAG_LEN],
        out: &mut [u8],
    ) -> Result<()> {
        let out = out.get_mut(..).filter(|o| o.len() == ciphertext.len()).ok_or(Error::DecryptionFailed)?;
        out.copy_from_slice(ciphertext);
        self.open_in_place(nonce, aad, out, tag)
    }
}

/// The `aes-gcm` crate (RustCrypto): pure Rust, AES-NI and CLMUL when the CPU has them.
#[derive(Clone, Copy, Debug, Default)]
pub struct RustCryptoAes256Gcm;

/// [`RustCryptoAes256Gcm`] as a `'static` engine.
pub static RUSTCRYPTO: RustCryptoAes256Gcm = RustCryptoAes256Gcm;

// `aes-gcm` is built with its `zeroize` feature: the key schedule is wiped on drop.
struct RustCryptoKey(Aes256Gcm);

impl Aes256GcmEngine for RustCryptoAes256Gcm {
    fn name(&self) -> &'static str {
        "rustcrypto"
    }

    fn key(&self, key: &[u8; KEY_LEN]) -> Result<Box<dyn Aes256GcmKey>> {
        Ok(Box::new(RustCryptoKey(Aes256Gcm::new(key.into()))))
    }
}

impl Aes256GcmKey for RustCryptoKey {
    fn seal_in_place(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], in_out: &mut [u8]) -> Result<[u8; TAG_LEN]> {
        self.0
            .encrypt_inout_detached(&Nonce::from(*nonce), aad, in_out.into())
            .map(Into::into)
            .map_err(|_| Error::invalid("input too long for AES-GCM"))
    }

    fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<()> {
        self.0
            .decrypt_inout_detached(&Nonce::from(*nonce), aad, in_out.into(), tag.into())
            .map_err(|_| Error::DecryptionFailed)
    }

    fn open_to(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8; TAG_LEN],
        out: &mut [u8],
    ) -> Result<()> {
        // Out of place: one pass, no copy first.
        let buf = InOutBuf::new(ciphertext, out).map_err(|_| Error::DecryptionFailed)?;
        self.0
            .decrypt_inout_detached(&Nonce::from(*nonce), aad, buf, tag.into())
            .map_err(|_| Error::DecryptionFailed)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    // NIST GCM test case 16 (AES-256, 96-bit IV, with AAD), from the GCM specification.
    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn rustcrypto_known_answer_and_tamper() {
        let key: [u8; 32] =
            hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308").try_into().unwrap();
        let nonce: [u8; 12] = hex("cafebabefacedbaddecaf888").try_into().unwrap();
        let pt = hex(concat!(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72",
            "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"
        ));
        let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let ct = hex(concat!(
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa",
            "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
        ));
        let tag: [u8; 16] = hex("76fc6ece0f4e1768cddf8853bb2d551b").try_into().unwrap();
        let k = RUSTCRYPTO.key(&key).unwrap();
        let mut buf = pt.clone();
        assert_eq!(k.seal_in_place(&nonce, &aad, &mut buf).unwrap(), tag);
        assert_eq!(buf, ct);
        let mut out = vec![0u8; ct.len()];
        k.open_to(&nonce, &aad, &ct, &tag, &mut out).unwrap();
        assert_eq!(out, pt);
        k.open_in_place(&nonce, &aad, &mut buf, &tag).unwrap();
        assert_eq!(buf, pt);
        let mut bad = tag;
        bad[0] ^= 1;
        let mut buf = ct.clone();
        assert!(matches!(k.open_in_place(&nonce, &aad, &mut buf, &bad), Err(Error::DecryptionFailed)));
        assert!(matches!(k.open_to(&nonce, &aad, &ct, &tag, &mut [0u8; 3]), Err(Error::DecryptionFailed)));
    }
}
