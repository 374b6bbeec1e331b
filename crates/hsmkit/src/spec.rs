//! Key specifications: type and size.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// NIST curves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EcCurve {
    /// NIST P-256 (secp256r1).
    P256,
    /// NIST P-384 (secp384r1).
    P384,
    /// NIST P-521 (secp521r1).
    P521,
}

impl EcCurve {
    /// Every supported curve.
    pub const ALL: &'static [EcCurve] = &[EcCurve::P256, EcCurve::P384, EcCurve::P521];

    /// The JOSE `crv` name: `P-256`, `P-384`, `P-521`.
    pub fn name(self) -> &'static str {
        match self {
            EcCurve::P256 => "P-256",
            EcCurve::P384 => "P-384",
            EcCurve::P521 => "P-521",
        }
    }

    /// Length of a field element / scalar in bytes (also half a raw signature).
    pub fn field_len(self) -> usize {
        match self {
            EcCurve::P256 => 32,
            EcCurve::P384 => 48,
            EcCurve::P521 => 66,
        }
    }

    /// The named-curve OID.
    pub fn oid(self) -> const_oid::ObjectIdentifier {
        use const_oid::db::rfc5912;
        match self {
            EcCurve::P256 => rfc5912::SECP_256_R_1,
            EcCurve::P384 => rfc5912::SECP_384_R_1,
            EcCurve::P521 => rfc5912::SECP_521_R_1,
        }
    }

    /// The curve with this named-curve OID.
    pub fn from_oid(oid: &const_oid::ObjectIdentifier) -> Result<Self> {
        EcCurve::ALL
            .iter()
            .copied()
            .find(|c| c.oid() == *oid)
            .ok_or_else(|| Error::unsupported(format!("elliptic curve {oid}")))
    }
}

impl fmt::Display for EcCurve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for EcCurve {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_uppercase().replace(['-', '_'], "").as_str() {
            "P256" | "SECP256R1" | "PRIME256V1" => Ok(EcCurve::P256),
            "P384" | "SECP384R1" => Ok(EcCurve::P384),
            "P521" | "SECP521R1" => Ok(EcCurve::P521),
            _ => Err(Error::invalid(format!("'{s}' is not a supported curve (P-256, P-384, P-521)"))),
        }
    }
}

/// AES key sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AesSize {
    /// 128-bit key.
    Aes128,
    /// 192-bit key.
    Aes192,
    /// 256-bit key.
    Aes256,
}

impl AesSize {
    /// Key length in bits.
    pub fn bits(self) -> u16 {
        match self {
            AesSize::Aes128 => 128,
            AesSize::Aes192 => 192,
            AesSize::Aes256 => 256,
        }
    }

    /// Key length in bytes.
    pub fn byte_len(self) -> usize {
        match self {
            AesSize::Aes128 => 16,
            AesSize::Aes192 => 24,
            AesSize::Aes256 => 32,
        }
    }

    /// The size for a key of `len` bytes.
    pub fn from_len(len: usize) -> Result<Self> {
        match len {
            16 => Ok(AesSize::Aes128),
            24 => Ok(AesSize::Aes192),
            32 => Ok(AesSize::Aes256),
            n => Err(Error::invalid(format!("an AES key is 16, 24 or 32 bytes, not {n}"))),
        }
    }

    /// The size for a key of `bits` bits.
    pub fn from_bits(bits: u32) -> Result<Self> {
        match bits {
            128 => Ok(AesSize::Aes128),
            192 => Ok(AesSize::Aes192),
            256 => Ok(AesSize::Aes256),
            n => Err(Error::invalid(format!("AES keys are 128, 192 or 256 bits, not {n}"))),
        }
    }
}

/// Sizes of RSA keys hsmkit generates.
pub const RSA_GENERATE_BITS: &[u32] = &[2048, 3072, 4096];
/// The smallest RSA modulus hsmkit imports.
pub const RSA_MIN_BITS: u32 = 2048;
/// The largest RSA modulus hsmkit imports.
pub const RSA_MAX_BITS: u32 = 8192;

/// The kind of key and its size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeySpec {
    /// RSA with a modulus of `bits` bits.
    Rsa {
        /// Modulus length in bits.
        bits: u32,
    },
    /// ECDSA on a NIST curve.
    Ec(EcCurve),
    /// AES (key wrap).
    Aes(AesSize),
}

