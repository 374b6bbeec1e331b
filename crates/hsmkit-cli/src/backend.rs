//! Picks the store: `--pkcs11`, else `--store`, else the default keystore; asks on the
//! terminal for what is missing. Opening is `hsmkit-open`'s, as for Python and C.

use hsmkit::InvalidReason;
use std::io::IsTerminal;
use std::path::PathBuf;

use hsmkit::{Error, Result, Store};
use hsmkit_open::{Create, Location, OpenOptions};
use zeroize::Zeroizing;

use crate::cli::Global;

/// The default keystore: `<data dir>/hsmkit/store`.
pub(crate) fn default_store() -> Result<PathBuf> {
    dirs::data_dir().map(|d| d.join("hsmkit").join("store")).ok_or_else(|| {
        Error::invalid(
            InvalidReason::Parameter,
            "no data directory for this user: give --store PATH or set HSMKIT_STORE",
        )
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
    let (location, options) = match &g.pkcs11 {
        Some(uri) => {
            let location = Location::parse(uri)?;
            if !matches!(location, Location::Pkcs11(_)) {
                return Err(Error::invalid(
                    InvalidReason::Malformed,
                    "--pkcs11 takes a PKCS#11 URI (pkcs11:token=...)",
                ));
            }
            let mut options = OpenOptions::new();
            if location.pin_from_environment()
                && std::env::var_os("HSMKIT_PKCS11_PIN").is_none()
                && std::io::stdin().is_terminal()
            {
                options = options.pin(&prompt("PKCS#11 user PIN")?);
            }
            (location, options)
        }
        None => {
            let dir = match &g.store {
                Some(d) => d.clone(),
                None => default_store()?,
            };
            let location = Location::Keystore(dir.clone());
            let exists = location.exists();
            let create = match missing {
                Missing::Refuse => Create::Never,
                Missing::CreateNew => Create::New,
                Missing::Create
                    if !exists
                        && std::io::stdin().is_terminal()
                        && !confirm(&format!("No keystore at {}. Create one?", dir.display()))? =>
                {
                    return Err(Error::NotFound { what: format!("keystore {}", dir.display()) });
                }
                Missing::Create => Create::IfMissing,
            };
            let options = OpenOptions::new().create(create);
            // A refused or clashing store is reported before any passphrase is asked for.
            match (create, exists) {
                (Create::Never, false) | (Create::New, true) => {
                    return hsmkit_open::open_location(location, &options);
                }
                _ => {}
            }
            let options = if let Some(f) = &g.key_file {
                options.key_file(f)
            } else if let Ok(p) = std::env::var("HSMKIT_PASSPHRASE") {
                options.passphrase(&Zeroizing::new(p))
            } else if std::io::stdin().is_terminal() && !exists {
                let first = prompt(&format!("new passphrase for {}", dir.display()))?;
                if *first != *prompt("the same passphrase again")? {
                    return Err(Error::invalid(
                        InvalidReason::Parameter,
                        "the two passphrases differ; nothing was created",
                    ));
                }
                options.passphrase(&first)
            } else if std::io::stdin().is_terminal() {
                options.passphrase(&prompt(&format!("passphrase for {}", dir.display()))?)
            } else {
                return Err(Error::Authentication(format!(
                    "the keystore {} needs a passphrase or key file: set HSMKIT_PASSPHRASE or HSMKIT_KEY_FILE",
                    dir.display()
                )));
            };
            (location, options)
        }
    };
    hsmkit_open::open_location(location, &options)
}
