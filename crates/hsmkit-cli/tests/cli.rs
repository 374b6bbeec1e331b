//! The `hsmkit` command, run as a process: every command on the keystore and on SoftHSM2,
//! JSON output, exit codes, stdin/stdout piping, and interop with the OpenSSL CLI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

/// A keystore in a temporary directory, unlocked by a key file.
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
        // Feed stdin from another thread: the child writes stdout while it reads.
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
    fn ok(&self, args: &[&str]) -> Vec<u8> {
        let out = self.run(args);
        assert!(out.status.success(), "hsmkit {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        serde_json::from_slice(&self.ok(&a)).unwrap()
    }

    /// Runs and requires exit status `code`; returns stderr.
    fn fails(&self, code: i32, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "hsmkit {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

fn openssl(args: &[&str]) -> Output {
    Command::new("openssl").args(args).output().expect("openssl (tests/run-all.sh installs it)")
}

/// `hsmkit csr` on `e`: OpenSSL verifies the request and shows what was asked for.
fn csr_checked_by_openssl(e: &Env) {
    e.ok(&["key", "create", "web-ec", "--type", "ec"]);
    e.ok(&["key", "create", "web-rsa", "--type", "rsa"]);
    for (key, alg) in [("web-ec", None), ("web-rsa", Some("PS256"))] {
        let out = e.p(&format!("{key}.csr"));
        let mut args = vec![
            "csr",
            key,
            "--subject",
            "/C=GB/O=Example/CN=www.example.com",
            "--san",
            "dns:www.example.com",
            "--san",
            "ip:192.0.2.7",
            "--eku",
            "serverAuth",
            "--key-usage",
            "digitalSignature",
            "--out",
            &out,
        ];
        if let Some(a) = alg {
            args.extend(["--alg", a]);
        }
        e.ok(&args);
        let v = openssl(&["req", "-in", &out, "-verify", "-noout", "-text"]);
        let text = format!("{}{}", String::from_utf8_lossy(&v.stdout), String::from_utf8_lossy(&v.stderr));
        assert!(v.status.success() && text.contains("verify OK"), "{key}: {text}");
        for want in [
            "Subject: C = GB, O = Example, CN = www.example.com",
            "DNS:www.example.com",
            "IP Address:192.0.2.7",
            "TLS Web Server Authentication",
        ] {
            assert!(text.contains(want), "{key}: openssl req -text lacks {want}: {text}");
        }
        if alg.is_some() {
            assert!(text.contains("rsassaPss"), "{text}");
        }
    }
    // PEM on stdout; JSON with the PEM inside.
    let pem = String::from_utf8(e.ok(&["csr", "web-ec", "--subject", "CN=a"])).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----"), "{pem}");
    let doc = e.json(&["csr", "web-ec", "--subject", "CN=a", "--san", "email:a@example.com"]);
    assert_eq!(doc["subject"], "CN=a");
    assert_eq!(doc["subject_alt_names"][0], "email:a@example.com");
    assert!(doc["pem"].as_str().unwrap().contains("BEGIN CERTIFICATE REQUEST"));
    // Bad input is exit 2 before the store is touched; a missing key is 3.
    e.fails(2, &["csr", "web-ec", "--subject", "CN=a", "--san", "dns"]);
    e.fails(2, &["csr", "web-ec", "--subject", "CN=a", "--eku", "everything"]);
    e.fails(2, &["csr", "web-ec", "--subject", "not a name"]);
    e.fails(2, &["csr", "web-ec", "--subject", "CN=a", "--alg", "RS256"]);
    e.fails(3, &["csr", "nope", "--subject", "CN=a"]);
}

#[test]
fn csr_on_the_keystore() {
    csr_checked_by_openssl(&Env::store());
}

#[test]
fn csr_on_softhsm() {
    csr_checked_by_openssl(&Env::softhsm());
}

// ---------------------------------------------------------------- the software keystore

#[test]
fn demo_runs_the_tour() {
    let out = Command::cargo_bin("hsmkit").unwrap().arg("demo").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    for want in [
        "$ hsmkit key create signer --type ec",
        "signature valid",
        "signature INVALID",
        "decrypted == original: true",
        "unwrapped == original: true",
        "unsealed == original: true",
        "no output file after the failure: true",
        "it is disabled",
        "$ hsmkit secret set db-password",
        "correct horse battery staple\n$ hsmkit secret",
        "permission denied on secret 'db-password'",
        "$ hsmkit secret restore --file db-password.backup\ndb-password              v2",
        "2 version(s); no rotation policy",
        "hsmkit: a key named 'signer' exists (live or deleted): restore refuses a name that exists",
        "chain intact",
        "$ hsmkit init",
        "engine    aws-lc",
        "metadata  keystore",
    ] {
        assert!(text.contains(want), "demo output lacks {want:?}:\n{text}");
    }
}

#[test]
fn key_lifecycle_with_json() {
    let e = Env::store();
    let k = e.json(&[
        "key",
        "create",
        "app",
        "--type",
        "rsa",
        "--size",
        "2048",
        "--tag",
        "env=prod",
        "--expires",
        "P365D",
    ]);
    assert_eq!(
        (k["name"].as_str(), k["version"].as_u64(), k["spec"].as_str()),
        (Some("app"), Some(1), Some("RSA-2048"))
    );
    assert_eq!(k["tags"]["env"], "prod");
    assert!(k["expires"].as_str().unwrap().ends_with('Z'));
    e.json(&["key", "create", "ec", "--type", "ec", "--curve", "P-384", "--ops", "sign,verify"]);
    e.json(&["key", "create", "aes", "--type", "aes", "--size", "128"]);
    let list = e.json(&["key", "list"]);
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|k| k["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["aes", "app", "ec"]);
    assert_eq!(e.json(&["key", "rotate", "app"])["version"], 2);
    let show = e.json(&["key", "show", "app"]);
    assert_eq!((show["version"].as_u64(), show["versions"].as_u64()), (Some(2), Some(2)));
    assert_eq!(e.json(&["key", "show", "app", "--version", "1"])["version"], 1);
    assert_eq!(e.json(&["key", "versions", "app"]).as_array().unwrap().len(), 2);
    let upd = e.json(&["key", "update", "app", "--version", "1", "--enabled", "false", "--ops", "verify"]);
    assert_eq!((upd["enabled"].as_bool(), upd["ops"].as_str()), (Some(false), Some("verify")));
    let upd = e.json(&["key", "update", "app", "--expires", "none", "--tag", "env=dev"]);
    assert_eq!((upd["expires"].clone(), upd["tags"]["env"].as_str()), (Value::Null, Some("dev")));
    let pol = e.json(&["key", "policy", "ec", "--rotate-after", "P90D"]);
    assert_eq!(pol["rotation_policy"]["rotate_after"], "P90D");
    assert_eq!(e.json(&["key", "rotate-due"]), Value::Array(vec![]));
    let del = e.json(&["key", "delete", "aes"]);
    assert!(del["deleted"]["scheduled_purge"].is_string());
    assert_eq!(e.json(&["key", "list", "--deleted"])[0]["name"], "aes");
    e.fails(3, &["key", "show", "aes"]);
    assert_eq!(e.json(&["key", "recover", "aes"])["name"], "aes");
    e.ok(&["key", "delete", "aes"]);
    assert_eq!(e.json(&["key", "purge", "aes"])["purged"], "aes");
    e.fails(3, &["key", "recover", "aes"]);
    // Human output names the key.
    let text = String::from_utf8(e.ok(&["key", "show", "app"])).unwrap();
    assert!(text.starts_with("app") && text.contains("RSA-2048"), "{text}");
}

#[test]
fn exit_codes() {
    let e = Env::store();
    e.ok(&["key", "create", "signer", "--type", "ec"]);
    e.ok(&["key", "create", "kek", "--type", "aes"]);
    let msg = e.write("m", b"message");
    let sig = e.p("m.sig");
    e.ok(&["sign", "signer", "--alg", "ES256", "--in", &msg, "--out", &sig]);
    e.ok(&["verify", "signer", "--alg", "ES256", "--signature", &sig, "--in", &msg]);
    let other = e.write("o", b"other");
    let out = e.run(&["verify", "signer", "--alg", "ES256", "--signature", &sig, "--in", &other]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "signature INVALID");
    e.fails(2, &["key", "create", "x", "--type", "dsa"]); // usage (clap)
    e.fails(2, &["sign", "signer", "--alg", "RS256", "--in", &msg]); // algorithm does not fit
    assert!(
        e.fails(3, &["sign", "nobody", "--alg", "ES256", "--in", &msg]).contains("hint: 'hsmkit key list'")
    );
    e.fails(4, &["wrap", "signer", "--alg", "A256KW", "--in", &msg]); // EC key: wrap not allowed
    let env = e.p("e");
    e.ok(&["seal", "kek", "--in", &msg, "--out", &env]);
    let mut bytes = std::fs::read(&env).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    let bad = e.write("bad", &bytes);
    assert!(e.fails(5, &["unseal", "--in", &bad, "--out", &e.p("x")]).contains("decryption failed"));
    assert!(!e.path("x").exists());
    // Wrong key file: authentication.
    let mut c = e.cmd();
    std::fs::write(e.path("wrong.key"), "a5".repeat(32)).unwrap();
    let out = c.env("HSMKIT_KEY_FILE", e.path("wrong.key")).args(["key", "list"]).output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn passphrase_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let run = |pass: Option<&str>, args: &[&str]| {
        let mut c = Command::cargo_bin("hsmkit").unwrap();
        c.env_remove("HSMKIT_KEY_FILE").env("HSMKIT_STORE", dir.path().join("s")).stdin(Stdio::null());
        match pass {
            Some(p) => c.env("HSMKIT_PASSPHRASE", p),
            None => c.env_remove("HSMKIT_PASSPHRASE"),
        };
        c.args(args).output().unwrap()
    };
    assert!(run(Some("correct horse"), &["key", "create", "k", "--type", "aes"]).status.success());
    assert!(run(Some("correct horse"), &["key", "show", "k"]).status.success());
    let wrong = run(Some("wrong"), &["key", "list"]);
    assert_eq!(wrong.status.code(), Some(4));
    let none = run(None, &["key", "list"]);
    assert_eq!(none.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&none.stderr).contains("HSMKIT_PASSPHRASE"));
}

#[test]
fn default_store_is_under_the_data_dir() {
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let mut c = Command::cargo_bin("hsmkit").unwrap();
        for v in ["HSMKIT_STORE", "HSMKIT_PKCS11_URI", "HSMKIT_KEY_FILE", "XDG_DATA_HOME"] {
            c.env_remove(v);
        }
        c.env("HOME", home.path())
            .env("HSMKIT_PASSPHRASE", "p")
            .stdin(Stdio::null())
            .args(args)
            .output()
            .unwrap()
    };
    assert!(run(&["key", "create", "k", "--type", "aes"]).status.success());
    assert!(home.path().join(".local/share/hsmkit/store/hsmkit-keystore.json").exists());
    assert!(run(&["key", "show", "k"]).status.success(), "created on first use, found again");
}

#[test]
fn stdin_and_stdout_are_binary_safe() {
    let e = Env::store();
    e.ok(&["key", "create", "kek", "--type", "aes"]);
    e.ok(&[
        "key",
        "create",
        "rsa",
        "--type",
        "rsa",
        "--size",
        "2048",
        "--ops",
        "encrypt,decrypt,sign,verify",
    ]);
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 256).to_le_bytes()[0]).collect();
    let sealed = e.run_in(&["seal", "kek", "--aad", "a=b"], &data);
    assert!(sealed.status.success());
    let opened = e.run_in(&["unseal", "--aad", "a=b"], &sealed.stdout);
    assert!(opened.status.success(), "{}", String::from_utf8_lossy(&opened.stderr));
    assert_eq!(opened.stdout, data);
    let ct = e.run_in(&["encrypt", "rsa", "--alg", "RSA-OAEP-256", "--label", "l"], &[0, 255, 0, 10, 13]);
    let pt = e.run_in(&["decrypt", "rsa", "--alg", "RSA-OAEP-256", "--label", "l"], &ct.stdout);
    assert_eq!(pt.stdout, [0, 255, 0, 10, 13]);
    let w = e.run_in(&["wrap", "kek", "--alg", "A256KWP"], &[1, 2, 3]);
    let u = e.run_in(&["unwrap", "kek", "--alg", "A256KWP"], &w.stdout);
    assert_eq!(u.stdout, [1, 2, 3]);
    let sig = e.run_in(&["sign", "rsa", "--alg", "PS256"], b"piped");
    assert_eq!(sig.stdout.len(), 256);
    let sig_file = e.write("sig", &sig.stdout);
    assert!(
        e.run_in(&["verify", "rsa", "--alg", "PS256", "--signature", &sig_file], b"piped").status.success()
    );
    // --json without --out: the data as base64url inside the document.
    let j: Value =
        serde_json::from_slice(&e.run_in(&["--json", "sign", "rsa", "--alg", "RS256"], b"x").stdout).unwrap();
    assert_eq!((j["kid"].as_str(), j["length"].as_u64()), (Some("rsa/1"), Some(256)));
    assert!(j["signature"].is_string());
}

