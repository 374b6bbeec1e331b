//! The crypto provider seam: what the core computes itself, and who computes it.
//!
//! The core has no cryptographic implementation of its own. What it computes in host
//! memory (fingerprints, the audit MAC, the envelope's key schedule and AES-256-GCM,
//! random ids and data keys) goes through a [`CryptoProvider`] that an engine crate gives
//! (`hsmkit-engine`), as rustls' providers do. Raw AES-GCM leaves nonce uniqueness to the
//! caller: applications use [`envelope`](crate::envelope), not [`Aes256GcmKey`].
//!
//! Errors are opaque: a failed open is [`Error::DecryptionFailed`], nothing more.

use std::fmt;

use zeroize::Zeroizing;

use crate::algorithm::{HashAlg, SignatureAlgorithm};
use crate::error::{Error, InvalidReason, Result};
use crate::public::PublicKey;

/// AES-256-GCM nonce length.
pub const NONCE_LEN: usize = 12;
/// AES-256-GCM tag length.
pub const TAG_LEN: usize = 16;
/// AES-256 key length.
pub const KEY_LEN: usize = 32;

/// The primitives the core runs itself, given by a crypto engine (rustls'
/// `CryptoProvider`): hashing (public-key fingerprints, JWK thumbprints, the default
/// prehash), HMAC and HKDF (the audit log, the envelope key schedule), AES-256-GCM (envelope
/// headers and bodies) and randomness (data keys, message ids, object ids).
///
/// A [`Backend`](crate::Backend) names its provider and a [`Store`](crate::Store) uses it for
/// everything it computes in host memory. `hsmkit-engine` has two: RustCrypto and aws-lc.
/// Every provider must give byte-identical output for the same input (randomness aside):
/// envelopes, audit logs and bindings written with one are read with the other, and the
/// conformance suite checks it.
pub trait CryptoProvider: Send + Sync + fmt::Debug {
    /// The engine's name, as in [`Capabilities::engine`](crate::Capabilities::engine).
    fn name(&self) -> &'static str;

    /// The digest of `data` (`hash.output_len()` bytes).
    fn digest(&self, hash: HashAlg, data: &[u8]) -> Vec<u8>;

    /// HMAC of `data` under `key` (`hash.output_len()` bytes).
    fn hmac(&self, hash: HashAlg, key: &[u8], data: &[u8]) -> Result<Vec<u8>>;

    /// HKDF-Extract (RFC 5869): the pseudorandom key from `ikm` under `salt` (empty: no
    /// salt, that is `hash.output_len()` zero bytes).
    fn hkdf_extract(&self, hash: HashAlg, salt: &[u8], ikm: &[u8]) -> Result<Zeroizing<Vec<u8>>>;

    /// HKDF-Expand (RFC 5869) of `prk` with the concatenation of `info` into `okm`. An
    /// `okm` longer than 255 hash lengths, or a `prk` shorter than one, is
    /// [`Error::InvalidInput`].
    fn hkdf_expand(&self, hash: HashAlg, prk: &[u8], info: &[&[u8]], okm: &mut [u8]) -> Result<()>;

