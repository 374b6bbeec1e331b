//! The envelope header: encoding and a bounded parser (docs/envelope-format.md).

use crate::error::InvalidReason;
use std::collections::BTreeMap;
use std::io::Read;

use crate::algorithm::{HashAlg, KeyWrapAlgorithm};
use crate::error::{Error, Result};
use crate::store::{MAX_NAME_LEN, validate_name};

/// The first four bytes of every envelope.
pub const MAGIC: [u8; 4] = *b"HKEV";
/// The format version this build reads and writes.
pub const FORMAT_VERSION: u8 = 1;
/// Suite 1's byte. Envelopes now have several suites: see [`Suite`].
#[deprecated(note = "an envelope has one of several suites: use `Suite` (`EnvelopeHeader::suite`)")]
pub const SUITE: u8 = 1;

/// The algorithms of an envelope, named by the header's suite byte
/// (docs/envelope-format.md). Every suite this build knows is read; sealers write
/// [`Suite::DEFAULT`] unless told otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Suite {
    /// Suite 1: AES-256-GCM body, HKDF-SHA-512 key schedule, 256-bit commitment. The
    /// first suite; every hsmkit reads it.
    Aes256GcmHkdfSha512,
    /// Suite 2: as suite 1 with an HKDF-SHA-256 key schedule, which costs a fifth of
    /// SHA-512's on CPUs with SHA extensions (the schedule was half of a small envelope's
    /// cost). The default.
    Aes256GcmHkdfSha256,
}

impl Suite {
    /// What sealers write unless told otherwise.
    pub const DEFAULT: Suite = Suite::Aes256GcmHkdfSha256;

    /// The suite byte.
    pub const fn id(self) -> u8 {
        match self {
            Suite::Aes256GcmHkdfSha512 => 1,
            Suite::Aes256GcmHkdfSha256 => 2,
        }
    }

    /// The suite with this byte, if this build knows it.
    pub const fn from_id(id: u8) -> Option<Suite> {
        match id {
            1 => Some(Suite::Aes256GcmHkdfSha512),
            2 => Some(Suite::Aes256GcmHkdfSha256),
            _ => None,
        }
    }

    /// The key schedule's hash.
    pub(crate) const fn kdf_hash(self) -> HashAlg {
        match self {
            Suite::Aes256GcmHkdfSha512 => HashAlg::Sha512,
            Suite::Aes256GcmHkdfSha256 => HashAlg::Sha256,
        }
    }
}

/// A suite chosen by a caller (CLI, Python, C): an unknown byte is an invalid parameter.
impl TryFrom<u8> for Suite {
    type Error = Error;

    fn try_from(id: u8) -> Result<Suite> {
        Suite::from_id(id).ok_or_else(|| {
            Error::invalid(InvalidReason::Parameter, format!("envelope suite {id} is not known (1 or 2)"))
        })
    }
}

impl std::fmt::Display for Suite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hash = match self {
            Suite::Aes256GcmHkdfSha512 => "SHA-512",
            Suite::Aes256GcmHkdfSha256 => "SHA-256",
        };
        write!(f, "suite {} (AES-256-GCM, HKDF-{hash}, committing)", self.id())
    }
}
/// Smallest chunk size accepted.
pub const MIN_CHUNK_SIZE: u32 = 256;
/// Largest chunk size accepted (16 MiB).
pub const MAX_CHUNK_SIZE: u32 = 1 << 24;
/// The chunk size used unless the caller sets one (64 KiB).
pub const DEFAULT_CHUNK_SIZE: u32 = 64 * 1024;
/// Most encryption-context entries.
pub const MAX_CONTEXT_ENTRIES: usize = 64;
/// Longest encryption-context key, in bytes.
pub const MAX_CONTEXT_KEY_LEN: usize = 256;
/// Longest encryption-context value, in bytes.
pub const MAX_CONTEXT_VALUE_LEN: usize = 4096;
/// Most bytes of keys and values in one encryption context.
pub const MAX_CONTEXT_BYTES: usize = 16 * 1024;
/// Most recipients in one envelope.
pub const MAX_RECIPIENTS: usize = 16;
/// Longest wrapped data key (RSA-8192).
pub const MAX_WRAPPED_LEN: usize = 1024;

