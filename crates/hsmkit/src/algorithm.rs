//! Algorithms, named as in JOSE (RFC 7518) and cloud key vaults.
//!
//! Each operation takes its own algorithm type, so that a signature algorithm cannot be
//! handed to `encrypt`. [`Algorithm`] is the union, for parsing names from users.
//!
//! These enums (like [`crate::KeySpec`], [`crate::KeyOp`] and [`crate::KeyMaterial`]) are
//! not `#[non_exhaustive]`: backends and front ends match them exhaustively (no wildcard
//! arm; `clippy::wildcard_enum_match_arm` is denied there), so a new algorithm does not
//! compile until every one of them says what it does with it.

use crate::error::InvalidReason;
use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::spec::{EcCurve, KeySpec};

/// A hash function used by a signature or OAEP algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashAlg {
    /// SHA-1 (OAEP only).
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlg {
    /// Output length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            HashAlg::Sha1 => 20,
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    /// The DER `DigestInfo` (RFC 8017 section 9.2) that RSASSA-PKCS1-v1_5 signs, for
    /// backends that sign with raw PKCS#1 v1.5 padding over a caller's digest.
    pub fn digest_info(self, digest: &[u8]) -> Result<Vec<u8>> {
        use const_oid::db::rfc5912;
        use der::Encode;
        #[derive(der::Sequence)]
        struct DigestInfo<'a> {
            algorithm: spki::AlgorithmIdentifierRef<'a>,
            digest: &'a der::asn1::OctetStringRef,
        }
        if digest.len() != self.output_len() {
            return Err(Error::invalid(
                InvalidReason::Length,
                format!("a {self:?} digest is {} bytes", self.output_len()),
            ));
        }
        let oid = match self {
            HashAlg::Sha1 => rfc5912::ID_SHA_1,
            HashAlg::Sha256 => rfc5912::ID_SHA_256,
            HashAlg::Sha384 => rfc5912::ID_SHA_384,
            HashAlg::Sha512 => rfc5912::ID_SHA_512,
        };
        let enc =
            |e: der::Error| Error::invalid(InvalidReason::Malformed, format!("DER encoding failed: {e}"));
        DigestInfo {
            algorithm: spki::AlgorithmIdentifierRef { oid, parameters: Some(der::asn1::AnyRef::NULL) },
            digest: der::asn1::OctetStringRef::new(digest).map_err(enc)?,
        }
        .to_der()
        .map_err(enc)
    }
}

macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$meta])*
                #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The JOSE / key-vault name.
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.name()) }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|a| a.name().eq_ignore_ascii_case(s))
                    .ok_or_else(|| Error::invalid(InvalidReason::Malformed, format!(
                        concat!("'{}' is not a known ", stringify!($name), " (expected one of {})"),
                        s,
                        $name::ALL.iter().map(|a| a.name()).collect::<Vec<_>>().join(", ")
                    )))
            }
        }
    };
}

named_enum! {
    /// Signature algorithms.
    SignatureAlgorithm {
        /// RSASSA-PKCS1-v1_5 with SHA-256.
        Rs256 => "RS256",
        /// RSASSA-PKCS1-v1_5 with SHA-384.
        Rs384 => "RS384",
        /// RSASSA-PKCS1-v1_5 with SHA-512.
        Rs512 => "RS512",
        /// RSASSA-PSS with SHA-256, MGF1-SHA-256, salt 32.
        Ps256 => "PS256",
        /// RSASSA-PSS with SHA-384, MGF1-SHA-384, salt 48.
        Ps384 => "PS384",
        /// RSASSA-PSS with SHA-512, MGF1-SHA-512, salt 64.
        Ps512 => "PS512",
        /// ECDSA on P-256 with SHA-256.
        Es256 => "ES256",
        /// ECDSA on P-384 with SHA-384.
        Es384 => "ES384",
        /// ECDSA on P-521 with SHA-512.
        Es512 => "ES512",
        /// ECDSA on secp256k1 (`P-256K`) with SHA-256 (RFC 8812).
        Es256k => "ES256K",
        /// EdDSA with Ed25519 (RFC 8032 "pure": the whole message, no prehash; RFC 8037).
        EdDsa => "EdDSA",
        /// HMAC with SHA-256 (RFC 7518 section 3.2).
        Hs256 => "HS256",
        /// HMAC with SHA-384.
        Hs384 => "HS384",
        /// HMAC with SHA-512.
        Hs512 => "HS512",
    }
}

/// The signature scheme family of a [`SignatureAlgorithm`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignatureScheme {
    /// RSASSA-PKCS1-v1_5.
    RsaPkcs1v15,
    /// RSASSA-PSS with salt length = hash length and MGF1 over the same hash.
    RsaPss,
    /// ECDSA on the given curve.
    Ecdsa(EcCurve),
    /// Ed25519 (pure EdDSA).
    Ed25519,
    /// HMAC with a secret key: "signing" and verifying both need the key.
    Hmac,
}

