//! Certificates as store objects: create with each issuer kind, merge, renewal on a moved
//! clock, reuse-key versus new-key renewal, PKCS#12 and PEM import (files made by
//! pyca/cryptography), soft delete/recover/purge. Certificates are checked by OpenSSL and
//! pyca/cryptography, as in [`crate::x509`].

use std::time::Duration;

use hsmkit::certificates::{
    CertificateIssuer, CertificateOperation, CertificatePolicy, LifetimeAction, PendingCertificate,
};
use hsmkit::x509::{self, Certificate, CertificateParams, IssueParams};
use hsmkit::{Denied, Error, ErrorKind, InvalidReason, KeyOp, KeySpec, Store};

use crate::checks::{create_or_unsupported, expect_kind};
use crate::lifecycle::TestClock;
use crate::x509::{Dir, PYCA_ISSUED_BY, openssl_ok, python_ok, s};

const DAY: u64 = 86_400;

/// The first of P-256 and RSA-2048 the backend generates.
fn spec(store: &Store) -> KeySpec {
    let caps = store.capabilities();
    [KeySpec::P256, KeySpec::RSA_2048]
        .into_iter()
        .find(|s| caps.generate.contains(s))
        .expect("the backend generates P-256 or RSA-2048")
}

fn policy(store: &Store, subject: &str) -> CertificatePolicy {
    let mut p = CertificatePolicy::new(subject, spec(store));
    p.subject_alt_names = vec!["dns:app.example.com".parse().unwrap(), "ip:10.1.2.3".parse().unwrap()];
    p
}

fn completed(op: CertificateOperation) -> hsmkit::certificates::CertificateProperties {
    match op {
        CertificateOperation::Completed(p) => p,
        CertificateOperation::Pending(p) => panic!("expected a certificate, got a pending request {p:?}"),
    }
}

fn pending(op: CertificateOperation) -> PendingCertificate {
    match op {
        CertificateOperation::Pending(p) => p,
        CertificateOperation::Completed(p) => panic!("expected a pending request, got {p:?}"),
    }
}

