//! Interop with an independent implementation: the OpenSSL command line.
//!
//! `openssl` must be installed (tests/run-all.sh installs it); a missing binary fails the
//! test rather than skipping it.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use hsmkit::{
    EncryptionAlgorithm, KeyAttributes, KeyMaterial, KeyOp, KeySpec, SignInput, SignatureAlgorithm,
    SignatureFormat, Store,
};

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Self {
        Dir(tempfile::tempdir().expect("temp dir"))
    }
    fn write(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.0.path().join(name);
        std::fs::write(&p, data).expect("write");
        p
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
}

/// `ossl!(a, b, ...)` runs openssl with arguments of any `AsRef<OsStr>` type.
macro_rules! ossl {
    ($($a:expr),* $(,)?) => { openssl(&[$(OsStr::new(&$a)),*]) };
}

/// Runs openssl; panics with its stderr on failure.
fn openssl(args: &[&OsStr]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl binary is required (tests/run-all.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {:?} failed: {}",
        args.iter().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn p(path: &Path) -> &OsStr {
    path.as_os_str()
}

const MSG: &[u8] = b"interop message signed by one side, checked by the other";

/// Signatures hsmkit makes verify with `openssl dgst -verify` and hsmkit's exported PEM.
pub fn openssl_verifies_hsmkit_signatures(store: &Store) {
    let caps = store.capabilities();
    let d = Dir::new();
    let msg = d.write("msg", MSG);
    for (alg, spec, md, pss) in [
        (SignatureAlgorithm::Rs256, KeySpec::RSA_2048, "-sha256", false),
        (SignatureAlgorithm::Rs512, KeySpec::RSA_3072, "-sha512", false),
        (SignatureAlgorithm::Ps256, KeySpec::RSA_2048, "-sha256", true),
        (SignatureAlgorithm::Ps384, KeySpec::RSA_2048, "-sha384", true),
        (SignatureAlgorithm::Es256, KeySpec::P256, "-sha256", false),
        (SignatureAlgorithm::Es384, KeySpec::P384, "-sha384", false),
        (SignatureAlgorithm::Es512, KeySpec::P521, "-sha512", false),
    ] {
        if !caps.sign.contains(&alg) {
            continue;
        }
        let key = store
            .create_key(&format!("ossl-{alg}"), spec, KeyAttributes::with_ops(&[KeyOp::Sign, KeyOp::Verify]))
            .expect("create");
        let format =
            if spec.key_type() == hsmkit::KeyType::Ec { SignatureFormat::Der } else { SignatureFormat::Raw };
        let sig = key.sign_with(alg, SignInput::Message(MSG), format).expect("sign");
        let pem = d.write(&format!("{alg}.pem"), key.public_key_pem().expect("pem").as_bytes());
        let der = d.write(&format!("{alg}.der"), &key.public_key_der().expect("der"));
        let sigf = d.write(&format!("{alg}.sig"), &sig);
        // OpenSSL parses the SPKI DER as well as the PEM and both describe the same key.
        let from_der = ossl!(&"pkey", &"-pubin", &"-inform", &"DER", &"-in", &p(&der));
        assert_eq!(String::from_utf8_lossy(&from_der), std::fs::read_to_string(&pem).expect("read"));
        let mut args: Vec<&OsStr> = vec![
            OsStr::new("dgst"),
            OsStr::new(md),
            OsStr::new("-verify"),
            pem.as_os_str(),
            OsStr::new("-signature"),
            sigf.as_os_str(),
        ];
        if pss {
            args.extend(
                ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"].map(OsStr::new),
            );
        }
        args.push(OsStr::new(&msg));
        let out = openssl(&args);
        assert!(
            String::from_utf8_lossy(&out).contains("Verified OK"),
            "{alg}: {}",
            String::from_utf8_lossy(&out)
        );
    }
}

/// OAEP ciphertexts `openssl pkeyutl` makes decrypt with hsmkit.
pub fn hsmkit_decrypts_openssl_oaep(store: &Store) {
    let caps = store.capabilities();
    let d = Dir::new();
    let key = store
        .create_key(
            "ossl-oaep",
            KeySpec::RSA_2048,
            KeyAttributes::with_ops(&[KeyOp::Encrypt, KeyOp::Decrypt]),
        )
        .expect("create");
    let pem = d.write("pub.pem", key.public_key_pem().expect("pem").as_bytes());
    let pt = d.write("pt", b"a secret for hsmkit");
    for (alg, md) in [(EncryptionAlgorithm::RsaOaep256, "sha256"), (EncryptionAlgorithm::RsaOaep, "sha1")] {
        let ct = ossl!(
            &"pkeyutl",
            &"-encrypt",
            &"-pubin",
            &"-inkey",
            &pem,
            &"-in",
            &pt,
            &"-pkeyopt",
            &"rsa_padding_mode:oaep",
            &"-pkeyopt",
            &format!("rsa_oaep_md:{md}"),
            &"-pkeyopt",
            &format!("rsa_mgf1_md:{md}"),
        );
        let r = key.decrypt(alg, &ct);
        if caps.decrypt.contains(&alg) {
            assert_eq!(&r.expect("decrypt")[..], b"a secret for hsmkit", "{alg}");
        } else {
            assert_eq!(r.expect_err("unsupported").kind(), hsmkit::ErrorKind::Unsupported);
        }
    }
}

/// Keys OpenSSL generates (PKCS#8, PKCS#1, SEC1 with EC PARAMETERS) import into hsmkit,
/// and signatures made with them verify on both sides.
pub fn hsmkit_imports_openssl_keys(store: &Store) {
    if !store.capabilities().import {
        return;
    }
    let d = Dir::new();
    let msg = d.write("msg", MSG);
    let rsa8 = d.path("rsa.p8.pem");
    ossl!(&"genpkey", &"-algorithm", &"RSA", &"-pkeyopt", &"rsa_keygen_bits:2048", &"-out", &rsa8);
    let rsa1 = d.path("rsa.p1.pem");
    ossl!(&"pkey", &"-in", &rsa8, &"-traditional", &"-out", &rsa1);
    let ec8 = d.path("ec.p8.pem");
    ossl!(&"genpkey", &"-algorithm", &"EC", &"-pkeyopt", &"ec_paramgen_curve:P-384", &"-out", &ec8);
    let ec1 = d.path("ec.sec1.pem");
    ossl!(&"ecparam", &"-name", &"prime256v1", &"-genkey", &"-out", &ec1); // EC PARAMETERS + EC PRIVATE KEY
    let ec_der = d.path("ec.p8.der");
    ossl!(&"pkey", &"-in", &ec8, &"-outform", &"DER", &"-out", &ec_der);
    for (i, (file, alg, md)) in [
        (&rsa8, SignatureAlgorithm::Rs256, "-sha256"),
        (&rsa1, SignatureAlgorithm::Rs256, "-sha256"),
        (&ec8, SignatureAlgorithm::Es384, "-sha384"),
        (&ec1, SignatureAlgorithm::Es256, "-sha256"),
        (&ec_der, SignatureAlgorithm::Es384, "-sha384"),
    ]
    .into_iter()
    .enumerate()
    {
        let bytes = std::fs::read(file).expect("read");
        let material = KeyMaterial::from_bytes(&bytes).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let key = store
            .import_key(
                &format!("ossl-imp-{i}"),
                material,
                KeyAttributes::with_ops(&[KeyOp::Sign, KeyOp::Verify]),
            )
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        // hsmkit signs; OpenSSL verifies with the public key it derives itself.
        let format =
            if alg == SignatureAlgorithm::Rs256 { SignatureFormat::Raw } else { SignatureFormat::Der };
        let sig =
            d.write(&format!("{i}.sig"), &key.sign_with(alg, SignInput::Message(MSG), format).expect("sign"));
        let pubf = d.path(&format!("{i}.pub.pem"));
        ossl!(&"pkey", &"-in", file, &"-pubout", &"-out", &pubf);
        let out = ossl!(&"dgst", &md, &"-verify", &pubf, &"-signature", &sig, &msg);
        assert!(String::from_utf8_lossy(&out).contains("Verified OK"));
        // OpenSSL signs; hsmkit verifies.
        let ossl_sig = ossl!(&"dgst", &md, &"-sign", file, &msg);
        key.verify_with(alg, SignInput::Message(MSG), &ossl_sig, format).expect("verify openssl signature");
        // And hsmkit's public key is the one OpenSSL derives.
        assert_eq!(key.public_key_pem().expect("pem"), std::fs::read_to_string(&pubf).expect("read"));
    }
}
