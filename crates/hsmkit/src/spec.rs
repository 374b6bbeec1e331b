//! Key specifications: type and size.

use crate::error::{InvalidReason, UnsupportedReason};
use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The curves of ECDSA keys: NIST's three and secp256k1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EcCurve {
    /// NIST P-256 (secp256r1).
    P256,
    /// NIST P-384 (secp384r1).
    P384,
    /// NIST P-521 (secp521r1).
    P521,
    /// secp256k1 (SEC 2), which key vaults call `P-256K`; JOSE `ES256K` (RFC 8812).
    P256K,
}

/// secp256k1's named-curve OID (SEC 2: 1.3.132.0.10).
const SECP_256_K_1: const_oid::ObjectIdentifier = const_oid::ObjectIdentifier::new_unwrap("1.3.132.0.10");

impl EcCurve {
    /// Every supported curve.
    pub const ALL: &'static [EcCurve] = &[EcCurve::P256, EcCurve::P384, EcCurve::P521, EcCurve::P256K];

    /// The JOSE `crv` name: `P-256`, `P-384`, `P-521`, and the key vaults' `P-256K` for
    /// secp256k1 (RFC 8812 writes `secp256k1`, which is accepted when parsing).
    pub fn name(self) -> &'static str {
        match self {
            EcCurve::P256 => "P-256",
            EcCurve::P384 => "P-384",
            EcCurve::P521 => "P-521",
            EcCurve::P256K => "P-256K",
        }
    }

    /// Length of a field element / scalar in bytes (also half a raw signature).
    pub fn field_len(self) -> usize {
        match self {
            EcCurve::P256 | EcCurve::P256K => 32,
            EcCurve::P384 => 48,
            EcCurve::P521 => 66,
        }
    }

    /// The size of the group order in bits (PKCS#11 mechanism sizes use it).
    pub fn order_bits(self) -> u32 {
        match self {
            EcCurve::P256 | EcCurve::P256K => 256,
            EcCurve::P384 => 384,
            EcCurve::P521 => 521,
        }
    }

    /// The named-curve OID.
    pub fn oid(self) -> const_oid::ObjectIdentifier {
        use const_oid::db::rfc5912;
        match self {
            EcCurve::P256 => rfc5912::SECP_256_R_1,
            EcCurve::P384 => rfc5912::SECP_384_R_1,
            EcCurve::P521 => rfc5912::SECP_521_R_1,
            EcCurve::P256K => SECP_256_K_1,
        }
    }

    /// The curve with this named-curve OID.
    pub fn from_oid(oid: &const_oid::ObjectIdentifier) -> Result<Self> {
        EcCurve::ALL
            .iter()
            .copied()
            .find(|c| c.oid() == *oid)
            .ok_or_else(|| Error::unsupported(UnsupportedReason::KeyType, format!("elliptic curve {oid}")))
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
            "P256K" | "SECP256K1" => Ok(EcCurve::P256K),
            _ => Err(Error::invalid(
                InvalidReason::Malformed,
                format!("'{s}' is not a supported curve (P-256, P-384, P-521, P-256K)"),
            )),
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
            n => Err(Error::invalid(
                InvalidReason::Length,
                format!("an AES key is 16, 24 or 32 bytes, not {n}"),
            )),
        }
    }

    /// The size for a key of `bits` bits.
    pub fn from_bits(bits: u32) -> Result<Self> {
        match bits {
            128 => Ok(AesSize::Aes128),
            192 => Ok(AesSize::Aes192),
            256 => Ok(AesSize::Aes256),
            n => Err(Error::invalid(
                InvalidReason::Length,
                format!("AES keys are 128, 192 or 256 bits, not {n}"),
            )),
        }
    }
}

