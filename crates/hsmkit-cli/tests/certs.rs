//! `hsmkit cert ...`, run as a process on the keystore and on SoftHSM2: certificates
//! checked by the OpenSSL CLI (`x509 -text`, `verify`, `req -verify`, `pkcs12 -export`),
//! exit codes, and the JSON documents.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

/// A keystore in a temporary directory unlocked by a key file, or a SoftHSM2 token.
struct Env {
    dir: tempfile::TempDir,
    pkcs11: Option<hsmkit_pkcs11::testing::SoftHsmToken>,
}

impl Env {
    fn store() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("store.key"), "5a".repeat(32)).unwrap();
        Env { dir, pkcs11: None }
    }

    fn softhsm() -> Self {
        let token =
            hsmkit_pkcs11::testing::SoftHsmToken::new().expect("SoftHSM2 (tests/run-all.sh installs it)");
        Env { dir: tempfile::tempdir().unwrap(), pkcs11: Some(token) }
    }

    fn soft(&self) -> bool {
        self.pkcs11.is_none()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn p(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    fn write(&self, name: &str, data: &[u8]) -> String {
        std::fs::write(self.path(name), data).unwrap();
        self.p(name)
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap()
    }

    fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("hsmkit").unwrap();
        for v in
            ["HSMKIT_STORE", "HSMKIT_PKCS11_URI", "HSMKIT_KEY_FILE", "HSMKIT_PASSPHRASE", "HSMKIT_AUDIT_LOG"]
        {
            c.env_remove(v);
        }
        match &self.pkcs11 {
            Some(t) => c.env("HSMKIT_PKCS11_URI", t.uri()),
            None => c.env("HSMKIT_STORE", self.path("store")).env("HSMKIT_KEY_FILE", self.path("store.key")),
        };
        c.stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    fn run_in(&self, args: &[&str], stdin: &[u8]) -> Output {
        use std::io::Write;
        let mut child = self
            .cmd()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        let data = stdin.to_vec();
        let feeder = std::thread::spawn(move || {
            let _ = input.write_all(&data);
        });
        let out = child.wait_with_output().unwrap();
        feeder.join().unwrap();
        out
    }

    /// Runs and requires success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "hsmkit {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        serde_json::from_str(&self.ok(&a)).unwrap()
    }

    /// Runs and requires exit status `code`; returns stderr.
    fn fails(&self, code: i32, args: &[&str]) -> String {
        let out = self.run(args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(code), "hsmkit {args:?}: {err}");
        assert!(out.stdout.is_empty(), "hsmkit {args:?} failed but wrote {:?}", out.stdout);
        err
    }
}

fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl").args(args).output().expect("openssl (tests/run-all.sh installs it)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "openssl {args:?}: {text}");
    text
}

fn versions(doc: &Value) -> Vec<(u64, u64)> {
    doc.as_array()
        .unwrap()
        .iter()
        .map(|v| (v["version"].as_u64().unwrap(), v["key_version"].as_u64().unwrap()))
        .collect()
}

