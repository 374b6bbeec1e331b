//! X.509 certificates and PKCS#10 certificate requests signed by store keys.
//!
//! The private key never leaves its backend: hsmkit encodes the to-be-signed structure
//! (DER, with `x509-cert`'s types), has the [`Key`] sign it, and assembles the result.
//! [`create_csr`] makes a request, [`self_signed`] a certificate signed by its own key,
//! [`issue`] a certificate for a request with a CA's key, after checking the request's
//! own signature (proof of possession).
//!
//! Signature algorithms: `RS*`, `PS*` (with `RSASSA-PSS` parameters: MGF1 over the same
//! hash, salt the hash's length, as JOSE and OpenSSL's defaults), `ES*` and `EdDSA`. By
//! default RSA keys sign with `RS256`, EC keys with the `ES*` of their curve and Ed25519
//! with `EdDSA` ([`default_signature_algorithm`]). ECDSA is read with its curve's JOSE
//! hash only (P-256 with SHA-256, P-384 with SHA-384, P-521 with SHA-512): a request or
//! certificate signed otherwise (OpenSSL signs P-384 requests with SHA-256 unless told
//! `-sha384`) is [`Error::Unsupported`].
//!
//! ```
//! # fn main() -> hsmkit::Result<()> {
//! use hsmkit::x509::{self, CertificateParams, SubjectAltName};
//! use hsmkit::{KeyAttributes, KeySpec, Store};
//!
//! let store = Store::new(hsmkit_soft::SoftBackend::new());
//! let ca_key = store.create_key("ca", KeySpec::P256, KeyAttributes::default())?;
//! let mut ca = CertificateParams::new("CN=Example CA,O=Example");
//! ca.ca = true;
//! let ca_cert = x509::self_signed(&ca_key, &ca)?;
//!
//! let leaf_key = store.create_key("web", KeySpec::P256, KeyAttributes::default())?;
//! let mut req = CertificateParams::new("CN=www.example.com");
//! req.subject_alt_names.push("dns:www.example.com".parse::<SubjectAltName>()?);
//! let csr = x509::create_csr(&leaf_key, &req)?;
//! let leaf = x509::issue(&ca_key, &ca_cert, &csr, &x509::IssueParams::default())?;
//! leaf.verify_issued_by(&ca_cert, store.crypto())?;
//! println!("{}", leaf.to_pem()?);
//! # Ok(()) }
//! ```

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use const_oid::db::{rfc5280, rfc5912};
use const_oid::{AssociatedOid, ObjectIdentifier};
use der::asn1::{BitString, Ia5String, OctetString, SetOfVec};
use der::{Decode, Encode};
use spki::{AlgorithmIdentifier, AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage as EkuExt, KeyUsage as KeyUsageExt, KeyUsages,
    SubjectAltName as SanExt, SubjectKeyIdentifier,
};
use x509_cert::ext::{Extension, Extensions};
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo, ExtensionReq};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

use crate::algorithm::{HashAlg, SignatureAlgorithm, SignatureFormat, SignatureScheme};
use crate::crypto::CryptoProvider;
use crate::error::{Error, InvalidReason, Result, UnsupportedReason};
use crate::key::{Key, SignInput};
use crate::public::PublicKey;
use crate::spec::{EcCurve, KeySpec};

/// Ed25519's OID (RFC 8410), as signature algorithm and key type.
const ID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
/// Validity when none is given: one year.
const DEFAULT_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// The longest certificate or request hsmkit reads (RSA-16384 chains fit many times).
const MAX_DER_LEN: usize = 64 * 1024;

fn malformed(what: &str, e: impl fmt::Display) -> Error {
    Error::invalid(InvalidReason::Malformed, format!("{what}: {e}"))
}

fn enc(e: der::Error) -> Error {
    malformed("DER encoding failed", e)
}

fn param(msg: impl Into<String>) -> Error {
    Error::invalid(InvalidReason::Parameter, msg)
}

/// A subject alternative name (RFC 5280 section 4.2.1.6). Parsed from and shown as
/// `dns:HOST`, `ip:ADDRESS`, `email:ADDRESS` or `uri:URI`, as the CLI takes it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SubjectAltName {
    /// A DNS name (`dNSName`), ASCII (an IDN in its `xn--` form).
    Dns(String),
    /// An IPv4 or IPv6 address (`iPAddress`).
    Ip(IpAddr),
    /// An email address (`rfc822Name`).
    Email(String),
    /// A URI (`uniformResourceIdentifier`).
    Uri(String),
}

impl fmt::Display for SubjectAltName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubjectAltName::Dns(h) => write!(f, "dns:{h}"),
            SubjectAltName::Ip(a) => write!(f, "ip:{a}"),
            SubjectAltName::Email(e) => write!(f, "email:{e}"),
            SubjectAltName::Uri(u) => write!(f, "uri:{u}"),
        }
    }
}

impl FromStr for SubjectAltName {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let (kind, value) = s.split_once(':').ok_or_else(|| {
            param(format!("'{s}' is not a subject alternative name (dns:H, ip:A, email:E or uri:U)"))
        })?;
        let san = match kind.to_ascii_lowercase().as_str() {
            "dns" => SubjectAltName::Dns(value.to_owned()),
            "ip" => SubjectAltName::Ip(
                value.parse().map_err(|_| param(format!("'{value}' is not an IPv4 or IPv6 address")))?,
            ),
            "email" => SubjectAltName::Email(value.to_owned()),
            "uri" => SubjectAltName::Uri(value.to_owned()),
            _ => {
                return Err(param(format!(
                    "'{kind}' is not a subject alternative name kind (dns, ip, email, uri)"
                )));
            }
        };
        san.to_general_name()?;
        Ok(san)
    }
}

impl SubjectAltName {
    fn to_general_name(&self) -> Result<GeneralName> {
        let ia5 = |kind: &str, v: &str| {
            if v.is_empty() || v.chars().any(|c| c.is_whitespace()) {
                return Err(param(format!("an empty {kind} name, or one with spaces: '{v}'")));
            }
            Ia5String::new(v).map_err(|_| param(format!("a {kind} name must be ASCII (IA5): '{v}'")))
        };
        Ok(match self {
            SubjectAltName::Dns(h) => {
                check_dns_name(h)?;
                GeneralName::DnsName(ia5("DNS", h)?)
            }
            SubjectAltName::Ip(a) => GeneralName::from(*a),
            SubjectAltName::Email(e) => GeneralName::Rfc822Name(ia5("email", e)?),
            SubjectAltName::Uri(u) => GeneralName::UniformResourceIdentifier(ia5("URI", u)?),
        })
    }

