//! RSA-OAEP encryption and decryption.

use getrandom::SysRng;
use hsmkit::InvalidReason;
use hsmkit::{EncryptionAlgorithm as A, Error, Result, Zeroizing};
use rsa::Oaep;
use rsa::sha2::Sha256;
use rsa::traits::PaddingScheme;
use sha1::Sha1;

use crate::key::RcKey;

fn oaep_with<D>(label: &[u8]) -> Oaep<D>
where
    D: rsa::sha2::digest::Digest + rsa::sha2::digest::FixedOutputReset,
{
    if label.is_empty() { Oaep::<D>::new() } else { Oaep::<D>::new_with_label(label.to_vec()) }
}

fn encrypt_with(key: &rsa::PublicKey, padding: impl PaddingScheme, plaintext: &[u8]) -> Result<Vec<u8>> {
    key.encrypt(&mut SysRng, padding, plaintext)
        .map_err(|e| Error::backend(crate::KIND, "rsa encrypt", e.to_string()))
}

/// Encrypts with the public key.
pub(crate) fn encrypt(engine: &RcKey, alg: A, plaintext: &[u8], label: &[u8]) -> Result<Vec<u8>> {
    let key = engine
        .rsa_public()
        .ok_or_else(|| Error::invalid(InvalidReason::KeyMismatch, format!("{alg} needs an RSA key")))?;
    match alg {
        A::RsaOaep => encrypt_with(key, oaep_with::<Sha1>(label), plaintext),
        A::RsaOaep256 => encrypt_with(key, oaep_with::<Sha256>(label), plaintext),
    }
}

/// Decrypts. Every failure is [`Error::DecryptionFailed`]; RSA blinding is on.
pub(crate) fn decrypt(engine: &RcKey, alg: A, ciphertext: &[u8], label: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    // `rsa_public` names every RSA form; only the private one decrypts.
    let key = match (engine, engine.rsa_public()) {
        (RcKey::RsaPrivate(k), _) => k,
        (_, Some(_)) => {
            return Err(crate::public_only());
        }
        (_, None) => {
            return Err(Error::invalid(InvalidReason::KeyMismatch, format!("{alg} needs an RSA key")));
        }
    };
    let r = match alg {
        A::RsaOaep => key.decrypt_blinded(&mut SysRng, oaep_with::<Sha1>(label), ciphertext),
        A::RsaOaep256 => key.decrypt_blinded(&mut SysRng, oaep_with::<Sha256>(label), ciphertext),
    };
    r.map(Zeroizing::new).map_err(|_| Error::DecryptionFailed)
}