/// Self-signed: created, exported as PEM and DER, read and verified by OpenSSL; the key
/// stays unless exportable.
fn self_signed(e: &Env) {
    let v1 = e.json(&[
        "cert",
        "create",
        "web",
        "--subject",
        "CN=web.example.com,O=Example",
        "--type",
        "ec",
        "--san",
        "dns:web.example.com",
        "--san",
        "ip:192.0.2.7",
        "--eku",
        "serverAuth",
    ]);
    assert_eq!(
        (v1["name"].as_str(), v1["version"].as_u64(), v1["key_version"].as_u64()),
        (Some("web"), Some(1), Some(1))
    );
    assert_eq!(v1["subject"], "CN=web.example.com,O=Example");
    assert_eq!(v1["issuer"], v1["subject"]);
    assert_eq!(v1["kid"], "web/1");
    let (nb, exp) = (v1["not_before"].as_str().unwrap(), v1["expires"].as_str().unwrap());
    for t in [nb, exp, v1["created"].as_str().unwrap()] {
        assert!(humantime::parse_rfc3339(t).is_ok(), "not RFC 3339: {t}");
    }
    // Twelve calendar months by default.
    assert_eq!(exp[..4].parse::<u32>().unwrap(), nb[..4].parse::<u32>().unwrap() + 1);

    e.ok(&["cert", "export", "web", "--out", &e.p("web.pem")]);
    let text = openssl(&["x509", "-in", &e.p("web.pem"), "-noout", "-text"]);
    for want in [
        "Subject: O = Example, CN = web.example.com", // RFC 4514 lists the last RDN first
        "DNS:web.example.com",
        "IP Address:192.0.2.7",
        "TLS Web Server Authentication",
        "ecdsa-with-SHA256",
    ] {
        assert!(text.contains(want), "openssl x509 -text lacks {want}: {text}");
    }
    assert!(openssl(&["verify", "-CAfile", &e.p("web.pem"), &e.p("web.pem")]).contains(": OK"));
    // The fingerprint in the JSON is OpenSSL's.
    let fp = openssl(&["x509", "-in", &e.p("web.pem"), "-noout", "-fingerprint", "-sha256"]);
    let fp: String = fp.trim().rsplit('=').next().unwrap().replace(':', "").to_lowercase();
    assert_eq!(v1["thumbprint_sha256"].as_str().unwrap(), fp);
    // The PEM on stdout is the file's; DER is the leaf; --json carries the PEM.
    assert_eq!(e.ok(&["cert", "export", "web"]), e.read("web.pem"));
    e.ok(&["cert", "export", "web", "--format", "der", "--out", &e.p("web.der")]);
    let der_text = openssl(&["x509", "-inform", "DER", "-in", &e.p("web.der"), "-noout", "-subject"]);
    assert!(der_text.contains("CN = web.example.com"), "{der_text}");
    let doc = e.json(&["cert", "export", "web"]);
    assert_eq!(doc["pem"].as_str().unwrap(), e.read("web.pem"));
    assert_eq!(doc["version"], 1);
    e.fails(2, &["cert", "export", "web", "--format", "der", "--chain"]);
    e.fails(3, &["cert", "export", "web", "--version", "7"]);
    e.fails(3, &["cert", "export", "nope"]);

    // Not exportable: the typed refusal, exit 4, no output.
    let err = e.fails(4, &["cert", "export", "web", "--with-key"]);
    assert!(err.contains("not created exportable") && err.contains("--exportable"), "{err}");
    if e.soft() {
        // Exportable: the private key comes before the certificate, and is its key.
        e.ok(&["cert", "create", "exp", "--subject", "CN=exp", "--type", "ec", "--exportable"]);
        e.ok(&["cert", "export", "exp", "--with-key", "--out", &e.p("exp.pem")]);
        let both = e.read("exp.pem");
        assert!(
            both.starts_with("-----BEGIN PRIVATE KEY-----") && both.contains("BEGIN CERTIFICATE"),
            "{both}"
        );
        let from_key = openssl(&["pkey", "-in", &e.p("exp.pem"), "-pubout"]);
        let from_cert = openssl(&["x509", "-in", &e.p("exp.pem"), "-noout", "-pubkey"]);
        assert_eq!(from_key, from_cert);
        let doc = e.json(&["cert", "export", "exp", "--with-key"]);
        assert_eq!(doc["pem"].as_str().unwrap(), both);
    } else {
        // A token's keys never leave it: refused up front (Unsupported, exit 5), and
        // neither the certificate nor its key is left behind.
        let err =
            e.fails(5, &["cert", "create", "exp", "--subject", "CN=exp", "--type", "ec", "--exportable"]);
        assert!(err.contains("exportable keys on a PKCS#11 token"), "{err}");
        e.fails(3, &["cert", "show", "exp"]);
        e.fails(3, &["key", "show", "exp"]);
    }

    // Show, list and a CA variant.
    let show = e.json(&["cert", "show", "web"]);
    assert_eq!(show["versions"], 1);
    assert_eq!(show["policy"]["issuer"], "Self");
    assert_eq!(show["policy"]["key_spec"], "EC-P-256");
    assert_eq!(show["policy"]["lifetime_action"]["lifetime_percentage"], 80);
    assert_eq!(show["pending"], Value::Null);
    let text = e.ok(&["cert", "show", "web"]);
    assert!(text.contains("1 version(s); policy: issuer Self"), "{text}");
    let list = e.json(&["cert", "list"]);
    assert!(list.as_array().unwrap().iter().any(|d| d["name"] == "web" && d["current_version"] == 1));
    e.ok(&[
        "cert",
        "create",
        "root",
        "--subject",
        "CN=Root",
        "--type",
        "ec",
        "--ca",
        "--validity-months",
        "24",
    ]);
    e.ok(&["cert", "export", "root", "--out", &e.p("root.pem")]);
    let text = openssl(&["x509", "-in", &e.p("root.pem"), "-noout", "-text"]);
    assert!(text.contains("CA:TRUE") && text.contains("Certificate Sign"), "{text}");
    assert!(
        openssl(&["verify", "-x509_strict", "-CAfile", &e.p("root.pem"), &e.p("root.pem")]).contains(": OK")
    );

    // Bad input: exit 2 before anything is made.
    e.fails(2, &["cert", "create", "bad", "--subject", "CN=bad", "--type", "ec", "--san", "dns"]);
    e.fails(2, &["cert", "create", "bad", "--subject", "CN=bad", "--type", "ec", "--validity-months", "0"]);
    e.fails(
        2,
        &["cert", "create", "bad", "--subject", "CN=bad", "--type", "ec", "--renew-at-percent", "100"],
    );
    e.fails(2, &["cert", "create", "bad", "--subject", "CN=bad", "--type", "ec", "--csr-out", &e.p("x.csr")]);
    e.fails(2, &["cert", "create", "bad", "--subject", "CN=bad", "--type", "ed25519", "--curve", "P-256"]);
    e.fails(3, &["cert", "show", "bad"]);
}

