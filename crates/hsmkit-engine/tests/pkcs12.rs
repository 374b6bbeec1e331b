//! `hsmkit::pkcs12::decode` on both providers, against files written at test time by two
//! independent implementations: the `openssl pkcs12` command and pyca/cryptography. Keys
//! (RSA, P-256, Ed25519) and a three-certificate chain come from `openssl`; the decoded
//! key must be the source's PKCS#8 byte for byte and the certificates the source's, in
//! order. Plus PBKDF2 known answers (RFC 6070) and AES-CBC against `openssl enc`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use hsmkit::crypto::CryptoProvider;
use hsmkit::{ErrorKind, HashAlg, InvalidReason, UnsupportedReason};

fn providers() -> Vec<&'static dyn CryptoProvider> {
    #[allow(unused_mut)]
    let mut v: Vec<&'static dyn CryptoProvider> = vec![&hsmkit_engine::RUSTCRYPTO];
    #[cfg(feature = "aws-lc")]
    v.push(&hsmkit_engine::AWS_LC);
    v
}

fn run(cmd: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} is required for this test (tests/run-all.sh installs it): {e}"));
    assert!(out.status.success(), "{cmd} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn openssl(args: &[&str]) -> Vec<u8> {
    run("openssl", args)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const PASSWORD: &str = "correct horse";

/// One key, its certificate chain, and PKCS#12 files of it.
struct Case {
    kind: &'static str,
    /// The source key as PKCS#8 DER (`openssl pkcs8 -topk8 -nocrypt`).
    pkcs8: Vec<u8>,
    /// Its public key as SPKI DER (`openssl pkey -pubout`).
    spki: Vec<u8>,
    /// Leaf, intermediate, root, DER.
    certs: Vec<Vec<u8>>,
    /// (how it was made, the file, its password, what decoding it must give).
    files: Vec<(String, Vec<u8>, String, Expect)>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// The key and all three certificates.
    Everything,
    /// Unsupported, the message naming this algorithm.
    Legacy(&'static str),
    /// Unsupported: no MAC, so nothing authenticates the file.
    NoMac,
    /// InvalidInput (parameter): a PBMAC1 key too short to authenticate anything.
    ShortMacKey,
}

struct Fixture {
    _dir: tempfile::TempDir,
    cases: Vec<Case>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(make_fixture)
}

fn der_of_cert(pem: &Path) -> Vec<u8> {
    openssl(&["x509", "-in", s(pem), "-outform", "DER"])
}

fn make_fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| -> PathBuf { dir.path().join(name) };
    std::fs::write(d("ca.ext"), "basicConstraints=critical,CA:TRUE\nkeyUsage=keyCertSign\n").unwrap();
    // A root and an intermediate CA (P-256), shared by every leaf.
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        s(&d("root.key")),
    ]);
    openssl(&[
        "req",
        "-x509",
        "-new",
        "-key",
        s(&d("root.key")),
        "-subj",
        "/CN=pkcs12 test root",
        "-days",
        "30",
        "-out",
        s(&d("root.pem")),
    ]);
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        s(&d("int.key")),
    ]);
    openssl(&[
        "req",
        "-new",
        "-key",
        s(&d("int.key")),
        "-subj",
        "/CN=pkcs12 test intermediate",
        "-out",
        s(&d("int.csr")),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        s(&d("int.csr")),
        "-CA",
        s(&d("root.pem")),
        "-CAkey",
        s(&d("root.key")),
        "-set_serial",
        "2",
        "-days",
        "30",
        "-extfile",
        s(&d("ca.ext")),
        "-out",
        s(&d("int.pem")),
    ]);
    let chain = [std::fs::read(d("int.pem")).unwrap(), std::fs::read(d("root.pem")).unwrap()].concat();
    std::fs::write(d("chain.pem"), chain).unwrap();

    let mut cases = Vec::new();
    for (kind, genpkey) in [
        ("rsa", &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"][..]),
        ("p256", &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"][..]),
        ("ed25519", &["-algorithm", "ED25519"][..]),
    ] {
        let key = d(&format!("{kind}.key"));
        let leaf = d(&format!("{kind}.pem"));
        let csr = d(&format!("{kind}.csr"));
        openssl(&[&["genpkey"][..], genpkey, &["-out", s(&key)]].concat());
        openssl(&["req", "-new", "-key", s(&key), "-subj", &format!("/CN={kind} leaf"), "-out", s(&csr)]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            s(&csr),
            "-CA",
            s(&d("int.pem")),
            "-CAkey",
            s(&d("int.key")),
            "-set_serial",
            "3",
            "-days",
            "30",
            "-out",
            s(&leaf),
        ]);
        // `pkey -outform DER` writes RSA keys as PKCS#1 in OpenSSL 3.0; `pkcs8` writes PKCS#8.
        let pkcs8 = openssl(&["pkcs8", "-topk8", "-nocrypt", "-in", s(&key), "-outform", "DER"]);
        let spki = openssl(&["pkey", "-in", s(&key), "-pubout", "-outform", "DER"]);
        let certs = vec![der_of_cert(&leaf), der_of_cert(&d("int.pem")), der_of_cert(&d("root.pem"))];

        let mut files = Vec::new();
        // openssl pkcs12 -export, with these options and password.
        let non_ascii = "pässwörd €";
        let mut variants: Vec<(&str, Vec<&str>, &str, Expect)> = vec![
            ("default (AES-256-CBC, SHA-256 MAC)", vec![], PASSWORD, Expect::Everything),
            ("-macalg sha1", vec!["-macalg", "sha1"], PASSWORD, Expect::Everything),
            ("-macalg sha384", vec!["-macalg", "sha384"], PASSWORD, Expect::Everything),
            ("-macalg sha512", vec!["-macalg", "sha512"], PASSWORD, Expect::Everything),
            (
                "AES-128-CBC",
                vec!["-keypbe", "AES-128-CBC", "-certpbe", "AES-128-CBC"],
                PASSWORD,
                Expect::Everything,
            ),
            (
                "AES-192-CBC, PRF SHA-512",
                vec!["-keypbe", "AES-192-CBC", "-certpbe", "AES-192-CBC", "-macalg", "sha512"],
                PASSWORD,
                Expect::Everything,
            ),
            ("-nomac", vec!["-nomac"], PASSWORD, Expect::NoMac),
            (
                "certs and key in the clear",
                vec!["-keypbe", "NONE", "-certpbe", "NONE"],
                PASSWORD,
                Expect::Everything,
            ),
            ("-iter 1 -maciter", vec!["-iter", "1", "-maciter"], PASSWORD, Expect::Everything),
            ("empty password", vec![], "", Expect::Everything),
            ("non-ASCII password", vec![], non_ascii, Expect::Everything),
        ];
        // `-legacy` needs OpenSSL 3's legacy provider; pyca writes a legacy file below
        // regardless, so the case is covered either way.
        let legacy_ok = Command::new("openssl")
            .args(["list", "-providers", "-provider", "legacy"])
            .output()
            .is_ok_and(|o| o.status.success());
        if legacy_ok {
            variants.push((
                "-legacy",
                vec!["-legacy"],
                PASSWORD,
                Expect::Legacy("pbeWithSHAAnd40BitRC2-CBC"),
            ));
        } else {
            eprintln!("skipping `openssl pkcs12 -legacy`: this OpenSSL has no legacy provider");
        }
        for (i, (label, opts, password, expect)) in variants.into_iter().enumerate() {
            let out = d(&format!("{kind}-openssl-{i}.p12"));
            let pass = format!("pass:{password}");
            let chain = d("chain.pem");
            let mut args = vec![
                "pkcs12",
                "-export",
                "-inkey",
                s(&key),
                "-in",
                s(&leaf),
                "-certfile",
                s(&chain),
                "-passout",
                &pass,
                "-out",
                s(&out),
            ];
            args.extend(opts);
            openssl(&args);
            // -legacy's certificates are RC2, its key 3DES: the first part met names RC2.
            files.push((
                format!("openssl {label}"),
                std::fs::read(&out).unwrap(),
                password.to_owned(),
                expect,
            ));
        }

        // pyca/cryptography (its own PKCS#12 writer), and a PBMAC1 file: pyca's with its
        // MAC replaced by one computed with Python's hashlib (OpenSSL 3.0 writes no PBMAC1).
        let py = r#"
import sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12
key_path, leaf_path, chain_path, out = sys.argv[1:5]
key = serialization.load_pem_private_key(open(key_path, "rb").read(), None)
leaf = x509.load_pem_x509_certificate(open(leaf_path, "rb").read())
cas = x509.load_pem_x509_certificates(open(chain_path, "rb").read())
pw = sys.argv[5].encode()
B = serialization.PrivateFormat.PKCS12.encryption_builder
variants = {
    "best": serialization.BestAvailableEncryption(pw),
    "sha384": B().kdf_rounds(5000).key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC).hmac_hash(hashes.SHA384()).build(pw),
    "legacy": B().kdf_rounds(5000).key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC).hmac_hash(hashes.SHA1()).build(pw),
    "plain": serialization.NoEncryption(),
}
for name, enc in variants.items():
    data = pkcs12.serialize_key_and_certificates(b"friendly", key, leaf, cas, enc)
    open(out + "-" + name + ".p12", "wb").write(data)

