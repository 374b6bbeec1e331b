//! Key wrapping: AES-KW (RFC 3394), AES-KWP (RFC 5649), RSA-OAEP.

use aes_kw::{KeyInit, KwAes128, KwAes192, KwAes256, KwpAes128, KwpAes192, KwpAes256};
use hsmkit::{EncryptionAlgorithm, Error, KeyWrapAlgorithm as A, Result, WrapScheme, Zeroizing};

use crate::key::Engine;

fn aes_key(engine: &Engine) -> Result<&[u8]> {
    match engine {
        Engine::Aes(k) => Ok(k),
        _ => Err(Error::invalid("AES key wrap needs an AES key")),
    }
}

fn bad_key(_: impl std::fmt::Debug) -> Error {
    Error::invalid("AES key has the wrong length for this algorithm")
}

macro_rules! kw {
    ($ty:ty, $kek:expr, $op:ident, $input:expr, $out_len:expr) => {{
        let cipher = <$ty>::new_from_slice($kek).map_err(bad_key)?;
        let mut buf = Zeroizing::new(vec![0u8; $out_len]);
        let n = cipher.$op($input, &mut buf).map(|out| out.len());
        (n, buf)
    }};
}

/// Wraps `key`. Lengths were checked by the core.
pub(crate) fn wrap_key(engine: &Engine, alg: A, key: &[u8]) -> Result<Vec<u8>> {
    let kw_len = key.len() + 8;
    let kwp_len = key.len().div_ceil(8) * 8 + 8;
    let (n, buf) = match alg {
        A::A128Kw => kw!(KwAes128, aes_key(engine)?, wrap_key, key, kw_len),
        A::A192Kw => kw!(KwAes192, aes_key(engine)?, wrap_key, key, kw_len),
        A::A256Kw => kw!(KwAes256, aes_key(engine)?, wrap_key, key, kw_len),
        A::A128Kwp => kw!(KwpAes128, aes_key(engine)?, wrap_key, key, kwp_len),
        A::A192Kwp => kw!(KwpAes192, aes_key(engine)?, wrap_key, key, kwp_len),
        A::A256Kwp => kw!(KwpAes256, aes_key(engine)?, wrap_key, key, kwp_len),
        A::RsaOaep => return crate::encrypt::encrypt(engine, EncryptionAlgorithm::RsaOaep, key, &[]),
        A::RsaOaep256 => return crate::encrypt::encrypt(engine, EncryptionAlgorithm::RsaOaep256, key, &[]),
        other => return Err(Error::unsupported(format!("{other}"))),
    };
    let n = n.map_err(|e| Error::invalid(format!("{alg}: {e}")))?;
    Ok(buf.get(..n).unwrap_or_default().to_vec())
}

/// Unwraps `wrapped`. Every failure is [`Error::DecryptionFailed`].
pub(crate) fn unwrap_key(engine: &Engine, alg: A, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if let WrapScheme::RsaOaep(enc) = alg.scheme() {
        return crate::encrypt::decrypt(engine, enc, wrapped, &[]);
    }
    let out_len = wrapped.len().checked_sub(8).ok_or(Error::DecryptionFailed)?;
    let (n, mut buf) = match alg {
        A::A128Kw => kw!(KwAes128, aes_key(engine)?, unwrap_key, wrapped, out_len),
        A::A192Kw => kw!(KwAes192, aes_key(engine)?, unwrap_key, wrapped, out_len),
        A::A256Kw => kw!(KwAes256, aes_key(engine)?, unwrap_key, wrapped, out_len),
        A::A128Kwp => kw!(KwpAes128, aes_key(engine)?, unwrap_key, wrapped, out_len),
        A::A192Kwp => kw!(KwpAes192, aes_key(engine)?, unwrap_key, wrapped, out_len),
        A::A256Kwp => kw!(KwpAes256, aes_key(engine)?, unwrap_key, wrapped, out_len),
        other => return Err(Error::unsupported(format!("{other}"))),
    };
    let n = n.map_err(|_| Error::DecryptionFailed)?;
    buf.truncate(n);
    Ok(buf)
}
