//! Key wrapping: AES-KW (RFC 3394), AES-KWP (RFC 5649), RSA-OAEP.

use aes::cipher::BlockCipherDecrypt;
use aes::{Aes128, Aes192, Aes256};
use aes_kw::{KeyInit, KwAes128, KwAes192, KwAes256, KwpAes128, KwpAes192, KwpAes256};
use hsmkit::{EncryptionAlgorithm, Error, KeyWrapAlgorithm as A, Result, WrapScheme, Zeroizing};
use hsmkit::{InvalidReason, UnsupportedReason};
use subtle::{ConstantTimeEq, ConstantTimeGreater, ConstantTimeLess};

use crate::key::RcKey;

fn aes_key(engine: &RcKey) -> Result<&[u8]> {
    match engine {
        RcKey::Aes(k) => Ok(k),
        RcKey::RsaPrivate(_)
        | RcKey::RsaPublic(_)
        | RcKey::P256(_)
        | RcKey::P384(_)
        | RcKey::P521(_)
        | RcKey::P256k(_)
        | RcKey::Ed25519(_)
        | RcKey::Hmac(_) => Err(Error::invalid(InvalidReason::KeyMismatch, "AES key wrap needs an AES key")),
    }
}

fn bad_key(_: impl std::fmt::Debug) -> Error {
    Error::invalid(InvalidReason::KeyMismatch, "AES key has the wrong length for this algorithm")
}

/// Wrapping with `aes-kw` (unwrapping is below, in constant time).
macro_rules! kw {
    ($ty:ty, $kek:expr, $input:expr, $out_len:expr) => {{
        let cipher = <$ty>::new_from_slice($kek).map_err(bad_key)?;
        let mut buf = Zeroizing::new(vec![0u8; $out_len]);
        let n = cipher.wrap_key($input, &mut buf).map(|out| out.len());
        (n, buf)
    }};
}

/// Wraps `key`. Lengths were checked by the core.
pub(crate) fn wrap_key(engine: &RcKey, alg: A, key: &[u8]) -> Result<Vec<u8>> {
    let kw_len = key.len() + 8;
    let kwp_len = key.len().div_ceil(8) * 8 + 8;
    let (n, buf) = match alg {
        A::A128Kw => kw!(KwAes128, aes_key(engine)?, key, kw_len),
        A::A192Kw => kw!(KwAes192, aes_key(engine)?, key, kw_len),
        A::A256Kw => kw!(KwAes256, aes_key(engine)?, key, kw_len),
        A::A128Kwp => kw!(KwpAes128, aes_key(engine)?, key, kwp_len),
        A::A192Kwp => kw!(KwpAes192, aes_key(engine)?, key, kwp_len),
        A::A256Kwp => kw!(KwpAes256, aes_key(engine)?, key, kwp_len),
        A::RsaOaep => return crate::encrypt::encrypt(engine, EncryptionAlgorithm::RsaOaep, key, &[]),
        A::RsaOaep256 => return crate::encrypt::encrypt(engine, EncryptionAlgorithm::RsaOaep256, key, &[]),
    };
    let n = n.map_err(|e| Error::invalid(InvalidReason::Length, format!("{alg}: {e}")))?;
    Ok(buf.get(..n).unwrap_or_default().to_vec())
}