#[test]
fn self_signed_on_the_keystore() {
    self_signed(&Env::store());
}

#[test]
fn self_signed_on_softhsm() {
    self_signed(&Env::softhsm());
}

/// `--issuer unknown`: the pending request, signed by a CA certificate object with `cert
/// issue`, merged, and verified by OpenSSL against the CA; a certificate for another key
/// is refused.
fn ca_signs_a_request(e: &Env) {
    e.ok(&[
        "cert",
        "create",
        "ca",
        "--subject",
        "CN=Test CA,O=Example",
        "--type",
        "ec",
        "--ca",
        "--validity-months",
        "24",
    ]);
    e.ok(&["cert", "export", "ca", "--out", &e.p("ca.pem")]);

    // The request on stdout, in a file with --csr-out, under --json.
    let pem = e.ok(&[
        "cert",
        "create",
        "leaf",
        "--subject",
        "CN=leaf.example.com",
        "--type",
        "ec",
        "--issuer",
        "unknown",
        "--san",
        "dns:leaf.example.com",
    ]);
    assert!(pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----"), "{pem}");
    e.write("leaf.csr", pem.as_bytes());
    let req = openssl(&["req", "-in", &e.p("leaf.csr"), "-verify", "-noout", "-text"]);
    assert!(req.contains("verify OK") && req.contains("DNS:leaf.example.com"), "{req}");
    let pending = e.json(&["cert", "pending", "leaf"]);
    assert_eq!((pending["status"].as_str(), pending["key_version"].as_u64()), (Some("pending"), Some(1)));
    assert_eq!(pending["csr"].as_str().unwrap(), pem);
    let show = e.json(&["cert", "show", "leaf"]);
    assert_eq!((show["versions"].as_u64(), show["policy"]["issuer"].as_str()), (Some(0), Some("Unknown")));
    assert_eq!(show["pending"]["key_version"], 1);
    assert!(e.ok(&["cert", "show", "leaf"]).contains("pending: a request for key version 1"));
    e.fails(3, &["cert", "export", "leaf"]); // no version yet
    let doc = e.json(&[
        "cert",
        "create",
        "other",
        "--subject",
        "CN=other",
        "--type",
        "ec",
        "--issuer",
        "unknown",
        "--csr-out",
        &e.p("other.csr"),
    ]);
    assert_eq!(doc["written"].as_str().unwrap(), e.p("other.csr"));
    assert!(e.read("other.csr").starts_with("-----BEGIN CERTIFICATE REQUEST-----"));

    // The CA issues for both requests.
    let issued = e.json(&[
        "cert",
        "issue",
        "ca",
        "--csr",
        &e.p("leaf.csr"),
        "--days",
        "30",
        "--out",
        &e.p("leaf.pem"),
    ]);
    assert_eq!(issued["subject"], "CN=leaf.example.com");
    assert_eq!(issued["issuer"], "CN=Test CA,O=Example");
    assert_eq!(issued["issued_by"], "ca/1");
    assert_eq!(issued["ca"], false);
    let (nb, exp) = (issued["not_before"].as_str().unwrap(), issued["expires"].as_str().unwrap());
    let days =
        humantime::parse_rfc3339(exp).unwrap().duration_since(humantime::parse_rfc3339(nb).unwrap()).unwrap();
    assert_eq!(days.as_secs(), 30 * 86_400);
    assert!(
        openssl(&["verify", "-x509_strict", "-CAfile", &e.p("ca.pem"), &e.p("leaf.pem")]).contains(": OK")
    );
    let other = e.ok(&["cert", "issue", "ca", "--csr", &e.p("other.csr"), "--chain"]);
    assert_eq!(other.matches("BEGIN CERTIFICATE").count(), 2, "{other}");
    e.write("other.pem", other.as_bytes());
    // A request with a bad signature, a non-CA signer, a missing CA.
    let mut bad = std::fs::read(e.path("leaf.csr")).unwrap();
    let n = bad.len() - 40;
    bad[n] = if bad[n] == b'A' { b'B' } else { b'A' };
    e.write("bad.csr", &bad);
    assert_ne!(e.run(&["cert", "issue", "ca", "--csr", &e.p("bad.csr")]).status.code(), Some(0));
    e.ok(&["cert", "create", "ee", "--subject", "CN=ee", "--type", "ec"]);
    e.fails(2, &["cert", "issue", "ee", "--csr", &e.p("leaf.csr")]);
    e.fails(3, &["cert", "issue", "nope", "--csr", &e.p("leaf.csr")]);

    // A certificate for another key: the typed error (key mismatch), nothing merged.
    let err = e.fails(2, &["cert", "merge", "leaf", "--cert", &e.p("other.pem")]);
    assert!(err.contains("public key is not the key of the pending request"), "{err}");
    assert_eq!(e.json(&["cert", "pending", "leaf"])["key_version"], 1);
    // The right one, with the CA after it.
    let mut chain = e.read("leaf.pem");
    chain.push_str(&e.read("ca.pem"));
    e.write("leaf-chain.pem", chain.as_bytes());
    let merged = e.json(&["cert", "merge", "leaf", "--cert", &e.p("leaf-chain.pem")]);
    assert_eq!((merged["version"].as_u64(), merged["key_version"].as_u64()), (Some(1), Some(1)));
    assert_eq!(merged["issuer"], "CN=Test CA,O=Example");
    e.fails(3, &["cert", "pending", "leaf"]);
    e.fails(3, &["cert", "merge", "leaf", "--cert", &e.p("leaf-chain.pem")]);
    e.ok(&["cert", "export", "leaf", "--out", &e.p("leaf-merged.pem")]);
    assert!(
        openssl(&["verify", "-x509_strict", "-CAfile", &e.p("ca.pem"), &e.p("leaf-merged.pem")])
            .contains(": OK")
    );
    assert_eq!(e.ok(&["cert", "export", "leaf", "--chain"]), chain);

    // Cancel: a certificate that never had a version goes, with its key.
    e.ok(&["cert", "pending", "other", "--cancel"]);
    e.fails(3, &["cert", "show", "other"]);
    e.fails(3, &["key", "show", "other"]);

    // Renewing an Unknown-issuer certificate makes a new request (new key version).
    let renewed = e.json(&["cert", "renew", "leaf", "--csr-out", &e.p("leaf2.csr")]);
    assert_eq!((renewed["status"].as_str(), renewed["key_version"].as_u64()), (Some("pending"), Some(2)));
    e.ok(&["cert", "issue", "ca", "--csr", &e.p("leaf2.csr"), "--out", &e.p("leaf2.pem")]);
    let v2 = e.json(&["cert", "merge", "leaf", "--cert", &e.p("leaf2.pem")]);
    assert_eq!((v2["version"].as_u64(), v2["key_version"].as_u64()), (Some(2), Some(2)));
    assert_eq!(versions(&e.json(&["cert", "versions", "leaf"])), [(1, 1), (2, 2)]);
}

#[test]
fn ca_signs_a_request_on_the_keystore() {
    ca_signs_a_request(&Env::store());
}

#[test]
fn ca_signs_a_request_on_softhsm() {
    ca_signs_a_request(&Env::softhsm());
}

/// A key and certificate made by OpenSSL, exported with `openssl pkcs12 -export`.
fn openssl_pkcs12(e: &Env, password: &str) {
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &e.p("k.pem"),
        "-out",
        &e.p("c.pem"),
        "-subj",
        "/CN=imported.example.com",
        "-days",
        "30",
    ]);
    openssl(&[
        "pkcs12",
        "-export",
        "-inkey",
        &e.p("k.pem"),
        "-in",
        &e.p("c.pem"),
        "-out",
        &e.p("x.p12"),
        "-passout",
        &format!("pass:{password}"),
    ]);
}

