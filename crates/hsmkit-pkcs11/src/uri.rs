//! PKCS#11 URIs (RFC 7512), the subset hsmkit uses to find a token.
//!
//! `pkcs11:token=NAME;slot-id=N?module-path=/path/lib.so&pin-value=1234`
//! Path attributes (before `?`, separated by `;`): `token`, `manufacturer`, `serial`,
//! `model`, `slot-id`, `library-description` etc. are accepted where hsmkit uses them and
//! rejected otherwise. Query attributes (after `?`, separated by `&`): `module-path`,
//! `module-name`, `pin-value`, `pin-source`. Values are percent-decoded.

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
            PinSource::File(p) => write!(f, "File({})", p.display()),
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
    Error::invalid(format!("PKCS#11 URI: {msg}"))
}

/// RFC 3986 percent-decoding to UTF-8 (also used for `file:` URIs by `hsmkit-open`).
pub fn percent_decode(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or_else(|| bad("truncated percent-escape"))?;
            let hex = std::str::from_utf8(hex).map_err(|_| bad("bad percent-escape"))?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad(format!("bad percent-escape %{hex}")))?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad("value is not UTF-8 after percent-decoding"))
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
            for attr in part.split(sep).filter(|a| !a.is_empty()) {
                let (k, v) =
                    attr.split_once('=').ok_or_else(|| bad(format!("'{attr}' is not name=value")))?;
                if !seen.insert((sep_name, k.to_owned())) {
                    return Err(bad(format!("'{k}' given twice")));
                }
                let v = percent_decode(v)?;
                match (sep_name, k) {
                    ("path", "token") => u.token = Some(v),
                    ("path", "serial") => u.serial = Some(v),
                    ("path", "manufacturer") => u.manufacturer = Some(v),
                    ("path", "model") => u.model = Some(v),
                    ("path", "slot-id") => {
                        u.slot_id =
                            Some(v.parse().map_err(|_| bad(format!("slot-id '{v}' is not a number")))?)
                    }
                    // Object attributes make no sense for a store of many keys.
                    ("path", "object" | "id" | "type") => {
                        return Err(bad(format!("'{k}' names an object; hsmkit opens a whole token")));
                    }
                    ("query", "module-path") => u.module_path = Some(PathBuf::from(v)),
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
                    ("query", "pin-value") => u.pin = PinSource::Value(Zeroizing::new(v)),
                    ("query", "pin-source") => {
                        let path = v.strip_prefix("file:").unwrap_or(&v);
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
            return Err(bad("give pin-value or pin-source, not both"));
        }
        Ok(u)
    }

    /// The module path from the URI, else `HSMKIT_PKCS11_MODULE`.
    pub fn module(&self) -> Result<PathBuf> {
        if let Some(p) = &self.module_path {
            return Ok(p.clone());
        }
        std::env::var_os("HSMKIT_PKCS11_MODULE")
            .map(PathBuf::from)
            .ok_or_else(|| bad("no module: add ?module-path=/path/to/module.so or set HSMKIT_PKCS11_MODULE"))
    }

    /// Resolves the user PIN.
    pub fn pin(&self) -> Result<Zeroizing<String>> {
        match &self.pin {
            PinSource::Value(v) => Ok(v.clone()),
            PinSource::File(p) => {
                let text = Zeroizing::new(std::fs::read_to_string(p).map_err(|e| {
                    Error::Authentication(format!("cannot read pin-source {}: {}", p.display(), e.kind()))
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

    #[test]
    fn debug_hides_the_pin() {
        let u = Pkcs11Uri::parse("pkcs11:token=x?pin-value=secret-pin").unwrap();
        assert!(!format!("{u:?}").contains("secret-pin"));
    }
}