    /// The names of kinds hsmkit has; other kinds (directory names, other names) are
    /// skipped when reading.
    fn from_general_name(g: &GeneralName) -> Option<Self> {
        match g {
            GeneralName::DnsName(s) => Some(SubjectAltName::Dns(s.to_string())),
            GeneralName::Rfc822Name(s) => Some(SubjectAltName::Email(s.to_string())),
            GeneralName::UniformResourceIdentifier(s) => Some(SubjectAltName::Uri(s.to_string())),
            GeneralName::IpAddress(o) => match o.as_bytes().len() {
                4 => <[u8; 4]>::try_from(o.as_bytes()).ok().map(|b| SubjectAltName::Ip(IpAddr::from(b))),
                16 => <[u8; 16]>::try_from(o.as_bytes()).ok().map(|b| SubjectAltName::Ip(IpAddr::from(b))),
                _ => None,
            },
            GeneralName::OtherName(_)
            | GeneralName::DirectoryName(_)
            | GeneralName::EdiPartyName(_)
            | GeneralName::RegisteredId(_) => None,
        }
    }
}

/// A DNS name as RFC 5280 4.2.1.6 and RFC 1034 have it (preferred name syntax): labels of
/// letters, digits and hyphens, not starting or ending with a hyphen, up to 63
/// characters, 253 in all; a wildcard only as the whole left-most label (`*.example.com`).
fn check_dns_name(h: &str) -> Result<()> {
    let bad = |why: &str| param(format!("'{h}' is not a DNS name: {why}"));
    if h.is_empty() || h.len() > 253 {
        return Err(bad("empty, or longer than 253 characters"));
    }
    let labels: Vec<&str> = h.strip_suffix('.').unwrap_or(h).split('.').collect();
    for (i, label) in labels.iter().enumerate() {
        if i == 0 && *label == "*" && labels.len() > 1 {
            continue;
        }
        if label.is_empty() || label.len() > 63 {
            return Err(bad("an empty label, or one longer than 63 characters"));
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(bad("labels are letters, digits and hyphens (a wildcard only as '*.' first)"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(bad("a label starts or ends with a hyphen"));
        }
    }
    Ok(())
}

macro_rules! named_flags {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name OpenSSL's configuration uses.
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
                $name::ALL.iter().copied().find(|a| a.name().eq_ignore_ascii_case(s)).ok_or_else(|| {
                    param(format!(
                        concat!("'{}' is not a ", stringify!($name), " (expected one of {})"),
                        s,
                        $name::ALL.iter().map(|a| a.name()).collect::<Vec<_>>().join(", ")
                    ))
                })
            }
        }
    };
}

named_flags! {
    /// A key usage bit (RFC 5280 section 4.2.1.3).
    KeyUsage {
        /// `digitalSignature`.
        DigitalSignature => "digitalSignature",
        /// `nonRepudiation` (`contentCommitment`).
        NonRepudiation => "nonRepudiation",
        /// `keyEncipherment`.
        KeyEncipherment => "keyEncipherment",
        /// `dataEncipherment`.
        DataEncipherment => "dataEncipherment",
        /// `keyAgreement`.
        KeyAgreement => "keyAgreement",
        /// `keyCertSign`.
        KeyCertSign => "keyCertSign",
        /// `cRLSign`.
        CrlSign => "cRLSign",
    }
}

named_flags! {
    /// An extended key usage purpose (RFC 5280 section 4.2.1.12).
    ExtendedKeyUsage {
        /// TLS server (`id-kp-serverAuth`).
        ServerAuth => "serverAuth",
        /// TLS client (`id-kp-clientAuth`).
        ClientAuth => "clientAuth",
        /// Code signing.
        CodeSigning => "codeSigning",
        /// S/MIME.
        EmailProtection => "emailProtection",
        /// Time stamping.
        TimeStamping => "timeStamping",
        /// OCSP responses.
        OcspSigning => "OCSPSigning",
    }
}

impl KeyUsage {
    fn bit(self) -> KeyUsages {
        match self {
            KeyUsage::DigitalSignature => KeyUsages::DigitalSignature,
            KeyUsage::NonRepudiation => KeyUsages::NonRepudiation,
            KeyUsage::KeyEncipherment => KeyUsages::KeyEncipherment,
            KeyUsage::DataEncipherment => KeyUsages::DataEncipherment,
            KeyUsage::KeyAgreement => KeyUsages::KeyAgreement,
            KeyUsage::KeyCertSign => KeyUsages::KeyCertSign,
            KeyUsage::CrlSign => KeyUsages::CRLSign,
        }
    }
}

impl ExtendedKeyUsage {
    fn oid(self) -> ObjectIdentifier {
        match self {
            ExtendedKeyUsage::ServerAuth => rfc5280::ID_KP_SERVER_AUTH,
            ExtendedKeyUsage::ClientAuth => rfc5280::ID_KP_CLIENT_AUTH,
            ExtendedKeyUsage::CodeSigning => rfc5280::ID_KP_CODE_SIGNING,
            ExtendedKeyUsage::EmailProtection => rfc5280::ID_KP_EMAIL_PROTECTION,
            ExtendedKeyUsage::TimeStamping => rfc5280::ID_KP_TIME_STAMPING,
            ExtendedKeyUsage::OcspSigning => rfc5280::ID_KP_OCSP_SIGNING,
        }
    }
}

/// What a request or a self-signed certificate says about its subject.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CertificateParams {
    /// The subject's distinguished name: RFC 4514 (`CN=host,O=Example,C=GB`, most
    /// significant last) or OpenSSL's slash form (`/C=GB/O=Example/CN=host`, most
    /// significant first). Empty: no subject, and then the alternative names are critical.
    pub subject: String,
    /// Subject alternative names.
    pub subject_alt_names: Vec<SubjectAltName>,
    /// Key usage. Empty: `keyCertSign`, `cRLSign` and `digitalSignature` for a CA;
    /// `digitalSignature` (and `keyEncipherment` for RSA) otherwise.
    pub key_usage: Vec<KeyUsage>,
    /// Extended key usage; empty: none (any purpose).
    pub extended_key_usage: Vec<ExtendedKeyUsage>,
    /// A CA certificate (basic constraints `cA`).
    pub ca: bool,
    /// A CA's path length constraint.
    pub path_len: Option<u8>,
    /// Start of validity; `None`: now.
    pub not_before: Option<SystemTime>,
    /// How long the certificate is valid (one year by default).
    pub validity: Duration,
    /// The signature algorithm; `None`: [`default_signature_algorithm`] for the key.
    pub signature_algorithm: Option<SignatureAlgorithm>,
}

impl CertificateParams {
    /// Parameters for `subject`, an end-entity certificate valid for a year from now.
    pub fn new(subject: impl Into<String>) -> Self {
        CertificateParams {
            subject: subject.into(),
            subject_alt_names: Vec::new(),
            key_usage: Vec::new(),
            extended_key_usage: Vec::new(),
            ca: false,
            path_len: None,
            not_before: None,
            validity: DEFAULT_VALIDITY,
            signature_algorithm: None,
        }
    }
}

