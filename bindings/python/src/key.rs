//! `hsmkit.Key` and `hsmkit.KeyProperties`.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use hsmkit::{
    EncryptionAlgorithm, ErrorKind, Key as CoreKey, KeyInfo, KeyMaterial, KeySpec, KeyWrapAlgorithm,
    SignInput, SignatureAlgorithm, SignatureFormat,
};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::convert::{bytes_arg, json_to_py, ops_list, opt_datetime, to_datetime};
use crate::errors::PyResult;
use crate::pki;

/// `"raw"` (r||s, JOSE) or `"der"` (X9.62, what OpenSSL and pyca read) for ECDSA; RSA,
/// EdDSA and HMAC signatures are the same bytes either way (the core's [`SignatureFormat`]).
fn encoding(e: &str) -> PyResult<SignatureFormat> {
    match e {
        "raw" => Ok(SignatureFormat::Raw),
        "der" => Ok(SignatureFormat::Der),
        _ => Err(hsmkit::Error::malformed(format!("encoding must be 'raw' or 'der', not '{e}'")).into()),
    }
}

fn sign_input(data: &[u8], prehashed: bool) -> SignInput<'_> {
    if prehashed { SignInput::Digest(data) } else { SignInput::Message(data) }
}

/// The properties of a key version, shared by `Key` and `KeyProperties`.
fn size_or_curve<'py>(py: Python<'py>, spec: KeySpec) -> PyResult<Bound<'py, PyAny>> {
    Ok(match spec {
        KeySpec::Rsa { bits } => bits.into_pyobject(py)?.into_any(),
        KeySpec::Ec(c) => c.name().into_pyobject(py)?.into_any(),
        KeySpec::Aes(s) => s.bits().into_pyobject(py)?.into_any(),
        KeySpec::Hmac { bits } => bits.into_pyobject(py)?.into_any(),
        KeySpec::Ed25519 => "Ed25519".into_pyobject(py)?.into_any(),
    })
}

/// Metadata of one key version (no key material): what `list_versions` and `update_key`
/// return, and what a `Key` exposes as attributes too.
#[pyclass(frozen, module = "hsmkit", name = "KeyProperties")]
pub(crate) struct KeyProperties {
    pub(crate) info: KeyInfo,
}

/// One `#[pymethods]` block per class (pyo3 allows one without `multiple-pymethods`):
/// the shared property getters, then the class's own methods.
macro_rules! with_info_getters {
    ($t:ty, $info:ident, { $($own:tt)* }) => {
        #[pymethods]
        impl $t {
            $($own)*

            /// The key name.
            #[getter]
            fn name(&self) -> &str {
                &self.$info().name
            }
            /// The version number (1 for a new key).
            #[getter]
            fn version(&self) -> u32 {
                self.$info().version
            }
            /// `name/version`, the JWK `kid`.
            #[getter]
            fn kid(&self) -> String {
                self.$info().kid()
            }
            /// `"rsa"`, `"ec"` or `"aes"`.
            #[getter]
            fn key_type(&self) -> String {
                // As `create_key` takes it.
                self.$info().spec.key_type().name().to_ascii_lowercase()
            }
            /// Bits for RSA and AES (`2048`, `256`), the curve for EC (`"P-256"`).
            #[getter]
            fn size_or_curve<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                size_or_curve(py, self.$info().spec)
            }
            /// The operations the key allows: `["sign", "verify"]`.
            #[getter]
            fn allowed_ops(&self) -> Vec<&'static str> {
                ops_list(self.$info().attributes.allowed())
            }
            /// A disabled key refuses every operation.
            #[getter]
            fn enabled(&self) -> bool {
                self.$info().attributes.enabled
            }
            /// Before this time the key refuses every operation but verify.
            #[getter]
            fn not_before<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
                opt_datetime(py, self.$info().attributes.not_before)
            }
            /// From this time on the key refuses every operation but verify.
            #[getter]
            fn expires<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
                opt_datetime(py, self.$info().attributes.expires)
            }
            /// Free-form tags.
            #[getter]
            fn tags(&self) -> BTreeMap<String, String> {
                self.$info().attributes.tags.clone()
            }
            /// Whether the private or secret part may be exported.
            #[getter]
            fn exportable(&self) -> bool {
                self.$info().attributes.exportable
            }
            /// False for an imported public key.
            #[getter]
            fn has_private(&self) -> bool {
                self.$info().has_private
            }
            /// When the version was created (UTC).
            #[getter]
            fn created<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                to_datetime(py, self.$info().created)
            }
            /// When its attributes last changed (UTC).
            #[getter]
            fn updated<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                to_datetime(py, self.$info().updated)
            }
        }
    };
}

impl KeyProperties {
    fn info(&self) -> &KeyInfo {
        &self.info
    }
}