    /// HKDF-Expand of one `prk` into several outputs, each with its own `info` (the
    /// envelope derives three keys per message). Same bytes as one
    /// [`hkdf_expand`](Self::hkdf_expand) per output; a provider overrides it to key the
    /// HMAC once instead of once per output.
    fn hkdf_expand_each(&self, hash: HashAlg, prk: &[u8], outputs: &mut [HkdfOutput<'_>]) -> Result<()> {
        for o in outputs {
            self.hkdf_expand(hash, prk, o.info, o.okm)?;
        }
        Ok(())
    }

    /// HKDF: [`hkdf_extract`](Self::hkdf_extract) then [`hkdf_expand`](Self::hkdf_expand).
    fn hkdf(&self, hash: HashAlg, salt: &[u8], ikm: &[u8], info: &[&[u8]], okm: &mut [u8]) -> Result<()> {
        let prk = self.hkdf_extract(hash, salt, ikm)?;
        self.hkdf_expand(hash, &prk, info, okm)
    }

    /// An AES-256-GCM key ready for use. The caller zeroizes `key`; the provider keeps its
    /// own copy (its key schedule) and must wipe it on drop.
    fn aes_256_gcm(&self, key: &[u8; KEY_LEN]) -> Result<Box<dyn Aes256GcmKey>>;

    /// Fills `buf` from a cryptographically secure random source.
    fn fill_random(&self, buf: &mut [u8]) -> Result<()>;

    /// PBKDF2 (RFC 8018 section 5.2) with HMAC over `hash` as its PRF: fills `out` (any
    /// length) from `password` and `salt`. Zero iterations, or more than
    /// [`PBKDF2_MAX_ITERATIONS`], is [`Error::InvalidInput`] (a file's iteration count
    /// must not make a decoder run for hours).
    ///
    /// The default runs [`hmac`](Self::hmac) once per iteration; providers override it
    /// to key the HMAC once.
    fn pbkdf2_hmac(
        &self,
        hash: HashAlg,
        password: &[u8],
        salt: &[u8],
        iterations: u32,
        out: &mut [u8],
    ) -> Result<()> {
        check_pbkdf2_iterations(iterations)?;
        let n = hash.output_len();
        for (index, block) in (1u32..).zip(out.chunks_mut(n)) {
            // U_1 = PRF(P, S || INT(i)); T_i = U_1 ^ U_2 ^ ... ^ U_c.
            let mut first = Zeroizing::new(Vec::with_capacity(salt.len().saturating_add(4)));
            first.extend_from_slice(salt);
            first.extend_from_slice(&index.to_be_bytes());
            let mut u = Zeroizing::new(self.hmac(hash, password, &first)?);
            let mut t = u.clone();
            for _ in 1..iterations {
                u = Zeroizing::new(self.hmac(hash, password, &u)?);
                t.iter_mut().zip(u.iter()).for_each(|(t, u)| *t ^= u);
            }
            let t = t
                .get(..block.len())
                .ok_or_else(|| Error::invalid(InvalidReason::Length, "HMAC output shorter than the hash"))?;
            block.copy_from_slice(t);
        }
        Ok(())
    }

    /// The public key of private key material (RSA, EC, Ed25519), derived from the
    /// private part: a certificate's key is checked against the certificate before it goes
    /// into a backend, also when its encoding left the public part out (Ed25519 PKCS#8
    /// v1, SEC1 without the point). Invalid material is [`Error::InvalidInput`].
    ///
    /// The default is [`Error::Unsupported`], for providers written before it existed.
    fn public_key_of(&self, material: &crate::material::KeyMaterial) -> Result<PublicKey> {
        let _ = material;
        Err(Error::unsupported(
            crate::error::UnsupportedReason::Operation,
            format!("deriving a public key from a private key (crypto provider '{}')", self.name()),
        ))
    }

    /// AES-CBC decryption (AES-128, -192 or -256 by the key's length) with the PKCS#7
    /// padding removed and checked, as PBES2 (RFC 8018) and PKCS#12 files use it. A
    /// ciphertext that is not a whole number of blocks, or whose padding is wrong, is
    /// [`Error::DecryptionFailed`]; a key of another length is [`Error::InvalidInput`].
    ///
    /// CBC is not authenticated: callers check a MAC first, or treat a failure as a wrong
    /// password. The default is [`Error::Unsupported`], for providers written before it
    /// existed.
    fn aes_cbc_decrypt(&self, key: &[u8], iv: &[u8; 16], ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let _ = (key, iv, ciphertext);
        Err(Error::unsupported(
            crate::error::UnsupportedReason::Algorithm,
            format!("AES-CBC decryption (crypto provider '{}')", self.name()),
        ))
    }

    /// Verifies `signature` (JOSE encoding: raw `r || s` for ECDSA) over `message` with a
    /// public key that no backend holds: a certificate request's own signature, a
    /// certificate issued elsewhere. A bad signature is [`Error::VerificationFailed`]; an
    /// algorithm that does not fit the key (HMAC has no public key) is
    /// [`Error::InvalidInput`].
    ///
    /// The default is [`Error::Unsupported`], for providers written before it existed.
    fn verify(
        &self,
        key: &PublicKey,
        alg: SignatureAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<()> {
        let _ = (key, message, signature);
        Err(Error::unsupported(
            crate::error::UnsupportedReason::Operation,
            format!(
                "{alg} verification with a public key in host memory (crypto provider '{}')",
                self.name()
            ),
        ))
    }
}

/// The most PBKDF2 iterations [`CryptoProvider::pbkdf2_hmac`] runs: far above what tools
/// write (OpenSSL's PKCS#12 default is 2048) and what password-storage advice asks, and a
/// bound on the time a hostile file can cost (seconds, not hours).
pub const PBKDF2_MAX_ITERATIONS: u32 = 10_000_000;

/// Refuses an iteration count of zero or over [`PBKDF2_MAX_ITERATIONS`] (for providers'
/// own [`CryptoProvider::pbkdf2_hmac`]).
pub fn check_pbkdf2_iterations(iterations: u32) -> Result<()> {
    if iterations == 0 || iterations > PBKDF2_MAX_ITERATIONS {
        return Err(Error::invalid(
            InvalidReason::Parameter,
            format!("PBKDF2 iteration count {iterations}: must be 1 to {PBKDF2_MAX_ITERATIONS}"),
        ));
    }
    Ok(())
}

/// One output of [`CryptoProvider::hkdf_expand_each`]: its `info` (concatenated) and
/// where the bytes go.
pub struct HkdfOutput<'a> {
    /// The info parts, concatenated.
    pub info: &'a [&'a [u8]],
    /// The output key material, filled.
    pub okm: &'a mut [u8],
}

impl fmt::Debug for HkdfOutput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HkdfOutput").field("okm_len", &self.okm.len()).finish_non_exhaustive()
    }
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

    /// Encrypts `plaintext` into `out_and_tag` (its length plus [`TAG_LEN`]): the
    /// ciphertext, then the tag. Engines override this to encrypt out of place, in one
    /// pass; the default copies and encrypts in place.
    fn seal_to(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
        out_and_tag: &mut [u8],
    ) -> Result<()> {
        let (out, tag_out) = split_for_tag(plaintext.len(), out_and_tag)?;
        out.copy_from_slice(plaintext);
        match self.seal_in_place(nonce, aad, out) {
            Ok(tag) => {
                tag_out.copy_from_slice(&tag);
                Ok(())
            }
            Err(e) => {
                // `out` may still hold plaintext.
                crate::secret::wipe_slice(out);
                Err(e)
            }
        }
    }

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

/// `out_and_tag` cut into the ciphertext (`len` bytes) and the tag, or an error if it is
/// not exactly `len` + [`TAG_LEN`] bytes (for engines' [`Aes256GcmKey::seal_to`]).
pub fn split_for_tag(len: usize, out_and_tag: &mut [u8]) -> Result<(&mut [u8], &mut [u8; TAG_LEN])> {
    let bad =
        || Error::invalid(InvalidReason::Length, "the output must be the plaintext's length plus the tag");
    if len.checked_add(TAG_LEN) != Some(out_and_tag.len()) {
        return Err(bad());
    }
    let (out, tag) = out_and_tag.split_at_mut_checked(len).ok_or_else(bad)?;
    Ok((out, tag.try_into().map_err(|_| bad())?))
}
