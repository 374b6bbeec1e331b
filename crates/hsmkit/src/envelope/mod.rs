//! Envelope encryption: data of any size under a fresh data key, wrapped by one or more
//! key-encryption keys (KEKs) that stay in the backend.
//!
//! The format is specified in `docs/envelope-format.md`: a versioned header naming each
//! KEK (name + version) and holding its wrapped data key, the encryption context, a key
//! commitment and a header tag; then chunks of AES-256-GCM under keys derived with
//! HKDF (SHA-256 in the default suite) from the data key and a random message id, each bound to its index and a
//! final flag. Truncation, reordering, duplication, splicing and every bit flip fail with
//! the one [`Error::DecryptionFailed`].
//!
//! - [`Sealer`]: seal in one shot, as a [`SealWriter`], reader to writer, or file to file;
//!   optional data-key caching for many small messages.
//! - [`Opener`]: open in one shot, as an [`OpenReader`], reader to writer, or file to file.
//!   It picks a recipient whose KEK its [`Keyring`] (a [`Store`] or a list of keys) holds.
//! - [`Rewrapper`]: new recipients (a rotated or another KEK) without touching the body.
//!
//! ```
//! # fn main() -> hsmkit::Result<()> {
//! use hsmkit::{KeyAttributes, KeySpec, Store};
//!
//! let store = Store::new(hsmkit_soft::SoftBackend::new());
//! store.create_key("kek", KeySpec::AES_256, KeyAttributes::default())?;
//! let context = [("purpose".to_string(), "backup".to_string())].into();
//! let envelope = store.seal("kek", b"secret data", &context)?;
//! assert_eq!(&store.unseal(&envelope, &context)?[..], b"secret data");
//! # Ok(()) }
//! ```

use std::io::Write;
use std::path::Path;

mod cache;
mod format;
mod keys;
mod open;
mod rewrap;
mod seal;

pub use cache::CacheLimits;
#[allow(deprecated)]
pub use format::SUITE;
pub use format::{
    DEFAULT_CHUNK_SIZE, EncryptionContext, EnvelopeHeader, FORMAT_VERSION, MAGIC, MAX_CHUNK_SIZE,
    MAX_CONTEXT_BYTES, MAX_CONTEXT_ENTRIES, MAX_CONTEXT_KEY_LEN, MAX_CONTEXT_VALUE_LEN, MAX_RECIPIENTS,
    MAX_WRAPPED_LEN, MIN_CHUNK_SIZE, RecipientInfo, Suite,
};
pub use open::{Keyring, OpenReader, Opener, PreparedOpen};
pub use rewrap::{RewrapMode, Rewrapper};
pub use seal::{Recipient, SealWriter, Sealer, hazmat};

use crate::error::{Error, Result};
use crate::store::Store;

/// Bytes per read and write when sealing and opening files: few system calls, whole pages.
pub(crate) const FILE_IO_BUFFER: usize = 1 << 20;

/// A buffered writer whose buffer (plaintext) is wiped when dropped. Writes at least as
/// large as the buffer go straight through.
pub(crate) struct WipingBufWriter<W: Write> {
    inner: W,
    buf: crate::SecretVec,
    cap: usize,
}

impl<W: Write> WipingBufWriter<W> {
    pub(crate) fn new(inner: W, cap: usize) -> Self {
        WipingBufWriter { inner, buf: crate::SecretVec::with_capacity(cap), cap }
    }

    // On a failed write the buffer is dropped all the same: a retry must not write the
    // bytes that did go out twice. (No flush on drop: `open_file` flushes explicitly and
    // discards the file on any error.)
    fn flush_buf(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let result = self.inner.write_all(&self.buf);
        self.buf.truncate(0);
        result
    }
}

impl<W: Write> Write for WipingBufWriter<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len().saturating_add(data.len()) > self.cap {
            self.flush_buf()?;
        }
        if data.len() >= self.cap {
            return self.inner.write(data);
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.flush_buf()?;
        self.inner.flush()
    }
}

/// Writes `dst` through a temporary file in the same directory, renamed over `dst` only
/// if `write` succeeds; on failure the temporary file is removed.
pub(crate) fn write_atomically<T>(
    dst: &Path,
    write: impl FnOnce(&mut std::fs::File) -> Result<T>,
) -> Result<T> {
    let dir = match dst.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".hsmkit-")
        .suffix(".partial")
        .tempfile_in(dir)
        .map_err(|e| Error::io(&format!("creating a temporary file in {}", dir.display()), &e))?;
    let value = write(tmp.as_file_mut())?;
    tmp.as_file_mut().flush().map_err(|e| Error::io("writing the output", &e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io("syncing the output", &e))?;
    tmp.persist(dst).map_err(|e| Error::io(&format!("renaming into {}", dst.display()), &e.error))?;
    Ok(value)
}

impl Store {
    /// Recipients for the current versions of these KEKs, default wrap algorithms (for a
    /// [`Sealer`] or a [`Rewrapper`]).
    pub fn recipients<S: AsRef<str>>(&self, kek_names: &[S]) -> Result<Vec<Recipient>> {
        kek_names.iter().map(|name| self.get_key(name.as_ref()).and_then(Recipient::new)).collect()
    }

    /// A [`Sealer`] for the current versions of these KEKs, default wrap algorithms.
    pub fn sealer<S: AsRef<str>>(&self, kek_names: &[S]) -> Result<Sealer> {
        Sealer::new(self.recipients(kek_names)?)
    }

    /// Seals `plaintext` for the current version of `kek_name`, bound to `context`.
    pub fn seal(&self, kek_name: &str, plaintext: &[u8], context: &EncryptionContext) -> Result<Vec<u8>> {
        self.sealer(&[kek_name])?.with_context(context.clone())?.seal(plaintext)
    }

    /// Opens an envelope with whichever of its KEKs this store holds; `context` must be
    /// the one it was sealed with.
    pub fn unseal(&self, envelope: &[u8], context: &EncryptionContext) -> Result<crate::SecretVec> {
        self.opener().with_context(context.clone()).open(envelope)
    }

    /// An [`Opener`] over this store's keys.
    pub fn opener(&self) -> Opener<'_> {
        Opener::new(self)
    }
}