pub(crate) const MESSAGE_ID_LEN: usize = 32;
pub(crate) const COMMITMENT_LEN: usize = 32;
pub(crate) const TAG_LEN: usize = 16;

/// Caller-supplied associated data: stored in the header in clear, authenticated, and
/// required, identical, to open. A `BTreeMap` is already in the canonical (byte) order.
pub type EncryptionContext = BTreeMap<String, String>;

/// One recipient entry: which KEK (name and version) wrapped the data key, and how.
#[derive(Clone, PartialEq, Eq)]
pub struct RecipientInfo {
    /// The KEK's name.
    pub name: String,
    /// The KEK's version.
    pub version: u32,
    /// The wrap algorithm.
    pub algorithm: KeyWrapAlgorithm,
    pub(crate) wrapped: Vec<u8>,
}

impl RecipientInfo {
    /// The wrapped data key (not secret: only the KEK opens it).
    pub fn wrapped_key(&self) -> &[u8] {
        &self.wrapped
    }
}

impl std::fmt::Debug for RecipientInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecipientInfo")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("algorithm", &self.algorithm)
            .field("wrapped_len", &self.wrapped.len())
            .finish()
    }
}

/// A parsed envelope header. Parsing checks the format and its bounds only: nothing here
/// is authenticated until an opener has unwrapped the data key and verified the tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvelopeHeader {
    pub(crate) suite: Suite,
    pub(crate) message_id: [u8; MESSAGE_ID_LEN],
    pub(crate) chunk_size: u32,
    pub(crate) context: EncryptionContext,
    pub(crate) recipients: Vec<RecipientInfo>,
    pub(crate) commitment: [u8; COMMITMENT_LEN],
    pub(crate) tag: [u8; TAG_LEN],
}

impl EnvelopeHeader {
    /// Parses the header at the start of `envelope` (for inspection; opening parses it
    /// too). Errors are [`Error::InvalidInput`] saying what is wrong.
    pub fn parse(envelope: &[u8]) -> Result<Self> {
        let mut r = envelope;
        Self::read_from(&mut r)
    }

