//! JSON Web Signature (RFC 7515, compact serialization), JSON Web Token (RFC 7519) and
//! JWK Set (RFC 7517 section 5) over store keys.
//!
//! Tokens are signed by a key version that stays in its backend, with every
//! [`SignatureAlgorithm`] hsmkit has (`RS*`, `PS*`, `ES256`/`384`/`512`, `ES256K`, `EdDSA`,
//! `HS*`). The protected header carries `alg` and `kid` = `NAME/VERSION`; verification
//! through a [`Store`] opens the version the `kid` names.
//!
//! ```
//! # fn main() -> hsmkit::Result<()> {
//! use hsmkit::jose::{JwtSignOptions, JwtValidation, jwks, jwt_sign, jwt_verify};
//! use hsmkit::{KeyAttributes, KeySpec, SignatureAlgorithm, Store};
//! use std::time::Duration;
//!
//! let store = Store::new(hsmkit_soft::SoftBackend::new());
//! let key = store.create_key("issuer", KeySpec::P256, KeyAttributes::default())?;
//! let mut claims = serde_json::Map::new();
//! claims.insert("sub".into(), "alice".into());
//! claims.insert("aud".into(), "payments".into());
//! let options = JwtSignOptions::new().expires_in(Duration::from_secs(3600));
//! let token = jwt_sign(&key, SignatureAlgorithm::Es256, &claims, &options)?;
//!
//! let verified = jwt_verify(&store, &token, &JwtValidation::new().audience("payments"))?;
//! assert_eq!(verified.get("sub"), Some(&"alice".into()));
//! // Without the audience it was issued for, the token is refused.
//! assert!(jwt_verify(&store, &token, &JwtValidation::new()).is_err());
//! // What a relying party fetches to verify it on its own.
//! let doc = jwks(&store, &["issuer"])?;
//! assert_eq!(doc["keys"][0]["kid"], "issuer/1");
//! # Ok(()) }
//! ```
//!
//! # What is refused, and how
//!
//! One rule decides the error: [`Error::VerificationFailed`] means the signature was
//! checked with the key and did not verify; everything refused before that check is
//! [`Error::InvalidInput`] with a reason and a message saying why:
//!
//! - [`InvalidReason::Malformed`]: not three base64url (unpadded) parts; a header or JWT
//!   claims set that is not a JSON object, or repeats a member (RFC 7515 section 4 lets a
//!   parser reject duplicates or keep the last; hsmkit rejects them at the top level of the
//!   header and of the claims, where every member it checks lives; duplicates inside nested
//!   values keep the last, as `serde_json` does); `alg` or `kid` missing or not a string; a
//!   `kid` that is not `NAME/VERSION`; `exp`, `nbf`, `iat` that are not numbers, `iss`,
//!   `sub`, `jti` that are not strings, `aud` that is neither a string nor an array of strings.
//! - [`InvalidReason::Parameter`]: `alg` `none` (never accepted) or an algorithm hsmkit
//!   does not know; an `alg` outside [`JwsOptions::algorithms`]; any `crit` (hsmkit
//!   understands no extension, and RFC 7515 section 4.1.11 makes a recipient refuse what
//!   it does not understand; an empty `crit` is invalid anyway); and every JWT claim check
//!   (expired, not yet valid, issued in the future, issuer or audience), whose typed cause
//!   [`JwtValidation::check_claims`] gives as a [`ClaimError`].
//! - [`InvalidReason::KeyMismatch`]: an `alg` that does not fit the key (the RS256 token
//!   relabelled HS256 of the classic confusion attack: an RSA key never does HMAC).
//!
//! The key's own checks apply too: a disabled version, or one whose operations exclude
//! `verify`, is [`Error::PermissionDenied`]; a `kid` naming no key or version is
//! [`Error::NotFound`]. As key vaults have it, an *expired* or not-yet-valid version still
//! verifies (its not-before and expiry bound signing); a JWT's own `exp` bounds the token.
//!
//! Only `kid` chooses the key: `jwk`, `jku`, `x5c`, `x5u` in a header are never used.

use std::collections::BTreeSet;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::{Map, Value};