with_info_getters!(KeyProperties, info, {
    fn __repr__(&self) -> String {
        format!("<KeyProperties {} {}>", self.info.kid(), self.info.spec)
    }
});

/// The identity of one `hsmkit.Store` object, shared by every `Key` it hands out: what
/// makes keys of two stores unequal even when their `kid`s are the same. Two stores opened
/// separately (even on the same path or token) have different identities.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct StoreId(u64);

impl StoreId {
    /// A new identity, never handed out before in this process.
    pub(crate) fn fresh() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        StoreId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// An open key version. Operations run in the backend; private and secret material never
/// leaves it (unless the key was created exportable, software backend only).
#[pyclass(frozen, module = "hsmkit", name = "Key")]
pub(crate) struct Key {
    key: CoreKey,
    store: StoreId,
    /// The public key as SPKI DER, for `==` and `hash` (`None`: the key has no public
    /// part, such as an AES key). Read once, on first use.
    public: OnceLock<Option<Vec<u8>>>,
}

impl Key {
    pub(crate) fn new(key: CoreKey, store: StoreId) -> Self {
        Key { key, store, public: OnceLock::new() }
    }

    fn info(&self) -> &KeyInfo {
        self.key.info()
    }

    /// What identifies the key material beyond its name: the SPKI DER of the public key
    /// (held in memory by every backend, so no token call), or `None` for a key without a
    /// public part (symmetric keys, or a token key whose public half is not on the token).
    fn public_der(&self) -> PyResult<Option<&[u8]>> {
        if let Some(p) = self.public.get() {
            return Ok(p.as_deref());
        }
        let der = match self.key.public_key_der() {
            Ok(der) => Some(der),
            Err(e) if e.kind() == ErrorKind::Unsupported => None,
            Err(e) => return Err(e.into()),
        };
        Ok(self.public.get_or_init(|| der).as_deref())
    }
}

with_info_getters!(Key, info, {
    /// Signs `data` (or, with `prehashed=True`, a digest of the algorithm's hash).
    #[pyo3(signature = (algorithm, data, *, prehashed = false, encoding = "raw"))]
    fn sign<'py>(
        &self,
        py: Python<'py>,
        algorithm: &str,
        data: &Bound<'py, PyAny>,
        prehashed: bool,
        encoding: &str,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let alg: SignatureAlgorithm = algorithm.parse()?;
        let format = self::encoding(encoding)?;
        let data = bytes_arg(data, "data")?;
        let sig = py.detach(|| self.key.sign_with(alg, sign_input(&data, prehashed), format))?;
        Ok(PyBytes::new(py, &sig))
    }

    /// Verifies a signature; raises `InvalidSignature` if it does not verify.
    #[pyo3(signature = (algorithm, data, signature, *, prehashed = false, encoding = "raw"))]
    fn verify(
        &self,
        py: Python<'_>,
        algorithm: &str,
        data: &Bound<'_, PyAny>,
        signature: &Bound<'_, PyAny>,
        prehashed: bool,
        encoding: &str,
    ) -> PyResult<()> {
        let alg: SignatureAlgorithm = algorithm.parse()?;
        let format = self::encoding(encoding)?;
        let data = bytes_arg(data, "data")?;
        let sig = bytes_arg(signature, "signature")?;
        py.detach(|| self.key.verify_with(alg, sign_input(&data, prehashed), &sig, format))?;
        Ok(())
    }

    /// RSA-OAEP / RSA-OAEP-256 encryption, with an optional OAEP label.
    #[pyo3(signature = (algorithm, plaintext, *, label = None))]
    fn encrypt<'py>(
        &self,
        py: Python<'py>,
        algorithm: &str,
        plaintext: &Bound<'py, PyAny>,
        label: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let alg: EncryptionAlgorithm = algorithm.parse()?;
        let pt = bytes_arg(plaintext, "plaintext")?;
        let label = label.map(|l| bytes_arg(l, "label")).transpose()?;
        let ct = py.detach(|| {
            self.key.encrypt_with_label(alg, &pt, label.as_deref().map_or(&[][..], |l| l.as_slice()))
        })?;
        Ok(PyBytes::new(py, &ct))
    }