/// Sizes of RSA keys hsmkit generates.
pub const RSA_GENERATE_BITS: &[u32] = &[2048, 3072, 4096];
/// The smallest RSA modulus hsmkit imports.
pub const RSA_MIN_BITS: u32 = 2048;
/// The largest RSA modulus hsmkit imports.
pub const RSA_MAX_BITS: u32 = 8192;
/// Sizes of HMAC keys hsmkit generates (one per HS* algorithm's hash).
pub const HMAC_GENERATE_BITS: &[u32] = &[256, 384, 512];
/// The smallest HMAC key hsmkit takes: HS256's hash length (RFC 7518 section 3.2).
pub const HMAC_MIN_BITS: u32 = 256;
/// The largest HMAC key hsmkit takes: HS512's hash length (longer keys are hashed down by
/// HMAC itself, so they add nothing).
pub const HMAC_MAX_BITS: u32 = 512;

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
    /// Ed25519 (EdDSA, RFC 8032).
    Ed25519,
    /// A generic secret for HMAC (HS256/HS384/HS512) of `bits` bits, a multiple of 8
    /// from [`HMAC_MIN_BITS`] to [`HMAC_MAX_BITS`].
    Hmac {
        /// Key length in bits.
        bits: u32,
    },
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
    /// EC secp256k1 (`P-256K`).
    pub const P256K: KeySpec = KeySpec::Ec(EcCurve::P256K);
    /// Ed25519.
    pub const ED25519: KeySpec = KeySpec::Ed25519;
    /// A 256-bit HMAC key.
    pub const HMAC_256: KeySpec = KeySpec::Hmac { bits: 256 };
    /// A 384-bit HMAC key.
    pub const HMAC_384: KeySpec = KeySpec::Hmac { bits: 384 };
    /// A 512-bit HMAC key.
    pub const HMAC_512: KeySpec = KeySpec::Hmac { bits: 512 };

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
        KeySpec::P256K,
        KeySpec::ED25519,
        KeySpec::HMAC_256,
        KeySpec::HMAC_384,
        KeySpec::HMAC_512,
    ];

    /// The key type.
    pub fn key_type(self) -> KeyType {
        match self {
            KeySpec::Rsa { .. } => KeyType::Rsa,
            KeySpec::Ec(_) => KeyType::Ec,
            KeySpec::Aes(_) => KeyType::Aes,
            KeySpec::Ed25519 => KeyType::Ed25519,
            KeySpec::Hmac { .. } => KeyType::Hmac,
        }
    }

    /// Checks an HMAC key length (in bits) against hsmkit's range.
    pub fn check_hmac_bits(bits: u32) -> Result<()> {
        if (HMAC_MIN_BITS..=HMAC_MAX_BITS).contains(&bits) && bits.is_multiple_of(8) {
            Ok(())
        } else {
            Err(Error::invalid(
                InvalidReason::Length,
                format!("HMAC keys are {HMAC_MIN_BITS} to {HMAC_MAX_BITS} bits in whole bytes, not {bits}"),
            ))
        }
    }

    /// Checks that hsmkit generates keys of this spec.
    pub fn check_generatable(self) -> Result<()> {
        match self {
            KeySpec::Rsa { bits } if !RSA_GENERATE_BITS.contains(&bits) => Err(Error::invalid(
                InvalidReason::Length,
                format!("RSA keys are generated with 2048, 3072 or 4096 bits, not {bits}"),
            )),
            KeySpec::Hmac { bits } if !HMAC_GENERATE_BITS.contains(&bits) => Err(Error::invalid(
                InvalidReason::Length,
                format!("HMAC keys are generated with 256, 384 or 512 bits, not {bits}"),
            )),
            KeySpec::Rsa { .. }
            | KeySpec::Ec(_)
            | KeySpec::Aes(_)
            | KeySpec::Ed25519
            | KeySpec::Hmac { .. } => Ok(()),
        }
    }

    /// Builds a spec from a type name, a size in bits and a curve as the front ends take
    /// them (CLI `--type/--size/--curve`, Python `create_key(name, type, size=, curve=)`):
    /// a curve only for EC keys, a size only for RSA, AES and HMAC keys; without them,
    /// the defaults of [`from_parts`](Self::from_parts).
    pub fn from_options(key_type: &str, size: Option<u32>, curve: Option<&str>) -> Result<Self> {
        let key_type: KeyType = key_type.parse()?;
        let size = size.map(|s| s.to_string());
        match (key_type, size, curve) {
            (KeyType::Ec, None, curve) => KeySpec::from_parts("ec", curve),
            (KeyType::Ec, Some(_), _) => {
                Err(Error::invalid(InvalidReason::Parameter, "EC keys take a curve, not a size"))
            }
            (KeyType::Rsa | KeyType::Aes | KeyType::Ed25519 | KeyType::Hmac, _, Some(_)) => {
                Err(Error::invalid(
                    InvalidReason::Parameter,
                    "a curve is for EC keys; RSA, AES and HMAC keys take a size",
                ))
            }
            (KeyType::Ed25519, Some(_), None) => {
                Err(Error::invalid(InvalidReason::Parameter, "Ed25519 keys have no size"))
            }
            (KeyType::Rsa | KeyType::Aes | KeyType::Ed25519 | KeyType::Hmac, size, None) => {
                KeySpec::from_parts(key_type.name(), size.as_deref())
            }
        }
    }

    /// Builds a spec from a type name and an optional size or curve, as the CLI and the
    /// bindings take them: `("rsa", Some("3072"))`, `("ec", Some("P-384"))`, `("aes", None)`,
    /// `("ed25519", None)`, `("hmac", Some("384"))`. Without a size: RSA-2048, P-256,
    /// AES-256, HMAC-256 (the defaults every front end shares).
    pub fn from_parts(key_type: &str, size_or_curve: Option<&str>) -> Result<Self> {
        let key_type: KeyType = key_type.parse()?;
        let bits = |default: u32| -> Result<u32> {
            size_or_curve.map_or(Ok(default), |s| {
                s.parse::<u32>().map_err(|_| {
                    Error::invalid(InvalidReason::Malformed, format!("'{s}' is not a key size in bits"))
                })
            })
        };
        match key_type {
            KeyType::Rsa => Ok(KeySpec::Rsa { bits: bits(2048)? }),
            KeyType::Ec => Ok(KeySpec::Ec(size_or_curve.unwrap_or("P-256").parse()?)),
            KeyType::Aes => Ok(KeySpec::Aes(AesSize::from_bits(bits(256)?)?)),
            KeyType::Ed25519 => match size_or_curve {
                None => Ok(KeySpec::Ed25519),
                Some(s) if s.eq_ignore_ascii_case("ed25519") => Ok(KeySpec::Ed25519),
                Some(s) => Err(Error::invalid(
                    InvalidReason::Parameter,
                    format!("Ed25519 keys have no size or curve to choose ('{s}')"),
                )),
            },
            KeyType::Hmac => {
                let bits = bits(256)?;
                KeySpec::check_hmac_bits(bits)?;
                Ok(KeySpec::Hmac { bits })
            }
        }
    }
}

