//! Reading PKCS#12 (`.pfx`, `.p12`) files: a private key and its certificates, as
//! OpenSSL, pyca/cryptography, Windows and Java export them (RFC 7292).
//!
//! [`decode`] checks the integrity MAC first (RFC 7292's HMAC with the PKCS#12 key
//! derivation over SHA-1 or SHA-2, or PBMAC1 as RFC 9579 defines it), then decrypts what is
//! encrypted with PBES2 (PBKDF2 with HMAC-SHA-1/SHA-2, AES-CBC; RFC 8018). The legacy
//! PKCS#12 encryptions (`pbeWithSHAAnd3-KeyTripleDES-CBC`, `pbeWithSHAAnd40BitRC2-CBC`,
//! what `openssl pkcs12 -legacy` and older tools write) are [`Error::Unsupported`], naming
//! the algorithm. All cryptography goes through the [`CryptoProvider`].
//!
//! A wrong password is [`Error::Authentication`], whether the MAC or, in a file without
//! one, the decryption tells it; a file that does not parse is
//! [`InvalidReason::Malformed`]. The DER is read strictly: BER (indefinite lengths,
//! constructed strings) is refused as malformed.

use std::fmt;

use const_oid::ObjectIdentifier;
use der::asn1::{AnyRef, OctetStringRef};
use der::{Decode, Encode, Sequence, Tagged};
use spki::AlgorithmIdentifierRef;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::algorithm::HashAlg;
use crate::crypto::CryptoProvider;
use crate::error::{Error, InvalidReason, Result, UnsupportedReason};

/// What a PKCS#12 file holds.
pub struct Pkcs12Contents {
    /// The private key as PKCS#8 `PrivateKeyInfo` DER (decrypted), if the file has one.
    pub key: Option<Zeroizing<Vec<u8>>>,
    /// Every certificate (X.509 DER), in the file's order.
    pub certificates: Vec<Vec<u8>>,
}

impl fmt::Debug for Pkcs12Contents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs12Contents")
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("certificates", &self.certificates.len())
            .finish()
    }
}

/// The largest file [`decode`] reads: chains of RSA-16384 certificates fit many times.
const MAX_PFX_LEN: usize = 1024 * 1024;
/// How deep `safeContentsBag`s may nest (tools write none).
const MAX_NESTING: usize = 4;
/// The most key-derivation iterations one file may cost in all (MAC and every encrypted
/// part): tools write a few thousand per part.
const MAX_TOTAL_ITERATIONS: u64 = 20_000_000;
/// The most iterations of the PKCS#12 key derivation (each one hash).
const MAX_KDF_ITERATIONS: u32 = crate::crypto::PBKDF2_MAX_ITERATIONS;

/// One message for a wrong password, whichever check tells it: the MAC, or a decryption.
fn wrong_password() -> Error {
    Error::Authentication("the PKCS#12 password is wrong, or the file was altered".into())
}

fn malformed(msg: impl fmt::Display) -> Error {
    Error::invalid(InvalidReason::Malformed, format!("not a PKCS#12 file: {msg}"))
}

fn der_err(what: &'static str) -> impl Fn(der::Error) -> Error {
    move |e| malformed(format_args!("{what}: {e}"))
}

mod oid {
    use const_oid::ObjectIdentifier as O;

    pub(super) const DATA: O = O::new_unwrap("1.2.840.113549.1.7.1");
    pub(super) const ENCRYPTED_DATA: O = O::new_unwrap("1.2.840.113549.1.7.6");
    pub(super) const ENVELOPED_DATA: O = O::new_unwrap("1.2.840.113549.1.7.3");
    pub(super) const SIGNED_DATA: O = O::new_unwrap("1.2.840.113549.1.7.2");

    pub(super) const KEY_BAG: O = O::new_unwrap("1.2.840.113549.1.12.10.1.1");
    pub(super) const SHROUDED_KEY_BAG: O = O::new_unwrap("1.2.840.113549.1.12.10.1.2");
    pub(super) const CERT_BAG: O = O::new_unwrap("1.2.840.113549.1.12.10.1.3");
    pub(super) const SAFE_CONTENTS_BAG: O = O::new_unwrap("1.2.840.113549.1.12.10.1.6");
    pub(super) const X509_CERTIFICATE: O = O::new_unwrap("1.2.840.113549.1.9.22.1");

    pub(super) const PBES2: O = O::new_unwrap("1.2.840.113549.1.5.13");
    pub(super) const PBKDF2: O = O::new_unwrap("1.2.840.113549.1.5.12");
    pub(super) const PBMAC1: O = O::new_unwrap("1.2.840.113549.1.5.14");

    pub(super) const SHA1: O = O::new_unwrap("1.3.14.3.2.26");
    pub(super) const SHA256: O = O::new_unwrap("2.16.840.1.101.3.4.2.1");
    pub(super) const SHA384: O = O::new_unwrap("2.16.840.1.101.3.4.2.2");
    pub(super) const SHA512: O = O::new_unwrap("2.16.840.1.101.3.4.2.3");

    pub(super) const HMAC_SHA1: O = O::new_unwrap("1.2.840.113549.2.7");
    pub(super) const HMAC_SHA256: O = O::new_unwrap("1.2.840.113549.2.9");
    pub(super) const HMAC_SHA384: O = O::new_unwrap("1.2.840.113549.2.10");
    pub(super) const HMAC_SHA512: O = O::new_unwrap("1.2.840.113549.2.11");

    pub(super) const AES_128_CBC: O = O::new_unwrap("2.16.840.1.101.3.4.1.2");
    pub(super) const AES_192_CBC: O = O::new_unwrap("2.16.840.1.101.3.4.1.22");
    pub(super) const AES_256_CBC: O = O::new_unwrap("2.16.840.1.101.3.4.1.42");

