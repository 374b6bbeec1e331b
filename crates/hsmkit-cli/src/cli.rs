//! The command line, as clap sees it. The names are the contract (README, issue 6).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Keys that never leave their backend: sign, verify, encrypt, decrypt, wrap, unwrap and
/// seal files by key name, on an encrypted local keystore or a PKCS#11 token.
///
/// Exit codes: 0 ok, 1 verification failed (signature invalid, audit chain broken),
/// 2 usage or invalid input, 3 not found, 4 permission denied or authentication failed,
/// 5 any other error.
#[derive(Debug, Parser)]
#[command(name = "hsmkit", version, max_term_width = 100)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Where the keys are, and how to print.
#[derive(Debug, Args, Clone)]
pub(crate) struct Global {
    /// Encrypted keystore directory (created on first use). Default: the user's data dir
    /// (e.g. ~/.local/share/hsmkit/store). Unlocked by HSMKIT_KEY_FILE, else
    /// HSMKIT_PASSPHRASE, else a prompt on a terminal.
    #[arg(long, global = true, env = "HSMKIT_STORE", value_name = "PATH")]
    pub(crate) store: Option<PathBuf>,
    /// A PKCS#11 token instead of the keystore (RFC 7512 URI), e.g.
    /// 'pkcs11:token=t?module-path=/usr/lib/softhsm/libsofthsm2.so'. PIN from the URI,
    /// HSMKIT_PKCS11_PIN or a prompt.
    #[arg(long, global = true, env = "HSMKIT_PKCS11_URI", value_name = "URI", conflicts_with = "store")]
    pub(crate) pkcs11: Option<String>,
    /// Unlock the keystore with this raw key file (64 hex digits) instead of a passphrase.
    #[arg(long, global = true, env = "HSMKIT_KEY_FILE", value_name = "FILE")]
    pub(crate) key_file: Option<PathBuf>,
    /// Append an audit record for every operation to this JSON-lines file, chained and
    /// authenticated under the store's audit key (`hsmkit-audit`, created on first use).
    #[arg(long, global = true, env = "HSMKIT_AUDIT_LOG", value_name = "FILE")]
    pub(crate) audit_log: Option<PathBuf>,
    /// Print one JSON document per command (for scripts).
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create, list, inspect, rotate, update, delete, import and export keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Set, read, list, update, delete and recover secrets: versioned values (up to
    /// 25 KiB) sealed under the store's secrets key.
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Certificates: versions of an X.509 certificate (and chain) bound to a key of the
    /// same name, self-signed or signed by a CA from a request; import, export, merge,
    /// renew, delete and recover.
    #[command(subcommand)]
    Cert(CertCommand),
    /// Sign data (or a digest) with a key's current version.
    Sign(SignArgs),
    /// Verify a signature; exit status 0 if valid, 1 if not.
    Verify(VerifyArgs),
    /// Encrypt with an RSA key's public part (RSA-OAEP, RSA-OAEP-256).
    Encrypt(CryptArgs),
    /// Decrypt with an RSA key.
    Decrypt(CryptArgs),
    /// Wrap key bytes (A*KW, A*KWP with an AES key; RSA-OAEP* with an RSA key).
    Wrap(CryptArgs),
    /// Unwrap key bytes.
    Unwrap(CryptArgs),
    /// Seal data of any size into an envelope for one or more KEKs (streaming).
    Seal(SealArgs),
    /// Open an envelope with whichever of its KEKs the backend holds (streaming).
    Unseal(UnsealArgs),
    /// Re-wrap an envelope's data key for other KEKs, without touching its body.
    Rewrap(RewrapArgs),
    /// JSON Web Tokens: sign with a key's current version; verify with the version the
    /// token's `kid` (NAME/VERSION) names, exit status 0 if valid, 1 if not.
    #[command(subcommand)]
    Jwt(JwtCommand),
    /// Print a JWK Set (JSON) of the named keys' enabled, currently valid versions (RSA,
    /// EC, Ed25519), each with kid NAME/VERSION, for verifiers of their tokens.
    Jwks(JwksArgs),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Make a PKCS#10 certificate request (PEM) signed by a key, which stays in its
    /// backend.
    Csr(CsrArgs),
    /// What the store can do: backend, engine, where metadata lives, the key types it
    /// generates, the algorithms it signs, decrypts, wraps and unwraps with, and notes.
    Info,
    /// Tour every feature on a throw-away keystore, printing each command it runs.
    Demo,
    /// Create the keystore (`--store`, or the default one). Other commands never create
    /// one, except `key create`, `key import` and `secret set` (which ask first on a
    /// terminal).
    Init,
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeyCommand {
    /// Create a key (version 1).
    Create(CreateArgs),
    /// List keys (current versions), or deleted keys.
    List {
        /// List soft-deleted keys instead.
        #[arg(long)]
        deleted: bool,
    },
    /// Show a key's current version, or one version.
    Show(NameVersion),
    /// List every version of a key.
    Versions { name: String },
    /// Make a new version, which becomes current.
    Rotate { name: String },
    /// Change a version's attributes (default: the current version).
    Update(UpdateArgs),
    /// Soft-delete a key (all versions); recoverable until purged.
    Delete { name: String },
    /// Recover a soft-deleted key.
    Recover { name: String },
    /// Purge a soft-deleted key for good (refused under purge protection).
    Purge { name: String },
    /// Set or clear a key's rotation policy.
    Policy(PolicyArgs),
    /// Rotate every key whose rotation policy says it is due, and report.
    RotateDue,
    /// Import a key (public, private or AES) from PEM, DER, JWK or raw AES bytes.
    Import(ImportArgs),
    /// Export a key's public part (RSA, EC).
    Public(PublicArgs),
    /// Write a backup of a key (every version, its material and attributes), sealed under
    /// the store's backup key (`hsmkit-backup`, made on first use), to stdout or --out.
    /// Software keystore only: a token's keys never leave it.
    Backup(BackupArgs),
    /// Restore a key from a backup (--file or stdin) under the name it was backed up
    /// from, into the store it came from or one holding the same backup key. Refused if
    /// a key (live or deleted) has that name.
    Restore(RestoreArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum SecretCommand {
    /// Add a version holding a value (from --value, --file, or stdin), which becomes
    /// current; creates the secret if there is none.
    Set(SecretSetArgs),
    /// Write a version's value, exactly, to stdout or --out (default: current version).
    Get(SecretGetArgs),
    /// Show a version's metadata (never its value).
    Show(NameVersion),
    /// List secrets (their current versions' metadata).
    List,
    /// List every version of a secret (metadata).
    Versions { name: String },
    /// Change a version's attributes (default: the current version); not its value.
    Update(SecretUpdateArgs),
    /// Soft-delete a secret (all versions); recoverable until purged.
    Delete { name: String },
    /// Recover a soft-deleted secret.
    Recover { name: String },
    /// Purge a soft-deleted secret for good (refused under purge protection).
    Purge { name: String },
    /// List soft-deleted secrets.
    #[command(alias = "deleted")]
    ListDeleted,
    /// List the versions due for rotation: expiring within --within, or due by their
    /// secret's rotation policy. Nothing is changed: set a new value to rotate.
    Due {
        /// ISO 8601 duration from now.
        #[arg(long, value_name = "DURATION", default_value = "P30D")]
        within: String,
    },
    /// Show a secret's rotation policy, or set or clear it.
    Policy(PolicyArgs),
    /// Write a backup of a secret (every version, values included, and its state), sealed
    /// under the store's backup key (`hsmkit-backup`, made on first use), to stdout or
    /// --out. Never the values in clear.
    Backup(BackupArgs),
    /// Restore a secret from a backup (--file or stdin) under the name it was backed up
    /// from, into the store it came from or one holding the same backup key. Refused if
    /// a secret (live or deleted) has that name.
    Restore(RestoreArgs),
}

#[derive(Debug, Args)]
pub(crate) struct BackupArgs {
    pub(crate) name: String,
    /// Write the backup to this file (mode 0600, replaced whole) instead of stdout.
    #[arg(long = "out", value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct RestoreArgs {
    /// The backup file (default: stdin).
    #[arg(long, visible_alias = "in", value_name = "FILE")]
    pub(crate) file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct SecretSetArgs {
    pub(crate) name: String,
    /// The value, as text. Other users may see a command line (ps, shell history):
    /// prefer --file or stdin.
    #[arg(long, value_name = "VALUE", conflicts_with = "file")]
    pub(crate) value: Option<String>,
    /// Read the value from this file, byte for byte (a trailing newline is kept).
    #[arg(long, value_name = "FILE")]
    pub(crate) file: Option<PathBuf>,
    /// What the value is (text/plain, application/x-pkcs12, ...); up to 255 characters.
    #[arg(long, value_name = "TYPE")]
    pub(crate) content_type: Option<String>,
    /// Not valid before: RFC 3339 time, or an ISO 8601 duration from now (P1D, PT12H).
    #[arg(long, value_name = "TIME")]
    pub(crate) not_before: Option<String>,
    /// Expires: RFC 3339 time, or an ISO 8601 duration from now (P90D).
    #[arg(long, value_name = "TIME")]
    pub(crate) expires: Option<String>,
    /// A tag, KEY=VALUE (repeat for more).
    #[arg(long = "tag", value_name = "K=V")]
    pub(crate) tags: Vec<String>,
    /// Set the new version disabled (it cannot be read until enabled).
    #[arg(long)]
    pub(crate) disabled: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SecretGetArgs {
    pub(crate) name: String,
    /// A version other than the current one.
    #[arg(long)]
    pub(crate) version: Option<u32>,
    /// Write the value to this file (mode 0600, replaced whole) instead of stdout. With
    /// --json, stdout then gets the metadata only.
    #[arg(long = "out", value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct SecretUpdateArgs {
    pub(crate) name: String,
    /// The version to change (default: current).
    #[arg(long)]
    pub(crate) version: Option<u32>,
    #[arg(long, conflicts_with = "disable")]
    pub(crate) enable: bool,
    #[arg(long)]
    pub(crate) disable: bool,
    /// RFC 3339 time, or an ISO 8601 duration from now.
    #[arg(long, value_name = "TIME", conflicts_with = "no_expires")]
    pub(crate) expires: Option<String>,
    /// Remove the expiry.
    #[arg(long)]
    pub(crate) no_expires: bool,
    /// RFC 3339 time, or an ISO 8601 duration from now.
    #[arg(long, value_name = "TIME", conflicts_with = "no_not_before")]
    pub(crate) not_before: Option<String>,
    /// Remove not-before.
    #[arg(long)]
    pub(crate) no_not_before: bool,
    #[arg(long, value_name = "TYPE", conflicts_with = "no_content_type")]
    pub(crate) content_type: Option<String>,
    /// Remove the content type.
    #[arg(long)]
    pub(crate) no_content_type: bool,
    /// Replace the tags with these (KEY=VALUE, repeat).
    #[arg(long = "tag", value_name = "K=V", conflicts_with = "clear_tags")]
    pub(crate) tags: Vec<String>,
    /// Remove every tag.
    #[arg(long)]
    pub(crate) clear_tags: bool,
}

#[derive(Debug, Args)]
pub(crate) struct NameVersion {
    pub(crate) name: String,
    /// A version other than the current one.
    #[arg(long)]
    pub(crate) version: Option<u32>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum KeyTypeArg {
    Rsa,
    Ec,
    Aes,
    Ed25519,
    Hmac,
}

#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    pub(crate) name: String,
    #[arg(long = "type", value_enum)]
    pub(crate) key_type: KeyTypeArg,
    /// RSA: 2048 (default), 3072, 4096. AES: 128, 192, 256 (default). HMAC: 256
    /// (default), 384, 512. The defaults are the library's, as in Python and C.
    #[arg(long)]
    pub(crate) size: Option<u32>,
    /// EC: P-256 (default), P-384, P-521, P-256K (secp256k1).
    #[arg(long)]
    pub(crate) curve: Option<String>,
    #[command(flatten)]
    pub(crate) attrs: AttrArgs,
    /// Allow `hsmkit`'s library to export the private key (software keystore only).
    #[arg(long)]
    pub(crate) exportable: bool,
}

#[derive(Debug, Args)]
pub(crate) struct AttrArgs {
    /// Allowed operations, comma-separated: sign,verify,encrypt,decrypt,wrapKey,unwrapKey.
    #[arg(long)]
    pub(crate) ops: Option<String>,
    /// Not valid before: RFC 3339 time, or an ISO 8601 duration from now (P1D, PT12H).
    #[arg(long, value_name = "TIME")]
    pub(crate) not_before: Option<String>,
    /// Expires: RFC 3339 time, or an ISO 8601 duration from now (P90D).
    #[arg(long, value_name = "TIME")]
    pub(crate) expires: Option<String>,
    /// A tag, KEY=VALUE (repeat for more).
    #[arg(long = "tag", value_name = "K=V")]
    pub(crate) tags: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct UpdateArgs {
    pub(crate) name: String,
    #[arg(long)]
    pub(crate) version: Option<u32>,
    #[arg(long, value_name = "true|false")]
    pub(crate) enabled: Option<bool>,
    /// Allowed operations (replace).
    #[arg(long)]
    pub(crate) ops: Option<String>,
    /// RFC 3339 time, ISO duration from now, or 'none' to clear.
    #[arg(long, value_name = "TIME")]
    pub(crate) not_before: Option<String>,
    /// RFC 3339 time, ISO duration from now, or 'none' to clear.
    #[arg(long, value_name = "TIME")]
    pub(crate) expires: Option<String>,
    /// Replace the tags with these (KEY=VALUE, repeat).
    #[arg(long = "tag", value_name = "K=V")]
    pub(crate) tags: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct PolicyArgs {
    pub(crate) name: String,
    /// Rotate when the current version is this old (ISO 8601 duration, e.g. P90D).
    #[arg(long, value_name = "DURATION")]
    pub(crate) rotate_after: Option<String>,
    /// Rotate when the current version expires within this time.
    #[arg(long, value_name = "DURATION")]
    pub(crate) rotate_before_expiry: Option<String>,
    /// New versions expire this long after creation.
    #[arg(long, value_name = "DURATION")]
    pub(crate) expires_after: Option<String>,
    /// Remove the policy.
    #[arg(long, conflicts_with_all = ["rotate_after", "rotate_before_expiry", "expires_after"])]
    pub(crate) clear: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum ImportFormat {
    Pem,
    Der,
    Jwk,
    /// Raw AES key bytes (16, 24 or 32).
    Raw,
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    pub(crate) name: String,
    /// The key file (default: stdin).
    #[arg(long = "in", value_name = "FILE")]
    pub(crate) input: Option<PathBuf>,
    /// Default: detected (PEM, DER or JWK).
    #[arg(long, value_enum)]
    pub(crate) format: Option<ImportFormat>,
    #[command(flatten)]
    pub(crate) attrs: AttrArgs,
    #[arg(long)]
    pub(crate) exportable: bool,
    /// Import as a new version of an existing key.
    #[arg(long)]
    pub(crate) new_version: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum PublicFormat {
    Pem,
    Der,
    Jwk,
}

#[derive(Debug, Args)]
pub(crate) struct PublicArgs {
    pub(crate) name: String,
    #[arg(long)]
    pub(crate) version: Option<u32>,
    #[arg(long, value_enum, default_value = "pem")]
    pub(crate) format: PublicFormat,
    /// Default: stdout.
    #[arg(long = "out", value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct InOut {
    /// Input file (default: stdin).
    #[arg(long = "in", value_name = "FILE")]
    pub(crate) input: Option<PathBuf>,
    /// Output file (default: stdout).
    #[arg(long = "out", value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// ECDSA: r||s (JOSE); every other algorithm: its one encoding.
    Raw,
    /// ECDSA as a DER SEQUENCE (what OpenSSL reads and writes); RSA, EdDSA and HMAC
    /// signatures are the same in both encodings.
    Der,
}

#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    pub(crate) name: String,
    /// RS256/384/512, PS256/384/512, ES256/384/512, ES256K, EdDSA, HS256/384/512.
    #[arg(long)]
    pub(crate) alg: String,
    #[command(flatten)]
    pub(crate) io: InOut,
    /// The input is a digest of the algorithm's hash, not the message (RSA and ECDSA;
    /// EdDSA and HMAC sign the message only).
    #[arg(long)]
    pub(crate) digest: bool,
    #[arg(long, value_enum, default_value = "raw")]
    pub(crate) encoding: Encoding,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    pub(crate) name: String,
    #[arg(long)]
    pub(crate) alg: String,
    /// The signature file.
    #[arg(long, value_name = "FILE")]
    pub(crate) signature: PathBuf,
    /// The signed data (default: stdin).
    #[arg(long = "in", value_name = "FILE")]
    pub(crate) input: Option<PathBuf>,
    #[arg(long)]
    pub(crate) digest: bool,
    #[arg(long, value_enum, default_value = "raw")]
    pub(crate) encoding: Encoding,
    /// Verify with this version (default: current).
    #[arg(long)]
    pub(crate) version: Option<u32>,
}

#[derive(Debug, Args)]
pub(crate) struct CryptArgs {
    pub(crate) name: String,
    /// encrypt/decrypt: RSA-OAEP, RSA-OAEP-256. wrap/unwrap: A128KW ... A256KWP, RSA-OAEP*.
    #[arg(long)]
    pub(crate) alg: String,
    /// OAEP label (encrypt/decrypt).
    #[arg(long)]
    pub(crate) label: Option<String>,
    /// Decrypt/unwrap with this version (default: current).
    #[arg(long)]
    pub(crate) version: Option<u32>,
    #[command(flatten)]
    pub(crate) io: InOut,
}

#[derive(Debug, Args)]
pub(crate) struct SealArgs {
    /// The KEK (its current version).
    pub(crate) name: String,
    /// More KEKs that can open it (repeat).
    #[arg(long = "to", value_name = "NAME")]
    pub(crate) to: Vec<String>,
    /// Encryption context, KEY=VALUE (repeat); needed again to unseal.
    #[arg(long = "aad", value_name = "K=V")]
    pub(crate) aad: Vec<String>,
    /// Plaintext bytes per chunk (256 to 16777216; default 65536).
    #[arg(long)]
    pub(crate) chunk_size: Option<u32>,
    /// Envelope suite: 2 (HKDF-SHA-256, the default) or 1 (HKDF-SHA-512, for readers
    /// older than suite 2).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub(crate) suite: Option<u8>,
    #[command(flatten)]
    pub(crate) io: InOut,
}

#[derive(Debug, Args)]
pub(crate) struct UnsealArgs {
    /// The encryption context it was sealed with, KEY=VALUE (repeat).
    #[arg(long = "aad", value_name = "K=V")]
    pub(crate) aad: Vec<String>,
    #[command(flatten)]
    pub(crate) io: InOut,
}

#[derive(Debug, Args)]
pub(crate) struct RewrapArgs {
    /// The new KEKs (current versions; repeat).
    #[arg(long = "to", value_name = "NAME", required = true)]
    pub(crate) to: Vec<String>,
    /// Keep the existing recipients and add these.
    #[arg(long)]
    pub(crate) add: bool,
    /// The encryption context it was sealed with, KEY=VALUE (repeat); required to rewrap,
    /// as to unseal.
    #[arg(long = "aad", value_name = "K=V")]
    pub(crate) aad: Vec<String>,
    #[command(flatten)]
    pub(crate) io: InOut,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Check an audit log against the store's audit key (so it needs the store's passphrase
    /// or PIN); exit status 1 if a record was removed, changed, forged or
    /// reordered.
    Verify {
        /// Default: --audit-log / HSMKIT_AUDIT_LOG.
        file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum JwtCommand {
    /// Sign a JWT with a key's current version; prints the compact token.
    Sign(JwtSignArgs),
    /// Verify a JWT (signature, then exp/nbf/iat with 60 s leeway, iss, aud) with the key
    /// version its kid names; exit status 0 if valid, 1 if not.
    Verify(JwtVerifyArgs),
}

#[derive(Debug, Args)]
pub(crate) struct JwtSignArgs {
    pub(crate) name: String,
    /// RS256/384/512, PS256/384/512, ES256/384/512, ES256K, EdDSA, HS256/384/512.
    #[arg(long)]
    pub(crate) alg: String,
    /// The claims, a JSON object, e.g. '{"sub":"alice","aud":"api"}'.
    #[arg(long, value_name = "JSON")]
    pub(crate) claims: String,
    /// Add exp this long from now (ISO 8601 duration: PT15M, P1D).
    #[arg(long, value_name = "DURATION")]
    pub(crate) expires_in: Option<String>,
    /// Add nbf: RFC 3339 time, or an ISO 8601 duration from now.
    #[arg(long, value_name = "TIME")]
    pub(crate) not_before: Option<String>,
    /// Do not add iat (the claims may then carry their own).
    #[arg(long)]
    pub(crate) no_iat: bool,
    /// More protected-header members, a JSON object (not alg, kid, crit); typ defaults
    /// to JWT.
    #[arg(long, value_name = "JSON")]
    pub(crate) header: Option<String>,
    /// Write the token to this file instead of stdout.
    #[arg(long = "out", value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct JwtVerifyArgs {
    /// The compact token. Default: read from --in or stdin (a command line is visible to
    /// other users).
    #[arg(long, value_name = "TOKEN", conflicts_with = "input")]
    pub(crate) token: Option<String>,
    /// Read the token from this file.
    #[arg(long = "in", value_name = "FILE")]
    pub(crate) input: Option<PathBuf>,
    /// An audience the token must name in aud (repeat to accept any of several). Without
    /// it, a token that names an audience is refused.
    #[arg(long = "audience", value_name = "AUD")]
    pub(crate) audiences: Vec<String>,
    /// The issuer the token's iss must equal.
    #[arg(long, value_name = "ISS")]
    pub(crate) issuer: Option<String>,
    /// Accept only this algorithm (repeat for more). Default: any that fits the key.
    #[arg(long = "alg", value_name = "ALG")]
    pub(crate) algs: Vec<String>,
    /// Clock skew allowed for exp, nbf and iat, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub(crate) leeway: u64,
    /// Accept a token without exp.
    #[arg(long)]
    pub(crate) no_exp: bool,
}

#[derive(Debug, Args)]
pub(crate) struct JwksArgs {
    /// The keys (every enabled, currently valid version of each).
    #[arg(required = true, value_name = "KEY")]
    pub(crate) names: Vec<String>,
    /// Write the document to this file instead of stdout.
    #[arg(long = "out", value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct CsrArgs {
    /// The key whose public key the request is for (and which signs it).
    pub(crate) name: String,
    /// The subject: RFC 4514 (`CN=host,O=Example`) or OpenSSL's `/O=Example/CN=host`.
    #[arg(long, value_name = "DN")]
    pub(crate) subject: String,
    /// A subject alternative name: dns:HOST, ip:ADDRESS, email:ADDRESS or uri:URI
    /// (repeatable).
    #[arg(long, value_name = "KIND:VALUE")]
    pub(crate) san: Vec<String>,
    /// Key usage to ask for: digitalSignature, keyEncipherment, keyCertSign, ...
    /// (repeatable).
    #[arg(long = "key-usage", value_name = "USAGE")]
    pub(crate) key_usage: Vec<String>,
    /// Extended key usage to ask for: serverAuth, clientAuth, codeSigning,
    /// emailProtection, timeStamping, OCSPSigning (repeatable).
    #[arg(long, value_name = "PURPOSE")]
    pub(crate) eku: Vec<String>,
    /// Ask for a CA certificate (basic constraints).
    #[arg(long)]
    pub(crate) ca: bool,
    /// The path length constraint to ask for, with --ca.
    #[arg(long, requires = "ca")]
    pub(crate) path_len: Option<u8>,
    /// The signature algorithm (default: RS256 for RSA, the curve's ES* for EC, EdDSA).
    #[arg(long)]
    pub(crate) alg: Option<String>,
    /// The key version (default: current).
    #[arg(long)]
    pub(crate) version: Option<u32>,
    /// Write the PEM here (default: stdout).
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CertCommand {
    /// Create a certificate and its key (or the next version of an existing one): with
    /// --issuer self, version 1 at once; with --issuer unknown, a pending request (CSR,
    /// printed or written to --csr-out) for a CA to sign, then `cert merge`.
    Create(CertCreateArgs),
    /// Issue a certificate for a request (CSR) with a CA certificate object's key; prints
    /// the new certificate (PEM). The key never leaves its backend.
    Issue(CertIssueArgs),
    /// Write a version's certificate (PEM, or the leaf in DER), with --chain its issuers,
    /// with --with-key its private key (PKCS#8 PEM, only when created exportable).
    Export(CertExportArgs),
    /// Show a certificate's current version (or one version), its policy and any pending
    /// request.
    Show(NameVersion),
    /// List certificates (their current versions).
    List,
    /// List every version of a certificate.
    Versions { name: String },
    /// Import a certificate and its private key from PKCS#12 (--pfx) or PEM (--pem): a
    /// new certificate, or the next version of an existing one.
    Import(CertImportArgs),
    /// Complete a pending request with the certificate the CA signed (PEM, the leaf
    /// first, then its issuers); its public key must be the pending request's.
    Merge(CertMergeArgs),
    /// Print a certificate's pending request (CSR, PEM), or cancel it.
    Pending(CertPendingArgs),
    /// Make the next version under the certificate's policy (self-signed: at once;
    /// --issuer unknown: a pending request, printed as `create` prints it).
    Renew(CertRenewArgs),
    /// Renew every self-signed certificate whose policy says it is due; list the others
    /// that are due (a CA must sign those: `cert renew NAME` makes their request).
    RenewDue,
    /// List the certificates due for renewal (by their policy, or expired); nothing is
    /// changed.
    Due,
    /// Soft-delete a certificate and its key (all versions); recoverable until purged.
    Delete { name: String },
    /// Recover a soft-deleted certificate and its key.
    Recover { name: String },
    /// Purge a soft-deleted certificate and its key for good (refused under purge
    /// protection).
    Purge { name: String },
    /// List soft-deleted certificates.
    #[command(alias = "list-deleted")]
    Deleted,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum CertKeyType {
    Rsa,
    Ec,
    Ed25519,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum CertIssuerArg {
    /// Signed by its own key.
    #[value(name = "self")]
    SelfSigned,
    /// Signed by a CA outside hsmkit (or by `hsmkit cert issue`): a pending request until
    /// `cert merge`.
    Unknown,
}

#[derive(Debug, Args)]
pub(crate) struct CertCreateArgs {
    /// The certificate's name (its key gets the same name).
    pub(crate) name: String,
    /// The subject: RFC 4514 (`CN=host,O=Example`) or OpenSSL's `/O=Example/CN=host`.
    #[arg(long, value_name = "DN")]
    pub(crate) subject: String,
    /// A subject alternative name: dns:HOST, ip:ADDRESS, email:ADDRESS or uri:URI
    /// (repeatable).
    #[arg(long, value_name = "KIND:VALUE")]
    pub(crate) san: Vec<String>,
    /// The key type.
    #[arg(long = "type", value_enum, default_value = "rsa")]
    pub(crate) key_type: CertKeyType,
    /// RSA: 2048 (default), 3072, 4096.
    #[arg(long)]
    pub(crate) size: Option<u32>,
    /// EC: P-256 (default), P-384, P-521.
    #[arg(long)]
    pub(crate) curve: Option<String>,
    /// Who signs: the certificate's own key, or a CA (a pending request until merged).
    #[arg(long, value_enum, default_value = "self")]
    pub(crate) issuer: CertIssuerArg,
    /// A CA certificate (basic constraints; key usage keyCertSign, cRLSign).
    #[arg(long)]
    pub(crate) ca: bool,
    /// Validity of each version, in calendar months (1 to 1200).
    #[arg(long, value_name = "N", default_value_t = 12)]
    pub(crate) validity_months: u32,
    /// Key usage: digitalSignature, keyEncipherment, keyCertSign, ... (repeatable).
    #[arg(long = "key-usage", value_name = "USAGE")]
    pub(crate) key_usage: Vec<String>,
    /// Extended key usage: serverAuth, clientAuth, codeSigning, emailProtection,
    /// timeStamping, OCSPSigning (repeatable).
    #[arg(long, value_name = "PURPOSE")]
    pub(crate) eku: Vec<String>,
    /// Allow the private key to be exported (`cert export --with-key`; software keystore
    /// only).
    #[arg(long)]
    pub(crate) exportable: bool,
    /// Renewal keeps the current key (default: a new key version each renewal).
    #[arg(long)]
    pub(crate) reuse_key: bool,
    /// Due for renewal once this share of the validity has passed (1 to 99; default 80).
    #[arg(long, value_name = "PERCENT", conflicts_with_all = ["renew_days_before_expiry", "no_auto_renew"])]
    pub(crate) renew_at_percent: Option<u8>,
    /// Due for renewal this many days before expiry.
    #[arg(long, value_name = "DAYS", conflicts_with = "no_auto_renew")]
    pub(crate) renew_days_before_expiry: Option<u32>,
    /// Never due for renewal before it expires.
    #[arg(long)]
    pub(crate) no_auto_renew: bool,
    /// With --issuer unknown: write the request (PEM) here instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub(crate) csr_out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct CertIssueArgs {
    /// The CA: a certificate object (made with `cert create --ca`, or imported) whose
    /// key signs.
    pub(crate) ca_name: String,
    /// The request (PEM or DER).
    #[arg(long, value_name = "FILE")]
    pub(crate) csr: PathBuf,
    /// Days of validity (default 365; never past the CA certificate's end).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub(crate) days: Option<u32>,
    /// Issue a CA certificate.
    #[arg(long)]
    pub(crate) ca: bool,
    /// The new CA's path length constraint, with --ca.
    #[arg(long, requires = "ca")]
    pub(crate) path_len: Option<u8>,
    /// Append the CA's certificate chain after the new certificate (what `cert merge`
    /// takes).
    #[arg(long)]
    pub(crate) chain: bool,
    /// Write the PEM here (default: stdout).
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum CertFormat {
    Pem,
    /// The leaf certificate only.
    Der,
}

#[derive(Debug, Args)]
pub(crate) struct CertExportArgs {
    pub(crate) name: String,
    /// A version other than the current one.
    #[arg(long)]
    pub(crate) version: Option<u32>,
    /// The leaf and its issuers (PEM only).
    #[arg(long)]
    pub(crate) chain: bool,
    #[arg(long, value_enum, default_value = "pem")]
    pub(crate) format: CertFormat,
    /// Also the private key (PKCS#8 PEM, before the certificates; PEM only): refused
    /// unless the certificate was created or imported --exportable.
    #[arg(long)]
    pub(crate) with_key: bool,
    /// Write to this file (mode 0600, replaced whole) instead of stdout.
    #[arg(long = "out", value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["pfx", "pem"])))]
pub(crate) struct CertImportArgs {
    pub(crate) name: String,
    /// A PKCS#12 file (.pfx, .p12). Its password comes from --password-env,
    /// --password-file, a prompt on a terminal, or else the first line of stdin.
    #[arg(long, value_name = "FILE")]
    pub(crate) pfx: Option<PathBuf>,
    /// A PEM file with the certificate (and any issuers) and its private key, in any
    /// order.
    #[arg(long, value_name = "FILE")]
    pub(crate) pem: Option<PathBuf>,
    /// The environment variable holding the PKCS#12 password.
    #[arg(long, value_name = "VAR", requires = "pfx", conflicts_with = "password_file")]
    pub(crate) password_env: Option<String>,
    /// A file whose first line is the PKCS#12 password.
    #[arg(long, value_name = "FILE", requires = "pfx")]
    pub(crate) password_file: Option<PathBuf>,
    /// Allow the private key to be exported again (software keystore only).
    #[arg(long)]
    pub(crate) exportable: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CertMergeArgs {
    pub(crate) name: String,
    /// The signed certificate (PEM: the leaf first, then its issuers; or one DER
    /// certificate).
    #[arg(long, value_name = "FILE")]
    pub(crate) cert: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct CertPendingArgs {
    pub(crate) name: String,
    /// Cancel the pending request (a certificate that never had a version goes with its
    /// key).
    #[arg(long, conflicts_with = "out")]
    pub(crate) cancel: bool,
    /// Write the request (PEM) here instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct CertRenewArgs {
    pub(crate) name: String,
    /// When the renewal makes a request (--issuer unknown): write it (PEM) here instead
    /// of stdout.
    #[arg(long, value_name = "FILE")]
    pub(crate) csr_out: Option<PathBuf>,
}
