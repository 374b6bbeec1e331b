//! Key metadata kept by the token, authenticated by the token.
//!
//! Every document (a key's description, the store settings) is signed with the token's
//! **metadata signer**: an RSA-2048 key pair hsmkit makes on first write, labelled
//! `.hsmkit-metadata-signer`, `CKA_PRIVATE`, `CKA_SENSITIVE`, never extractable, sign
//! only. Its public key is read from the private object (RSA private objects carry the
//! modulus and exponent), so a session that never logged in can neither plant a signer
//! nor a document: it cannot create private objects, and a public object it plants is not
//! looked at. A signature rather than a MAC because every token signs with
//! `CKM_RSA_PKCS`, and reads then verify in software, with no token call.
//!
//! Two stores use the signer: [`TokenMetadata`] keeps each document in a private token
//! `CKO_DATA` object (label = key name, application = `hsmkit`), and [`FileMetadata`]
//! keeps them all in one file, for tokens that refuse or do not persist data objects.
//! Both only report a write done once it reads back.

use hsmkit::UnsupportedReason;
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use hsmkit::metadata::{RecordEdit, RecordKind};
use hsmkit::{
    BackendKey, DescriptionEdit, Error, HashAlg, KeyDescription, MetadataStore, PublicKey, Result,
    SettingsEdit, SignatureAlgorithm, StoreSettings,
};
use serde_json::{Value, json};

use crate::OpResult;
use crate::context::Token;
use crate::error::{KIND, OpError};

pub(crate) const APPLICATION: &[u8] = b"hsmkit";
const SETTINGS_LABEL: &str = ".hsmkit-settings";
const SIGNER_LABEL: &str = ".hsmkit-metadata-signer";
const PROBE_LABEL: &str = ".hsmkit-probe";
/// What every signature covers first, so a signature over anything else never verifies.
const CONTEXT: &[u8] = b"hsmkit-metadata-v1\0";

fn secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

fn meta_err(function: &str, msg: impl Into<String>) -> Error {
    Error::backend(KIND, function, msg.into())
}

/// A label or name as it may be printed: escaped, never raw (it comes from the token).
fn shown(label: &[u8]) -> String {
    String::from_utf8_lossy(label).escape_debug().to_string()
}

/// The template that finds hsmkit's private data objects (all, or the one labelled).
fn data_template(label: Option<&str>) -> Vec<Attribute> {
    let mut t = vec![
        Attribute::Class(ObjectClass::DATA),
        Attribute::Application(APPLICATION.to_vec()),
        Attribute::Token(true),
        Attribute::Private(true),
    ];
    if let Some(l) = label {
        t.push(Attribute::Label(l.as_bytes().to_vec()));
    }
    t
}

/// A metadata read error that names the object read (its label, escaped).
fn labelled<T>(r: OpResult<T>, label: &str) -> OpResult<T> {
    r.map_err(|e| match e {
        OpError::Hsm(Error::Backend(b)) if b.message == "a metadata object has no CKA_VALUE" => meta_err(
            "C_GetAttributeValue",
            format!("the metadata object '{}' has no CKA_VALUE", label.escape_debug()),
        )
        .into(),
        e @ (OpError::Hsm(_) | OpError::Ck(_)) => e,
    })
}

#[allow(clippy::wildcard_enum_match_arm, reason = "cryptoki's Attribute: only CKA_VALUE is read")]
fn value_of(s: &Session, h: ObjectHandle) -> OpResult<Vec<u8>> {
    let v = s.get_attributes(h, &[AttributeType::Value])?;
    v.into_iter()
        .find_map(|a| match a {
            Attribute::Value(v) => Some(v),
            _ => None,
        })
        .ok_or_else(|| meta_err("C_GetAttributeValue", "a metadata object has no CKA_VALUE").into())
}

/// At most one object matches, or a typed error naming every candidate: never "first
/// match".
pub(crate) fn at_most_one(what: &str, found: Vec<ObjectHandle>) -> Result<Option<ObjectHandle>> {
    match found.as_slice() {
        [] => Ok(None),
        [h] => Ok(Some(*h)),
        many => Err(meta_err(
            "C_FindObjects",
            format!(
                "{} objects match {what} (handles {}): refusing to choose one; remove the extra objects",
                many.len(),
                many.iter().map(|h| h.to_string()).collect::<Vec<_>>().join(", ")
            ),
        )),
    }
}