use crate::algorithm::SignatureAlgorithm;
use crate::attributes::KeyOp;
use crate::error::{Error, InvalidReason, Result};
use crate::key::Key;
use crate::spec::{EcCurve, KeySpec, KeyType};
use crate::store::Store;

/// The header members hsmkit sets itself when signing, which a caller's header may not hold.
const RESERVED_HEADER: &[&str] = &["alg", "kid"];

fn malformed(msg: impl Into<String>) -> Error {
    Error::invalid(InvalidReason::Malformed, msg)
}

fn refused(msg: impl Into<String>) -> Error {
    Error::invalid(InvalidReason::Parameter, msg)
}

fn b64(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

/// A JSON object whose top-level member names are unique (serde_json keeps the last of
/// repeated names, which would let a token show one `alg` to one parser and another to
/// the next).
struct UniqueObject(Map<String, Value>);

impl<'de> serde::Deserialize<'de> for UniqueObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = UniqueObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut access: A,
            ) -> std::result::Result<UniqueObject, A::Error> {
                let mut map = Map::new();
                while let Some(name) = access.next_key::<String>()? {
                    if map.contains_key(&name) {
                        return Err(<A::Error as serde::de::Error>::custom(format!(
                            "member '{}' appears twice",
                            name.escape_debug()
                        )));
                    }
                    let value: Value = access.next_value()?;
                    map.insert(name, value);
                }
                Ok(UniqueObject(map))
            }
        }
        d.deserialize_map(Visitor)
    }
}

/// Parses `bytes` as a JSON object with unique member names; `what` names it in errors.
fn parse_object(bytes: &[u8], what: &str) -> Result<Map<String, Value>> {
    serde_json::from_slice::<UniqueObject>(bytes)
        .map(|o| o.0)
        .map_err(|e| malformed(format!("the {what} is not a JSON object with unique members: {e}")))
}

fn decode_part(part: &str, what: &str) -> Result<Vec<u8>> {
    Base64UrlUnpadded::decode_vec(part)
        .map_err(|_| malformed(format!("the JWS {what} is not base64url without padding")))
}

fn to_json(v: &Map<String, Value>) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| malformed(format!("JSON encoding failed: {e}")))
}

/// The algorithm a header's `alg` names: exactly a JOSE name (they are case-sensitive),
/// never `none`.
fn header_alg(header: &Map<String, Value>) -> Result<SignatureAlgorithm> {
    let name = match header.get("alg") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(malformed("the JWS header's 'alg' is not a string")),
        None => return Err(malformed("the JWS header has no 'alg'")),
    };
    if name == "none" {
        return Err(refused("alg 'none' (an unsecured JWS) is never accepted"));
    }
    SignatureAlgorithm::ALL.iter().copied().find(|a| a.name() == name).ok_or_else(|| {
        refused(format!(
            "alg '{}' is not a signature algorithm hsmkit knows ({})",
            name.escape_debug(),
            SignatureAlgorithm::ALL.iter().map(|a| a.name()).collect::<Vec<_>>().join(", ")
        ))
    })
}

/// Refuses any `crit`: hsmkit understands no JWS extension.
fn refuse_crit(header: &Map<String, Value>) -> Result<()> {
    match header.get("crit") {
        None => Ok(()),
        Some(Value::Array(a)) if a.is_empty() => {
            Err(refused("an empty 'crit' is invalid (RFC 7515 section 4.1.11)"))
        }
        Some(v) => Err(refused(format!(
            "the token's 'crit' ({v}) requires extensions hsmkit does not understand (RFC 7515 \
             section 4.1.11)"
        ))),
    }
}