    /// RSA-OAEP decryption; any failure is `DecryptionFailed`.
    #[pyo3(signature = (algorithm, ciphertext, *, label = None))]
    fn decrypt<'py>(
        &self,
        py: Python<'py>,
        algorithm: &str,
        ciphertext: &Bound<'py, PyAny>,
        label: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let alg: EncryptionAlgorithm = algorithm.parse()?;
        let ct = bytes_arg(ciphertext, "ciphertext")?;
        let label = label.map(|l| bytes_arg(l, "label")).transpose()?;
        let pt = py.detach(|| {
            self.key.decrypt_with_label(alg, &ct, label.as_deref().map_or(&[][..], |l| l.as_slice()))
        })?;
        Ok(PyBytes::new(py, &pt))
    }

    /// Wraps key bytes: A128KW..A256KW, A128KWP..A256KWP with an AES key; RSA-OAEP(-256)
    /// with an RSA key.
    fn wrap_key<'py>(
        &self,
        py: Python<'py>,
        algorithm: &str,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let alg: KeyWrapAlgorithm = algorithm.parse()?;
        let k = bytes_arg(key, "key")?;
        let w = py.detach(|| self.key.wrap_key(alg, &k))?;
        Ok(PyBytes::new(py, &w))
    }

    /// Unwraps what `wrap_key` made; any failure is `DecryptionFailed`.
    fn unwrap_key<'py>(
        &self,
        py: Python<'py>,
        algorithm: &str,
        wrapped: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let alg: KeyWrapAlgorithm = algorithm.parse()?;
        let w = bytes_arg(wrapped, "wrapped")?;
        let k = py.detach(|| self.key.unwrap_key(alg, &w))?;
        Ok(PyBytes::new(py, &k))
    }

    /// The public key as PEM (SubjectPublicKeyInfo) bytes, as pyca's `public_bytes`
    /// returns it and `load_pem_public_key` takes it; RSA and EC keys.
    fn public_key_pem<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let pem = py.detach(|| self.key.public_key_pem())?;
        Ok(PyBytes::new(py, pem.as_bytes()))
    }

    /// The public key as DER (SubjectPublicKeyInfo).
    fn public_key_der<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let der = py.detach(|| self.key.public_key_der())?;
        Ok(PyBytes::new(py, &der))
    }

    /// The public key as a JWK dict, with `kid` = `name/version`.
    fn public_key_jwk<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let jwk = py.detach(|| self.key.public_key_jwk())?;
        json_to_py(py, &jwk)
    }

    /// The key material of a key created `exportable=True` (software backend only):
    /// PKCS#8 DER for RSA, EC and Ed25519 keys, the raw key for AES.
    fn export_key<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let m = py.detach(|| self.key.export())?;
        let bytes = match &m {
            KeyMaterial::Aes(k) => hsmkit::Zeroizing::new(k.to_vec()),
            // HMAC keys never export (the core refuses them); PKCS#8 has no form for them.
            KeyMaterial::RsaPrivate(_)
            | KeyMaterial::EcPrivate(_)
            | KeyMaterial::Ed25519Private(_)
            | KeyMaterial::Hmac(_)
            | KeyMaterial::Public(_) => m.to_pkcs8_der()?,
        };
        Ok(PyBytes::new(py, &bytes))
    }

    /// Signs `payload` into a compact JWS (RFC 7515) with `algorithm` (`"ES256"`,
    /// `"RS256"`, `"EdDSA"`, ...). The protected header is `header`'s members plus `alg`
    /// and `kid` (`name/version`), which hsmkit sets.
    #[pyo3(signature = (algorithm, payload, header = None))]
    fn jws_sign(
        &self,
        py: Python<'_>,
        algorithm: &str,
        payload: &Bound<'_, PyAny>,
        header: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        let alg: SignatureAlgorithm = algorithm.parse()?;
        let payload = bytes_arg(payload, "payload")?;
        let header = header.map(|h| pki::json_object(h, "header")).transpose()?;
        Ok(py.detach(|| hsmkit::jose::jws_sign(&self.key, alg, header.as_ref(), &payload))?)
    }

    /// Signs a JWT (RFC 7519) with `claims` (a dict) plus `exp` = now + `expires_in`
    /// (seconds or a timedelta), `nbf` = `not_before` (an aware datetime) and `iat` = now
    /// (unless `issued_at=False`). The header has `typ` `JWT`, `alg` and `kid`.
    #[pyo3(signature = (algorithm, claims, *, expires_in = None, not_before = None, issued_at = true,
                        header = None))]
    #[allow(clippy::too_many_arguments)]
    fn jwt_sign(
        &self,
        py: Python<'_>,
        algorithm: &str,
        claims: &Bound<'_, PyAny>,
        expires_in: Option<&Bound<'_, PyAny>>,
        not_before: Option<&Bound<'_, PyAny>>,
        issued_at: bool,
        header: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        let alg: SignatureAlgorithm = algorithm.parse()?;
        let claims = pki::json_object(claims, "claims")?;
        let options = pki::jwt_sign_options(expires_in, not_before, issued_at, header)?;
        Ok(py.detach(|| hsmkit::jose::jwt_sign(&self.key, alg, &claims, &options))?)
    }

    /// A PKCS#10 certificate request (PEM bytes) for this key, signed by it. `subject` is
    /// an RFC 4514 name (`"CN=host,O=Example"`) or OpenSSL's `"/O=Example/CN=host"`;
    /// `sans` are `"dns:H"`, `"ip:A"`, `"email:E"`, `"uri:U"`; key usages as
    /// `"digitalSignature"`, ...; extended key usages as `"serverAuth"`, ...
    #[pyo3(signature = (subject, *, sans = Vec::new(), key_usage = Vec::new(),
                        extended_key_usage = Vec::new(), ca = false, path_len = None,
                        signature_algorithm = None))]
    #[allow(clippy::too_many_arguments)]
    fn create_csr<'py>(
        &self,
        py: Python<'py>,
        subject: &str,
        sans: Vec<String>,
        key_usage: Vec<String>,
        extended_key_usage: Vec<String>,
        ca: bool,
        path_len: Option<u8>,
        signature_algorithm: Option<&str>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let params = pki::certificate_params(
            subject,
            &sans,
            &key_usage,
            &extended_key_usage,
            ca,
            path_len,
            1,
            signature_algorithm,
        )?;
        let pem = py.detach(|| hsmkit::x509::create_csr(&self.key, &params)?.to_pem())?;
        Ok(PyBytes::new(py, pem.as_bytes()))
    }

    /// A certificate (PEM bytes) for this key, signed by itself: a root CA with
    /// `ca=True`. Arguments as for `create_csr`; valid for `validity_days` from now.
    #[pyo3(signature = (subject, *, sans = Vec::new(), key_usage = Vec::new(),
                        extended_key_usage = Vec::new(), ca = false, path_len = None,
                        validity_days = 365, signature_algorithm = None))]
    #[allow(clippy::too_many_arguments)]
    fn self_signed_certificate<'py>(
        &self,
        py: Python<'py>,
        subject: &str,
        sans: Vec<String>,
        key_usage: Vec<String>,
        extended_key_usage: Vec<String>,
        ca: bool,
        path_len: Option<u8>,
        validity_days: u32,
        signature_algorithm: Option<&str>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let params = pki::certificate_params(
            subject,
            &sans,
            &key_usage,
            &extended_key_usage,
            ca,
            path_len,
            validity_days,
            signature_algorithm,
        )?;
        let pem = py.detach(|| hsmkit::x509::self_signed(&self.key, &params)?.to_pem())?;
        Ok(PyBytes::new(py, pem.as_bytes()))
    }

    /// Issues a certificate (PEM bytes) for the request `csr_pem` with this key as the CA
    /// key of `ca_cert_pem` (PEM or DER). The request's signature is checked; subject,
    /// alternative names and usages come from it; validity ends no later than the CA's.
    #[pyo3(signature = (ca_cert_pem, csr_pem, *, ca = false, path_len = None, validity_days = 365,
                        signature_algorithm = None))]
    #[allow(clippy::too_many_arguments)]
    fn issue_certificate<'py>(
        &self,
        py: Python<'py>,
        ca_cert_pem: &Bound<'py, PyAny>,
        csr_pem: &Bound<'py, PyAny>,
        ca: bool,
        path_len: Option<u8>,
        validity_days: u32,
        signature_algorithm: Option<&str>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let ca_cert = pki::certificate_arg(ca_cert_pem, "ca_cert_pem")?;
        let csr = pki::csr_arg(csr_pem, "csr_pem")?;
        let params = pki::issue_params(ca, path_len, validity_days, signature_algorithm)?;
        let pem = py.detach(|| hsmkit::x509::issue(&self.key, &ca_cert, &csr, &params)?.to_pem())?;
        Ok(PyBytes::new(py, pem.as_bytes()))
    }

    /// The same key: from the same `Store` object (keys of two stores are never equal,
    /// even two stores opened on the same path), the same `kid` (name and version), and
    /// the same public key (SPKI DER). AES keys have no public part: for them, store and
    /// `kid` decide.
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        let Ok(other) = other.cast::<Key>() else { return Ok(false) };
        let other = other.get();
        Ok(self.store == other.store
            && self.info().kid() == other.info().kid()
            && self.public_der()? == other.public_der()?)
    }

    /// Consistent with `==`: store, `kid` and public key.
    fn __hash__(&self) -> PyResult<u64> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.store.hash(&mut h);
        self.info().kid().hash(&mut h);
        self.public_der()?.hash(&mut h);
        Ok(h.finish())
    }

    fn __repr__(&self) -> String {
        format!("<Key {} {}>", self.info().kid(), self.info().spec)
    }

    /// The properties alone (a snapshot).
    #[getter]
    fn properties(&self) -> KeyProperties {
        KeyProperties { info: self.info().clone() }
    }
});
