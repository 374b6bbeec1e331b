"""Certificates as store objects: self-signed and CA-signed (Unknown issuer, merged),
renewal, PKCS#12 and PEM import, soft delete. Every certificate the store hands out is
loaded and checked by pyca/cryptography (an independent implementation); the CA that
signs the pending requests and the PKCS#12 files are pyca's too."""

from __future__ import annotations

import datetime as dt
from typing import Any, List, Tuple

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import hsmkit
from hsmkit import (
    AlreadyExists,
    AuthenticationError,
    CertificateProperties,
    InvalidInput,
    NotFound,
    PendingCertificate,
    PermissionDenied,
)

UTC = dt.timezone.utc


def spki_der(public_key: PublicKeyTypes) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_spki(store: hsmkit.Store, name: str, version: int | None = None) -> bytes:
    return spki_der(serialization.load_pem_public_key(store.get_key(name, version).public_key_pem()))


def cn(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def load_bundle(bundle: hsmkit.CertificateBundle) -> List[x509.Certificate]:
    """Every certificate of a bundle as pyca reads it, in PEM and in DER (which must agree)."""
    from_pem = x509.load_pem_x509_certificates(bundle.pem(chain=True))
    from_der = [x509.load_der_x509_certificate(d) for d in bundle.chain_der()]
    assert from_pem == from_der
    assert x509.load_pem_x509_certificate(bundle.pem()) == from_der[0]
    assert x509.load_der_x509_certificate(bundle.der()) == from_der[0]
    return from_der


def pyca_ca(key_type: str = "ec") -> Tuple[Any, x509.Certificate]:
    """A CA made by pyca: its key and self-signed certificate."""
    key: Any = ec.generate_private_key(ec.SECP256R1()) if key_type == "ec" else rsa.generate_private_key(65537, 2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pyca test CA")])
    now = dt.datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=400))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def pyca_issue(ca_key: Any, ca_cert: x509.Certificate, subject: str, public_key: Any, days: int = 90) -> x509.Certificate:
    now = dt.datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def pkcs8_pem(key: PrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def can_import(store: hsmkit.Store, spec: str) -> bool:
    caps = store.capabilities()
    return caps["import"] and spec in caps["generate"]


# --- the policy object -------------------------------------------------------------------


def test_policy_defaults_and_attributes() -> None:
    p = hsmkit.CertificatePolicy("CN=app.example.com")
    assert (p.subject, p.key_type, p.key_spec, p.issuer) == ("CN=app.example.com", "ec", "EC-P-256", "Self")
    assert (p.validity_months, p.lifetime_percentage, p.days_before_expiry) == (12, 80, None)
    assert (p.exportable, p.reuse_key, p.ca) == (False, False, False)
    assert p.sans == [] and p.key_usage == [] and p.extended_key_usage == []

    q = hsmkit.CertificatePolicy(
        "CN=q",
        "RSA-3072",
        sans=["dns:q.example.com", "ip:10.0.0.1"],
        key_usage=["digitalSignature", "keyEncipherment"],
        extended_key_usage=["serverAuth"],
        exportable=True,
        reuse_key=True,
        validity_months=3,
        issuer="unknown",
        ca=False,
        days_before_expiry=30,
    )
    assert (q.key_type, q.key_spec, q.issuer) == ("rsa", "RSA-3072", "Unknown")
    assert q.sans == ["dns:q.example.com", "ip:10.0.0.1"]
    assert q.key_usage == ["digitalSignature", "keyEncipherment"]
    assert q.extended_key_usage == ["serverAuth"]
    assert (q.exportable, q.reuse_key, q.validity_months) == (True, True, 3)
    assert (q.lifetime_percentage, q.days_before_expiry) == (None, 30), "days replace the default percentage"
    assert hsmkit.CertificatePolicy("CN=x", "P-384").key_spec == "EC-P-384"
    assert hsmkit.CertificatePolicy("CN=x", "ed25519").key_type == "ed25519"
    never = hsmkit.CertificatePolicy("CN=x", lifetime_percentage=None)
    assert (never.lifetime_percentage, never.days_before_expiry) == (None, None)

    assert p == hsmkit.CertificatePolicy("CN=app.example.com", "ec")
    assert p != q
    r = repr(q)
    assert "CN=q" in r and "RSA-3072" in r and "30 days" in r


@pytest.mark.parametrize(
    "kwargs",
    [
        {"key_type": "dsa"},
        {"sans": ["www.example.com"]},
        {"sans": ["ip:not-an-address"]},
        {"key_usage": ["signEverything"]},
        {"extended_key_usage": ["nope"]},
        {"issuer": "Someone"},
        {"validity_months": 0},
        {"validity_months": 1201},
        {"lifetime_percentage": 0},
        {"lifetime_percentage": 100},
        {"days_before_expiry": 0},
        {"lifetime_percentage": 50, "days_before_expiry": 10},
    ],
)
def test_policy_refuses_bad_arguments(kwargs: Any) -> None:
    with pytest.raises(InvalidInput) as e:
        hsmkit.CertificatePolicy("CN=bad", **kwargs)
    assert e.value.reason in ("parameter", "malformed"), e.value.reason


# --- self-signed ---------------------------------------------------------------------------


def test_self_signed_certificate_pyca_reads_it(store: hsmkit.Store) -> None:
    policy = hsmkit.CertificatePolicy(
        "CN=app.example.com,O=hsmkit tests",
        sans=["dns:app.example.com", "ip:10.1.2.3"],
        extended_key_usage=["serverAuth", "clientAuth"],
    )
    v1 = store.create_certificate("app", policy)
    assert isinstance(v1, CertificateProperties)
    assert (v1.name, v1.version, v1.key_version) == ("app", 1, 1)
    assert v1.subject == "CN=app.example.com,O=hsmkit tests" and v1.issuer == v1.subject

    bundle = store.get_certificate("app")
    assert bundle.properties == v1
    (cert,) = load_bundle(bundle)
    cert.verify_directly_issued_by(cert)
    assert cn(cert) == "app.example.com"
    assert spki_der(cert.public_key()) == key_spki(store, "app")
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["app.example.com"]
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["10.1.2.3"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca

    # The properties are the certificate's, as pyca reads them.
    assert bundle.thumbprint_sha256 == cert.fingerprint(hashes.SHA256()).hex()
    assert int(bundle.serial, 16) == cert.serial_number
    assert bundle.not_before == cert.not_valid_before_utc and bundle.expires == cert.not_valid_after_utc
    assert bundle.not_before.tzinfo is not None and bundle.created.tzinfo is not None
    days = (bundle.expires - bundle.not_before).days
    assert 365 <= days <= 366, "twelve calendar months"
    assert "app/1" in repr(bundle) and "app/1" in repr(v1)

    # The key is the store's: it signs, and pyca verifies under the certificate's key.
    sig = store.get_key("app").sign("ES256", b"signed by the certificate's key", encoding="der")
    public = cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(sig, b"signed by the certificate's key", ec.ECDSA(hashes.SHA256()))

    # Not exportable unless the policy says so.
    with pytest.raises(PermissionDenied):
        store.export_certificate_key("app")
    assert [d.name for d in store.list_certificates()] == ["app"]
    desc = store.describe_certificate("app")
    assert desc.policy == policy and desc.pending is None and desc.current == v1


def test_ca_and_rsa(store: hsmkit.Store) -> None:
    policy = hsmkit.CertificatePolicy("CN=root", "rsa", ca=True, validity_months=24, lifetime_percentage=None)
    store.create_certificate("root", policy)
    (cert,) = load_bundle(store.get_certificate("root"))
    cert.verify_directly_issued_by(cert)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(cert.public_key(), rsa.RSAPublicKey)
    assert store.get_certificate_policy("root") == policy


def test_renewal_new_key_then_same_key(store: hsmkit.Store) -> None:
    policy = hsmkit.CertificatePolicy("CN=renew.example.com")
    store.create_certificate("renew", policy)
    v2 = store.renew_certificate("renew")
    assert isinstance(v2, CertificateProperties)
    assert (v2.version, v2.key_version) == (2, 2), "a new key version (reuse_key False)"
    assert key_spki(store, "renew", 1) != key_spki(store, "renew", 2)
    (cert,) = load_bundle(store.get_certificate("renew"))
    assert spki_der(cert.public_key()) == key_spki(store, "renew", 2)

    store.update_certificate_policy("renew", hsmkit.CertificatePolicy("CN=renew.example.com", reuse_key=True))
    assert store.get_certificate_policy("renew").reuse_key
    v3 = store.renew_certificate("renew")
    assert isinstance(v3, CertificateProperties)
    assert (v3.version, v3.key_version) == (3, 2) and v3.serial != v2.serial
    assert [(v.version, v.key_version) for v in store.list_certificate_versions("renew")] == [(1, 1), (2, 2), (3, 2)]
    (old,) = load_bundle(store.get_certificate("renew", 1))
    assert spki_der(old.public_key()) == key_spki(store, "renew", 1)
    with pytest.raises(NotFound):
        store.get_certificate("renew", 9)


# --- Unknown issuer: a pending request, signed by pyca, merged --------------------------


def test_unknown_issuer_pyca_ca_signs_and_merge(store: hsmkit.Store) -> None:
    policy = hsmkit.CertificatePolicy("CN=web.example.com", issuer="Unknown", sans=["dns:web.example.com"])
    pending = store.create_certificate("web", policy)
    assert isinstance(pending, PendingCertificate)
    assert (pending.name, pending.key_version) == ("web", 1)
    assert "web" in repr(pending)
    with pytest.raises(NotFound):
        store.get_certificate("web")
    csr = x509.load_pem_x509_csr(pending.csr)
    assert csr == x509.load_der_x509_csr(pending.csr_der)
    assert csr.is_signature_valid
    assert spki_der(csr.public_key()) == key_spki(store, "web")
    assert store.get_pending_certificate("web").csr == pending.csr
    assert store.describe_certificate("web").pending is not None

    ca_key, ca_cert = pyca_ca()
    # A certificate for another key: refused, typed, and the request stays.
    stranger = ec.generate_private_key(ec.SECP256R1())
    wrong = pyca_issue(ca_key, ca_cert, "web.example.com", stranger.public_key())
    with pytest.raises(InvalidInput) as e:
        store.merge_certificate("web", pem(wrong) + pem(ca_cert))
    assert e.value.reason == "key-mismatch"
    assert store.get_pending_certificate("web").key_version == 1
    # A certificate that is not on the leaf's chain: refused too.
    leaf = pyca_issue(ca_key, ca_cert, "web.example.com", csr.public_key())
    with pytest.raises(InvalidInput) as e:
        store.merge_certificate("web", [pem(leaf), pem(wrong)])
    assert e.value.reason == "parameter"

    merged = store.merge_certificate("web", (pem(leaf) + pem(ca_cert)).decode())
    assert (merged.version, merged.key_version) == (1, 1)
    assert merged.issuer == "CN=pyca test CA" and merged.subject == "CN=web.example.com"
    with pytest.raises(NotFound):
        store.get_pending_certificate("web")
    got_leaf, got_ca = load_bundle(store.get_certificate("web"))
    assert got_leaf == leaf and got_ca == ca_cert
    got_leaf.verify_directly_issued_by(got_ca)
    got_ca.verify_directly_issued_by(got_ca)

    # Renewal of an Unknown issuer is a new pending request; a list of DER merges too.
    again = store.renew_certificate("web")
    assert isinstance(again, PendingCertificate) and again.key_version == 2
    csr2 = x509.load_der_x509_csr(again.csr_der)
    leaf2 = pyca_issue(ca_key, ca_cert, "web.example.com", csr2.public_key())
    v2 = store.merge_certificate(
        "web", [leaf2.public_bytes(serialization.Encoding.DER), ca_cert.public_bytes(serialization.Encoding.DER)]
    )
    assert (v2.version, v2.key_version) == (2, 2)
    assert load_bundle(store.get_certificate("web"))[0] == leaf2


def test_cancel_pending(store: hsmkit.Store) -> None:
    store.create_certificate("never", hsmkit.CertificatePolicy("CN=never", issuer="Unknown"))
    store.cancel_pending_certificate("never")
    with pytest.raises(NotFound):
        store.describe_certificate("never")
    with pytest.raises(NotFound):
        store.get_key("never")
    with pytest.raises(NotFound):
        store.cancel_pending_certificate("never")


# --- import ------------------------------------------------------------------------------


@pytest.mark.parametrize("key_type,spec", [("ec", "EC-P-256"), ("rsa", "RSA-2048")])
def test_import_pkcs12_made_by_pyca(store: hsmkit.Store, key_type: str, spec: str) -> None:
    ca_key, ca_cert = pyca_ca(key_type)
    leaf_key: Any = ec.generate_private_key(ec.SECP256R1()) if key_type == "ec" else rsa.generate_private_key(65537, 2048)
    leaf = pyca_issue(ca_key, ca_cert, "imported.example.com", leaf_key.public_key())
    p12 = pkcs12.serialize_key_and_certificates(
        b"imported", leaf_key, leaf, [ca_cert], serialization.BestAvailableEncryption(b"pw")
    )
    if not can_import(store, spec):
        with pytest.raises(hsmkit.Unsupported):
            store.import_certificate("imported", p12, password=b"pw")
        return

    with pytest.raises(AuthenticationError):
        store.import_certificate("imported", p12, password="not the password")
    with pytest.raises(AuthenticationError):
        store.import_certificate("imported", p12)  # DER, so PKCS#12, with the empty password
    with pytest.raises(InvalidInput):
        store.import_certificate("imported", p12[: len(p12) // 2], password=b"pw")
    with pytest.raises(NotFound):
        store.describe_certificate("imported")  # the failures wrote nothing

    v1 = store.import_certificate("imported", bytearray(p12), password=b"pw")
    assert (v1.version, v1.key_version, v1.subject) == (1, 1, "CN=imported.example.com")
    got_leaf, got_ca = load_bundle(store.get_certificate("imported"))
    assert (got_leaf, got_ca) == (leaf, ca_cert)
    got_leaf.verify_directly_issued_by(got_ca)
    assert key_spki(store, "imported") == spki_der(leaf_key.public_key())
    assert store.get_certificate_policy("imported").issuer == "Unknown"
    # The imported key signs; pyca verifies with the certificate's key.
    key = store.get_key("imported")
    if key_type == "ec":
        sig = key.sign("ES256", b"data", encoding="der")
        leaf_key.public_key().verify(sig, b"data", ec.ECDSA(hashes.SHA256()))
    else:
        sig = key.sign("RS256", b"data")
        leaf_key.public_key().verify(sig, b"data", padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(PermissionDenied):
        store.export_certificate_key("imported")

    # The same again from PEM, key between the certificates: the next version.
    v2 = store.import_certificate("imported", pem(ca_cert) + pkcs8_pem(leaf_key) + pem(leaf))
    assert (v2.version, v2.thumbprint_sha256) == (2, v1.thumbprint_sha256)
    assert load_bundle(store.get_certificate("imported"))[0] == leaf, "the leaf first, whatever the file order"


def test_import_pem_key_mismatch_and_export(store: hsmkit.Store) -> None:
    if not can_import(store, "EC-P-256"):
        pytest.skip("the backend does not import EC keys")
    ca_key, ca_cert = pyca_ca()
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = pyca_issue(ca_key, ca_cert, "pem.example.com", leaf_key.public_key())
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(InvalidInput) as e:
        store.import_certificate("pem", pem(leaf) + pem(ca_cert) + pkcs8_pem(other))
    assert e.value.reason == "key-mismatch"
    with pytest.raises(NotFound):
        store.describe_certificate("pem")
    with pytest.raises(InvalidInput):
        store.import_certificate("pem", pem(leaf))  # no private key

    exportable = store.backend_kind == "soft"
    try:
        store.import_certificate("pem", (pkcs8_pem(leaf_key) + pem(leaf)).decode(), exportable=exportable)
    except hsmkit.Unsupported:
        pytest.skip("the backend cannot import this key")
    if not exportable:
        with pytest.raises(PermissionDenied):
            store.export_certificate_key("pem")
        return
    exported = store.export_certificate_key("pem", 1)
    assert exported.startswith(b"-----BEGIN PRIVATE KEY-----")
    back = serialization.load_pem_private_key(exported, password=None)
    assert spki_der(back.public_key()) == spki_der(leaf_key.public_key())
    assert b"PRIVATE" not in repr(store.get_certificate("pem")).encode()


def test_import_refuses_garbage(store: hsmkit.Store) -> None:
    with pytest.raises(InvalidInput):
        store.import_certificate("junk", b"not der", password="pw")
    with pytest.raises(InvalidInput):
        store.import_certificate("junk", b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    with pytest.raises(InvalidInput):
        store.import_certificate("junk", 42)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        store.merge_certificate("junk", 42)  # type: ignore[arg-type]


# --- due certificates --------------------------------------------------------------------


def pyca_self_signed_aged(subject: str) -> bytes:
    """PEM of a pyca key and a self-signed certificate nine days into its ten: past 80 %."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=9))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return pem(cert) + pkcs8_pem(key)


def test_due_and_renew_due(store: hsmkit.Store) -> None:
    # The bindings have no test clock: certificates made by pyca that are old already.
    store.import_certificate("due", pyca_self_signed_aged("due"))
    store.create_certificate("fresh", hsmkit.CertificatePolicy("CN=fresh"))
    ext = store.create_certificate(
        "ext", hsmkit.CertificatePolicy("CN=ext", issuer="Unknown", validity_months=1, days_before_expiry=20)
    )
    assert isinstance(ext, PendingCertificate)
    assert [d.name for d in store.certificates_due()] == ["due"], "a pending request is not due"
    ca_key, ca_cert = pyca_ca()
    csr = x509.load_pem_x509_csr(ext.csr)
    # Issued for two weeks: its policy's trigger (20 days before expiry) has passed.
    store.merge_certificate("ext", pem(pyca_issue(ca_key, ca_cert, "ext", csr.public_key(), days=14)))

    due = store.certificates_due()
    assert [(d.name, d.version, d.issuer) for d in due] == [("due", 1, "Self"), ("ext", 1, "Unknown")]
    assert "80 %" in due[0].reason and due[0].expires.tzinfo is not None
    assert "20 days before expiry" in due[1].reason
    assert "due/1" in repr(due[0])

    renewed = store.renew_due_certificates()
    assert [(r.name, r.version, r.issuer) for r in renewed] == [("due", 1, "Self"), ("ext", 1, "Unknown")]
    r_due, r_ext = renewed
    assert r_due.error is None and isinstance(r_due.result, CertificateProperties)
    assert (r_due.result.version, r_due.result.key_version) == (2, 2)
    assert "renewed" in repr(r_due)
    assert r_ext.result is None and r_ext.error is None, "an Unknown issuer is reported, not renewed"
    assert len(store.list_certificate_versions("ext")) == 1
    (cert,) = load_bundle(store.get_certificate("due"))
    assert spki_der(cert.public_key()) == key_spki(store, "due", 2)
    cert.verify_directly_issued_by(cert)
    assert [d.name for d in store.certificates_due()] == ["ext"]

    # A certificate's key is never deleted alone: the certificate takes it along.
    with pytest.raises(InvalidInput):
        store.delete_key("due")
    # A trigger that would always fire is refused.
    with pytest.raises(InvalidInput):
        store.update_certificate_policy("due", hsmkit.CertificatePolicy("CN=due", validity_months=1, days_before_expiry=40))
    # A renewal that fails is reported with the exception it raised, not raised: here the
    # policy reuses the key and its version is disabled.
    store.import_certificate("stale", pyca_self_signed_aged("stale"))
    store.update_certificate_policy("stale", hsmkit.CertificatePolicy("CN=stale", reuse_key=True))
    store.update_key("stale", 1, enabled=False)
    (failed,) = [r for r in store.renew_due_certificates() if r.name == "stale"]
    assert failed.result is None and isinstance(failed.error, hsmkit.PermissionDenied), failed.error
    assert "failed" in repr(failed)


# --- soft delete -------------------------------------------------------------------------


def test_delete_recover_purge(store: hsmkit.Store) -> None:
    policy = hsmkit.CertificatePolicy("CN=gone")
    v1 = store.create_certificate("gone", policy)
    assert isinstance(v1, CertificateProperties)
    d = store.delete_certificate("gone")
    assert d.name == "gone" and d.deleted_on is not None and d.scheduled_purge is not None
    assert d.scheduled_purge > d.deleted_on and "deleted" in repr(d)
    for missing in (lambda: store.get_certificate("gone"), lambda: store.get_key("gone")):
        with pytest.raises(NotFound):
            missing()
    with pytest.raises(AlreadyExists):
        store.create_certificate("gone", policy)
    assert store.list_certificates() == []
    assert [x.name for x in store.list_deleted_certificates()] == ["gone"]
    assert store.get_deleted_certificate("gone").versions == [v1]

    recovered = store.recover_deleted_certificate("gone")
    assert recovered.deleted_on is None and recovered.current == v1
    (cert,) = load_bundle(store.get_certificate("gone"))
    assert spki_der(cert.public_key()) == key_spki(store, "gone")
    with pytest.raises(NotFound):
        store.recover_deleted_certificate("gone")
    with pytest.raises(NotFound):
        store.purge_deleted_certificate("gone")

    store.delete_certificate("gone")
    store.purge_deleted_certificate("gone")
    with pytest.raises(NotFound):
        store.get_deleted_certificate("gone")
    with pytest.raises(NotFound):
        store.get_key("gone")
    assert store.list_deleted_certificates() == []
    again = store.create_certificate("gone", policy)
    assert isinstance(again, CertificateProperties) and again.version == 1


def test_refusals_are_typed_and_write_nothing(store: hsmkit.Store) -> None:
    with pytest.raises(InvalidInput):
        store.create_certificate("aes", hsmkit.CertificatePolicy("CN=aes", "aes"))
    with pytest.raises(NotFound):
        store.describe_certificate("aes")
    with pytest.raises(InvalidInput) as e:
        store.create_certificate("no/slash", hsmkit.CertificatePolicy("CN=x"))
    assert e.value.reason == "name"
    with pytest.raises(NotFound):
        store.get_certificate("nothing")
    with pytest.raises(NotFound):
        store.merge_certificate("nothing", [])
    with pytest.raises(NotFound):
        store.renew_certificate("nothing")
    # A plain key of that name is not a certificate's.
    store.create_key("plain", "ec")
    with pytest.raises(AlreadyExists):
        store.create_certificate("plain", hsmkit.CertificatePolicy("CN=plain"))
    with pytest.raises(NotFound):
        store.describe_certificate("plain")