/// `NAME/VERSION` from a header's `kid`. The version is required: "the current version"
/// would change under a token when the key rotates, and a key vault's `kid` always names
/// the version that signed.
fn parse_kid(header: &Map<String, Value>) -> Result<(&str, u32)> {
    let kid = match header.get("kid") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(malformed("the JWS header's 'kid' is not a string")),
        None => {
            return Err(malformed(
                "the JWS header has no 'kid': hsmkit picks the key version from kid 'NAME/VERSION'",
            ));
        }
    };
    let bad = || {
        malformed(format!(
            "kid '{}' is not NAME/VERSION (a key name and a version number, e.g. 'signer/2')",
            kid.escape_debug()
        ))
    };
    let (name, version) = kid.split_once('/').ok_or_else(bad)?;
    let canonical = !version.is_empty()
        && version.bytes().all(|b| b.is_ascii_digit())
        && !(version.len() > 1 && version.starts_with('0'));
    if name.is_empty() || !canonical {
        return Err(bad());
    }
    let version = version.parse::<u32>().map_err(|_| bad())?;
    Ok((name, version))
}

/// Options for [`jws_verify`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct JwsOptions {
    /// The algorithms accepted; `None` accepts any that fits the key (the key's type fixes
    /// the family, so an RSA key never accepts HMAC and so on). An empty list accepts none.
    pub algorithms: Option<Vec<SignatureAlgorithm>>,
}

impl JwsOptions {
    /// Any algorithm that fits the key.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts only these algorithms.
    #[must_use]
    pub fn algorithms(mut self, algorithms: &[SignatureAlgorithm]) -> Self {
        self.algorithms = Some(algorithms.to_vec());
        self
    }
}

/// A JWS whose signature verified.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedJws {
    /// The protected header.
    pub header: Map<String, Value>,
    /// The payload.
    pub payload: Vec<u8>,
    /// The algorithm it was signed with (the header's `alg`).
    pub alg: SignatureAlgorithm,
    /// The name of the key that verified it.
    pub key_name: String,
    /// The version of the key that verified it.
    pub key_version: u32,
}

/// A compact JWS, split and decoded, signature not yet checked.
struct Parsed<'a> {
    signing_input: &'a str,
    header: Map<String, Value>,
    payload: Vec<u8>,
    signature: Vec<u8>,
    alg: SignatureAlgorithm,
}

fn parse_compact<'a>(token: &'a str, options: &JwsOptions) -> Result<Parsed<'a>> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(malformed("a compact JWS is three base64url parts separated by '.'"));
    };
    let signing_input = token
        .get(..h.len().saturating_add(1).saturating_add(p.len()))
        .ok_or_else(|| malformed("a compact JWS is three base64url parts separated by '.'"))?;
    let header = parse_object(&decode_part(h, "header")?, "JWS header")?;
    let payload = decode_part(p, "payload")?;
    let signature = decode_part(s, "signature")?;
    let alg = header_alg(&header)?;
    refuse_crit(&header)?;
    if let Some(allowed) = &options.algorithms
        && !allowed.contains(&alg)
    {
        return Err(refused(format!(
            "alg {alg} is not among the algorithms accepted here ({})",
            allowed.iter().map(|a| a.name()).collect::<Vec<_>>().join(", ")
        )));
    }
    Ok(Parsed { signing_input, header, payload, signature, alg })
}

fn check_signature(key: &Key, parsed: Parsed<'_>) -> Result<VerifiedJws> {
    // Key::verify checks that the algorithm fits the key (KeyMismatch otherwise) and the
    // key's attributes, and records the attempt in the audit log either way.
    key.verify(parsed.alg, parsed.signing_input.as_bytes(), &parsed.signature)?;
    Ok(VerifiedJws {
        header: parsed.header,
        payload: parsed.payload,
        alg: parsed.alg,
        key_name: key.name().to_owned(),
        key_version: key.version(),
    })
}

