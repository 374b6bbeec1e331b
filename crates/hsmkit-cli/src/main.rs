//! `hsmkit`: keys, crypto operations and envelope files from the shell. A thin shell over
//! the `hsmkit` crate; see `hsmkit --help`.
#![forbid(unsafe_code)]
// A new algorithm, key type or operation must be handled everywhere (see hsmkit::algorithm).
#![warn(clippy::wildcard_enum_match_arm)]

use std::process::ExitCode;

use clap::Parser;
use hsmkit::{Error, ErrorKind};

/// `println!` for the command's output, returning an error instead of panicking when
/// stdout is closed (a reader such as `head` that stops early): `main` then ends quietly.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::io::print_line(format_args!($($arg)*))
    };
}

mod backend;
mod backup;
mod certs;
mod cli;
mod demo;
mod envelope;
mod info;
mod io;
mod jose;
mod keys;
mod ops;
mod secrets;
mod x509;

/// What a command reports besides success: `Invalid` for a signature or audit chain that
/// does not verify (exit status 1, not an error).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok,
    Invalid,
}

pub(crate) fn run(cli: &cli::Cli) -> hsmkit::Result<Outcome> {
    io::remove_partial_files_on_signals()?;
    use cli::Command::*;
    match &cli.command {
        Key(k) => keys::run(&cli.global, k),
        Secret(s) => secrets::run(&cli.global, s),
        Cert(c) => certs::run(&cli.global, c),
        Sign(a) => ops::sign(&cli.global, a),
        Verify(a) => ops::verify(&cli.global, a),
        Encrypt(a) => ops::encrypt(&cli.global, a),
        Decrypt(a) => ops::decrypt(&cli.global, a),
        Wrap(a) => ops::wrap(&cli.global, a),
        Unwrap(a) => ops::unwrap(&cli.global, a),
        Seal(a) => envelope::seal(&cli.global, a),
        Unseal(a) => envelope::unseal(&cli.global, a),
        Rewrap(a) => envelope::rewrap(&cli.global, a),
        Jwt(j) => jose::run(&cli.global, j),
        Jwks(a) => jose::jwks(&cli.global, a),
        Audit(cli::AuditCommand::Verify { file }) => ops::audit_verify(&cli.global, file.as_deref()),
        Csr(a) => x509::csr(&cli.global, a),
        Info => info::run(&cli.global),
        Demo => demo::run(),
        Init => info::init(&cli.global),
    }
}

/// The documented exit status of an error.
#[allow(clippy::wildcard_enum_match_arm, reason = "ErrorKind is non_exhaustive: every other kind is 5")]
fn exit_code(e: &Error) -> u8 {
    match e.kind() {
        ErrorKind::VerificationFailed => 1,
        ErrorKind::InvalidInput => 2,
        ErrorKind::NotFound => 3,
        ErrorKind::PermissionDenied | ErrorKind::Authentication => 4,
        _ => 5,
    }
}

/// What is restored, for `secret restore` and `key restore`.
fn restoring(command: &cli::Command) -> Option<&'static str> {
    if matches!(command, cli::Command::Secret(cli::SecretCommand::Restore(_))) {
        Some("secret")
    } else if matches!(command, cli::Command::Key(cli::KeyCommand::Restore(_))) {
        Some("key")
    } else {
        None
    }
}

/// The error as the command reports it: the core's message, or for a restore, what the
/// core's opaque decryption failure and its name clash mean there.
pub(crate) fn message(e: &Error, command: &cli::Command) -> String {
    match (restoring(command), e) {
        (Some(_), Error::DecryptionFailed) => {
            format!("{e}: not a backup of this store's backup key, or altered")
        }
        (Some(object), Error::AlreadyExists { name }) => {
            let name = name.strip_prefix("secret/").unwrap_or(name);
            format!(
                "a {object} named '{name}' exists (live or deleted): restore refuses a name that exists: \
                 delete and purge it first"
            )
        }
        _ => e.to_string(),
    }
}