impl fmt::Display for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySpec::Rsa { bits } => write!(f, "RSA-{bits}"),
            KeySpec::Ec(c) => write!(f, "EC-{c}"),
            KeySpec::Aes(s) => write!(f, "AES-{}", s.bits()),
            KeySpec::Ed25519 => f.write_str("Ed25519"),
            KeySpec::Hmac { bits } => write!(f, "HMAC-{bits}"),
        }
    }
}

impl FromStr for KeySpec {
    type Err = Error;
    /// Parses `RSA-2048`, `EC-P-256`, `P-256`, `P-256K`, `AES-256`, `Ed25519`, `HMAC-256`
    /// (case-insensitive).
    fn from_str(s: &str) -> Result<Self> {
        let (t, rest) = match s.split_once('-') {
            Some((t, rest)) => (t, Some(rest)),
            None => (s, None),
        };
        if t.eq_ignore_ascii_case("p") {
            return Ok(KeySpec::Ec(s.parse()?));
        }
        // A curve alone: `secp256k1`, `prime256v1`.
        if let Ok(curve) = s.parse::<EcCurve>() {
            return Ok(KeySpec::Ec(curve));
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
    /// Ed25519 (JWK `kty` `OKP`).
    Ed25519,
    /// A generic secret for HMAC (JWK `kty` `oct`).
    Hmac,
}

impl KeyType {
    /// The name hsmkit writes: `RSA`, `EC`, `AES`, `Ed25519`, `HMAC`.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::Rsa => "RSA",
            KeyType::Ec => "EC",
            KeyType::Aes => "AES",
            KeyType::Ed25519 => "Ed25519",
            KeyType::Hmac => "HMAC",
        }
    }

    /// Whether keys of this type are one secret value (no public half): AES and HMAC.
    pub fn is_secret(self) -> bool {
        match self {
            KeyType::Aes | KeyType::Hmac => true,
            KeyType::Rsa | KeyType::Ec | KeyType::Ed25519 => false,
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
            "ed25519" | "okp" | "eddsa" => Ok(KeyType::Ed25519),
            "hmac" => Ok(KeyType::Hmac),
            _ => Err(Error::invalid(
                InvalidReason::Malformed,
                format!("'{s}' is not a key type (rsa, ec, aes, ed25519, hmac)"),
            )),
        }
    }
}
