//! Sealing: one-shot, streaming writer, reader-to-writer and file to file.

use crate::error::{InvalidReason, UnsupportedReason};
use std::fmt;
use std::io::{Read, Write};
use std::path::Path;

use zeroize::Zeroizing;

use super::cache::{CacheLimits, DataKeyCache};
use super::format::{
    DEFAULT_CHUNK_SIZE, EncryptionContext, EnvelopeHeader, MAX_RECIPIENTS, MESSAGE_ID_LEN, RecipientInfo,
    Suite, TAG_LEN, check_chunk_size, check_context, header_len,
};
use super::keys::{DEK_LEN, Dek, MessageKeys, chunk_nonce};
use super::{FILE_IO_BUFFER, write_atomically};
use crate::algorithm::{Algorithm, KeyWrapAlgorithm};
use crate::attributes::KeyOp;
use crate::error::{Error, Result};
use crate::key::Key;
use crate::secret::SecretVec;
use crate::spec::KeySpec;

/// A KEK and the algorithm that wraps the data key with it.
#[derive(Clone, Debug)]
pub struct Recipient {
    key: Key,
    algorithm: KeyWrapAlgorithm,
}

impl Recipient {
    /// `key` with its default wrap algorithm: A*N*KW for an AES-*N* key; RSA-OAEP-256 for
    /// an RSA key, or RSA-OAEP (SHA-1) where the backend has only that (SoftHSM2). EC keys
    /// cannot wrap.
    pub fn new(key: Key) -> Result<Self> {
        let algorithm = match key.spec() {
            KeySpec::Aes(s) => match s.bits() {
                128 => KeyWrapAlgorithm::A128Kw,
                192 => KeyWrapAlgorithm::A192Kw,
                _ => KeyWrapAlgorithm::A256Kw,
            },
            KeySpec::Rsa { .. } => {
                let sha256 = KeyWrapAlgorithm::RsaOaep256;
                // Wrapping is public (software); what matters is that the KEK can unwrap.
                if key.supports(KeyOp::UnwrapKey, Algorithm::KeyWrap(sha256)) {
                    sha256
                } else {
                    KeyWrapAlgorithm::RsaOaep
                }
            }
            other @ (KeySpec::Ec(_) | KeySpec::Ed25519 | KeySpec::Hmac { .. }) => {
                return Err(Error::invalid(
                    InvalidReason::KeyMismatch,
                    format!("key '{}' ({other}) cannot wrap a data key: use an AES or RSA key", key.name()),
                ));
            }
        };
        Self::with_algorithm(key, algorithm)
    }

    /// `key` with a chosen wrap algorithm.
    pub fn with_algorithm(key: Key, algorithm: KeyWrapAlgorithm) -> Result<Self> {
        if !algorithm.fits(key.spec()) {
            return Err(Error::invalid(
                InvalidReason::KeyMismatch,
                format!("algorithm {algorithm} does not fit key '{}' ({})", key.name(), key.spec()),
            ));
        }
        // An envelope its recipient's backend cannot unwrap could never be opened there:
        // refuse to write it (wrapping itself may be a public operation that would work).
        key.check_supported(KeyOp::UnwrapKey, Algorithm::KeyWrap(algorithm)).map_err(|e| {
            Error::unsupported(UnsupportedReason::Algorithm, format!(
                "sealing to key '{}': its backend cannot unwrap {algorithm}, so the envelope could never be \
                 opened ({e})",
                key.name()
            ))
        })?;
        Ok(Recipient { key, algorithm })
    }

    /// The KEK.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// The wrap algorithm.
    pub fn algorithm(&self) -> KeyWrapAlgorithm {
        self.algorithm
    }

    pub(crate) fn wrap(&self, dek: &Dek) -> Result<RecipientInfo> {
        let wrapped = self.key.wrap_key(self.algorithm, dek.0.as_slice())?;
        Ok(RecipientInfo {
            name: self.key.name().to_string(),
            version: self.key.version(),
            algorithm: self.algorithm,
            wrapped,
        })
    }
}

