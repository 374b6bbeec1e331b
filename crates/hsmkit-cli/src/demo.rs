//! `hsmkit demo`: the tour, as the commands a user would type, run in-process on a
//! throw-away keystore. Each command is printed before its output.

use hsmkit::InvalidReason;
use std::path::Path;

use clap::Parser;
use hsmkit::{Error, Result};

use crate::cli::Cli;
use crate::{Outcome, message, run as run_cli};

struct Demo<'a> {
    dir: &'a Path,
    global: Vec<String>,
}

impl Demo<'_> {
    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// Prints `hsmkit ARGS` and parses it with the demo's store.
    fn parse(&self, args: &[&str]) -> Result<Cli> {
        let shown: Vec<String> = args
            .iter()
            .map(|a| {
                a.strip_prefix(&format!("{}/", self.dir.display())).map_or(a.to_string(), str::to_string)
            })
            .collect();
        outln!("\n$ hsmkit {}", shown.join(" "))?;
        let argv = std::iter::once("hsmkit".to_string())
            .chain(self.global.iter().cloned())
            .chain(args.iter().map(|s| s.to_string()));
        Cli::try_parse_from(argv).map_err(|e| Error::invalid(InvalidReason::Parameter, e.to_string()))
    }

    /// Runs `hsmkit ARGS` with the demo's store; prints what it runs and how it ended.
    fn run(&self, args: &[&str]) -> Result<Outcome> {
        run_cli(&self.parse(args)?)
    }

    /// A step that must succeed.
    fn ok(&self, args: &[&str]) -> Result<()> {
        match self.run(args)? {
            Outcome::Ok => Ok(()),
            Outcome::Invalid => Err(Error::backend("demo", args.join(" "), "unexpectedly reported invalid")),
        }
    }

    /// A step that must fail (or report invalid): shows how.
    fn refused(&self, args: &[&str]) -> Result<()> {
        let cli = self.parse(args)?;
        match run_cli(&cli) {
            Ok(Outcome::Invalid) => outln!("(exit status 1)")?,
            Ok(Outcome::Ok) => return Err(Error::backend("demo", args.join(" "), "unexpectedly succeeded")),
            Err(e) => outln!("hsmkit: {}", message(&e, &cli.command))?,
        }
        Ok(())
    }
}

fn write(dir: &Path, name: &str, data: &[u8]) -> Result<String> {
    let p = dir.join(name);
    std::fs::write(&p, data).map_err(|e| Error::io("writing a demo file", &e))?;
    Ok(p.display().to_string())
}

fn same(a: &str, b: &str) -> Result<bool> {
    let read = |p: &str| std::fs::read(p).map_err(|e| Error::io("reading a demo file", &e));
    Ok(read(a)? == read(b)?)
}