/// What the CA decides when it issues a certificate for a request. The subject, its
/// alternative names, key usage and extended key usage come from the request.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IssueParams {
    /// Issue a CA certificate (basic constraints `cA`; key usage `keyCertSign`,
    /// `cRLSign`, `digitalSignature`, whatever the request asked).
    pub ca: bool,
    /// The new CA's path length constraint. `None` under a CA with a constraint: one less.
    pub path_len: Option<u8>,
    /// Start of validity; `None`: now.
    pub not_before: Option<SystemTime>,
    /// How long the certificate is valid (one year by default); it ends no later than the
    /// CA certificate does.
    pub validity: Duration,
    /// The signature algorithm; `None`: [`default_signature_algorithm`] for the CA key.
    pub signature_algorithm: Option<SignatureAlgorithm>,
}

impl Default for IssueParams {
    fn default() -> Self {
        IssueParams {
            ca: false,
            path_len: None,
            not_before: None,
            validity: DEFAULT_VALIDITY,
            signature_algorithm: None,
        }
    }
}

/// The signature algorithm a key signs certificates with unless told otherwise: `RS256`
/// for RSA, the `ES*` of an EC key's curve, `EdDSA` for Ed25519. AES and HMAC keys sign
/// no certificates ([`Error::InvalidInput`]).
pub fn default_signature_algorithm(spec: KeySpec) -> Result<SignatureAlgorithm> {
    match spec {
        KeySpec::Rsa { .. } => Ok(SignatureAlgorithm::Rs256),
        KeySpec::Ec(EcCurve::P256) => Ok(SignatureAlgorithm::Es256),
        KeySpec::Ec(EcCurve::P384) => Ok(SignatureAlgorithm::Es384),
        KeySpec::Ec(EcCurve::P521) => Ok(SignatureAlgorithm::Es512),
        KeySpec::Ec(EcCurve::P256K) => Ok(SignatureAlgorithm::Es256k),
        KeySpec::Ed25519 => Ok(SignatureAlgorithm::EdDsa),
        KeySpec::Aes(_) | KeySpec::Hmac { .. } => Err(Error::invalid(
            InvalidReason::KeyMismatch,
            format!("a {spec} key has no public key to certify and signs no certificates"),
        )),
    }
}

/// `RSASSA-PSS-params` as hsmkit writes them (RFC 4055): every field explicit but the
/// trailer (always 1).
#[derive(der::Sequence)]
struct PssParams {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    hash: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT")]
    mask_gen: AlgorithmIdentifier<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT")]
    salt_len: u32,
}

/// `RSASSA-PSS-params` as others may write them: absent fields take RFC 4055's defaults
/// (SHA-1, MGF1-SHA-1, salt 20), which no hsmkit algorithm has.
#[derive(der::Sequence)]
struct PssParamsIn {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    hash: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    mask_gen: Option<AlgorithmIdentifier<AlgorithmIdentifierOwned>>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    salt_len: Option<u32>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    trailer: Option<u32>,
}

fn hash_oid(hash: HashAlg) -> ObjectIdentifier {
    match hash {
        HashAlg::Sha1 => rfc5912::ID_SHA_1,
        HashAlg::Sha256 => rfc5912::ID_SHA_256,
        HashAlg::Sha384 => rfc5912::ID_SHA_384,
        HashAlg::Sha512 => rfc5912::ID_SHA_512,
    }
}

fn hash_of_oid(oid: &ObjectIdentifier) -> Option<HashAlg> {
    [HashAlg::Sha1, HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512]
        .into_iter()
        .find(|h| hash_oid(*h) == *oid)
}

/// A hash's AlgorithmIdentifier inside PSS parameters: NULL parameters, as OpenSSL
/// writes them (RFC 4055 lets readers take NULL or absent).
fn hash_identifier(hash: HashAlg) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned { oid: hash_oid(hash), parameters: Some(der::asn1::Any::null()) }
}

fn null_or_absent(p: Option<&der::asn1::Any>) -> bool {
    p.is_none_or(|a| a.is_null())
}

/// The `AlgorithmIdentifier` of a signature by `alg`.
pub fn algorithm_identifier_der(alg: SignatureAlgorithm) -> Result<Vec<u8>> {
    algorithm_identifier(alg)?.to_der().map_err(enc)
}

fn algorithm_identifier(alg: SignatureAlgorithm) -> Result<AlgorithmIdentifierOwned> {
    use SignatureAlgorithm::*;
    let plain = |oid| AlgorithmIdentifierOwned { oid, parameters: None };
    let rsa = |oid| AlgorithmIdentifierOwned { oid, parameters: Some(der::asn1::Any::null()) };
    Ok(match alg {
        Rs256 => rsa(rfc5912::SHA_256_WITH_RSA_ENCRYPTION),
        Rs384 => rsa(rfc5912::SHA_384_WITH_RSA_ENCRYPTION),
        Rs512 => rsa(rfc5912::SHA_512_WITH_RSA_ENCRYPTION),
        Ps256 | Ps384 | Ps512 => {
            let hash = alg.hash();
            let params = PssParams {
                hash: hash_identifier(hash),
                mask_gen: AlgorithmIdentifier {
                    oid: rfc5912::ID_MGF_1,
                    parameters: Some(hash_identifier(hash)),
                },
                salt_len: u32::try_from(hash.output_len()).map_err(|e| param(e.to_string()))?,
            };
            AlgorithmIdentifierOwned {
                oid: rfc5912::ID_RSASSA_PSS,
                parameters: Some(der::asn1::Any::encode_from(&params).map_err(enc)?),
            }
        }
        Es256 | Es256k => plain(rfc5912::ECDSA_WITH_SHA_256),
        Es384 => plain(rfc5912::ECDSA_WITH_SHA_384),
        Es512 => plain(rfc5912::ECDSA_WITH_SHA_512),
        EdDsa => plain(ID_ED25519),
        Hs256 | Hs384 | Hs512 => {
            return Err(Error::invalid(
                InvalidReason::KeyMismatch,
                format!("{alg} is a MAC: certificates and requests need a public-key signature"),
            ));
        }
    })
}

