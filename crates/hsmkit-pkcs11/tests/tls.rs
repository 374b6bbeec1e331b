//! A rustls server whose certificate key is on SoftHSM2 (through `hsmkit::tls`) completes
//! TLS handshakes with `openssl s_client`, which trusts an hsmkit CA whose key is on the
//! same token: ECDSA P-256, RSA (PSS in TLS 1.3, PKCS#1 v1.5 in TLS 1.2) and Ed25519.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;

use hsmkit::x509::{self, CertificateParams, IssueParams};
use hsmkit::{KeyAttributes, KeySpec, Store};
use rustls::pki_types::CertificateDer;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

#[derive(Debug)]
struct One(Arc<CertifiedKey>);

impl ResolvesServerCert for One {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

fn store() -> Store {
    hsmkit_pkcs11::testing::SoftHsmToken::new()
        .and_then(|t| t.into_store())
        .expect("SoftHSM2 token (tests/run-all.sh installs softhsm2)")
}

/// Serves one TLS connection with `certified`, greeting the client; returns what
/// `openssl s_client` printed and the scheme the server signed with.
fn handshake(certified: CertifiedKey, ca_pem: &str, tls: &[&str]) -> String {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(One(Arc::new(certified))));
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let conn = rustls::ServerConnection::new(config).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        tls.write_all(b"hello from a key in the HSM\n")?;
        tls.flush()?;
        let mut buf = [0u8; 64];
        let n = tls.read(&mut buf).unwrap_or(0);
        tls.conn.send_close_notify();
        tls.flush()?;
        std::io::Result::Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    });
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}"), "-servername", "www.example.com"])
        .args(["-verify_hostname", "www.example.com", "-verify_return_error", "-CAfile"])
        .arg(&ca)
        .args(tls)
        .args(["-ign_eof"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("openssl (tests/run-all.sh installs it)");
    child.stdin.take().unwrap().write_all(b"ping\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let got = server.join().unwrap();
    assert!(out.status.success(), "openssl s_client {tls:?}: {text}");
    assert!(text.contains("Verify return code: 0 (ok)"), "{tls:?}: {text}");
    assert!(text.contains("hello from a key in the HSM"), "{tls:?}: {text}");
    assert_eq!(got.unwrap(), "ping\n", "{tls:?}: {text}");
    text
}

#[test]
fn rustls_server_with_token_keys_talks_to_openssl() {
    let store = store();
    let ca_key = store.create_key("tls-ca", KeySpec::P384, KeyAttributes::default()).unwrap();
    let mut cp = CertificateParams::new("CN=hsmkit TLS test CA");
    cp.ca = true;
    let ca = x509::self_signed(&ca_key, &cp).unwrap();
    let ca_pem = ca.to_pem().unwrap();
    // (key, s_client options, what s_client says the server's signature was)
    let cases: [(KeySpec, &[&str], &str); 5] = [
        (KeySpec::P256, &["-tls1_3"], "Peer signature type: ECDSA"),
        (KeySpec::RSA_2048, &["-tls1_3"], "Peer signature type: RSA-PSS"),
        (KeySpec::RSA_2048, &["-tls1_2"], "Peer signature type: RSA-PSS"),
        // A TLS 1.2 peer that offers PKCS#1 v1.5 only.
        (KeySpec::RSA_2048, &["-tls1_2", "-sigalgs", "RSA+SHA256"], "Peer signature type: RSA\n"),
        (KeySpec::Ed25519, &["-tls1_3"], "Peer signature type: Ed25519"),
    ];
    for (i, (spec, tls, scheme)) in cases.into_iter().enumerate() {
        if !store.capabilities().generate.contains(&spec) {
            panic!("SoftHSM2 generates {spec}");
        }
        let key = store.create_key(&format!("tls-{i}"), spec, KeyAttributes::default()).unwrap();
        let mut req = CertificateParams::new("CN=www.example.com");
        req.subject_alt_names = vec!["dns:www.example.com".parse().unwrap()];
        req.extended_key_usage = vec![x509::ExtendedKeyUsage::ServerAuth];
        let csr = x509::create_csr(&key, &req).unwrap();
        let leaf = x509::issue(&ca_key, &ca, &csr, &IssueParams::default()).unwrap();
        let chain = vec![CertificateDer::from(leaf.to_der().to_vec())];
        let certified = hsmkit::tls::certified_key(key, chain).unwrap();
        let text = handshake(certified, &ca_pem, tls);
        // The peer's view of the signature the token made.
        assert!(
            text.to_lowercase().contains(&scheme.to_lowercase()),
            "{spec} {tls:?}: expected {scheme}: {text}"
        );
        let version = if tls.contains(&"-tls1_2") { "TLSv1.2" } else { "TLSv1.3" };
        assert!(
            text.contains(&format!("Protocol: {version}")) || text.contains(&format!("New, {version}")),
            "{text}"
        );
    }
}

#[test]
fn certified_key_refuses_a_foreign_certificate_and_keys_without_a_scheme() {
    let store = store();
    let a = store.create_key("a", KeySpec::P256, KeyAttributes::default()).unwrap();
    let b = store.create_key("b", KeySpec::P256, KeyAttributes::default()).unwrap();
    let cert = x509::self_signed(&a, &CertificateParams::new("CN=a")).unwrap();
    let chain = vec![CertificateDer::from(cert.to_der().to_vec())];
    let e = hsmkit::tls::certified_key(b, chain).unwrap_err();
    assert_eq!(e.kind(), hsmkit::ErrorKind::InvalidInput, "{e}");
    assert_eq!(
        hsmkit::tls::certified_key(a, Vec::new()).unwrap_err().kind(),
        hsmkit::ErrorKind::InvalidInput
    );
    let aes =
        store.create_key("aes", KeySpec::Aes(hsmkit::AesSize::Aes256), KeyAttributes::default()).unwrap();
    assert_eq!(hsmkit::tls::TlsSigningKey::new(aes).unwrap_err().kind(), hsmkit::ErrorKind::InvalidInput);
}