#[test]
fn seal_unseal_rewrap_files() {
    let e = Env::store();
    e.ok(&["key", "create", "kek", "--type", "aes"]);
    e.ok(&["key", "create", "escrow", "--type", "rsa", "--size", "2048", "--ops", "wrapKey,unwrapKey"]);
    let src = e.write("big.bin", &vec![7u8; 3 << 20]);
    let j =
        e.json(&["seal", "kek", "--to", "escrow", "--aad", "t=1", "--in", &src, "--out", &e.p("big.hkev")]);
    assert_eq!(j["plaintext_bytes"], 3 << 20);
    assert_eq!(j["recipients"][1]["alg"], "RSA-OAEP-256");
    assert_eq!((j["suite"].as_u64(), std::fs::read(e.path("big.hkev")).unwrap()[5]), (Some(2), 2));
    // Suite 1 on request, for older readers; anything else is a usage error.
    let j = e.json(&["seal", "kek", "--suite", "1", "--in", &src, "--out", &e.p("s1.hkev")]);
    assert_eq!((j["suite"].as_u64(), std::fs::read(e.path("s1.hkev")).unwrap()[5]), (Some(1), 1));
    e.ok(&["unseal", "--in", &e.p("s1.hkev"), "--out", &e.p("s1.out")]);
    assert_eq!(std::fs::read(e.path("s1.out")).unwrap(), vec![7u8; 3 << 20]);
    e.fails(2, &["seal", "kek", "--suite", "3", "--in", &src, "--out", &e.p("s3.hkev")]);
    e.ok(&["unseal", "--aad", "t=1", "--in", &e.p("big.hkev"), "--out", &e.p("big.out")]);
    assert_eq!(std::fs::read(e.path("big.out")).unwrap(), vec![7u8; 3 << 20]);
    e.fails(5, &["unseal", "--in", &e.p("big.hkev"), "--out", &e.p("nocontext.out")]);
    assert!(!e.path("nocontext.out").exists());
    e.ok(&["key", "rotate", "kek"]);
    // Rewrap needs the context, as unseal does, and writes nothing without it.
    e.fails(5, &["rewrap", "--to", "kek", "--in", &e.p("big.hkev"), "--out", &e.p("v2.hkev")]);
    e.fails(
        5,
        &["rewrap", "--to", "kek", "--aad", "t=2", "--in", &e.p("big.hkev"), "--out", &e.p("v2.hkev")],
    );
    assert!(!e.path("v2.hkev").exists());
    let j = e.json(&[
        "rewrap",
        "--to",
        "kek",
        "--aad",
        "t=1",
        "--in",
        &e.p("big.hkev"),
        "--out",
        &e.p("v2.hkev"),
    ]);
    assert_eq!(j["recipients"][0]["kid"], "kek/2");
    assert_eq!(j["recipients"].as_array().unwrap().len(), 1);
    let j = e.json(&[
        "rewrap",
        "--add",
        "--to",
        "kek",
        "--aad",
        "t=1",
        "--in",
        &e.p("big.hkev"),
        "--out",
        &e.p("both.hkev"),
    ]);
    assert_eq!(j["recipients"].as_array().unwrap().len(), 3);
    e.ok(&["key", "update", "kek", "--version", "1", "--enabled", "false"]);
    e.ok(&["unseal", "--aad", "t=1", "--in", &e.p("v2.hkev"), "--out", &e.p("v2.out")]);
    assert_eq!(std::fs::read(e.path("v2.out")).unwrap(), vec![7u8; 3 << 20]);
    e.fails(2, &["--json", "seal", "kek", "--in", &src]); // JSON needs --out
}

#[test]
fn import_and_public_key_formats() {
    let e = Env::store();
    let pem = e.p("rsa.pem");
    assert!(
        openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", &pem])
            .status
            .success()
    );
    let k = e.json(&["key", "import", "imported", "--in", &pem]);
    assert_eq!((k["spec"].as_str(), k["has_private"].as_bool()), (Some("RSA-2048"), Some(true)));
    let ours = e.ok(&["key", "public", "imported", "--format", "pem"]);
    let theirs = openssl(&["pkey", "-in", &pem, "-pubout"]).stdout;
    assert_eq!(ours, theirs);
    let der = e.ok(&["key", "public", "imported", "--format", "der"]);
    assert_eq!(der, openssl(&["pkey", "-in", &pem, "-pubout", "-outform", "DER"]).stdout);
    let jwk: Value =
        serde_json::from_slice(&e.ok(&["key", "public", "imported", "--format", "jwk"])).unwrap();
    assert_eq!((jwk["kty"].as_str(), jwk["kid"].as_str()), (Some("RSA"), Some("imported/1")));
    // The JWK back in, public only.
    let jwk_file = e.write("pub.jwk", jwk.to_string().as_bytes());
    let k = e.json(&["key", "import", "pub", "--in", &jwk_file, "--format", "jwk", "--ops", "verify"]);
    assert_eq!(k["has_private"], false);
    // Raw AES bytes; a new version of an existing key.
    let raw = e.write("aes.bin", &[9u8; 32]);
    assert_eq!(e.json(&["key", "import", "aes", "--in", &raw, "--format", "raw"])["spec"], "AES-256");
    assert_eq!(
        e.json(&["key", "import", "aes", "--new-version", "--in", &raw, "--format", "raw"])["version"],
        2
    );
    e.fails(2, &["key", "import", "bad", "--in", &e.write("junk", b"not a key")]);
}

#[test]
fn audit_log_verifies_and_detects_tampering() {
    let e = Env::store();
    let log = e.p("audit.jsonl");
    e.ok(&["--audit-log", &log, "key", "create", "k", "--type", "ec"]);
    e.ok(&[
        "--audit-log",
        &log,
        "sign",
        "k",
        "--alg",
        "ES256",
        "--in",
        &e.write("m", b"m"),
        "--out",
        &e.p("s"),
    ]);
    assert_eq!(e.json(&["audit", "verify", &log])["intact"], true);
    let text = std::fs::read_to_string(&log).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.swap(0, 1);
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let out = e.run(&["audit", "verify", &log]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("BROKEN at line 1"));
}

