//! Key material for import (and export of exportable keys): parsed from PKCS#8, SPKI,
//! PKCS#1, SEC1, PEM and JWK into a backend-neutral form that every backend can load.

use crate::error::{InvalidReason, UnsupportedReason};
use std::fmt;

use base64ct::{Base64UrlUnpadded, Encoding};
use der::asn1::{OctetStringRef, UintRef};
use der::{Decode, Encode};
use serde_json::Value;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{Error, Result};
use crate::public::{
    EcPublicKey, Ed25519PublicKey, ID_EC_PUBLIC_KEY, ID_ED25519, PublicKey, RSA_ENCRYPTION, RsaPublicKey,
    strip_zeros,
};
use crate::spec::{AesSize, EcCurve, KeySpec};

/// The private components of an RSA key, big-endian, no leading zeros.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct RsaPrivateComponents {
    /// Modulus.
    pub n: Vec<u8>,
    /// Public exponent.
    pub e: Vec<u8>,
    /// Private exponent.
    pub d: Vec<u8>,
    /// First prime.
    pub p: Vec<u8>,
    /// Second prime.
    pub q: Vec<u8>,
    /// d mod (p-1), if known.
    pub dp: Vec<u8>,
    /// d mod (q-1), if known.
    pub dq: Vec<u8>,
    /// q^-1 mod p, if known.
    pub qinv: Vec<u8>,
}

impl RsaPrivateComponents {
    /// The public half.
    pub fn public(&self) -> Result<RsaPublicKey> {
        RsaPublicKey::new(&self.n, &self.e)
    }
}

/// An EC private key: the curve, the scalar, and the public point if known.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct EcPrivateComponents {
    #[zeroize(skip)]
    /// The curve.
    pub curve: EcCurve,
    /// The private scalar, big-endian, exactly the curve's field length.
    pub d: Vec<u8>,
    /// The SEC1 public point, if the encoding carried it.
    pub public_point: Option<Vec<u8>>,
}

/// An Ed25519 private key: the 32-byte seed (RFC 8032's private key) and, if the encoding
/// carried it, the public key.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Ed25519PrivateComponents {
    /// The seed.
    pub seed: [u8; 32],
    #[zeroize(skip)]
    /// The public key, if known (checked against the seed by the engine that loads it).
    pub public: Option<Ed25519PublicKey>,
}

/// Key material to import. Debug output never shows private or secret parts.
#[derive(Clone)]
pub enum KeyMaterial {
    /// An RSA private key.
    RsaPrivate(RsaPrivateComponents),
    /// An EC private key.
    EcPrivate(EcPrivateComponents),
    /// An AES key.
    Aes(Zeroizing<Vec<u8>>),
    /// An Ed25519 private key.
    Ed25519Private(Ed25519PrivateComponents),
    /// An HMAC key (a generic secret of 256 to 512 bits).
    Hmac(Zeroizing<Vec<u8>>),
    /// A public key alone (verify / encrypt / wrap only).
    Public(PublicKey),
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.spec() {
            Ok(spec) if self.is_public_only() => write!(f, "KeyMaterial::Public({spec})"),
            Ok(spec) => write!(f, "KeyMaterial({spec}, [REDACTED])"),
            Err(_) => f.write_str("KeyMaterial([REDACTED])"),
        }
    }
}

