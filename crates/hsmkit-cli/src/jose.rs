//! `hsmkit jwt sign|verify` and `hsmkit jwks`: thin shells over `hsmkit::jose`.

use std::time::Duration;

use hsmkit::jose::{JwtSignOptions, JwtValidation, jwt_sign, jwt_verify_detailed};
use hsmkit::{Error, ErrorKind, InvalidReason, Result, SignatureAlgorithm, parse_iso_duration};
use serde_json::{Map, Value, json};

use crate::Outcome;
use crate::backend;
use crate::cli::{Global, JwksArgs, JwtCommand, JwtSignArgs, JwtVerifyArgs};
use crate::io::{print_json, read_limited, write_all};
use crate::keys::parse_time;

/// The longest token read from a file or stdin.
const MAX_TOKEN: usize = 1 << 20;

pub(crate) fn run(g: &Global, cmd: &JwtCommand) -> Result<Outcome> {
    match cmd {
        JwtCommand::Sign(a) => sign(g, a),
        JwtCommand::Verify(a) => verify(g, a),
    }
}

/// A JSON object given on the command line.
fn json_object(text: &str, what: &str) -> Result<Map<String, Value>> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) | Err(_) => {
            Err(Error::invalid(InvalidReason::Malformed, format!("{what} must be a JSON object")))
        }
    }
}

fn sign(g: &Global, a: &JwtSignArgs) -> Result<Outcome> {
    let alg: SignatureAlgorithm = a.alg.parse()?;
    let claims = json_object(&a.claims, "--claims")?;
    let mut options = JwtSignOptions::new().issued_at(!a.no_iat);
    if let Some(d) = &a.expires_in {
        options = options.expires_in(parse_iso_duration(d)?);
    }
    if let Some(t) = &a.not_before {
        options = options.not_before(parse_time(t)?);
    }
    if let Some(h) = &a.header {
        for (name, value) in json_object(h, "--header")? {
            options = options.header(&name, value);
        }
    }
    let store = backend::open(g)?;
    let key = store.get_key(&a.name)?;
    let token = jwt_sign(&key, alg, &claims, &options)?;
    if let Some(out) = &a.output {
        write_all(Some(out), format!("{token}\n").as_bytes())?;
    }
    match (g.json, &a.output) {
        (true, Some(out)) => {
            print_json(&json!({"kid": key.info().kid(), "alg": alg.name(), "written": out}))?
        }
        (true, None) => print_json(&json!({"kid": key.info().kid(), "alg": alg.name(), "token": token}))?,
        (false, Some(_)) => {}
        (false, None) => outln!("{token}")?,
    }
    Ok(Outcome::Ok)
}

/// Whether a verification error says the token is not acceptable (exit status 1) rather
/// than that the command could not run: malformed or refused tokens, bad signatures, a
/// `kid` naming no key, a key version that refuses to verify.
fn token_refused(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::InvalidInput
            | ErrorKind::VerificationFailed
            | ErrorKind::NotFound
            | ErrorKind::PermissionDenied
    )
}

/// Why a token was refused, without the "invalid input: " of the error's display.
fn refusal(e: &Error) -> String {
    if let Error::InvalidInput { message, .. } = e { message.clone() } else { e.to_string() }
}

fn verify(g: &Global, a: &JwtVerifyArgs) -> Result<Outcome> {
    // Options first: a bad option is a usage error (2), not an invalid token.
    let mut v = JwtValidation::new().leeway(Duration::from_secs(a.leeway)).require_exp(!a.no_exp);
    if !a.algs.is_empty() {
        let algs = a.algs.iter().map(|s| s.parse()).collect::<Result<Vec<SignatureAlgorithm>>>()?;
        v = v.algorithms(&algs);
    }
    if let Some(i) = &a.issuer {
        v = v.issuer(i);
    }
    for aud in &a.audiences {
        v = v.audience(aud);
    }
    let token = match &a.token {
        Some(t) => t.trim().to_owned(),
        None => {
            let bytes = read_limited(a.input.as_deref(), MAX_TOKEN, "a token")?;
            std::str::from_utf8(&bytes)
                .map_err(|_| Error::invalid(InvalidReason::Malformed, "the token is not text"))?
                .trim()
                .to_owned()
        }
    };
    let store = backend::open(g)?;
    match jwt_verify_detailed(&store, &token, &v) {
        Ok(t) => {
            let kid = format!("{}/{}", t.key_name, t.key_version);
            if g.json {
                print_json(&json!({
                    "valid": true,
                    "kid": kid,
                    "alg": t.alg.name(),
                    "header": t.header,
                    "claims": t.claims,
                }))?;
            } else {
                outln!("token valid: kid {kid}, alg {}", t.alg)?;
                print_json(&Value::Object(t.claims))?;
            }
            Ok(Outcome::Ok)
        }
        Err(e) if token_refused(&e) => {
            if g.json {
                print_json(&json!({"valid": false, "error": refusal(&e)}))?;
            } else {
                outln!("token INVALID: {}", refusal(&e))?;
            }
            Ok(Outcome::Invalid)
        }
        Err(e) => Err(e),
    }
}

pub(crate) fn jwks(g: &Global, a: &JwksArgs) -> Result<Outcome> {
    let store = backend::open(g)?;
    let names: Vec<&str> = a.names.iter().map(String::as_str).collect();
    let doc = hsmkit::jose::jwks(&store, &names)?;
    match &a.output {
        Some(out) => {
            let text = serde_json::to_string_pretty(&doc)
                .map_err(|e| Error::invalid(InvalidReason::Malformed, e.to_string()))?;
            write_all(Some(out), format!("{text}\n").as_bytes())?;
            if g.json {
                print_json(
                    &json!({"written": out, "keys": doc.get("keys").and_then(Value::as_array).map_or(0, Vec::len)}),
                )?;
            }
        }
        None => print_json(&doc)?,
    }
    Ok(Outcome::Ok)
}