    /// The legacy PKCS#12 PBEs (RFC 7292 appendix C), with their names.
    pub(super) const LEGACY: [(O, &str); 6] = [
        (O::new_unwrap("1.2.840.113549.1.12.1.1"), "pbeWithSHAAnd128BitRC4"),
        (O::new_unwrap("1.2.840.113549.1.12.1.2"), "pbeWithSHAAnd40BitRC4"),
        (O::new_unwrap("1.2.840.113549.1.12.1.3"), "pbeWithSHAAnd3-KeyTripleDES-CBC"),
        (O::new_unwrap("1.2.840.113549.1.12.1.4"), "pbeWithSHAAnd2-KeyTripleDES-CBC"),
        (O::new_unwrap("1.2.840.113549.1.12.1.5"), "pbeWithSHAAnd128BitRC2-CBC"),
        (O::new_unwrap("1.2.840.113549.1.12.1.6"), "pbeWithSHAAnd40BitRC2-CBC"),
    ];
    /// PBES1 (RFC 8018 appendix A.3), older still.
    pub(super) const PBES1: [(O, &str); 6] = [
        (O::new_unwrap("1.2.840.113549.1.5.1"), "pbeWithMD2AndDES-CBC"),
        (O::new_unwrap("1.2.840.113549.1.5.3"), "pbeWithMD5AndDES-CBC"),
        (O::new_unwrap("1.2.840.113549.1.5.4"), "pbeWithMD2AndRC2-CBC"),
        (O::new_unwrap("1.2.840.113549.1.5.6"), "pbeWithMD5AndRC2-CBC"),
        (O::new_unwrap("1.2.840.113549.1.5.10"), "pbeWithSHA1AndDES-CBC"),
        (O::new_unwrap("1.2.840.113549.1.5.11"), "pbeWithSHA1AndRC2-CBC"),
    ];
}

// RFC 7292's structures (section 4 and appendix), read with `der`'s derive.

/// `PFX ::= SEQUENCE { version INTEGER {v3(3)}, authSafe ContentInfo, macData MacData OPTIONAL }`
///
/// Every structure borrows from its input: a plain key bag is never copied out of a
/// buffer this module does not wipe.
#[derive(Sequence)]
struct Pfx<'a> {
    version: u8,
    auth_safe: ContentInfo<'a>,
    mac_data: Option<MacData<'a>>,
}

/// `ContentInfo ::= SEQUENCE { contentType OID, content [0] EXPLICIT ANY OPTIONAL }` (RFC 5652)
#[derive(Sequence)]
struct ContentInfo<'a> {
    content_type: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    content: Option<AnyRef<'a>>,
}

/// `MacData ::= SEQUENCE { mac DigestInfo, macSalt OCTET STRING, iterations INTEGER DEFAULT 1 }`
#[derive(Sequence)]
struct MacData<'a> {
    mac: DigestInfo<'a>,
    mac_salt: &'a OctetStringRef,
    iterations: Option<u32>,
}

/// `DigestInfo ::= SEQUENCE { digestAlgorithm AlgorithmIdentifier, digest OCTET STRING }`
#[derive(Sequence)]
struct DigestInfo<'a> {
    algorithm: AlgorithmIdentifierRef<'a>,
    digest: &'a OctetStringRef,
}

/// `EncryptedData ::= SEQUENCE { version, encryptedContentInfo, unprotectedAttrs [1] IMPLICIT OPTIONAL }`
/// (the attributes, last, read as anything).
#[derive(Sequence)]
struct EncryptedData<'a> {
    version: u8,
    encrypted_content_info: EncryptedContentInfo<'a>,
    unprotected_attrs: Option<AnyRef<'a>>,
}

/// `EncryptedContentInfo ::= SEQUENCE { contentType, contentEncryptionAlgorithm, encryptedContent [0] IMPLICIT OPTIONAL }`
#[derive(Sequence)]
struct EncryptedContentInfo<'a> {
    content_type: ObjectIdentifier,
    algorithm: AlgorithmIdentifierRef<'a>,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    encrypted_content: Option<&'a OctetStringRef>,
}

/// `SafeBag ::= SEQUENCE { bagId OID, bagValue [0] EXPLICIT ANY, bagAttributes SET OF OPTIONAL }`
/// (the attributes, last, read as anything).
#[derive(Clone, Sequence)]
struct SafeBag<'a> {
    bag_id: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    bag_value: AnyRef<'a>,
    bag_attributes: Option<AnyRef<'a>>,
}

/// `CertBag ::= SEQUENCE { certId OID, certValue [0] EXPLICIT ANY }`
#[derive(Sequence)]
struct CertBag<'a> {
    cert_id: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    cert_value: AnyRef<'a>,
}

/// `EncryptedPrivateKeyInfo ::= SEQUENCE { encryptionAlgorithm, encryptedData OCTET STRING }` (RFC 5958)
#[derive(Sequence)]
struct EncryptedPrivateKeyInfo<'a> {
    algorithm: AlgorithmIdentifierRef<'a>,
    encrypted_data: &'a OctetStringRef,
}

/// `PBES2-params ::= SEQUENCE { keyDerivationFunc, encryptionScheme }` (RFC 8018), and
/// `PBMAC1-params ::= SEQUENCE { keyDerivationFunc, messageAuthScheme }`: the same shape.
#[derive(Sequence)]
struct Pbes2Params<'a> {
    kdf: AlgorithmIdentifierRef<'a>,
    scheme: AlgorithmIdentifierRef<'a>,
}

/// `PBKDF2-params ::= SEQUENCE { salt OCTET STRING (specified), iterationCount, keyLength OPTIONAL, prf DEFAULT hmacWithSHA1 }`
#[derive(Sequence)]
struct Pbkdf2Params<'a> {
    salt: &'a OctetStringRef,
    iteration_count: u32,
    key_length: Option<u32>,
    prf: Option<AlgorithmIdentifierRef<'a>>,
}