/// The hsmkit algorithm of a signature `id` made by `key`: the curve picks between
/// `ES256` and `ES256K`; an ECDSA hash that is not its curve's JOSE hash, PSS with other
/// parameters than hsmkit's and anything else is [`Error::Unsupported`].
fn signature_algorithm_of(id: &AlgorithmIdentifierOwned, key: &PublicKey) -> Result<SignatureAlgorithm> {
    use SignatureAlgorithm::*;
    let unsupported = || {
        Error::unsupported(
            UnsupportedReason::Algorithm,
            format!("signature algorithm {} for a {} key", id.oid, key.spec()),
        )
    };
    let params = id.parameters.as_ref();
    let alg = if id.oid == rfc5912::SHA_256_WITH_RSA_ENCRYPTION && null_or_absent(params) {
        Rs256
    } else if id.oid == rfc5912::SHA_384_WITH_RSA_ENCRYPTION && null_or_absent(params) {
        Rs384
    } else if id.oid == rfc5912::SHA_512_WITH_RSA_ENCRYPTION && null_or_absent(params) {
        Rs512
    } else if id.oid == rfc5912::ID_RSASSA_PSS {
        let p = params
            .ok_or_else(unsupported)?
            .decode_as::<PssParamsIn>()
            .map_err(|e| malformed("RSASSA-PSS parameters", e))?;
        let hash = p
            .hash
            .as_ref()
            .filter(|h| null_or_absent(h.parameters.as_ref()))
            .and_then(|h| hash_of_oid(&h.oid));
        let mgf_hash = p
            .mask_gen
            .as_ref()
            .filter(|m| m.oid == rfc5912::ID_MGF_1)
            .and_then(|m| m.parameters.as_ref())
            .filter(|h| null_or_absent(h.parameters.as_ref()))
            .and_then(|h| hash_of_oid(&h.oid));
        let alg = match hash {
            Some(HashAlg::Sha256) => Ps256,
            Some(HashAlg::Sha384) => Ps384,
            Some(HashAlg::Sha512) => Ps512,
            Some(HashAlg::Sha1) | None => return Err(unsupported()),
        };
        let salt_ok = p.salt_len.and_then(|s| usize::try_from(s).ok()) == Some(alg.hash().output_len());
        if mgf_hash != Some(alg.hash()) || !salt_ok || p.trailer.is_some_and(|t| t != 1) {
            return Err(unsupported());
        }
        alg
    } else if params.is_some() {
        return Err(unsupported());
    } else if id.oid == rfc5912::ECDSA_WITH_SHA_256 {
        match key.spec() {
            KeySpec::Ec(EcCurve::P256K) => Es256k,
            KeySpec::Ec(EcCurve::P256 | EcCurve::P384 | EcCurve::P521)
            | KeySpec::Rsa { .. }
            | KeySpec::Aes(_)
            | KeySpec::Ed25519
            | KeySpec::Hmac { .. } => Es256,
        }
    } else if id.oid == rfc5912::ECDSA_WITH_SHA_384 {
        Es384
    } else if id.oid == rfc5912::ECDSA_WITH_SHA_512 {
        Es512
    } else if id.oid == ID_ED25519 {
        EdDsa
    } else {
        return Err(unsupported());
    };
    if !alg.fits(key.spec()) {
        return Err(unsupported());
    }
    Ok(alg)
}

/// Verifies `signature` (as X.509 carries it: DER for ECDSA) by `key` over `tbs`.
fn verify_x509_signature(
    crypto: &dyn CryptoProvider,
    key: &PublicKey,
    id: &AlgorithmIdentifierOwned,
    tbs: &[u8],
    signature: &BitString,
) -> Result<()> {
    let alg = signature_algorithm_of(id, key)?;
    let sig = signature.as_bytes().ok_or(Error::VerificationFailed)?;
    let raw = match alg.scheme() {
        SignatureScheme::Ecdsa(curve) => crate::ecdsa_sig::der_to_raw(curve, sig)?,
        SignatureScheme::RsaPkcs1v15
        | SignatureScheme::RsaPss
        | SignatureScheme::Ed25519
        | SignatureScheme::Hmac => sig.to_vec(),
    };
    crypto.verify(key, alg, tbs, &raw)
}

/// The algorithm `key` signs with (`alg`, or the key's default) once checked against the
/// key, and its X.509 `AlgorithmIdentifier`.
fn signing_algorithm(
    key: &Key,
    alg: Option<SignatureAlgorithm>,
) -> Result<(SignatureAlgorithm, AlgorithmIdentifierOwned)> {
    let alg = match alg {
        Some(a) => a,
        None => default_signature_algorithm(key.spec())?,
    };
    key.check_supported(crate::KeyOp::Sign, crate::Algorithm::Signature(alg))?;
    Ok((alg, algorithm_identifier(alg)?))
}

fn signature_bits(key: &Key, alg: SignatureAlgorithm, tbs: &[u8]) -> Result<BitString> {
    let sig = key.sign_with(alg, SignInput::Message(tbs), SignatureFormat::Der)?;
    BitString::from_bytes(&sig).map_err(enc)
}

/// The components of OpenSSL's slash form: split at `/` that are not escaped (`\\/`),
/// with `\\x` taken as `x`. `+` is a literal character (no multi-valued RDNs).
fn split_slash_form(s: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (c, parts.last_mut()) {
            ('\\', Some(cur)) => cur.extend(chars.next()),
            ('/', _) => parts.push(String::new()),
            (c, Some(cur)) => cur.push(c),
            (_, None) => {}
        }
    }
    parts
}