# PBMAC1 (RFC 9579): the "best" file with its MAC replaced, computed with hashlib/hmac.
import hashlib, hmac, os
def tlv(tag, body):
    n = len(body)
    ln = bytes([n]) if n < 128 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag]) + ln + body
def read(b, i):
    tag, n, i = b[i], b[i + 1], i + 2
    if n & 0x80:
        k = n & 0x7F
        n, i = int.from_bytes(b[i:i + k], "big"), i + k
    return tag, b[i:i + n], i + n
def oid(dotted):
    a = [int(x) for x in dotted.split(".")]
    body = bytes([40 * a[0] + a[1]])
    for x in a[2:]:
        enc = [x & 0x7F]
        while x > 0x7F:
            x >>= 7
            enc.insert(0, 0x80 | (x & 0x7F))
        body += bytes(enc)
    return tlv(0x06, body)
def integer(x):
    return tlv(0x02, x.to_bytes((x.bit_length() + 8) // 8, "big"))
SEQ, NULL = 0x30, b"\x05\x00"
best = open(out + "-best.p12", "rb").read()
_, pfx, _ = read(best, 0)
_, version, i = read(pfx, 0)
j = i
_, auth_safe_ci, i = read(pfx, i)
auth_safe_tlv = pfx[j:i]
_, ct, k = read(auth_safe_ci, 0)
_, explicit, _ = read(auth_safe_ci, k)
_, auth_safe, _ = read(explicit, 0)
def pbmac1(key_len, path):
    salt, iters = os.urandom(16), 2048
    mac_key = hashlib.pbkdf2_hmac("sha256", pw, salt, iters, key_len)
    tag = hmac.new(mac_key, auth_safe, hashlib.sha512).digest()
    kdf = tlv(SEQ, oid("1.2.840.113549.1.5.12") + tlv(SEQ, tlv(0x04, salt) + integer(iters) + integer(key_len)
        + tlv(SEQ, oid("1.2.840.113549.2.9") + NULL)))
    params = tlv(SEQ, kdf + tlv(SEQ, oid("1.2.840.113549.2.11") + NULL))
    digest_info = tlv(SEQ, tlv(SEQ, oid("1.2.840.113549.1.5.14") + params) + tlv(0x04, tag))
    mac_data = tlv(SEQ, digest_info + tlv(0x04, b"NOT USED") + integer(1))
    open(path, "wb").write(tlv(SEQ, integer(3) + auth_safe_tlv + mac_data))
pbmac1(32, out + "-pbmac1.p12")
# An 8-byte MAC key: a forgery in 256 tries, so refused even with the right password.
pbmac1(8, out + "-pbmac1-short.p12")
"#;
        let prefix = d(&format!("{kind}-pyca"));
        run("python3", &["-c", py, s(&key), s(&leaf), s(&d("chain.pem")), s(&prefix), PASSWORD]);
        for (name, expect) in [
            ("best", Expect::Everything),
            ("sha384", Expect::Everything),
            ("legacy", Expect::Legacy("pbeWithSHAAnd3-KeyTripleDES-CBC")),
            ("plain", Expect::Everything),
            ("pbmac1", Expect::Everything),
            ("pbmac1-short", Expect::ShortMacKey),
        ] {
            let bytes = std::fs::read(format!("{}-{name}.p12", s(&prefix))).unwrap();
            let password = if name == "plain" { "" } else { PASSWORD };
            if name.starts_with("pbmac1") {
                // id-PBMAC1 (1.2.840.113549.1.5.14) is in the file: the PBMAC1 path is tested.
                let id_pbmac1 = [0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x05, 0x0E];
                assert!(bytes.windows(id_pbmac1.len()).any(|w| w == id_pbmac1));
            }
            files.push((format!("pyca {name}"), bytes, password.to_owned(), expect));
        }
        cases.push(Case { kind, pkcs8, spki, certs, files });
    }
    Fixture { _dir: dir, cases }
}