/// The state of one decode: the password in its two encodings and the work left.
struct Decoder<'a> {
    crypto: &'a dyn CryptoProvider,
    /// For PBKDF2 (PBES2, PBMAC1): the password's UTF-8 bytes, as OpenSSL and pyca use them.
    utf8: &'a [u8],
    /// Whether the MAC was checked: then a decryption failure is still a wrong password
    /// (a key encrypted under another one), but garbage after a good decryption is a
    /// malformed file.
    authenticated: bool,
    iterations_left: u64,
    key: Option<Zeroizing<Vec<u8>>>,
    keys: usize,
    certificates: Vec<Vec<u8>>,
}

/// Reads a PKCS#12 file (DER) with `password`: its private key (PKCS#8 DER) and its
/// certificates, in the file's order.
///
/// The MAC is checked before anything is decrypted; a file without one is
/// [`Error::Unsupported`] (nothing would authenticate it). A wrong password is
/// [`Error::Authentication`]; legacy encryption (3DES, RC2, RC4) or an
/// `envelopedData`/`signedData` part is [`Error::Unsupported`]; more than one private key
/// is [`InvalidReason::Parameter`] (hsmkit imports one); CRL and secret bags are skipped.
/// Only DER is read (BER, which some Java and macOS exporters write, is malformed here).
pub fn decode(crypto: &dyn CryptoProvider, pfx_der: &[u8], password: &str) -> Result<Pkcs12Contents> {
    decode_with(crypto, pfx_der, password, true)
}

fn decode_with(
    crypto: &dyn CryptoProvider,
    pfx_der: &[u8],
    password: &str,
    require_mac: bool,
) -> Result<Pkcs12Contents> {
    if pfx_der.len() > MAX_PFX_LEN {
        return Err(Error::invalid(
            InvalidReason::Length,
            format!("a PKCS#12 file of {} bytes (at most {MAX_PFX_LEN})", pfx_der.len()),
        ));
    }
    let pfx = Pfx::from_der(pfx_der).map_err(der_err("PFX"))?;
    if pfx.version != 3 {
        return Err(malformed(format_args!("PFX version {} (expected 3)", pfx.version)));
    }
    if pfx.auth_safe.content_type != oid::DATA {
        let what = if pfx.auth_safe.content_type == oid::SIGNED_DATA {
            "public-key integrity mode (signedData authSafe)"
        } else {
            "an authSafe that is not data"
        };
        return Err(Error::unsupported(UnsupportedReason::Encoding, format!("PKCS#12 with {what}")));
    }
    let auth_safe = octets(pfx.auth_safe.content, "authSafe")?;
    let mut d = Decoder {
        crypto,
        utf8: password.as_bytes(),
        authenticated: false,
        iterations_left: MAX_TOTAL_ITERATIONS,
        key: None,
        keys: 0,
        certificates: Vec::new(),
    };
    // The MAC is the format's only integrity check: without it, anyone who can touch the
    // file can swap its certificates, flip bits in its CBC ciphertext or put in a clear key
    // of their own, and the password proves nothing. hsmkit refuses such files (OpenSSL
    // reads them).
    match &pfx.mac_data {
        Some(mac) => {
            d.check_mac(mac, password, auth_safe)?;
            d.authenticated = true;
        }
        None if require_mac => {
            return Err(Error::unsupported(
                UnsupportedReason::Encoding,
                "a PKCS#12 file without a MAC (nothing authenticates it): export it with a MAC (openssl pkcs12 -export without -nomac)",
            ));
        }
        // The unit tests' hand-made files, which exercise the bag parsing alone.
        None => {}
    }
    let parts = Vec::<ContentInfo>::from_der(auth_safe).map_err(der_err("AuthenticatedSafe"))?;
    for part in &parts {
        d.content_info(part)?;
    }
    if d.keys > 1 {
        return Err(Error::invalid(
            InvalidReason::Parameter,
            format!("the PKCS#12 file holds {} private keys; hsmkit imports one", d.keys),
        ));
    }
    Ok(Pkcs12Contents { key: d.key, certificates: d.certificates })
}

/// The bytes of a `[0] EXPLICIT OCTET STRING` content.
fn octets<'a>(content: Option<AnyRef<'a>>, what: &'static str) -> Result<&'a [u8]> {
    let any = content.ok_or_else(|| malformed(format_args!("{what} has no content")))?;
    let os = any.decode_as::<&OctetStringRef>().map_err(der_err(what))?;
    Ok(os.as_bytes())
}

/// The hash of a digest algorithm identifier (a `MacData`'s).
fn digest_hash(alg: &AlgorithmIdentifierRef<'_>) -> Option<HashAlg> {
    match alg.oid {
        o if o == oid::SHA1 => Some(HashAlg::Sha1),
        o if o == oid::SHA256 => Some(HashAlg::Sha256),
        o if o == oid::SHA384 => Some(HashAlg::Sha384),
        o if o == oid::SHA512 => Some(HashAlg::Sha512),
        _ => None,
    }
}

/// The hash of an HMAC algorithm identifier (a PBKDF2 PRF, a PBMAC1 scheme).
fn hmac_hash(alg: &AlgorithmIdentifierRef<'_>) -> Option<HashAlg> {
    match alg.oid {
        o if o == oid::HMAC_SHA1 => Some(HashAlg::Sha1),
        o if o == oid::HMAC_SHA256 => Some(HashAlg::Sha256),
        o if o == oid::HMAC_SHA384 => Some(HashAlg::Sha384),
        o if o == oid::HMAC_SHA512 => Some(HashAlg::Sha512),
        _ => None,
    }
}

/// The name of an encryption algorithm hsmkit does not read, for the message.
fn unsupported_encryption(alg: &ObjectIdentifier) -> Error {
    if let Some((_, name)) = oid::LEGACY.iter().find(|(o, _)| o == alg) {
        return Error::unsupported(
            UnsupportedReason::Algorithm,
            format!(
                "{name} (legacy PKCS#12 encryption): re-export the file with AES \
                 (openssl pkcs12 -export without -legacy)"
            ),
        );
    }
    if let Some((_, name)) = oid::PBES1.iter().find(|(o, _)| o == alg) {
        return Error::unsupported(
            UnsupportedReason::Algorithm,
            format!("{name} (PBES1, DES or RC2): re-export the file with AES"),
        );
    }
    Error::unsupported(UnsupportedReason::Algorithm, format!("PKCS#12 encryption algorithm {alg}"))
}