/// Signs `payload` into a compact JWS with `key`.
///
/// The protected header is `header`'s members (if given) plus `alg` (the JOSE name of
/// `alg`) and `kid` = `NAME/VERSION` of `key`, which the caller may not set; nor may it set
/// `crit` (hsmkit verifies no extension) or `b64` (RFC 7797 unencoded payloads are not
/// supported). ECDSA signatures are `r || s`, as JWS has them.
pub fn jws_sign(
    key: &Key,
    alg: SignatureAlgorithm,
    header: Option<&Map<String, Value>>,
    payload: &[u8],
) -> Result<String> {
    let mut h = header.cloned().unwrap_or_default();
    if let Some(name) = RESERVED_HEADER.iter().find(|n| h.contains_key(**n)) {
        return Err(refused(format!("the header's '{name}' is set by hsmkit, not by the caller")));
    }
    for name in ["crit", "b64"] {
        if h.contains_key(name) {
            return Err(refused(format!(
                "a header with '{name}' is refused: hsmkit implements no JWS extension"
            )));
        }
    }
    h.insert("alg".into(), alg.name().into());
    h.insert("kid".into(), key.info().kid().into());
    let signing_input = format!("{}.{}", b64(&to_json(&h)?), b64(payload));
    let signature = key.sign(alg, signing_input.as_bytes())?;
    Ok(format!("{signing_input}.{}", b64(&signature)))
}

/// Verifies a compact JWS with the key version its `kid` (`NAME/VERSION`) names. See the
/// [module documentation](self) for what is refused and with which error.
pub fn jws_verify(store: &Store, token: &str, options: &JwsOptions) -> Result<VerifiedJws> {
    let parsed = parse_compact(token, options)?;
    let (name, version) = parse_kid(&parsed.header)?;
    let key = store.get_key_version(name, version)?;
    check_signature(&key, parsed)
}

/// Verifies a compact JWS with `key`, which the caller chose: the header's `kid` is not
/// looked at (it may name anything, as with tokens from other issuers).
pub fn jws_verify_with_key(key: &Key, token: &str, options: &JwsOptions) -> Result<VerifiedJws> {
    let parsed = parse_compact(token, options)?;
    check_signature(key, parsed)
}

// ------------------------------------------------------------------------------- JWT

/// Seconds since the Unix epoch, as a JWT NumericDate (an integer).
fn numeric_date(t: SystemTime, what: &str) -> Result<Value> {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map_err(|_| refused(format!("the {what} time is before 1970: no NumericDate")))?
        .as_secs();
    Ok(Value::from(secs))
}

/// `t` as seconds from the epoch, negative before it.
fn epoch_secs(t: SystemTime) -> f64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// Options for [`jwt_sign`]: the registered time claims hsmkit adds.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct JwtSignOptions {
    /// Adds `exp` = now + this. The claims may not hold an `exp` then.
    pub expires_in: Option<Duration>,
    /// Adds `nbf` = this. The claims may not hold an `nbf` then.
    pub not_before: Option<SystemTime>,
    /// Adds `iat` = now (the default). The claims may not hold an `iat` then.
    pub issued_at: bool,
    /// What "now" is; `None` (the default) is the clock of the store the key came from.
    pub now: Option<SystemTime>,
    /// More protected-header members (not `alg`, `kid`, `crit`, `b64`); `typ` is `JWT`
    /// unless given here (e.g. `at+jwt`, RFC 9068).
    pub header: Map<String, Value>,
}

impl Default for JwtSignOptions {
    fn default() -> Self {
        JwtSignOptions { expires_in: None, not_before: None, issued_at: true, now: None, header: Map::new() }
    }
}

impl JwtSignOptions {
    /// `iat` only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `exp` this long after now.
    #[must_use]
    pub fn expires_in(mut self, d: Duration) -> Self {
        self.expires_in = Some(d);
        self
    }

    /// Adds `nbf`.
    #[must_use]
    pub fn not_before(mut self, t: SystemTime) -> Self {
        self.not_before = Some(t);
        self
    }

    /// Whether to add `iat` (default: yes).
    #[must_use]
    pub fn issued_at(mut self, yes: bool) -> Self {
        self.issued_at = yes;
        self
    }

    /// Uses this time as now.
    #[must_use]
    pub fn now(mut self, t: SystemTime) -> Self {
        self.now = Some(t);
        self
    }

    /// Adds a protected-header member.
    #[must_use]
    pub fn header(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.header.insert(name.to_owned(), value.into());
        self
    }
}