/// Overwrites every string in a JSON value (JWK members are secrets in base64url).
fn wipe_json(v: &mut Value) {
    use zeroize::Zeroize;
    match v {
        Value::String(s) => s.zeroize(),
        Value::Array(a) => a.iter_mut().for_each(wipe_json),
        Value::Object(o) => o.values_mut().for_each(wipe_json),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// The spec of an HMAC key of `len` bytes, if hsmkit takes that length.
fn hmac_spec(len: usize) -> Result<KeySpec> {
    let bits = u32::try_from(len).ok().and_then(|n| n.checked_mul(8)).unwrap_or(u32::MAX);
    KeySpec::check_hmac_bits(bits)?;
    Ok(KeySpec::Hmac { bits })
}

fn bad(what: &str) -> Error {
    Error::invalid(InvalidReason::Malformed, format!("malformed {what}"))
}

fn uint(u: &UintRef<'_>) -> Vec<u8> {
    strip_zeros(u.as_bytes()).to_vec()
}

impl KeyMaterial {
    /// An AES key from raw bytes (16, 24 or 32).
    pub fn aes(bytes: &[u8]) -> Result<Self> {
        AesSize::from_len(bytes.len())?;
        Ok(KeyMaterial::Aes(Zeroizing::new(bytes.to_vec())))
    }

    /// An HMAC key from raw bytes (32 to 64).
    pub fn hmac(bytes: &[u8]) -> Result<Self> {
        hmac_spec(bytes.len())?;
        Ok(KeyMaterial::Hmac(Zeroizing::new(bytes.to_vec())))
    }

    /// An Ed25519 private key from its 32-byte seed and, optionally, its public key.
    pub fn ed25519_private(seed: &[u8], public: Option<&[u8]>) -> Result<Self> {
        let seed = <[u8; 32]>::try_from(seed).map_err(|_| {
            Error::invalid(
                InvalidReason::Length,
                format!("an Ed25519 private key is 32 bytes, not {}", seed.len()),
            )
        })?;
        let public = public.map(Ed25519PublicKey::new).transpose()?;
        Ok(KeyMaterial::Ed25519Private(Ed25519PrivateComponents { seed, public }))
    }

    /// The spec of this key.
    pub fn spec(&self) -> Result<KeySpec> {
        Ok(match self {
            KeyMaterial::RsaPrivate(k) => KeySpec::Rsa { bits: k.public()?.bits() },
            KeyMaterial::EcPrivate(k) => KeySpec::Ec(k.curve),
            KeyMaterial::Aes(k) => KeySpec::Aes(AesSize::from_len(k.len())?),
            KeyMaterial::Ed25519Private(_) => KeySpec::Ed25519,
            KeyMaterial::Hmac(k) => hmac_spec(k.len())?,
            KeyMaterial::Public(p) => p.spec(),
        })
    }

    /// Whether only a public key is held.
    pub fn is_public_only(&self) -> bool {
        matches!(self, KeyMaterial::Public(_))
    }

    /// Parses DER: PKCS#8 `PrivateKeyInfo`, SPKI, PKCS#1 private or public, or SEC1.
    pub fn from_der(der: &[u8]) -> Result<Self> {
        if let Ok(pki) = pkcs8::PrivateKeyInfoRef::from_der(der) {
            return Self::from_pkcs8(&pki);
        }
        if let Ok(spki) = spki::SubjectPublicKeyInfoRef::from_der(der) {
            return Self::from_spki(&spki);
        }
        if let Ok(k) = pkcs1::RsaPrivateKeyRef::from_der(der) {
            return Self::from_pkcs1_private(&k);
        }
        if let Ok(k) = pkcs1::RsaPublicKeyRef::from_der(der) {
            return Ok(KeyMaterial::Public(PublicKey::Rsa(RsaPublicKey::new(
                k.modulus.as_bytes(),
                k.public_exponent.as_bytes(),
            )?)));
        }
        if let Ok(k) = sec1::EcPrivateKey::from_der(der) {
            let curve = k
                .parameters
                .and_then(|p| p.named_curve())
                .ok_or_else(|| Error::invalid(InvalidReason::Malformed, "SEC1 key without a named curve"))?;
            return Self::from_sec1(EcCurve::from_oid(&curve)?, &k);
        }
        Err(Error::invalid(
            InvalidReason::Malformed,
            "not a PKCS#8, SPKI, PKCS#1 or SEC1 DER key (encrypted PKCS#8 is not supported)",
        ))
    }

    /// Parses PEM: `PRIVATE KEY`, `PUBLIC KEY`, `RSA PRIVATE KEY`, `RSA PUBLIC KEY`,
    /// `EC PRIVATE KEY` (an `EC PARAMETERS` block before it is skipped).
    pub fn from_pem(pem: &str) -> Result<Self> {
        let mut rest = pem;
        while let Some(start) = rest.find("-----BEGIN ") {
            let block = rest.get(start..).unwrap_or_default();
            let label_end = block.get(11..).and_then(|b| b.find("-----")).ok_or_else(|| bad("PEM"))?;
            let label = block.get(11..11 + label_end).unwrap_or_default();
            let end_marker = format!("-----END {label}-----");
            let end = block.find(&end_marker).ok_or_else(|| bad("PEM (no END line)"))? + end_marker.len();
            let this = block.get(..end).unwrap_or_default();
            rest = block.get(end..).unwrap_or_default();
            match label {
                "EC PARAMETERS" => continue,
                "ENCRYPTED PRIVATE KEY" => {
                    return Err(Error::unsupported(
                        UnsupportedReason::Encoding,
                        "encrypted PKCS#8 import; decrypt it first",
                    ));
                }
                "PRIVATE KEY" | "PUBLIC KEY" | "RSA PRIVATE KEY" | "RSA PUBLIC KEY" | "EC PRIVATE KEY" => {
                    let (_, der) = pem_rfc7468::decode_vec(this.as_bytes()).map_err(|_| bad("PEM"))?;
                    let der = Zeroizing::new(der);
                    return Self::from_der(&der);
                }
                other => {
                    return Err(Error::invalid(
                        InvalidReason::Malformed,
                        format!("PEM block '{other}' is not a key"),
                    ));
                }
            }
        }
        Err(Error::invalid(InvalidReason::Malformed, "no PEM key block found"))
    }

    /// Parses PEM, DER or JWK (JSON), whichever `data` is.
    pub fn from_bytes(data: &[u8]) -> Result<Self> {
        let trimmed = data.trim_ascii_start();
        if trimmed.starts_with(b"{") {
            let s = std::str::from_utf8(data).map_err(|_| bad("JWK (not UTF-8)"))?;
            return Self::from_jwk_str(s);
        }
        if trimmed.starts_with(b"-----BEGIN") {
            let s = std::str::from_utf8(data).map_err(|_| bad("PEM (not UTF-8)"))?;
            return Self::from_pem(s);
        }
        Self::from_der(data)
    }

    fn from_pkcs8(pki: &pkcs8::PrivateKeyInfoRef<'_>) -> Result<Self> {
        let inner = pki.private_key.as_bytes();
        if pki.algorithm.oid == RSA_ENCRYPTION {
            let k = pkcs1::RsaPrivateKeyRef::from_der(inner).map_err(|_| bad("PKCS#1 key in PKCS#8"))?;
            return Self::from_pkcs1_private(&k);
        }
        if pki.algorithm.oid == ID_EC_PUBLIC_KEY {
            let oid = pki
                .algorithm
                .parameters
                .and_then(|p| p.decode_as::<const_oid::ObjectIdentifier>().ok())
                .ok_or_else(|| {
                    Error::invalid(InvalidReason::Malformed, "EC PKCS#8 key without a named curve")
                })?;
            let curve = EcCurve::from_oid(&oid)?;
            let k = sec1::EcPrivateKey::from_der(inner).map_err(|_| bad("SEC1 key in PKCS#8"))?;
            if let Some(inner_curve) = k.parameters.and_then(|p| p.named_curve())
                && inner_curve != oid
            {
                return Err(Error::invalid(InvalidReason::Malformed, "PKCS#8 and SEC1 curves disagree"));
            }
            return Self::from_sec1(curve, &k);
        }
        if pki.algorithm.oid == ID_ED25519 {
            // RFC 8410: parameters absent; the key is CurvePrivateKey ::= OCTET STRING.
            if pki.algorithm.parameters.is_some() {
                return Err(Error::invalid(
                    InvalidReason::Malformed,
                    "Ed25519 PKCS#8 key with algorithm parameters (RFC 8410: absent)",
                ));
            }
            let seed = <&OctetStringRef>::from_der(inner).map_err(|_| bad("Ed25519 key in PKCS#8"))?;
            let public = pki.public_key.and_then(|p| p.as_bytes());
            return Self::ed25519_private(seed.as_bytes(), public);
        }
        Err(Error::unsupported(
            UnsupportedReason::KeyType,
            format!("private key algorithm {}", pki.algorithm.oid),
        ))
    }

    pub(crate) fn from_spki(spki: &spki::SubjectPublicKeyInfoRef<'_>) -> Result<Self> {
        let bits = spki.subject_public_key.as_bytes().ok_or_else(|| bad("SPKI bit string"))?;
        if spki.algorithm.oid == RSA_ENCRYPTION {
            let k = pkcs1::RsaPublicKeyRef::from_der(bits).map_err(|_| bad("RSA public key"))?;
            return Ok(KeyMaterial::Public(PublicKey::Rsa(RsaPublicKey::new(
                k.modulus.as_bytes(),
                k.public_exponent.as_bytes(),
            )?)));
        }
        if spki.algorithm.oid == ID_EC_PUBLIC_KEY {
            let oid = spki
                .algorithm
                .parameters
                .and_then(|p| p.decode_as::<const_oid::ObjectIdentifier>().ok())
                .ok_or_else(|| {
                    Error::invalid(InvalidReason::Malformed, "EC public key without a named curve")
                })?;
            return Ok(KeyMaterial::Public(PublicKey::Ec(EcPublicKey::new(EcCurve::from_oid(&oid)?, bits)?)));
        }
        if spki.algorithm.oid == ID_ED25519 {
            if spki.algorithm.parameters.is_some() {
                return Err(Error::invalid(
                    InvalidReason::Malformed,
                    "Ed25519 public key with algorithm parameters (RFC 8410: absent)",
                ));
            }
            return Ok(KeyMaterial::Public(PublicKey::Ed25519(Ed25519PublicKey::new(bits)?)));
        }
        Err(Error::unsupported(
            UnsupportedReason::KeyType,
            format!("public key algorithm {}", spki.algorithm.oid),
        ))
    }

    fn from_pkcs1_private(k: &pkcs1::RsaPrivateKeyRef<'_>) -> Result<Self> {
        if k.other_prime_infos.is_some() {
            return Err(Error::unsupported(UnsupportedReason::KeyType, "multi-prime RSA keys"));
        }
        Ok(KeyMaterial::RsaPrivate(RsaPrivateComponents {
            n: uint(&k.modulus),
            e: uint(&k.public_exponent),
            d: uint(&k.private_exponent),
            p: uint(&k.prime1),
            q: uint(&k.prime2),
            dp: uint(&k.exponent1),
            dq: uint(&k.exponent2),
            qinv: uint(&k.coefficient),
        }))
    }

    fn from_sec1(curve: EcCurve, k: &sec1::EcPrivateKey<'_>) -> Result<Self> {
        Self::ec_private(curve, k.private_key, k.public_key)
    }

    /// An EC private key from its scalar and, optionally, its SEC1 public point.
    pub fn ec_private(curve: EcCurve, d: &[u8], public: Option<&[u8]>) -> Result<Self> {
        let fl = curve.field_len();
        let d = strip_zeros(d);
        if d.is_empty() || d.len() > fl {
            return Err(Error::invalid(
                InvalidReason::Malformed,
                format!("EC private scalar does not fit {curve}"),
            ));
        }
        let mut scalar = vec![0u8; fl];
        crate::public::copy_right_aligned(&mut scalar, d);
        let public_point = match public {
            Some(p) => Some(EcPublicKey::new(curve, p)?.point().to_vec()),
            None => None,
        };
        Ok(KeyMaterial::EcPrivate(EcPrivateComponents { curve, d: scalar, public_point }))
    }

    /// Parses a JWK given as a JSON string.
    pub fn from_jwk_str(jwk: &str) -> Result<Self> {
        let mut value: Value = serde_json::from_str(jwk).map_err(|_| bad("JWK JSON"))?;
        let r = Self::from_jwk(&value);
        // The parsed strings hold the private members in base64url: wipe them.
        wipe_json(&mut value);
        r
    }

    /// Parses a JWK (RFC 7517/7518/8037): `kty` RSA, EC, OKP (`crv` Ed25519) or oct; private
    /// when it has `d` (or `k`). An `oct` key is an HMAC key when its `key_ops` are
    /// `sign`/`verify` or its `alg` is an HS* algorithm, an AES key otherwise.
    pub fn from_jwk(jwk: &Value) -> Result<Self> {
        let obj = jwk.as_object().ok_or_else(|| bad("JWK (not an object)"))?;
        let field = |name: &str| -> Result<Option<Zeroizing<Vec<u8>>>> {
            match obj.get(name) {
                None => Ok(None),
                Some(Value::String(s)) => {
                    Base64UrlUnpadded::decode_vec(s).map(|v| Some(Zeroizing::new(v))).map_err(|_| {
                        Error::invalid(
                            InvalidReason::Malformed,
                            format!("JWK member '{name}' is not base64url"),
                        )
                    })
                }
                Some(_) => Err(Error::invalid(
                    InvalidReason::Malformed,
                    format!("JWK member '{name}' is not a string"),
                )),
            }
        };
        let need = |name: &str| -> Result<Zeroizing<Vec<u8>>> {
            field(name)?
                .ok_or_else(|| Error::invalid(InvalidReason::Malformed, format!("JWK lacks '{name}'")))
        };
        match obj.get("kty").and_then(Value::as_str) {
            Some("RSA") => {
                let (n, e) = (need("n")?, need("e")?);
                match field("d")? {
                    None => Ok(KeyMaterial::Public(PublicKey::Rsa(RsaPublicKey::new(&n, &e)?))),
                    Some(d) => {
                        let opt = |name: &str| -> Result<Vec<u8>> {
                            Ok(field(name)?.map(|v| strip_zeros(&v).to_vec()).unwrap_or_default())
                        };
                        let k = RsaPrivateComponents {
                            n: strip_zeros(&n).to_vec(),
                            e: strip_zeros(&e).to_vec(),
                            d: strip_zeros(&d).to_vec(),
                            p: strip_zeros(&need("p")?).to_vec(),
                            q: strip_zeros(&need("q")?).to_vec(),
                            dp: opt("dp")?,
                            dq: opt("dq")?,
                            qinv: opt("qi")?,
                        };
                        Ok(KeyMaterial::RsaPrivate(k))
                    }
                }
            }
            Some("EC") => {
                let crv: EcCurve = obj
                    .get("crv")
                    .and_then(Value::as_str)
                    .ok_or_else(|| Error::invalid(InvalidReason::Malformed, "JWK lacks 'crv'"))?
                    .parse()?;
                let fl = crv.field_len();
                let (x, y) = (need("x")?, need("y")?);
                // RFC 7518 6.2.1.2: coordinates are exactly the field length.
                if x.len() != fl || y.len() != fl {
                    return Err(Error::invalid(
                        InvalidReason::Malformed,
                        format!("JWK x/y must be {fl} bytes for {crv}"),
                    ));
                }
                let public = EcPublicKey::from_affine(crv, &x, &y)?;
                match field("d")? {
                    None => Ok(KeyMaterial::Public(PublicKey::Ec(public))),
                    Some(d) => {
                        if d.len() != fl {
                            return Err(Error::invalid(
                                InvalidReason::Malformed,
                                format!("JWK d must be {fl} bytes for {crv}"),
                            ));
                        }
                        Self::ec_private(crv, &d, Some(public.point()))
                    }
                }
            }
            Some("OKP") => {
                match obj.get("crv").and_then(Value::as_str) {
                    Some("Ed25519") => {}
                    Some(other) => {
                        return Err(Error::unsupported(
                            UnsupportedReason::KeyType,
                            format!("JWK OKP curve '{other}'"),
                        ));
                    }
                    None => return Err(Error::invalid(InvalidReason::Malformed, "JWK lacks 'crv'")),
                }
                let x = need("x")?;
                match field("d")? {
                    None => Ok(KeyMaterial::Public(PublicKey::Ed25519(Ed25519PublicKey::new(&x)?))),
                    Some(d) => Self::ed25519_private(&d, Some(&x)),
                }
            }
            Some("oct") => {
                let ops: Vec<&str> = match obj.get("key_ops") {
                    None => Vec::new(),
                    Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
                    Some(_) => {
                        return Err(Error::invalid(
                            InvalidReason::Malformed,
                            "JWK member 'key_ops' is not an array",
                        ));
                    }
                };
                let hs_alg = obj.get("alg").and_then(Value::as_str).is_some_and(|a| a.starts_with("HS"));
                let mac_ops = ops.iter().any(|o| matches!(*o, "sign" | "verify"));
                if hs_alg || mac_ops { KeyMaterial::hmac(&need("k")?) } else { KeyMaterial::aes(&need("k")?) }
            }
            Some(other) => Err(Error::unsupported(UnsupportedReason::KeyType, format!("JWK kty '{other}'"))),
            None => Err(Error::invalid(InvalidReason::Malformed, "JWK lacks 'kty'")),
        }
    }

    /// Encodes a private key as PKCS#8 DER (for exportable keys).
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>> {
        let e = |e: der::Error| Error::invalid(InvalidReason::Malformed, format!("DER encoding failed: {e}"));
        fn u(b: &[u8]) -> Result<UintRef<'_>> {
            UintRef::new(b)
                .map_err(|e| Error::invalid(InvalidReason::Malformed, format!("DER encoding failed: {e}")))
        }
        match self {
            KeyMaterial::RsaPrivate(k) => {
                let pkcs1 = pkcs1::RsaPrivateKey {
                    modulus: u(&k.n)?,
                    public_exponent: u(&k.e)?,
                    private_exponent: u(&k.d)?,
                    prime1: u(&k.p)?,
                    prime2: u(&k.q)?,
                    exponent1: u(&k.dp)?,
                    exponent2: u(&k.dq)?,
                    coefficient: u(&k.qinv)?,
                    other_prime_infos: None,
                };
                let inner = Zeroizing::new(pkcs1.to_der().map_err(e)?);
                let pki = pkcs8::PrivateKeyInfoRef::new(
                    spki::AlgorithmIdentifierRef {
                        oid: RSA_ENCRYPTION,
                        parameters: Some(der::asn1::AnyRef::NULL),
                    },
                    OctetStringRef::new(&inner).map_err(e)?,
                );
                Ok(Zeroizing::new(pki.to_der().map_err(e)?))
            }
            KeyMaterial::EcPrivate(k) => {
                let sec1 = sec1::EcPrivateKey {
                    private_key: &k.d,
                    parameters: None,
                    public_key: k.public_point.as_deref(),
                };
                let inner = Zeroizing::new(sec1.to_der().map_err(e)?);
                let curve = k.curve.oid();
                let pki = pkcs8::PrivateKeyInfoRef::new(
                    spki::AlgorithmIdentifierRef {
                        oid: ID_EC_PUBLIC_KEY,
                        parameters: Some(der::asn1::AnyRef::from(&curve)),
                    },
                    OctetStringRef::new(&inner).map_err(e)?,
                );
                Ok(Zeroizing::new(pki.to_der().map_err(e)?))
            }
            KeyMaterial::Ed25519Private(k) => {
                // RFC 8410 section 7, version 1 (as OpenSSL writes it).
                let inner = Zeroizing::new(OctetStringRef::new(&k.seed).map_err(e)?.to_der().map_err(e)?);
                let pki = pkcs8::PrivateKeyInfoRef::new(
                    spki::AlgorithmIdentifierRef { oid: ID_ED25519, parameters: None },
                    OctetStringRef::new(&inner).map_err(e)?,
                );
                Ok(Zeroizing::new(pki.to_der().map_err(e)?))
            }
            KeyMaterial::Public(_) | KeyMaterial::Aes(_) | KeyMaterial::Hmac(_) => Err(Error::invalid(
                InvalidReason::KeyMismatch,
                "only RSA, EC and Ed25519 private keys have a PKCS#8 form",
            )),
        }
    }

    /// Encodes a private key as PEM `PRIVATE KEY` (PKCS#8).
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>> {
        let der = self.to_pkcs8_der()?;
        pem_rfc7468::encode_string("PRIVATE KEY", pem_rfc7468::LineEnding::LF, &der)
            .map(Zeroizing::new)
            .map_err(|e| Error::invalid(InvalidReason::Malformed, format!("PEM encoding failed: {e}")))
    }
}
