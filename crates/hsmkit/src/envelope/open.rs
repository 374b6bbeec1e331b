//! Opening: picks a recipient it has a key for, checks commitment and header tag, then
//! decrypts chunk by chunk, releasing no plaintext before its chunk's tag verifies.

use std::fmt;
use std::io::{Read, Write};
use std::path::Path;

use super::cache::{CacheLimits, UnwrapCache};
use super::format::{EncryptionContext, EnvelopeHeader, TAG_LEN};
use super::keys::{Dek, MessageKeys, chunk_nonce};
use super::{FILE_IO_BUFFER, WipingBufWriter, write_atomically};
use crate::crypto::CryptoProvider;
use crate::error::{Error, ErrorKind, InvalidReason, Result};
use crate::key::Key;
use crate::secret::SecretVec;
use crate::store::Store;

/// Where an opener finds KEKs by name and version. `Sync`, so that one [`Opener`] can
/// serve many threads.
pub trait Keyring: Sync {
    /// The key `name` at `version`, or [`Error::NotFound`].
    fn key_version(&self, name: &str, version: u32) -> Result<Key>;
}

impl Keyring for Store {
    fn key_version(&self, name: &str, version: u32) -> Result<Key> {
        self.get_key_version(name, version)
    }
}

impl Keyring for [Key] {
    fn key_version(&self, name: &str, version: u32) -> Result<Key> {
        self.iter()
            .find(|k| k.name() == name && k.version() == version)
            .cloned()
            .ok_or_else(|| Error::NotFound { what: format!("key '{name}' version {version}") })
    }
}

impl Keyring for Vec<Key> {
    fn key_version(&self, name: &str, version: u32) -> Result<Key> {
        self.as_slice().key_version(name, version)
    }
}

impl Keyring for Key {
    fn key_version(&self, name: &str, version: u32) -> Result<Key> {
        std::slice::from_ref(self).key_version(name, version)
    }
}

/// Opens envelopes with the KEKs of a [`Keyring`] (a [`Store`], or a list of keys).
#[derive(Clone)]
pub struct Opener<'a> {
    keyring: &'a dyn Keyring,
    context: EncryptionContext,
    cache: Option<UnwrapCache>,
}

impl fmt::Debug for Opener<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opener").field("context", &self.context).finish_non_exhaustive()
    }
}

impl<'a> Opener<'a> {
    /// An opener expecting an empty encryption context.
    pub fn new(keyring: &'a dyn Keyring) -> Self {
        Opener { keyring, context: EncryptionContext::new(), cache: None }
    }

    /// Keeps the data keys this opener unwraps (at most 64, each within `limits`), so
    /// that opening many small envelopes sealed under one cached data key (see
    /// [`Sealer::with_data_key_cache`](super::Sealer::with_data_key_cache)) does not wait
    /// on the backend each time. Applies to one-shot [`open`](Self::open) and
    /// [`open_into`](Self::open_into); clones share the cache. A recipient entry must
    /// match byte for byte, and the header's commitment and tag are still checked.
    ///
    /// Until a limit is reached, a cached key opens its envelopes **without asking the
    /// KEK**: even if the KEK is disabled, loses `unwrapKey`, expires, is deleted or
    /// purged, or its name and version come to mean another key. Hits are also faster
    /// than misses, which tells a caller that times `open` whether an entry was used
    /// recently. Give a cached opener only to callers entitled to everything it opened:
    /// never share one across tenants or principals.
    pub fn with_data_key_cache(mut self, limits: CacheLimits) -> Self {
        self.cache = Some(UnwrapCache::new(limits));
        self
    }

    /// The encryption context the envelope must carry, exactly.
    pub fn with_context(mut self, context: EncryptionContext) -> Self {
        self.context = context;
        self
    }

    /// Opens a whole envelope. Nothing is returned unless every chunk verified.
    pub fn open(&self, envelope: &[u8]) -> Result<SecretVec> {
        let prepared = self.prepare(envelope)?;
        // One allocation at the final size; each chunk is zeroed and decrypted into it
        // while it is in cache (out of place where the provider can).
        let mut out = SecretVec::with_capacity(prepared.layout.plaintext_len);
        prepared.decrypt(&mut out)?;
        Ok(out)
    }