fn invalid_reason(e: Error) -> InvalidReason {
    match e {
        Error::InvalidInput { reason, .. } => reason,
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

/// A self-signed CA certificate object `name` in `store`, and its certificate.
fn ca(store: &Store, name: &str) -> Certificate {
    let mut p = CertificatePolicy::new(format!("CN={name},O=hsmkit conformance"), spec(store));
    p.ca = true;
    p.lifetime_action = None;
    p.validity_months = 24;
    completed(store.create_certificate(name, &p).unwrap());
    store.get_certificate(name).unwrap().certificate().unwrap().clone()
}

/// Issues a certificate for `csr` with the CA object `ca_name`.
fn issue(store: &Store, ca_name: &str, csr: &x509::CertificateRequest) -> Certificate {
    let ca_key = store.get_key(ca_name).unwrap();
    let ca_cert = store.get_certificate(ca_name).unwrap().certificate().unwrap().clone();
    x509::issue(&ca_key, &ca_cert, csr, &IssueParams::default()).unwrap()
}

/// Self-signed: version 1 at once on key version 1, the fields asked for (OpenSSL and
/// pyca read them), renewal with a new key and then with the same key, a new version by
/// create, a pending request on an existing certificate and its cancellation.
pub fn cert_self_signed_versions(store: &Store) {
    let dir = Dir::new();
    let p = policy(store, "CN=app.example.com,O=hsmkit conformance");
    let v1 = completed(store.create_certificate("app", &p).unwrap());
    assert_eq!((v1.version, v1.key_version), (1, 1));
    let b = store.get_certificate("app").unwrap();
    assert_eq!(b.properties, v1);
    let leaf = b.certificate().unwrap();
    assert_eq!(leaf.public_key().unwrap(), store.get_key("app").unwrap().public_key().unwrap());
    assert_eq!(leaf.subject(), "CN=app.example.com,O=hsmkit conformance");
    assert_eq!(leaf.subject_alt_names().unwrap(), p.subject_alt_names);
    assert_eq!(v1.thumbprint_sha256, leaf.sha256_fingerprint(store.crypto()));
    // Twelve calendar months.
    let life = v1.expires.duration_since(v1.not_before).unwrap().as_secs() / DAY;
    assert!((365..=366).contains(&life), "{life} days");
    let f = dir.write("app.pem", b.to_pem(false).unwrap().as_bytes());
    let text = openssl_ok(&["x509", "-in", s(&f), "-noout", "-text"]);
    for want in ["DNS:app.example.com", "IP Address:10.1.2.3", "CN = app.example.com"] {
        assert!(text.contains(want), "openssl x509 -text lacks {want}: {text}");
    }
    python_ok(PYCA_ISSUED_BY, &[s(&f), "0:0"]);
    // Not exportable by default: the certificate is, its private key is not.
    match store.export_certificate_key("app", None) {
        Err(Error::PermissionDenied { reason: Denied::NotExportable, .. }) => {}
        other => panic!("expected NotExportable, got {other:?}"),
    }

    // Renewal under the default policy: a new key version.
    let v2 = completed(store.renew_certificate("app").unwrap());
    assert_eq!((v2.version, v2.key_version), (2, 2));
    let k1 = store.get_key_version("app", 1).unwrap().public_key().unwrap();
    let k2 = store.get_key_version("app", 2).unwrap().public_key().unwrap();
    assert_ne!(k1, k2);
    assert_eq!(store.get_certificate("app").unwrap().certificate().unwrap().public_key().unwrap(), k2);
    // Reuse the key: same key version, new certificate.
    let mut reuse = p.clone();
    reuse.reuse_key = true;
    store.set_certificate_policy("app", &reuse).unwrap();
    assert_eq!(store.certificate_policy("app").unwrap(), reuse);
    let v3 = completed(store.renew_certificate("app").unwrap());
    assert_eq!((v3.version, v3.key_version), (3, 2));
    assert_ne!(v3.serial, v2.serial);
    let versions = store.list_certificate_versions("app").unwrap();
    assert_eq!(
        versions.iter().map(|v| (v.version, v.key_version)).collect::<Vec<_>>(),
        [(1, 1), (2, 2), (3, 2)]
    );
    assert_eq!(store.get_certificate_version("app", 1).unwrap().properties, v1);
    expect_kind(store.get_certificate_version("app", 9), ErrorKind::NotFound);

    // Create on an existing name: the next version, under the new policy.
    let mut unknown = p.clone();
    unknown.issuer = CertificateIssuer::Unknown;
    let pend = pending(store.create_certificate("app", &unknown).unwrap());
    assert_eq!(pend.key_version, 3);
    assert_eq!(store.pending_certificate("app").unwrap(), pend);
    // One pending operation at a time.
    expect_kind(store.create_certificate("app", &unknown), ErrorKind::AlreadyExists);
    expect_kind(store.renew_certificate("app"), ErrorKind::AlreadyExists);
    store.cancel_pending_certificate("app").unwrap();
    expect_kind(store.pending_certificate("app"), ErrorKind::NotFound);
    assert_eq!(store.get_certificate("app").unwrap().properties, v3);
    let listed: Vec<String> = store.list_certificates().unwrap().into_iter().map(|d| d.name).collect();
    assert_eq!(listed, ["app"]);
}

/// Issuer `Unknown`: a pending request (OpenSSL verifies it) until the CA's certificate is
/// merged. A certificate for another key, or a chain out of order, is refused and leaves
/// the request pending; the merged chain verifies with OpenSSL and pyca.
pub fn cert_unknown_issuer_merge(store: &Store) {
    let dir = Dir::new();
    let ca_cert = ca(store, "conf-ca");
    let mut p = policy(store, "CN=web.example.com");
    p.issuer = CertificateIssuer::Unknown;
    let pend = pending(store.create_certificate("web", &p).unwrap());
    assert_eq!(pend.key_version, 1);
    expect_kind(store.get_certificate("web"), ErrorKind::NotFound);
    assert!(store.describe_certificate("web").unwrap().pending.is_some());
    let f = dir.write("web.csr", pend.csr.to_pem().unwrap().as_bytes());
    let text = openssl_ok(&["req", "-in", s(&f), "-verify", "-noout", "-text"]);
    assert!(text.contains("verify OK") && text.contains("DNS:app.example.com"), "{text}");

    // A certificate for another key.
    let other = create_or_unsupported(store, "other", spec(store), &[KeyOp::Sign, KeyOp::Verify]).unwrap();
    let other_csr = x509::create_csr(&other, &CertificateParams::new("CN=web.example.com")).unwrap();
    let wrong = issue(store, "conf-ca", &other_csr);
    let wrong_again = wrong.clone();
    let e = store.merge_certificate("web", &[wrong, ca_cert.clone()]).unwrap_err();
    assert_eq!(invalid_reason(e), InvalidReason::KeyMismatch);
    assert_eq!(store.pending_certificate("web").unwrap(), pend);

    let leaf = issue(store, "conf-ca", &pend.csr);
    // A certificate that is not on the leaf's chain.
    let e = store.merge_certificate("web", &[leaf.clone(), wrong_again.clone()]).unwrap_err();
    assert_eq!(invalid_reason(e), InvalidReason::Parameter);
    expect_kind(store.merge_certificate("web", &[]), ErrorKind::InvalidInput);
    let v1 = store.merge_certificate("web", &[leaf.clone(), ca_cert.clone()]).unwrap();
    assert_eq!((v1.version, v1.key_version), (1, 1));
    expect_kind(store.pending_certificate("web"), ErrorKind::NotFound);
    expect_kind(store.merge_certificate("web", std::slice::from_ref(&leaf)), ErrorKind::NotFound);
    let b = store.get_certificate("web").unwrap();
    assert_eq!(b.chain, [leaf, ca_cert.clone()]);
    assert_eq!(b.properties.issuer, ca_cert.subject());
    let chain = dir.write("chain.pem", b.to_pem(true).unwrap().as_bytes());
    assert_eq!(b.to_pem(true).unwrap().matches("BEGIN CERTIFICATE").count(), 2);
    let leaf_f = dir.write("leaf.pem", b.to_pem(false).unwrap().as_bytes());
    let ca_f = dir.write("ca.pem", ca_cert.to_pem().unwrap().as_bytes());
    let text = openssl_ok(&["verify", "-x509_strict", "-CAfile", s(&ca_f), s(&leaf_f)]);
    assert!(text.contains(": OK"), "openssl verify: {text}");
    python_ok(PYCA_ISSUED_BY, &[s(&chain), s(&ca_f), "0:1"]);
}

/// Lifetime actions on a clock moved forward: a certificate renews at its percentage or
/// its days before expiry, not before; `Unknown` issuers are reported, not renewed.
pub fn cert_renewal_due(store: &Store) {
    let clock = TestClock::new();
    let store = clock.store(store);
    ca(&store, "due-ca");
    let mut half = policy(&store, "CN=half");
    half.validity_months = 1;
    half.lifetime_action = Some(LifetimeAction::AtPercentage(50));
    completed(store.create_certificate("half", &half).unwrap());
    let mut late = policy(&store, "CN=late");
    late.validity_months = 1;
    late.lifetime_action = Some(LifetimeAction::DaysBeforeExpiry(5));
    late.reuse_key = true;
    completed(store.create_certificate("late", &late).unwrap());
    let mut ext = policy(&store, "CN=ext");
    ext.issuer = CertificateIssuer::Unknown;
    ext.lifetime_action = Some(LifetimeAction::DaysBeforeExpiry(30));
    let pend = pending(store.create_certificate("ext", &ext).unwrap());
    let ca_cert = store.get_certificate("due-ca").unwrap().certificate().unwrap().clone();
    store.merge_certificate("ext", &[issue(&store, "due-ca", &pend.csr), ca_cert]).unwrap();

    let due = |store: &Store| -> Vec<String> {
        store.certificates_due().unwrap().into_iter().map(|d| d.name).collect()
    };
    assert!(due(&store).is_empty());
    assert!(store.renew_due_certificates().unwrap().is_empty());
    clock.advance(13 * DAY);
    assert!(due(&store).is_empty(), "13 days into a month is before 50 %");
    clock.advance(3 * DAY);
    assert_eq!(due(&store), ["half"]);
    let renewed = store.renew_due_certificates().unwrap();
    assert_eq!(renewed.len(), 1);
    let r = &renewed[0];
    assert_eq!((r.due.name.as_str(), r.due.version), ("half", 1));
    assert!(r.due.reason.contains("50 %"), "{}", r.due.reason);
    let v2 = completed(r.result.as_ref().unwrap().clone().unwrap());
    assert_eq!((v2.version, v2.key_version), (2, 2), "a new key (reuse_key false)");
    assert!(due(&store).is_empty());
    // late: due 5 days before the end of its month (at least day 23).
    clock.advance(10 * DAY);
    assert_eq!(due(&store), ["late"]);
    let renewed = store.renew_due_certificates().unwrap();
    let v2 = completed(renewed[0].result.as_ref().unwrap().clone().unwrap());
    assert_eq!((v2.version, v2.key_version), (2, 1), "the same key (reuse_key true)");
    assert!(v2.not_before >= clock.now() - Duration::from_secs(1));
    // A year on: everything is due; the externally issued one is reported only.
    clock.advance(320 * DAY);
    let renewed = store.renew_due_certificates().unwrap();
    let names: Vec<&str> = renewed.iter().map(|r| r.due.name.as_str()).collect();
    assert_eq!(names, ["ext", "half", "late"]);
    let ext_r = &renewed[0];
    assert_eq!(ext_r.due.issuer, CertificateIssuer::Unknown);
    assert!(matches!(ext_r.result, Ok(None)), "{:?}", ext_r.result);
    assert_eq!(store.list_certificate_versions("ext").unwrap().len(), 1);
    for r in &renewed[1..] {
        assert_eq!(completed(r.result.as_ref().unwrap().clone().unwrap()).version, 3);
    }
    // A renewal with an `Unknown` issuer is a pending request.
    let pend = pending(store.renew_certificate("ext").unwrap());
    assert_eq!(pend.key_version, 2);
    assert!(store.certificates_due().unwrap().iter().all(|d| d.name != "ext"), "pending: not due again");
}

/// Makes (with pyca/cryptography) an `alg` key, a self-signed CA and a leaf issued by it,
/// and writes `leaf.p12` (AES, password `pw`), `legacy.p12` (3DES), `leaf.pem` (key and
/// chain) and `wrong.pem` (the chain with another key).
const PYCA_PKCS12: &str = r#"
import sys, datetime
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
out, alg = sys.argv[1], sys.argv[2]
def key():
    return ec.generate_private_key(ec.SECP256R1()) if alg == "ec" else rsa.generate_private_key(65537, 2048)
def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
now = datetime.datetime.now(datetime.timezone.utc)
ca_key, inter_key, leaf_key, other = key(), key(), key(), key()
def cert(subject, issuer, public, signer, days, ca):
    b = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
         .public_key(public).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=days)))
    if ca:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    else:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
    return b.sign(signer, hashes.SHA256())