/// The parameters of an algorithm identifier, as `T`.
fn params<'a, T>(alg: &AlgorithmIdentifierRef<'a>, what: &'static str) -> Result<T>
where
    T: der::Choice<'a> + der::DecodeValue<'a, Error = der::Error>,
{
    alg.parameters
        .ok_or_else(|| malformed(format_args!("{what} without parameters")))?
        .decode_as::<T>()
        .map_err(der_err(what))
}

/// The password as RFC 7292 appendix B.1 has it: a BMPString (UTF-16BE), two zero bytes
/// after. Characters outside the BMP become surrogate pairs, as in OpenSSL.
fn bmp_password(password: &str) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(password.len().saturating_mul(2).saturating_add(2)));
    for unit in password.encode_utf16() {
        out.extend_from_slice(&unit.to_be_bytes());
    }
    out.extend_from_slice(&[0, 0]);
    out
}

/// The hash's input block length (`v` in RFC 7292 appendix B.2).
fn block_len(hash: HashAlg) -> usize {
    match hash {
        HashAlg::Sha1 | HashAlg::Sha256 => 64,
        HashAlg::Sha384 | HashAlg::Sha512 => 128,
    }
}

/// RFC 7292 appendix B.2's key derivation: `n` bytes for purpose `id` (1 key, 2 IV,
/// 3 MAC key) from the password (already a BMPString, or empty for none) and `salt`.
pub(crate) fn pkcs12_kdf(
    crypto: &dyn CryptoProvider,
    hash: HashAlg,
    password: &[u8],
    salt: &[u8],
    id: u8,
    iterations: u32,
    n: usize,
) -> Result<Zeroizing<Vec<u8>>> {
    if iterations == 0 || iterations > MAX_KDF_ITERATIONS {
        return Err(Error::invalid(
            InvalidReason::Parameter,
            format!("PKCS#12 iteration count {iterations}: must be 1 to {MAX_KDF_ITERATIONS}"),
        ));
    }
    let v = block_len(hash);
    // S and P: salt and password repeated to a whole number of v-byte blocks.
    let fill = |src: &[u8]| -> Zeroizing<Vec<u8>> {
        let len = src.len().div_ceil(v).saturating_mul(v);
        Zeroizing::new(src.iter().cycle().take(len).copied().collect())
    };
    let mut i_buf = fill(salt);
    i_buf.extend_from_slice(&fill(password));
    let mut out = Zeroizing::new(Vec::with_capacity(n));
    loop {
        // A_i = H^r(D || I), D = v bytes of ID.
        let mut input = Zeroizing::new(vec![id; v]);
        input.extend_from_slice(&i_buf);
        let mut a = Zeroizing::new(crypto.digest(hash, &input));
        for _ in 1..iterations {
            a = Zeroizing::new(crypto.digest(hash, &a));
        }
        let take = a.len().min(n.saturating_sub(out.len()));
        out.extend_from_slice(a.get(..take).unwrap_or_default());
        if out.len() >= n || a.is_empty() {
            break;
        }
        // I_j = (I_j + B + 1) mod 2^(8v) for each v-byte block I_j, B = A_i repeated to v bytes.
        let b: Zeroizing<Vec<u8>> = Zeroizing::new(a.iter().cycle().take(v).copied().collect());
        for block in i_buf.chunks_mut(v) {
            let mut carry = 1u16;
            for (x, y) in block.iter_mut().rev().zip(b.iter().rev()) {
                let [lo, hi] = (u16::from(*x) + u16::from(*y) + carry).to_le_bytes();
                *x = lo;
                carry = u16::from(hi);
            }
        }
    }
    Ok(out)
}

