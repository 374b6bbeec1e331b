//! One entry point for every backend: a [`Store`] from a URI.
//!
//! The core knows no backend, so the facade that picks one lives here, beside them; the
//! Python bindings and the C ABI open stores through it.
//!
//! | URI | backend |
//! |---|---|
//! | `file:///path/to/store` or a plain path | encrypted software keystore (created if missing) |
//! | `pkcs11:token=NAME?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=...` | PKCS#11 token (RFC 7512) |
//! | `memory:` | software backend in memory, gone when the store drops |
//!
//! The software backend runs on the fastest engine of the build: AWS-LC with the default
//! feature `aws-lc`, RustCrypto without it.
//!
//! ```
//! # fn main() -> hsmkit::Result<()> {
//! let dir = tempfile::tempdir().map_err(|e| hsmkit::Error::io("tempdir", &e))?;
//! let uri = format!("file://{}", dir.path().join("store").display());
//! let store = hsmkit_open::open(&uri, &hsmkit_open::OpenOptions::new().passphrase("correct horse"))?;
//! # let _ = store;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
// A new algorithm, key type or operation must be handled everywhere (see hsmkit::algorithm).
#![warn(clippy::wildcard_enum_match_arm)]

use hsmkit::InvalidReason;
use std::fmt;
use std::path::{Path, PathBuf};

use hsmkit::{Error, Result, Store};
use hsmkit_pkcs11::uri::percent_decode;
use hsmkit_pkcs11::{PinSource, Pkcs11Backend, Pkcs11Uri};
use hsmkit_soft::{FileStorage, KdfParams, SoftBackend, SoftEngine, StoreKey};
use zeroize::Zeroizing;

/// How to unlock and decorate the store a URI names. Secrets are redacted in `Debug`.
#[derive(Clone, Default)]
pub struct OpenOptions {
    passphrase: Option<Zeroizing<String>>,
    key_file: Option<PathBuf>,
    pin: Option<Zeroizing<String>>,
    audit_log: Option<PathBuf>,
    create: Create,
}

/// Whether opening a keystore may create it (as `std::fs::OpenOptions`' `create` and
/// `create_new`). Tokens and memory stores always exist.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Create {
    /// Open it, creating it first if the directory holds no keystore (the default).
    #[default]
    IfMissing,
    /// Open it only if it exists; a missing keystore is [`Error::NotFound`], so a typo in
    /// a path does not make a new, empty store.
    Never,
    /// Create it; an existing keystore is [`Error::AlreadyExists`].
    New,
}

impl fmt::Debug for OpenOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |o: &Option<Zeroizing<String>>| o.as_ref().map(|_| "[REDACTED]");
        f.debug_struct("OpenOptions")
            .field("passphrase", &redacted(&self.passphrase))
            .field("key_file", &self.key_file)
            .field("pin", &redacted(&self.pin))
            .field("audit_log", &self.audit_log)
            .field("create", &self.create)
            .finish()
    }
}

impl OpenOptions {
    /// No passphrase, key file, PIN or audit log.
    pub fn new() -> Self {
        Self::default()
    }

    /// The keystore passphrase (`file:` stores).
    pub fn passphrase(mut self, passphrase: &str) -> Self {
        self.passphrase = Some(Zeroizing::new(passphrase.to_owned()));
        self
    }

    /// A key file instead of a passphrase (`file:` stores).
    pub fn key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.key_file = Some(path.into());
        self
    }

    /// The token's user PIN (`pkcs11:` URIs); wins over `pin-value`/`pin-source`.
    pub fn pin(mut self, pin: &str) -> Self {
        self.pin = Some(Zeroizing::new(pin.to_owned()));
        self
    }

    /// Whether a missing keystore is created (default [`Create::IfMissing`]).
    pub fn create(mut self, create: Create) -> Self {
        self.create = create;
        self
    }

    /// Appends an audit record for every operation to this log (see [`hsmkit::AuditLog`]; its records are authenticated under [`Store::audit_key`],
    /// created on first use).
    pub fn audit_log(mut self, path: impl Into<PathBuf>) -> Self {
        self.audit_log = Some(path.into());
        self
    }
}

/// What a URI names, before anything is opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// An encrypted keystore directory.
    Keystore(PathBuf),
    /// A PKCS#11 token.
    Pkcs11(Pkcs11Uri),
    /// A software backend in memory.
    Memory,
}

impl Location {
    /// Whether the store exists: a keystore directory that holds a keystore. Tokens and
    /// memory stores always do (a token that is not there fails to open instead).
    pub fn exists(&self) -> bool {
        match self {
            Location::Keystore(dir) => FileStorage::exists(dir),
            Location::Pkcs11(_) | Location::Memory => true,
        }
    }

    /// Whether this is a token whose URI gives no PIN, so that it is read from
    /// `HSMKIT_PKCS11_PIN` unless [`OpenOptions::pin`] gives one (a front end may ask).
    pub fn pin_from_environment(&self) -> bool {
        match self {
            Location::Pkcs11(uri) => uri.pin == PinSource::Env,
            Location::Keystore(_) | Location::Memory => false,
        }
    }