pub(crate) fn check_recipients<'a>(list: impl IntoIterator<Item = (&'a str, u32)>) -> Result<()> {
    let list: Vec<(&str, u32)> = list.into_iter().collect();
    if list.is_empty() || list.len() > MAX_RECIPIENTS {
        return Err(Error::invalid(
            InvalidReason::Parameter,
            format!("an envelope has 1 to {MAX_RECIPIENTS} recipients"),
        ));
    }
    for (i, a) in list.iter().enumerate() {
        if list.iter().skip(i + 1).any(|b| a == b) {
            return Err(Error::invalid(
                InvalidReason::Parameter,
                format!("recipient {} v{} is named twice", a.0, a.1),
            ));
        }
    }
    Ok(())
}

/// Seals data for one or more recipients. Build one, then seal many messages with it;
/// clones share the data-key cache, if any.
///
/// ```
/// # fn main() -> hsmkit::Result<()> {
/// use hsmkit::envelope::{Opener, Sealer};
/// use hsmkit::{KeyAttributes, KeySpec, Store};
///
/// let store = Store::new(hsmkit_soft::SoftBackend::new());
/// let kek = store.create_key("kek", KeySpec::AES_256, KeyAttributes::default())?;
/// let context = [("tenant".to_string(), "a".to_string())].into();
/// let sealer = Sealer::for_key(kek)?.with_context(context)?;
/// let envelope = sealer.seal(b"attack at dawn")?;
///
/// let opener = Opener::new(&store).with_context([("tenant".into(), "a".into())].into());
/// assert_eq!(&opener.open(&envelope)?[..], b"attack at dawn");
/// assert!(Opener::new(&store).open(&envelope).is_err()); // context missing
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Sealer {
    recipients: Vec<Recipient>,
    context: EncryptionContext,
    chunk_size: u32,
    suite: Suite,
    cache: Option<DataKeyCache>,
    crypto: &'static dyn crate::crypto::CryptoProvider,
}