    /// Reads exactly one header from `r`, leaving `r` at the first body byte.
    pub fn read_from<R: Read + ?Sized>(r: &mut R) -> Result<Self> {
        // Field by field, so that a short input still gets the most precise error.
        if read_array::<_, 4>(r)? != MAGIC {
            return Err(Error::invalid(InvalidReason::Malformed, "not an hsmkit envelope (bad magic)"));
        }
        let [version] = read_array::<_, 1>(r)?;
        if version != FORMAT_VERSION {
            return Err(Error::invalid(
                InvalidReason::Malformed,
                format!("envelope format version {version} is not supported"),
            ));
        }
        let [suite] = read_array::<_, 1>(r)?;
        let suite = Suite::from_id(suite).ok_or_else(|| {
            Error::invalid(InvalidReason::Malformed, format!("envelope suite {suite} is not supported"))
        })?;
        let message_id: [u8; MESSAGE_ID_LEN] = read_array(r)?;
        let chunk_size = u32::from_be_bytes(read_array(r)?);
        check_chunk_size(chunk_size)?;

        let count = usize::from(u16::from_be_bytes(read_array(r)?));
        if count > MAX_CONTEXT_ENTRIES {
            return Err(Error::invalid(
                InvalidReason::Malformed,
                format!("envelope has {count} context entries (at most {MAX_CONTEXT_ENTRIES})"),
            ));
        }
        let mut context = EncryptionContext::new();
        let mut total = 0usize;
        let mut last: Option<String> = None;
        for _ in 0..count {
            let key = read_string(r, 1, MAX_CONTEXT_KEY_LEN, "context key")?;
            let value = read_string(r, 0, MAX_CONTEXT_VALUE_LEN, "context value")?;
            total = total.saturating_add(key.len()).saturating_add(value.len());
            if total > MAX_CONTEXT_BYTES {
                return Err(Error::invalid(InvalidReason::Malformed, "envelope context is too large"));
            }
            if last.as_ref().is_some_and(|l| l.as_bytes() >= key.as_bytes()) {
                return Err(Error::invalid(
                    InvalidReason::Malformed,
                    "envelope context is not in canonical order",
                ));
            }
            last = Some(key.clone());
            context.insert(key, value);
        }

        let [count] = read_array::<_, 1>(r)?;
        let count = usize::from(count);
        if count == 0 || count > MAX_RECIPIENTS {
            return Err(Error::invalid(
                InvalidReason::Malformed,
                format!("envelope has {count} recipients (1 to {MAX_RECIPIENTS})"),
            ));
        }
        let mut recipients: Vec<RecipientInfo> = Vec::with_capacity(count);
        for _ in 0..count {
            let [name_len] = read_array::<_, 1>(r)?;
            let name = read_str_body(r, usize::from(name_len), 1, MAX_NAME_LEN, "recipient name")?;
            validate_name(&name)?;
            let version = u32::from_be_bytes(read_array(r)?);
            if version == 0 {
                return Err(Error::invalid(InvalidReason::Malformed, "recipient version 0"));
            }
            let [alg] = read_array::<_, 1>(r)?;
            let algorithm = wrap_algorithm(alg)?;
            let len = usize::from(u16::from_be_bytes(read_array(r)?));
            if len == 0 || len > MAX_WRAPPED_LEN {
                return Err(Error::invalid(InvalidReason::Malformed, format!("wrapped key of {len} bytes")));
            }
            let wrapped = read_vec(r, len)?;
            if recipients.iter().any(|o| o.name == name && o.version == version) {
                return Err(Error::invalid(
                    InvalidReason::Malformed,
                    format!("recipient {name} v{version} appears twice"),
                ));
            }
            recipients.push(RecipientInfo { name, version, algorithm, wrapped });
        }
        let commitment = read_array(r)?;
        let tag = read_array(r)?;
        Ok(EnvelopeHeader { suite, message_id, chunk_size, context, recipients, commitment, tag })
    }

    /// The envelope's suite: its key schedule and ciphers.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// The envelope's random 32-byte id.
    pub fn message_id(&self) -> &[u8; 32] {
        &self.message_id
    }

    /// Plaintext bytes per chunk.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// The encryption context the envelope is bound to.
    pub fn context(&self) -> &EncryptionContext {
        &self.context
    }

    /// The recipients: each KEK (name, version) that can open the envelope.
    pub fn recipients(&self) -> &[RecipientInfo] {
        &self.recipients
    }

    /// The header's length in bytes, where the body starts.
    pub fn encoded_len(&self) -> usize {
        header_len(&self.context, self.recipients.iter().map(|r| (r.name.len(), r.wrapped.len())))
    }

    /// Every header byte the tag covers: magic through commitment. Built from the parsed
    /// fields; the parser accepts only canonical encodings, so this equals the input.
    pub(crate) fn authenticated_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(&MAGIC);
        out.push(FORMAT_VERSION);
        out.push(self.suite.id());
        out.extend_from_slice(&self.message_id);
        out.extend_from_slice(&self.chunk_size.to_be_bytes());
        put_u16(&mut out, self.context.len());
        for (k, v) in &self.context {
            put_u16(&mut out, k.len());
            out.extend_from_slice(k.as_bytes());
            put_u16(&mut out, v.len());
            out.extend_from_slice(v.as_bytes());
        }
        out.push(u8::try_from(self.recipients.len()).unwrap_or(u8::MAX));
        for r in &self.recipients {
            out.push(u8::try_from(r.name.len()).unwrap_or(u8::MAX));
            out.extend_from_slice(r.name.as_bytes());
            out.extend_from_slice(&r.version.to_be_bytes());
            out.push(wrap_id(r.algorithm));
            put_u16(&mut out, r.wrapped.len());
            out.extend_from_slice(&r.wrapped);
        }
        out.extend_from_slice(&self.commitment);
        out
    }

    /// The whole header.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = self.authenticated_bytes();
        out.extend_from_slice(&self.tag);
        out
    }
}