/// The token's metadata signer: its private object and its public key in software.
struct Signer {
    handle: ObjectHandle,
    epoch: u64,
    public: Box<dyn BackendKey>,
}

fn signer_template() -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(KeyType::RSA),
        Attribute::Label(SIGNER_LABEL.as_bytes().to_vec()),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
    ]
}

fn public_ops(public: &PublicKey) -> Result<Box<dyn BackendKey>> {
    let info = hsmkit::KeyInfo {
        name: "metadata-signer".into(),
        version: 1,
        spec: public.spec(),
        attributes: hsmkit::KeyAttributes::default(),
        has_private: false,
        created: UNIX_EPOCH,
        updated: UNIX_EPOCH,
        binding: hsmkit::KeyBinding::default(),
    };
    hsmkit_engine::public_key_ops(info, public)
}

/// Signs and verifies documents with the token's metadata signer.
struct Authenticator {
    token: Arc<Token>,
    signer: Mutex<Option<Arc<Signer>>>,
}

impl Authenticator {
    fn new(token: Arc<Token>) -> Self {
        Authenticator { token, signer: Mutex::new(None) }
    }

    fn message(label: &str, body: &[u8]) -> Vec<u8> {
        [CONTEXT, label.as_bytes(), b"\0", body].concat()
    }

    /// The signer, found (or, with `create`, made) on the token.
    fn signer(&self, s: &Session, create: bool) -> OpResult<Option<Arc<Signer>>> {
        let epoch = self.token.epoch();
        if let Ok(g) = self.signer.lock()
            && let Some(sig) = g.as_ref().filter(|sig| sig.epoch == epoch)
        {
            return Ok(Some(sig.clone()));
        }
        let handle = match at_most_one("the metadata signer", s.find_objects(&signer_template())?)? {
            Some(h) => h,
            None if create => self.make_signer(s)?,
            None => return Ok(None),
        };
        let public = crate::export::read_public(s, handle)?
            .transpose()?
            .ok_or_else(|| meta_err("C_GetAttributeValue", "the metadata signer has no RSA public key"))?;
        let signer = Arc::new(Signer { handle, epoch, public: public_ops(&public)? });
        if let Ok(mut g) = self.signer.lock() {
            *g = Some(signer.clone());
        }
        Ok(Some(signer))
    }