impl Sealer {
    /// A sealer for these recipients (1 to 16, distinct name and version).
    pub fn new(recipients: impl IntoIterator<Item = Recipient>) -> Result<Self> {
        let recipients: Vec<Recipient> = recipients.into_iter().collect();
        check_recipients(recipients.iter().map(|r| (r.key.name(), r.key.version())))?;
        // The first recipient's store computes the envelope (every provider gives the same
        // bytes); check_recipients refused an empty list.
        let crypto = recipients.first().map(|r| r.key.crypto()).ok_or_else(|| {
            Error::invalid(InvalidReason::Parameter, "an envelope needs at least one recipient")
        })?;
        Ok(Sealer {
            crypto,
            recipients,
            context: EncryptionContext::new(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            suite: Suite::DEFAULT,
            cache: None,
        })
    }

    /// A sealer for one KEK with its default wrap algorithm.
    pub fn for_key(kek: Key) -> Result<Self> {
        Self::new([Recipient::new(kek)?])
    }

    /// Binds every envelope to this encryption context (stored in clear, authenticated,
    /// required to open).
    pub fn with_context(mut self, context: EncryptionContext) -> Result<Self> {
        check_context(&context)?;
        self.context = context;
        Ok(self)
    }

    /// Plaintext bytes per chunk (256 B to 16 MiB; default 64 KiB). Memory use while
    /// streaming is about twice this.
    pub fn with_chunk_size(mut self, chunk_size: u32) -> Result<Self> {
        check_chunk_size(chunk_size)?;
        self.chunk_size = chunk_size;
        Ok(self)
    }

    /// Writes envelopes of this suite (default [`Suite::DEFAULT`]); for readers that
    /// know only an older one (hsmkit before suite 2 reads only suite 1).
    pub fn with_suite(mut self, suite: Suite) -> Self {
        self.suite = suite;
        self
    }

    /// The suite this sealer writes.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// Reuses one data key for many one-shot [`Sealer::seal`] calls within `limits`, so
    /// that sealing small messages does not wait on the backend each time. Every envelope
    /// still gets its own message id, and so its own body and header keys. Streaming
    /// seals always draw a fresh data key. A cached data key stays in use until a limit
    /// is reached even if a KEK is disabled meanwhile, as with the AWS Encryption SDK.
    pub fn with_data_key_cache(mut self, limits: CacheLimits) -> Self {
        self.cache = Some(DataKeyCache::new(limits));
        self
    }

    /// The recipients.
    pub fn recipients(&self) -> &[Recipient] {
        &self.recipients
    }

    /// The length of the envelope [`seal`](Self::seal) makes of `plaintext_len` bytes,
    /// without wrapping anything (for callers that size a buffer first, as the C ABI's
    /// two-call pattern does). It counts each recipient's wrapped key at the backend's
    /// bound (`Key::max_wrapped_len`), which AES key wrap and RSA-OAEP always meet: exact
    /// for those, an upper bound in general.
    pub fn sealed_len(&self, plaintext_len: usize) -> Result<usize> {
        let recipients = self
            .recipients
            .iter()
            .map(|r| Ok((r.key.name().len(), r.key.max_wrapped_len(r.algorithm, DEK_LEN)?)))
            .collect::<Result<Vec<_>>>()?;
        self.envelope_len(header_len(&self.context, recipients), plaintext_len)
    }

    /// Seals `plaintext` into a new envelope.
    pub fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>> {
        let (dek, recipients, message_id) = self.one_shot_materials(plaintext.len())?;
        self.seal_with(&dek, message_id, recipients, plaintext)
    }

    /// A one-shot seal's data key (cached, if the sealer caches), recipient entries and a
    /// fresh message id.
    fn one_shot_materials(&self, len: usize) -> Result<(Dek, Vec<RecipientInfo>, [u8; MESSAGE_ID_LEN])> {
        let len = u64::try_from(len).unwrap_or(u64::MAX);
        let (dek, recipients) = match &self.cache {
            Some(cache) => cache.materials(len, || self.fresh_materials())?,
            None => self.fresh_materials()?,
        };
        let mut message_id = [0u8; MESSAGE_ID_LEN];
        self.crypto.fill_random(&mut message_id)?;
        Ok((dek, recipients, message_id))
    }

    pub(crate) fn seal_with(
        &self,
        dek: &Dek,
        message_id: [u8; MESSAGE_ID_LEN],
        recipients: Vec<RecipientInfo>,
        plaintext: &[u8],
    ) -> Result<Vec<u8>> {
        let (keys, header) = self.header_for(dek, message_id, recipients)?;
        let head = header.encode();
        let total = self.envelope_len(head.len(), plaintext.len())?;
        // Allocated once at its final size, zeroed because safe Rust cannot hand the
        // engine uninitialised memory (free for fresh pages from the kernel; a memset for
        // reused ones), then each chunk encrypted straight into it. Callers that reuse a
        // buffer use `seal_into` and skip the zeroing.
        let mut out = vec![0u8; total];
        self.write_envelope(&keys, &head, plaintext, &mut out)?;
        Ok(out)
    }

    /// Seals `plaintext` into `out`, which must hold at least
    /// [`sealed_len`](Self::sealed_len) bytes; returns the envelope's length (the first
    /// bytes of `out`; the rest is left as it was). For callers that own the output's
    /// memory (the Python binding writes straight into a `bytes` object; a caller that
    /// reuses one buffer pays no allocation and no zeroing). Uses the data-key cache, like
    /// [`seal`](Self::seal).
    pub fn seal_into(&self, plaintext: &[u8], out: &mut [u8]) -> Result<usize> {
        // Checked before any key is wrapped (or a cached one counted).
        let bound = self.sealed_len(plaintext.len())?;
        if out.len() < bound {
            return Err(Error::invalid(
                InvalidReason::Length,
                format!("the output needs {bound} bytes, not {}", out.len()),
            ));
        }
        let (dek, recipients, message_id) = self.one_shot_materials(plaintext.len())?;
        let (keys, header) = self.header_for(&dek, message_id, recipients)?;
        let head = header.encode();
        let total = self.envelope_len(head.len(), plaintext.len())?;
        let have = out.len();
        let out = out.get_mut(..total).ok_or_else(|| {
            Error::invalid(InvalidReason::Length, format!("the output needs {total} bytes, not {have}"))
        })?;
        self.write_envelope(&keys, &head, plaintext, out)?;
        Ok(total)
    }

    /// The length of an envelope with this header length and plaintext length.
    fn envelope_len(&self, head_len: usize, plaintext_len: usize) -> Result<usize> {
        let chunks = plaintext_len.div_ceil(self.chunk_usize()).max(1);
        head_len
            .checked_add(plaintext_len)
            .and_then(|t| t.checked_add(chunks.checked_mul(TAG_LEN)?))
            .ok_or_else(|| Error::invalid(InvalidReason::Length, "plaintext too large"))
    }

    /// Writes the header and then each chunk, encrypted by the engine straight from
    /// `plaintext` into `out` (exactly [`envelope_len`](Self::envelope_len) bytes).
    fn write_envelope(
        &self,
        keys: &MessageKeys,
        head: &[u8],
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<()> {
        let chunk = self.chunk_usize();
        let n = plaintext.len().div_ceil(chunk).max(1);
        let last_index = u32::try_from(n - 1).map_err(|_| {
            Error::invalid(InvalidReason::Length, "plaintext too large for one envelope (2^32 chunks)")
        })?;
        let too_small = || Error::invalid(InvalidReason::Length, "output shorter than the envelope");
        let (out_head, mut rest) = out.split_at_mut_checked(head.len()).ok_or_else(too_small)?;
        out_head.copy_from_slice(head);
        let mut pieces = plaintext.chunks(chunk);
        for index in 0..=last_index {
            let piece = pieces.next().unwrap_or_default();
            let (sealed, after) = rest.split_at_mut_checked(piece.len() + TAG_LEN).ok_or_else(too_small)?;
            // Nothing of the plaintext reaches `out` unencrypted, even on failure.
            keys.body.seal_to(&chunk_nonce(index, index == last_index), b"", piece, sealed)?;
            rest = after;
        }
        Ok(())
    }

    /// A writer that seals everything written to it into `output`; call
    /// [`SealWriter::finish`] at the end. The header is written at once.
    pub fn writer<W: Write>(&self, output: W) -> Result<SealWriter<W>> {
        let (dek, recipients) = self.fresh_materials()?;
        let mut message_id = [0u8; MESSAGE_ID_LEN];
        self.crypto.fill_random(&mut message_id)?;
        self.writer_with(output, &dek, message_id, recipients)
    }

    fn header_for(
        &self,
        dek: &Dek,
        message_id: [u8; MESSAGE_ID_LEN],
        recipients: Vec<RecipientInfo>,
    ) -> Result<(MessageKeys, EnvelopeHeader)> {
        let keys = MessageKeys::derive(self.crypto, self.suite, dek, &message_id)?;
        let mut header = EnvelopeHeader {
            suite: self.suite,
            message_id,
            chunk_size: self.chunk_size,
            context: self.context.clone(),
            recipients,
            commitment: keys.commitment,
            tag: [0; TAG_LEN],
        };
        header.tag = keys.header_tag(&header.authenticated_bytes())?;
        Ok((keys, header))
    }

    fn writer_with<W: Write>(
        &self,
        mut output: W,
        dek: &Dek,
        message_id: [u8; MESSAGE_ID_LEN],
        recipients: Vec<RecipientInfo>,
    ) -> Result<SealWriter<W>> {
        let (keys, header) = self.header_for(dek, message_id, recipients)?;
        output.write_all(&header.encode()).map_err(|e| Error::io("writing the envelope", &e))?;
        Ok(SealWriter {
            output: Some(output),
            keys,
            buf: SecretVec::new(),
            filled: 0,
            chunk_size: self.chunk_usize(),
            index: 0,
            plaintext_len: 0,
            failed: false,
        })
    }

    /// Seals everything `input` yields into `output`, in constant memory. Returns the
    /// number of plaintext bytes. On error, `output` holds a partial envelope that will
    /// not open.
    pub fn seal_stream<R: Read, W: Write>(&self, input: R, output: W) -> Result<u64> {
        let mut w = self.writer(output)?;
        w.read_all_from(input)?;
        let n = w.plaintext_len;
        w.finish()?;
        Ok(n)
    }

    /// Seals the file `src` into `dst`, streaming. `dst` is written to a temporary file
    /// beside it and renamed into place on success, so a failure leaves no `dst` (an
    /// existing `dst` is replaced only on success).
    pub fn seal_file(&self, src: &Path, dst: &Path) -> Result<u64> {
        let input =
            std::fs::File::open(src).map_err(|e| Error::io(&format!("opening {}", src.display()), &e))?;
        // Read straight into the wiped chunk buffer (a `BufReader` would leave plaintext in
        // a buffer freed unwiped); the ciphertext goes out in 1 MiB writes.
        write_atomically(dst, |out| {
            let mut out = std::io::BufWriter::with_capacity(FILE_IO_BUFFER, out);
            let n = self.seal_stream(input, &mut out)?;
            out.flush().map_err(|e| Error::io("writing the envelope", &e))?;
            Ok(n)
        })
    }

    fn chunk_usize(&self) -> usize {
        usize::try_from(self.chunk_size).unwrap_or(usize::MAX)
    }

    pub(crate) fn fresh_materials(&self) -> Result<(Dek, Vec<RecipientInfo>)> {
        let dek = Dek::random(self.crypto)?;
        let infos = self.recipients.iter().map(|r| r.wrap(&dek)).collect::<Result<Vec<_>>>()?;
        Ok((dek, infos))
    }
}

/// Seals what is written to it, a chunk at a time. Nothing is final until
/// [`SealWriter::finish`]: a writer dropped without it leaves an envelope that fails to
/// open (truncated), never one that opens to a prefix.
pub struct SealWriter<W: Write> {
    output: Option<W>,
    keys: MessageKeys,
    // Allocated on first use at chunk + tag bytes and kept at that length, so that no
    // chunk pays for zeroing it again; `filled` bytes of it are plaintext.
    buf: SecretVec,
    filled: usize,
    chunk_size: usize,
    index: u32,
    plaintext_len: u64,
    failed: bool,
}

impl<W: Write> fmt::Debug for SealWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealWriter").field("chunks_written", &self.index).finish_non_exhaustive()
    }
}

