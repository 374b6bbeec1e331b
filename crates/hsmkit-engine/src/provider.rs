//! The RustCrypto [`CryptoProvider`]: what the core computes in host memory, in pure Rust.

use aes_gcm::aead::inout::InOutBuf;
use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockModeDecrypt, KeyIvInit};
use hmac::Mac;
use hsmkit::InvalidReason;
use hsmkit::crypto::{Aes256GcmKey, CryptoProvider, HkdfOutput, KEY_LEN, NONCE_LEN, TAG_LEN};
use hsmkit::{Error, HashAlg, Result, Zeroizing};
use sha2::Digest;

/// The RustCrypto provider (`sha1`, `sha2`, `hmac`, `hkdf`, `aes-gcm`, `getrandom`).
#[derive(Clone, Copy, Debug, Default)]
pub struct RustCryptoProvider;

/// [`RustCryptoProvider`] as a `'static` provider.
pub static RUSTCRYPTO: RustCryptoProvider = RustCryptoProvider;

/// The digest of `data`, on RustCrypto (what the engine's own prehash runs).
pub(crate) fn digest(hash: HashAlg, data: &[u8]) -> Vec<u8> {
    match hash {
        HashAlg::Sha1 => sha1::Sha1::digest(data).to_vec(),
        HashAlg::Sha256 => sha2::Sha256::digest(data).to_vec(),
        HashAlg::Sha384 => sha2::Sha384::digest(data).to_vec(),
        HashAlg::Sha512 => sha2::Sha512::digest(data).to_vec(),
    }
}

fn mac<M: Mac + hmac::KeyInit>(key: &[u8], data: &[u8]) -> Result<Vec<u8>> {
    let mut m = <M as hmac::KeyInit>::new_from_slice(key)
        .map_err(|_| Error::invalid(InvalidReason::Length, "HMAC key length"))?;
    m.update(data);
    Ok(m.finalize().into_bytes().to_vec())
}

/// PBKDF2 (RFC 8018 section 5.2) with the HMAC keyed once and cloned per iteration.
fn pbkdf2<M: Mac + hmac::KeyInit + Clone>(
    password: &[u8],
    salt: &[u8],
    iterations: u32,
    hash_len: usize,
    out: &mut [u8],
) -> Result<()> {
    let keyed = <M as hmac::KeyInit>::new_from_slice(password)
        .map_err(|_| Error::invalid(InvalidReason::Length, "HMAC key length"))?;
    for (index, block) in (1u32..).zip(out.chunks_mut(hash_len)) {
        let mut m = keyed.clone();
        m.update(salt);
        m.update(&index.to_be_bytes());
        let mut u = Zeroizing::new(m.finalize().into_bytes().to_vec());
        let mut t = u.clone();
        for _ in 1..iterations {
            let mut m = keyed.clone();
            m.update(&u);
            u.copy_from_slice(&m.finalize().into_bytes());
            t.iter_mut().zip(u.iter()).for_each(|(t, u)| *t ^= u);
        }
        let t = t.get(..block.len()).ok_or_else(|| Error::backend(crate::KIND, "PBKDF2", "HMAC length"))?;
        block.copy_from_slice(t);
    }
    Ok(())
}

// One arm per key length; `cbc` and `aes` are built with `zeroize`: the key schedule and
// chaining state are wiped on drop.
macro_rules! cbc_decrypt {
    ($c:ty, $key:expr, $iv:expr, $buf:expr) => {{
        let dec = cbc::Decryptor::<$c>::new_from_slices($key, $iv)
            .map_err(|_| Error::invalid(InvalidReason::Length, "AES key length"))?;
        dec.decrypt_padded::<Pkcs7>($buf).map(<[u8]>::len).map_err(|_| Error::DecryptionFailed)
    }};
}

// One arm per hash: the `hkdf` types are generic over HMAC internals this crate need not name.
macro_rules! hkdf_extract {
    ($h:ty, $salt:expr, $ikm:expr) => {{
        let (prk, _) = hkdf::Hkdf::<$h>::extract(Some($salt), $ikm);
        Zeroizing::new(prk.to_vec())
    }};
}

// One `Hkdf` (its HMAC keyed once) for every output.
macro_rules! hkdf_expand_each {
    ($h:ty, $prk:expr, $outputs:expr) => {{
        let hkdf = hkdf::Hkdf::<$h>::from_prk($prk).map_err(|_| {
            Error::invalid(InvalidReason::Length, "HKDF pseudorandom key shorter than the hash")
        })?;
        for o in $outputs.iter_mut() {
            hkdf.expand_multi_info(o.info, o.okm).map_err(|_| {
                Error::invalid(InvalidReason::Length, "HKDF output longer than 255 hash lengths")
            })?;
        }
        Ok(())
    }};
}