    fn make_signer(&self, s: &Session) -> OpResult<ObjectHandle> {
        let public = |token: bool| {
            [
                Attribute::Token(token),
                Attribute::Label(SIGNER_LABEL.as_bytes().to_vec()),
                Attribute::ModulusBits(2048u64.into()),
                Attribute::PublicExponent(vec![1, 0, 1]),
                Attribute::Verify(true),
            ]
        };
        let mut private = signer_template();
        private.extend([
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Id(b"hsmkit".to_vec()),
        ]);
        let (_public, k) = match s.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public(false), &private)
        {
            Ok(pair) => pair,
            // Tokens that refuse session objects: a token public object, kept. The public
            // key is read from the private object, so nothing uses it; but destroying it
            // would destroy the token's lowest-numbered object on a fresh token, which
            // makes tpm2-pkcs11 1.9 hand out handles still in use ([`crate::objects`]).
            Err(e) if crate::objects::refuses_session_objects(&e) => {
                s.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public(true), &private)?
            }
            Err(e) => return Err(e.into()),
        };
        let mut expect = signer_template();
        expect.push(Attribute::Id(b"hsmkit".to_vec()));
        if !crate::objects::names(s, k, &expect)? {
            return Err(crate::objects::reused("C_GenerateKeyPair").into());
        }
        tracing::info!(target: "hsmkit::pkcs11", token = %self.token.label, "made the metadata signer");
        Ok(k)
    }

    fn sign(&self, s: &Session, label: &str, body: &[u8]) -> OpResult<Vec<u8>> {
        let signer = self
            .signer(s, true)?
            .ok_or_else(|| meta_err("C_FindObjects", "no metadata signer on the token"))?;
        let digest = crate::crypto().digest(HashAlg::Sha256, &Self::message(label, body));
        let info = HashAlg::Sha256.digest_info(&digest)?;
        Ok(crate::oneshot::sign(s, &Mechanism::RsaPkcs, signer.handle, &info)?)
    }

    /// Checks a signature; a missing signer means nothing can verify.
    fn verify(&self, s: &Session, label: &str, body: &[u8], sig: &[u8]) -> OpResult<()> {
        let signer =
            self.signer(s, false)?.ok_or_else(|| tampered(label, "the token has no metadata signer"))?;
        let digest = crate::crypto().digest(HashAlg::Sha256, &Self::message(label, body));
        signer
            .public
            .verify_digest(SignatureAlgorithm::Rs256, &digest, sig)
            .map_err(|_| tampered(label, "its signature does not verify").into())
    }

    /// The signed form of a document.
    fn seal(&self, s: &Session, label: &str, doc: &Value) -> OpResult<Vec<u8>> {
        let body = doc.to_string();
        let sig = self.sign(s, label, body.as_bytes())?;
        Ok(json!({ "hsmkit-metadata": 1, "body": body, "sig": hex(&sig) }).to_string().into_bytes())
    }

    /// The document inside a signed form, once its signature verifies.
    fn open(&self, s: &Session, label: &str, bytes: &[u8]) -> OpResult<Value> {
        let outer: Value =
            serde_json::from_slice(bytes).map_err(|_| tampered(label, "it is not hsmkit's"))?;
        let (Some(1), Some(body), Some(sig)) = (
            outer.get("hsmkit-metadata").and_then(Value::as_u64),
            outer.get("body").and_then(Value::as_str),
            outer.get("sig").and_then(Value::as_str).and_then(unhex),
        ) else {
            return Err(tampered(label, "it is not a signed hsmkit document").into());
        };
        self.verify(s, label, body.as_bytes(), &sig)?;
        Ok(serde_json::from_str(body).map_err(|_| tampered(label, "its body is not JSON"))?)
    }
}

fn tampered(label: &str, why: &str) -> Error {
    meta_err(
        "metadata",
        format!("the metadata document '{}' is refused: {why} (planted or edited?)", label.escape_debug()),
    )
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len() / 2).map(|i| s.get(2 * i..2 * i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect()
}

fn doc_of(name: &str, v: &Value) -> Result<KeyDescription> {
    let d = KeyDescription::from_json(v)?;
    if d.name != name {
        return Err(tampered(name, "it describes another key"));
    }
    Ok(d)
}

/// Key metadata in private, signed `CKO_DATA` objects on the token.
pub(crate) struct TokenMetadata {
    token: Arc<Token>,
    auth: Authenticator,
}

impl std::fmt::Debug for TokenMetadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenMetadata").field("token", &self.token).finish_non_exhaustive()
    }
}

/// What a label's object should hold after a write: its bytes, or nothing.
type Expected = Option<Vec<u8>>;

impl TokenMetadata {
    pub(crate) fn new(token: Arc<Token>) -> Self {
        TokenMetadata { auth: Authenticator::new(token.clone()), token }
    }

    fn find(s: &Session, label: &str) -> OpResult<Option<ObjectHandle>> {
        Ok(at_most_one(
            &format!("metadata '{}'", label.escape_debug()),
            s.find_objects(&data_template(Some(label)))?,
        )?)
    }

    fn read_value(&self, s: &Session, label: &str) -> OpResult<Option<(ObjectHandle, Value)>> {
        match Self::find(s, label)? {
            Some(h) => Ok(Some((h, self.auth.open(s, label, &labelled(value_of(s, h), label)?)?))),
            None => Ok(None),
        }
    }