ca = cert("pyca root", "pyca root", ca_key.public_key(), ca_key, 400, True)
inter = cert("pyca intermediate", "pyca root", inter_key.public_key(), ca_key, 300, True)
leaf = cert("imported.example.com", "pyca intermediate", leaf_key.public_key(), inter_key, 90, False)
# The CA certificates root first: files promise no order.
open(out + "/leaf.p12", "wb").write(pkcs12.serialize_key_and_certificates(
    b"imported", leaf_key, leaf, [ca, inter], serialization.BestAvailableEncryption(b"pw")))
legacy = (serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(2048)
          .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC).hmac_hash(hashes.SHA1()).build(b"pw"))
open(out + "/legacy.p12", "wb").write(pkcs12.serialize_key_and_certificates(b"imported", leaf_key, leaf, [ca], legacy))
pem = lambda c: c.public_bytes(serialization.Encoding.PEM)
pk = lambda k: k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
open(out + "/leaf.pem", "wb").write(pem(ca) + pk(leaf_key) + pem(inter) + pem(leaf))
open(out + "/wrong.pem", "wb").write(pem(leaf) + pem(inter) + pem(ca) + pk(other))
# An Ed25519 PKCS#8 v1 key: no public part in the file, so only deriving it tells.
open(out + "/wrong-ed25519.pem", "wb").write(pem(leaf) + pem(inter) + pk(ed25519.Ed25519PrivateKey.generate()))
open(out + "/ca.pem", "wb").write(pem(ca))
open(out + "/inter.pem", "wb").write(pem(inter))
"#;