/// The length of a header with this context and these recipients (name and wrapped-key
/// lengths), counted without encoding it: sealers size buffers with it on every call.
pub(crate) fn header_len(
    context: &EncryptionContext,
    recipients: impl IntoIterator<Item = (usize, usize)>,
) -> usize {
    // magic, version, suite, message id, chunk size; context count; recipient count.
    let fixed = MAGIC.len() + 2 + MESSAGE_ID_LEN + 4 + 2 + 1;
    let context = context
        .iter()
        .fold(0usize, |n, (k, v)| n.saturating_add(4).saturating_add(k.len()).saturating_add(v.len()));
    // name length, name, version, wrap algorithm, wrapped length, wrapped key.
    let recipients = recipients
        .into_iter()
        .fold(0usize, |n, (name, wrapped)| n.saturating_add(8).saturating_add(name).saturating_add(wrapped));
    fixed.saturating_add(context).saturating_add(recipients).saturating_add(COMMITMENT_LEN + TAG_LEN)
}

// Lengths were checked against bounds far below u16::MAX before a header is built.
fn put_u16(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u16::try_from(n).unwrap_or(u16::MAX).to_be_bytes());
}

/// Checks a context against the bounds before it goes into a header.
pub(crate) fn check_context(context: &EncryptionContext) -> Result<()> {
    if context.len() > MAX_CONTEXT_ENTRIES {
        return Err(Error::invalid(
            InvalidReason::Parameter,
            format!("at most {MAX_CONTEXT_ENTRIES} encryption-context entries"),
        ));
    }
    let mut total = 0usize;
    for (k, v) in context {
        if k.is_empty() || k.len() > MAX_CONTEXT_KEY_LEN {
            return Err(Error::invalid(
                InvalidReason::Parameter,
                format!("encryption-context keys are 1 to {MAX_CONTEXT_KEY_LEN} bytes"),
            ));
        }
        if v.len() > MAX_CONTEXT_VALUE_LEN {
            return Err(Error::invalid(
                InvalidReason::Parameter,
                format!(
                    "encryption-context value for '{}' is over {MAX_CONTEXT_VALUE_LEN} bytes",
                    k.escape_debug()
                ),
            ));
        }
        total = total.saturating_add(k.len()).saturating_add(v.len());
    }
    if total > MAX_CONTEXT_BYTES {
        return Err(Error::invalid(
            InvalidReason::Parameter,
            format!("encryption context is over {MAX_CONTEXT_BYTES} bytes"),
        ));
    }
    Ok(())
}

pub(crate) fn check_chunk_size(n: u32) -> Result<()> {
    if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&n) {
        return Err(Error::invalid(
            InvalidReason::Parameter,
            format!("chunk size {n} is outside {MIN_CHUNK_SIZE}..={MAX_CHUNK_SIZE}"),
        ));
    }
    Ok(())
}

/// The format's number for a wrap algorithm.
pub(crate) fn wrap_id(alg: KeyWrapAlgorithm) -> u8 {
    use KeyWrapAlgorithm::*;
    match alg {
        A128Kw => 0x01,
        A192Kw => 0x02,
        A256Kw => 0x03,
        A128Kwp => 0x04,
        A192Kwp => 0x05,
        A256Kwp => 0x06,
        RsaOaep => 0x11,
        RsaOaep256 => 0x12,
    }
}