    /// Replaces (or creates, or with `None` destroys) the object holding `label`.
    fn write(
        &self,
        s: &Session,
        existing: Option<ObjectHandle>,
        label: &str,
        doc: Option<&Value>,
    ) -> OpResult<Expected> {
        let Some(doc) = doc else {
            if let Some(h) = existing {
                crate::objects::destroy(s, h, &data_template(Some(label)))?;
            }
            return Ok(None);
        };
        let bytes = self.auth.seal(s, label, doc)?;
        // A new object, then the old one destroyed: never C_SetAttributeValue of
        // CKA_VALUE, which some tokens accept and do not keep (tpm2-pkcs11 1.9 keeps it
        // for this process only), while object creation and destruction persist.
        let mut t = data_template(Some(label));
        t.push(Attribute::Value(bytes.clone()));
        let h = s.create_object(&t).map_err(|e| refused_data_objects(&e).unwrap_or_else(|| e.into()))?;
        // The handle must name the object just made (the value tells it from the old one
        // with the same label): a token reusing handles would have hsmkit destroy the
        // wrong document below.
        if existing == Some(h) || !crate::objects::names(s, h, &t)? {
            return Err(crate::objects::reused("C_CreateObject").into());
        }
        if let Some(old) = existing
            && let Err(e) = crate::objects::destroy(s, old, &data_template(Some(label)))
        {
            let _ = crate::objects::destroy(s, h, &t);
            return Err(e);
        }
        Ok(Some(bytes))
    }

    /// Reads `label` back through a session that did not write it: a token that said
    /// `CKR_OK` but did not keep the change is caught here, and the change is reported as
    /// failed, never as done.
    fn read_back(&self, label: &str, expected: &Expected) -> Result<()> {
        let found = self.token.with_fresh_session(|s| match Self::find(s, label)? {
            Some(h) => OpResult::Ok(Some(labelled(value_of(s, h), label)?)),
            None => Ok(None),
        })?;
        if &found == expected {
            return Ok(());
        }
        Err(meta_err(
            "metadata",
            format!(
                "the token accepted the metadata write for '{}' but a fresh session reads back something \
                 else: this token does not persist data-object changes, so the change is NOT done. Open \
                 the token with metadata=file:<path> in the URI",
                label.escape_debug()
            ),
        ))
    }

    fn modify_label(
        &self,
        label: &str,
        edit: &mut dyn FnMut(Option<&Value>) -> Result<Option<Value>>,
    ) -> Result<()> {
        let _g = self.token.write_guard()?;
        let edit = std::cell::RefCell::new(edit);
        let expected = self.token.with_session(|s| {
            let current = self.read_value(s, label)?;
            let new = (edit.borrow_mut())(current.as_ref().map(|(_, v)| v))?;
            if current.is_none() && new.is_none() {
                return Ok(Err(()));
            }
            self.write(s, current.map(|(h, _)| h), label, new.as_ref()).map(Ok)
        })?;
        match expected {
            Ok(expected) => self.read_back(label, &expected),
            Err(()) => Ok(()),
        }
    }
}

/// Whether creating a token data object failed because the token refuses them.
#[allow(
    clippy::wildcard_enum_match_arm,
    reason = "cryptoki's errors: only refusals of data objects are named"
)]
fn refused_data_objects(e: &cryptoki::error::Error) -> Option<OpError> {
    match e {
        cryptoki::error::Error::Pkcs11(
            rv @ (RvError::TemplateInconsistent
            | RvError::AttributeValueInvalid
            | RvError::AttributeTypeInvalid
            | RvError::FunctionNotSupported),
            _,
        ) => Some(
            Error::unsupported(UnsupportedReason::Mechanism, format!(
                "the token refuses private token data objects (C_CreateObject of a CKO_DATA with CKA_TOKEN: \
                 {}); keep the metadata in a file with metadata=file:<path> in the URI",
                crate::error::ckr_name(*rv)
            ))
            .into(),
        ),
        _ => None,
    }
}