/// A value as RFC 4514 writes it: special characters escaped, and a leading `#` (which
/// would make it hex-encoded BER) or space and a trailing space too.
fn rfc4514_escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 4);
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        let edge = (i == 0 && (c == '#' || c == ' ')) || (i == last && c == ' ');
        if edge || matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Checks a distinguished name (RFC 4514 or OpenSSL's slash form) without a key: what
/// [`create_csr`] and [`self_signed`] would refuse as a subject is refused here, so a
/// caller can check before it generates a key. Empty is allowed (no subject).
pub fn check_subject(dn: &str) -> Result<()> {
    parse_name(dn).map(|_| ())
}

/// Checks what a request or certificate for a key of `spec` would refuse in `params`
/// before any key signs: the subject, the key usage for a CA or an end entity, and that
/// the key type signs certificates.
pub(crate) fn check_params(params: &CertificateParams, spec: KeySpec) -> Result<()> {
    parse_name(&params.subject)?;
    key_usage_for(params.ca, spec, &params.key_usage)?;
    default_signature_algorithm(spec).map(|_| ())
}

/// Parses a distinguished name in RFC 4514 or OpenSSL's slash form.
fn parse_name(dn: &str) -> Result<Name> {
    let dn = dn.trim();
    if dn.is_empty() {
        return Ok(Name::default());
    }
    let rfc4514 = match dn.strip_prefix('/') {
        // `/C=GB/O=Example/CN=host`: most significant first; RFC 4514 lists it last.
        Some(rest) => {
            let mut parts = Vec::new();
            for part in split_slash_form(rest) {
                let (k, v) =
                    part.split_once('=').ok_or_else(|| param(format!("'{part}' is not ATTRIBUTE=value")))?;
                if k.is_empty() || v.is_empty() {
                    return Err(param(format!("empty component in distinguished name '{dn}'")));
                }
                parts.push(format!("{k}={}", rfc4514_escape(v)));
            }
            parts.reverse();
            parts.join(",")
        }
        None => dn.to_owned(),
    };
    let name = Name::from_str(&rfc4514).map_err(|e| {
        param(format!(
            "'{dn}' is not a distinguished name (RFC 4514 'CN=host,O=Example' or '/O=Example/CN=host'): {e}"
        ))
    })?;
    // x509-cert accepts some strings it cannot encode; a name must round-trip to DER.
    name.to_der().map_err(|e| param(format!("distinguished name '{dn}' does not encode: {e}")))?;
    Ok(name)
}

fn extension<T: der::Encode + AssociatedOid>(critical: bool, value: &T) -> Result<Extension> {
    Ok(Extension {
        extn_id: T::OID,
        critical,
        extn_value: OctetString::new(value.to_der().map_err(enc)?).map_err(enc)?,
    })
}

/// The key usage a certificate gets: `asked` (or the default); a CA's must include
/// `keyCertSign`, an end entity's must not (RFC 5280 4.2.1.3, 4.2.1.9).
fn key_usage_for(ca: bool, spec: KeySpec, asked: &[KeyUsage]) -> Result<Vec<KeyUsage>> {
    if asked.is_empty() {
        return Ok(default_key_usage(ca, spec));
    }
    match (ca, asked.contains(&KeyUsage::KeyCertSign)) {
        (true, false) => Err(param("a CA certificate's key usage must include keyCertSign")),
        (false, true) => Err(param("keyCertSign is for CA certificates (set ca)")),
        (true, true) | (false, false) => Ok(asked.to_vec()),
    }
}

fn default_key_usage(ca: bool, spec: KeySpec) -> Vec<KeyUsage> {
    if ca {
        return vec![KeyUsage::KeyCertSign, KeyUsage::CrlSign, KeyUsage::DigitalSignature];
    }
    match spec {
        KeySpec::Rsa { .. } => vec![KeyUsage::DigitalSignature, KeyUsage::KeyEncipherment],
        KeySpec::Ec(_) | KeySpec::Ed25519 | KeySpec::Aes(_) | KeySpec::Hmac { .. } => {
            vec![KeyUsage::DigitalSignature]
        }
    }
}

/// The subject extensions a request asks for and a certificate carries: alternative
/// names, key usage, extended key usage.
fn subject_extensions(
    subject_empty: bool,
    sans: &[SubjectAltName],
    key_usage: &[KeyUsage],
    eku: &[ExtendedKeyUsage],
) -> Result<Vec<Extension>> {
    let mut out = Vec::new();
    if !sans.is_empty() {
        let names = sans.iter().map(SubjectAltName::to_general_name).collect::<Result<Vec<_>>>()?;
        // RFC 5280 4.2.1.6: critical when the subject is empty.
        out.push(extension(subject_empty, &SanExt(names))?);
    } else if subject_empty {
        return Err(param("a certificate or request needs a subject or a subject alternative name"));
    }
    if !key_usage.is_empty() {
        let bits =
            key_usage.iter().fold(der::flagset::FlagSet::<KeyUsages>::default(), |acc, u| acc | u.bit());
        out.push(extension(true, &KeyUsageExt(bits))?);
    }
    if !eku.is_empty() {
        out.push(extension(false, &EkuExt(eku.iter().map(|e| e.oid()).collect()))?);
    }
    Ok(out)
}

/// RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits.
fn key_identifier(crypto: &dyn CryptoProvider, spki: &SubjectPublicKeyInfoOwned) -> Result<OctetString> {
    let bits =
        spki.subject_public_key.as_bytes().ok_or_else(|| malformed("public key", "unaligned bit string"))?;
    OctetString::new(crypto.digest(HashAlg::Sha1, bits)).map_err(enc)
}

fn spki_of(key: &PublicKey) -> Result<SubjectPublicKeyInfoOwned> {
    SubjectPublicKeyInfoOwned::from_der(&key.to_spki_der()?).map_err(enc)
}

fn time(t: SystemTime) -> Result<Time> {
    // Whole seconds (X.509 times have no fraction); UTCTime until 2049, then GeneralizedTime.
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|_| param("a certificate time before 1970"))?
        .as_secs();
    let dt = der::DateTime::from_unix_duration(Duration::from_secs(secs))
        .map_err(|_| param("a certificate time after 9999"))?;
    Ok(Time::from(dt))
}

fn random_serial(crypto: &dyn CryptoProvider) -> Result<SerialNumber> {
    // 128 random bits, the first byte non-zero so the serial keeps its length (CA/B
    // Forum asks for at least 64).
    let mut bytes = [0u8; 16];
    loop {
        crypto.fill_random(&mut bytes)?;
        if bytes.first().is_some_and(|b| *b != 0) {
            break;
        }
    }
    SerialNumber::new(&bytes).map_err(enc)
}

/// `TBSCertificate` (RFC 5280 4.1), version 3.
#[derive(der::Sequence)]
struct TbsOut {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    version: x509_cert::Version,
    serial_number: SerialNumber,
    signature: AlgorithmIdentifierOwned,
    issuer: Name,
    validity: Validity,
    subject: Name,
    subject_public_key_info: SubjectPublicKeyInfoOwned,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT")]
    extensions: Extensions,
}

/// `Certificate`, around the exact bytes that were signed.
/// A certificate or request as signed: the signed part's exact bytes, the algorithm and
/// the signature.
#[derive(der::Sequence)]
struct Signed<'a> {
    tbs: TbsBytes<'a>,
    algorithm: AlgorithmIdentifierOwned,
    signature: BitString,
}

/// A DER element kept as its bytes (header included), as it was signed.
struct TbsBytes<'a>(&'a [u8]);

impl<'a> der::Decode<'a> for TbsBytes<'a> {
    type Error = der::Error;
    fn decode<R: der::Reader<'a>>(reader: &mut R) -> der::Result<Self> {
        reader.tlv_bytes().map(TbsBytes)
    }
}

impl der::Encode for TbsBytes<'_> {
    fn encoded_len(&self) -> der::Result<der::Length> {
        der::Length::try_from(self.0.len())
    }
    fn encode(&self, writer: &mut impl der::Writer) -> der::Result<()> {
        writer.write(self.0)
    }
}

struct ToSign {
    serial: SerialNumber,
    issuer: Name,
    not_before: SystemTime,
    not_after: SystemTime,
    subject: Name,
    spki: SubjectPublicKeyInfoOwned,
    extensions: Extensions,
}

fn sign_certificate(
    key: &Key,
    (alg, id): (SignatureAlgorithm, AlgorithmIdentifierOwned),
    t: ToSign,
) -> Result<Certificate> {
    if t.not_after <= t.not_before {
        return Err(param("a certificate's validity must end after it starts"));
    }
    let tbs = TbsOut {
        version: x509_cert::Version::V3,
        serial_number: t.serial,
        signature: id.clone(),
        issuer: t.issuer,
        validity: Validity::new(time(t.not_before)?, time(t.not_after)?),
        subject: t.subject,
        subject_public_key_info: t.spki,
        extensions: t.extensions,
    }
    .to_der()
    .map_err(enc)?;
    let signature = signature_bits(key, alg, &tbs)?;
    let der = Signed { tbs: TbsBytes(&tbs), algorithm: id, signature }.to_der().map_err(enc)?;
    Certificate::from_der(&der)
}