impl KeySpec {
    /// RSA-2048.
    pub const RSA_2048: KeySpec = KeySpec::Rsa { bits: 2048 };
    /// RSA-3072.
    pub const RSA_3072: KeySpec = KeySpec::Rsa { bits: 3072 };
    /// RSA-4096.
    pub const RSA_4096: KeySpec = KeySpec::Rsa { bits: 4096 };
    /// EC P-256.
    pub const P256: KeySpec = KeySpec::Ec(EcCurve::P256);
    /// EC P-384.
    pub const P384: KeySpec = KeySpec::Ec(EcCurve::P384);
    /// EC P-521.
    pub const P521: KeySpec = KeySpec::Ec(EcCurve::P521);
    /// AES-128.
    pub const AES_128: KeySpec = KeySpec::Aes(AesSize::Aes128);
    /// AES-192.
    pub const AES_192: KeySpec = KeySpec::Aes(AesSize::Aes192);
    /// AES-256.
    pub const AES_256: KeySpec = KeySpec::Aes(AesSize::Aes256);

    /// Every spec hsmkit can generate.
    pub const GENERATABLE: &'static [KeySpec] = &[
        KeySpec::RSA_2048,
        KeySpec::RSA_3072,
        KeySpec::RSA_4096,
        KeySpec::P256,
        KeySpec::P384,
        KeySpec::P521,
        KeySpec::AES_128,
        KeySpec::AES_192,
        KeySpec::AES_256,
    ];

    /// The key type.
    pub fn key_type(self) -> KeyType {
        match self {
            KeySpec::Rsa { .. } => KeyType::Rsa,
            KeySpec::Ec(_) => KeyType::Ec,
            KeySpec::Aes(_) => KeyType::Aes,
        }
    }

    /// Checks that hsmkit generates keys of this spec.
    pub fn check_generatable(self) -> Result<()> {
        match self {
            KeySpec::Rsa { bits } if !RSA_GENERATE_BITS.contains(&bits) => Err(Error::invalid(format!(
                "RSA keys are generated with 2048, 3072 or 4096 bits, not {bits}"
            ))),
            KeySpec::Rsa { .. } | KeySpec::Ec(_) | KeySpec::Aes(_) => Ok(()),
        }
    }

    /// Builds a spec from a type name and an optional size or curve, as the CLI and the
    /// bindings take them: `("rsa", Some("3072"))`, `("ec", Some("P-384"))`, `("aes", None)`.
    pub fn from_parts(key_type: &str, size_or_curve: Option<&str>) -> Result<Self> {
        let key_type: KeyType = key_type.parse()?;
        let bits = |default: u32| -> Result<u32> {
            size_or_curve.map_or(Ok(default), |s| {
                s.parse::<u32>().map_err(|_| Error::invalid(format!("'{s}' is not a key size in bits")))
            })
        };
        match key_type {
            KeyType::Rsa => Ok(KeySpec::Rsa { bits: bits(2048)? }),
            KeyType::Ec => Ok(KeySpec::Ec(size_or_curve.unwrap_or("P-256").parse()?)),
            KeyType::Aes => Ok(KeySpec::Aes(AesSize::from_bits(bits(256)?)?)),
        }
    }
}

impl fmt::Display for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySpec::Rsa { bits } => write!(f, "RSA-{bits}"),
            KeySpec::Ec(c) => write!(f, "EC-{c}"),
            KeySpec::Aes(s) => write!(f, "AES-{}", s.bits()),
        }
    }
}

impl FromStr for KeySpec {
    type Err = Error;
    /// Parses `RSA-2048`, `EC-P-256`, `P-256`, `AES-256` (case-insensitive).
    fn from_str(s: &str) -> Result<Self> {
        let (t, rest) = match s.split_once('-') {
            Some((t, rest)) => (t, Some(rest)),
            None => (s, None),
        };
        if t.eq_ignore_ascii_case("p") {
            return Ok(KeySpec::Ec(s.parse()?));
        }
        KeySpec::from_parts(t, rest)
    }
}

/// The type of a key, without its size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// RSA.
    Rsa,
    /// Elliptic curve (ECDSA).
    Ec,
    /// AES.
    Aes,
}

impl KeyType {
    /// The JWK `kty`-like name: `RSA`, `EC`, `AES`.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::Rsa => "RSA",
            KeyType::Ec => "EC",
            KeyType::Aes => "AES",
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeyType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "rsa" => Ok(KeyType::Rsa),
            "ec" | "ecdsa" => Ok(KeyType::Ec),
            "aes" | "oct" => Ok(KeyType::Aes),
            _ => Err(Error::invalid(format!("'{s}' is not a key type (rsa, ec, aes)"))),
        }
    }
}
