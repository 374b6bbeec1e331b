//! csr: PKCS#10 certificate requests signed by a store key.

use hsmkit::x509::{self, CertificateParams, ExtendedKeyUsage, KeyUsage, SubjectAltName};
use hsmkit::{Result, SignatureAlgorithm};
use serde_json::json;

use crate::Outcome;
use crate::backend;
use crate::cli::{CsrArgs, Global};
use crate::io::{print_json, write_all};

fn parse_all<T: std::str::FromStr<Err = hsmkit::Error>>(items: &[String]) -> Result<Vec<T>> {
    items.iter().map(|s| s.parse()).collect()
}

pub(crate) fn csr(g: &Global, a: &CsrArgs) -> Result<Outcome> {
    // Parse everything before opening the store: bad input costs no PIN or passphrase.
    let mut params = CertificateParams::new(a.subject.clone());
    params.subject_alt_names = parse_all::<SubjectAltName>(&a.san)?;
    params.key_usage = parse_all::<KeyUsage>(&a.key_usage)?;
    params.extended_key_usage = parse_all::<ExtendedKeyUsage>(&a.eku)?;
    params.ca = a.ca;
    params.path_len = a.path_len;
    params.signature_algorithm = a.alg.as_deref().map(str::parse::<SignatureAlgorithm>).transpose()?;
    let store = backend::open(g)?;
    let key = backend::key_at(&store, &a.name, a.version)?;
    let csr = x509::create_csr(&key, &params)?;
    let pem = csr.to_pem()?;
    if a.out.is_some() {
        write_all(a.out.as_deref(), pem.as_bytes())?;
    }
    if g.json {
        let mut doc = json!({
            "kid": key.info().kid(),
            "subject": csr.subject(),
            "subject_alt_names": params.subject_alt_names.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        });
        if let Some(obj) = doc.as_object_mut() {
            match &a.out {
                Some(p) => obj.insert("written".into(), json!(p)),
                None => obj.insert("pem".into(), json!(pem)),
            };
        }
        print_json(&doc)?;
    } else if a.out.is_none() {
        write_all(None, pem.as_bytes())?;
    }
    Ok(Outcome::Ok)
}