impl Decoder<'_> {
    /// Charges `iterations` of a derivation of `out_len` bytes with `hash`: PBKDF2 runs its
    /// iterations once per output block, so a long key costs that many times more.
    fn spend_for(&mut self, iterations: u32, hash: HashAlg, out_len: usize) -> Result<()> {
        let blocks = out_len.div_ceil(hash.output_len().max(1)).max(1);
        let cost = u64::from(iterations).saturating_mul(u64::try_from(blocks).unwrap_or(u64::MAX));
        self.charge(cost)
    }

    fn spend(&mut self, iterations: u32) -> Result<()> {
        self.charge(u64::from(iterations))
    }

    fn charge(&mut self, cost: u64) -> Result<()> {
        self.iterations_left = self.iterations_left.checked_sub(cost).ok_or_else(|| {
            Error::invalid(
                InvalidReason::Parameter,
                format!(
                    "the PKCS#12 file asks for more than {MAX_TOTAL_ITERATIONS} key-derivation iterations"
                ),
            )
        })?;
        Ok(())
    }

    /// Checks the MAC over the authSafe content, in constant time.
    fn check_mac(&mut self, mac: &MacData<'_>, password: &str, auth_safe: &[u8]) -> Result<()> {
        let alg = &mac.mac.algorithm;
        let expected = mac.mac.digest.as_bytes();
        if alg.oid == oid::PBMAC1 {
            return self.check_pbmac1(alg, expected, auth_safe);
        }
        let hash = digest_hash(alg).ok_or_else(|| {
            Error::unsupported(UnsupportedReason::Algorithm, format!("PKCS#12 MAC digest {}", alg.oid))
        })?;
        if expected.len() != hash.output_len() {
            return Err(malformed(format_args!("a {hash:?} MAC of {} bytes", expected.len())));
        }
        let iterations = mac.iterations.unwrap_or(1);
        let salt = mac.mac_salt.as_bytes();
        // An empty password is two zero bytes (a BMPString's terminator) to OpenSSL and
        // pyca, and no bytes at all to some older writers: OpenSSL tries both, so do we.
        let bmp = bmp_password(password);
        let mut candidates: Vec<&[u8]> = vec![&bmp];
        if password.is_empty() {
            candidates.push(&[]);
        }
        for p in candidates {
            self.spend(iterations)?;
            let key = pkcs12_kdf(self.crypto, hash, p, salt, 3, iterations, hash.output_len())?;
            let tag = Zeroizing::new(self.crypto.hmac(hash, &key, auth_safe)?);
            if bool::from(tag.as_slice().ct_eq(expected)) {
                return Ok(());
            }
        }
        Err(wrong_password())
    }

    /// PBMAC1 (RFC 9579): HMAC under a PBKDF2 key from the UTF-8 password; `macSalt` and
    /// `iterations` of `MacData` are not used.
    fn check_pbmac1(
        &mut self,
        alg: &AlgorithmIdentifierRef<'_>,
        expected: &[u8],
        auth_safe: &[u8],
    ) -> Result<()> {
        let p: Pbes2Params = params(alg, "PBMAC1 parameters")?;
        let hash = hmac_hash(&p.scheme).ok_or_else(|| {
            Error::unsupported(
                UnsupportedReason::Algorithm,
                format!("PBMAC1 message authentication {}", p.scheme.oid),
            )
        })?;
        let (prf, kdf) = self.pbkdf2_params(&p.kdf)?;
        // RFC 9579 section 4: the key length must be given (and sensibly sized).
        let len = kdf.key_length.ok_or_else(|| malformed("PBMAC1 without a PBKDF2 key length"))?;
        // A short key would make the MAC guessable (an 8-bit key: one forgery in 256).
        // RFC 9879 (which updates RFC 9579): at least 20 bytes.
        let min = 20;
        let len = usize::try_from(len).ok().filter(|l| (min..=64).contains(l)).ok_or_else(|| {
            Error::invalid(InvalidReason::Parameter, format!("a PBMAC1 key of {len} bytes ({min} to 64)"))
        })?;
        if expected.len() != hash.output_len() {
            return Err(malformed(format_args!("a {hash:?} PBMAC1 MAC of {} bytes", expected.len())));
        }
        self.spend_for(kdf.iteration_count, prf, len)?;
        let mut key = Zeroizing::new(vec![0u8; len]);
        self.crypto.pbkdf2_hmac(prf, self.utf8, kdf.salt.as_bytes(), kdf.iteration_count, &mut key)?;
        let tag = Zeroizing::new(self.crypto.hmac(hash, &key, auth_safe)?);
        if bool::from(tag.as_slice().ct_eq(expected)) { Ok(()) } else { Err(wrong_password()) }
    }

    /// The PRF and parameters of a PBKDF2 algorithm identifier.
    fn pbkdf2_params<'a>(&self, kdf: &AlgorithmIdentifierRef<'a>) -> Result<(HashAlg, Pbkdf2Params<'a>)> {
        if kdf.oid != oid::PBKDF2 {
            return Err(Error::unsupported(
                UnsupportedReason::Algorithm,
                format!("key derivation {} (hsmkit reads PBKDF2)", kdf.oid),
            ));
        }
        let p: Pbkdf2Params = params(kdf, "PBKDF2 parameters")?;
        let prf = match &p.prf {
            None => HashAlg::Sha1,
            Some(prf) => hmac_hash(prf).ok_or_else(|| {
                Error::unsupported(UnsupportedReason::Algorithm, format!("PBKDF2 PRF {}", prf.oid))
            })?,
        };
        Ok((prf, p))
    }

    /// Decrypts `ciphertext` under a PBES2 algorithm identifier.
    fn decrypt(&mut self, alg: &AlgorithmIdentifierRef<'_>, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if alg.oid != oid::PBES2 {
            return Err(unsupported_encryption(&alg.oid));
        }
        let p: Pbes2Params = params(alg, "PBES2 parameters")?;
        let (prf, kdf) = self.pbkdf2_params(&p.kdf)?;
        let key_len = match p.scheme.oid {
            o if o == oid::AES_128_CBC => 16,
            o if o == oid::AES_192_CBC => 24,
            o if o == oid::AES_256_CBC => 32,
            other => {
                return Err(Error::unsupported(
                    UnsupportedReason::Algorithm,
                    format!("PBES2 encryption scheme {other} (hsmkit reads AES-CBC)"),
                ));
            }
        };
        if kdf.key_length.is_some_and(|l| usize::try_from(l).ok() != Some(key_len)) {
            return Err(malformed("PBKDF2 key length does not match the AES key size"));
        }
        let iv = params::<&OctetStringRef>(&p.scheme, "AES-CBC IV")?;
        let iv: &[u8; 16] =
            iv.as_bytes().try_into().map_err(|_| malformed("an AES-CBC IV that is not 16 bytes"))?;
        self.spend_for(kdf.iteration_count, prf, key_len)?;
        let mut key = Zeroizing::new(vec![0u8; key_len]);
        self.crypto.pbkdf2_hmac(prf, self.utf8, kdf.salt.as_bytes(), kdf.iteration_count, &mut key)?;
        self.crypto.aes_cbc_decrypt(&key, iv, ciphertext).map_err(|e| {
            if e.kind() == crate::error::ErrorKind::DecryptionFailed { wrong_password() } else { e }
        })
    }

    /// Garbage after a decryption: a wrong password that passed the padding check (one
    /// time in about 256) unless the MAC vouched for the password.
    fn decrypted_garbage(&self, what: &'static str) -> impl Fn(der::Error) -> Error + '_ {
        move |e| if self.authenticated { malformed(format_args!("{what}: {e}")) } else { wrong_password() }
    }

    /// One part of the AuthenticatedSafe.
    fn content_info(&mut self, part: &ContentInfo<'_>) -> Result<()> {
        match part.content_type {
            t if t == oid::DATA => {
                let bytes = octets(part.content, "data content")?;
                self.safe_contents(bytes, 0)
            }
            t if t == oid::ENCRYPTED_DATA => {
                let any = part.content.ok_or_else(|| malformed("encryptedData without content"))?;
                let ed = any.decode_as::<EncryptedData>().map_err(der_err("EncryptedData"))?;
                let eci = &ed.encrypted_content_info;
                let ciphertext = eci.encrypted_content.map(OctetStringRef::as_bytes).unwrap_or_default();
                let plain = self.decrypt(&eci.algorithm, ciphertext)?;
                let safe =
                    Vec::<SafeBag>::from_der(&plain).map_err(self.decrypted_garbage("SafeContents"))?;
                self.bags(&safe, 0)
            }
            t if t == oid::ENVELOPED_DATA => Err(Error::unsupported(
                UnsupportedReason::Encoding,
                "PKCS#12 with public-key privacy mode (envelopedData)",
            )),
            other => {
                Err(Error::unsupported(UnsupportedReason::Encoding, format!("PKCS#12 content type {other}")))
            }
        }
    }

    fn safe_contents(&mut self, der: &[u8], depth: usize) -> Result<()> {
        let bags = Vec::<SafeBag>::from_der(der).map_err(der_err("SafeContents"))?;
        self.bags(&bags, depth)
    }

    fn bags(&mut self, bags: &[SafeBag<'_>], depth: usize) -> Result<()> {
        for bag in bags {
            self.bag(bag, depth)?;
        }
        Ok(())
    }

    fn bag(&mut self, bag: &SafeBag<'_>, depth: usize) -> Result<()> {
        match bag.bag_id {
            id if id == oid::KEY_BAG => {
                if bag.bag_value.tag() != der::Tag::Sequence {
                    return Err(malformed("a keyBag that is not a PrivateKeyInfo SEQUENCE"));
                }
                let der = bag.bag_value.to_der().map_err(der_err("keyBag"))?;
                self.add_key(Zeroizing::new(der))
            }
            id if id == oid::SHROUDED_KEY_BAG => {
                let epki = bag
                    .bag_value
                    .decode_as::<EncryptedPrivateKeyInfo>()
                    .map_err(der_err("EncryptedPrivateKeyInfo"))?;
                let plain = self.decrypt(&epki.algorithm, epki.encrypted_data.as_bytes())?;
                // The PKCS#8 must be one whole DER SEQUENCE: what a good decryption gives.
                der::asn1::AnyRef::from_der(&plain)
                    .ok()
                    .filter(|a| a.tag() == der::Tag::Sequence)
                    .ok_or_else(|| {
                        if self.authenticated {
                            malformed("the decrypted private key is not PKCS#8")
                        } else {
                            wrong_password()
                        }
                    })?;
                self.add_key(plain)
            }
            id if id == oid::CERT_BAG => {
                let cb = bag.bag_value.decode_as::<CertBag>().map_err(der_err("CertBag"))?;
                if cb.cert_id == oid::X509_CERTIFICATE {
                    let der =
                        cb.cert_value.decode_as::<&OctetStringRef>().map_err(der_err("x509Certificate"))?;
                    let cert =
                        der::asn1::AnyRef::from_der(der.as_bytes()).map_err(der_err("x509Certificate"))?;
                    if cert.tag() != der::Tag::Sequence {
                        return Err(malformed("an x509Certificate that is not a DER SEQUENCE"));
                    }
                    self.certificates.push(der.as_bytes().to_vec());
                }
                // sdsiCertificate and other certificate types: not X.509, skipped.
                Ok(())
            }
            id if id == oid::SAFE_CONTENTS_BAG => {
                if depth >= MAX_NESTING {
                    return Err(malformed(format_args!("safeContentsBags nested over {MAX_NESTING} deep")));
                }
                let inner =
                    bag.bag_value.decode_as::<Vec<SafeBag<'_>>>().map_err(der_err("safeContentsBag"))?;
                self.bags(&inner, depth.saturating_add(1))
            }
            // crlBag, secretBag and anything newer: not what hsmkit imports.
            _ => Ok(()),
        }
    }

    fn add_key(&mut self, pkcs8: Zeroizing<Vec<u8>>) -> Result<()> {
        self.keys = self.keys.saturating_add(1);
        if self.key.is_none() {
            self.key = Some(pkcs8);
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic, clippy::unimplemented)]
mod tests {
    use der::Encode;
    use hmac::Mac;
    use sha2::Digest;

    use super::*;
    use crate::crypto::{Aes256GcmKey, KEY_LEN};
    use crate::error::ErrorKind;

    /// SHA-2 and HMAC from RustCrypto, and nothing else: the trait's default PBKDF2.
    #[derive(Debug)]
    struct Sha2Only;

    impl CryptoProvider for Sha2Only {
        fn name(&self) -> &'static str {
            "sha2-only"
        }
        fn digest(&self, hash: HashAlg, data: &[u8]) -> Vec<u8> {
            match hash {
                HashAlg::Sha1 => unimplemented!("no SHA-1 in this test provider"),
                HashAlg::Sha256 => sha2::Sha256::digest(data).to_vec(),
                HashAlg::Sha384 => sha2::Sha384::digest(data).to_vec(),
                HashAlg::Sha512 => sha2::Sha512::digest(data).to_vec(),
            }
        }
        fn hmac(&self, hash: HashAlg, key: &[u8], data: &[u8]) -> Result<Vec<u8>> {
            fn mac<M: Mac + hmac::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
                let mut m = <M as hmac::KeyInit>::new_from_slice(key).unwrap();
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            Ok(match hash {
                HashAlg::Sha1 => unimplemented!("no SHA-1 in this test provider"),
                HashAlg::Sha256 => mac::<hmac::Hmac<sha2::Sha256>>(key, data),
                HashAlg::Sha384 => mac::<hmac::Hmac<sha2::Sha384>>(key, data),
                HashAlg::Sha512 => mac::<hmac::Hmac<sha2::Sha512>>(key, data),
            })
        }
        fn hkdf_extract(&self, _: HashAlg, _: &[u8], _: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
            unimplemented!()
        }
        fn hkdf_expand(&self, _: HashAlg, _: &[u8], _: &[&[u8]], _: &mut [u8]) -> Result<()> {
            unimplemented!()
        }
        fn aes_256_gcm(&self, _: &[u8; KEY_LEN]) -> Result<Box<dyn Aes256GcmKey>> {
            unimplemented!()
        }
        fn fill_random(&self, _: &mut [u8]) -> Result<()> {
            unimplemented!()
        }
    }

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(char::is_ascii_hexdigit).collect();
        hex::decode(s).unwrap()
    }

    /// RFC 7292 appendix B.2 against OpenSSL's own implementation (its `PKCS12KDF`, which
    /// takes the BMPString password as bytes), e.g.
    /// `openssl kdf -keylen 40 -kdfopt digest:SHA256 -kdfopt hexpass:0073006d006500670000
    ///  -kdfopt hexsalt:0a58cf64530d823f -kdfopt iter:1000 -kdfopt id:1 PKCS12KDF`.
    #[test]
    fn pkcs12_kdf_matches_openssl() {
        let smeg = bmp_password("smeg");
        assert_eq!(*smeg, unhex("0073006d006500670000"));
        let salt = unhex("0a58cf64530d823f");
        for (hash, id, expected) in [
            (
                HashAlg::Sha256,
                1,
                "8C8EC99D51446B9DDD6CADE1696C9E5DB5F40DEDE874219F6654626B604F5A7C968EE4288BB1B373",
            ),
            (
                HashAlg::Sha256,
                3,
                "35AC16A454D608FB10C8D7C6338CA85818587AED0FF771FD265957E412C2C03C26AD8FA213A9FCF3",
            ),
            (
                HashAlg::Sha384,
                1,
                "ED7425F3F93B5DDFDBF37DDF4F2242D508EF6CDE54EF3DFF334AF0308AEAB5A3CA5859994C5C2F64",
            ),
            (
                HashAlg::Sha384,
                3,
                "51A59B19DE6EB4AD50CD0FE3D4683E59B7268D43D401739C9CF567555343CCDA24CE7343AD732D54",
            ),
            (
                HashAlg::Sha512,
                1,
                "0BDACBDE16198F746C3924E1E24436A9C2188B8361B2F7A579213886EF1C1EBC7451550 90DF3BA41",
            ),
            (
                HashAlg::Sha512,
                3,
                "03D741F5949E0F87720DAA7F1E6C8E77DEEFAE1C0E1C8293007301 95C2F2F3CA276408F5841E6C25",
            ),
        ] {
            let out = pkcs12_kdf(&Sha2Only, hash, &smeg, &salt, id, 1000, 40).unwrap();
            assert_eq!(*out, unhex(expected), "{hash:?} id {id}");
        }
        // The empty password as OpenSSL and pyca encode it: the terminator alone.
        let out =
            pkcs12_kdf(&Sha2Only, HashAlg::Sha256, &[0, 0], &unhex("0102030405060708"), 3, 1, 32).unwrap();
        assert_eq!(*out, unhex("89BA2BD5A6A189691B3E79A1793EAFD779301559B6558E3DB91F23BA06986060"));
        // Several output blocks (the I_j update with carries), a salt and password that
        // are not whole blocks, non-ASCII characters:
        // hexpass = ("pässwörd€" * 9) as UTF-16BE + 0000, hexsalt = bytes 0..130, iter 3, id 2.
        let password = bmp_password(&"pässwörd€".repeat(9));
        let salt: Vec<u8> = (0u8..130).collect();
        let out = pkcs12_kdf(&Sha2Only, HashAlg::Sha512, &password, &salt, 2, 3, 100).unwrap();
        assert_eq!(
            *out,
            unhex(
                "D6CF66BF9C8C92C5B4370C3C6A294CC17F6A805D2C63A4729F8AAEB7E8E5B589F2456E9DCBED1D41CBF1039EEA821559\
                 B2DD9175E19A392E11B52D6DD7DAD4FCF4788915E32A065973E71374DD7B9E6147D0DE6572632042FC9339483A5B9A49\
                 0C39953B"
            )
        );
        assert!(pkcs12_kdf(&Sha2Only, HashAlg::Sha256, &smeg, &salt, 3, 0, 32).is_err());
        assert!(pkcs12_kdf(&Sha2Only, HashAlg::Sha256, &smeg, &salt, 3, MAX_KDF_ITERATIONS + 1, 32).is_err());
    }

    #[test]
    fn bmp_password_is_utf16be_with_terminator() {
        assert_eq!(*bmp_password(""), [0, 0]);
        assert_eq!(*bmp_password("é€"), [0x00, 0xE9, 0x20, 0xAC, 0, 0]);
        // Outside the BMP: a surrogate pair, as OpenSSL's OPENSSL_utf82uni writes it.
        assert_eq!(*bmp_password("😀"), [0xD8, 0x3D, 0xDE, 0x00, 0, 0]);
    }

    /// The trait's default PBKDF2 (on `hmac`) against Python's `hashlib.pbkdf2_hmac`
    /// (OpenSSL underneath), one and several output blocks, and a partial last block.
    #[test]
    fn default_pbkdf2_matches_hashlib() {
        let mut out = [0u8; 64];
        Sha2Only.pbkdf2_hmac(HashAlg::Sha256, b"passwd", b"salt", 1, &mut out).unwrap();
        assert_eq!(
            hex::encode(out),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"
        );
        let mut out = [0u8; 40];
        Sha2Only.pbkdf2_hmac(HashAlg::Sha256, b"Password", b"NaCl", 80000, &mut out).unwrap();
        assert_eq!(
            hex::encode(out),
            "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56a1d425a122583354"
        );
        for bad in [0, crate::crypto::PBKDF2_MAX_ITERATIONS + 1] {
            let e = Sha2Only.pbkdf2_hmac(HashAlg::Sha256, b"p", b"s", bad, &mut out).unwrap_err();
            assert_eq!(e.invalid_reason(), Some(InvalidReason::Parameter));
        }
    }

    fn octets_any(bytes: &[u8]) -> AnyRef<'_> {
        AnyRef::from(OctetStringRef::new(bytes).unwrap())
    }

    /// A PFX without a MAC whose one `data` part holds `bags`.
    fn pfx_of(bags: &[SafeBag<'_>]) -> Vec<u8> {
        let safe = bags.to_vec().to_der().unwrap();
        let parts = vec![ContentInfo { content_type: oid::DATA, content: Some(octets_any(&safe)) }];
        let auth_safe = parts.to_der().unwrap();
        Pfx {
            version: 3,
            auth_safe: ContentInfo { content_type: oid::DATA, content: Some(octets_any(&auth_safe)) },
            mac_data: None,
        }
        .to_der()
        .unwrap()
    }

    const FAKE_PKCS8: &[u8] = &[0x30, 0x03, 0x02, 0x01, 0x00];
    const FAKE_CERT: &[u8] = &[0x30, 0x03, 0x02, 0x01, 0x07];

    fn key_bag() -> SafeBag<'static> {
        SafeBag {
            bag_id: oid::KEY_BAG,
            bag_value: AnyRef::from_der(FAKE_PKCS8).unwrap(),
            bag_attributes: None,
        }
    }

    fn cert_bag(cert_bag_der: &[u8]) -> SafeBag<'_> {
        SafeBag {
            bag_id: oid::CERT_BAG,
            bag_value: AnyRef::from_der(cert_bag_der).unwrap(),
            bag_attributes: None,
        }
    }

    fn cert_bag_der(cert: &[u8]) -> Vec<u8> {
        CertBag { cert_id: oid::X509_CERTIFICATE, cert_value: octets_any(cert) }.to_der().unwrap()
    }

    #[test]
    fn plain_bags_nesting_and_two_keys() {
        let cb = cert_bag_der(FAKE_CERT);
        let one = pfx_of(&[key_bag(), cert_bag(&cb)]);
        // Without a MAC, nothing vouches for the bags: refused unless the caller is this test.
        let e = decode(&Sha2Only, &one, "").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
        assert!(e.to_string().contains("without a MAC"), "{e}");
        let c = decode_with(&Sha2Only, &one, "", false).unwrap();
        assert_eq!(c.key.as_deref().map(Vec::as_slice), Some(FAKE_PKCS8));
        assert_eq!(c.certificates, vec![FAKE_CERT.to_vec()]);
        let dbg = format!("{c:?}");
        assert!(dbg.contains("redacted") && !dbg.contains("[48, 3"), "{dbg}");

        let two = pfx_of(&[key_bag(), cert_bag(&cb), key_bag()]);
        let e = decode_with(&Sha2Only, &two, "", false).unwrap_err();
        assert_eq!(e.invalid_reason(), Some(InvalidReason::Parameter), "{e}");
        assert!(e.to_string().contains("holds 2 private keys; hsmkit imports one"), "{e}");

        // safeContentsBags inside each other: read up to MAX_NESTING deep, refused past it.
        let nest = |depth: usize| {
            let mut bag = cert_bag(&cb).to_der().unwrap();
            for _ in 0..depth {
                let contents = vec![SafeBag::from_der(&bag).unwrap()].to_der().unwrap();
                bag = SafeBag {
                    bag_id: oid::SAFE_CONTENTS_BAG,
                    bag_value: AnyRef::from_der(&contents).unwrap(),
                    bag_attributes: None,
                }
                .to_der()
                .unwrap();
            }
            decode_with(&Sha2Only, &pfx_of(&[SafeBag::from_der(&bag).unwrap()]), "", false)
        };
        assert_eq!(nest(0).unwrap().certificates.len(), 1);
        assert_eq!(nest(MAX_NESTING).unwrap().certificates.len(), 1);
        let e = nest(MAX_NESTING + 1).unwrap_err();
        assert_eq!(e.invalid_reason(), Some(InvalidReason::Malformed), "{e}");
    }

    #[test]
    fn malformed_and_unsupported() {
        let cb = cert_bag_der(FAKE_CERT);
        let good = pfx_of(&[cert_bag(&cb)]);
        for bad in [&b""[..], b"garbage", &good[..good.len() - 1], &[0x30, 0x80, 0, 0]] {
            let e = decode_with(&Sha2Only, bad, "pw", false).unwrap_err();
            assert_eq!(e.invalid_reason(), Some(InvalidReason::Malformed), "{e}");
        }
        let mut v2 = good.clone();
        // version INTEGER 3 is the first field: 30 len 02 01 03.
        let at = v2.windows(3).position(|w| w == [0x02, 0x01, 0x03]).unwrap();
        v2[at + 2] = 2;
        assert_eq!(
            decode_with(&Sha2Only, &v2, "", false).unwrap_err().invalid_reason(),
            Some(InvalidReason::Malformed)
        );

        // encryptedData under pbeWithSHAAnd3-KeyTripleDES-CBC: named, unsupported.
        let legacy = spki::AlgorithmIdentifierRef {
            oid: oid::LEGACY[2].0,
            parameters: Some(AnyRef::from_der(&[0x30, 0x03, 0x02, 0x01, 0x01]).unwrap()),
        };
        let ed = EncryptedData {
            version: 0,
            encrypted_content_info: EncryptedContentInfo {
                content_type: oid::DATA,
                algorithm: legacy,
                encrypted_content: Some(OctetStringRef::new(&[0u8; 16]).unwrap()),
            },
            unprotected_attrs: None,
        }
        .to_der()
        .unwrap();
        let parts = vec![ContentInfo {
            content_type: oid::ENCRYPTED_DATA,
            content: Some(AnyRef::from_der(&ed).unwrap()),
        }];
        let auth_safe = parts.to_der().unwrap();
        let file = Pfx {
            version: 3,
            auth_safe: ContentInfo { content_type: oid::DATA, content: Some(octets_any(&auth_safe)) },
            mac_data: None,
        }
        .to_der()
        .unwrap();
        let e = decode_with(&Sha2Only, &file, "pw", false).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
        assert!(e.to_string().contains("pbeWithSHAAnd3-KeyTripleDES-CBC (legacy PKCS#12 encryption)"), "{e}");
    }
}