/// PKCS#12 from OpenSSL: the password from an environment variable, a file or stdin; a
/// wrong one is the authentication error; the key stays unless imported exportable.
fn pkcs12_import(e: &Env) {
    openssl_pkcs12(e, "s3cret pw");
    let p12 = e.p("x.p12");
    // A wrong password: exit 4, the PKCS#12 named, and nothing imported.
    let out = e
        .cmd()
        .args(["cert", "import", "imp", "--pfx", &p12, "--password-env", "P12PW"])
        .env("P12PW", "wrong")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("PKCS#12 password is wrong") && err.contains("--password-env"), "{err}");
    e.fails(3, &["cert", "show", "imp"]);
    e.fails(3, &["key", "show", "imp"]);
    // An unset variable is a usage error.
    e.fails(2, &["cert", "import", "imp", "--pfx", &p12, "--password-env", "HSMKIT_TEST_UNSET_VARIABLE"]);
    // No password on the command line at all.
    assert_eq!(
        e.run(&["cert", "import", "imp", "--pfx", &p12, "--password", "s3cret pw"]).status.code(),
        Some(2)
    );

    let out = e
        .cmd()
        .args(["--json", "cert", "import", "imp", "--pfx", &p12, "--password-env", "P12PW"])
        .env("P12PW", "s3cret pw")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v1: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v1["version"].as_u64(), v1["subject"].as_str()), (Some(1), Some("CN=imported.example.com")));
    // The certificate is OpenSSL's, the key is its key (it signs a CSR OpenSSL verifies
    // under the certificate's public key).
    e.ok(&["cert", "export", "imp", "--out", &e.p("imp.pem")]);
    assert_eq!(
        openssl(&["x509", "-in", &e.p("imp.pem"), "-noout", "-fingerprint", "-sha256"]),
        openssl(&["x509", "-in", &e.p("c.pem"), "-noout", "-fingerprint", "-sha256"])
    );
    e.ok(&["csr", "imp", "--subject", "CN=x", "--out", &e.p("imp.csr")]);
    assert_eq!(
        openssl(&["req", "-in", &e.p("imp.csr"), "-noout", "-pubkey"]),
        openssl(&["x509", "-in", &e.p("c.pem"), "-noout", "-pubkey"])
    );
    e.fails(4, &["cert", "export", "imp", "--with-key"]);

    // The next versions: the password from a file (first line), then from stdin.
    e.write("pw.txt", b"s3cret pw\nignored\n");
    let v2 = e.json(&["cert", "import", "imp", "--pfx", &p12, "--password-file", &e.p("pw.txt")]);
    assert_eq!(v2["version"], 2);
    let out = e.run_in(&["--json", "cert", "import", "imp", "--pfx", &p12], b"s3cret pw\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = e.run_in(&["cert", "import", "imp", "--pfx", &p12], b"nope\n");
    assert_eq!(out.status.code(), Some(4));
    // PEM: key and certificate in one file, any order.
    let mut pem = e.read("c.pem");
    pem.push_str(&e.read("k.pem"));
    e.write("both.pem", pem.as_bytes());
    assert_eq!(e.json(&["cert", "import", "imp", "--pem", &e.p("both.pem")])["version"], 4);
    assert_eq!(versions(&e.json(&["cert", "versions", "imp"])).len(), 4);
    e.fails(2, &["cert", "import", "imp2", "--pem", &e.p("c.pem")]); // no key in it
    e.fails(2, &["cert", "import", "imp2"]); // neither --pfx nor --pem

    if e.soft() {
        // Imported exportable: the key comes back out, OpenSSL's key.
        let out = e
            .cmd()
            .args(["cert", "import", "exp", "--pfx", &p12, "--password-env", "P12PW", "--exportable"])
            .env("P12PW", "s3cret pw")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        e.ok(&["cert", "export", "exp", "--with-key", "--out", &e.p("exp.pem")]);
        assert_eq!(
            openssl(&["pkey", "-in", &e.p("exp.pem"), "-pubout"]),
            openssl(&["pkey", "-in", &e.p("k.pem"), "-pubout"])
        );
    }
}