    /// The plaintext length of `envelope`, from its length and header alone (nothing is
    /// unwrapped or verified). A malformed envelope is [`Error::DecryptionFailed`].
    pub fn plaintext_len(&self, envelope: &[u8]) -> Result<usize> {
        Ok(Layout::of(envelope)?.plaintext_len)
    }

    /// Opens a whole envelope into `out`, which must be exactly
    /// [`plaintext_len`](Self::plaintext_len) bytes; returns that length. On any error
    /// `out` is zeroed: no verified prefix of the plaintext, and nothing it held before,
    /// is left in it.
    pub fn open_into(&self, envelope: &[u8], out: &mut [u8]) -> Result<usize> {
        match self.prepare(envelope) {
            Ok(prepared) => prepared.open_into(out),
            Err(e) => {
                crate::secret::wipe_slice(out);
                Err(e)
            }
        }
    }

    /// The first half of a one-shot open: parses the header, unwraps the data key and
    /// checks the commitment and header tag, so that a caller can learn the plaintext's
    /// length, and that the envelope is for it, before it allocates the output (the
    /// Python binding creates the result `bytes` only then). Nothing is decrypted yet.
    pub fn prepare<'e>(&self, envelope: &'e [u8]) -> Result<PreparedOpen<'e>> {
        let (header, body) = Layout::header(envelope)?;
        let shape = Layout::shape(&header, body);
        // The key first, then the body's shape, as the streaming reader finds them: a
        // malformed body is DecryptionFailed only where a KEK was found, NotFound (or
        // PermissionDenied) otherwise, the same answer both ways.
        let len = shape.as_ref().map_or(0, |s| s.2);
        let keys = self.unlock_cached(&header, u64::try_from(len).unwrap_or(u64::MAX))?;
        let (chunk, last_index, plaintext_len) = shape?;
        Ok(PreparedOpen { layout: Layout { body, chunk, last_index, plaintext_len }, keys })
    }

    /// A reader that yields the plaintext of the envelope read from `input`. It reads
    /// and checks the header now (so a missing key or wrong context fails here), then one
    /// chunk at a time. An error mid-way means the plaintext read so far must be
    /// discarded: it is a prefix of the real one, verified but incomplete.
    pub fn reader<R: Read>(&self, mut input: R) -> Result<OpenReader<R>> {
        let header = EnvelopeHeader::read_from(&mut input).map_err(opaque)?;
        let keys = self.unlock(&header)?;
        let chunk = usize::try_from(header.chunk_size).map_err(|_| Error::DecryptionFailed)?;
        Ok(OpenReader {
            input,
            keys,
            buf: SecretVec::new(),
            filled: 0,
            consumed: 0,
            out: 0..0,
            chunk,
            index: 0,
            done: false,
            failed: false,
            header,
        })
    }

    /// Opens the envelope read from `input` into `output`, in constant memory. Returns
    /// the plaintext length. On error, `output` may hold verified plaintext of the
    /// chunks before the bad one: discard it (or use [`Opener::open_file`]).
    pub fn open_stream<R: Read, W: Write>(&self, input: R, mut output: W) -> Result<u64> {
        let mut reader = self.reader(input)?;
        let mut n = 0u64;
        while let Some(chunk) = reader.next_chunk()? {
            output.write_all(chunk).map_err(|e| Error::io("writing the plaintext", &e))?;
            n = n.saturating_add(u64::try_from(chunk.len()).unwrap_or(u64::MAX));
        }
        output.flush().map_err(|e| Error::io("writing the plaintext", &e))?;
        Ok(n)
    }

    /// Opens the envelope file `src` into `dst` through a temporary file renamed into
    /// place only when every chunk verified; on failure no `dst` is created (and an
    /// existing one is left alone).
    pub fn open_file(&self, src: &Path, dst: &Path) -> Result<u64> {
        let input =
            std::fs::File::open(src).map_err(|e| Error::io(&format!("opening {}", src.display()), &e))?;
        // Ciphertext in 1 MiB reads; plaintext out in 1 MiB writes through a buffer that
        // is wiped, not std's `BufWriter`.
        write_atomically(dst, |out| {
            let mut out = WipingBufWriter::new(out, FILE_IO_BUFFER);
            let n = self.open_stream(std::io::BufReader::with_capacity(FILE_IO_BUFFER, input), &mut out)?;
            out.flush().map_err(|e| Error::io("writing the plaintext", &e))?;
            Ok(n)
        })
    }

    /// Finds a recipient whose KEK the keyring holds, unwraps the data key and checks the
    /// commitment and header tag.
    pub(crate) fn unlock(&self, header: &EnvelopeHeader) -> Result<MessageKeys> {
        if header.context != self.context {
            return Err(Error::DecryptionFailed);
        }
        Ok(unlock_with(self.keyring, header)?.keys)
    }

    /// [`unlock`](Self::unlock) through the data-key cache, if any, for a body of `len`
    /// bytes.
    fn unlock_cached(&self, header: &EnvelopeHeader, len: u64) -> Result<MessageKeys> {
        let Some(cache) = &self.cache else { return self.unlock(header) };
        if header.context != self.context {
            return Err(Error::DecryptionFailed);
        }
        for r in &header.recipients {
            if let Some((dek, crypto)) = cache.get(r, len) {
                let keys = MessageKeys::derive(crypto, header.suite, &dek, &header.message_id)?;
                // A header that fails with the cached key falls through to the next
                // recipient and then to the KEKs, as it would without the cache: a
                // copied recipient entry must not turn away an envelope another opens.
                if keys.check_header(header).is_ok() {
                    return Ok(keys);
                }
                cache.refund(r, len);
            }
        }
        let unlocked = unlock_with(self.keyring, header)?;
        if let Some(r) = header.recipients.get(unlocked.recipient) {
            cache.put(r, &unlocked.dek, unlocked.crypto, len);
        }
        Ok(unlocked.keys)
    }
}