impl SignatureAlgorithm {
    /// The hash the message is digested with before the private-key operation, for
    /// algorithms that sign a digest (RSA, ECDSA); `None` for those that take the whole
    /// message (EdDSA, HMAC). Digest signing ([`crate::Key::sign_digest`]) is only for the
    /// former.
    pub fn prehash(self) -> Option<HashAlg> {
        match self.scheme() {
            SignatureScheme::RsaPkcs1v15 | SignatureScheme::RsaPss | SignatureScheme::Ecdsa(_) => {
                Some(self.hash())
            }
            SignatureScheme::Ed25519 | SignatureScheme::Hmac => None,
        }
    }

    /// The hash the algorithm uses: the prehash of RSA and ECDSA, HMAC's hash, and
    /// SHA-512 inside Ed25519.
    pub fn hash(self) -> HashAlg {
        use SignatureAlgorithm::*;
        match self {
            Rs256 | Ps256 | Es256 | Es256k | Hs256 => HashAlg::Sha256,
            Rs384 | Ps384 | Es384 | Hs384 => HashAlg::Sha384,
            Rs512 | Ps512 | Es512 | Hs512 | EdDsa => HashAlg::Sha512,
        }
    }

    /// The scheme family.
    pub fn scheme(self) -> SignatureScheme {
        use SignatureAlgorithm::*;
        match self {
            Rs256 | Rs384 | Rs512 => SignatureScheme::RsaPkcs1v15,
            Ps256 | Ps384 | Ps512 => SignatureScheme::RsaPss,
            Es256 => SignatureScheme::Ecdsa(EcCurve::P256),
            Es384 => SignatureScheme::Ecdsa(EcCurve::P384),
            Es512 => SignatureScheme::Ecdsa(EcCurve::P521),
            Es256k => SignatureScheme::Ecdsa(EcCurve::P256K),
            EdDsa => SignatureScheme::Ed25519,
            Hs256 | Hs384 | Hs512 => SignatureScheme::Hmac,
        }
    }

    /// Whether a key of this spec can use this algorithm. An HMAC key must be at least as
    /// long as the hash output (RFC 7518 section 3.2).
    pub fn fits(self, spec: KeySpec) -> bool {
        match (self.scheme(), spec) {
            (SignatureScheme::RsaPkcs1v15 | SignatureScheme::RsaPss, KeySpec::Rsa { .. }) => true,
            (SignatureScheme::Ecdsa(c), KeySpec::Ec(k)) => c == k,
            (SignatureScheme::Ed25519, KeySpec::Ed25519) => true,
            (SignatureScheme::Hmac, KeySpec::Hmac { bits }) => {
                u32::try_from(self.hash().output_len()).is_ok_and(|n| bits >= n * 8)
            }
            (SignatureScheme::RsaPkcs1v15 | SignatureScheme::RsaPss, _)
            | (SignatureScheme::Ecdsa(_), _)
            | (SignatureScheme::Ed25519, _)
            | (SignatureScheme::Hmac, _) => false,
        }
    }

    /// The length of a signature (JOSE encoding) with a key of `spec`, or `None` where the
    /// algorithm does not fit it. Front ends size their buffers with it.
    pub fn signature_len(self, spec: KeySpec) -> Option<usize> {
        if !self.fits(spec) {
            return None;
        }
        match (self.scheme(), spec) {
            (SignatureScheme::RsaPkcs1v15 | SignatureScheme::RsaPss, KeySpec::Rsa { bits }) => {
                usize::try_from(bits.div_ceil(8)).ok()
            }
            (SignatureScheme::Ecdsa(c), _) => Some(2 * c.field_len()),
            (SignatureScheme::Ed25519, _) => Some(64),
            (SignatureScheme::Hmac, _) => Some(self.hash().output_len()),
            (SignatureScheme::RsaPkcs1v15 | SignatureScheme::RsaPss, _) => None,
        }
    }
}

named_enum! {
    /// Asymmetric encryption algorithms.
    EncryptionAlgorithm {
        /// RSAES-OAEP with SHA-1 and MGF1-SHA-1.
        RsaOaep => "RSA-OAEP",
        /// RSAES-OAEP with SHA-256 and MGF1-SHA-256.
        RsaOaep256 => "RSA-OAEP-256",
    }
}

impl EncryptionAlgorithm {
    /// The OAEP hash (also used for MGF1).
    pub fn hash(self) -> HashAlg {
        match self {
            EncryptionAlgorithm::RsaOaep => HashAlg::Sha1,
            EncryptionAlgorithm::RsaOaep256 => HashAlg::Sha256,
        }
    }