impl MetadataStore for TokenMetadata {
    fn kind(&self) -> &'static str {
        "token"
    }

    fn read(&self, name: &str) -> Result<Option<KeyDescription>> {
        let _read = self.token.read_guard()?;
        let v = self.token.with_session(|s| self.read_value(s, name))?;
        v.map(|(_, v)| doc_of(name, &v)).transpose()
    }

    fn list(&self) -> Result<Vec<KeyDescription>> {
        let _read = self.token.read_guard()?;
        self.token.with_session(|s| {
            let mut out = Vec::new();
            let objects = s.find_objects(&data_template(None))?;
            // What every document depends on fails the whole list, loudly: a missing or
            // duplicated signer would otherwise look like an empty store.
            if !objects.is_empty() && self.auth.signer(s, false)?.is_none() {
                return Err(tampered(".hsmkit-metadata-signer", "metadata documents exist but the signer is gone").into());
            }
            for h in objects {
                let label = match s.get_attributes(h, &[AttributeType::Label]) {
                    Ok(a) => match a.into_iter().next() {
                        Some(Attribute::Label(l)) => l,
                        _ => continue,
                    },
                    Err(e) => {
                        tracing::warn!(target: "hsmkit::pkcs11", error = %e, "skipping a metadata object whose label cannot be read");
                        continue;
                    }
                };
                // Settings, probes and names hsmkit would never write are not keys.
                let Ok(name) = std::str::from_utf8(&label) else { continue };
                if hsmkit::validate_name(name).is_err() {
                    continue;
                }
                // One bad object must not hide every key: it is skipped (and named, escaped);
                // reading that key by name still fails loudly.
                let doc = value_of(s, h)
                    .and_then(|b| self.auth.open(s, name, &b))
                    .and_then(|v| doc_of(name, &v).map_err(OpError::from));
                match doc {
                    Ok(d) => out.push(d),
                    Err(e) => {
                        let e = match e {
                            OpError::Hsm(e) => e,
                            OpError::Ck(e) => crate::error::map(e),
                        };
                        tracing::warn!(target: "hsmkit::pkcs11", label = %shown(&label), error = %e, "skipping a metadata object");
                    }
                }
            }
            OpResult::Ok(out)
        })
    }

    fn modify(&self, name: &str, edit: DescriptionEdit<'_>) -> Result<()> {
        self.modify_label(name, &mut |v| {
            let current = v.map(|v| doc_of(name, v)).transpose()?;
            Ok(edit(current)?.map(|d| d.to_json()))
        })
    }

    fn settings(&self) -> Result<StoreSettings> {
        let _read = self.token.read_guard()?;
        match self.token.with_session(|s| self.read_value(s, SETTINGS_LABEL))? {
            Some((_, v)) => StoreSettings::from_json(&v),
            None => Ok(StoreSettings::default()),
        }
    }

    fn modify_settings(&self, edit: SettingsEdit<'_>) -> Result<StoreSettings> {
        let mut out = None;
        self.modify_label(SETTINGS_LABEL, &mut |v| {
            let mut st = v.map(StoreSettings::from_json).transpose()?.unwrap_or_default();
            edit(&mut st)?;
            out = Some(st);
            Ok(Some(st.to_json()))
        })?;
        out.ok_or_else(|| meta_err("metadata", "settings edit did not run"))
    }

    fn read_record(&self, kind: RecordKind, name: &str) -> Result<Option<Value>> {
        let label = record_label(kind, name);
        let _read = self.token.read_guard()?;
        let v = self.token.with_session(|s| self.read_value(s, &label))?;
        Ok(v.map(|(_, v)| v))
    }

    fn list_records(&self, kind: RecordKind) -> Result<Vec<(String, Value)>> {
        let prefix = record_label(kind, "");
        let _read = self.token.read_guard()?;
        self.token.with_session(|s| {
            let mut out = Vec::new();
            for h in s.find_objects(&data_template(None))? {
                let label = match s.get_attributes(h, &[AttributeType::Label]) {
                    Ok(a) => match a.into_iter().next() {
                        Some(Attribute::Label(l)) => l,
                        _ => continue,
                    },
                    Err(e) => {
                        tracing::warn!(target: "hsmkit::pkcs11", error = %e, "skipping a metadata object whose label cannot be read");
                        continue;
                    }
                };
                let Some(name) = std::str::from_utf8(&label).ok().and_then(|l| l.strip_prefix(&prefix)) else {
                    continue;
                };
                if hsmkit::validate_name(name).is_err() {
                    continue;
                }
                let label = record_label(kind, name);
                // As for keys: one bad object is skipped (and named); reading it by name
                // still fails loudly.
                match value_of(s, h).and_then(|b| self.auth.open(s, &label, &b)) {
                    Ok(v) => out.push((name.to_owned(), v)),
                    Err(e) => {
                        let e = match e {
                            OpError::Hsm(e) => e,
                            OpError::Ck(e) => crate::error::map(e),
                        };
                        tracing::warn!(target: "hsmkit::pkcs11", label = %label.escape_debug(), error = %e, "skipping a metadata object");
                    }
                }
            }
            OpResult::Ok(out)
        })
    }

    fn modify_record(&self, kind: RecordKind, name: &str, edit: RecordEdit<'_>) -> Result<()> {
        self.modify_label(&record_label(kind, name), &mut |v| edit(v.cloned()))
    }
}

