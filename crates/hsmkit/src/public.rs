//! Public keys and their export formats: SPKI DER, PEM, JWK (RFC 7517/7518).

use crate::error::{InvalidReason, UnsupportedReason};
use base64ct::{Base64UrlUnpadded, Encoding};
use der::Encode;
use der::asn1::{AnyRef, BitStringRef, UintRef};
use serde_json::{Map, Value};
use spki::{AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};

use crate::error::{Error, Result};
use crate::spec::{EcCurve, KeySpec};

pub(crate) const RSA_ENCRYPTION: const_oid::ObjectIdentifier = const_oid::db::rfc5912::RSA_ENCRYPTION;
pub(crate) const ID_EC_PUBLIC_KEY: const_oid::ObjectIdentifier = const_oid::db::rfc5912::ID_EC_PUBLIC_KEY;
/// `id-Ed25519` (RFC 8410): the algorithm of Ed25519 keys, with absent parameters.
pub(crate) const ID_ED25519: const_oid::ObjectIdentifier = const_oid::db::rfc8410::ID_ED_25519;

/// Strips leading zero bytes from a big-endian integer.
pub(crate) fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes.get(first..).unwrap_or_default()
}

/// An RSA public key: modulus and exponent as big-endian unsigned integers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RsaPublicKey {
    n: Vec<u8>,
    e: Vec<u8>,
}

impl RsaPublicKey {
    /// Builds a key from big-endian `n` and `e` (leading zeros are ignored).
    pub fn new(n: &[u8], e: &[u8]) -> Result<Self> {
        let (n, e) = (strip_zeros(n), strip_zeros(e));
        if n.is_empty() || e.is_empty() {
            return Err(Error::invalid(
                InvalidReason::Malformed,
                "RSA modulus and exponent must be non-zero",
            ));
        }
        Ok(RsaPublicKey { n: n.to_vec(), e: e.to_vec() })
    }

    /// The modulus, big-endian, no leading zeros.
    pub fn n(&self) -> &[u8] {
        &self.n
    }

    /// The public exponent, big-endian, no leading zeros.
    pub fn e(&self) -> &[u8] {
        &self.e
    }

    /// Modulus length in bits.
    pub fn bits(&self) -> u32 {
        let lead = self.n.first().map_or(0, |b| 8 - b.leading_zeros());
        let len = u32::try_from(self.n.len()).unwrap_or(u32::MAX);
        len.saturating_sub(1).saturating_mul(8).saturating_add(lead)
    }

    /// The PKCS#1 `RSAPublicKey` DER.
    pub fn to_pkcs1_der(&self) -> Result<Vec<u8>> {
        let key = pkcs1::RsaPublicKey {
            modulus: UintRef::new(&self.n).map_err(enc_err)?,
            public_exponent: UintRef::new(&self.e).map_err(enc_err)?,
        };
        key.to_der().map_err(enc_err)
    }
}

/// An EC public key: the curve and the SEC1 point.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EcPublicKey {
    curve: EcCurve,
    point: Vec<u8>,
}

impl EcPublicKey {
    /// Builds a key from a SEC1-encoded point. The point is checked for length here and
    /// for being on the curve by the backend that uses it.
    pub fn new(curve: EcCurve, point: &[u8]) -> Result<Self> {
        let fl = curve.field_len();
        let ok = match point.first() {
            Some(4) => point.len() == 1 + 2 * fl,
            Some(2 | 3) => point.len() == 1 + fl,
            _ => false,
        };
        if !ok {
            return Err(Error::invalid(InvalidReason::Malformed, format!("not a SEC1 point on {curve}")));
        }
        Ok(EcPublicKey { curve, point: point.to_vec() })
    }

