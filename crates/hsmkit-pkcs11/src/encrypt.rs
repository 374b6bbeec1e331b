//! RSA-OAEP decryption on the token (encryption is public and runs in software).

use cryptoki::mechanism::Mechanism;
use hsmkit::{EncryptionAlgorithm, Result, Zeroizing};

use crate::key::TokenKey;
use crate::probe::oaep_params;

/// `CKM_RSA_PKCS_OAEP` with the algorithm's hash and label, when the token supports them.
pub(crate) fn decrypt(
    key: &TokenKey,
    alg: EncryptionAlgorithm,
    ct: &[u8],
    label: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    key.probe.check_oaep(alg, label)?;
    let mech = Mechanism::RsaPkcsOaep(oaep_params(alg, label));
    key.with_private(true, |s, h| crate::oneshot::decrypt(s, &mech, h, ct)).map(Zeroizing::new)
}