/// A certificate signed by its own key (a root CA, or a self-signed end entity). It
/// carries a subject key identifier, basic constraints (critical), key usage (critical)
/// and what `params` asks for.
pub fn self_signed(key: &Key, params: &CertificateParams) -> Result<Certificate> {
    // The algorithm first: an AES or HMAC key is refused for what it is.
    let signing = signing_algorithm(key, params.signature_algorithm)?;
    let public = key.public_key()?;
    let spki = spki_of(&public)?;
    let crypto = key.crypto();
    let subject = parse_name(&params.subject)?;
    let ski = key_identifier(crypto, &spki)?;
    if params.ca && subject.is_empty() {
        return Err(param("a CA certificate needs a subject (RFC 5280 4.1.2.6)"));
    }
    let key_usage = key_usage_for(params.ca, key.spec(), &params.key_usage)?;
    let mut ext = vec![
        extension(
            true,
            &BasicConstraints { ca: params.ca, path_len_constraint: params.path_len.filter(|_| params.ca) },
        )?,
        extension(false, &SubjectKeyIdentifier(ski.clone()))?,
        extension(
            false,
            &AuthorityKeyIdentifier {
                key_identifier: Some(ski),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            },
        )?,
    ];
    ext.extend(subject_extensions(
        subject.is_empty(),
        &params.subject_alt_names,
        &key_usage,
        &params.extended_key_usage,
    )?);
    let not_before = params.not_before.unwrap_or_else(SystemTime::now);
    let not_after = not_before.checked_add(params.validity).ok_or_else(|| param("validity too long"))?;
    sign_certificate(
        key,
        signing,
        ToSign {
            serial: random_serial(crypto)?,
            issuer: subject.clone(),
            not_before,
            not_after,
            subject,
            spki,
            extensions: ext,
        },
    )
}

/// A PKCS#10 certificate request (RFC 2986) for `key`'s public key, signed by it, asking
/// for `params`' subject, alternative names, key usage, extended key usage and (for a CA)
/// basic constraints. Validity is the CA's choice and not part of a request.
pub fn create_csr(key: &Key, params: &CertificateParams) -> Result<CertificateRequest> {
    let (alg, id) = signing_algorithm(key, params.signature_algorithm)?;
    let subject = parse_name(&params.subject)?;
    let asked_usage = if params.key_usage.is_empty() {
        Vec::new()
    } else {
        key_usage_for(params.ca, key.spec(), &params.key_usage)?
    };
    let mut ext = subject_extensions(
        subject.is_empty(),
        &params.subject_alt_names,
        &asked_usage,
        &params.extended_key_usage,
    )?;
    if params.ca {
        ext.push(extension(true, &BasicConstraints { ca: true, path_len_constraint: params.path_len })?);
    }
    let mut attributes = SetOfVec::new();
    if !ext.is_empty() {
        attributes.insert(Attribute::try_from(ExtensionReq(ext)).map_err(enc)?).map_err(enc)?;
    }
    let info = CertReqInfo {
        version: x509_cert::request::Version::V1,
        subject,
        public_key: spki_of(&key.public_key()?)?,
        attributes,
    };
    let tbs = info.to_der().map_err(enc)?;
    let signature = signature_bits(key, alg, &tbs)?;
    let der = CertReq { info, algorithm: id, signature }.to_der().map_err(enc)?;
    CertificateRequest::from_der(&der)
}

/// Issues a certificate for `csr` with the CA's key and certificate: after checking the
/// request's signature (its key signed it) and that `ca_key` is `ca_cert`'s key and
/// `ca_cert` a CA. The certificate has a 128-bit random serial, the request's subject,
/// alternative names and (for an end entity) key usage and extended key usage; basic
/// constraints, subject and authority key identifiers; validity from `params`, ending no
/// later than the CA's. Other requested extensions are not copied.
pub fn issue(
    ca_key: &Key,
    ca_cert: &Certificate,
    csr: &CertificateRequest,
    params: &IssueParams,
) -> Result<Certificate> {
    let crypto = ca_key.crypto();
    csr.verify(crypto)?;
    if ca_key.public_key()? != ca_cert.public_key()? {
        return Err(Error::invalid(
            InvalidReason::KeyMismatch,
            format!("key '{}' is not the key of CA certificate '{}'", ca_key.name(), ca_cert.subject()),
        ));
    }
    let (ca_is_ca, ca_path_len) = ca_cert.basic_constraints()?;
    if !ca_is_ca {
        return Err(param(format!("certificate '{}' is not a CA (basic constraints)", ca_cert.subject())));
    }
    if ca_cert.key_usage()?.is_some_and(|ku| !ku.contains(&KeyUsage::KeyCertSign)) {
        return Err(param(format!("CA certificate '{}' lacks the keyCertSign key usage", ca_cert.subject())));
    }
    let path_len = if params.ca {
        match (ca_path_len, params.path_len) {
            (Some(0), _) => {
                return Err(param(format!(
                    "CA '{}' has path length 0: it may not issue CA certificates",
                    ca_cert.subject()
                )));
            }
            (Some(n), Some(p)) if p >= n => {
                return Err(param(format!("path length {p} is not below the CA's ({n})")));
            }
            (Some(n), None) => Some(n.saturating_sub(1)),
            (Some(_) | None, p) => p,
        }
    } else {
        None
    };

    let not_before = params.not_before.unwrap_or_else(SystemTime::now);
    let (ca_not_before, ca_not_after) = ca_cert.validity();
    if not_before < ca_not_before || not_before >= ca_not_after {
        return Err(param(format!(
            "CA certificate '{}' is not valid at the new certificate's start",
            ca_cert.subject()
        )));
    }
    let not_after =
        not_before.checked_add(params.validity).ok_or_else(|| param("validity too long"))?.min(ca_not_after);

    if ca_cert.cert.tbs_certificate().subject().is_empty() {
        return Err(param("the CA certificate has an empty subject (RFC 5280 4.1.2.4)"));
    }
    // The request's key as hsmkit encodes it (RSA parameters NULL, RFC 3279), not its bytes.
    let subject_public = PublicKey::from_spki_der(&csr.req.info.public_key.to_der().map_err(enc)?)?;
    if let KeySpec::Rsa { bits } = subject_public.spec()
        && bits < crate::spec::RSA_MIN_BITS
    {
        return Err(param(format!(
            "an RSA-{bits} key: hsmkit certifies RSA keys of {} bits or more",
            crate::spec::RSA_MIN_BITS
        )));
    }
    let spki = spki_of(&subject_public)?;
    let requested = csr.requested_extensions()?;
    // An end entity gets what it asked for, without the CA's bits (RFC 5280 4.2.1.3).
    let key_usage = match (params.ca, requested.key_usage.clone()) {
        (true, _) | (false, None) => default_key_usage(params.ca, subject_public.spec()),
        (false, Some(ku)) => {
            let ku: Vec<KeyUsage> =
                ku.into_iter().filter(|u| !matches!(u, KeyUsage::KeyCertSign | KeyUsage::CrlSign)).collect();
            if ku.is_empty() { default_key_usage(false, subject_public.spec()) } else { ku }
        }
    };
    let subject = csr.req.info.subject.clone();
    let mut ext = vec![
        extension(true, &BasicConstraints { ca: params.ca, path_len_constraint: path_len })?,
        extension(false, &SubjectKeyIdentifier(key_identifier(crypto, &spki)?))?,
        extension(
            false,
            &AuthorityKeyIdentifier {
                key_identifier: Some(ca_cert.key_identifier(crypto)?),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            },
        )?,
    ];
    let eku = if params.ca { Vec::new() } else { requested.extended_key_usage.clone() };
    ext.extend(subject_extensions(subject.is_empty(), &requested.subject_alt_names, &key_usage, &eku)?);
    sign_certificate(
        ca_key,
        signing_algorithm(ca_key, params.signature_algorithm)?,
        ToSign {
            serial: random_serial(crypto)?,
            issuer: ca_cert.cert.tbs_certificate().subject().clone(),
            not_before,
            not_after,
            subject,
            spki,
            extensions: ext,
        },
    )
}

