"""Certificate requests and certificates signed by store keys, read and checked by
pyca/cryptography (an independent implementation)."""

from __future__ import annotations

import datetime
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import hsmkit
from hsmkit.exceptions import InvalidInput


def spki(pem: bytes) -> bytes:
    return serialization.load_pem_public_key(pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def cert_spki(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize("key_type,alg", [("ec", None), ("rsa", None), ("rsa", "PS256")])
def test_csr_loads_and_verifies_in_pyca(store: hsmkit.Store, key_type: str, alg: str | None) -> None:
    key = store.create_key("web", key_type)
    pem = key.create_csr(
        "CN=www.example.com,O=Example",
        sans=["dns:www.example.com", "ip:192.0.2.7", "email:ops@example.com", "uri:https://example.com/"],
        key_usage=["digitalSignature"],
        extended_key_usage=["serverAuth", "clientAuth"],
        signature_algorithm=alg,
    )
    assert isinstance(pem, bytes) and pem.startswith(b"-----BEGIN CERTIFICATE REQUEST-----")
    csr = x509.load_pem_x509_csr(pem)
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "www.example.com"
    assert csr.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == spki(key.public_key_pem())
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["www.example.com"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("192.0.2.7")]
    assert san.get_values_for_type(x509.RFC822Name) == ["ops@example.com"]
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["https://example.com/"]
    eku = csr.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]


def test_self_signed_ca_issues_leaf_pyca_verifies(store: hsmkit.Store) -> None:
    ca_key = store.create_key("ca", "ec", curve="P-384")
    ca_pem = ca_key.self_signed_certificate("CN=Test CA,O=Example", ca=True, path_len=1, validity_days=30)
    ca = x509.load_pem_x509_certificate(ca_pem)
    ca.verify_directly_issued_by(ca)
    assert cert_spki(ca) == spki(ca_key.public_key_pem())
    bc = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 1
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    lifetime = ca.not_valid_after_utc - ca.not_valid_before_utc
    assert abs(lifetime - datetime.timedelta(days=30)) < datetime.timedelta(seconds=5)

    leaf_key = store.create_key("leaf", "rsa")
    csr = leaf_key.create_csr("CN=svc.example.com", sans=["dns:svc.example.com"], extended_key_usage=["serverAuth"])
    leaf_pem = ca_key.issue_certificate(ca_pem, csr, validity_days=7)
    leaf = x509.load_pem_x509_certificate(leaf_pem)
    leaf.verify_directly_issued_by(ca)
    assert leaf.issuer == ca.subject
    assert cert_spki(leaf) == spki(leaf_key.public_key_pem())
    assert leaf.subject.rfc4514_string() == "CN=svc.example.com"
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["svc.example.com"]
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert list(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH
    ]
    # The leaf is not a CA: it issues nothing.
    with pytest.raises(InvalidInput):
        leaf_key.issue_certificate(leaf_pem, csr)
    # Not the CA certificate's key.
    with pytest.raises(InvalidInput) as e:
        leaf_key.issue_certificate(ca_pem, csr)
    assert e.value.reason == "key-mismatch"
    # The DER forms are taken too; an intermediate CA under the root.
    der_ca = ca.public_bytes(serialization.Encoding.DER)
    der_csr = x509.load_pem_x509_csr(csr).public_bytes(serialization.Encoding.DER)
    sub_pem = ca_key.issue_certificate(der_ca, der_csr, ca=True)
    sub = x509.load_pem_x509_certificate(sub_pem)
    sub.verify_directly_issued_by(ca)
    assert sub.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0


def test_self_signed_end_entity(store: hsmkit.Store) -> None:
    key = store.create_key("self", "rsa")
    pem = key.self_signed_certificate(
        "/C=GB/O=Example/CN=self.example",
        sans=["dns:self.example"],
        key_usage=["digitalSignature", "keyEncipherment"],
        signature_algorithm="PS384",
    )
    cert = x509.load_pem_x509_certificate(pem)
    cert.verify_directly_issued_by(cert)
    assert cert.subject.rfc4514_string() == "CN=self.example,O=Example,C=GB"
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.key_encipherment and not ku.key_cert_sign


def test_tampered_csr_is_refused(store: hsmkit.Store) -> None:
    ca_key = store.create_key("ca", "ec")
    ca_pem = ca_key.self_signed_certificate("CN=CA", ca=True)
    leaf_key = store.create_key("leaf", "ec")
    der = bytearray(
        x509.load_pem_x509_csr(leaf_key.create_csr("CN=aaaa")).public_bytes(serialization.Encoding.DER)
    )
    i = der.index(b"aaaa")
    der[i] = ord("b")
    # Proof of possession fails: the request is not what its key signed.
    with pytest.raises(InvalidInput, match="does not verify") as e:
        ca_key.issue_certificate(ca_pem, bytes(der))
    assert e.value.reason == "malformed"


@pytest.mark.parametrize(
    "kw",
    [
        {"sans": ["www.example.com"]},
        {"sans": ["dns:has space"]},
        {"sans": ["ip:not-an-address"]},
        {"sans": ["x400:whatever"]},
        {"key_usage": ["signEverything"]},
        {"extended_key_usage": ["anyPurpose?"]},
        {"signature_algorithm": "RSA-OAEP"},
    ],
)
def test_bad_arguments_are_invalid_input(store: hsmkit.Store, kw: dict[str, object]) -> None:
    key = store.create_key("k", "ec")
    with pytest.raises(InvalidInput):
        key.create_csr("CN=x", **kw)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        key.self_signed_certificate("CN=x", **kw)  # type: ignore[arg-type]


def test_bad_pem_and_keys(store: hsmkit.Store) -> None:
    key = store.create_key("k", "ec")
    with pytest.raises(InvalidInput):
        key.issue_certificate(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n", b"junk")
    with pytest.raises(InvalidInput):
        key.self_signed_certificate("CN=x", validity_days=0)
    aes = store.create_key("aes", "aes")
    with pytest.raises(InvalidInput):
        aes.create_csr("CN=x")