    /// Builds a key from affine coordinates.
    pub fn from_affine(curve: EcCurve, x: &[u8], y: &[u8]) -> Result<Self> {
        let fl = curve.field_len();
        let (x, y) = (strip_zeros(x), strip_zeros(y));
        if x.len() > fl || y.len() > fl {
            return Err(Error::invalid(InvalidReason::Malformed, format!("coordinate too long for {curve}")));
        }
        let mut point = vec![0u8; 1 + 2 * fl];
        if let Some(p) = point.first_mut() {
            *p = 4;
        }
        copy_right_aligned(point.get_mut(1..=fl).unwrap_or_default(), x);
        copy_right_aligned(point.get_mut(1 + fl..).unwrap_or_default(), y);
        Ok(EcPublicKey { curve, point })
    }

    /// The curve.
    pub fn curve(&self) -> EcCurve {
        self.curve
    }

    /// The SEC1 point as given (backends return it uncompressed).
    pub fn point(&self) -> &[u8] {
        &self.point
    }

    /// The affine x and y coordinates, if the point is uncompressed.
    pub fn affine(&self) -> Result<(&[u8], &[u8])> {
        let fl = self.curve.field_len();
        match self.point.split_first() {
            Some((4, xy)) if xy.len() == 2 * fl => Ok(xy.split_at(fl)),
            _ => Err(Error::unsupported(
                UnsupportedReason::Encoding,
                "compressed EC point: coordinates need the backend",
            )),
        }
    }
}

/// An Ed25519 public key: the 32-byte encoding of RFC 8032 section 5.1.2. That it is a
/// point on the curve is checked by the engine that uses it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ed25519PublicKey([u8; 32]);

impl Ed25519PublicKey {
    /// The length of the encoding.
    pub const LEN: usize = 32;

    /// A key from its 32-byte encoding.
    pub fn new(bytes: &[u8]) -> Result<Self> {
        <[u8; 32]>::try_from(bytes).map(Ed25519PublicKey).map_err(|_| {
            Error::invalid(
                InvalidReason::Length,
                format!("an Ed25519 public key is 32 bytes, not {}", bytes.len()),
            )
        })
    }

    /// The 32-byte encoding.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

pub(crate) fn copy_right_aligned(dst: &mut [u8], src: &[u8]) {
    if let Some(off) = dst.len().checked_sub(src.len())
        && let Some(tail) = dst.get_mut(off..)
    {
        tail.copy_from_slice(src);
    }
}

fn enc_err(e: der::Error) -> Error {
    Error::invalid(InvalidReason::Malformed, format!("DER encoding failed: {e}"))
}

/// A public key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PublicKey {
    /// RSA.
    Rsa(RsaPublicKey),
    /// EC.
    Ec(EcPublicKey),
    /// Ed25519.
    Ed25519(Ed25519PublicKey),
}

impl PublicKey {
    /// The spec of this key.
    pub fn spec(&self) -> KeySpec {
        match self {
            PublicKey::Rsa(k) => KeySpec::Rsa { bits: k.bits() },
            PublicKey::Ec(k) => KeySpec::Ec(k.curve),
            PublicKey::Ed25519(_) => KeySpec::Ed25519,
        }
    }

    /// Parses `SubjectPublicKeyInfo` DER (RFC 5280): RSA, EC on hsmkit's curves, Ed25519.
    pub fn from_spki_der(der: &[u8]) -> Result<Self> {
        use der::Decode;
        let spki = SubjectPublicKeyInfoRef::from_der(der)
            .map_err(|e| Error::invalid(InvalidReason::Malformed, format!("SubjectPublicKeyInfo: {e}")))?;
        match crate::material::KeyMaterial::from_spki(&spki)? {
            crate::material::KeyMaterial::Public(k) => Ok(k),
            // from_spki makes public keys only.
            other @ (crate::material::KeyMaterial::RsaPrivate(_)
            | crate::material::KeyMaterial::EcPrivate(_)
            | crate::material::KeyMaterial::Aes(_)
            | crate::material::KeyMaterial::Ed25519Private(_)
            | crate::material::KeyMaterial::Hmac(_)) => Err(Error::invalid(
                InvalidReason::Malformed,
                format!("SubjectPublicKeyInfo holding a {:?}", other.spec().ok()),
            )),
        }
    }

