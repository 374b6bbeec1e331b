//! The key schedule: a data key and a message id give the commitment, the header key and
//! the body key (docs/envelope-format.md, "Key schedule").

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::format::{COMMITMENT_LEN, EnvelopeHeader, MESSAGE_ID_LEN, Suite, TAG_LEN};
use crate::crypto::{Aes256GcmKey, CryptoProvider, HkdfOutput, NONCE_LEN};
use crate::error::{Error, Result};

/// Length of a data key.
pub(crate) const DEK_LEN: usize = 32;

/// A data key. Zeroized on drop; never printed.
#[derive(Clone)]
pub(crate) struct Dek(pub(crate) Zeroizing<[u8; DEK_LEN]>);

impl Dek {
    pub(crate) fn random(crypto: &dyn CryptoProvider) -> Result<Self> {
        let mut k = Zeroizing::new([0u8; DEK_LEN]);
        crypto.fill_random(k.as_mut_slice())?;
        Ok(Dek(k))
    }

    /// An unwrapped key of the wrong length is a failed unwrap, like any other.
    pub(crate) fn from_unwrapped(bytes: &[u8]) -> Result<Self> {
        let mut k = Zeroizing::new([0u8; DEK_LEN]);
        if bytes.len() != DEK_LEN {
            return Err(Error::DecryptionFailed);
        }
        k.copy_from_slice(bytes);
        Ok(Dek(k))
    }
}

/// The per-envelope keys, on the AES-GCM of the store's provider.
pub(crate) struct MessageKeys {
    pub(crate) commitment: [u8; COMMITMENT_LEN],
    header: Box<dyn Aes256GcmKey>,
    pub(crate) body: Box<dyn Aes256GcmKey>,
}

impl MessageKeys {
    pub(crate) fn derive(
        crypto: &dyn CryptoProvider,
        suite: Suite,
        dek: &Dek,
        message_id: &[u8; MESSAGE_ID_LEN],
    ) -> Result<Self> {
        let hash = suite.kdf_hash();
        let id = [suite.id()];
        let prk = crypto.hkdf_extract(hash, message_id, dek.0.as_slice())?;
        let mut commitment = [0u8; COMMITMENT_LEN];
        let mut header_key = Zeroizing::new([0u8; 32]);
        let mut body_key = Zeroizing::new([0u8; 32]);
        // One keyed HMAC for the three labels (docs/envelope-format.md, "Key schedule").
        crypto.hkdf_expand_each(
            hash,
            &prk,
            &mut [
                HkdfOutput { info: &[b"hsmkit-envelope/1 commitment", &id], okm: &mut commitment },
                HkdfOutput { info: &[b"hsmkit-envelope/1 header", &id], okm: header_key.as_mut_slice() },
                HkdfOutput { info: &[b"hsmkit-envelope/1 body", &id], okm: body_key.as_mut_slice() },
            ],
        )?;
        let header = crypto.aes_256_gcm(&header_key)?;
        let body = crypto.aes_256_gcm(&body_key)?;
        Ok(MessageKeys { commitment, header, body })
    }

    /// The header tag over `authenticated` (magic through commitment).
    pub(crate) fn header_tag(&self, authenticated: &[u8]) -> Result<[u8; TAG_LEN]> {
        self.header.seal_in_place(&[0; NONCE_LEN], authenticated, &mut [])
    }

    /// Checks the commitment (constant time) and then the header tag.
    pub(crate) fn check_header(&self, header: &EnvelopeHeader) -> Result<()> {
        if !bool::from(self.commitment.ct_eq(&header.commitment)) {
            return Err(Error::DecryptionFailed);
        }
        self.header
            .open_in_place(&[0; NONCE_LEN], &header.authenticated_bytes(), &mut [], &header.tag)
            .map_err(|_| Error::DecryptionFailed)
    }
}

/// STREAM nonce: seven zero bytes, the chunk index, the final flag.
pub(crate) fn chunk_nonce(index: u32, last: bool) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    n[7..11].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    n
}