fn wrap_algorithm(id: u8) -> Result<KeyWrapAlgorithm> {
    use KeyWrapAlgorithm::*;
    Ok(match id {
        0x01 => A128Kw,
        0x02 => A192Kw,
        0x03 => A256Kw,
        0x04 => A128Kwp,
        0x05 => A192Kwp,
        0x06 => A256Kwp,
        0x11 => RsaOaep,
        0x12 => RsaOaep256,
        _ => {
            return Err(Error::invalid(
                InvalidReason::Malformed,
                format!("unknown wrap algorithm 0x{id:02x}"),
            ));
        }
    })
}

fn truncated() -> Error {
    Error::invalid(InvalidReason::Malformed, "envelope header is truncated")
}

fn read_into<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> Result<()> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            truncated()
        } else {
            Error::io("reading the envelope", &e)
        }
    })
}

fn read_array<R: Read + ?Sized, const N: usize>(r: &mut R) -> Result<[u8; N]> {
    let mut buf = [0u8; N];
    read_into(r, &mut buf)?;
    Ok(buf)
}

/// Reads `len` bytes; `len` is always bounded by the caller (at most 4 KiB here).
fn read_vec<R: Read + ?Sized>(r: &mut R, len: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    read_into(r, &mut buf)?;
    Ok(buf)
}

fn read_string<R: Read + ?Sized>(r: &mut R, min: usize, max: usize, what: &str) -> Result<String> {
    let len = usize::from(u16::from_be_bytes(read_array(r)?));
    read_str_body(r, len, min, max, what)
}

fn read_str_body<R: Read + ?Sized>(
    r: &mut R,
    len: usize,
    min: usize,
    max: usize,
    what: &str,
) -> Result<String> {
    if len < min || len > max {
        return Err(Error::invalid(
            InvalidReason::Malformed,
            format!("{what} of {len} bytes ({min} to {max})"),
        ));
    }
    String::from_utf8(read_vec(r, len)?)
        .map_err(|_| Error::invalid(InvalidReason::Malformed, format!("{what} is not UTF-8")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    const FIXED_LEN: usize = 42;

    fn sample() -> EnvelopeHeader {
        EnvelopeHeader {
            suite: Suite::DEFAULT,
            message_id: [7; 32],
            chunk_size: DEFAULT_CHUNK_SIZE,
            context: [("a".to_string(), "1".to_string()), ("b".to_string(), String::new())].into(),
            recipients: vec![RecipientInfo {
                name: "kek".into(),
                version: 3,
                algorithm: KeyWrapAlgorithm::A256Kw,
                wrapped: vec![9; 40],
            }],
            commitment: [1; 32],
            tag: [2; 16],
        }
    }

    #[test]
    fn encode_parse_round_trip() {
        let h = sample();
        let mut bytes = h.encode();
        assert_eq!(bytes.len(), h.encoded_len());
        bytes.extend_from_slice(b"body");
        assert_eq!(EnvelopeHeader::parse(&bytes).unwrap(), h);
        // Each suite byte is read back as its suite.
        for suite in [Suite::Aes256GcmHkdfSha512, Suite::Aes256GcmHkdfSha256] {
            let h = EnvelopeHeader { suite, ..sample() };
            let bytes = h.encode();
            assert_eq!(bytes[5], suite.id());
            assert_eq!(Suite::from_id(suite.id()), Some(suite));
            assert_eq!(EnvelopeHeader::parse(&bytes).unwrap(), h);
        }
        assert_eq!(Suite::from_id(0), None);
        assert_eq!(Suite::from_id(3), None);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample().encode();
        for n in 0..bytes.len() {
            assert!(EnvelopeHeader::parse(&bytes[..n]).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn non_canonical_context_order_is_rejected() {
        let mut bytes = sample().encode();
        // Swap the two entries' keys: "a" <-> "b" makes the order descending.
        let i = FIXED_LEN + 2 + 2;
        bytes[i] = b'b';
        bytes[i + 1 + 2 + 1 + 2] = b'a';
        let e = EnvelopeHeader::parse(&bytes).unwrap_err();
        assert!(e.to_string().contains("canonical"), "{e}");
    }
}
