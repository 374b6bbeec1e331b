//! X.509 from store keys: requests and certificates checked by OpenSSL and
//! pyca/cryptography (both must be installed: tests/run-all.sh installs them; a missing
//! one fails the test rather than skipping it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use hsmkit::x509::{
    self, Certificate, CertificateParams, CertificateRequest, ExtendedKeyUsage, IssueParams, KeyUsage,
    SubjectAltName,
};
use hsmkit::{ErrorKind, InvalidReason, Key, KeyAttributes, KeyOp, KeySpec, SignatureAlgorithm, Store};

use crate::checks::{create_or_unsupported, expect_kind, spec_for_sig};

pub(crate) struct Dir(pub(crate) tempfile::TempDir);

impl Dir {
    pub(crate) fn new() -> Self {
        Dir(tempfile::tempdir().expect("temp dir"))
    }
    pub(crate) fn write(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.0.path().join(name);
        std::fs::write(&p, data).expect("write");
        p
    }
}

fn run(program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} is required (tests/run-all.sh installs it): {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

pub(crate) fn openssl_ok(args: &[&str]) -> String {
    let (ok, text) = run("openssl", args);
    assert!(ok, "openssl {args:?} failed: {text}");
    text
}

pub(crate) fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// Runs a Python script (pyca/cryptography) with `args`; it must exit 0.
pub(crate) fn python_ok(script: &str, args: &[&str]) -> String {
    let mut all = vec!["-c", script];
    all.extend_from_slice(args);
    let (ok, text) = run("python3", &all);
    assert!(ok, "python3 (pyca/cryptography) failed: {text}");
    text
}

/// Loads every certificate argument with pyca/cryptography; each `child:parent` pair
/// (indexes) must pass `verify_directly_issued_by`.
pub(crate) const PYCA_ISSUED_BY: &str = r#"
import sys
from cryptography import x509
certs = []
for a in sys.argv[1:]:
    if ":" in a:
        child, parent = (int(i) for i in a.split(":"))
        certs[child].verify_directly_issued_by(certs[parent])
    else:
        certs.append(x509.load_pem_x509_certificate(open(a, "rb").read()))
print("ok", len(certs))
"#;

/// Full path validation by pyca/cryptography's verifier (RFC 5280 and CA/B Forum rules):
/// root, intermediate, leaf, DNS name.
const PYCA_SERVER_PATH: &str = r#"
import sys, datetime
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store
root, inter, leaf = (x509.load_pem_x509_certificate(open(p, "rb").read()) for p in sys.argv[1:4])
v = PolicyBuilder().store(Store([root])).time(datetime.datetime.now(datetime.timezone.utc)).build_server_verifier(x509.DNSName(sys.argv[4]))
chain = v.verify(leaf, [inter])
print("path", len(chain))
"#;

fn sig_algorithms() -> impl Iterator<Item = SignatureAlgorithm> {
    SignatureAlgorithm::ALL.iter().copied().filter(|a| !matches!(a.scheme(), hsmkit::SignatureScheme::Hmac))
}

fn key_for(store: &Store, name: &str, alg: SignatureAlgorithm) -> Option<Key> {
    create_or_unsupported(store, name, spec_for_sig(alg), &[KeyOp::Sign, KeyOp::Verify])
}

fn leaf_params(subject: &str) -> CertificateParams {
    let mut p = CertificateParams::new(subject);
    p.subject_alt_names = [
        "dns:www.example.com",
        "ip:10.0.0.1",
        "ip:2001:db8::1",
        "email:ops@example.com",
        "uri:https://example.com/x",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    p.key_usage = vec![KeyUsage::DigitalSignature];
    p.extended_key_usage = vec![ExtendedKeyUsage::ServerAuth, ExtendedKeyUsage::ClientAuth];
    p
}

/// A request for every signature algorithm the backend signs with: it parses back, its
/// signature verifies here and with `openssl req -verify`, and OpenSSL shows what was
/// asked for. A self-signed CA certificate with the same key verifies with OpenSSL and
/// pyca/cryptography.
pub fn x509_requests_and_self_signed_every_algorithm(store: &Store) {
    let dir = Dir::new();
    for alg in sig_algorithms() {
        let Some(key) = key_for(store, &format!("x509-{alg}"), alg) else { continue };
        let mut params = leaf_params(&format!("CN={alg} request,O=hsmkit conformance,C=GB"));
        params.signature_algorithm = Some(alg);
        if !key.supports(KeyOp::Sign, hsmkit::Algorithm::Signature(alg)) {
            expect_kind(x509::create_csr(&key, &params), ErrorKind::Unsupported);
            continue;
        }
        let csr = x509::create_csr(&key, &params).unwrap_or_else(|e| panic!("{alg}: {e}"));
        let pem = csr.to_pem().unwrap();
        let again = CertificateRequest::from_pem(&pem).unwrap();
        assert_eq!(again, csr);
        again.verify(store.crypto()).unwrap_or_else(|e| panic!("{alg}: own CSR does not verify: {e}"));
        assert_eq!(again.public_key().unwrap(), key.public_key().unwrap());
        assert_eq!(again.subject(), format!("CN={alg} request,O=hsmkit conformance,C=GB"));
        assert_eq!(again.subject_alt_names().unwrap(), params.subject_alt_names);

        let f = dir.write(&format!("{alg}.csr"), pem.as_bytes());
        let text = openssl_ok(&["req", "-in", s(&f), "-verify", "-noout", "-text"]);
        assert!(text.contains("verify OK"), "{alg}: openssl req -verify: {text}");
        for want in [
            "DNS:www.example.com",
            "IP Address:10.0.0.1",
            "IP Address:2001:DB8:0:0:0:0:0:1",
            "email:ops@example.com",
            "URI:https://example.com/x",
            "TLS Web Server Authentication",
            "Digital Signature",
            "CN",
        ] {
            assert!(text.contains(want), "{alg}: openssl req -text lacks {want}: {text}");
        }
        if matches!(alg, SignatureAlgorithm::Ps256 | SignatureAlgorithm::Ps384 | SignatureAlgorithm::Ps512) {
            assert!(text.contains("rsassaPss"), "{alg}: {text}");
            let salt = format!("Salt Length: 0x{:X}", alg.hash().output_len());
            assert!(text.contains(&salt), "{alg}: PSS parameters: {text}");
        }

        // Self-signed CA with the same key.
        let mut ca = CertificateParams::new(format!("CN={alg} root,O=hsmkit conformance"));
        ca.ca = true;
        ca.path_len = Some(1);
        ca.signature_algorithm = Some(alg);
        let cert = x509::self_signed(&key, &ca).unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(Certificate::from_pem(&cert.to_pem().unwrap()).unwrap(), cert);
        cert.verify_issued_by(&cert, store.crypto()).unwrap();
        assert_eq!(cert.basic_constraints().unwrap(), (true, Some(1)));
        assert_eq!(cert.serial_hex().len(), 32, "128-bit serial");
        let f = dir.write(&format!("{alg}.pem"), cert.to_pem().unwrap().as_bytes());
        let text = openssl_ok(&["verify", "-CAfile", s(&f), s(&f)]);
        assert!(text.contains(": OK"), "{alg}: openssl verify: {text}");
        let text = openssl_ok(&["x509", "-in", s(&f), "-noout", "-text"]);
        for want in ["CA:TRUE, pathlen:1", "Certificate Sign, CRL Sign", "X509v3 Subject Key Identifier"] {
            assert!(text.contains(want), "{alg}: openssl x509 -text lacks {want}: {text}");
        }
        python_ok(PYCA_ISSUED_BY, &[s(&f), "0:0"]);
    }
}

/// Root → intermediate → leaf, each issued from a request, with mixed algorithms: OpenSSL
/// verifies the chain for a TLS server, pyca/cryptography checks each link and validates
/// the whole path with its RFC 5280 / CA/B Forum verifier.
pub fn x509_chain_verifies_with_openssl_and_pyca(store: &Store) {
    let caps = store.capabilities();
    // (root, intermediate, leaf) key specs and the algorithm each CA signs with.
    let plans = [
        (
            KeySpec::P384,
            SignatureAlgorithm::Es384,
            KeySpec::RSA_2048,
            SignatureAlgorithm::Ps256,
            KeySpec::P256,
        ),
        (
            KeySpec::RSA_2048,
            SignatureAlgorithm::Rs256,
            KeySpec::P256,
            SignatureAlgorithm::Es256,
            KeySpec::RSA_2048,
        ),
    ];
    let dir = Dir::new();
    for (i, (root_spec, root_alg, inter_spec, inter_alg, leaf_spec)) in plans.into_iter().enumerate() {
        if ![root_spec, inter_spec, leaf_spec].iter().all(|s| caps.generate.contains(s)) {
            continue;
        }
        let mk = |n: &str, spec| {
            store.create_key(&format!("chain{i}-{n}"), spec, KeyAttributes::default()).unwrap()
        };
        let (root_key, inter_key, leaf_key) =
            (mk("root", root_spec), mk("inter", inter_spec), mk("leaf", leaf_spec));
        if !root_key.supports(KeyOp::Sign, hsmkit::Algorithm::Signature(root_alg))
            || !inter_key.supports(KeyOp::Sign, hsmkit::Algorithm::Signature(inter_alg))
        {
            continue;
        }
        let mut rp = CertificateParams::new("CN=hsmkit test root,O=hsmkit conformance");
        rp.ca = true;
        rp.signature_algorithm = Some(root_alg);
        let root = x509::self_signed(&root_key, &rp).unwrap();

        let mut ip = CertificateParams::new("CN=hsmkit test intermediate,O=hsmkit conformance");
        ip.ca = true;
        let inter_csr = x509::create_csr(&inter_key, &ip).unwrap();
        let mut issue = IssueParams::default();
        issue.ca = true;
        issue.path_len = Some(0);
        issue.signature_algorithm = Some(root_alg);
        let inter = x509::issue(&root_key, &root, &inter_csr, &issue).unwrap();

        let leaf_csr = x509::create_csr(&leaf_key, &leaf_params("CN=www.example.com")).unwrap();
        let mut issue = IssueParams::default();
        issue.validity = Duration::from_secs(30 * 24 * 3600);
        issue.signature_algorithm = Some(inter_alg);
        let leaf = x509::issue(&inter_key, &inter, &leaf_csr, &issue).unwrap();

        leaf.verify_issued_by(&inter, store.crypto()).unwrap();
        inter.verify_issued_by(&root, store.crypto()).unwrap();
        expect_kind(leaf.verify_issued_by(&root, store.crypto()), ErrorKind::VerificationFailed);
        assert_eq!(leaf.public_key().unwrap(), leaf_key.public_key().unwrap());
        assert_eq!(leaf.subject(), "CN=www.example.com");
        assert_eq!(leaf.issuer(), inter.subject());
        assert_eq!(inter.basic_constraints().unwrap(), (true, Some(0)));
        assert_eq!(leaf.basic_constraints().unwrap(), (false, None));
        assert_eq!(leaf.subject_alt_names().unwrap().len(), 5);
        let (nb, na) = leaf.validity();
        assert_eq!(na.duration_since(nb).unwrap(), Duration::from_secs(30 * 24 * 3600));

        let root_f = dir.write(&format!("root{i}.pem"), root.to_pem().unwrap().as_bytes());
        let inter_f = dir.write(&format!("inter{i}.pem"), inter.to_pem().unwrap().as_bytes());
        let leaf_f = dir.write(&format!("leaf{i}.pem"), leaf.to_pem().unwrap().as_bytes());
        let text = openssl_ok(&[
            "verify",
            "-CAfile",
            s(&root_f),
            "-untrusted",
            s(&inter_f),
            "-purpose",
            "sslserver",
            "-verify_hostname",
            "www.example.com",
            "-x509_strict",
            s(&leaf_f),
        ]);
        assert!(text.contains(": OK"), "plan {i}: openssl verify: {text}");
        // Without the intermediate, no path.
        let (ok, _) = run("openssl", &["verify", "-CAfile", s(&root_f), s(&leaf_f)]);
        assert!(!ok, "plan {i}: openssl verified a leaf without its intermediate");
        let text = openssl_ok(&["x509", "-in", s(&leaf_f), "-noout", "-text"]);
        for want in [
            "CA:FALSE",
            "X509v3 Authority Key Identifier",
            "DNS:www.example.com",
            "TLS Web Client Authentication",
        ] {
            assert!(text.contains(want), "plan {i}: openssl x509 -text lacks {want}: {text}");
        }
        python_ok(PYCA_ISSUED_BY, &[s(&root_f), s(&inter_f), s(&leaf_f), "1:0", "2:1"]);
        let text = python_ok(PYCA_SERVER_PATH, &[s(&root_f), s(&inter_f), s(&leaf_f), "www.example.com"]);
        assert!(text.contains("path 3"), "plan {i}: {text}");
    }
}

/// What issuing refuses: a request whose signature does not verify, a CA key that is not
/// the CA certificate's, an issuer that is not a CA, a CA certificate under a path length
/// of 0; keys that sign no certificates; bad names, bad alternative names, bad DER.
pub fn x509_refusals(store: &Store) {
    let caps = store.capabilities();
    if !caps.generate.contains(&KeySpec::P256) {
        return;
    }
    let key = |n: &str| store.create_key(n, KeySpec::P256, KeyAttributes::default()).unwrap();
    let (ca_key, other_key, leaf_key) = (key("ca"), key("other"), key("leaf"));
    let mut cp = CertificateParams::new("CN=refusing CA");
    cp.ca = true;
    cp.path_len = Some(0);
    let ca = x509::self_signed(&ca_key, &cp).unwrap();
    let csr = x509::create_csr(&leaf_key, &CertificateParams::new("CN=leaf")).unwrap();
    let invalid = |r: hsmkit::Result<Certificate>, why: InvalidReason| match r {
        Err(hsmkit::Error::InvalidInput { reason, .. }) if reason == why => {}
        other => panic!("expected InvalidInput({why:?}), got {other:?}"),
    };

    // A request whose signature was altered: the last byte of the DER is the signature's.
    let mut bad = csr.to_der().to_vec();
    if let Some(b) = bad.last_mut() {
        *b ^= 1;
    }
    let bad = CertificateRequest::from_der(&bad).unwrap();
    invalid(x509::issue(&ca_key, &ca, &bad, &IssueParams::default()), InvalidReason::Malformed);
    // A request for another key's public key, signed by this one, does not verify:
    // proof of possession is what the check is for.
    let (mine, theirs) = (leaf_key.public_key_der().unwrap(), other_key.public_key_der().unwrap());
    let der = csr.to_der();
    let at = der.windows(mine.len()).position(|w| w == &mine[..]).expect("the request holds its SPKI");
    let mut swapped = der.to_vec();
    swapped.splice(at..at + mine.len(), theirs.iter().copied());
    let swapped = CertificateRequest::from_der(&swapped).unwrap();
    assert_eq!(swapped.public_key().unwrap(), other_key.public_key().unwrap());
    invalid(x509::issue(&ca_key, &ca, &swapped, &IssueParams::default()), InvalidReason::Malformed);
    // A CA key that is not the CA certificate's.
    invalid(x509::issue(&other_key, &ca, &csr, &IssueParams::default()), InvalidReason::KeyMismatch);
    let leaf = x509::issue(&ca_key, &ca, &csr, &IssueParams::default()).unwrap();
    invalid(x509::issue(&leaf_key, &leaf, &csr, &IssueParams::default()), InvalidReason::Parameter);
    let mut sub_ca = IssueParams::default();
    sub_ca.ca = true;
    invalid(x509::issue(&ca_key, &ca, &csr, &sub_ca), InvalidReason::Parameter);

    // Validity ends with the CA's.
    let mut long = IssueParams::default();
    long.validity = Duration::from_secs(10 * 365 * 24 * 3600);
    let clipped = x509::issue(&ca_key, &ca, &csr, &long).unwrap();
    assert_eq!(clipped.validity().1, ca.validity().1);
    let mut late = IssueParams::default();
    late.not_before = Some(SystemTime::now() + Duration::from_secs(2 * 365 * 24 * 3600));
    invalid(x509::issue(&ca_key, &ca, &csr, &late), InvalidReason::Parameter);

    // A disabled CA key signs nothing.
    store.update_key("ca", ca_key.version(), &hsmkit::KeyUpdate::enabled(false)).unwrap();
    match store.get_key_version("ca", 1) {
        Ok(k) => {
            expect_kind(x509::issue(&k, &ca, &csr, &IssueParams::default()), ErrorKind::PermissionDenied);
        }
        Err(e) => assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}"),
    }

    // Keys without a public key sign no certificates.
    for spec in [KeySpec::Aes(hsmkit::AesSize::Aes256), KeySpec::Hmac { bits: 256 }] {
        if !caps.generate.contains(&spec) {
            continue;
        }
        let k = store
            .create_key(
                &format!("nocert-{:?}", spec.key_type()).to_lowercase(),
                spec,
                KeyAttributes::default(),
            )
            .unwrap();
        expect_kind(x509::create_csr(&k, &CertificateParams::new("CN=x")), ErrorKind::InvalidInput);
        expect_kind(x509::self_signed(&k, &CertificateParams::new("CN=x")), ErrorKind::InvalidInput);
    }
    // A signature algorithm that does not fit the key.
    let mut wrong = CertificateParams::new("CN=x");
    wrong.signature_algorithm = Some(SignatureAlgorithm::Rs256);
    expect_kind(x509::create_csr(&leaf_key, &wrong), ErrorKind::InvalidInput);

    for dn in ["not a name", "CN=a,,O=b", "/CN=a//O=b", "XYZZY=1"] {
        expect_kind(x509::create_csr(&leaf_key, &CertificateParams::new(dn)), ErrorKind::InvalidInput);
    }
    // keyCertSign is for CAs; a CA needs it, and a subject (RFC 5280 4.2.1.3, 4.1.2.6).
    let mut ee = CertificateParams::new("CN=x");
    ee.key_usage = vec![KeyUsage::DigitalSignature, KeyUsage::KeyCertSign];
    expect_kind(x509::self_signed(&leaf_key, &ee), ErrorKind::InvalidInput);
    expect_kind(x509::create_csr(&leaf_key, &ee), ErrorKind::InvalidInput);
    let mut ca_no_sign = CertificateParams::new("CN=x");
    ca_no_sign.ca = true;
    ca_no_sign.key_usage = vec![KeyUsage::DigitalSignature];
    expect_kind(x509::self_signed(&leaf_key, &ca_no_sign), ErrorKind::InvalidInput);
    let mut nameless_ca = CertificateParams::new("");
    nameless_ca.ca = true;
    nameless_ca.subject_alt_names = vec!["dns:ca.example.com".parse().unwrap()];
    expect_kind(x509::self_signed(&leaf_key, &nameless_ca), ErrorKind::InvalidInput);
    // A request that asks for keyCertSign still gets an end entity without it.
    let mut asks = CertificateParams::new("CN=asks");
    asks.ca = true;
    let asks = x509::create_csr(&leaf_key, &asks).unwrap();
    let fresh_ca = x509::self_signed(&other_key, &{
        let mut p = CertificateParams::new("CN=fresh CA");
        p.ca = true;
        p
    })
    .unwrap();
    let got = x509::issue(&other_key, &fresh_ca, &asks, &IssueParams::default()).unwrap();
    assert_eq!(got.basic_constraints().unwrap(), (false, None));
    assert_eq!(got.key_usage().unwrap(), Some(vec![KeyUsage::DigitalSignature]));
    // No subject and no alternative name: nothing to certify.
    expect_kind(x509::create_csr(&leaf_key, &CertificateParams::new("")), ErrorKind::InvalidInput);
    // The slash form is OpenSSL's order; both forms give the same name.
    let a = x509::create_csr(&leaf_key, &CertificateParams::new("/C=GB/O=Example, Ltd/CN=host")).unwrap();
    assert_eq!(a.subject(), "CN=host,O=Example\\, Ltd,C=GB");
    // OpenSSL's slash form with escapes: `\/` is a slash, a leading `#` is text (not BER).
    let b = x509::create_csr(&leaf_key, &CertificateParams::new("/O=a\\/b/CN=#0c0141")).unwrap();
    assert_eq!(b.subject(), "CN=\\#0c0141,O=a/b");
    for ok in ["dns:*.example.com", "dns:xn--caf-dma.example", "dns:a-b.example.com.", "ip:::ffff:10.0.0.1"] {
        ok.parse::<SubjectAltName>().unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for san in [
        "dns:",
        "dns:*",
        "dns:foo..bar",
        "dns:a\0.evil.com",
        "dns:-a.example",
        "dns:a.*.example",
        "ip:999.1.1.1",
        "foo:bar",
        "email:caf\u{e9}@example.com",
        "nocolon",
        "dns:a b",
    ] {
        expect_kind(san.parse::<SubjectAltName>(), ErrorKind::InvalidInput);
    }
    for der in [&b""[..], b"\x30\x03\x02\x01\x01", &csr.to_der()[..20]] {
        expect_kind(Certificate::from_der(der), ErrorKind::InvalidInput);
        expect_kind(CertificateRequest::from_der(der), ErrorKind::InvalidInput);
    }
    expect_kind(Certificate::from_pem(&csr.to_pem().unwrap()), ErrorKind::InvalidInput);
    expect_kind(CertificateRequest::from_pem(&ca.to_pem().unwrap()), ErrorKind::InvalidInput);
}