fn check_len(der: &[u8], what: &str) -> Result<()> {
    if der.len() > MAX_DER_LEN {
        return Err(Error::invalid(
            InvalidReason::Length,
            format!("a {what} longer than {MAX_DER_LEN} bytes"),
        ));
    }
    Ok(())
}

/// What a request asks for, as hsmkit reads it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Requested {
    subject_alt_names: Vec<SubjectAltName>,
    key_usage: Option<Vec<KeyUsage>>,
    extended_key_usage: Vec<ExtendedKeyUsage>,
}

fn read_key_usage(ext: &Extension) -> Result<Vec<KeyUsage>> {
    let ku = KeyUsageExt::from_der(ext.extn_value.as_bytes()).map_err(|e| malformed("key usage", e))?;
    Ok(KeyUsage::ALL.iter().copied().filter(|u| ku.0.contains(u.bit())).collect())
}

fn read_extensions(exts: &[Extension]) -> Result<Requested> {
    let mut r = Requested::default();
    for e in exts {
        if e.extn_id == SanExt::OID {
            let san = SanExt::from_der(e.extn_value.as_bytes())
                .map_err(|e| malformed("subject alternative names", e))?;
            r.subject_alt_names = san.0.iter().filter_map(SubjectAltName::from_general_name).collect();
        } else if e.extn_id == KeyUsageExt::OID {
            r.key_usage = Some(read_key_usage(e)?);
        } else if e.extn_id == EkuExt::OID {
            let eku =
                EkuExt::from_der(e.extn_value.as_bytes()).map_err(|e| malformed("extended key usage", e))?;
            r.extended_key_usage =
                ExtendedKeyUsage::ALL.iter().copied().filter(|p| eku.0.contains(&p.oid())).collect();
        }
    }
    Ok(r)
}

/// A PKCS#10 certificate request.
#[derive(Clone, PartialEq, Eq)]
pub struct CertificateRequest {
    der: Vec<u8>,
    req: CertReq,
}

impl fmt::Debug for CertificateRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateRequest").field("subject", &self.subject()).finish_non_exhaustive()
    }
}

impl CertificateRequest {
    /// Parses DER. Its signature is not checked here (see [`verify`](Self::verify)).
    pub fn from_der(der: &[u8]) -> Result<Self> {
        check_len(der, "certificate request")?;
        let req = CertReq::from_der(der).map_err(|e| malformed("certificate request", e))?;
        if req.to_der().map_err(enc)? != der {
            return Err(malformed("certificate request", "not DER (a non-canonical encoding)"));
        }
        let r = CertificateRequest { der: der.to_vec(), req };
        r.requested_extensions()?;
        Ok(r)
    }

    /// Parses PEM (`CERTIFICATE REQUEST`; OpenSSL's `NEW CERTIFICATE REQUEST` too).
    pub fn from_pem(pem: &str) -> Result<Self> {
        check_len(pem.as_bytes(), "certificate request")?;
        let (label, der) = pem_rfc7468::decode_vec(pem.trim().as_bytes()).map_err(|e| malformed("PEM", e))?;
        if label != "CERTIFICATE REQUEST" && label != "NEW CERTIFICATE REQUEST" {
            return Err(malformed("PEM", format!("label '{label}', expected CERTIFICATE REQUEST")));
        }
        Self::from_der(&der)
    }

    /// DER.
    pub fn to_der(&self) -> &[u8] {
        &self.der
    }

    /// PEM (`CERTIFICATE REQUEST`) of the DER.
    pub fn to_pem(&self) -> Result<String> {
        pem_rfc7468::encode_string("CERTIFICATE REQUEST", pem_rfc7468::LineEnding::LF, &self.der)
            .map_err(|e| malformed("PEM", e))
    }

    /// The subject, RFC 4514.
    pub fn subject(&self) -> String {
        self.req.info.subject.to_string()
    }

    /// The requested subject alternative names (of the kinds hsmkit has).
    pub fn subject_alt_names(&self) -> Result<Vec<SubjectAltName>> {
        Ok(self.requested_extensions()?.subject_alt_names)
    }

    /// The public key to be certified.
    pub fn public_key(&self) -> Result<PublicKey> {
        PublicKey::from_spki_der(&self.req.info.public_key.to_der().map_err(enc)?)
    }

    /// Checks that the request is signed by its own key. A bad signature is
    /// [`Error::InvalidInput`] (the request is not what its key signed).
    pub fn verify(&self, crypto: &dyn CryptoProvider) -> Result<()> {
        let signed = Signed::from_der(&self.der).map_err(|e| malformed("certificate request", e))?;
        let tbs = signed.tbs.0;
        match verify_x509_signature(crypto, &self.public_key()?, &signed.algorithm, tbs, &signed.signature) {
            Err(Error::VerificationFailed) => Err(Error::invalid(
                InvalidReason::Malformed,
                "the certificate request's signature does not verify with its own public key",
            )),
            other => other,
        }
    }

    fn requested_extensions(&self) -> Result<Requested> {
        let mut exts = Vec::new();
        if self.req.info.attributes.iter().filter(|a| a.oid == ExtensionReq::OID).count() > 1 {
            return Err(malformed("certificate request", "more than one extension request"));
        }
        for attr in self.req.info.attributes.iter() {
            if attr.oid == ExtensionReq::OID {
                for v in attr.values.iter() {
                    let req: ExtensionReq = v.decode_as().map_err(|e| malformed("extension request", e))?;
                    exts.extend(req.0);
                }
            }
        }
        check_unique(&exts)?;
        read_extensions(&exts)
    }
}

/// RFC 5280 4.2: one instance of each extension.
fn check_unique(exts: &[Extension]) -> Result<()> {
    for (i, e) in exts.iter().enumerate() {
        if exts.iter().skip(i + 1).any(|o| o.extn_id == e.extn_id) {
            return Err(malformed("extensions", format!("extension {} appears twice", e.extn_id)));
        }
    }
    Ok(())
}