/// The label of a record's data object: `secret:NAME`. The colon keeps it apart from key
/// labels (names never hold one), and the signature covers the label, so a record moved
/// to another name or kind is refused.
fn record_label(kind: RecordKind, name: &str) -> String {
    format!("{}:{name}", kind.name())
}

/// Makes the metadata signer now if the token has none, before hsmkit's first key
/// objects: on a token hsmkit starts with, the signer (never destroyed) is then its
/// oldest object, which keeps tpm2-pkcs11 1.9's handle numbering sound
/// ([`crate::objects`]).
///
/// Runs before every key creation, so it only looks the signer up (one `C_FindObjects`);
/// reading its public key is left to the metadata store, which caches it.
pub(crate) fn ensure_signer(token: &Arc<Token>, s: &Session) -> OpResult<()> {
    if at_most_one("the metadata signer", s.find_objects(&signer_template())?)?.is_none() {
        Authenticator::new(token.clone()).make_signer(s)?;
    }
    Ok(())
}

/// Whether the token keeps private token data objects as [`TokenMetadata`] writes them:
/// creates one, reads it back through a fresh session, destroys it. `Err` says why not.
pub(crate) fn probe_data_objects(token: &Token) -> Result<()> {
    // Under the write guard, and only while the token has no hsmkit documents: two
    // processes opening a fresh token at once must not choose differently.
    let _g = token.write_guard()?;
    if has_documents(token)? {
        return Ok(());
    }
    let mut nonce = [0u8; 8];
    getrandom_fill(&mut nonce)?;
    let label = format!("{PROBE_LABEL}-{}", hex(&nonce));
    let h = token.with_session(|s| {
        let mut t = data_template(Some(&label));
        t.push(Attribute::Value(b"probe".to_vec()));
        s.create_object(&t).map_err(|e| refused_data_objects(&e).unwrap_or_else(|| e.into()))
    })?;
    let seen = token.with_fresh_session(|s| match TokenMetadata::find(s, &label)? {
        Some(h) => OpResult::Ok(Some(value_of(s, h)?)),
        None => Ok(None),
    });
    if let Err(e) = token.with_session(|s| crate::objects::destroy(s, h, &data_template(Some(&label)))) {
        tracing::warn!(target: "hsmkit::pkcs11", error = %e, "could not destroy the data-object probe");
    }
    match seen? {
        Some(v) if v == b"probe" => Ok(()),
        _ => Err(Error::unsupported(
            UnsupportedReason::Mechanism,
            "the token does not keep private token data objects (C_CreateObject returned CKR_OK, a \
             fresh session did not find the object)",
        )),
    }
}

/// Whether the token already holds hsmkit metadata objects (then they are used).
pub(crate) fn has_documents(token: &Token) -> Result<bool> {
    token.with_session(|s| OpResult::Ok(!s.find_objects(&data_template(None))?.is_empty()))
}

fn getrandom_fill(b: &mut [u8]) -> Result<()> {
    getrandom::fill(b).map_err(|e| meta_err("getrandom", format!("OS random number generator failed: {e}")))
}

/// Key metadata in one signed file beside the token, for tokens that refuse or do not
/// persist data objects. Written atomically (temporary file, `fsync`, rename, `fsync` of
/// the directory) under an exclusive `flock` of `<file>.lock`; read under a shared one.
/// The file is authenticated by the token's metadata signer, not encrypted: it holds
/// names, dates, tags and public-key fingerprints, no key material (mode 0600).
pub(crate) struct FileMetadata {
    token: Arc<Token>,
    auth: Authenticator,
    path: PathBuf,
    lock: PathBuf,
}

impl std::fmt::Debug for FileMetadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileMetadata").field("path", &self.path).finish_non_exhaustive()
    }
}

