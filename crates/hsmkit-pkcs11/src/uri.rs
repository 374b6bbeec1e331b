//! PKCS#11 URIs (RFC 7512), the subset hsmkit uses to find a token.
//!
//! `pkcs11:token=NAME;slot-id=N?module-path=/path/lib.so&pin-value=1234`
//! Path attributes (before `?`, separated by `;`): `token`, `manufacturer`, `serial`,
//! `model`, `slot-id`, `library-description` etc. are accepted where hsmkit uses them and
//! rejected otherwise. Query attributes (after `?`, separated by `&`): `module-path`,
//! `pin-value`, `pin-source`. Values are percent-decoded.
//!
//! Parse errors never quote a value, nor an attribute without `=` (it may be a PIN typed
//! with the wrong separator), nor an unknown attribute name unless it is a near miss of a
//! known one: what is shown is the attribute's position and, when it is one, its known
//! name. `Debug` of [`PinSource`] and [`Pkcs11Uri`] shows neither the PIN nor the
//! pin-source path.

use hsmkit::InvalidReason;
use std::fmt;
use std::path::PathBuf;

use hsmkit::{Error, Result};
use zeroize::Zeroizing;

/// Where the user PIN comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum PinSource {
    /// `pin-value=...` in the URI.
    Value(Zeroizing<String>),
    /// `pin-source=file:/path` (or a plain path): the first line of the file.
    File(PathBuf),
    /// Not in the URI: `HSMKIT_PKCS11_PIN` at open time.
    Env,
}

impl fmt::Debug for PinSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PinSource::Value(_) => f.write_str("Value([REDACTED])"),
            // A PIN typed into pin-source by mistake ends up here.
            PinSource::File(_) => f.write_str("File([REDACTED])"),
            PinSource::Env => f.write_str("Env"),
        }
    }
}

/// A parsed PKCS#11 URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// Token label (`token=`).
    pub token: Option<String>,
    /// Token serial number (`serial=`).
    pub serial: Option<String>,
    /// Token manufacturer (`manufacturer=`).
    pub manufacturer: Option<String>,
    /// Token model (`model=`).
    pub model: Option<String>,
    /// Slot id (`slot-id=`).
    pub slot_id: Option<u64>,
    /// Module to load (`module-path=`), else `HSMKIT_PKCS11_MODULE`.
    pub module_path: Option<PathBuf>,
    /// Where the PIN comes from.
    pub pin: PinSource,
    /// Where key metadata lives (`metadata=`).
    pub metadata: MetadataChoice,
}

/// Where a token's key metadata lives: the URI's `metadata=` query attribute.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum MetadataChoice {
    /// `metadata=auto` (the default): on the token if it keeps private data objects and
    /// changes to them, else in a file under the user's data directory.
    #[default]
    Auto,
    /// `metadata=token`: signed private `CKO_DATA` objects on the token.
    Token,
    /// `metadata=file:<path>`: one signed file (for tokens that refuse data objects).
    File(PathBuf),
}

fn bad(msg: impl fmt::Display) -> Error {
    Error::invalid(InvalidReason::Malformed, format!("PKCS#11 URI: {msg}"))
}

/// A URI that parses but asks for something contradictory or incomplete.
fn conflict(msg: impl fmt::Display) -> Error {
    Error::invalid(InvalidReason::Parameter, format!("PKCS#11 URI: {msg}"))
}

/// RFC 3986 percent-decoding to UTF-8 (also used for `file:` URIs by `hsmkit-open`).
/// The error does not quote the input (it may be a PIN).
pub fn percent_decode(s: &str) -> Result<String> {
    decode(s).map_err(bad)
}

/// [`percent_decode`], failing with a reason that quotes nothing.
fn decode(s: &str) -> std::result::Result<String, &'static str> {
    let bytes = s.as_bytes();
    let mut out = Zeroizing::new(Vec::with_capacity(bytes.len()));
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or("truncated percent-escape")?;
            let hex = std::str::from_utf8(hex).map_err(|_| "bad percent-escape")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| "bad percent-escape (not two hex digits)")?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(std::mem::take(&mut *out)).map_err(|e| {
        // The bytes may be a PIN: wipe them.
        drop(Zeroizing::new(e.into_bytes()));
        "value is not UTF-8 after percent-decoding"
    })
}