/// PKCS#12 and PEM import of files pyca/cryptography made: a wrong password is an
/// authentication error, legacy 3DES is Unsupported, a key that is not the certificate's
/// is refused; the imported key signs as the certificate's key and does not leave the
/// backend unless imported exportable.
pub fn cert_import_pkcs12_and_pem(store: &Store) {
    let caps = store.capabilities();
    for (alg, spec) in [("ec", KeySpec::P256), ("rsa", KeySpec::RSA_2048)] {
        let dir = Dir::new();
        python_ok(PYCA_PKCS12, &[s(dir.0.path()), alg]);
        let read = |f: &str| std::fs::read(dir.0.path().join(f)).unwrap();
        let p12 = read("leaf.p12");
        let name = format!("imported-{alg}");
        if !caps.import || !caps.generate.contains(&spec) {
            // What the backend cannot hold is refused, typed, after the file was read.
            let e = store.import_pkcs12(&name, &p12, "pw", false).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unsupported, "{alg}: {e}");
            continue;
        }
        match store.import_pkcs12(&name, &p12, "not the password", false) {
            Err(Error::Authentication(_)) => {}
            other => panic!("{alg}: a wrong password: expected Authentication, got {other:?}"),
        }
        expect_kind(store.import_pkcs12(&name, &read("legacy.p12"), "pw", false), ErrorKind::Unsupported);
        // No MAC: nothing authenticates the file, so the password proves nothing.
        let nomac = dir.0.path().join("nomac.p12");
        let leaf_pem = dir.0.path().join("leaf.pem");
        openssl_ok(&[
            "pkcs12",
            "-export",
            "-nomac",
            "-in",
            s(&leaf_pem),
            "-passout",
            "pass:pw",
            "-out",
            s(&nomac),
        ]);
        let e = store.import_pkcs12(&name, &read("nomac.p12"), "anything", false).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported, "{alg}: {e}");
        expect_kind(store.import_pkcs12(&name, &p12[..p12.len() / 2], "pw", false), ErrorKind::InvalidInput);
        // Nothing was written by the failures.
        expect_kind(store.get_key(&name), ErrorKind::NotFound);
        expect_kind(store.describe_certificate(&name), ErrorKind::NotFound);

        let v1 = store.import_pkcs12(&name, &p12, "pw", false).unwrap();
        assert_eq!((v1.version, v1.key_version), (1, 1));
        assert_eq!(v1.subject, "CN=imported.example.com");
        let b = store.get_certificate(&name).unwrap();
        // Leaf, intermediate, root: each followed by its issuer, whatever the file's order.
        assert_eq!(b.chain.len(), 3, "the leaf and both CAs");
        let ca_pem = String::from_utf8(read("ca.pem")).unwrap();
        let inter_pem = String::from_utf8(read("inter.pem")).unwrap();
        assert_eq!(b.chain[1], Certificate::from_pem(&inter_pem).unwrap());
        assert_eq!(b.chain[2], Certificate::from_pem(&ca_pem).unwrap());
        let key = store.get_key(&name).unwrap();
        assert_eq!(key.spec(), spec);
        assert_eq!(key.public_key().unwrap(), b.certificate().unwrap().public_key().unwrap());
        // The imported key signs; the signature verifies under the certificate's key.
        let alg_sig = x509::default_signature_algorithm(spec).unwrap();
        let sig = key.sign(alg_sig, b"imported key signs").unwrap();
        store
            .crypto()
            .verify(&b.certificate().unwrap().public_key().unwrap(), alg_sig, b"imported key signs", &sig)
            .unwrap();
        match store.export_certificate_key(&name, None) {
            Err(Error::PermissionDenied { reason: Denied::NotExportable, .. }) => {}
            other => panic!("{alg}: expected NotExportable, got {other:?}"),
        }
        let policy = store.certificate_policy(&name).unwrap();
        assert_eq!(policy.issuer, CertificateIssuer::Unknown);
        assert_eq!(policy.key_spec, spec);

        // PEM (key between the certificates) as the next version; a key that is not the
        // certificate's is refused and adds nothing.
        let e = store
            .import_certificate_pem(&name, &String::from_utf8(read("wrong.pem")).unwrap(), false)
            .unwrap_err();
        assert_eq!(invalid_reason(e), InvalidReason::KeyMismatch);
        let e = store
            .import_certificate_pem(&name, &String::from_utf8(read("wrong-ed25519.pem")).unwrap(), false)
            .unwrap_err();
        assert_eq!(invalid_reason(e), InvalidReason::KeyMismatch);
        assert_eq!(store.list_certificate_versions(&name).unwrap().len(), 1);
        // Nothing went into the backend: the key still has one version, the certificate's.
        assert_eq!(store.list_versions(&name).unwrap().len(), 1);
        store.get_key(&name).unwrap().sign(alg_sig, b"still usable").unwrap();
        let v2 = store
            .import_certificate_pem(&name, &String::from_utf8(read("leaf.pem")).unwrap(), false)
            .unwrap();
        assert_eq!(v2.version, 2);
        assert_eq!(
            store.get_certificate(&name).unwrap().chain.len(),
            3,
            "the leaf first, whatever the file order"
        );
        assert_eq!(store.get_certificate(&name).unwrap().properties.thumbprint_sha256, v1.thumbprint_sha256);
    }
}