/// What to do about it, after the error itself.
#[allow(clippy::wildcard_enum_match_arm, reason = "ErrorKind is non_exhaustive: other kinds have no hint")]
fn hint(e: &Error, command: &cli::Command) -> Option<&'static str> {
    let secret = matches!(command, cli::Command::Secret(_));
    let cert = matches!(command, cli::Command::Cert(_));
    let cert_import = matches!(command, cli::Command::Cert(cli::CertCommand::Import(_)));
    let key_backup = matches!(command, cli::Command::Key(cli::KeyCommand::Backup(_)));
    match e.kind() {
        ErrorKind::DecryptionFailed if restoring(command).is_some() => Some(
            "restore into the store the backup was made in, or into one holding the same backup key \
             ('hsmkit-backup', imported into both before either made one)",
        ),
        ErrorKind::Unsupported if key_backup => {
            Some("back up the token itself with its vendor's tools; 'hsmkit secret backup' backs up secrets")
        }
        // The store itself (a token) was not found: listing its keys cannot help.
        ErrorKind::NotFound if matches!(e, Error::NotFound { what } if what.starts_with("PKCS#11 token")) => {
            Some("'pkcs11-tool --module MODULE --list-token-slots' lists the tokens the module sees")
        }
        ErrorKind::NotFound if matches!(e, Error::NotFound { what } if what.starts_with("keystore ")) => {
            Some(
                "'hsmkit init' creates a keystore there ('hsmkit key create' also does); check --store / HSMKIT_STORE",
            )
        }
        ErrorKind::NotFound if secret => Some(
            "'hsmkit secret list' shows the secrets in this store, 'hsmkit secret versions NAME' their versions",
        ),
        ErrorKind::NotFound if cert && e.to_string().contains("pending operation") => {
            Some("'hsmkit cert show NAME' shows whether a request is pending")
        }
        ErrorKind::NotFound if cert => Some(
            "'hsmkit cert list' shows the certificates in this store, 'hsmkit cert deleted' the deleted ones",
        ),
        ErrorKind::NotFound => Some("'hsmkit key list' shows the keys in this store"),
        // The PKCS#12 file's password, unless the store itself refused (its message says).
        ErrorKind::Authentication if cert_import && e.to_string().contains("PKCS#12") => {
            Some("give the file's password with --password-env VAR or --password-file FILE (or on stdin)")
        }
        ErrorKind::Authentication => Some(
            "set HSMKIT_PASSPHRASE or HSMKIT_KEY_FILE for the keystore, or the PIN in the URI / HSMKIT_PKCS11_PIN",
        ),
        ErrorKind::PermissionDenied
            if secret
                && matches!(e, Error::PermissionDenied { reason: hsmkit::Denied::PurgeProtected, .. }) =>
        {
            Some("'hsmkit secret list-deleted' shows when the retention period ends")
        }
        ErrorKind::PermissionDenied if secret => Some(
            "'hsmkit secret show NAME --version N' shows the version's state and dates; \
             'hsmkit secret update' enables it or changes them",
        ),
        ErrorKind::PermissionDenied
            if cert && matches!(e, Error::PermissionDenied { reason: hsmkit::Denied::NotExportable, .. }) =>
        {
            Some("only a certificate created or imported with --exportable exports its private key")
        }
        ErrorKind::PermissionDenied => {
            Some("'hsmkit key show NAME' shows the key's operations, dates and state")
        }
        ErrorKind::DecryptionFailed => {
            Some("the input is damaged, was made for another key, or the --aad/--label differs")
        }
        _ => None,
    }
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse(); // usage errors exit with status 2
    match run(&cli) {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Invalid) => ExitCode::from(1),
        // The reader of stdout went away (`hsmkit key list | head -1`): it chose to read no
        // more, so the command ends quietly with 0, as `ls | head -1` does for the shell.
        Err(Error::Io { kind: std::io::ErrorKind::BrokenPipe, .. }) => ExitCode::SUCCESS,
        Err(e) => {
            // Not eprintln!: it panics when stderr is closed (`hsmkit ... 2>&-`); the exit
            // status still tells what happened.
            use std::io::Write;
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "hsmkit: {}", message(&e, &cli.command));
            if let Some(h) = hint(&e, &cli.command) {
                let _ = writeln!(err, "hint: {h}");
            }
            ExitCode::from(exit_code(&e))
        }
    }
}