impl<W: Write> SealWriter<W> {
    /// Encrypts and writes the buffered chunk.
    fn emit(&mut self, last: bool) -> Result<()> {
        self.emit_from(last, None)
    }

    /// Encrypts and writes the buffered chunk, or `direct` (a whole chunk of the caller's,
    /// with nothing buffered), which the engine encrypts straight into the buffer.
    fn emit_from(&mut self, last: bool, direct: Option<&[u8]>) -> Result<()> {
        if self.failed {
            return Err(Error::invalid(InvalidReason::Parameter, "the envelope writer failed earlier"));
        }
        self.ensure_buf();
        let out = self
            .output
            .as_mut()
            .ok_or_else(|| Error::invalid(InvalidReason::Parameter, "the envelope writer is finished"))?;
        // A non-final chunk needs an index after it for the final one.
        if !last && self.index == u32::MAX {
            self.failed = true;
            return Err(Error::invalid(
                InvalidReason::Length,
                "plaintext too large for one envelope (2^32 chunks)",
            ));
        }
        // `filled` (or the direct chunk) is at most the chunk size and the buffer one tag
        // longer.
        let filled = direct.map_or(self.filled, <[u8]>::len);
        let sealed = self
            .buf
            .get_mut(..filled + TAG_LEN)
            .ok_or_else(|| Error::invalid(InvalidReason::Length, "chunk larger than its buffer"))?;
        let nonce = chunk_nonce(self.index, last);
        match direct {
            Some(piece) => self.keys.body.seal_to(&nonce, b"", piece, sealed)?,
            None => {
                let tag = self.keys.body.seal_in_place(
                    &nonce,
                    b"",
                    sealed.get_mut(..filled).unwrap_or_default(),
                )?;
                sealed.get_mut(filled..).unwrap_or_default().copy_from_slice(&tag);
            }
        }
        if let Err(e) = out.write_all(sealed) {
            self.failed = true;
            return Err(Error::io("writing the envelope", &e));
        }
        self.filled = 0;
        self.index = self.index.wrapping_add(1);
        Ok(())
    }