/// Checks the types of the registered claims a claims set holds (RFC 7519 section 4.1).
fn check_claim_types(claims: &Map<String, Value>) -> std::result::Result<(), ClaimError> {
    for name in ["exp", "nbf", "iat"] {
        if claims.get(name).is_some_and(|v| !v.is_number()) {
            return Err(ClaimError::Malformed(name.to_owned()));
        }
    }
    for name in ["iss", "sub", "jti"] {
        if claims.get(name).is_some_and(|v| !v.is_string()) {
            return Err(ClaimError::Malformed(name.to_owned()));
        }
    }
    match claims.get("aud") {
        None | Some(Value::String(_)) => Ok(()),
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => Ok(()),
        Some(_) => Err(ClaimError::Malformed("aud".to_owned())),
    }
}

/// Signs a JWT: `claims` plus the time claims `options` asks for, as the payload of a
/// compact JWS (see [`jws_sign`]) whose header has `typ` `JWT`. Times are integer
/// seconds. A claim given both in `claims` and by an option is refused
/// ([`InvalidReason::Parameter`]): say which one is meant. Registered claims of the wrong
/// type (`exp` not a number, `aud` not a string or array of strings, ...) are refused
/// ([`InvalidReason::Malformed`]), since no verifier would accept them.
pub fn jwt_sign(
    key: &Key,
    alg: SignatureAlgorithm,
    claims: &Map<String, Value>,
    options: &JwtSignOptions,
) -> Result<String> {
    if let Err(e) = check_claim_types(claims) {
        return Err(malformed(format!("cannot sign these claims: {e} (RFC 7519 section 4.1)")));
    }
    let now = options.now.unwrap_or_else(|| key.now());
    let mut c = claims.clone();
    let mut add = |name: &str, option: &str, value: Value| -> Result<()> {
        if c.contains_key(name) {
            return Err(refused(format!(
                "the claims hold '{name}' and {option} sets it too: give one of them"
            )));
        }
        c.insert(name.to_owned(), value);
        Ok(())
    };
    if let Some(d) = options.expires_in {
        let exp = now.checked_add(d).ok_or_else(|| refused("expires-in is too far in the future"))?;
        add("exp", "expires_in", numeric_date(exp, "expiry")?)?;
    }
    if let Some(nbf) = options.not_before {
        add("nbf", "not_before", numeric_date(nbf, "not-before")?)?;
    }
    if options.issued_at {
        add("iat", "issued_at (set it to false to give your own iat)", numeric_date(now, "issued-at")?)?;
    }
    let mut header = options.header.clone();
    header.entry("typ").or_insert_with(|| "JWT".into());
    jws_sign(key, alg, Some(&header), &to_json(&c)?)
}

/// Why a JWT's claims refuse it, from [`JwtValidation::check_claims`]. [`jwt_verify`]
/// reports it as [`Error::InvalidInput`]: [`InvalidReason::Malformed`] for
/// [`ClaimError::Malformed`], [`InvalidReason::Parameter`] for the rest.
#[derive(Clone, Debug, PartialEq)]
pub enum ClaimError {
    /// A claim the validation requires is absent (`exp` by default; `iss` or `aud` when one
    /// is expected; any named in [`JwtValidation::required`]).
    Missing(String),
    /// A registered claim of the wrong type (`exp`, `nbf`, `iat` not numbers; `iss`, `sub`,
    /// `jti` not strings; `aud` neither a string nor an array of strings).
    Malformed(String),
    /// The token expired: `exp` (seconds from the epoch) is not after now minus leeway.
    Expired {
        /// The token's `exp`.
        exp: f64,
    },
    /// The token is not valid yet: `nbf` is after now plus leeway.
    NotYetValid {
        /// The token's `nbf`.
        nbf: f64,
    },
    /// The token says it was issued in the future: `iat` is after now plus leeway.
    IssuedInFuture {
        /// The token's `iat`.
        iat: f64,
    },
    /// `iss` is not the expected issuer.
    Issuer,
    /// `aud` names none of the expected audiences, or the token names an audience and the
    /// validation expects none.
    Audience,
}

/// A NumericDate for people: RFC 3339 when it is in range.
fn show_date(secs: f64) -> String {
    match Duration::try_from_secs_f64(secs).ok().and_then(|d| UNIX_EPOCH.checked_add(d)) {
        Some(t) => crate::report::rfc3339(t),
        None => format!("{secs} s from the Unix epoch"),
    }
}