/// An envelope whose header verified under its data key, ready to decrypt
/// ([`Opener::prepare`]). Its chunks are still checked one by one as they are decrypted.
pub struct PreparedOpen<'e> {
    layout: Layout<'e>,
    keys: MessageKeys,
}

impl fmt::Debug for PreparedOpen<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedOpen")
            .field("plaintext_len", &self.layout.plaintext_len)
            .finish_non_exhaustive()
    }
}

impl PreparedOpen<'_> {
    /// The plaintext's length.
    pub fn plaintext_len(&self) -> usize {
        self.layout.plaintext_len
    }

    /// Decrypts into `out`, which must be exactly [`plaintext_len`](Self::plaintext_len)
    /// bytes; returns that length. On any error `out` is zeroed.
    pub fn open_into(&self, out: &mut [u8]) -> Result<usize> {
        let result = if out.len() == self.layout.plaintext_len {
            self.decrypt(&mut SliceOut { buf: &mut *out, pos: 0 })
        } else {
            Err(Error::invalid(
                InvalidReason::Length,
                format!("the output must be {} bytes, not {}", self.layout.plaintext_len, out.len()),
            ))
        };
        match result {
            Ok(()) => Ok(self.layout.plaintext_len),
            Err(e) => {
                crate::secret::wipe_slice(out);
                Err(e)
            }
        }
    }

    /// Decrypts each chunk into the slice `out.next(len)` gives.
    fn decrypt(&self, out: &mut dyn ChunkOut) -> Result<()> {
        let layout = &self.layout;
        for (index, chunk) in (0..=layout.last_index).zip(layout.body.chunks(layout.chunk)) {
            let (ct, tag) = chunk
                .len()
                .checked_sub(TAG_LEN)
                .and_then(|m| chunk.split_at_checked(m))
                .ok_or(Error::DecryptionFailed)?;
            let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| Error::DecryptionFailed)?;
            let dst = out.next(ct.len())?;
            self.keys.body.open_to(&chunk_nonce(index, index == layout.last_index), b"", ct, &tag, dst)?;
        }
        Ok(())
    }
}

