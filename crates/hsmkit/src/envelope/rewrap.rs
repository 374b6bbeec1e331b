//! Rewrap: new recipient entries for an envelope, body untouched and never decrypted.

use std::io::{Read, Write};
use std::path::Path;

use super::format::{EncryptionContext, EnvelopeHeader, RecipientInfo};
use super::open::{Keyring, opaque, unlock_with};
use super::seal::{Recipient, check_recipients};
use super::write_atomically;
use crate::error::{Error, Result};

/// What happens to the existing recipients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RewrapMode {
    /// The new recipients replace all the old ones (e.g. after a KEK rotation, so that the
    /// old version can be disabled).
    Replace,
    /// The new recipients are added to the old ones (one already present is kept as is).
    Add,
}

/// Rewraps envelopes: unwraps the data key with a KEK from `keyring`, wraps it for new
/// recipients, writes a new header, and copies the body byte for byte.
///
/// Like [`Opener`](super::Opener), a rewrapper needs the envelope's encryption context,
/// exactly ([`Rewrapper::with_context`]; empty by default): holding a KEK is not enough to
/// move an envelope to new recipients without knowing what it is bound to. A wrong context
/// fails with the same [`Error::DecryptionFailed`] as a wrong key.
///
/// ```
/// # fn main() -> hsmkit::Result<()> {
/// use hsmkit::envelope::{Opener, Recipient, Rewrapper, RewrapMode, Sealer};
/// use hsmkit::{KeyAttributes, KeySpec, KeyUpdate, Store};
///
/// let store = Store::new(hsmkit_soft::SoftBackend::new());
/// let v1 = store.create_key("kek", KeySpec::AES_256, KeyAttributes::default())?;
/// let envelope = Sealer::for_key(v1)?.seal(b"payload")?;
///
/// let v2 = store.rotate_key("kek")?;
/// let rewrapped = Rewrapper::new(&store, [Recipient::new(v2)?], RewrapMode::Replace)?.rewrap(&envelope)?;
/// store.update_key("kek", 1, &KeyUpdate::enabled(false))?; // v1 retired
/// assert_eq!(&Opener::new(&store).open(&rewrapped)?[..], b"payload");
/// # Ok(()) }
/// ```
pub struct Rewrapper<'a> {
    keyring: &'a dyn Keyring,
    recipients: Vec<Recipient>,
    mode: RewrapMode,
    context: EncryptionContext,
}

impl std::fmt::Debug for Rewrapper<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rewrapper")
            .field("recipients", &self.recipients)
            .field("mode", &self.mode)
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

impl<'a> Rewrapper<'a> {
    /// Rewraps for `recipients` (1 to 16), opening with any KEK in `keyring`.
    pub fn new(
        keyring: &'a dyn Keyring,
        recipients: impl IntoIterator<Item = Recipient>,
        mode: RewrapMode,
    ) -> Result<Self> {
        let recipients: Vec<Recipient> = recipients.into_iter().collect();
        check_recipients(recipients.iter().map(|r| (r.key().name(), r.key().version())))?;
        Ok(Rewrapper { keyring, recipients, mode, context: EncryptionContext::new() })
    }

    /// The encryption context the envelope must carry, exactly (as for opening).
    pub fn with_context(mut self, context: EncryptionContext) -> Self {
        self.context = context;
        self
    }

    /// The new header for `header`.
    fn new_header(&self, header: &EnvelopeHeader) -> Result<EnvelopeHeader> {
        if header.context != self.context {
            return Err(Error::DecryptionFailed);
        }
        let unlocked = unlock_with(self.keyring, header).map_err(opaque)?;
        let (dek, keys) = (unlocked.dek, unlocked.keys);
        let mut recipients: Vec<RecipientInfo> = match self.mode {
            RewrapMode::Replace => Vec::new(),
            RewrapMode::Add => header.recipients.clone(),
        };
        for r in &self.recipients {
            let present =
                recipients.iter().any(|o| o.name == r.key().name() && o.version == r.key().version());
            if !present {
                recipients.push(r.wrap(&dek)?);
            }
        }
        check_recipients(recipients.iter().map(|r| (r.name.as_str(), r.version)))?;
        let mut out = header.clone();
        out.recipients = recipients;
        out.tag = keys.header_tag(&out.authenticated_bytes())?;
        Ok(out)
    }

    /// Rewraps a whole envelope in memory.
    pub fn rewrap(&self, envelope: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(envelope.len().saturating_add(2048));
        self.rewrap_stream(envelope, &mut out)?;
        Ok(out)
    }

    /// Rewraps the envelope read from `input` into `output`; returns the body length.
    /// The body is copied, not read for meaning: a damaged body stays damaged.
    pub fn rewrap_stream<R: Read, W: Write>(&self, mut input: R, mut output: W) -> Result<u64> {
        let header = EnvelopeHeader::read_from(&mut input).map_err(opaque)?;
        let new = self.new_header(&header)?;
        output.write_all(&new.encode()).map_err(|e| Error::io("writing the envelope", &e))?;
        let n =
            std::io::copy(&mut input, &mut output).map_err(|e| Error::io("copying the envelope body", &e))?;
        output.flush().map_err(|e| Error::io("writing the envelope", &e))?;
        Ok(n)
    }

    /// Rewraps the file `src` into `dst` (which may be `src`: the new file is renamed over
    /// it only when complete).
    pub fn rewrap_file(&self, src: &Path, dst: &Path) -> Result<u64> {
        let input =
            std::fs::File::open(src).map_err(|e| Error::io(&format!("opening {}", src.display()), &e))?;
        write_atomically(dst, |out| {
            self.rewrap_stream(std::io::BufReader::with_capacity(1 << 16, input), out)
        })
    }
}