    /// The chunk buffer at its working length (zeroed once, on first use).
    fn ensure_buf(&mut self) {
        let want = self.chunk_size.saturating_add(TAG_LEN);
        if self.buf.len() != want {
            self.buf = SecretVec::with_capacity(want);
            self.buf.resize(want);
        }
    }

    /// Reads `input` to its end straight into the chunk buffer (no extra copy).
    fn read_all_from<R: Read>(&mut self, mut input: R) -> Result<()> {
        self.ensure_buf();
        loop {
            if self.filled == self.chunk_size {
                // Full: it is the last chunk only if the input ends here.
                let mut one = [0u8; 1];
                match input.read(&mut one) {
                    Ok(0) => return Ok(()),
                    Ok(_) => {
                        self.emit(false)?;
                        if let Some(first) = self.buf.first_mut() {
                            *first = one[0];
                        }
                        self.filled = 1;
                        self.plaintext_len = self.plaintext_len.saturating_add(1);
                        continue;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(Error::io("reading the plaintext", &e)),
                }
            }
            let room = self.buf.get_mut(self.filled..self.chunk_size).unwrap_or_default();
            let room_len = room.len();
            match input.read(room) {
                Ok(0) => return Ok(()),
                Ok(n) if n > room_len => {
                    return Err(Error::io(
                        "reading the plaintext",
                        &std::io::Error::other("the reader claimed more bytes than it was given room for"),
                    ));
                }
                Ok(n) => {
                    self.filled += n;
                    self.plaintext_len =
                        self.plaintext_len.saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("reading the plaintext", &e)),
            }
        }
    }

    /// Writes the final chunk and flushes; returns the output.
    pub fn finish(mut self) -> Result<W> {
        self.emit(true)?;
        let mut out = self
            .output
            .take()
            .ok_or_else(|| Error::invalid(InvalidReason::Parameter, "the envelope writer is finished"))?;
        out.flush().map_err(|e| Error::io("writing the envelope", &e))?;
        Ok(out)
    }

    /// Plaintext bytes taken so far.
    pub fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }
}