/// Soft delete takes the certificate and its key; recover brings both back; purge frees
/// the name.
pub fn cert_delete_recover_purge(store: &Store) {
    let p = policy(store, "CN=gone");
    completed(store.create_certificate("gone", &p).unwrap());
    // The key goes with its certificate, never alone.
    expect_kind(store.delete_key("gone"), ErrorKind::InvalidInput);
    expect_kind(store.destroy_key("gone"), ErrorKind::InvalidInput);
    store.get_key("gone").unwrap();
    let d = store.delete_certificate("gone").unwrap();
    assert!(d.state.deleted.is_some());
    expect_kind(store.get_certificate("gone"), ErrorKind::NotFound);
    expect_kind(store.get_key("gone"), ErrorKind::NotFound);
    expect_kind(store.delete_certificate("gone"), ErrorKind::NotFound);
    expect_kind(store.create_certificate("gone", &p), ErrorKind::AlreadyExists);
    expect_kind(store.recover_deleted_key("gone"), ErrorKind::InvalidInput);
    expect_kind(store.purge_deleted_key("gone"), ErrorKind::InvalidInput);
    assert_eq!(store.list_deleted_certificates().unwrap().len(), 1);
    assert!(store.list_certificates().unwrap().is_empty());
    assert_eq!(store.get_deleted_certificate("gone").unwrap().versions.len(), 1);
    store.recover_deleted_certificate("gone").unwrap();
    let key = store.get_key("gone").unwrap();
    assert_eq!(
        key.public_key().unwrap(),
        store.get_certificate("gone").unwrap().certificate().unwrap().public_key().unwrap()
    );
    expect_kind(store.recover_deleted_certificate("gone"), ErrorKind::NotFound);
    expect_kind(store.purge_deleted_certificate("gone"), ErrorKind::NotFound);
    store.delete_certificate("gone").unwrap();
    store.purge_deleted_certificate("gone").unwrap();
    expect_kind(store.describe_certificate("gone"), ErrorKind::NotFound);
    expect_kind(store.describe_key("gone"), ErrorKind::NotFound);
    assert!(store.list_deleted_certificates().unwrap().is_empty());
    // The name is free again.
    assert_eq!(completed(store.create_certificate("gone", &p).unwrap()).version, 1);
    // Cancelling the only (pending) operation of a new certificate takes its key too.
    let mut u = p.clone();
    u.issuer = CertificateIssuer::Unknown;
    pending(store.create_certificate("never", &u).unwrap());
    store.cancel_pending_certificate("never").unwrap();
    expect_kind(store.describe_certificate("never"), ErrorKind::NotFound);
    expect_kind(store.get_key("never"), ErrorKind::NotFound);
}