/// Where one-shot open puts each chunk's plaintext.
trait ChunkOut {
    /// The next `len` bytes of the output.
    fn next(&mut self, len: usize) -> Result<&mut [u8]>;
}

// Grown a chunk at a time, so that each chunk is zeroed while it is in cache.
impl ChunkOut for SecretVec {
    fn next(&mut self, len: usize) -> Result<&mut [u8]> {
        let start = self.len();
        self.resize(start + len);
        self.get_mut(start..).ok_or(Error::DecryptionFailed)
    }
}

struct SliceOut<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl ChunkOut for SliceOut<'_> {
    fn next(&mut self, len: usize) -> Result<&mut [u8]> {
        let start = self.pos;
        self.pos = start.saturating_add(len);
        self.buf.get_mut(start..self.pos).ok_or(Error::DecryptionFailed)
    }
}

/// Where a whole envelope's chunks are, from its length and header.
struct Layout<'e> {
    body: &'e [u8],
    /// Sealed chunk length: plaintext chunk size plus the tag.
    chunk: usize,
    last_index: u32,
    plaintext_len: usize,
}

impl<'e> Layout<'e> {
    fn of(envelope: &'e [u8]) -> Result<Self> {
        let (header, body) = Self::header(envelope)?;
        let (chunk, last_index, plaintext_len) = Self::shape(&header, body)?;
        Ok(Layout { body, chunk, last_index, plaintext_len })
    }

    /// The parsed header and the body after it.
    fn header(envelope: &'e [u8]) -> Result<(EnvelopeHeader, &'e [u8])> {
        let mut body = envelope;
        let header = EnvelopeHeader::read_from(&mut body).map_err(opaque)?;
        Ok((header, body))
    }

    /// Sealed chunk length, last chunk index and plaintext length of `body`.
    fn shape(header: &EnvelopeHeader, body: &[u8]) -> Result<(usize, u32, usize)> {
        let chunk = usize::try_from(header.chunk_size).map_err(|_| Error::DecryptionFailed)? + TAG_LEN;
        let n = body.len().div_ceil(chunk).max(1);
        let last = body
            .len()
            .checked_sub((n - 1) * chunk)
            .filter(|l| *l >= TAG_LEN)
            .ok_or(Error::DecryptionFailed)?;
        if n > 1 && last == TAG_LEN {
            return Err(Error::DecryptionFailed); // an empty final chunk after others
        }
        let last_index = u32::try_from(n - 1).map_err(|_| Error::DecryptionFailed)?;
        Ok((chunk, last_index, body.len() - n * TAG_LEN))
    }
}

/// Tries each recipient in order. NotFound only if the keyring has none of them; else the
/// first refusal (PermissionDenied, DecryptionFailed ...) if none opens.
pub(crate) fn unlock_with(keyring: &dyn Keyring, header: &EnvelopeHeader) -> Result<Unlocked> {
    let mut first_error: Option<Error> = None;
    for (index, r) in header.recipients.iter().enumerate() {
        let attempt = keyring.key_version(&r.name, r.version).and_then(|key| {
            let dek = key.unwrap_key(r.algorithm, &r.wrapped).map_err(opaque)?;
            let dek = Dek::from_unwrapped(&dek)?;
            let crypto = key.crypto();
            let keys = MessageKeys::derive(crypto, header.suite, &dek, &header.message_id)?;
            keys.check_header(header)?;
            Ok(Unlocked { dek, keys, recipient: index, crypto })
        });
        match attempt {
            Ok(found) => return Ok(found),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| {
        let names: Vec<String> =
            header.recipients.iter().map(|r| format!("{} v{}", r.name, r.version)).collect();
        Error::NotFound { what: format!("a key for any of the envelope's recipients ({})", names.join(", ")) }
    }))
}

/// What opened an envelope's header: the data key, the message keys, which recipient
/// entry, and the provider of that recipient's store.
pub(crate) struct Unlocked {
    pub(crate) dek: Dek,
    pub(crate) keys: MessageKeys,
    pub(crate) recipient: usize,
    pub(crate) crypto: &'static dyn CryptoProvider,
}

