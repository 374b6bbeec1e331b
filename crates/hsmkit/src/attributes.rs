//! Key attributes and their enforcement.
//!
//! The core enforces these for every backend (see [`crate::Key`]); backends map them onto
//! native attributes where they have them (`CKA_SIGN`, `CKA_END_DATE`, ...).

use crate::error::InvalidReason;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use crate::error::{Denied, Error, Result};
use crate::spec::KeyType;

/// One operation a key may be allowed to do (key-vault names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyOp {
    /// `sign`
    Sign,
    /// `verify`
    Verify,
    /// `encrypt`
    Encrypt,
    /// `decrypt`
    Decrypt,
    /// `wrapKey`
    WrapKey,
    /// `unwrapKey`
    UnwrapKey,
}

impl KeyOp {
    /// Every operation.
    pub const ALL: &'static [KeyOp] =
        &[KeyOp::Sign, KeyOp::Verify, KeyOp::Encrypt, KeyOp::Decrypt, KeyOp::WrapKey, KeyOp::UnwrapKey];

    /// The key-vault name.
    pub fn name(self) -> &'static str {
        match self {
            KeyOp::Sign => "sign",
            KeyOp::Verify => "verify",
            KeyOp::Encrypt => "encrypt",
            KeyOp::Decrypt => "decrypt",
            KeyOp::WrapKey => "wrapKey",
            KeyOp::UnwrapKey => "unwrapKey",
        }
    }

    fn bit(self) -> u8 {
        match self {
            KeyOp::Sign => 1,
            KeyOp::Verify => 2,
            KeyOp::Encrypt => 4,
            KeyOp::Decrypt => 8,
            KeyOp::WrapKey => 16,
            KeyOp::UnwrapKey => 32,
        }
    }

    /// Whether the operation uses the private or secret part of the key.
    pub fn is_private(self) -> bool {
        matches!(self, KeyOp::Sign | KeyOp::Decrypt | KeyOp::UnwrapKey)
    }
}

impl fmt::Display for KeyOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeyOp {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let norm = s.to_ascii_lowercase().replace(['-', '_'], "");
        KeyOp::ALL
            .iter()
            .copied()
            .find(|op| {
                op.name().to_ascii_lowercase() == norm
                    || (norm == "wrap" && *op == KeyOp::WrapKey)
                    || (norm == "unwrap" && *op == KeyOp::UnwrapKey)
            })
            .ok_or_else(|| {
                Error::invalid(
                    InvalidReason::Malformed,
                    format!(
                        "'{s}' is not a key operation (sign, verify, encrypt, decrypt, wrapKey, unwrapKey)"
                    ),
                )
            })
    }
}

/// A set of [`KeyOp`]s.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct KeyOps(u8);

impl KeyOps {
    /// No operation.
    pub const NONE: KeyOps = KeyOps(0);

    /// The set holding these operations.
    pub fn from_ops(ops: &[KeyOp]) -> Self {
        KeyOps(ops.iter().fold(0, |acc, op| acc | op.bit()))
    }

    /// Whether `op` is in the set.
    pub fn contains(self, op: KeyOp) -> bool {
        self.0 & op.bit() != 0
    }

    /// The set with `op` added.
    #[must_use]
    pub fn with(self, op: KeyOp) -> Self {
        KeyOps(self.0 | op.bit())
    }

    /// The operations in the set, in [`KeyOp::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = KeyOp> {
        KeyOp::ALL.iter().copied().filter(move |op| self.contains(*op))
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The operations a key type can do at all, which is also the default for new keys.
    ///
    /// RSA keys get sign/verify and encrypt/decrypt but not wrap/unwrap: one key never
    /// does both decrypt and unwrap by default, so that a wrapped key cannot be read out
    /// by decrypting it (key-role separation). Ask for wrapKey/unwrapKey explicitly.
    pub fn default_for(key_type: KeyType) -> Self {
        match key_type {
            KeyType::Rsa => KeyOps::from_ops(&[KeyOp::Sign, KeyOp::Verify, KeyOp::Encrypt, KeyOp::Decrypt]),
            KeyType::Ec | KeyType::Ed25519 | KeyType::Hmac => KeyOps::from_ops(&[KeyOp::Sign, KeyOp::Verify]),
            KeyType::Aes => KeyOps::from_ops(&[KeyOp::WrapKey, KeyOp::UnwrapKey]),
        }
    }

    /// The operations a key type is able to do.
    pub fn possible_for(key_type: KeyType) -> Self {
        match key_type {
            KeyType::Rsa => KeyOps::from_ops(KeyOp::ALL),
            KeyType::Ec | KeyType::Ed25519 | KeyType::Hmac => KeyOps::from_ops(&[KeyOp::Sign, KeyOp::Verify]),
            KeyType::Aes => KeyOps::from_ops(&[KeyOp::WrapKey, KeyOp::UnwrapKey]),
        }
    }
}

impl fmt::Debug for KeyOps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl fmt::Display for KeyOps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.iter().map(KeyOp::name).collect();
        f.write_str(&names.join(","))
    }
}

