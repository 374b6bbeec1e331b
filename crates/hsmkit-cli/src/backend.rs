//! Picks the backend: `--pkcs11`, else `--store`, else the default keystore.

use std::io::IsTerminal;
use std::path::PathBuf;

use hsmkit::{Error, Result, Store};
use hsmkit_pkcs11::{PinSource, Pkcs11Backend, Pkcs11Uri};
use hsmkit_soft::{FileStorage, KdfParams, SoftBackend, SoftEngine, StoreKey};
use zeroize::Zeroizing;

use crate::cli::Global;

/// The default keystore: `<data dir>/hsmkit/store`.
pub(crate) fn default_store() -> Result<PathBuf> {
    dirs::data_dir().map(|d| d.join("hsmkit").join("store")).ok_or_else(|| {
        Error::invalid("no data directory for this user: give --store PATH or set HSMKIT_STORE")
    })
}

fn prompt(what: &str) -> Result<Zeroizing<String>> {
    rpassword::prompt_password(format!("{what}: "))
        .map(Zeroizing::new)
        .map_err(|e| Error::io("reading from the terminal", &e))
}

/// A key's `version`, or its current version.
pub(crate) fn key_at(store: &Store, name: &str, version: Option<u32>) -> Result<hsmkit::Key> {
    match version {
        Some(v) => store.get_key_version(name, v),
        None => store.get_key(name),
    }
}

/// What to do when the keystore directory holds no keystore.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Missing {
    /// A typed `NotFound` (exit status 3): reading commands never create a store, so a
    /// typo in a path or passphrase does not go unnoticed.
    Refuse,
    /// Create it (`key create`, `key import`); on a terminal, only after the user agrees.
    Create,
    /// Create it; it must not exist yet (`hsmkit init`).
    CreateNew,
}

/// Opens the store the options name; a missing keystore is refused.
pub(crate) fn open(g: &Global) -> Result<Store> {
    open_with(g, Missing::Refuse)
}

fn confirm(question: &str) -> Result<bool> {
    {
        use std::io::Write;
        let mut err = std::io::stderr().lock();
        // A closed stderr must not panic; the question is then unseen and the answer read anyway.
        let _ = write!(err, "{question} [y/N] ").and_then(|()| err.flush());
    }
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).map_err(|e| Error::io("reading from the terminal", &e))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}

/// Opens the store the options name, creating a missing keystore as `missing` says.
pub(crate) fn open_with(g: &Global, missing: Missing) -> Result<Store> {
    let store = open_unaudited(g, missing)?;
    match &g.audit_log {
        Some(path) => store.with_audit_log_file(path),
        None => Ok(store),
    }
}

/// [`open_with`] without the audit log (to verify it, which must not append to it).
pub(crate) fn open_unaudited(g: &Global, missing: Missing) -> Result<Store> {
    Ok(match &g.pkcs11 {
        Some(uri) => {
            let mut uri = Pkcs11Uri::parse(uri)?;
            if uri.pin == PinSource::Env
                && std::env::var_os("HSMKIT_PKCS11_PIN").is_none()
                && std::io::stdin().is_terminal()
            {
                uri.pin = PinSource::Value(prompt("PKCS#11 user PIN")?);
            }
            Store::new(Pkcs11Backend::open_uri(&uri)?)
        }
        None => {
            let dir = match &g.store {
                Some(d) => d.clone(),
                None => default_store()?,
            };
            let exists = FileStorage::exists(&dir);
            match (missing, exists) {
                (Missing::Refuse, false) => {
                    return Err(Error::NotFound { what: format!("keystore {}", dir.display()) });
                }
                (Missing::CreateNew, true) => {
                    return Err(Error::AlreadyExists { name: format!("keystore {}", dir.display()) });
                }
                (Missing::Create, false)
                    if std::io::stdin().is_terminal()
                        && !confirm(&format!("No keystore at {}. Create one?", dir.display()))? =>
                {
                    return Err(Error::NotFound { what: format!("keystore {}", dir.display()) });
                }
                _ => {}
            }
            let unlock = if let Some(f) = &g.key_file {
                StoreKey::key_file(f)
            } else if let Ok(p) = std::env::var("HSMKIT_PASSPHRASE") {
                StoreKey::passphrase(&Zeroizing::new(p))
            } else if std::io::stdin().is_terminal() && !exists {
                let first = prompt(&format!("new passphrase for {}", dir.display()))?;
                if *first != *prompt("the same passphrase again")? {
                    return Err(Error::invalid("the two passphrases differ; nothing was created"));
                }
                StoreKey::passphrase(&first)
            } else if std::io::stdin().is_terminal() {
                StoreKey::passphrase(&prompt(&format!("passphrase for {}", dir.display()))?)
            } else {
                return Err(Error::Authentication(format!(
                    "the keystore {} needs a passphrase or key file: set HSMKIT_PASSPHRASE or HSMKIT_KEY_FILE",
                    dir.display()
                )));
            };
            let storage = if exists {
                FileStorage::open(&dir, &unlock)?
            } else {
                FileStorage::create(&dir, &unlock, KdfParams::default())?
            };
            Store::new(SoftBackend::with_storage(storage).with_engine(SoftEngine::fastest()))
        }
    })
}