/// Bad policies and names are typed errors that write nothing.
pub fn cert_refusals(store: &Store) {
    let base = policy(store, "CN=bad");
    let bad = |f: &dyn Fn(&mut CertificatePolicy)| {
        let mut p = base.clone();
        f(&mut p);
        expect_kind(store.create_certificate("bad", &p), ErrorKind::InvalidInput);
    };
    bad(&|p| p.validity_months = 0);
    bad(&|p| p.validity_months = 1201);
    bad(&|p| p.key_spec = KeySpec::AES_256);
    bad(&|p| p.lifetime_action = Some(LifetimeAction::AtPercentage(0)));
    bad(&|p| p.lifetime_action = Some(LifetimeAction::AtPercentage(100)));
    bad(&|p| p.lifetime_action = Some(LifetimeAction::DaysBeforeExpiry(0)));
    bad(&|p| {
        p.subject = String::new();
        p.subject_alt_names.clear();
    });
    bad(&|p| p.subject = "not a name".into());
    bad(&|p| p.key_usage = vec![hsmkit::x509::KeyUsage::KeyCertSign]);
    expect_kind(store.describe_certificate("bad"), ErrorKind::NotFound);
    // On an existing certificate, a bad policy adds no key version.
    completed(store.create_certificate("okc", &base).unwrap());
    let mut worse = base.clone();
    worse.subject = "not a name".into();
    expect_kind(store.create_certificate("okc", &worse), ErrorKind::InvalidInput);
    assert_eq!(store.list_versions("okc").unwrap().len(), 1);
    expect_kind(store.get_key("bad"), ErrorKind::NotFound);
    expect_kind(store.create_certificate("no/slash", &base), ErrorKind::InvalidInput);
    expect_kind(store.get_certificate("nothing"), ErrorKind::NotFound);
    expect_kind(store.merge_certificate("nothing", &[]), ErrorKind::NotFound);
    // A key of that name that is not a certificate's.
    create_or_unsupported(store, "plain", spec(store), &[KeyOp::Sign]).unwrap();
    expect_kind(store.create_certificate("plain", &base), ErrorKind::AlreadyExists);
    expect_kind(store.describe_certificate("plain"), ErrorKind::NotFound);
    // A trigger that would always fire.
    bad(&|p| {
        p.validity_months = 1;
        p.lifetime_action = Some(LifetimeAction::DaysBeforeExpiry(40));
    });
    // The certificate's key changes only with the certificate.
    expect_kind(store.rotate_key("okc"), ErrorKind::InvalidInput);
    expect_kind(
        store.import_key_version("okc", hsmkit::KeyMaterial::aes(&[1; 32]).unwrap(), Default::default()),
        ErrorKind::InvalidInput,
    );
    expect_kind(store.import_pkcs12("p12", b"not der", "pw", false), ErrorKind::InvalidInput);
    expect_kind(store.import_certificate_pem("pem", "no pem here", false), ErrorKind::InvalidInput);
    // Under purge protection, a cancelled first request still takes its key back: it was
    // never in use.
    store.enable_purge_protection().unwrap();
    let mut u = base.clone();
    u.issuer = CertificateIssuer::Unknown;
    pending(store.create_certificate("pp", &u).unwrap());
    store.cancel_pending_certificate("pp").unwrap();
    expect_kind(store.describe_key("pp"), ErrorKind::NotFound);
    // And a renewal whose request is cancelled leaves the certified key version current.
    completed(store.create_certificate("pp2", &base).unwrap());
    pending(store.create_certificate("pp2", &u).unwrap());
    assert_eq!(store.list_versions("pp2").unwrap().len(), 2);
    store.cancel_pending_certificate("pp2").unwrap();
    assert_eq!(store.list_versions("pp2").unwrap().len(), 1);
}