#[test]
fn openssl_and_pyca_files_decode_to_their_sources() {
    let f = fixture();
    let mut checked = 0;
    for p in providers() {
        for case in &f.cases {
            for (label, file, password, expect) in &case.files {
                let what = format!("{} {} on {}", case.kind, label, p.name());
                let got = hsmkit::pkcs12::decode(p, file, password);
                match expect {
                    Expect::Everything => {
                        let c = got.unwrap_or_else(|e| panic!("{what}: {e}"));
                        assert_eq!(c.key.as_deref(), Some(&case.pkcs8), "{what}: key");
                        assert_eq!(c.certificates, case.certs, "{what}: certificates");
                        // And the key is one hsmkit reads, the leaf certificate the key's.
                        hsmkit::KeyMaterial::from_der(c.key.as_deref().unwrap()).unwrap();
                        let cert = hsmkit::x509::Certificate::from_der(&c.certificates[0]).unwrap();
                        assert_eq!(cert.public_key().unwrap().to_spki_der().unwrap(), case.spki, "{what}");
                    }
                    Expect::ShortMacKey => {
                        let e = got.map(|_| ()).unwrap_err();
                        assert_eq!(e.invalid_reason(), Some(InvalidReason::Parameter), "{what}: {e}");
                        assert!(e.to_string().contains("PBMAC1 key of 8 bytes"), "{what}: {e}");
                    }
                    Expect::NoMac => {
                        let e = got.map(|_| ()).unwrap_err();
                        assert_eq!(e.kind(), ErrorKind::Unsupported, "{what}: {e}");
                        assert!(e.to_string().contains("without a MAC"), "{what}: {e}");
                    }
                    Expect::Legacy(name) => {
                        let e = got.map(|_| ()).unwrap_err();
                        assert_eq!(e.kind(), ErrorKind::Unsupported, "{what}: {e}");
                        assert_eq!(e.unsupported_reason(), Some(UnsupportedReason::Algorithm), "{what}");
                        let msg = e.to_string();
                        assert!(msg.contains(name) && msg.contains("re-export"), "{what}: {msg}");
                    }
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 3 * 15, "only {checked} files checked");
}

#[test]
fn wrong_password_is_authentication() {
    let f = fixture();
    for p in providers() {
        for case in f.cases.iter().take(2) {
            for (label, file, password, expect) in &case.files {
                if *expect != Expect::Everything || label.contains("in the clear") || label.contains("plain")
                {
                    continue;
                }
                let wrong = format!("{password}x");
                let e = hsmkit::pkcs12::decode(p, file, &wrong).unwrap_err();
                assert_eq!(e.kind(), ErrorKind::Authentication, "{} {label} on {}: {e}", case.kind, p.name());
                assert_eq!(
                    e,
                    hsmkit::Error::Authentication(
                        "the PKCS#12 password is wrong, or the file was altered".into()
                    )
                );
            }
        }
    }
}

/// A flipped byte in a MAC'd file is the same error as a wrong password; cut or garbage
/// input is malformed.
#[test]
fn altered_truncated_and_garbage_files() {
    let f = fixture();
    let (_, file, password, _) = &f.cases[1].files[0];
    for p in providers() {
        let mut altered = file.clone();
        let mid = altered.len() / 2;
        altered[mid] ^= 1;
        let e = hsmkit::pkcs12::decode(p, &altered, password).unwrap_err();
        // The flip may land in a length or a tag (malformed) or in content (the MAC).
        assert!(matches!(e.kind(), ErrorKind::Authentication | ErrorKind::InvalidInput), "{e}");
        for cut in [0, 1, 10, file.len() / 3, file.len() - 1] {
            let e = hsmkit::pkcs12::decode(p, &file[..cut], password).unwrap_err();
            assert_eq!(e.invalid_reason(), Some(InvalidReason::Malformed), "cut at {cut}: {e}");
        }
        let pem = f.cases[1].certs[0].clone();
        for garbage in [&b"not a pfx at all"[..], &[0x30, 0x80, 0x00, 0x00][..], &pem[..]] {
            let e = hsmkit::pkcs12::decode(p, garbage, password).unwrap_err();
            assert_eq!(e.invalid_reason(), Some(InvalidReason::Malformed), "{e}");
        }
    }
}

/// RFC 6070's PBKDF2-HMAC-SHA1 vectors on both providers and on the trait's default (on
/// `hmac`); the 16777216-iteration vector is over the bound and refused.
#[test]
fn pbkdf2_rfc6070() {
    let vectors: [(&[u8], &[u8], u32, &str); 5] = [
        (b"password", b"salt", 1, "0c60c80f961f0e71f3a9b524af6012062fe037a6"),
        (b"password", b"salt", 2, "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"),
        (b"password", b"salt", 4096, "4b007901b765489abead49d926f721d065a429c1"),
        (
            b"passwordPASSWORDpassword",
            b"saltSALTsaltSALTsaltSALTsaltSALTsalt",
            4096,
            "3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038",
        ),
        (b"pass\0word", b"sa\0lt", 4096, "56fa6aa75548099dcc37d7f03425e0c3"),
    ];
    let mut all = providers();
    all.push(&DefaultsOnly);
    for p in all {
        for (password, salt, c, expected) in vectors {
            let mut out = vec![0u8; expected.len() / 2];
            p.pbkdf2_hmac(HashAlg::Sha1, password, salt, c, &mut out).unwrap();
            assert_eq!(hex::encode(&out), expected, "{} c={c}", p.name());
        }
        let e = p.pbkdf2_hmac(HashAlg::Sha1, b"password", b"salt", 16_777_216, &mut [0u8; 20]).unwrap_err();
        assert_eq!(e.invalid_reason(), Some(InvalidReason::Parameter), "{}", p.name());
        assert!(p.pbkdf2_hmac(HashAlg::Sha1, b"p", b"s", 0, &mut [0u8; 20]).is_err());
        p.pbkdf2_hmac(HashAlg::Sha256, b"p", b"s", 1, &mut []).unwrap();
    }
    // The providers' own implementations agree with the default for every hash and
    // lengths across block boundaries.
    for hash in [HashAlg::Sha1, HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512] {
        for len in [1, hash.output_len(), hash.output_len() + 1, 3 * hash.output_len() - 1] {
            let mut want = vec![0u8; len];
            DefaultsOnly.pbkdf2_hmac(hash, b"pw", b"salty", 3, &mut want).unwrap();
            for p in providers() {
                let mut got = vec![0u8; len];
                p.pbkdf2_hmac(hash, b"pw", b"salty", 3, &mut got).unwrap();
                assert_eq!(got, want, "{} {hash:?} {len}", p.name());
            }
        }
    }
}

/// AES-CBC with PKCS#7 against `openssl enc`, every key size and lengths around the
/// block; bad padding and partial blocks are `DecryptionFailed`.
#[test]
fn aes_cbc_matches_openssl_enc() {
    let dir = tempfile::tempdir().unwrap();
    let plain_path = dir.path().join("plain");
    let iv = [0x42u8; 16];
    for key_len in [16usize, 24, 32] {
        let key: Vec<u8> = (0..key_len).map(|i| u8::try_from(i * 7 % 256).unwrap()).collect();
        for len in [0usize, 1, 15, 16, 17, 100] {
            let plain: Vec<u8> = (0..len).map(|i| u8::try_from(i % 251).unwrap()).collect();
            std::fs::write(&plain_path, &plain).unwrap();
            let ct = openssl(&[
                "enc",
                &format!("-aes-{}-cbc", key_len * 8),
                "-K",
                &hex::encode(&key),
                "-iv",
                &hex::encode(iv),
                "-in",
                s(&plain_path),
            ]);
            for p in providers() {
                assert_eq!(
                    *p.aes_cbc_decrypt(&key, &iv, &ct).unwrap(),
                    plain,
                    "{} {key_len} {len}",
                    p.name()
                );
                let mut bad = ct.clone();
                let n = bad.len();
                bad[n - 1] ^= 0x80; // the last block decrypts to noise
                assert_eq!(
                    p.aes_cbc_decrypt(&key, &iv, &bad).unwrap_err().kind(),
                    ErrorKind::DecryptionFailed
                );
                assert_eq!(
                    p.aes_cbc_decrypt(&key, &iv, &ct[..n - 1]).unwrap_err().kind(),
                    ErrorKind::DecryptionFailed
                );
                assert_eq!(
                    p.aes_cbc_decrypt(&key, &iv, &[]).unwrap_err().kind(),
                    ErrorKind::DecryptionFailed
                );
            }
        }
    }
    for p in providers() {
        let e = p.aes_cbc_decrypt(&[0u8; 20], &iv, &[0u8; 16]).unwrap_err();
        assert_eq!(e.invalid_reason(), Some(InvalidReason::Length), "{}", p.name());
    }
}

/// A provider with only the required methods (delegated to RustCrypto): what the
/// trait's defaults compute.
#[derive(Debug)]
struct DefaultsOnly;

impl CryptoProvider for DefaultsOnly {
    fn name(&self) -> &'static str {
        "defaults-only"
    }
    fn digest(&self, hash: HashAlg, data: &[u8]) -> Vec<u8> {
        hsmkit_engine::RUSTCRYPTO.digest(hash, data)
    }
    fn hmac(&self, hash: HashAlg, key: &[u8], data: &[u8]) -> hsmkit::Result<Vec<u8>> {
        hsmkit_engine::RUSTCRYPTO.hmac(hash, key, data)
    }
    fn hkdf_extract(
        &self,
        hash: HashAlg,
        salt: &[u8],
        ikm: &[u8],
    ) -> hsmkit::Result<hsmkit::Zeroizing<Vec<u8>>> {
        hsmkit_engine::RUSTCRYPTO.hkdf_extract(hash, salt, ikm)
    }
    fn hkdf_expand(&self, hash: HashAlg, prk: &[u8], info: &[&[u8]], okm: &mut [u8]) -> hsmkit::Result<()> {
        hsmkit_engine::RUSTCRYPTO.hkdf_expand(hash, prk, info, okm)
    }
    fn aes_256_gcm(
        &self,
        key: &[u8; hsmkit::crypto::KEY_LEN],
    ) -> hsmkit::Result<Box<dyn hsmkit::crypto::Aes256GcmKey>> {
        hsmkit_engine::RUSTCRYPTO.aes_256_gcm(key)
    }
    fn fill_random(&self, buf: &mut [u8]) -> hsmkit::Result<()> {
        hsmkit_engine::RUSTCRYPTO.fill_random(buf)
    }
}

/// Without an AES-CBC implementation, an encrypted file is Unsupported (naming AES-CBC),
/// not a wrong password.
#[test]
fn provider_without_aes_cbc_says_unsupported() {
    let f = fixture();
    let (_, file, password, _) = &f.cases[1].files[0];
    let e = hsmkit::pkcs12::decode(&DefaultsOnly, file, password).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    assert!(e.to_string().contains("AES-CBC"), "{e}");
}