/// The attribute names hsmkit knows, path then query. (`object`, `id` and `type` are
/// known so as to be refused with a reason.)
const PATH_ATTRIBUTES: &[&str] =
    &["token", "serial", "manufacturer", "model", "slot-id", "object", "id", "type"];
const QUERY_ATTRIBUTES: &[&str] = &["module-path", "pin-value", "pin-source", "metadata"];

/// The error for attribute number `pos` (from 1) of `part` that has no `=`. Not quoted:
/// it may be a PIN typed with the wrong separator (`pin-value:1234`). Only a known
/// attribute name at its start is shown.
fn not_name_value(part: &str, pos: usize, attr: &str) -> Error {
    let known = PATH_ATTRIBUTES.iter().chain(QUERY_ATTRIBUTES).filter(|name| {
        attr.strip_prefix(**name)
            .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-'))
    });
    match known.max_by_key(|name| name.len()) {
        Some(name) => bad(format!(
            "{part} attribute {pos} ({name}...) is not name=value (its value is not shown; is the '=' missing?)"
        )),
        None => bad(format!("{part} attribute {pos} is not name=value (it is not shown)")),
    }
}

/// The error for an unknown attribute name: quoted only when it is a near miss of a known
/// name (a typo, then), since a PIN typed in the wrong place would be quoted otherwise.
fn unknown(part: &str, pos: usize, name: &str) -> Error {
    let known = if part == "path" { PATH_ATTRIBUTES } else { QUERY_ATTRIBUTES };
    let near =
        known.iter().chain(if part == "path" { QUERY_ATTRIBUTES } else { PATH_ATTRIBUTES }).find(|k| {
            let d = distance(k, name);
            d <= 2 && d < k.len()
        });
    match near {
        Some(k) if known.contains(k) => {
            bad(format!("unknown {part} attribute '{name}' (did you mean '{k}'?)"))
        }
        Some(k) => bad(format!(
            "'{k}' is a {} attribute, not a {part} attribute ('{name}')",
            if part == "path" { "query" } else { "path" }
        )),
        None => bad(format!("unknown {part} attribute {pos} (its name is not shown)")),
    }
}

/// Levenshtein distance of two short ASCII strings.
fn distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut prev = row.first().copied().unwrap_or_default();
        if let Some(first) = row.first_mut() {
            *first = i + 1;
        }
        for (j, cb) in b.iter().enumerate() {
            let (Some(&left), Some(&up)) = (row.get(j), row.get(j + 1)) else { break };
            let best = (left + 1).min(up + 1).min(prev + usize::from(ca != *cb));
            prev = up;
            if let Some(cell) = row.get_mut(j + 1) {
                *cell = best;
            }
        }
    }
    row.last().copied().unwrap_or_default()
}