/// The whole file: every key's description and the settings.
#[derive(Default)]
struct FileDoc {
    keys: BTreeMap<String, KeyDescription>,
    settings: StoreSettings,
    records: BTreeMap<(RecordKind, String), Value>,
    /// Record kinds this version does not know (written by a newer hsmkit): kept as they
    /// are and written back, never dropped by a write of this version.
    other_records: serde_json::Map<String, Value>,
}

impl FileMetadata {
    pub(crate) fn open(path: &Path, token: Arc<Token>) -> Result<Self> {
        let mut lock = path.as_os_str().to_owned();
        lock.push(".lock");
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| io_err("create directory", dir, &e))?;
        }
        Ok(FileMetadata {
            auth: Authenticator::new(token.clone()),
            token,
            path: path.to_owned(),
            lock: lock.into(),
        })
    }

    /// The label every signature of this file covers: the token's serial and label, so
    /// a file signed for one token does not pass for another's.
    fn label(&self) -> String {
        format!(".hsmkit-file:{}", self.token.label)
    }

    fn locked(&self, exclusive: bool) -> Result<File> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.lock)
            .map_err(|e| io_err("open", &self.lock, &e))?;
        if exclusive { f.lock() } else { f.lock_shared() }.map_err(|e| io_err("lock", &self.lock, &e))?;
        Ok(f)
    }

    fn load(&self, s: &Session) -> OpResult<FileDoc> {
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileDoc::default()),
            Err(e) => return Err(io_err("read", &self.path, &e).into()),
        };
        let v = self.auth.open(s, &self.label(), &bytes)?;
        let mut doc = FileDoc {
            settings: match v.get("settings") {
                Some(st) => StoreSettings::from_json(st)?,
                None => StoreSettings::default(),
            },
            keys: BTreeMap::new(),
            records: BTreeMap::new(),
            other_records: serde_json::Map::new(),
        };
        if let Some(keys) = v.get("keys").and_then(Value::as_object) {
            for (name, k) in keys {
                doc.keys.insert(name.clone(), doc_of(name, k)?);
            }
        }
        if let Some(records) = v.get("records").and_then(Value::as_object) {
            for (kind_name, of_kind) in records {
                let Some(kind) = RecordKind::ALL.iter().find(|k| k.name() == kind_name) else {
                    doc.other_records.insert(kind_name.clone(), of_kind.clone());
                    continue;
                };
                for (name, r) in of_kind.as_object().into_iter().flatten() {
                    doc.records.insert((*kind, name.clone()), r.clone());
                }
            }
        }
        Ok(doc)
    }

    fn store(&self, s: &Session, doc: &FileDoc) -> OpResult<Vec<u8>> {
        let keys: serde_json::Map<String, Value> =
            doc.keys.iter().map(|(k, d)| (k.clone(), d.to_json())).collect();
        let mut records = doc.other_records.clone();
        for ((kind, name), r) in &doc.records {
            let of_kind = records.entry(kind.name()).or_insert_with(|| json!({}));
            if let Some(m) = of_kind.as_object_mut() {
                m.insert(name.clone(), r.clone());
            }
        }
        let v = json!({
            "keys": keys,
            "records": records,
            "settings": doc.settings.to_json(),
            "written": secs(SystemTime::now()),
        });
        let bytes = self.auth.seal(s, &self.label(), &v)?;
        let dir = self.path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| io_err("create", dir, &e))?;
        tmp.write_all(&bytes)
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| io_err("write", tmp.path(), &e))?;
        tmp.persist(&self.path).map_err(|e| io_err("rename", &self.path, &e.error))?;
        File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io_err("sync", dir, &e))?;
        Ok(bytes)
    }

    fn change(&self, edit: &mut dyn FnMut(&mut FileDoc) -> Result<()>) -> Result<()> {
        let _lock = self.locked(true)?;
        let _g = self.token.write_guard()?;
        let edit = std::cell::RefCell::new(edit);
        let written = self.token.with_session(|s| {
            let mut doc = self.load(s)?;
            (edit.borrow_mut())(&mut doc)?;
            self.store(s, &doc)
        })?;
        // Read back: the file on disk is what was written.
        match fs::read(&self.path) {
            Ok(b) if b == written => Ok(()),
            _ => Err(meta_err("metadata", format!("{} did not read back as written", self.path.display()))),
        }
    }

    fn snapshot(&self) -> Result<FileDoc> {
        let _lock = self.locked(false)?;
        self.token.with_session(|s| self.load(s))
    }
}