impl fmt::Display for ClaimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClaimError::Missing(c) => {
                write!(f, "the token has no '{}' claim, which is required", c.escape_debug())
            }
            ClaimError::Malformed(c) => write!(f, "the token's '{c}' claim has the wrong type"),
            ClaimError::Expired { exp } => write!(f, "the token expired at {}", show_date(*exp)),
            ClaimError::NotYetValid { nbf } => write!(f, "the token is not valid before {}", show_date(*nbf)),
            ClaimError::IssuedInFuture { iat } => {
                write!(f, "the token says it was issued in the future ({})", show_date(*iat))
            }
            ClaimError::Issuer => f.write_str("the token's issuer (iss) is not the expected one"),
            ClaimError::Audience => f.write_str(
                "the token's audience (aud) is not an expected one (a token naming an audience \
                 needs a verifier that says which audiences it accepts)",
            ),
        }
    }
}

impl std::error::Error for ClaimError {}

impl From<ClaimError> for Error {
    fn from(e: ClaimError) -> Self {
        let reason = match e {
            ClaimError::Malformed(_) => InvalidReason::Malformed,
            ClaimError::Missing(_)
            | ClaimError::Expired { .. }
            | ClaimError::NotYetValid { .. }
            | ClaimError::IssuedInFuture { .. }
            | ClaimError::Issuer
            | ClaimError::Audience => InvalidReason::Parameter,
        };
        Error::invalid(reason, format!("JWT refused: {e}"))
    }
}

/// What [`jwt_verify`] checks besides the signature.
///
/// Defaults: any algorithm that fits the key, `exp` required, `iat` in the future refused,
/// 60 seconds of leeway, no issuer, no audience. A token that names an audience (`aud`) is
/// refused unless an expected audience is set (as PyJWT does): it was issued for someone
/// else, and a verifier that does not say who it is cannot tell.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct JwtValidation {
    /// The algorithms accepted (see [`JwsOptions::algorithms`]).
    pub algorithms: Option<Vec<SignatureAlgorithm>>,
    /// `iss` must equal this (and be present).
    pub issuer: Option<String>,
    /// `aud` (a string or an array) must name at least one of these (and be present).
    pub audience: Vec<String>,
    /// `exp` must be present (default: yes).
    pub require_exp: bool,
    /// Other claims that must be present.
    pub required: Vec<String>,
    /// Refuse an `iat` after now plus leeway (default: yes).
    pub reject_future_iat: bool,
    /// Clock skew allowed for `exp`, `nbf` and `iat` (default: 60 seconds).
    pub leeway: Duration,
    /// What "now" is; `None` is the store's clock (see [`Store::with_clock`]; for
    /// [`jwt_verify_with_key`], the clock of the store the key came from).
    pub now: Option<SystemTime>,
}

impl Default for JwtValidation {
    fn default() -> Self {
        JwtValidation {
            algorithms: None,
            issuer: None,
            audience: Vec::new(),
            require_exp: true,
            required: Vec::new(),
            reject_future_iat: true,
            leeway: Duration::from_secs(60),
            now: None,
        }
    }
}

impl JwtValidation {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts only these algorithms.
    #[must_use]
    pub fn algorithms(mut self, algorithms: &[SignatureAlgorithm]) -> Self {
        self.algorithms = Some(algorithms.to_vec());
        self
    }

    /// Requires this issuer.
    #[must_use]
    pub fn issuer(mut self, issuer: &str) -> Self {
        self.issuer = Some(issuer.to_owned());
        self
    }

    /// Accepts this audience (call again to accept more).
    #[must_use]
    pub fn audience(mut self, audience: &str) -> Self {
        self.audience.push(audience.to_owned());
        self
    }

    /// Whether `exp` is required.
    #[must_use]
    pub fn require_exp(mut self, yes: bool) -> Self {
        self.require_exp = yes;
        self
    }

    /// Requires this claim to be present.
    #[must_use]
    pub fn require(mut self, claim: &str) -> Self {
        self.required.push(claim.to_owned());
        self
    }