pub(crate) fn run() -> Result<Outcome> {
    let tmp = tempfile::tempdir().map_err(|e| Error::io("creating a temporary directory", &e))?;
    let dir = tmp.path();
    let key_file = dir.join("store.key");
    hsmkit_open::generate_key_file(&key_file)?;
    let d = Demo {
        dir,
        global: vec![
            "--store".into(),
            dir.join("store").display().to_string(),
            "--key-file".into(),
            key_file.display().to_string(),
            "--audit-log".into(),
            dir.join("audit.jsonl").display().to_string(),
        ],
    };
    outln!("hsmkit demo: a throw-away encrypted keystore in {}", dir.display())?;
    outln!("(every command below runs with --store, --key-file and --audit-log pointing there)")?;

    outln!("\n## the store: created explicitly (other commands never create one), and what it can do")?;
    d.ok(&["init"])?;

    outln!("\n## keys: one of each type")?;
    d.ok(&["key", "create", "signer", "--type", "ec", "--curve", "P-256", "--tag", "team=payments"])?;
    d.ok(&[
        "key",
        "create",
        "rsa",
        "--type",
        "rsa",
        "--size",
        "2048",
        "--ops",
        "sign,verify,encrypt,decrypt",
    ])?;
    d.ok(&["key", "create", "kek", "--type", "aes", "--size", "256"])?;

    outln!("\n## sign and verify")?;
    let msg = write(dir, "message.txt", b"pay 100 EUR to alice\n")?;
    let (sig, forged) = (d.path("message.sig"), write(dir, "forged.txt", b"pay 999 EUR to mallory\n")?);
    d.ok(&["sign", "signer", "--alg", "ES256", "--in", &msg, "--out", &sig])?;
    d.ok(&["verify", "signer", "--alg", "ES256", "--signature", &sig, "--in", &msg])?;
    d.refused(&["verify", "signer", "--alg", "ES256", "--signature", &sig, "--in", &forged])?;

    outln!("\n## JWT and JWKS: tokens signed by a key that stays in the store (kid NAME/VERSION)")?;
    let token = d.path("token.jwt");
    let claims = r#"{"sub":"alice","aud":"payments"}"#;
    d.ok(&[
        "jwt",
        "sign",
        "signer",
        "--alg",
        "ES256",
        "--claims",
        claims,
        "--expires-in",
        "PT1H",
        "--out",
        &token,
    ])?;
    d.ok(&["jwt", "verify", "--in", &token, "--audience", "payments"])?;
    d.refused(&["jwt", "verify", "--in", &token, "--audience", "sales"])?;
    d.ok(&["jwks", "signer"])?;

    outln!("\n## X.509: a certificate request (PKCS#10) signed by a key that stays in the store")?;
    d.ok(&[
        "csr",
        "signer",
        "--subject",
        "CN=pay.example.com,O=Example",
        "--san",
        "dns:pay.example.com",
        "--eku",
        "serverAuth",
        "--out",
        &d.path("signer.csr"),
    ])?;

    outln!("\n## certificates: a CA certificate object whose key stays in the store signs that request")?;
    d.ok(&[
        "cert",
        "create",
        "demo-ca",
        "--subject",
        "CN=Demo CA,O=Example",
        "--type",
        "ec",
        "--ca",
        "--validity-months",
        "24",
    ])?;
    d.ok(&[
        "cert",
        "issue",
        "demo-ca",
        "--csr",
        &d.path("signer.csr"),
        "--days",
        "90",
        "--out",
        &d.path("signer.pem"),
    ])?;

    outln!("\n## encrypt and decrypt (RSA-OAEP-256)")?;
    let secret = write(dir, "secret.txt", b"the vault code is 0451\n")?;
    let (enc, dec) = (d.path("secret.enc"), d.path("secret.dec"));
    d.ok(&["encrypt", "rsa", "--alg", "RSA-OAEP-256", "--in", &secret, "--out", &enc])?;
    d.ok(&["decrypt", "rsa", "--alg", "RSA-OAEP-256", "--in", &enc, "--out", &dec])?;
    outln!("decrypted == original: {}", same(&secret, &dec)?)?;
    d.refused(&["decrypt", "signer", "--alg", "RSA-OAEP-256", "--in", &enc])?;

    outln!("\n## wrap and unwrap a data key (A256KW)")?;
    let dek = write(dir, "dek.bin", &[0x42; 32])?;
    let (wrapped, unwrapped) = (d.path("dek.wrapped"), d.path("dek.unwrapped"));
    d.ok(&["wrap", "kek", "--alg", "A256KW", "--in", &dek, "--out", &wrapped])?;
    d.ok(&["unwrap", "kek", "--alg", "A256KW", "--in", &wrapped, "--out", &unwrapped])?;
    outln!("unwrapped == original: {}", same(&dek, &unwrapped)?)?;

    outln!("\n## seal and unseal a file (envelope encryption, streaming)")?;
    let report = write(dir, "report.csv", "quarter,revenue\n".repeat(100_000).as_bytes())?;
    let (sealed, opened) = (d.path("report.csv.hkev"), d.path("report.opened.csv"));
    d.ok(&["seal", "kek", "--aad", "dept=finance", "--in", &report, "--out", &sealed])?;
    d.ok(&["unseal", "--aad", "dept=finance", "--in", &sealed, "--out", &opened])?;
    outln!("unsealed == original: {}", same(&report, &opened)?)?;
    d.refused(&["unseal", "--aad", "dept=sales", "--in", &sealed, "--out", &d.path("nope.csv")])?;
    outln!("no output file after the failure: {}", !dir.join("nope.csv").exists())?;

    outln!("\n## rotate the KEK, rewrap the envelope, retire version 1")?;
    d.ok(&["key", "rotate", "kek"])?;
    let rewrapped = d.path("report.v2.hkev");
    d.ok(&["rewrap", "--to", "kek", "--aad", "dept=finance", "--in", &sealed, "--out", &rewrapped])?;
    d.ok(&["key", "update", "kek", "--version", "1", "--enabled", "false"])?;
    d.ok(&["unseal", "--aad", "dept=finance", "--in", &rewrapped, "--out", &opened])?;
    d.refused(&["unseal", "--aad", "dept=finance", "--in", &sealed, "--out", &opened])?;
    d.ok(&["key", "versions", "kek"])?;

    outln!("\n## secrets: versioned values sealed under the store's secrets key")?;
    let pw = write(dir, "db-password.txt", b"correct horse battery staple")?;
    d.ok(&[
        "secret",
        "set",
        "db-password",
        "--file",
        &pw,
        "--content-type",
        "text/plain",
        "--expires",
        "P90D",
    ])?;
    d.ok(&["secret", "set", "db-password", "--file", &pw, "--tag", "rotated=yes"])?;
    d.ok(&["secret", "versions", "db-password"])?;
    d.ok(&["secret", "get", "db-password", "--version", "1"])?;
    d.ok(&["secret", "update", "db-password", "--version", "1", "--disable"])?;
    d.refused(&["secret", "get", "db-password", "--version", "1"])?;
    d.ok(&["secret", "due", "--within", "P100D"])?;

    outln!("\n## backup and restore: blobs sealed under the store's backup key")?;
    let (secret_backup, key_backup) = (d.path("db-password.backup"), d.path("signer.backup"));
    d.ok(&["secret", "backup", "db-password", "--out", &secret_backup])?;
    d.ok(&["secret", "delete", "db-password"])?;
    d.ok(&["secret", "purge", "db-password"])?;
    d.ok(&["secret", "restore", "--file", &secret_backup])?;
    d.ok(&["key", "backup", "signer", "--out", &key_backup])?;
    d.refused(&["key", "restore", "--file", &key_backup])?;

    outln!("\n## lifecycle and audit")?;
    d.ok(&["key", "delete", "rsa"])?;
    d.ok(&["key", "list", "--deleted"])?;
    d.ok(&["key", "recover", "rsa"])?;
    d.ok(&["key", "list"])?;
    d.ok(&["audit", "verify"])?;
    outln!("\ndone: everything above ran on {}, which is now deleted.", dir.display())?;
    Ok(Outcome::Ok)
}