fn io_err(what: &str, path: &Path, e: &std::io::Error) -> Error {
    meta_err("metadata file", format!("cannot {what} {}: {e}", path.display()))
}

impl MetadataStore for FileMetadata {
    fn kind(&self) -> &'static str {
        "file"
    }

    fn read(&self, name: &str) -> Result<Option<KeyDescription>> {
        Ok(self.snapshot()?.keys.remove(name))
    }

    fn list(&self) -> Result<Vec<KeyDescription>> {
        Ok(self.snapshot()?.keys.into_values().collect())
    }

    fn modify(&self, name: &str, edit: DescriptionEdit<'_>) -> Result<()> {
        self.change(&mut |doc| {
            match edit(doc.keys.remove(name))? {
                Some(d) => doc.keys.insert(name.to_owned(), d),
                None => None,
            };
            Ok(())
        })
    }

    fn settings(&self) -> Result<StoreSettings> {
        Ok(self.snapshot()?.settings)
    }

    fn modify_settings(&self, edit: SettingsEdit<'_>) -> Result<StoreSettings> {
        let mut out = None;
        self.change(&mut |doc| {
            edit(&mut doc.settings)?;
            out = Some(doc.settings);
            Ok(())
        })?;
        out.ok_or_else(|| meta_err("metadata", "settings edit did not run"))
    }

    fn read_record(&self, kind: RecordKind, name: &str) -> Result<Option<Value>> {
        Ok(self.snapshot()?.records.remove(&(kind, name.to_owned())))
    }

    fn list_records(&self, kind: RecordKind) -> Result<Vec<(String, Value)>> {
        let records = self.snapshot()?.records;
        Ok(records.into_iter().filter(|((k, _), _)| *k == kind).map(|((_, n), v)| (n, v)).collect())
    }

    fn modify_record(&self, kind: RecordKind, name: &str, edit: RecordEdit<'_>) -> Result<()> {
        let key = (kind, name.to_owned());
        self.change(&mut |doc| {
            if let Some(r) = edit(doc.records.remove(&key))? {
                doc.records.insert(key.clone(), r);
            }
            Ok(())
        })
    }
}

/// `CKA_START_DATE` / `CKA_END_DATE` from a time (UTC day; the core enforces the exact time).
pub(crate) fn ck_date(t: SystemTime) -> cryptoki::types::Date {
    // Howard Hinnant's days-to-civil algorithm.
    let days = secs(t).div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = (yoe + era * 400 + i64::from(m <= 2)).clamp(0, 9999);
    let digits = |n: i64, w: usize| format!("{n:0w$}").into_bytes();
    let (yy, mm, dd) = (digits(y, 4), digits(m, 2), digits(d, 2));
    let arr4 = |v: &[u8]| -> [u8; 4] {
        [v.first(), v.get(1), v.get(2), v.get(3)].map(|b| b.copied().unwrap_or(b'0'))
    };
    let arr2 = |v: &[u8]| -> [u8; 2] { [v.first(), v.get(1)].map(|b| b.copied().unwrap_or(b'0')) };
    cryptoki::types::Date::new(arr4(&yy), arr2(&mm), arr2(&dd))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates() {
        // cryptoki prints dates as "Month: M\nDay: D\nYear: Y".
        let ymd = |t: u64| ck_date(UNIX_EPOCH + Duration::from_secs(t)).to_string().replace('\n', " ");
        assert_eq!(ymd(1_764_000_000), "Month: 11 Day: 24 Year: 2025");
        assert_eq!(ymd(0), "Month: 01 Day: 01 Year: 1970");
        assert_eq!(ymd(951_782_400), "Month: 02 Day: 29 Year: 2000");
        assert_eq!(ymd(4_102_444_799), "Month: 12 Day: 31 Year: 2099");
    }

    #[test]
    fn hex_round_trip() {
        assert_eq!(unhex(&hex(&[0, 1, 0xab, 0xff])).unwrap(), vec![0, 1, 0xab, 0xff]);
        assert!(unhex("abc").is_none() && unhex("zz").is_none());
    }
}