impl Pkcs11Uri {
    /// Parses a URI. Unknown attributes are errors, so typos do not silently select
    /// another token.
    pub fn parse(uri: &str) -> Result<Self> {
        let rest = uri.strip_prefix("pkcs11:").ok_or_else(|| bad("must start with 'pkcs11:'"))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut u = Pkcs11Uri {
            token: None,
            serial: None,
            manufacturer: None,
            model: None,
            slot_id: None,
            module_path: None,
            pin: PinSource::Env,
            metadata: MetadataChoice::Auto,
        };
        let mut seen = std::collections::HashSet::new();
        for (part, sep_name) in [(path, "path"), (query, "query")] {
            let sep = if sep_name == "path" { ';' } else { '&' };
            for (n, attr) in part.split(sep).filter(|a| !a.is_empty()).enumerate() {
                let pos = n + 1;
                let (k, v) = attr.split_once('=').ok_or_else(|| not_name_value(sep_name, pos, attr))?;
                let known = if sep_name == "path" { PATH_ATTRIBUTES } else { QUERY_ATTRIBUTES };
                if !known.contains(&k) {
                    return Err(unknown(sep_name, pos, k));
                }
                // From here on `k` is a known name, safe to show; `v` never is.
                if !seen.insert((sep_name, k.to_owned())) {
                    return Err(conflict(format!("'{k}' given twice")));
                }
                let v = Zeroizing::new(decode(v).map_err(|why| bad(format!("the value of '{k}': {why}")))?);
                match (sep_name, k) {
                    ("path", "token") => u.token = Some(v.to_string()),
                    ("path", "serial") => u.serial = Some(v.to_string()),
                    ("path", "manufacturer") => u.manufacturer = Some(v.to_string()),
                    ("path", "model") => u.model = Some(v.to_string()),
                    ("path", "slot-id") => {
                        u.slot_id = Some(v.parse().map_err(|_| bad("slot-id is not a number"))?)
                    }
                    // Object attributes make no sense for a store of many keys.
                    ("path", "object" | "id" | "type") => {
                        return Err(bad(format!("'{k}' names an object; hsmkit opens a whole token")));
                    }
                    ("query", "module-path") => u.module_path = Some(PathBuf::from(v.as_str())),
                    ("query", "metadata") => {
                        u.metadata = match v.as_str() {
                            "auto" => MetadataChoice::Auto,
                            "token" => MetadataChoice::Token,
                            _ => match v.strip_prefix("file:") {
                                Some(p) if !p.is_empty() => MetadataChoice::File(PathBuf::from(p)),
                                _ => return Err(bad("metadata must be auto, token or file:<path>")),
                            },
                        }
                    }
                    ("query", "pin-value") => u.pin = PinSource::Value(v),
                    ("query", "pin-source") => {
                        let path = v.strip_prefix("file:").unwrap_or(v.as_str());
                        let path = path.strip_prefix("//").unwrap_or(path);
                        u.pin = PinSource::File(PathBuf::from(path));
                    }
                    _ => return Err(bad(format!("unknown {sep_name} attribute '{k}'"))),
                }
            }
        }
        if seen.contains(&("query", "pin-value".to_owned()))
            && seen.contains(&("query", "pin-source".to_owned()))
        {
            return Err(conflict("give pin-value or pin-source, not both"));
        }
        Ok(u)
    }

    /// The module path from the URI, else `HSMKIT_PKCS11_MODULE`.
    pub fn module(&self) -> Result<PathBuf> {
        if let Some(p) = &self.module_path {
            return Ok(p.clone());
        }
        std::env::var_os("HSMKIT_PKCS11_MODULE").map(PathBuf::from).ok_or_else(|| {
            conflict("no module: add ?module-path=/path/to/module.so or set HSMKIT_PKCS11_MODULE")
        })
    }