#[test]
fn audit_verify_needs_the_audit_key_not_just_the_file() {
    use sha2::Digest;
    let e = Env::store();
    let log = e.p("audit.jsonl");
    let m = e.write("m", b"m");
    e.ok(&["--audit-log", &log, "key", "create", "k", "--type", "ec"]);
    for _ in 0..3 {
        e.ok(&["--audit-log", &log, "sign", "k", "--alg", "ES256", "--in", &m, "--out", &e.p("s")]);
    }
    let text = std::fs::read_to_string(&log).unwrap();
    // The audit key's creation, the key's, three signatures.
    assert_eq!(e.json(&["audit", "verify", &log])["records"], 5);
    assert!(text.lines().next().unwrap().contains(r#""key":"hsmkit-audit""#));
    assert_eq!(std::fs::read_to_string(&log).unwrap(), text, "verifying does not append");
    // Remove the second record and recompute a SHA-256 chain over the rest, filling in
    // seq, prev and the MAC field: all that someone with only the file can do.
    let mut prev = "0".repeat(64);
    let mut forged = String::new();
    for (i, line) in text.lines().enumerate().filter(|(i, _)| *i != 1).map(|(_, l)| l).enumerate() {
        let body = line.rsplit_once(",\"mac\":\"").unwrap().0;
        let mut v: Value = serde_json::from_str(&format!("{body}}}")).unwrap();
        v["seq"] = (i + 1).into();
        v["prev"] = prev.clone().into();
        let body = v.to_string();
        let body = body.strip_suffix('}').unwrap();
        prev = hex::encode(sha2::Sha256::digest(body.as_bytes()));
        forged.push_str(&format!("{body},\"mac\":\"{prev}\"}}\n"));
    }
    std::fs::write(&log, forged).unwrap();
    let out = e.run(&["--json", "audit", "verify", &log]);
    assert_eq!(out.status.code(), Some(1));
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((j["intact"].as_bool(), j["first_bad"]["line"].as_u64()), (Some(false), Some(1)), "{j}");
    // The genuine log checked against another store (another audit key) is not vouched for.
    std::fs::write(&log, &text).unwrap();
    let other = Env::store();
    std::fs::write(other.path("store.key"), "6b".repeat(32)).unwrap();
    other.ok(&["init"]);
    let out = other.run(&["audit", "verify", &log]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
}

// ---------------------------------------------------------------- OpenSSL interop

fn openssl_interop(e: &Env, oaep256: bool) {
    e.ok(&[
        "key",
        "create",
        "rsa",
        "--type",
        "rsa",
        "--size",
        "2048",
        "--ops",
        "sign,verify,encrypt,decrypt",
    ]);
    e.ok(&["key", "create", "ec", "--type", "ec", "--curve", "P-256"]);
    let msg = e.write("msg", b"interop with the OpenSSL command line");
    for (key, alg, extra) in [
        ("rsa", "RS256", vec![]),
        ("rsa", "PS256", vec!["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"]),
        ("ec", "ES256", vec![]),
    ] {
        let pub_pem = e.p(&format!("{key}.pub.pem"));
        e.ok(&["key", "public", key, "--out", &pub_pem]);
        let sig = e.p(&format!("{alg}.sig"));
        e.ok(&["sign", key, "--alg", alg, "--encoding", "der", "--in", &msg, "--out", &sig]);
        let mut args = vec!["dgst", "-sha256", "-verify", &pub_pem, "-signature", &sig];
        args.extend(extra.iter().copied());
        args.push(&msg);
        let out = openssl(&args);
        assert!(out.status.success(), "openssl rejects {alg}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Verified OK");
    }
    let pub_pem = e.p("rsa.pub.pem");
    let secret = e.write("secret", b"opened by hsmkit");
    let ct = e.p("ct");
    let (md, alg) = if oaep256 { ("sha256", "RSA-OAEP-256") } else { ("sha1", "RSA-OAEP") };
    let out = openssl(&[
        "pkeyutl",
        "-encrypt",
        "-pubin",
        "-inkey",
        &pub_pem,
        "-pkeyopt",
        "rsa_padding_mode:oaep",
        "-pkeyopt",
        &format!("rsa_oaep_md:{md}"),
        "-pkeyopt",
        &format!("rsa_mgf1_md:{md}"),
        "-in",
        &secret,
        "-out",
        &ct,
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(e.ok(&["decrypt", "rsa", "--alg", alg, "--in", &ct]), b"opened by hsmkit");
}

#[test]
fn openssl_verifies_signatures_and_encrypts_for_hsmkit() {
    openssl_interop(&Env::store(), true);
}

/// The three newer families from the command line: Ed25519 (OpenSSL verifies its
/// signatures with `pkeyutl -rawin`), secp256k1 (`dgst` with the exported key) and HMAC
/// (the tag equals `openssl mac`, which needs the raw key: imported from a JWK here).
fn newer_families(e: &Env) {
    let msg = e.write("msg", b"newer key families from the command line");
    e.ok(&["key", "create", "ed", "--type", "ed25519"]);
    let sig = e.p("ed.sig");
    e.ok(&["sign", "ed", "--alg", "EdDSA", "--in", &msg, "--out", &sig]);
    assert_eq!(std::fs::read(&sig).unwrap().len(), 64);
    e.ok(&["verify", "ed", "--alg", "EdDSA", "--in", &msg, "--signature", &sig]);
    let pub_pem = e.p("ed.pub.pem");
    e.ok(&["key", "public", "ed", "--out", &pub_pem]);
    let out = openssl(&[
        "pkeyutl", "-verify", "-pubin", "-inkey", &pub_pem, "-rawin", "-in", &msg, "-sigfile", &sig,
    ]);
    assert!(out.status.success(), "openssl rejects EdDSA: {}", String::from_utf8_lossy(&out.stderr));
    e.fails(2, &["sign", "ed", "--alg", "EdDSA", "--digest", "--in", &msg]);
    e.fails(2, &["key", "create", "ed2", "--type", "ed25519", "--size", "256"]);

    e.ok(&["key", "create", "k1", "--type", "ec", "--curve", "P-256K"]);
    let k1_pem = e.p("k1.pub.pem");
    e.ok(&["key", "public", "k1", "--out", &k1_pem]);
    let k1_sig = e.p("k1.sig");
    e.ok(&["sign", "k1", "--alg", "ES256K", "--encoding", "der", "--in", &msg, "--out", &k1_sig]);
    let out = openssl(&["dgst", "-sha256", "-verify", &k1_pem, "-signature", &k1_sig, &msg]);
    assert!(out.status.success(), "openssl rejects ES256K: {}", String::from_utf8_lossy(&out.stderr));

    let raw: Vec<u8> = (0u8..48).map(|i| i ^ 0xa5).collect();
    let k = <base64ct::Base64UrlUnpadded as base64ct::Encoding>::encode_string(&raw);
    let jwk =
        e.write("mac.jwk", format!(r#"{{"kty":"oct","k":"{k}","key_ops":["sign","verify"]}}"#).as_bytes());
    e.ok(&["key", "import", "mac", "--in", &jwk, "--format", "jwk"]);
    let tag = e.ok(&["sign", "mac", "--alg", "HS384", "--in", &msg]);
    let hexkey: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let out =
        openssl(&["mac", "-digest", "SHA384", "-macopt", &format!("hexkey:{hexkey}"), "-in", &msg, "HMAC"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let expected = String::from_utf8_lossy(&out.stdout).trim().to_ascii_lowercase();
    assert_eq!(tag.iter().map(|b| format!("{b:02x}")).collect::<String>(), expected);
    let tag_file = e.write("mac.tag", &tag);
    e.ok(&["verify", "mac", "--alg", "HS384", "--in", &msg, "--signature", &tag_file]);
    e.fails(2, &["key", "create", "mac2", "--type", "hmac", "--exportable"]);
    e.ok(&["key", "create", "mac3", "--type", "hmac", "--size", "512"]);
    let show = e.json(&["key", "show", "mac3"]);
    assert!(show.to_string().contains("HMAC-512"), "{show}");
}

#[test]
fn ed25519_secp256k1_and_hmac_on_the_keystore() {
    newer_families(&Env::store());
}

#[test]
fn ed25519_secp256k1_and_hmac_on_softhsm() {
    newer_families(&Env::softhsm());
}

/// `hsmkit info --json` and the human report against `caps` (the same store's
/// `Store::capabilities()`, opened in this process after the command ran).
fn check_info(e: &Env, backend: &str, caps: &hsmkit::Capabilities) {
    let doc = e.json(&["info"]);
    let mut want = caps.to_json();
    want.as_object_mut().unwrap().insert("backend".into(), backend.into());
    assert_eq!(doc, want);
    // Field by field too, so a failure names the field, and the types are the documented ones.
    assert_eq!(doc["backend"], backend);
    assert_eq!(doc["engine"], caps.engine);
    assert_eq!(doc["metadata"], caps.metadata);
    assert_eq!(doc["import"].as_bool(), Some(caps.import));
    assert_eq!(doc["export"].as_bool(), Some(caps.export));
    assert_eq!(doc["oaep_label"].as_bool(), Some(caps.oaep_label));
    let names = |field: &str| -> Vec<String> {
        doc[field].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(names("generate"), caps.generate.iter().map(ToString::to_string).collect::<Vec<_>>());
    assert_eq!(names("sign"), caps.sign.iter().map(ToString::to_string).collect::<Vec<_>>());
    assert_eq!(names("decrypt"), caps.decrypt.iter().map(ToString::to_string).collect::<Vec<_>>());
    assert_eq!(names("wrap"), caps.wrap.iter().map(ToString::to_string).collect::<Vec<_>>());
    assert_eq!(names("unwrap"), caps.unwrap.iter().map(ToString::to_string).collect::<Vec<_>>());
    assert_eq!(names("notes"), caps.notes);
    assert_eq!(doc.as_object().unwrap().len(), 12, "{doc}");

    // Human output: backend, engine, metadata first; a line per group; the notes last.
    let text = String::from_utf8(e.ok(&["info"])).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], format!("backend   {backend}"), "{text}");
    assert_eq!(lines[1], format!("engine    {}", caps.engine), "{text}");
    assert_eq!(lines[2], format!("metadata  {}", caps.metadata), "{text}");
    let join = |v: Vec<String>| if v.is_empty() { "(none)".to_owned() } else { v.join(", ") };
    assert_eq!(lines[3], format!("generate  {}", join(names("generate"))), "{text}");
    assert!(lines[4].starts_with("keys      import: "), "{text}");
    assert_eq!(lines[5], format!("sign      {}", join(names("sign"))), "{text}");
    let label = if caps.oaep_label { "yes" } else { "no" };
    assert_eq!(lines[6], format!("decrypt   {} (OAEP label: {label})", join(names("decrypt"))), "{text}");
    assert_eq!(lines[7], format!("wrap      {}", join(names("wrap"))), "{text}");
    assert_eq!(lines[8], format!("unwrap    {}", join(names("unwrap"))), "{text}");
    let notes: Vec<String> = caps.notes.iter().map(|n| format!("note: {n}")).collect();
    assert_eq!(lines[9..], notes, "{text}");
}

#[test]
fn info_on_the_keystore() {
    let e = Env::store();
    e.ok(&["key", "create", "k", "--type", "aes"]);
    // The keystore as the CLI opens it (key file, fastest engine), in this process.
    let unlock = hsmkit_soft::StoreKey::key_file(e.path("store.key"));
    let backend = hsmkit_soft::SoftBackend::open_dir(e.path("store"), &unlock)
        .unwrap()
        .with_engine(hsmkit_soft::SoftEngine::fastest());
    let caps = hsmkit::Store::new(backend).capabilities();
    assert_eq!((caps.engine, caps.metadata), ("aws-lc", "keystore"));
    check_info(&e, "soft", &caps);
    // The keystore does everything: every list is full and there are no notes.
    assert_eq!(
        caps,
        hsmkit::Capabilities { engine: "aws-lc", metadata: "keystore", ..hsmkit::Capabilities::all() }
    );
    // A keystore that cannot be unlocked: exit status 4, nothing on stdout.
    std::fs::write(e.path("wrong.key"), "a5".repeat(32)).unwrap();
    let out = e.cmd().env("HSMKIT_KEY_FILE", e.path("wrong.key")).args(["info", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty());
}

// ---------------------------------------------------------------- secrets

/// Bytes no text encoding would keep: every byte value, zeros, a trailing newline.
fn binary_value(seed: u8) -> Vec<u8> {
    (0..=255u8).map(|b| b.wrapping_add(seed)).chain([0, 0, b'\n']).collect()
}

fn versions_of(e: &Env, name: &str) -> Vec<u64> {
    e.json(&["secret", "versions", name])
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["version"].as_u64().unwrap())
        .collect()
}

/// Set from a file, stdin and --value; read back byte for byte (stdout, --out, --json);
/// metadata commands and the audit log never show a value.
#[test]
fn secret_values_round_trip_and_stay_out_of_metadata() {
    const CANARY: &str = "canary-7f3a9e-hunter2";
    let e = Env::store();
    let (v1, v2) = (binary_value(0), binary_value(100));
    let f = e.write("v1.bin", &v1);
    let log = e.p("audit.jsonl");
    let set = e.json(&["--audit-log", &log, "secret", "set", "app", "--file", &f, "--content-type", "x/bin"]);
    assert_eq!((set["name"].as_str(), set["version"].as_u64()), (Some("app"), Some(1)));
    assert_eq!(set["content_type"], "x/bin");
    let out = e.run_in(&["secret", "set", "app", "--tag", "env=prod"], &v2);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("app") && text.contains("v2"), "set prints the name and version: {text}");
    let set = e.ok(&["secret", "set", "app", "--value", CANARY]);
    assert!(!String::from_utf8_lossy(&set).contains(CANARY));

    // Exactly the bytes: no newline added, none removed.
    assert_eq!(e.ok(&["--audit-log", &log, "secret", "get", "app"]), CANARY.as_bytes());
    assert_eq!(e.ok(&["secret", "get", "app", "--version", "1"]), v1);
    assert_eq!(e.ok(&["secret", "get", "app", "--version", "2"]), v2);
    let out_file = e.path("out.bin");
    std::fs::write(&out_file, b"old content, longer than nothing").unwrap();
    assert!(e.ok(&["secret", "get", "app", "--version", "2", "--out", &e.p("out.bin")]).is_empty());
    assert_eq!(std::fs::read(&out_file).unwrap(), v2, "--out replaces the file whole");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the value's file is the owner's alone");
    }

    // --json: text as `value`, other bytes as base64url `value_base64`, with the metadata.
    let j = e.json(&["secret", "get", "app"]);
    assert_eq!((j["value"].as_str(), j["version"].as_u64()), (Some(CANARY), Some(3)));
    assert!(j.get("value_base64").is_none());
    let j = e.json(&["secret", "get", "app", "--version", "1"]);
    use base64ct::Encoding;
    let decoded = base64ct::Base64UrlUnpadded::decode_vec(j["value_base64"].as_str().unwrap()).unwrap();
    assert_eq!((decoded, j["content_type"].as_str()), (v1.clone(), Some("x/bin")));
    assert!(j.get("value").is_none());
    let j = e.json(&["secret", "get", "app", "--out", &e.p("o2")]);
    assert!(j.get("value").is_none() && j["written"].is_string(), "{j}");
    assert_eq!(std::fs::read(e.path("o2")).unwrap(), CANARY.as_bytes());

    assert_eq!(versions_of(&e, "app"), [1, 2, 3]);
    e.ok(&["secret", "set", "other", "--value", CANARY]);
    // Metadata only, human and JSON: the value never shows.
    let show = e.json(&["secret", "show", "app"]);
    assert_eq!((show["version"].as_u64(), show["versions"].as_u64()), (Some(3), Some(3)));
    assert_eq!(e.json(&["secret", "show", "app", "--version", "2"])["tags"]["env"], "prod");
    let names: Vec<Value> =
        e.json(&["secret", "list"]).as_array().unwrap().iter().map(|p| p["name"].clone()).collect();
    assert_eq!(names, ["app", "other"]);
    for args in [
        &["secret", "show", "app"][..],
        &["--json", "secret", "show", "app"],
        &["secret", "list"],
        &["--json", "secret", "list"],
        &["secret", "versions", "app"],
        &["--json", "secret", "versions", "app"],
    ] {
        let out = String::from_utf8(e.ok(args)).unwrap();
        assert!(out.contains("app") && !out.contains(CANARY), "hsmkit {args:?}: {out}");
    }
    let audit = std::fs::read_to_string(&log).unwrap();
    assert!(audit.contains("secret") && !audit.contains(CANARY), "{audit}");
    // Secrets are not keys: only the store's own keys show (the secrets KEK, and the
    // audit key --audit-log made).
    let keys: Vec<Value> =
        e.json(&["key", "list"]).as_array().unwrap().iter().map(|k| k["name"].clone()).collect();
    assert_eq!(keys, ["hsmkit-audit", "hsmkit-secrets"]);
}

/// Disabled, not yet valid, missing, too large, deleted: the documented exit status and
/// a message that says why, never the value.
#[test]
fn secret_refusals_and_soft_delete() {
    const CANARY: &str = "canary-51d0c2";
    let e = Env::store();
    e.ok(&["secret", "set", "db", "--value", CANARY]);
    let off = e.json(&["secret", "set", "db", "--value", CANARY, "--disabled"]);
    assert_eq!((off["version"].as_u64(), off["enabled"].as_bool()), (Some(2), Some(false)));
    let err = e.fails(4, &["secret", "get", "db"]);
    assert!(err.contains("secret 'db'") && err.contains("disabled") && !err.contains(CANARY), "{err}");
    assert_eq!(e.ok(&["secret", "get", "db", "--version", "1"]), CANARY.as_bytes());
    let upd =
        e.json(&["secret", "update", "db", "--version", "2", "--enable", "--content-type", "text/plain"]);
    assert_eq!((upd["enabled"].as_bool(), upd["content_type"].as_str()), (Some(true), Some("text/plain")));
    assert_eq!(e.ok(&["secret", "get", "db"]), CANARY.as_bytes());
    // Without --version, update changes the current version.
    let upd = e.json(&["secret", "update", "db", "--not-before", "P1D", "--tag", "a=b", "--no-content-type"]);
    assert_eq!((upd["version"].as_u64(), upd["content_type"].clone()), (Some(2), Value::Null));
    assert!(e.fails(4, &["secret", "get", "db"]).contains("not valid yet"));
    let upd = e.json(&["secret", "update", "db", "--no-not-before", "--clear-tags"]);
    assert_eq!((upd["not_before"].clone(), upd["tags"].clone()), (Value::Null, serde_json::json!({})));
    e.fails(2, &["secret", "update", "db"]); // nothing to change
    e.fails(2, &["secret", "set", "db", "--value", "x", "--expires", "tomorrow"]);

    // Missing: the secret, a version, a secret in place of a key.
    assert!(e.fails(3, &["secret", "get", "nothing"]).contains("hsmkit secret list"));
    e.fails(3, &["secret", "get", "db", "--version", "9"]);
    e.fails(3, &["secret", "show", "db", "--version", "9"]);
    e.fails(3, &["secret", "update", "db", "--version", "9", "--disable"]);

    // 25 KiB is the most: one byte more is refused from a file, stdin and --value, and
    // adds no version.
    let max = 25 * 1024;
    let over = e.write("over", &vec![b'x'; max + 1]);
    assert!(e.fails(2, &["secret", "set", "big", "--file", &over]).contains("25600"));
    let out = e.run_in(&["secret", "set", "big"], &vec![b'x'; max + 1]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let long = "x".repeat(max + 1);
    e.fails(2, &["secret", "set", "big", "--value", &long]);
    e.fails(3, &["secret", "versions", "big"]);
    let exact = e.write("exact", &vec![b'y'; max]);
    e.ok(&["secret", "set", "big", "--file", &exact]);
    assert_eq!(e.ok(&["secret", "get", "big"]).len(), max);

    // Soft delete: unreadable and unlisted, listed as deleted; recovered; purged.
    let del = e.json(&["secret", "delete", "db"]);
    assert!(del["deleted"]["scheduled_purge"].is_string(), "{del}");
    assert!(!del.to_string().contains(CANARY));
    e.fails(3, &["secret", "get", "db"]);
    e.fails(3, &["secret", "show", "db"]);
    e.fails(5, &["secret", "set", "db", "--value", "new"]); // the name is held: recover or purge
    let deleted = e.json(&["secret", "list-deleted"]);
    assert_eq!(
        (deleted[0]["name"].as_str(), deleted[0]["versions"].as_array().map(Vec::len)),
        (Some("db"), Some(2))
    );
    assert_eq!(e.json(&["secret", "list"]).as_array().unwrap().len(), 1, "only 'big' is listed");
    assert_eq!(e.json(&["secret", "recover", "db"])["version"], 2);
    assert_eq!(e.ok(&["secret", "get", "db"]), CANARY.as_bytes());
    e.ok(&["secret", "delete", "db"]);
    assert_eq!(e.json(&["secret", "purge", "db"])["purged"], "db");
    e.fails(3, &["secret", "recover", "db"]);
    assert_eq!(e.json(&["secret", "deleted"]), Value::Array(vec![]));
    assert_eq!(
        e.json(&["secret", "set", "db", "--value", "again"])["version"],
        1,
        "purged: the name is free"
    );
}

/// `secret due` lists versions expiring within the window (or due by policy); `secret
/// policy` shows, sets and clears the rotation policy.
#[test]
fn secret_due_and_rotation_policy() {
    let e = Env::store();
    e.ok(&["secret", "set", "soon", "--value", "a", "--expires", "P5D"]);
    e.ok(&["secret", "set", "later", "--value", "b", "--expires", "P90D"]);
    e.ok(&["secret", "set", "never", "--value", "c"]);
    e.ok(&["secret", "set", "off", "--value", "d", "--expires", "P1D", "--disabled"]);
    let due = e.json(&["secret", "due"]);
    let due = due.as_array().unwrap();
    assert_eq!(due.len(), 1, "{due:?}");
    assert_eq!((due[0]["name"].as_str(), due[0]["version"].as_u64()), (Some("soon"), Some(1)));
    assert!(due[0]["expires"].as_str().unwrap().ends_with('Z') && due[0]["reason"].is_string());
    let names = |v: Value| -> Vec<String> {
        v.as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(names(e.json(&["secret", "due", "--within", "P100D"])), ["later", "soon"]);
    let text = String::from_utf8(e.ok(&["secret", "due", "--within", "P1D"])).unwrap();
    assert!(text.contains("no secret is due"), "{text}");
    e.fails(2, &["secret", "due", "--within", "30 days"]);
    // Expiry removed: no longer due.
    e.ok(&["secret", "update", "soon", "--no-expires"]);
    assert_eq!(e.json(&["secret", "due"]), Value::Array(vec![]));

    assert_eq!(e.json(&["secret", "policy", "never"])["rotation_policy"], Value::Null);
    let p =
        e.json(&["secret", "policy", "never", "--rotate-before-expiry", "P30D", "--expires-after", "P7D"]);
    assert_eq!(p["rotation_policy"]["expires_after"], "P7D");
    assert_eq!(e.json(&["secret", "policy", "never"])["rotation_policy"]["rotate_before_expiry"], "P30D");
    // Under the policy a version set without an expiry gets one, and is due.
    let v2 = e.json(&["secret", "set", "never", "--value", "c2"]);
    assert!(v2["expires"].is_string(), "{v2}");
    assert_eq!(names(e.json(&["secret", "due"])), ["never"]);
    assert_eq!(e.json(&["secret", "policy", "never", "--clear"])["rotation_policy"], Value::Null);
    e.fails(3, &["secret", "policy", "missing", "--rotate-after", "P90D"]);
}

// ---------------------------------------------------------------- backup and restore

/// The message a restore gives for a blob this store cannot open.
const NOT_OURS: &str = "not a backup of this store's backup key, or altered";
/// The message a restore gives for a name that is held.
const HELD: &str = "restore refuses a name that exists: delete and purge it first";

/// Another keystore beside `e`'s (same key file, its own directory and so its own backup
/// key): `hsmkit --store OTHER ARGS`.
fn in_other_store<'a>(args: &[&'a str], other: &'a str) -> Vec<&'a str> {
    let mut a = vec!["--store", other];
    a.extend_from_slice(args);
    a
}

/// Secret backup → delete → purge → restore: every version's value and metadata come
/// back; a held name, an altered blob, a key's blob and another keystore are refused.
#[test]
fn secret_backup_and_restore() {
    const CANARY: &str = "canary-b4ck-up-77";
    let e = Env::store();
    let v1 = binary_value(3);
    let f = e.write("v1.bin", &v1);
    e.ok(&["secret", "set", "app", "--file", &f, "--content-type", "x/bin"]);
    e.ok(&["secret", "set", "app", "--value", CANARY, "--tag", "env=prod"]);
    e.ok(&["secret", "set", "app", "--value", "third", "--expires", "P30D"]);
    e.ok(&["secret", "policy", "app", "--rotate-before-expiry", "P7D"]);
    let before = e.json(&["secret", "versions", "app"]);
    let shown_before = e.json(&["secret", "show", "app"]);

    let blob_path = e.p("app.backup");
    assert!(e.ok(&["secret", "backup", "app", "--out", &blob_path]).is_empty());
    let blob = std::fs::read(&blob_path).unwrap();
    assert!(!blob.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()), "values are sealed, not in clear");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&blob_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the backup's file is the owner's alone");
    }
    // To stdout, byte for byte; --json names what was written.
    let piped = e.ok(&["secret", "backup", "app"]);
    assert!(piped.len() > v1.len(), "{}", piped.len());
    let j = e.json(&["secret", "backup", "app", "--out", &e.p("j.backup")]);
    assert_eq!((j["object"].as_str(), j["name"].as_str()), (Some("secret"), Some("app")));
    assert_eq!(j["length"].as_u64(), Some(std::fs::metadata(e.path("j.backup")).unwrap().len()));

    // The name is held, live and then deleted: refused, nothing changed.
    for _ in 0..2 {
        let err = e.fails(5, &["secret", "restore", "--file", &blob_path]);
        assert!(err.contains(HELD) && err.contains("'app'"), "{err}");
        e.run(&["secret", "delete", "app"]);
    }
    e.ok(&["secret", "purge", "app"]);
    e.fails(3, &["secret", "get", "app"]);
    e.fails(3, &["secret", "backup", "app"]); // nothing to back up

    // Altered: the one opaque error, with what it means here.
    let mut altered = blob.clone();
    *altered.last_mut().unwrap() ^= 1;
    let altered = e.write("altered.backup", &altered);
    let err = e.fails(5, &["secret", "restore", "--file", &altered]);
    assert!(err.contains(NOT_OURS) && !err.contains(CANARY), "{err}");
    // Not a backup at all, and a key's backup: invalid input.
    e.fails(2, &["secret", "restore", "--file", &e.write("junk", b"not a backup")]);
    e.ok(&["key", "create", "k", "--type", "ec"]);
    let key_blob = e.p("k.backup");
    e.ok(&["key", "backup", "k", "--out", &key_blob]);
    assert!(e.fails(2, &["secret", "restore", "--file", &key_blob]).contains("not a secret backup"));
    e.fails(3, &["secret", "get", "app"]);

    // Restored: the current version as `secret show` prints it, every version's value.
    let restored = e.json(&["secret", "restore", "--file", &blob_path]);
    assert_eq!(restored, shown_before);
    assert_eq!(e.json(&["secret", "versions", "app"]), before, "every version's metadata, times included");
    assert_eq!(e.ok(&["secret", "get", "app", "--version", "1"]), v1);
    assert_eq!(e.ok(&["secret", "get", "app", "--version", "2"]), CANARY.as_bytes());
    assert_eq!(e.ok(&["secret", "get", "app"]), b"third");
    assert_eq!(e.json(&["secret", "policy", "app"])["rotation_policy"]["rotate_before_expiry"], "P7D");

    // The blob written to stdout restores from stdin; human output names the secret.
    e.ok(&["secret", "delete", "app"]);
    e.ok(&["secret", "purge", "app"]);
    let out = e.run_in(&["secret", "restore"], &piped);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("app") && text.contains("v3") && text.contains("3 version(s)"), "{text}");
    assert_eq!(e.ok(&["secret", "get", "app", "--version", "1"]), v1);

    // Another keystore (its own backup key, or none yet) cannot open it; a missing one is
    // not created.
    let other = e.p("other");
    e.ok(&in_other_store(&["init"], &other));
    for _ in 0..2 {
        let err = e.fails(5, &in_other_store(&["secret", "restore", "--file", &blob_path], &other));
        assert!(err.contains(NOT_OURS), "{err}");
        assert!(err.contains("hint: restore into the store the backup was made in"), "{err}");
        e.ok(&in_other_store(&["secret", "set", "x", "--value", "x"], &other));
        e.ok(&in_other_store(&["secret", "backup", "x", "--out", &e.p("x.backup")], &other));
    }
    e.fails(3, &in_other_store(&["secret", "get", "app"], &other));
    let missing = e.p("missing");
    e.fails(3, &in_other_store(&["secret", "restore", "--file", &blob_path], &missing));
    assert!(!e.path("missing").exists());
}

/// Key backup → delete → purge → restore on the keystore: every version with its
/// material, attributes and times; a signature made before the backup verifies with the
/// restored key. Refused into another keystore, unless both hold the same backup key.
#[test]
fn key_backup_and_restore() {
    let e = Env::store();
    e.ok(&["key", "create", "signer", "--type", "ec", "--tag", "team=payments", "--expires", "P365D"]);
    let msg = e.write("m", b"signed before the backup");
    let (sig1, sig2) = (e.p("m.sig1"), e.p("m.sig2"));
    e.ok(&["sign", "signer", "--alg", "ES256", "--in", &msg, "--out", &sig1]);
    e.ok(&["key", "rotate", "signer"]);
    e.ok(&["sign", "signer", "--alg", "ES256", "--in", &msg, "--out", &sig2]);
    e.ok(&["key", "update", "signer", "--version", "1", "--ops", "verify"]);
    e.ok(&["key", "policy", "signer", "--rotate-after", "P90D"]);
    let public_before = e.ok(&["key", "public", "signer", "--version", "1"]);
    let versions_before = e.json(&["key", "versions", "signer"]);
    let shown_before = e.json(&["key", "show", "signer"]);

    let blob_path = e.p("signer.backup");
    assert!(e.ok(&["key", "backup", "signer", "--out", &blob_path]).is_empty());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&blob_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let j = e.json(&["key", "backup", "signer"]);
    assert_eq!((j["object"].as_str(), j["name"].as_str()), (Some("key"), Some("signer")));
    assert!(j["backup"].as_str().unwrap().len() > 100, "{j}");

    for _ in 0..2 {
        let err = e.fails(5, &["key", "restore", "--file", &blob_path]);
        assert!(err.contains(HELD) && err.contains("key named 'signer'"), "{err}");
        e.run(&["key", "delete", "signer"]);
    }
    e.fails(3, &["key", "backup", "signer"]); // deleted: nothing to back up
    e.ok(&["key", "purge", "signer"]);
    e.fails(3, &["key", "show", "signer"]);
    let mut altered = std::fs::read(&blob_path).unwrap();
    let mid = altered.len() / 2;
    altered[mid] ^= 1;
    let err = e.fails(5, &["key", "restore", "--in", &e.write("altered", &altered)]);
    assert!(err.contains(NOT_OURS), "{err}");
    e.fails(3, &["key", "show", "signer"]);

    let restored = e.json(&["key", "restore", "--file", &blob_path]);
    assert_eq!(restored, shown_before, "shown as `key show` shows it");
    assert_eq!(e.json(&["key", "versions", "signer"]), versions_before, "attributes and times");
    assert_eq!(e.ok(&["key", "public", "signer", "--version", "1"]), public_before, "the same material");
    e.ok(&["verify", "signer", "--alg", "ES256", "--version", "1", "--signature", &sig1, "--in", &msg]);
    e.ok(&["verify", "signer", "--alg", "ES256", "--signature", &sig2, "--in", &msg]);
    // Version 1 still allows only verify; the current version signs again.
    let v1 = e.json(&["key", "show", "signer", "--version", "1"]);
    assert_eq!(v1["ops"], "verify");
    let sig3 = e.p("m.sig3");
    e.ok(&["sign", "signer", "--alg", "ES256", "--in", &msg, "--out", &sig3]);
    e.ok(&["verify", "signer", "--alg", "ES256", "--signature", &sig3, "--in", &msg]);
    // Human output, from stdin.
    e.ok(&["key", "delete", "signer"]);
    e.ok(&["key", "purge", "signer"]);
    let out = e.run_in(&["key", "restore"], &std::fs::read(&blob_path).unwrap());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("signer") && text.contains("EC-P-256") && text.contains("2 version(s)"),
        "{text}"
    );
    // A secret's backup is not a key's; the backup key is not backed up under itself.
    e.ok(&["secret", "set", "s", "--value", "v"]);
    e.ok(&["secret", "backup", "s", "--out", &e.p("s.backup")]);
    assert!(e.fails(2, &["key", "restore", "--file", &e.p("s.backup")]).contains("not a key backup"));
    e.fails(2, &["key", "backup", "hsmkit-backup"]);

    // Another keystore: refused, and nothing is left there.
    let other = e.p("other");
    e.ok(&in_other_store(&["init"], &other));
    let err = e.fails(5, &in_other_store(&["key", "restore", "--file", &blob_path], &other));
    assert!(err.contains(NOT_OURS), "{err}");
    e.fails(3, &in_other_store(&["key", "show", "signer"], &other));

    // Two keystores holding the same backup key (imported into both before either made
    // one) restore each other's backups.
    let shared = e.write("backup-key.bin", &[0x42; 32]);
    let (a, b) = (e.p("a"), e.p("b"));
    for s in [&a, &b] {
        e.ok(&in_other_store(
            &[
                "key",
                "import",
                "hsmkit-backup",
                "--in",
                &shared,
                "--format",
                "raw",
                "--ops",
                "wrapKey,unwrapKey",
            ],
            s,
        ));
    }
    e.ok(&in_other_store(&["key", "create", "moved", "--type", "ed25519"], &a));
    let moved_sig = e.p("moved.sig");
    e.ok(&in_other_store(&["sign", "moved", "--alg", "EdDSA", "--in", &msg, "--out", &moved_sig], &a));
    let moved = e.p("moved.backup");
    e.ok(&in_other_store(&["key", "backup", "moved", "--out", &moved], &a));
    e.ok(&in_other_store(&["key", "restore", "--file", &moved], &b));
    e.ok(&in_other_store(
        &["verify", "moved", "--alg", "EdDSA", "--signature", &moved_sig, "--in", &msg],
        &b,
    ));
}

// ---------------------------------------------------------------- SoftHSM2

#[test]
fn every_command_on_softhsm() {
    let e = Env::softhsm();
    openssl_interop(&e, false);
    // SoftHSM2 has no OAEP with SHA-256: a typed Unsupported, exit status 5.
    let ct = e.p("ct");
    assert!(e.fails(5, &["decrypt", "rsa", "--alg", "RSA-OAEP-256", "--in", &ct]).contains("unsupported"));
    e.ok(&["key", "create", "kek", "--type", "aes", "--size", "256"]);
    let dek = e.write("dek", &[3u8; 32]);
    e.ok(&["wrap", "kek", "--alg", "A256KW", "--in", &dek, "--out", &e.p("dek.w")]);
    assert_eq!(e.ok(&["unwrap", "kek", "--alg", "A256KW", "--in", &e.p("dek.w")]), [3u8; 32]);
    let data = e.write("data", &vec![1u8; 200_000]);
    e.ok(&["seal", "kek", "--aad", "x=y", "--in", &data, "--out", &e.p("data.hkev")]);
    e.ok(&["unseal", "--aad", "x=y", "--in", &e.p("data.hkev"), "--out", &e.p("data.out")]);
    assert_eq!(std::fs::read(e.path("data.out")).unwrap(), vec![1u8; 200_000]);
    assert_eq!(e.json(&["key", "rotate", "kek"])["version"], 2);
    e.ok(&["rewrap", "--to", "kek", "--aad", "x=y", "--in", &e.p("data.hkev"), "--out", &e.p("v2.hkev")]);
    e.ok(&["key", "update", "kek", "--version", "1", "--enabled", "false"]);
    e.ok(&["unseal", "--aad", "x=y", "--in", &e.p("v2.hkev"), "--out", &e.p("data.out")]);
    e.fails(4, &["unseal", "--aad", "x=y", "--in", &e.p("data.hkev"), "--out", &e.p("data.out")]);
    let names: Vec<String> = e
        .json(&["key", "list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["ec", "kek", "rsa"]);
    assert_eq!(e.json(&["key", "versions", "kek"]).as_array().unwrap().len(), 2);
    e.ok(&["key", "delete", "ec"]);
    e.fails(3, &["key", "show", "ec"]);
    e.ok(&["key", "recover", "ec"]);
    e.ok(&["key", "show", "ec"]);
    let pem = e.p("imp.pem");
    assert!(
        openssl(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", &pem])
            .status
            .success()
    );
    assert_eq!(e.json(&["key", "import", "imp", "--in", &pem])["spec"], "EC-P-256");
    assert_eq!(e.ok(&["key", "public", "imp"]), openssl(&["pkey", "-in", &pem, "-pubout"]).stdout);
}

/// Secrets on a token: sealed under a token KEK, kept in token data objects.
#[test]
fn secrets_on_softhsm() {
    let e = Env::softhsm();
    let v = binary_value(7);
    let out = e.run_in(&["secret", "set", "s"], &v);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    e.ok(&["secret", "set", "s", "--value", "two"]);
    assert_eq!(e.ok(&["secret", "get", "s", "--version", "1"]), v);
    assert_eq!(e.ok(&["secret", "get", "s"]), b"two");
    assert_eq!(versions_of(&e, "s"), [1, 2]);
}

/// On a token, secrets back up and restore; keys never leave it, so `key backup` is
/// refused (Unsupported, exit status 5) saying why, and writes no file.
#[test]
fn backup_on_softhsm() {
    let e = Env::softhsm();
    let v = binary_value(9);
    let out = e.run_in(&["secret", "set", "s"], &v);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    e.ok(&["secret", "set", "s", "--value", "two"]);
    let blob = e.p("s.backup");
    e.ok(&["secret", "backup", "s", "--out", &blob]);
    assert!(e.fails(5, &["secret", "restore", "--file", &blob]).contains(HELD));
    e.ok(&["secret", "delete", "s"]);
    e.ok(&["secret", "purge", "s"]);
    assert_eq!(e.json(&["secret", "restore", "--file", &blob])["versions"], 2);
    assert_eq!(e.ok(&["secret", "get", "s", "--version", "1"]), v);
    assert_eq!(e.ok(&["secret", "get", "s"]), b"two");

    e.ok(&["key", "create", "k", "--type", "ec"]);
    let err = e.fails(5, &["key", "backup", "k", "--out", &e.p("k.backup")]);
    assert!(err.contains("unsupported") && err.contains("never leave it"), "{err}");
    assert!(err.contains("hint: back up the token itself"), "{err}");
    assert!(!e.path("k.backup").exists());
}

#[test]
fn info_on_softhsm() {
    let e = Env::softhsm();
    let token = e.pkcs11.as_ref().unwrap();
    let uri = hsmkit_pkcs11::Pkcs11Uri::parse(token.uri()).unwrap();
    let caps = hsmkit::Store::new(hsmkit_pkcs11::Pkcs11Backend::open_uri(&uri).unwrap()).capabilities();
    assert_eq!((caps.engine, caps.metadata), ("pkcs11", "token"));
    // SoftHSM2 has no OAEP with SHA-256 (every_command_on_softhsm): not claimed.
    assert!(!caps.decrypt.contains(&hsmkit::EncryptionAlgorithm::RsaOaep256), "{caps:?}");
    check_info(&e, "pkcs11", &caps);
}

#[test]
fn help_lists_the_commands() {
    let out = Command::cargo_bin("hsmkit").unwrap().arg("--help").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    for c in [
        "key", "secret", "sign", "verify", "encrypt", "decrypt", "wrap", "unwrap", "seal", "unseal",
        "rewrap", "audit", "info", "demo",
    ] {
        assert!(text.contains(&format!("  {c}")), "{c}");
    }
}

/// Truncated, oversized and garbage input to every command that reads data: a non-zero
/// documented exit status, a one-line error without a panic, and no output file.
#[test]
fn bad_input_gets_a_clear_error_and_no_output() {
    let e = Env::store();
    e.ok(&["key", "create", "kek", "--type", "aes"]);
    e.ok(&["key", "create", "rsa", "--type", "rsa", "--size", "2048", "--ops", "encrypt,decrypt"]);
    e.ok(&["key", "create", "ec", "--type", "ec"]);
    let msg = e.write("m", b"message");
    let env = e.p("good.hkev");
    e.ok(&["seal", "kek", "--in", &msg, "--out", &env]);
    let good = std::fs::read(&env).unwrap();
    let garbage: Vec<u8> = (0..4096u32).map(|i| i.wrapping_mul(2_654_435_761).to_be_bytes()[1]).collect();

    let mut n = 0;
    let mut check = |args: Vec<String>, code: i32| {
        let out_path = e.path(&format!("out-{n}"));
        n += 1;
        let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out_arg = out_path.display().to_string();
        args.extend(["--out", &out_arg]);
        let stderr = e.fails(code, &args);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(stderr.starts_with("hsmkit: "), "{args:?}: {stderr}");
        assert!(!out_path.exists(), "{args:?} left an output file");
    };
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();

    // Envelopes: every truncation, a flipped header byte, garbage, empty.
    for cut in [0, 1, 4, 20, good.len() / 2, good.len() - 17, good.len() - 1] {
        let f = e.write(&format!("cut{cut}"), &good[..cut]);
        check(s(&["unseal", "--in", &f]), 5);
        // One chunk: the header, 7 bytes of message, a 16-byte tag.
        if cut < good.len() - 7 - 16 {
            check(s(&["rewrap", "--to", "kek", "--in", &f]), 5);
        } else {
            // Rewrap reads the header only: a cut body passes through and still fails to open.
            let r = e.p(&format!("rewrapped{cut}"));
            e.ok(&["rewrap", "--to", "kek", "--in", &f, "--out", &r]);
            check(s(&["unseal", "--in", &r]), 5);
        }
    }
    let mut flipped = good.clone();
    flipped[10] ^= 0x40;
    let f = e.write("flipped", &flipped);
    check(s(&["unseal", "--in", &f]), 5);
    let g = e.write("garbage", &garbage);
    check(s(&["unseal", "--in", &g]), 5);
    // An envelope followed by trailing bytes is not the same envelope.
    let mut longer = good.clone();
    longer.extend_from_slice(b"tail");
    let f = e.write("longer", &longer);
    check(s(&["unseal", "--in", &f]), 5);

    // Ciphertexts and wrapped keys: garbage and wrong lengths are the one decryption error.
    check(s(&["decrypt", "rsa", "--alg", "RSA-OAEP-256", "--in", &g]), 5);
    let short = e.write("short", &garbage[..255]);
    check(s(&["decrypt", "rsa", "--alg", "RSA-OAEP-256", "--in", &short]), 5);
    check(s(&["unwrap", "kek", "--alg", "A256KW", "--in", &short]), 5);
    let w40 = e.write("w40", &garbage[..40]);
    check(s(&["unwrap", "kek", "--alg", "A256KW", "--in", &w40]), 5);
    // Oversized: more than RSA-2048 OAEP-256 can carry; a "key" of 1 MiB + 3 bytes (KW
    // takes multiples of 8 bytes).
    let big = e.write("big", &[1u8; 300]);
    check(s(&["encrypt", "rsa", "--alg", "RSA-OAEP-256", "--in", &big]), 2);
    let huge = e.write("huge", &vec![1u8; (1 << 20) + 3]);
    check(s(&["wrap", "kek", "--alg", "A256KW", "--in", &huge]), 2);
    // Signatures: garbage and truncated signatures do not verify (exit 1).
    let sig = e.p("m.sig");
    e.ok(&["sign", "ec", "--alg", "ES256", "--in", &msg, "--out", &sig]);
    let good_sig = std::fs::read(&sig).unwrap();
    for bad in [&good_sig[..10], &garbage[..64], &garbage[..]] {
        let f = e.write("badsig", bad);
        let out = e.run(&["verify", "ec", "--alg", "ES256", "--signature", &f, "--in", &msg]);
        assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    }
    // Keys to import: garbage, truncated PEM, empty, a JWK with a wrong field.
    let pem = e.p("k.pem");
    assert!(
        openssl(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", &pem])
            .status
            .success()
    );
    let pem_bytes = std::fs::read(&pem).unwrap();
    for (i, bad) in [
        &garbage[..],
        &pem_bytes[..pem_bytes.len() / 2],
        &b""[..],
        &br#"{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}"#[..],
    ]
    .into_iter()
    .enumerate()
    {
        let f = e.write(&format!("bad-key-{i}"), bad);
        let stderr = e.fails(2, &["key", "import", &format!("imp{i}"), "--in", &f]);
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    assert_eq!(e.json(&["key", "list"]).as_array().unwrap().len(), 3, "no half-imported key");
    // Names: too long, bad characters.
    e.fails(2, &["key", "create", &"n".repeat(300), "--type", "aes"]);
    e.fails(2, &["key", "create", "bad/name", "--type", "aes"]);
    // Missing input file: an I/O error, and still no output.
    check(s(&["seal", "kek", "--in", &e.p("does-not-exist")]), 5);
}

/// A reader that stops early (`hsmkit key list | head -1`) closes stdout: the command ends
/// quietly with 0, never a panic (exit 101 and a backtrace before). The pipe's read end is
/// closed before the command starts, so every write to stdout fails: no race with the child.
#[test]
fn a_stderr_nobody_reads_does_not_turn_an_error_into_a_panic() {
    let e = Env::store();
    // stderr is a pipe whose reader is gone: writing fails with EPIPE (SIGPIPE is ignored
    // by Rust programs). The exit status is still the error's, not 101 from a panic.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let status = e.cmd().args(["--store", &e.p("missing"), "key", "list"]).stderr(writer).status().unwrap();
    assert_eq!(status.code(), Some(3));
}

#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let e = Env::store();
    e.ok(&["key", "create", "a", "--type", "ec"]);
    e.ok(&["key", "create", "kek", "--type", "aes"]);
    let msg = e.write("m", &vec![7u8; 1 << 20]);
    let sealed = e.p("m.env");
    e.ok(&["seal", "kek", "--in", &msg, "--out", &sealed]);
    let cases: [&[&str]; 6] = [
        &["key", "list"],
        &["--json", "key", "list"],
        &["key", "show", "a"],
        &["info"],
        &["unseal", "--in", &sealed],
        &["demo"],
    ];
    for args in cases {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = e.cmd().args(args).stdout(writer).stderr(Stdio::piped()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "hsmkit {args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "hsmkit {args:?}: {stderr}");
    }
}

/// A signal mid-unseal leaves no plaintext behind: the temporary output file (holding the
/// chunks verified so far) is removed and the command ends with 128 + the signal. The
/// input comes through a pipe the test holds open, so the command is stopped mid-stream
/// at a known point, whatever the machine's speed.
#[test]
fn a_signal_mid_unseal_leaves_no_partial_file() {
    use std::io::Write;
    let e = Env::store();
    e.ok(&["key", "create", "kek", "--type", "aes"]);
    let plain = e.write("big", &vec![0x5a; 4 << 20]);
    let sealed = e.p("big.env");
    e.ok(&["seal", "kek", "--in", &plain, "--out", &sealed]);
    let sealed = std::fs::read(&sealed).unwrap();
    let out_dir = e.path("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("big.txt");
    for (signal, code) in [("TERM", 143), ("INT", 130), ("HUP", 129)] {
        let mut child = e
            .cmd()
            .args(["unseal", "--out", out.to_str().unwrap()])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(&sealed[..sealed.len() / 2]).unwrap();
        input.flush().unwrap();
        // Wait until verified plaintext has reached the temporary file.
        let partial = || {
            std::fs::read_dir(&out_dir)
                .unwrap()
                .flatten()
                .filter(|f| f.file_name().to_string_lossy().ends_with(".partial"))
                .map(|f| f.metadata().unwrap().len())
                .max()
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while partial().unwrap_or(0) == 0 {
            assert!(std::time::Instant::now() < deadline, "no plaintext written after half the input");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let kill =
            Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status().unwrap();
        assert!(kill.success());
        let status = child.wait().unwrap();
        drop(input);
        assert_eq!(status.code(), Some(code), "SIG{signal}");
        assert_eq!(partial(), None, "SIG{signal}: a partial file is left");
        assert!(!out.exists(), "SIG{signal}");
    }
}

/// Plaintext the command handles is wiped before its memory is freed: an LD_PRELOAD
/// `free()` (tests/free_scan.c) scans every freed block for a canary the plaintext
/// repeats. Before, `unseal --out` and `decrypt --out` freed a 64 KiB `BufWriter` holding
/// plaintext, `seal` its `BufReader`, output to stdout std's `LineWriter`, and input read
/// from a pipe the buffers `read_to_end` outgrew.
#[cfg(target_os = "linux")]
#[test]
fn plaintext_is_wiped_before_it_is_freed() {
    use std::io::Write;
    const CANARY: &str = "CANARY-012345678";
    let e = Env::store();
    let scanner = e.path("free_scan.so");
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/free_scan.c");
    let cc = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", src, "-o", scanner.to_str().unwrap(), "-ldl"])
        .status()
        .expect("cc (tests/run-all.sh installs build-essential)");
    assert!(cc.success());
    e.ok(&["key", "create", "kek", "--type", "aes"]);
    e.ok(&["key", "create", "rsa", "--type", "rsa", "--size", "2048"]);
    let plain = e.write("plain", CANARY.repeat(40_000).as_bytes());
    let short = e.write("short", &CANARY.as_bytes().repeat(4));
    let (env, rsa) = (e.p("p.env"), e.p("p.rsa"));
    e.ok(&["seal", "kek", "--in", &plain, "--out", &env]);
    e.ok(&["encrypt", "rsa", "--alg", "RSA-OAEP-256", "--in", &short, "--out", &rsa]);
    let scanned = |args: &[&str], stdin: Option<&[u8]>| -> usize {
        let mut child = e
            .cmd()
            .args(args)
            .env("LD_PRELOAD", &scanner)
            .env("FREE_SCAN_CANARY", CANARY)
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(data) = stdin {
            child.stdin.take().unwrap().write_all(data).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stderr).matches("FREE_SCAN").count()
    };
    // The scanner sees what it must: clap's copy of an argument is freed as it is.
    assert!(scanned(&["key", "show", CANARY], None) > 0, "the scanner found nothing: is LD_PRELOAD working?");
    let (o1, o2, o3, o4, o5) = (e.p("o1"), e.p("o2"), e.p("o3"), e.p("o4"), e.p("o5"));
    let (long_in, short_in) = (CANARY.repeat(40_000), CANARY.repeat(4));
    // Secret values: set from a file and stdin, read to stdout, a file and JSON.
    let secret_in = CANARY.repeat(1_000);
    let secret_file = e.write("secret", secret_in.as_bytes());
    e.ok(&["secret", "set", "s", "--file", &secret_file]);
    let o6 = e.p("o6");
    let cases: [(&[&str], Option<&[u8]>); 12] = [
        (&["unseal", "--in", &env, "--out", &o1], None),
        (&["unseal", "--in", &env], None),
        (&["decrypt", "rsa", "--alg", "RSA-OAEP-256", "--in", &rsa, "--out", &o2], None),
        (&["decrypt", "rsa", "--alg", "RSA-OAEP-256", "--in", &rsa], None),
        (&["seal", "kek", "--in", &plain, "--out", &o3], None),
        (&["seal", "kek", "--out", &o4], Some(long_in.as_bytes())),
        (&["encrypt", "rsa", "--alg", "RSA-OAEP-256", "--out", &o5], Some(short_in.as_bytes())),
        (&["secret", "set", "s", "--file", &secret_file], None),
        (&["secret", "set", "s"], Some(secret_in.as_bytes())),
        (&["secret", "get", "s"], None),
        (&["secret", "get", "s", "--out", &o6], None),
        (&["--json", "secret", "get", "s"], None),
    ];
    for (args, stdin) in cases {
        assert_eq!(scanned(args, stdin), 0, "hsmkit {args:?} freed plaintext unwiped");
    }
    assert_eq!(std::fs::read(&o1).unwrap(), std::fs::read(&plain).unwrap());
    assert_eq!(std::fs::read(&o6).unwrap(), secret_in.as_bytes());
    // Backup and restore open every version's value (the scanner looks for the values
    // themselves, not the base64 the backup holds them as inside its seal).
    let backup = e.p("s.backup");
    for args in [&["secret", "backup", "s", "--out", &backup][..], &["secret", "backup", "s"]] {
        assert_eq!(scanned(args, None), 0, "hsmkit {args:?} freed plaintext unwiped");
    }
    e.ok(&["secret", "delete", "s"]);
    e.ok(&["secret", "purge", "s"]);
    let args = ["secret", "restore", "--file", &backup];
    assert_eq!(scanned(&args, None), 0, "hsmkit {args:?} freed plaintext unwiped");
    assert_eq!(e.ok(&["secret", "get", "s"]), secret_in.as_bytes());
}

/// Only `init`, `key create`, `key import` and `secret set` make a keystore: any other
/// command on a missing one exits 3 with a hint and creates nothing (a typo in a path no
/// longer makes a new, empty store under whatever passphrase was typed).
#[test]
fn only_init_and_key_create_make_a_keystore() {
    let e = Env::store();
    let msg = e.write("m", b"message");
    let store = e.path("store");
    for args in [
        &["key", "list"][..],
        &["key", "show", "a"],
        &["info"],
        &["verify", "a", "--alg", "ES256", "--signature", &msg, "--in", &msg],
        &["sign", "a", "--alg", "ES256", "--in", &msg],
        &["unseal", "--in", &msg],
        &["secret", "list"],
        &["secret", "get", "a"],
    ] {
        let err = e.fails(3, args);
        assert!(err.contains("keystore") && err.contains("hsmkit init"), "hsmkit {args:?}: {err}");
        assert!(!store.exists(), "hsmkit {args:?} created the keystore");
    }
    e.ok(&["init"]);
    assert!(store.join("hsmkit-keystore.json").exists());
    e.fails(5, &["init"]); // already there: AlreadyExists
    e.ok(&["key", "list"]);

    // key create and secret set make a missing store (not on a terminal: stdin is
    // /dev/null here).
    let other = Env::store();
    other.ok(&["key", "create", "a", "--type", "ec"]);
    assert!(other.path("store").join("hsmkit-keystore.json").exists());
    let third = Env::store();
    third.ok(&["secret", "set", "a", "--value", "v"]);
    assert!(third.path("store").join("hsmkit-keystore.json").exists());
}

// ---------------------------------------------------------------- JWT and JWKS (issue 21)

/// `hsmkit jwt sign ...`: the compact token it prints.
fn jwt_sign(e: &Env, key: &str, alg: &str, claims: &str, extra: &[&str]) -> String {
    let mut args = vec!["jwt", "sign", key, "--alg", alg, "--claims", claims];
    args.extend_from_slice(extra);
    let token = String::from_utf8(e.ok(&args)).unwrap();
    assert!(token.ends_with('\n') && token.trim().split('.').count() == 3, "{token:?}");
    token.trim().to_owned()
}

/// Part `i` of a compact token (0 header, 1 claims), decoded.
fn jwt_part(token: &str, i: usize) -> Value {
    use base64ct::Encoding;
    let part = token.split('.').nth(i).unwrap();
    serde_json::from_slice(&base64ct::Base64UrlUnpadded::decode_vec(part).unwrap()).unwrap()
}

/// Runs `hsmkit jwt verify ARGS`, requires exit status 1 (token refused); returns stdout.
fn jwt_refused(e: &Env, args: &[&str]) -> String {
    let out = e.run(args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "hsmkit {args:?}: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("token INVALID: "), "{stdout}");
    stdout
}

#[test]
fn jwt_sign_verify_and_exit_codes() {
    let e = Env::store();
    e.ok(&["key", "create", "ec", "--type", "ec"]);
    let t =
        jwt_sign(&e, "ec", "ES256", r#"{"sub":"alice","aud":"api","iss":"me"}"#, &["--expires-in", "PT1H"]);
    assert_eq!(jwt_part(&t, 0), serde_json::json!({"alg": "ES256", "kid": "ec/1", "typ": "JWT"}));
    let c = jwt_part(&t, 1);
    assert_eq!(
        (c["sub"].as_str(), c["aud"].as_str(), c["iss"].as_str()),
        (Some("alice"), Some("api"), Some("me"))
    );
    assert_eq!(c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(), 3600);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(c["iat"].as_u64().unwrap().abs_diff(now) < 600, "iat {} is not now ({now})", c["iat"]);

    // Valid: exit 0; the claims, as JSON with --json.
    let v = e.json(&["jwt", "verify", "--token", &t, "--audience", "api", "--issuer", "me"]);
    assert_eq!(
        (v["valid"].as_bool(), v["kid"].as_str(), v["alg"].as_str()),
        (Some(true), Some("ec/1"), Some("ES256"))
    );
    assert_eq!(v["claims"], c);
    assert_eq!(v["header"]["typ"], "JWT");
    let text = String::from_utf8(e.ok(&["jwt", "verify", "--token", &t, "--audience", "api"])).unwrap();
    assert!(
        text.starts_with("token valid: kid ec/1, alg ES256\n") && text.contains("\"sub\": \"alice\""),
        "{text}"
    );
    // The token from stdin or a file (a command line is visible to other users).
    let out =
        e.run_in(&["jwt", "verify", "--audience", "other", "--audience", "api"], format!("{t}\n").as_bytes());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let file = e.write("token.jwt", t.as_bytes());
    e.ok(&["jwt", "verify", "--in", &file, "--audience", "api", "--alg", "ES256", "--alg", "PS256"]);

    // Invalid: exit 1 with the reason.
    let mut tampered = t.clone();
    tampered.push('A');
    let (h, rest) = t.split_once('.').unwrap();
    let relabelled = format!("{}.{rest}", {
        use base64ct::Encoding;
        base64ct::Base64UrlUnpadded::encode_string(br#"{"alg":"ES384","kid":"ec/1"}"#)
    });
    for (args, why) in [
        (vec!["jwt", "verify", "--token", &t], "audience"),
        (vec!["jwt", "verify", "--token", &t, "--audience", "API"], "audience"),
        (vec!["jwt", "verify", "--token", &t, "--audience", "api", "--issuer", "you"], "issuer"),
        (vec!["jwt", "verify", "--token", &t, "--audience", "api", "--alg", "ES384"], "ES256"),
        (vec!["jwt", "verify", "--token", &tampered, "--audience", "api"], ""),
        (vec!["jwt", "verify", "--token", &relabelled, "--audience", "api"], "ES384"),
        (vec!["jwt", "verify", "--token", h, "--audience", "api"], "three"),
        (vec!["jwt", "verify", "--token", "not a token"], "three"),
    ] {
        let out = jwt_refused(&e, &args);
        assert!(out.contains(why), "{args:?}: {out}");
    }
    let v = {
        let out = e.run(&["--json", "jwt", "verify", "--token", &t]);
        assert_eq!(out.status.code(), Some(1));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    assert_eq!(v["valid"], false);
    assert!(v["error"].as_str().unwrap().contains("audience"), "{v}");

    // Time claims.
    let expired = jwt_sign(&e, "ec", "ES256", r#"{"exp":1000000000}"#, &[]);
    assert!(
        jwt_refused(&e, &["jwt", "verify", "--token", &expired]).contains("expired at 2001-09-09T01:46:40Z")
    );
    let early = jwt_sign(&e, "ec", "ES256", "{}", &["--expires-in", "P2D", "--not-before", "P1D"]);
    assert!(jwt_refused(&e, &["jwt", "verify", "--token", &early]).contains("not valid before"));
    let late_but_lenient = jwt_sign(&e, "ec", "ES256", &format!(r#"{{"exp":{}}}"#, now - 100), &[]);
    jwt_refused(&e, &["jwt", "verify", "--token", &late_but_lenient]);
    e.ok(&["jwt", "verify", "--token", &late_but_lenient, "--leeway", "3600"]);
    let forever = jwt_sign(&e, "ec", "ES256", r#"{"sub":"x"}"#, &["--no-iat"]);
    assert_eq!(jwt_part(&forever, 1), serde_json::json!({"sub": "x"}));
    assert!(jwt_refused(&e, &["jwt", "verify", "--token", &forever]).contains("'exp'"));
    e.ok(&["jwt", "verify", "--token", &forever, "--no-exp"]);

    // The version comes from kid: after a rotation both tokens verify, each with its own.
    e.ok(&["key", "rotate", "ec"]);
    let t2 = jwt_sign(
        &e,
        "ec",
        "ES256",
        r#"{"aud":"api"}"#,
        &["--expires-in", "PT1H", "--header", r#"{"typ":"at+jwt"}"#],
    );
    assert_eq!(jwt_part(&t2, 0), serde_json::json!({"alg": "ES256", "kid": "ec/2", "typ": "at+jwt"}));
    assert_eq!(e.json(&["jwt", "verify", "--token", &t2, "--audience", "api"])["kid"], "ec/2");
    assert_eq!(e.json(&["jwt", "verify", "--token", &t, "--audience", "api"])["kid"], "ec/1");
    // A disabled version, or a deleted key, verifies nothing: the token is invalid.
    e.ok(&["key", "update", "ec", "--version", "1", "--enabled", "false"]);
    assert!(jwt_refused(&e, &["jwt", "verify", "--token", &t, "--audience", "api"]).contains("disabled"));
    e.ok(&["jwt", "verify", "--token", &t2, "--audience", "api"]);
    e.ok(&["key", "create", "gone", "--type", "ed25519"]);
    let t3 = jwt_sign(&e, "gone", "EdDSA", "{}", &["--expires-in", "PT1H"]);
    e.ok(&["jwt", "verify", "--token", &t3]);
    e.ok(&["key", "delete", "gone"]);
    assert!(jwt_refused(&e, &["jwt", "verify", "--token", &t3]).contains("not found"));

    // Usage errors and refused signing requests: exit 2, nothing on stdout.
    for args in [
        &["jwt", "sign", "ec", "--alg", "ES256", "--claims", "[1]"][..],
        &["jwt", "sign", "ec", "--alg", "ES256", "--claims", "{"],
        &["jwt", "sign", "ec", "--alg", "ES256", "--claims", r#"{"exp":1}"#, "--expires-in", "PT1H"],
        &["jwt", "sign", "ec", "--alg", "ES256", "--claims", r#"{"aud":7}"#],
        &["jwt", "sign", "ec", "--alg", "ES256", "--claims", "{}", "--expires-in", "1h"],
        &["jwt", "sign", "ec", "--alg", "ES256", "--claims", "{}", "--header", r#"{"kid":"x/1"}"#],
        &["jwt", "sign", "ec", "--alg", "HS256", "--claims", "{}"],
        &["jwt", "sign", "ec", "--alg", "none", "--claims", "{}"],
        &["jwt", "verify", "--token", &t, "--alg", "bogus"],
        &["jwt", "sign", "ec", "--alg", "ES256"],
    ] {
        let out = e.run(args);
        assert_eq!(out.status.code(), Some(2), "hsmkit {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stdout.is_empty(), "hsmkit {args:?} printed {:?}", String::from_utf8_lossy(&out.stdout));
    }
    // No key to sign with: 3.
    e.fails(3, &["jwt", "sign", "nokey", "--alg", "ES256", "--claims", "{}"]);
}

#[test]
fn jwt_jwks_lists_the_enabled_versions() {
    let e = Env::store();
    e.ok(&["key", "create", "ec", "--type", "ec", "--curve", "P-384"]);
    e.ok(&["key", "rotate", "ec"]);
    e.ok(&["key", "rotate", "ec"]);
    e.ok(&["key", "update", "ec", "--version", "1", "--enabled", "false"]);
    e.ok(&["key", "update", "ec", "--version", "3", "--not-before", "P1D"]);
    e.ok(&["key", "create", "rsa", "--type", "rsa"]);
    e.ok(&["key", "create", "ed", "--type", "ed25519"]);
    e.ok(&["key", "create", "k1", "--type", "ec", "--curve", "P-256K"]);
    let doc: Value = serde_json::from_slice(&e.ok(&["jwks", "ec", "rsa", "ed", "k1"])).unwrap();
    let keys = doc["keys"].as_array().unwrap();
    let kids: Vec<&str> = keys.iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(kids, ["ec/2", "rsa/1", "ed/1", "k1/1"]);
    assert!(keys.iter().all(|k| k["use"] == "sig" && k.get("d").is_none()), "{doc}");
    let algs: Vec<Option<&str>> = keys.iter().map(|k| k["alg"].as_str()).collect();
    assert_eq!(algs, [Some("ES384"), None, Some("EdDSA"), Some("ES256K")]);
    assert_eq!(keys[3]["crv"], "secp256k1");
    // The JWK of ec/2 is the public key `key public` gives for version 2.
    let public: Value =
        serde_json::from_slice(&e.ok(&["key", "public", "ec", "--version", "2", "--format", "jwk"])).unwrap();
    assert_eq!((&keys[0]["x"], &keys[0]["y"]), (&public["x"], &public["y"]));
    // --json prints the same document; --out writes it.
    assert_eq!(e.json(&["jwks", "ec", "rsa", "ed", "k1"]), doc);
    let out = e.p("jwks.json");
    e.ok(&["jwks", "ec", "--out", &out]);
    let written: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(written["keys"].as_array().unwrap().len(), 1);

    // An HMAC key's secret never goes into a JWKS; an unknown key is not found.
    e.ok(&["key", "create", "mac", "--type", "hmac"]);
    let err = e.fails(2, &["jwks", "ec", "mac"]);
    assert!(err.contains("'mac'") && err.contains("HMAC"), "{err}");
    e.fails(3, &["jwks", "ec", "missing"]);
    e.fails(2, &["jwks"]);
}

/// hsmkit's JWTs verified by PyJWT (with the JWKS `hsmkit jwks` printed, through
/// `PyJWKClient` from a loopback HTTP server, and from the file) and by joserfc; theirs
/// verified by `hsmkit jwt verify` after their keys are imported; for every algorithm
/// hsmkit has (all of which both libraries support). The Python side is
/// tests/interop/jwt_interop.py; PyJWT and joserfc missing is a failure, never a skip.
#[test]
fn jwt_interop_with_pyjwt_and_joserfc() {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/jwt_interop.py");
    let python = |args: &[&str]| {
        let out = Command::new("python3")
            .arg(&script)
            .args(args)
            .output()
            .expect("python3 (tests/run-all.sh installs PyJWT and joserfc for it)");
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "jwt_interop.py {args:?} failed:\n{stdout}\n{stderr}");
        stdout.into_owned()
    };
    let e = Env::store();

    // hsmkit signs, PyJWT and joserfc verify.
    for (name, args) in [
        ("rsa", &["--type", "rsa"][..]),
        ("p256", &["--type", "ec", "--curve", "P-256"]),
        ("p384", &["--type", "ec", "--curve", "P-384"]),
        ("p521", &["--type", "ec", "--curve", "P-521"]),
        ("k1", &["--type", "ec", "--curve", "P-256K"]),
        ("ed", &["--type", "ed25519"]),
    ] {
        let mut a = vec!["key", "create", name];
        a.extend_from_slice(args);
        e.ok(&a);
    }
    // HS* needs the secret on both sides: a known one, imported.
    let secret: Vec<u8> = (0u8..64).map(|i| i.wrapping_mul(37).wrapping_add(11)).collect();
    let k = {
        use base64ct::Encoding;
        base64ct::Base64UrlUnpadded::encode_string(&secret)
    };
    let jwk =
        e.write("mac.jwk", serde_json::json!({"kty": "oct", "k": k, "alg": "HS256"}).to_string().as_bytes());
    e.ok(&["key", "import", "mac", "--in", &jwk, "--format", "jwk"]);
    let algs = [
        ("RS256", "rsa"),
        ("RS384", "rsa"),
        ("RS512", "rsa"),
        ("PS256", "rsa"),
        ("PS384", "rsa"),
        ("PS512", "rsa"),
        ("ES256", "p256"),
        ("ES384", "p384"),
        ("ES512", "p521"),
        ("ES256K", "k1"),
        ("EdDSA", "ed"),
        ("HS256", "mac"),
        ("HS384", "mac"),
        ("HS512", "mac"),
    ];
    let tokens: Vec<Value> = algs
        .iter()
        .map(|(alg, key)| {
            let sub = format!("hsmkit {alg}");
            let claims = serde_json::json!({"iss": "hsmkit-test", "aud": "interop", "sub": sub}).to_string();
            let token = jwt_sign(&e, key, alg, &claims, &["--expires-in", "PT1H"]);
            serde_json::json!({"alg": alg, "kid": format!("{key}/1"), "token": token, "sub": sub})
        })
        .collect();
    let cases = serde_json::json!({"issuer": "hsmkit-test", "audience": "interop", "hmac_secret": k, "tokens": tokens});
    let cases = e.write("cases.json", cases.to_string().as_bytes());
    let jwks = e.p("jwks.json");
    e.ok(&["jwks", "rsa", "p256", "p384", "p521", "k1", "ed", "--out", &jwks]);
    let report = python(&["verify", &cases, &jwks]);
    for (alg, _) in algs {
        for line in [
            format!("ok   PyJWT verifies hsmkit's {alg} ("),
            format!("ok   joserfc verifies hsmkit's {alg}\n"),
        ] {
            assert!(report.contains(&line), "no {line:?} in:\n{report}");
        }
    }
    assert!(report.contains("ok   PyJWT verifies hsmkit's ES256K (PyJWKClient)"), "{report}");
    assert!(!report.contains("FAIL"), "{report}");

    // PyJWT and joserfc sign, hsmkit verifies with their keys imported.
    let dir = e.path("py");
    std::fs::create_dir(&dir).unwrap();
    python(&["sign", &dir.display().to_string()]);
    for name in ["py-rsa", "py-p256", "py-p384", "py-p521", "py-k1", "py-ed"] {
        e.ok(&["key", "import", name, "--in", &dir.join(format!("{name}.pem")).display().to_string()]);
    }
    e.ok(&[
        "key",
        "import",
        "py-hmac",
        "--in",
        &dir.join("py-hmac.jwk").display().to_string(),
        "--format",
        "jwk",
    ]);
    let theirs: Vec<Value> =
        serde_json::from_slice(&std::fs::read(dir.join("tokens.json")).unwrap()).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for t in &theirs {
        let (lib, alg, key, token) = (
            t["lib"].as_str().unwrap(),
            t["alg"].as_str().unwrap(),
            t["key"].as_str().unwrap(),
            t["token"].as_str().unwrap(),
        );
        let v = e.json(&["jwt", "verify", "--token", token, "--audience", "hsmkit", "--issuer", "python"]);
        assert_eq!(v["valid"], true, "{lib} {alg}: {v}");
        assert_eq!(
            (v["alg"].as_str(), v["kid"].as_str()),
            (Some(alg), Some(format!("{key}/1").as_str())),
            "{v}"
        );
        assert_eq!(v["claims"]["sub"], format!("{lib} {alg}"));
        // Altered, it is refused.
        let (signed, sig) = token.rsplit_once('.').unwrap();
        let other = if sig.starts_with('A') { "B" } else { "A" };
        let bad = format!("{signed}.{other}{}", &sig[1..]);
        jwt_refused(&e, &["jwt", "verify", "--token", &bad, "--audience", "hsmkit", "--issuer", "python"]);
        // And hsmkit's checks apply to their tokens too.
        jwt_refused(
            &e,
            &["jwt", "verify", "--token", token, "--audience", "hsmkit", "--issuer", "elsewhere"],
        );
        seen.insert((lib.to_owned(), alg.to_owned()));
    }
    let want: std::collections::BTreeSet<(String, String)> = ["pyjwt", "joserfc"]
        .iter()
        .flat_map(|l| algs.iter().map(move |(a, _)| (l.to_string(), a.to_string())))
        .collect();
    assert_eq!(seen, want);
}

#[test]
fn jwt_and_jwks_in_the_demo() {
    let out = Command::cargo_bin("hsmkit").unwrap().arg("demo").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    for want in [
        "$ hsmkit jwt sign signer --alg ES256 --claims {\"sub\":\"alice\",\"aud\":\"payments\"} --expires-in PT1H --out token.jwt",
        "$ hsmkit jwt verify --in token.jwt --audience payments\ntoken valid: kid signer/1, alg ES256\n",
        "$ hsmkit jwt verify --in token.jwt --audience sales\ntoken INVALID: JWT refused: the token's audience",
        "$ hsmkit jwks signer\n{\n  \"keys\": [",
    ] {
        assert!(text.contains(want), "demo output lacks {want:?}:\n{text}");
    }
}