#[test]
fn pkcs12_import_on_the_keystore() {
    pkcs12_import(&Env::store());
}

#[test]
fn pkcs12_import_on_softhsm() {
    pkcs12_import(&Env::softhsm());
}

/// Renewal (new key, reused key), renew-due, and delete/recover/purge of a certificate
/// and its key.
fn renew_and_lifecycle(e: &Env) {
    e.ok(&["cert", "create", "app", "--subject", "CN=app", "--type", "ec"]);
    let v2 = e.json(&["cert", "renew", "app"]);
    assert_eq!((v2["version"].as_u64(), v2["key_version"].as_u64()), (Some(2), Some(2)));
    e.ok(&[
        "cert",
        "create",
        "same",
        "--subject",
        "CN=same",
        "--type",
        "ec",
        "--reuse-key",
        "--no-auto-renew",
    ]);
    assert!(e.ok(&["cert", "renew", "same"]).contains("key v1"));
    assert_eq!(versions(&e.json(&["cert", "versions", "same"])), [(1, 1), (2, 1)]);
    assert_eq!(e.json(&["cert", "show", "same"])["policy"]["lifetime_action"], Value::Null);
    assert_eq!(versions(&e.json(&["cert", "versions", "app"])), [(1, 1), (2, 2)]);
    // Each version exports; version 1 is still the first key's certificate.
    e.ok(&["cert", "export", "app", "--version", "1", "--out", &e.p("app1.pem")]);
    e.ok(&["cert", "export", "app", "--out", &e.p("app2.pem")]);
    assert_ne!(e.read("app1.pem"), e.read("app2.pem"));
    assert!(e.ok(&["cert", "show", "app", "--version", "1"]).contains("key v1"));

    // Nothing due yet; then one due at once (a self-signed certificate pyca made nine days
    // into its ten, imported: past its 80 %), one due that a CA must sign.
    assert_eq!(e.json(&["cert", "renew-due"]), Value::Array(vec![]));
    assert!(e.ok(&["cert", "renew-due"]).contains("no certificate is due"));
    let aged = e.p("aged.pem");
    let made = std::process::Command::new("python3")
        .args(["-c", AGED_SELF_SIGNED, &aged])
        .output()
        .expect("python3 with pyca/cryptography (tests/run-all.sh installs it)");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    e.ok(&["cert", "import", "due", "--pem", &aged]);
    e.ok(&["cert", "create", "ca", "--subject", "CN=CA", "--type", "ec", "--ca", "--no-auto-renew"]);
    e.ok(&[
        "cert",
        "create",
        "byca",
        "--subject",
        "CN=byca",
        "--type",
        "ec",
        "--issuer",
        "unknown",
        "--renew-days-before-expiry",
        "20",
        "--csr-out",
        &e.p("byca.csr"),
    ]);
    // Ten days of validity: inside the 20 days before expiry at once.
    e.ok(&["cert", "issue", "ca", "--csr", &e.p("byca.csr"), "--days", "10", "--out", &e.p("byca.pem")]);
    e.ok(&["cert", "merge", "byca", "--cert", &e.p("byca.pem")]);
    let due = e.json(&["cert", "due"]);
    let names: Vec<&str> = due.as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["byca", "due"]);
    let done = e.json(&["cert", "renew-due"]);
    let done = done.as_array().unwrap();
    assert_eq!(done.len(), 2, "{done:?}");
    assert_eq!(
        (done[0]["name"].as_str(), done[0]["status"].as_str(), done[0]["issuer"].as_str()),
        (Some("byca"), Some("needs-ca"), Some("Unknown"))
    );
    assert_eq!(
        (done[1]["name"].as_str(), done[1]["status"].as_str(), done[1]["new_version"].as_u64()),
        (Some("due"), Some("renewed"), Some(2))
    );
    assert!(humantime::parse_rfc3339(done[1]["expires"].as_str().unwrap()).is_ok());
    let text = e.ok(&["cert", "renew-due"]);
    assert!(text.contains("byca v1 is due") && !text.contains("renewed due"), "{text}");
    // A trigger that would always fire is refused.
    e.fails(
        2,
        &[
            "cert",
            "create",
            "never",
            "--subject",
            "CN=n",
            "--type",
            "ec",
            "--renew-days-before-expiry",
            "400",
        ],
    );

    // Soft delete takes the key too; recover brings both back; purge frees the name.
    let d = e.json(&["cert", "delete", "app"]);
    assert!(humantime::parse_rfc3339(d["deleted"]["scheduled_purge"].as_str().unwrap()).is_ok());
    assert_eq!(d["versions"].as_array().unwrap().len(), 2);
    e.fails(3, &["cert", "show", "app"]);
    e.fails(3, &["cert", "export", "app"]);
    e.fails(3, &["key", "show", "app"]);
    e.fails(3, &["cert", "delete", "app"]);
    let deleted = e.json(&["cert", "deleted"]);
    assert_eq!(
        deleted.as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap()).collect::<Vec<_>>(),
        ["app"]
    );
    assert!(e.ok(&["cert", "deleted"]).contains("purge scheduled"));
    assert!(!e.json(&["cert", "list"]).as_array().unwrap().iter().any(|d| d["name"] == "app"));
    e.fails(5, &["cert", "create", "app", "--subject", "CN=app", "--type", "ec"]); // the name is taken
    let r = e.json(&["cert", "recover", "app"]);
    assert_eq!((r["version"].as_u64(), r["versions"].as_u64()), (Some(2), Some(2)));
    e.ok(&["key", "show", "app"]);
    e.ok(&["cert", "export", "app"]);
    e.fails(3, &["cert", "purge", "app"]); // not deleted
    e.ok(&["cert", "delete", "app"]);
    assert_eq!(e.json(&["cert", "purge", "app"])["purged"], "app");
    assert_eq!(e.json(&["cert", "deleted"]), Value::Array(vec![]));
    e.fails(3, &["key", "show", "app"]);
    e.fails(3, &["cert", "recover", "app"]);
    // The name is free again.
    assert_eq!(e.json(&["cert", "create", "app", "--subject", "CN=app", "--type", "ec"])["version"], 1);
}