    /// Resolves the user PIN.
    pub fn pin(&self) -> Result<Zeroizing<String>> {
        match &self.pin {
            PinSource::Value(v) => Ok(v.clone()),
            PinSource::File(p) => {
                let text = Zeroizing::new(std::fs::read_to_string(p).map_err(|e| {
                    // The path is not shown: it may be a PIN typed into pin-source.
                    Error::Authentication(format!("cannot read the pin-source file: {}", e.kind()))
                })?);
                Ok(Zeroizing::new(text.lines().next().unwrap_or_default().to_owned()))
            }
            PinSource::Env => std::env::var("HSMKIT_PKCS11_PIN").map(Zeroizing::new).map_err(|_| {
                Error::Authentication(
                    "no PIN: add pin-value/pin-source to the URI or set HSMKIT_PKCS11_PIN".into(),
                )
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn metadata_attribute_is_accepted() {
        let u =
            Pkcs11Uri::parse("pkcs11:token=t?module-path=/m.so&metadata=file:/var/lib/meta.json").unwrap();
        assert_eq!(u.metadata, MetadataChoice::File(PathBuf::from("/var/lib/meta.json")));
        assert_eq!(
            Pkcs11Uri::parse("pkcs11:token=t?metadata=token").unwrap().metadata,
            MetadataChoice::Token
        );
        assert_eq!(Pkcs11Uri::parse("pkcs11:token=t").unwrap().metadata, MetadataChoice::Auto);
        assert!(Pkcs11Uri::parse("pkcs11:token=t?metadata=file:").is_err());
        assert!(Pkcs11Uri::parse("pkcs11:token=t?metadata=elsewhere").is_err());
    }

    #[test]
    fn parses_the_common_form() {
        let u = Pkcs11Uri::parse(
            "pkcs11:token=hsmkit-test?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234",
        )
        .unwrap();
        assert_eq!(u.token.as_deref(), Some("hsmkit-test"));
        assert_eq!(u.module().unwrap(), PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"));
        assert_eq!(u.pin().unwrap().as_str(), "1234");
    }

    #[test]
    fn percent_decoding_and_path_attributes() {
        let u =
            Pkcs11Uri::parse("pkcs11:token=My%20Token;serial=0a1b;slot-id=7;manufacturer=SoftHSM%20project")
                .unwrap();
        assert_eq!(u.token.as_deref(), Some("My Token"));
        assert_eq!(u.serial.as_deref(), Some("0a1b"));
        assert_eq!(u.slot_id, Some(7));
        assert_eq!(u.manufacturer.as_deref(), Some("SoftHSM project"));
        assert_eq!(u.pin, PinSource::Env);
    }

    #[test]
    fn pin_source_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pin");
        std::fs::write(&f, "9876\nignored\n").unwrap();
        let u = Pkcs11Uri::parse(&format!("pkcs11:token=t?pin-source=file:{}", f.display())).unwrap();
        assert_eq!(u.pin().unwrap().as_str(), "9876");
        let missing = Pkcs11Uri::parse("pkcs11:token=t?pin-source=file:/nonexistent/pin").unwrap();
        assert_eq!(missing.pin().unwrap_err().kind(), hsmkit::ErrorKind::Authentication);
    }

    #[test]
    fn rejects_bad_uris() {
        for bad in [
            "token=x",
            "pkcs11:tokn=x",
            "pkcs11:token=x?modul-path=/x",
            "pkcs11:token=x;token=y",
            "pkcs11:token=%zz",
            "pkcs11:token=%4",
            "pkcs11:token=%ff",
            "pkcs11:slot-id=abc",
            "pkcs11:object=key1",
            "pkcs11:token",
            "pkcs11:token=x?pin-value=1&pin-source=file:/p",
        ] {
            let e = Pkcs11Uri::parse(bad).unwrap_err();
            assert_eq!(e.kind(), hsmkit::ErrorKind::InvalidInput, "{bad}");
            assert!(e.to_string().contains("PKCS#11 URI"), "{e}");
        }
    }

    /// A PIN in any wrong place of a malformed URI stays out of the error's text and
    /// `Debug`.
    #[test]
    fn errors_never_show_the_pin() {
        const PIN: &str = "SECRET1234";
        for uri in [
            "pkcs11:token=t?pin-value:SECRET1234",
            "pkcs11:token=t?pin-value SECRET1234",
            "pkcs11:token=t?pin-valueSECRET1234",
            "pkcs11:token=t?pin-value=SECRET1234&pin-value=SECRET1234",
            "pkcs11:token=t?pin-value=SECRET%ZZ1234",
            "pkcs11:token=t?pin-value=SECRET1234%",
            "pkcs11:token=t?pin-value=SECRET1234%4",
            "pkcs11:token=t?pin-value=SECRET%ff1234",
            "pkcs11:token=t?pin-value=SECRET%c3%281234",
            "pkcs11:token=t?pin-value=%SECRET1234",
            "pkcs11:token=t?pin-source=SECRET1234&pin-value=x",
            "pkcs11:token=t?pin-value=SECRET1234&pin-source=x",
            "pkcs11:token=t?pin-source=SECRET1234&pin-source=SECRET1234",
            "pkcs11:token=t?pin-source=SECRET%ZZ1234",
            "pkcs11:token=t?pin-source:SECRET1234",
            "pkcs11:SECRET1234",
            "pkcs11:token=t;SECRET1234",
            "pkcs11:token=t?SECRET1234",
            "pkcs11:token=t?module-path=/x&SECRET1234",
            "pkcs11:token=t?module-path=/x&SECRET1234=1",
            "pkcs11:token=t?SECRET1234=pin-value",
            "pkcs11:SECRET1234=x",
            "pkcs11:token=t;pin-value=SECRET1234",
            "pkcs11:token=t?token=SECRET1234&x",
            "pkcs11:slot-id=SECRET1234",
            "pkcs11:token=t?pin-value=SECRET1234&modul-path=/x",
            "pkcs11:token=t?pin-value=SECRET1234&SECRET1234",
            "pkcs11:token=t?pin-value=SECRET1234&pin-value:SECRET1234",
            "SECRET1234",
            "pkcs11-SECRET1234",
            "pin-value=SECRET1234",
        ] {
            let e = Pkcs11Uri::parse(uri).unwrap_err();
            assert_eq!(e.kind(), hsmkit::ErrorKind::InvalidInput, "{uri}");
            for text in [format!("{e}"), format!("{e:?}")] {
                assert!(!text.contains(PIN), "{uri} -> {text}");
                assert!(!text.to_lowercase().contains(&PIN.to_lowercase()), "{uri} -> {text}");
            }
        }
        for e in [
            percent_decode("SECRET%ZZ1234").unwrap_err(),
            percent_decode("SECRET%ff1234").unwrap_err(),
            percent_decode("SECRET1234%").unwrap_err(),
        ] {
            assert!(!format!("{e} {e:?}").contains("SECRET"), "{e}");
        }
    }

    /// What the errors still say: the position, a known name, a near-miss name.
    #[test]
    fn errors_still_help() {
        let msg = |uri: &str| Pkcs11Uri::parse(uri).unwrap_err().to_string();
        let m = msg("pkcs11:token=t?module-path=/m&pin-value:1234");
        assert!(m.contains("query attribute 2") && m.contains("pin-value") && !m.contains("1234"), "{m}");
        let m = msg("pkcs11:token=t?1234");
        assert!(m.contains("query attribute 1 is not name=value") && !m.contains("1234"), "{m}");
        let m = msg("pkcs11:token=t?modul-path=/x");
        assert!(m.contains("'modul-path'") && m.contains("module-path"), "{m}");
        let m = msg("pkcs11:tokn=x");
        assert!(m.contains("'tokn'") && m.contains("'token'"), "{m}");
        let m = msg("pkcs11:token=x?token=y");
        assert!(m.contains("path attribute"), "{m}");
        let m = msg("pkcs11:token=x;token=y");
        assert!(m.contains("'token' given twice"), "{m}");
        let m = msg("pkcs11:token=%zz");
        assert!(m.contains("'token'") && m.contains("percent-escape"), "{m}");
    }

    #[test]
    fn pin_source_is_not_shown() {
        let u = Pkcs11Uri::parse("pkcs11:token=x?pin-source=SECRET1234").unwrap();
        assert!(!format!("{u:?} {:?}", u.pin).contains("SECRET1234"));
        let e = u.pin().unwrap_err();
        assert!(!format!("{e} {e:?}").contains("SECRET1234"), "{e}");
        let v = PinSource::Value(Zeroizing::new("SECRET1234".into()));
        assert!(!format!("{v:?}").contains("SECRET1234"));
    }

    #[test]
    fn edit_distance() {
        assert_eq!(distance("token", "token"), 0);
        assert_eq!(distance("token", "tokn"), 1);
        assert_eq!(distance("module-path", "modul-path"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("abc", ""), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn debug_hides_the_pin() {
        let u = Pkcs11Uri::parse("pkcs11:token=x?pin-value=secret-pin").unwrap();
        assert!(!format!("{u:?}").contains("secret-pin"));
    }
}