/// Unwraps `wrapped`. Every failure is [`Error::DecryptionFailed`].
///
/// AES-KW/KWP unwrapping is done here rather than by `aes-kw`, whose integrity checks
/// return early (a dudect test, `tests/timing.rs`, could tell an integrity value wrong in
/// its first byte from one wrong in its last): every check below runs in constant time,
/// and the result is decided once, at the end.
pub(crate) fn unwrap_key(engine: &RcKey, alg: A, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if let WrapScheme::RsaOaep(enc) = alg.scheme() {
        return crate::encrypt::decrypt(engine, enc, wrapped, &[]);
    }
    let kek = aes_key(engine)?;
    let cipher = match (alg, kek.len()) {
        (A::A128Kw | A::A128Kwp, 16) => Cipher::A128(Aes128::new_from_slice(kek).map_err(bad_key)?),
        (A::A192Kw | A::A192Kwp, 24) => Cipher::A192(Aes192::new_from_slice(kek).map_err(bad_key)?),
        (A::A256Kw | A::A256Kwp, 32) => Cipher::A256(Aes256::new_from_slice(kek).map_err(bad_key)?),
        (A::A128Kw | A::A128Kwp | A::A192Kw | A::A192Kwp | A::A256Kw | A::A256Kwp, _) => {
            return Err(bad_key(()));
        }
        (other, _) => return Err(Error::unsupported(UnsupportedReason::Algorithm, format!("{other}"))),
    };
    let padded = matches!(alg.scheme(), WrapScheme::AesKwp(_));
    // The core checks these lengths too; checked again here because `w_inverse` splits
    // at them, so this function stays panic-free whoever calls it. Lengths are public.
    let min = if padded { 16 } else { 24 };
    if wrapped.len() < min || !wrapped.len().is_multiple_of(8) {
        return Err(Error::DecryptionFailed);
    }
    let mut out = Zeroizing::new(vec![0u8; wrapped.len() - 8]);
    let a = w_inverse(&cipher, wrapped, &mut out);
    if !padded {
        return if bool::from(a.ct_eq(&[0xa6; 8])) { Ok(out) } else { Err(Error::DecryptionFailed) };
    }
    // RFC 5649: A = A65959A6 || MLI, 8(n-1) < MLI <= 8n, the padding bytes zero.
    let (prefix, mli) = a.split_at(4);
    let mli = u64::from(u32::from_be_bytes(mli.try_into().map_err(|_| Error::DecryptionFailed)?));
    let len = u64::try_from(out.len()).map_err(|_| Error::DecryptionFailed)?;
    let mut ok = prefix.ct_eq(&[0xa6, 0x59, 0x59, 0xa6]) & mli.ct_gt(&(len - 8)) & !mli.ct_gt(&len);
    for (k, b) in (0u64..).zip(out.iter()) {
        let is_pad = !k.ct_lt(&mli);
        ok &= !is_pad | b.ct_eq(&0);
    }
    if !bool::from(ok) {
        return Err(Error::DecryptionFailed);
    }
    // Valid: MLI is now a checked, public length.
    out.truncate(usize::try_from(mli).map_err(|_| Error::DecryptionFailed)?);
    Ok(out)
}

/// The AES block cipher for each key size (`aes` is built with `zeroize`: the key
/// schedule is wiped on drop).
enum Cipher {
    A128(Aes128),
    A192(Aes192),
    A256(Aes256),
}

impl Cipher {
    fn decrypt(&self, block: &mut [u8; 16]) {
        match self {
            Cipher::A128(c) => c.decrypt_block(block.into()),
            Cipher::A192(c) => c.decrypt_block(block.into()),
            Cipher::A256(c) => c.decrypt_block(block.into()),
        }
    }
}

/// RFC 3394 section 2.2.2 (and RFC 5649's one-block case): writes R into `out` and
/// returns A, unchecked.
fn w_inverse(cipher: &Cipher, wrapped: &[u8], out: &mut [u8]) -> [u8; 8] {
    let mut block = Zeroizing::new([0u8; 16]);
    let (a0, rest) = wrapped.split_at(8);
    let mut a = [0u8; 8];
    a.copy_from_slice(a0);
    out.copy_from_slice(rest);
    let n = out.len() / 8;
    if n == 1 {
        block.copy_from_slice(wrapped);
        cipher.decrypt(&mut block);
        let (a1, r) = block.split_at(8);
        a.copy_from_slice(a1);
        out.copy_from_slice(r);
        return a;
    }
    let n64 = u64::try_from(n).unwrap_or(u64::MAX);
    for j in (0..6u64).rev() {
        // i = n down to 1, with R[i].
        for (i, r) in (1..=n64).rev().zip(out.chunks_exact_mut(8).rev()) {
            let t = (n64 * j + i).to_be_bytes();
            let (hi, lo) = block.split_at_mut(8);
            for ((h, x), y) in hi.iter_mut().zip(&a).zip(&t) {
                *h = x ^ y;
            }
            lo.copy_from_slice(r);
            cipher.decrypt(&mut block);
            let (b_hi, b_lo) = block.split_at(8);
            a.copy_from_slice(b_hi);
            r.copy_from_slice(b_lo);
        }
    }
    a
}