impl CryptoProvider for RustCryptoProvider {
    fn name(&self) -> &'static str {
        "rustcrypto"
    }

    fn digest(&self, hash: HashAlg, data: &[u8]) -> Vec<u8> {
        digest(hash, data)
    }

    fn hmac(&self, hash: HashAlg, key: &[u8], data: &[u8]) -> Result<Vec<u8>> {
        match hash {
            HashAlg::Sha1 => mac::<hmac::Hmac<sha1::Sha1>>(key, data),
            HashAlg::Sha256 => mac::<hmac::Hmac<sha2::Sha256>>(key, data),
            HashAlg::Sha384 => mac::<hmac::Hmac<sha2::Sha384>>(key, data),
            HashAlg::Sha512 => mac::<hmac::Hmac<sha2::Sha512>>(key, data),
        }
    }

    fn hkdf_extract(&self, hash: HashAlg, salt: &[u8], ikm: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        Ok(match hash {
            HashAlg::Sha1 => hkdf_extract!(sha1::Sha1, salt, ikm),
            HashAlg::Sha256 => hkdf_extract!(sha2::Sha256, salt, ikm),
            HashAlg::Sha384 => hkdf_extract!(sha2::Sha384, salt, ikm),
            HashAlg::Sha512 => hkdf_extract!(sha2::Sha512, salt, ikm),
        })
    }

    fn hkdf_expand(&self, hash: HashAlg, prk: &[u8], info: &[&[u8]], okm: &mut [u8]) -> Result<()> {
        self.hkdf_expand_each(hash, prk, &mut [HkdfOutput { info, okm }])
    }

    fn hkdf_expand_each(&self, hash: HashAlg, prk: &[u8], outputs: &mut [HkdfOutput<'_>]) -> Result<()> {
        // Every length first, so that a refused call writes nothing.
        if outputs.iter().any(|o| o.okm.len() > hash.output_len().saturating_mul(255)) {
            return Err(Error::invalid(InvalidReason::Length, "HKDF output longer than 255 hash lengths"));
        }
        match hash {
            HashAlg::Sha1 => hkdf_expand_each!(sha1::Sha1, prk, outputs),
            HashAlg::Sha256 => hkdf_expand_each!(sha2::Sha256, prk, outputs),
            HashAlg::Sha384 => hkdf_expand_each!(sha2::Sha384, prk, outputs),
            HashAlg::Sha512 => hkdf_expand_each!(sha2::Sha512, prk, outputs),
        }
    }

    fn pbkdf2_hmac(
        &self,
        hash: HashAlg,
        password: &[u8],
        salt: &[u8],
        iterations: u32,
        out: &mut [u8],
    ) -> Result<()> {
        hsmkit::crypto::check_pbkdf2_iterations(iterations)?;
        let n = hash.output_len();
        match hash {
            HashAlg::Sha1 => pbkdf2::<hmac::Hmac<sha1::Sha1>>(password, salt, iterations, n, out),
            HashAlg::Sha256 => pbkdf2::<hmac::Hmac<sha2::Sha256>>(password, salt, iterations, n, out),
            HashAlg::Sha384 => pbkdf2::<hmac::Hmac<sha2::Sha384>>(password, salt, iterations, n, out),
            HashAlg::Sha512 => pbkdf2::<hmac::Hmac<sha2::Sha512>>(password, salt, iterations, n, out),
        }
    }

    fn public_key_of(&self, material: &hsmkit::KeyMaterial) -> hsmkit::Result<hsmkit::PublicKey> {
        crate::public_key_of(material)
    }

    fn aes_cbc_decrypt(&self, key: &[u8], iv: &[u8; 16], ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        // Whole blocks, at least one (the padding): anything else was never a ciphertext.
        if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(16) {
            return Err(Error::DecryptionFailed);
        }
        let mut buf = Zeroizing::new(ciphertext.to_vec());
        let n = match key.len() {
            16 => cbc_decrypt!(aes::Aes128, key, iv, &mut buf),
            24 => cbc_decrypt!(aes::Aes192, key, iv, &mut buf),
            32 => cbc_decrypt!(aes::Aes256, key, iv, &mut buf),
            other => Err(Error::invalid(
                InvalidReason::Length,
                format!("an AES key is 16, 24 or 32 bytes, not {other}"),
            )),
        }?;
        buf.truncate(n);
        Ok(buf)
    }

    fn aes_256_gcm(&self, key: &[u8; KEY_LEN]) -> Result<Box<dyn Aes256GcmKey>> {
        Ok(Box::new(RustCryptoGcmKey(Aes256Gcm::new(key.into()))))
    }

    fn fill_random(&self, buf: &mut [u8]) -> Result<()> {
        getrandom::fill(buf)
            .map_err(|e| Error::backend(crate::KIND, "getrandom", format!("OS random source failed: {e}")))
    }

    fn verify(
        &self,
        key: &hsmkit::PublicKey,
        alg: hsmkit::SignatureAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<()> {
        crate::key::verify_public(crate::Engine::RustCrypto, key, alg, message, signature)
    }
}

// `aes-gcm` is built with its `zeroize` feature: the key schedule is wiped on drop.
struct RustCryptoGcmKey(Aes256Gcm);

impl Aes256GcmKey for RustCryptoGcmKey {
    fn seal_in_place(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], in_out: &mut [u8]) -> Result<[u8; TAG_LEN]> {
        self.0
            .encrypt_inout_detached(&Nonce::from(*nonce), aad, in_out.into())
            .map(Into::into)
            .map_err(|_| Error::invalid(InvalidReason::Length, "input too long for AES-GCM"))
    }

    fn seal_to(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
        out_and_tag: &mut [u8],
    ) -> Result<()> {
        // Out of place: one pass, no copy first.
        let (out, tag_out) = hsmkit::crypto::split_for_tag(plaintext.len(), out_and_tag)?;
        let buf = InOutBuf::new(plaintext, out)
            .map_err(|_| Error::invalid(InvalidReason::Length, "AES-GCM output length"))?;
        let tag = self
            .0
            .encrypt_inout_detached(&Nonce::from(*nonce), aad, buf)
            .map_err(|_| Error::invalid(InvalidReason::Length, "input too long for AES-GCM"))?;
        tag_out.copy_from_slice(&tag);
        Ok(())
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