    /// Parses a URI. A string with a `scheme:` before any `/` must be one of `file:`,
    /// `pkcs11:` or `memory:` (so a mistyped scheme is an error, not a directory);
    /// anything else is a path.
    pub fn parse(uri: &str) -> Result<Self> {
        if uri.is_empty() {
            return Err(Error::invalid(InvalidReason::Malformed, "empty store URI"));
        }
        let scheme = uri.split_once(':').map(|(s, _)| s).filter(|s| !s.contains('/') && !s.is_empty());
        match scheme {
            Some(s) if s.eq_ignore_ascii_case("pkcs11") => {
                // The scheme is case-insensitive (RFC 3986); the PKCS#11 parser wants it lower.
                let rest = uri.get(s.len() + 1..).unwrap_or_default();
                Ok(Location::Pkcs11(Pkcs11Uri::parse(&format!("pkcs11:{rest}"))?))
            }
            Some(s) if s.eq_ignore_ascii_case("memory") => match uri.get(s.len() + 1..) {
                Some("") | Some("//") => Ok(Location::Memory),
                _ => Err(Error::invalid(InvalidReason::Malformed, "a memory store URI is just 'memory:'")),
            },
            Some(s) if s.eq_ignore_ascii_case("file") => {
                let rest = uri.get(s.len() + 1..).unwrap_or_default();
                if rest.contains(['?', '#']) {
                    return Err(Error::invalid(
                        InvalidReason::Malformed,
                        "file store URI: no query or fragment is taken (give the passphrase or key file as an option)",
                    ));
                }
                // file:///abs, file://localhost/abs, file:/abs (RFC 8089).
                let path = match rest.strip_prefix("//") {
                    Some(r) => match r.find('/') {
                        Some(0) => r,
                        Some(i) if r.get(..i).is_some_and(|h| h.eq_ignore_ascii_case("localhost")) => {
                            r.get(i..).unwrap_or_default()
                        }
                        _ => {
                            return Err(Error::invalid(
                                InvalidReason::Malformed,
                                "file store URI: only local paths (file:///path)",
                            ));
                        }
                    },
                    None => rest,
                };
                let path = percent_decode(path).map_err(|_| {
                    Error::invalid(InvalidReason::Malformed, "file store URI: bad percent-escape")
                })?;
                if path.is_empty() {
                    return Err(Error::invalid(InvalidReason::Malformed, "file store URI without a path"));
                }
                Ok(Location::Keystore(PathBuf::from(path)))
            }
            // A one-letter "scheme" is a Windows drive letter. The text before the ':' is not
            // shown: it may be a secret typed in the wrong place.
            Some(s) if s.len() > 1 => Err(Error::invalid(
                InvalidReason::Malformed,
                "unknown store URI scheme (use file:, pkcs11: or memory:)",
            )),
            _ => Ok(Location::Keystore(PathBuf::from(uri))),
        }
    }
}

/// Opens the store `uri` names (see the [crate docs](crate)).
pub fn open(uri: &str, options: &OpenOptions) -> Result<Store> {
    open_location(Location::parse(uri)?, options)
}

/// Opens a parsed [`Location`].
pub fn open_location(location: Location, options: &OpenOptions) -> Result<Store> {
    let store = match location {
        Location::Keystore(dir) => {
            let exists = FileStorage::exists(&dir);
            let storage = match options.create {
                Create::IfMissing => {
                    FileStorage::open_or_create(&dir, &store_key(&dir, options)?, KdfParams::default())?
                }
                Create::Never if !exists => {
                    return Err(Error::NotFound { what: format!("keystore {}", dir.display()) });
                }
                Create::Never => FileStorage::open(&dir, &store_key(&dir, options)?)?,
                Create::New if exists => {
                    return Err(Error::AlreadyExists { name: format!("keystore {}", dir.display()) });
                }
                Create::New => FileStorage::create(&dir, &store_key(&dir, options)?, KdfParams::default())?,
            };
            Store::new(SoftBackend::with_storage(storage).with_engine(SoftEngine::fastest()))
        }
        Location::Pkcs11(mut uri) => {
            if let Some(pin) = &options.pin {
                uri.pin = PinSource::Value(pin.clone());
            }
            Store::new(Pkcs11Backend::open_uri(&uri)?)
        }
        Location::Memory => Store::new(SoftBackend::new().with_engine(SoftEngine::fastest())),
    };
    match &options.audit_log {
        Some(path) => store.with_audit_log_file(path),
        None => Ok(store),
    }
}

/// Writes a new random keystore key file (64 hex digits, mode 0600) at `path`, for
/// [`OpenOptions::key_file`]; an existing file is refused.
pub fn generate_key_file(path: impl AsRef<Path>) -> Result<()> {
    StoreKey::generate_key_file(path.as_ref())
}