/// The DER of every PEM block labelled `label` in `text`, in order.
fn pem_blocks(text: &str, label: &str) -> Result<Vec<Vec<u8>>> {
    let (begin, end) = (format!("-----BEGIN {label}-----"), format!("-----END {label}-----"));
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(&begin) {
        let tail = rest.get(start..).unwrap_or_default();
        let stop = tail.find(&end).ok_or_else(|| malformed("PEM", format!("'{begin}' without '{end}'")))?;
        let block = tail.get(..stop + end.len()).unwrap_or_default();
        let (_, der) = pem_rfc7468::decode_vec(block.as_bytes()).map_err(|e| malformed("PEM", e))?;
        out.push(der);
        rest = tail.get(stop + end.len()..).unwrap_or_default();
    }
    Ok(out)
}

/// An X.509 certificate.
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    der: Vec<u8>,
    cert: x509_cert::Certificate,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject())
            .field("issuer", &self.issuer())
            .field("serial", &self.serial_hex())
            .finish_non_exhaustive()
    }
}

impl Certificate {
    /// Parses DER: strict (what re-encodes to other bytes is refused, since a signature
    /// covers the bytes), one instance of each extension (RFC 5280 4.2), the same
    /// signature algorithm inside and outside the signed part (4.1.1.2).
    pub fn from_der(der: &[u8]) -> Result<Self> {
        check_len(der, "certificate")?;
        let cert = x509_cert::Certificate::from_der(der).map_err(|e| malformed("certificate", e))?;
        if cert.to_der().map_err(enc)? != der {
            return Err(malformed("certificate", "not DER (a non-canonical encoding)"));
        }
        if cert.signature_algorithm() != cert.tbs_certificate().signature() {
            return Err(malformed(
                "certificate",
                "the signature algorithm differs inside and outside the signed part",
            ));
        }
        let exts = cert.tbs_certificate().extensions().map(|e| e.as_slice()).unwrap_or_default();
        check_unique(exts)?;
        Ok(Certificate { der: der.to_vec(), cert })
    }

    /// The subject key identifier: the extension's, or (without one) RFC 5280's method 1.
    fn key_identifier(&self, crypto: &dyn CryptoProvider) -> Result<OctetString> {
        for e in self.extensions() {
            if e.extn_id == SubjectKeyIdentifier::OID {
                let ski = SubjectKeyIdentifier::from_der(e.extn_value.as_bytes())
                    .map_err(|e| malformed("subject key identifier", e))?;
                return Ok(ski.0);
            }
        }
        key_identifier(crypto, self.cert.tbs_certificate().subject_public_key_info())
    }

    /// Parses one PEM `CERTIFICATE`.
    pub fn from_pem(pem: &str) -> Result<Self> {
        let mut all = Self::from_pem_chain(pem)?;
        match (all.pop(), all.is_empty()) {
            (Some(c), true) => Ok(c),
            (Some(_), false) => Err(malformed("PEM", "several certificates where one was expected")),
            (None, _) => Err(malformed("PEM", "no certificate")),
        }
    }

    /// Parses every PEM `CERTIFICATE` in `pem`, in order (a chain: leaf first); text
    /// between the blocks is ignored.
    pub fn from_pem_chain(pem: &str) -> Result<Vec<Self>> {
        pem_blocks(pem, "CERTIFICATE")?.iter().map(|der| Self::from_der(der)).collect()
    }

    /// DER.
    pub fn to_der(&self) -> &[u8] {
        &self.der
    }

    /// PEM (`CERTIFICATE`) of the DER.
    pub fn to_pem(&self) -> Result<String> {
        pem_rfc7468::encode_string("CERTIFICATE", pem_rfc7468::LineEnding::LF, &self.der)
            .map_err(|e| malformed("PEM", e))
    }

    /// The subject, RFC 4514.
    pub fn subject(&self) -> String {
        self.cert.tbs_certificate().subject().to_string()
    }

    /// The issuer, RFC 4514.
    pub fn issuer(&self) -> String {
        self.cert.tbs_certificate().issuer().to_string()
    }

    /// The serial number, lowercase hex without leading zeros (the DER sign byte).
    pub fn serial_hex(&self) -> String {
        let bytes = self.cert.tbs_certificate().serial_number().as_bytes();
        let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len().saturating_sub(1));
        bytes.get(start..).unwrap_or_default().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Not before and not after.
    pub fn validity(&self) -> (SystemTime, SystemTime) {
        let v = self.cert.tbs_certificate().validity();
        (v.not_before.to_system_time(), v.not_after.to_system_time())
    }

    /// The certified public key.
    pub fn public_key(&self) -> Result<PublicKey> {
        PublicKey::from_spki_der(
            &self.cert.tbs_certificate().subject_public_key_info().to_der().map_err(enc)?,
        )
    }

    /// Subject alternative names (of the kinds hsmkit has).
    pub fn subject_alt_names(&self) -> Result<Vec<SubjectAltName>> {
        Ok(read_extensions(self.extensions())?.subject_alt_names)
    }

    /// Key usage, if the certificate limits it.
    pub fn key_usage(&self) -> Result<Option<Vec<KeyUsage>>> {
        Ok(read_extensions(self.extensions())?.key_usage)
    }

    /// Basic constraints: a CA, and its path length constraint.
    pub fn basic_constraints(&self) -> Result<(bool, Option<u8>)> {
        for e in self.extensions() {
            if e.extn_id == BasicConstraints::OID {
                let bc = BasicConstraints::from_der(e.extn_value.as_bytes())
                    .map_err(|e| malformed("basic constraints", e))?;
                return Ok((bc.ca, bc.path_len_constraint));
            }
        }
        Ok((false, None))
    }

    /// SHA-256 of the DER, lowercase hex (what `openssl x509 -fingerprint -sha256` shows).
    pub fn sha256_fingerprint(&self, crypto: &dyn CryptoProvider) -> String {
        crypto.digest(HashAlg::Sha256, &self.der).iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Checks that `issuer` signed this certificate: the names chain and the signature
    /// verifies with the issuer's public key. (Validity, constraints and revocation are a
    /// path validator's business.)
    pub fn verify_issued_by(&self, issuer: &Certificate, crypto: &dyn CryptoProvider) -> Result<()> {
        if self.cert.tbs_certificate().issuer() != issuer.cert.tbs_certificate().subject() {
            return Err(Error::VerificationFailed);
        }
        // The bytes as signed, not a re-encoding.
        let signed = Signed::from_der(&self.der).map_err(|e| malformed("certificate", e))?;
        verify_x509_signature(
            crypto,
            &issuer.public_key()?,
            &signed.algorithm,
            signed.tbs.0,
            &signed.signature,
        )
    }

    fn extensions(&self) -> &[Extension] {
        self.cert.tbs_certificate().extensions().map(|e| e.as_slice()).unwrap_or_default()
    }
}