    /// `SubjectPublicKeyInfo` DER (RFC 5280).
    pub fn to_spki_der(&self) -> Result<Vec<u8>> {
        match self {
            PublicKey::Rsa(k) => {
                let pkcs1 = k.to_pkcs1_der()?;
                let spki = SubjectPublicKeyInfoRef {
                    algorithm: AlgorithmIdentifierRef { oid: RSA_ENCRYPTION, parameters: Some(AnyRef::NULL) },
                    subject_public_key: BitStringRef::from_bytes(&pkcs1).map_err(enc_err)?,
                };
                spki.to_der().map_err(enc_err)
            }
            PublicKey::Ec(k) => {
                let curve = k.curve.oid();
                let spki = SubjectPublicKeyInfoRef {
                    algorithm: AlgorithmIdentifierRef {
                        oid: ID_EC_PUBLIC_KEY,
                        parameters: Some(AnyRef::from(&curve)),
                    },
                    subject_public_key: BitStringRef::from_bytes(&k.point).map_err(enc_err)?,
                };
                spki.to_der().map_err(enc_err)
            }
            PublicKey::Ed25519(k) => {
                let spki = SubjectPublicKeyInfoRef {
                    algorithm: AlgorithmIdentifierRef { oid: ID_ED25519, parameters: None },
                    subject_public_key: BitStringRef::from_bytes(k.as_bytes()).map_err(enc_err)?,
                };
                spki.to_der().map_err(enc_err)
            }
        }
    }

    /// PEM `PUBLIC KEY` (SPKI).
    pub fn to_pem(&self) -> Result<String> {
        let der = self.to_spki_der()?;
        pem_rfc7468::encode_string("PUBLIC KEY", pem_rfc7468::LineEnding::LF, &der)
            .map_err(|e| Error::invalid(InvalidReason::Malformed, format!("PEM encoding failed: {e}")))
    }

    /// JWK (RFC 7517/7518) as a JSON object, with `kid` when given.
    pub fn to_jwk(&self, kid: Option<&str>) -> Result<Value> {
        let b64 = |b: &[u8]| Value::String(Base64UrlUnpadded::encode_string(b));
        let mut m = Map::new();
        match self {
            PublicKey::Rsa(k) => {
                m.insert("kty".into(), "RSA".into());
                m.insert("n".into(), b64(&k.n));
                m.insert("e".into(), b64(&k.e));
            }
            PublicKey::Ec(k) => {
                let (x, y) = k.affine()?;
                m.insert("kty".into(), "EC".into());
                m.insert("crv".into(), k.curve.name().into());
                m.insert("x".into(), b64(x));
                m.insert("y".into(), b64(y));
            }
            PublicKey::Ed25519(k) => {
                // RFC 8037.
                m.insert("kty".into(), "OKP".into());
                m.insert("crv".into(), "Ed25519".into());
                m.insert("x".into(), b64(k.as_bytes()));
            }
        }
        if let Some(kid) = kid {
            m.insert("kid".into(), kid.into());
        }
        Ok(Value::Object(m))
    }

    /// The RFC 7638 JWK thumbprint (SHA-256), base64url.
    pub fn jwk_thumbprint(&self, crypto: &dyn crate::crypto::CryptoProvider) -> Result<String> {
        // RFC 7638: required members only, lexicographic order, no whitespace. serde_json
        // maps are ordered (BTreeMap) without the preserve_order feature.
        let jwk = self.to_jwk(None)?;
        let canon =
            serde_json::to_vec(&jwk).map_err(|e| Error::invalid(InvalidReason::Malformed, e.to_string()))?;
        Ok(Base64UrlUnpadded::encode_string(&crypto.digest(crate::HashAlg::Sha256, &canon)))
    }
}