impl FromStr for KeyOps {
    type Err = Error;
    /// Parses a comma-separated list: `sign,verify`.
    fn from_str(s: &str) -> Result<Self> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .try_fold(KeyOps::NONE, |acc, p| Ok(acc.with(p.parse()?)))
    }
}

impl FromIterator<KeyOp> for KeyOps {
    fn from_iter<I: IntoIterator<Item = KeyOp>>(iter: I) -> Self {
        iter.into_iter().fold(KeyOps::NONE, KeyOps::with)
    }
}

/// Attributes of a key version: what it may do and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyAttributes {
    /// Allowed operations. `None` when creating means "the default for the key type".
    pub ops: Option<KeyOps>,
    /// A disabled key refuses every operation.
    pub enabled: bool,
    /// Before this time, the key refuses every operation but verify.
    pub not_before: Option<SystemTime>,
    /// From this time on, the key refuses every operation but verify.
    pub expires: Option<SystemTime>,
    /// Free-form tags.
    pub tags: BTreeMap<String, String>,
    /// Whether the private/secret part may be exported (software backend only).
    pub exportable: bool,
}

impl Default for KeyAttributes {
    fn default() -> Self {
        KeyAttributes {
            ops: None,
            enabled: true,
            not_before: None,
            expires: None,
            tags: BTreeMap::new(),
            exportable: false,
        }
    }
}

impl KeyAttributes {
    /// Attributes allowing exactly `ops`.
    pub fn with_ops(ops: &[KeyOp]) -> Self {
        KeyAttributes { ops: Some(KeyOps::from_ops(ops)), ..Self::default() }
    }

    /// Fills in defaults for a key of `key_type` and checks the attributes make sense.
    pub fn resolve(mut self, key_type: KeyType) -> Result<Self> {
        let possible = KeyOps::possible_for(key_type);
        let ops = self.ops.unwrap_or_else(|| KeyOps::default_for(key_type));
        if let Some(op) = ops.iter().find(|op| !possible.contains(*op)) {
            return Err(Error::invalid(
                InvalidReason::KeyMismatch,
                format!("a {key_type} key cannot '{op}'"),
            ));
        }
        // Key-role separation: a key that can unwrap must not decrypt, or the wrapped
        // form of a key could be decrypted to read the key out (Clulow's attack).
        let crypts = ops.contains(KeyOp::Encrypt) || ops.contains(KeyOp::Decrypt);
        let wraps = ops.contains(KeyOp::WrapKey) || ops.contains(KeyOp::UnwrapKey);
        if crypts && wraps {
            return Err(Error::invalid(
                InvalidReason::Parameter,
                "a key is either for encrypt/decrypt or for wrapKey/unwrapKey, not both (key-role separation)",
            ));
        }
        // An HMAC key signs and verifies alike: whoever holds it can forge every MAC it
        // made, so it never leaves the backend (as key vaults have it).
        if self.exportable && key_type == KeyType::Hmac {
            return Err(Error::invalid(InvalidReason::Parameter, "HMAC keys are never exportable"));
        }
        check_times(self.not_before, self.expires)?;
        self.ops = Some(ops);
        Ok(self)
    }

    /// The allowed operations (after [`resolve`](Self::resolve), always `Some`).
    pub fn allowed(&self) -> KeyOps {
        self.ops.unwrap_or(KeyOps::NONE)
    }

    /// Whether `op` is permitted at time `now`; the reason if not.
    pub fn check(&self, op: KeyOp, now: SystemTime) -> std::result::Result<(), Denied> {
        if !self.enabled {
            return Err(Denied::Disabled);
        }
        if !self.allowed().contains(op) {
            return Err(Denied::OperationNotAllowed(op));
        }
        // Verification of old signatures stays possible outside the validity window.
        if op != KeyOp::Verify {
            if self.not_before.is_some_and(|nb| now < nb) {
                return Err(Denied::NotYetValid);
            }
            if self.expires.is_some_and(|exp| now >= exp) {
                return Err(Denied::Expired);
            }
        }
        Ok(())
    }
}

/// The last second RFC 3339 can write: 9999-12-31T23:59:59Z.
const MAX_TIME_SECS: u64 = 253_402_300_799;

/// Whether `t` is within 1970-01-01 ..= 9999-12-31T23:59:59Z, the times attributes take.
pub(crate) fn time_in_range(t: SystemTime) -> bool {
    t.duration_since(std::time::UNIX_EPOCH).is_ok_and(|d| d.as_secs() <= MAX_TIME_SECS)
}

/// Checks a not-before / expires pair: each within 1970..=9999, expires after
/// not-before.
pub(crate) fn check_times(not_before: Option<SystemTime>, expires: Option<SystemTime>) -> Result<()> {
    if [not_before, expires].into_iter().flatten().any(|t| !time_in_range(t)) {
        return Err(Error::invalid(
            InvalidReason::Parameter,
            "not-before and expires must be between 1970-01-01 and 9999-12-31",
        ));
    }
    if let (Some(nb), Some(exp)) = (not_before, expires)
        && exp <= nb
    {
        return Err(Error::invalid(InvalidReason::Parameter, "expires must be after not-before"));
    }
    Ok(())
}