    /// Whether an `iat` in the future is refused.
    #[must_use]
    pub fn reject_future_iat(mut self, yes: bool) -> Self {
        self.reject_future_iat = yes;
        self
    }

    /// The clock skew allowed.
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Uses this time as now.
    #[must_use]
    pub fn now(mut self, t: SystemTime) -> Self {
        self.now = Some(t);
        self
    }

    /// Checks a claims set at time `now` (the signature is not this function's business):
    /// types, then presence, then `exp`, `nbf`, `iat`, `iss`, `aud`.
    pub fn check_claims(
        &self,
        claims: &Map<String, Value>,
        now: SystemTime,
    ) -> std::result::Result<(), ClaimError> {
        check_claim_types(claims)?;
        let expected = [
            self.require_exp.then_some("exp"),
            self.issuer.as_ref().map(|_| "iss"),
            (!self.audience.is_empty()).then_some("aud"),
        ];
        let required = expected.into_iter().flatten().chain(self.required.iter().map(String::as_str));
        for name in required {
            if !claims.contains_key(name) {
                return Err(ClaimError::Missing(name.to_owned()));
            }
        }
        let (now, leeway) = (epoch_secs(now), self.leeway.as_secs_f64());
        let time = |name: &str| claims.get(name).and_then(Value::as_f64);
        if let Some(exp) = time("exp")
            && exp <= now - leeway
        {
            return Err(ClaimError::Expired { exp });
        }
        if let Some(nbf) = time("nbf")
            && nbf > now + leeway
        {
            return Err(ClaimError::NotYetValid { nbf });
        }
        if let Some(iat) = time("iat")
            && self.reject_future_iat
            && iat > now + leeway
        {
            return Err(ClaimError::IssuedInFuture { iat });
        }
        if let Some(want) = &self.issuer
            && claims.get("iss").and_then(Value::as_str) != Some(want.as_str())
        {
            return Err(ClaimError::Issuer);
        }
        match claims.get("aud") {
            None => Ok(()),
            Some(aud) => {
                let named: Vec<&str> = match aud {
                    Value::String(s) => vec![s.as_str()],
                    Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                    Value::Null | Value::Bool(_) | Value::Number(_) | Value::Object(_) => Vec::new(),
                };
                if named.iter().any(|a| self.audience.iter().any(|w| w == a)) {
                    Ok(())
                } else {
                    Err(ClaimError::Audience)
                }
            }
        }
    }
}

/// A JWT whose signature and claims were accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedJwt {
    /// The protected header.
    pub header: Map<String, Value>,
    /// The claims.
    pub claims: Map<String, Value>,
    /// The algorithm it was signed with.
    pub alg: SignatureAlgorithm,
    /// The name of the key that verified it.
    pub key_name: String,
    /// The version of the key that verified it.
    pub key_version: u32,
}

fn accept_claims(jws: VerifiedJws, v: &JwtValidation, now: SystemTime) -> Result<VerifiedJwt> {
    let claims = parse_object(&jws.payload, "JWT claims set")?;
    v.check_claims(&claims, now)?;
    Ok(VerifiedJwt {
        header: jws.header,
        claims,
        alg: jws.alg,
        key_name: jws.key_name,
        key_version: jws.key_version,
    })
}

fn jws_options(v: &JwtValidation) -> JwsOptions {
    JwsOptions { algorithms: v.algorithms.clone() }
}

/// Verifies a JWT with the key version its `kid` names ([`jws_verify`]), then its claims
/// ([`JwtValidation::check_claims`]) at the store's time; returns the claims.
pub fn jwt_verify(store: &Store, token: &str, v: &JwtValidation) -> Result<Map<String, Value>> {
    jwt_verify_detailed(store, token, v).map(|t| t.claims)
}

/// [`jwt_verify`], returning the header and the key version too.
pub fn jwt_verify_detailed(store: &Store, token: &str, v: &JwtValidation) -> Result<VerifiedJwt> {
    let jws = jws_verify(store, token, &jws_options(v))?;
    accept_claims(jws, v, v.now.unwrap_or_else(|| store.ctx.now()))
}