fn store_key(dir: &Path, options: &OpenOptions) -> Result<StoreKey> {
    match (&options.passphrase, &options.key_file) {
        (Some(_), Some(_)) => {
            Err(Error::invalid(InvalidReason::Parameter, "give a passphrase or a key file, not both"))
        }
        (Some(p), None) => Ok(StoreKey::Passphrase(p.clone())),
        (None, Some(f)) => Ok(StoreKey::key_file(f)),
        (None, None) => Err(Error::Authentication(format!(
            "the keystore {} needs a passphrase or a key file",
            dir.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        let ks = |p: &str| Location::Keystore(PathBuf::from(p));
        assert_eq!(Location::parse("file:///var/lib/x").ok(), Some(ks("/var/lib/x")));
        assert_eq!(Location::parse("file://localhost/var/lib/x").ok(), Some(ks("/var/lib/x")));
        assert_eq!(Location::parse("file:/a%20b").ok(), Some(ks("/a b")));
        assert_eq!(Location::parse("relative/store").ok(), Some(ks("relative/store")));
        assert_eq!(Location::parse("/abs/store").ok(), Some(ks("/abs/store")));
        assert_eq!(Location::parse("C:\\store").ok(), Some(ks("C:\\store")));
        assert_eq!(Location::parse("memory:").ok(), Some(Location::Memory));
        assert!(
            matches!(Location::parse("pkcs11:token=t"), Ok(Location::Pkcs11(u)) if u.token.as_deref() == Some("t"))
        );
        for bad in
            ["", "pkcs:token=t", "file://host/x", "file:///x?pass=1", "file://", "memory:x", "file:/%zz"]
        {
            let e = Location::parse(bad).err();
            assert_eq!(e.map(|e| e.kind()), Some(hsmkit::ErrorKind::InvalidInput), "{bad}");
        }
    }

    #[test]
    fn uri_errors_do_not_echo_the_uri() {
        for bad in [
            "SECRET1234:x",
            "pkcs11:token=t?pin-value:SECRET1234",
            "pkcs11:token=t?pin-value=SECRET%ZZ1234",
            "PKCS11:token=t?SECRET1234",
            "pkcs11:token=t?module-path=/x&SECRET1234",
            "file:///x?pin=SECRET1234",
            "file:/SECRET%ZZ1234",
            "memory:SECRET1234",
        ] {
            let e = Location::parse(bad).err();
            let text = e.as_ref().map(|e| format!("{e} {e:?}")).unwrap_or_default();
            assert!(e.is_some() && !text.contains("SECRET"), "{bad} -> {text}");
        }
        // The scheme is case-insensitive for PKCS#11 URIs too.
        assert!(
            matches!(Location::parse("PKCS11:token=t"), Ok(Location::Pkcs11(u)) if u.token.as_deref() == Some("t"))
        );
    }

    #[test]
    fn keystore_needs_a_secret_and_reopens() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", &e))?;
        let uri = format!("file://{}", dir.path().join("s").display());
        let e = open(&uri, &OpenOptions::new()).err().map(|e| e.kind());
        assert_eq!(e, Some(hsmkit::ErrorKind::Authentication));
        let opts = OpenOptions::new().passphrase("pw");
        open(&uri, &opts)?.create_key(
            "k",
            hsmkit::KeySpec::Aes(hsmkit::AesSize::Aes256),
            Default::default(),
        )?;
        let names: Vec<String> = open(&uri, &opts)?.list_keys()?.into_iter().map(|i| i.name).collect();
        assert_eq!(names, ["k"]);
        let e = open(&uri, &OpenOptions::new().passphrase("wrong")).err().map(|e| e.kind());
        assert_eq!(e, Some(hsmkit::ErrorKind::Authentication));
        assert!(!format!("{opts:?}").contains("pw"));
        Ok(())
    }

    #[test]
    fn software_stores_use_the_fastest_engine() -> Result<()> {
        let s = open("memory:", &OpenOptions::new())?;
        assert_eq!(s.capabilities().engine, if cfg!(feature = "aws-lc") { "aws-lc" } else { "rustcrypto" });
        Ok(())
    }

    #[test]
    fn memory_stores_are_separate() -> Result<()> {
        let a = open("memory:", &OpenOptions::new())?;
        a.create_key("k", hsmkit::KeySpec::Aes(hsmkit::AesSize::Aes128), Default::default())?;
        assert!(open("memory:", &OpenOptions::new())?.list_keys()?.is_empty());
        Ok(())
    }

    #[test]
    fn pkcs11_pin_option_wins_over_the_uri() -> Result<()> {
        let token = hsmkit_pkcs11::testing::SoftHsmToken::new()?;
        let wrong = token.uri().replace("pin-value=1234", "pin-value=0000");
        let e = open(&wrong, &OpenOptions::new()).err().map(|e| e.kind());
        assert_eq!(e, Some(hsmkit::ErrorKind::Authentication));
        let store = open(&wrong, &OpenOptions::new().pin(hsmkit_pkcs11::testing::USER_PIN))?;
        assert_eq!(store.backend_kind(), "pkcs11");
        store.create_key("k", hsmkit::KeySpec::Aes(hsmkit::AesSize::Aes128), Default::default())?;
        Ok(())
    }
}