    /// Longest plaintext this algorithm takes with an RSA modulus of `modulus_bytes`.
    pub fn max_plaintext_len(self, modulus_bytes: usize) -> usize {
        modulus_bytes.saturating_sub(2 * self.hash().output_len() + 2)
    }
}

named_enum! {
    /// Key-wrapping algorithms.
    KeyWrapAlgorithm {
        /// AES Key Wrap (RFC 3394) with a 128-bit key.
        A128Kw => "A128KW",
        /// AES Key Wrap (RFC 3394) with a 192-bit key.
        A192Kw => "A192KW",
        /// AES Key Wrap (RFC 3394) with a 256-bit key.
        A256Kw => "A256KW",
        /// AES Key Wrap with Padding (RFC 5649) with a 128-bit key.
        A128Kwp => "A128KWP",
        /// AES Key Wrap with Padding (RFC 5649) with a 192-bit key.
        A192Kwp => "A192KWP",
        /// AES Key Wrap with Padding (RFC 5649) with a 256-bit key.
        A256Kwp => "A256KWP",
        /// RSA-OAEP (SHA-1) with an RSA key.
        RsaOaep => "RSA-OAEP",
        /// RSA-OAEP-256 with an RSA key.
        RsaOaep256 => "RSA-OAEP-256",
    }
}

/// How a [`KeyWrapAlgorithm`] works.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WrapScheme {
    /// RFC 3394 with an AES key of this many bits.
    AesKw(u16),
    /// RFC 5649 with an AES key of this many bits.
    AesKwp(u16),
    /// OAEP with an RSA key.
    RsaOaep(EncryptionAlgorithm),
}

impl KeyWrapAlgorithm {
    /// The scheme and key size.
    pub fn scheme(self) -> WrapScheme {
        use KeyWrapAlgorithm::*;
        match self {
            A128Kw => WrapScheme::AesKw(128),
            A192Kw => WrapScheme::AesKw(192),
            A256Kw => WrapScheme::AesKw(256),
            A128Kwp => WrapScheme::AesKwp(128),
            A192Kwp => WrapScheme::AesKwp(192),
            A256Kwp => WrapScheme::AesKwp(256),
            RsaOaep => WrapScheme::RsaOaep(EncryptionAlgorithm::RsaOaep),
            RsaOaep256 => WrapScheme::RsaOaep(EncryptionAlgorithm::RsaOaep256),
        }
    }

    /// Whether a key of this spec can use this algorithm.
    pub fn fits(self, spec: KeySpec) -> bool {
        match (self.scheme(), spec) {
            (WrapScheme::AesKw(b) | WrapScheme::AesKwp(b), KeySpec::Aes(k)) => k.bits() == b,
            (WrapScheme::RsaOaep(_), KeySpec::Rsa { .. }) => true,
            (WrapScheme::AesKw(_) | WrapScheme::AesKwp(_), _) | (WrapScheme::RsaOaep(_), _) => false,
        }
    }
}

/// Any algorithm, as a user may name it. Convert into the operation's own type with
/// `TryFrom`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// A signature algorithm.
    Signature(SignatureAlgorithm),
    /// An encryption algorithm (also valid for wrapping).
    Encryption(EncryptionAlgorithm),
    /// A key-wrap algorithm.
    KeyWrap(KeyWrapAlgorithm),
}

impl FromStr for Algorithm {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        if let Ok(a) = s.parse() {
            return Ok(Algorithm::Signature(a));
        }
        if let Ok(a) = s.parse() {
            return Ok(Algorithm::Encryption(a));
        }
        if let Ok(a) = s.parse() {
            return Ok(Algorithm::KeyWrap(a));
        }
        Err(Error::invalid(InvalidReason::Malformed, format!("'{s}' is not a known algorithm")))
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Algorithm::Signature(a) => a.fmt(f),
            Algorithm::Encryption(a) => a.fmt(f),
            Algorithm::KeyWrap(a) => a.fmt(f),
        }
    }
}

/// How an ECDSA signature is encoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SignatureFormat {
    /// Fixed-width `r || s` for ECDSA (JOSE, IEEE P1363). The default.
    #[default]
    Raw,
    /// What X.509 and OpenSSL read: ASN.1 DER `SEQUENCE { r INTEGER, s INTEGER }` for
    /// ECDSA. RSA, EdDSA and HMAC signatures have one encoding, the same in both formats.
    Der,
}

impl FromStr for SignatureFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "raw" | "p1363" | "jose" => Ok(SignatureFormat::Raw),
            "der" | "asn1" => Ok(SignatureFormat::Der),
            _ => Err(Error::invalid(
                InvalidReason::Malformed,
                format!("'{s}' is not a signature format (raw, der)"),
            )),
        }
    }
}