impl<W: Write> Write for SealWriter<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        // A full buffer is emitted only once more data arrives: the last chunk may be full.
        if self.filled == self.chunk_size {
            self.emit(false)?;
        }
        self.ensure_buf();
        // More than a whole chunk and nothing buffered: the engine encrypts that chunk
        // from `data` without copying it in first. It is not the last chunk because the
        // bytes after it are taken too (into the buffer) before this call returns: a
        // caller may stop after any short write and finish.
        if self.filled == 0
            && let Some((piece, rest)) = data.split_at_checked(self.chunk_size).filter(|(_, r)| !r.is_empty())
        {
            self.emit_from(false, Some(piece))?;
            let room = self.buf.get_mut(..self.chunk_size).unwrap_or_default();
            let take = rest.len().min(room.len());
            room.get_mut(..take).unwrap_or_default().copy_from_slice(rest.get(..take).unwrap_or_default());
            self.filled = take;
            let taken = piece.len() + take;
            self.plaintext_len = self.plaintext_len.saturating_add(u64::try_from(taken).unwrap_or(u64::MAX));
            return Ok(taken);
        }
        let room = self.buf.get_mut(self.filled..self.chunk_size).unwrap_or_default();
        let take = room.len().min(data.len());
        room.get_mut(..take).unwrap_or_default().copy_from_slice(data.get(..take).unwrap_or_default());
        self.filled += take;
        self.plaintext_len = self.plaintext_len.saturating_add(u64::try_from(take).unwrap_or(u64::MAX));
        Ok(take)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.output.as_mut() {
            Some(o) => o.flush(),
            None => Ok(()),
        }
    }
}

/// Sharp edges: sealing with a caller-chosen data key and message id, which must never be
/// reused. Exists to make and check the frozen test vectors; never use it for data.
pub mod hazmat {
    use super::*;

    /// Seals `plaintext` with the given data key and message id (wrapped by every
    /// recipient). The same (data key, message id) twice breaks AES-GCM's security.
    pub fn seal_with_fixed_secrets(
        sealer: &Sealer,
        data_key: &[u8; 32],
        message_id: &[u8; 32],
        plaintext: &[u8],
    ) -> Result<Vec<u8>> {
        let dek = Dek(Zeroizing::new(*data_key));
        let infos = sealer.recipients.iter().map(|r| r.wrap(&dek)).collect::<Result<Vec<_>>>()?;
        sealer.seal_with(&dek, *message_id, infos, plaintext)
    }
}