/// [`jwt_verify`] with a key the caller chose (the `kid` is not looked at), at
/// [`JwtValidation::now`] or the clock of the store the key came from.
pub fn jwt_verify_with_key(key: &Key, token: &str, v: &JwtValidation) -> Result<Map<String, Value>> {
    let jws = jws_verify_with_key(key, token, &jws_options(v))?;
    accept_claims(jws, v, v.now.unwrap_or_else(|| key.now())).map(|t| t.claims)
}

// ------------------------------------------------------------------------------ JWKS

/// The one algorithm a key of `spec` signs with, if there is only one (EC and Ed25519
/// keys; an RSA key does RS* and PS*, so its JWK names none).
fn only_algorithm(spec: KeySpec) -> Option<SignatureAlgorithm> {
    let mut fitting = SignatureAlgorithm::ALL.iter().copied().filter(|a| a.fits(spec));
    match (fitting.next(), fitting.next()) {
        (Some(a), None) => Some(a),
        (Some(_), Some(_)) | (None, _) => None,
    }
}

/// A JWK Set (RFC 7517 section 5), `{"keys": [...]}`, of the named keys' versions that a
/// verifier should accept now: enabled, allowing `verify`, past their not-before and
/// before their expiry (at the store's time). Each JWK has `kid` = `NAME/VERSION`, `use`
/// `sig`, and `alg` where the key allows only one (`ES256`, `ES384`, `ES512`, `ES256K`,
/// `EdDSA`; RSA keys name none). A secp256k1 key's `crv` is RFC 8812's `secp256k1` (the
/// name JOSE libraries read), not the key vaults' `P-256K`.
///
/// A name given twice counts once. A key without a public key is refused
/// ([`InvalidReason::KeyMismatch`]): an HMAC key's secret never leaves the store, and an
/// AES key does not sign; a missing or deleted key is [`Error::NotFound`]; the store's own
/// keys are [`Error::PermissionDenied`].
pub fn jwks(store: &Store, names: &[&str]) -> Result<Value> {
    let now = store.ctx.now();
    let mut keys = Vec::new();
    let mut seen = BTreeSet::new();
    for name in names.iter().copied().filter(|n| seen.insert(*n)) {
        // Opening the current version refuses the store's own keys.
        let current = store.get_key(name)?;
        match current.spec().key_type() {
            KeyType::Rsa | KeyType::Ec | KeyType::Ed25519 => {}
            KeyType::Hmac | KeyType::Aes => {
                return Err(Error::invalid(
                    InvalidReason::KeyMismatch,
                    format!(
                        "key '{name}' is an {} key: a JWKS holds public keys (RSA, EC, Ed25519); an HMAC \
                         key's secret never leaves the store",
                        current.spec().key_type()
                    ),
                ));
            }
        }
        for info in store.describe_key(name)?.versions {
            let a = &info.attributes;
            let valid = a.enabled
                && a.allowed().contains(KeyOp::Verify)
                && a.not_before.is_none_or(|nb| nb <= now)
                && a.expires.is_none_or(|exp| now < exp);
            if !valid {
                continue;
            }
            let key = store.get_key_version(name, info.version)?;
            let mut jwk = key.public_key_jwk()?;
            let Some(obj) = jwk.as_object_mut() else {
                return Err(malformed("a public key's JWK is not a JSON object"));
            };
            obj.insert("use".into(), "sig".into());
            if let Some(alg) = only_algorithm(key.spec()) {
                obj.insert("alg".into(), alg.name().into());
            }
            match key.spec() {
                KeySpec::Ec(EcCurve::P256K) => {
                    obj.insert("crv".into(), "secp256k1".into());
                }
                KeySpec::Ec(EcCurve::P256 | EcCurve::P384 | EcCurve::P521)
                | KeySpec::Rsa { .. }
                | KeySpec::Ed25519
                | KeySpec::Aes(_)
                | KeySpec::Hmac { .. } => {}
            }
            keys.push(jwk);
        }
    }
    Ok(serde_json::json!({ "keys": keys }))
}