/// Malformed input is a failed decryption on the open path, whatever the detail.
pub(crate) fn opaque(e: Error) -> Error {
    match e.kind() {
        ErrorKind::InvalidInput => Error::DecryptionFailed,
        ErrorKind::NotFound
        | ErrorKind::AlreadyExists
        | ErrorKind::PermissionDenied
        | ErrorKind::VerificationFailed
        | ErrorKind::DecryptionFailed
        | ErrorKind::Unsupported
        | ErrorKind::Authentication
        | ErrorKind::Backend
        | ErrorKind::Io => e,
    }
}

/// Yields an envelope's plaintext, verified chunk by chunk.
pub struct OpenReader<R> {
    input: R,
    keys: MessageKeys,
    buf: SecretVec,
    filled: usize,
    consumed: usize,
    out: std::ops::Range<usize>,
    chunk: usize,
    index: u32,
    done: bool,
    failed: bool,
    header: EnvelopeHeader,
}

impl<R> fmt::Debug for OpenReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenReader")
            .field("chunks_read", &self.index)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<R: Read> OpenReader<R> {
    /// The envelope's header, authenticated.
    pub fn header(&self) -> &EnvelopeHeader {
        &self.header
    }

    /// The next chunk's plaintext, or `None` after the final chunk.
    pub fn next_chunk(&mut self) -> Result<Option<&[u8]>> {
        if self.failed {
            return Err(Error::DecryptionFailed);
        }
        if self.done {
            return Ok(None);
        }
        match self.decrypt_next() {
            Ok(()) => Ok(Some(self.buf.get(self.out.clone()).unwrap_or_default())),
            Err(e) => {
                self.failed = true;
                self.out = 0..0;
                Err(e)
            }
        }
    }

    fn decrypt_next(&mut self) -> Result<()> {
        // Keep the look-ahead bytes of the next chunk, drop the one just served.
        self.buf.copy_within(self.consumed..self.filled, 0);
        self.filled -= self.consumed;
        self.consumed = 0;
        let want = self.chunk + TAG_LEN + 1;
        if self.buf.len() < want {
            // Allocated on first use, at its final size: no growth, no stray copies.
            self.buf = SecretVec::with_capacity(want);
            self.buf.resize(want);
        }
        while self.filled < want {
            let free = self.buf.get_mut(self.filled..want).ok_or(Error::DecryptionFailed)?;
            match self.input.read(free) {
                Ok(0) => break,
                Ok(n) => self.filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("reading the envelope", &e)),
            }
        }
        // All of `want` read: more follows, so this chunk is not the last.
        let last = self.filled < want;
        let len = if last { self.filled } else { want - 1 };
        if len < TAG_LEN || (last && len == TAG_LEN && self.index > 0) || (!last && self.index == u32::MAX) {
            return Err(Error::DecryptionFailed);
        }
        let (ct, tag) = self.buf.get_mut(..len).ok_or(Error::DecryptionFailed)?.split_at_mut(len - TAG_LEN);
        let tag: [u8; TAG_LEN] = (&*tag).try_into().map_err(|_| Error::DecryptionFailed)?;
        self.keys.body.open_in_place(&chunk_nonce(self.index, last), b"", ct, &tag)?;
        self.out = 0..len - TAG_LEN;
        self.consumed = len;
        self.index = self.index.wrapping_add(1);
        self.done = last;
        Ok(())
    }
}

impl<R: Read> Read for OpenReader<R> {
    fn read(&mut self, dst: &mut [u8]) -> std::io::Result<usize> {
        if self.out.is_empty() {
            if self.next_chunk()?.is_none() {
                return Ok(0);
            }
            // An empty final chunk (empty plaintext) leaves nothing to serve.
            if self.out.is_empty() {
                return Ok(0);
            }
        }
        let avail = self.buf.get(self.out.clone()).unwrap_or_default();
        let n = avail.len().min(dst.len());
        dst.get_mut(..n).unwrap_or_default().copy_from_slice(avail.get(..n).unwrap_or_default());
        self.out.start += n;
        Ok(n)
    }
}