#[test]
fn renew_and_lifecycle_on_the_keystore() {
    renew_and_lifecycle(&Env::store());
}

#[test]
fn renew_and_lifecycle_on_softhsm() {
    renew_and_lifecycle(&Env::softhsm());
}

#[test]
fn reading_commands_make_no_keystore_and_create_does() {
    let e = Env::store();
    for args in [&["cert", "list"][..], &["cert", "show", "a"], &["cert", "deleted"], &["cert", "renew-due"]]
    {
        let err = e.fails(3, args);
        assert!(err.contains("keystore"), "{err}");
        assert!(!e.path("store").exists(), "hsmkit {args:?} created the keystore");
    }
    e.ok(&["cert", "create", "a", "--subject", "CN=a", "--type", "ec"]);
    assert!(e.path("store").join("hsmkit-keystore.json").exists());
}

#[test]
fn help_and_demo_show_the_cert_commands() {
    let help = Command::cargo_bin("hsmkit").unwrap().args(["cert", "--help"]).output().unwrap();
    let text = String::from_utf8(help.stdout).unwrap();
    for c in [
        "create",
        "issue",
        "export",
        "show",
        "list",
        "versions",
        "import",
        "merge",
        "pending",
        "renew",
        "renew-due",
        "delete",
        "recover",
        "purge",
        "deleted",
    ] {
        assert!(text.contains(&format!("  {c}")), "cert --help lacks {c}: {text}");
    }
    let out = Command::cargo_bin("hsmkit").unwrap().arg("demo").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    for want in [
        "$ hsmkit cert create demo-ca --subject CN=Demo CA,O=Example --type ec --ca",
        "$ hsmkit cert issue demo-ca --csr signer.csr --days 90 --out signer.pem\nissued 'CN=pay.example.com,O=Example' by 'CN=Demo CA,O=Example'",
    ] {
        assert!(text.contains(want), "demo output lacks {want:?}:\n{text}");
    }
}

/// A pyca key and self-signed certificate, nine days into ten days of validity, as PEM in
/// the file `sys.argv[1]`.
const AGED_SELF_SIGNED: &str = r#"
import sys, datetime
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "due")])
now = datetime.datetime.now(datetime.timezone.utc)
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=9))
        .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
open(sys.argv[1], "wb").write(cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
"#;
