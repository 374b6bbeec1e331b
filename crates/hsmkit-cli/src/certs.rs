//! `hsmkit cert ...`: certificates as store objects (`hsmkit::certificates`), and `cert
//! issue`, a CA in the store signing requests (`hsmkit::x509::issue`). Certificates are
//! public; the only private output is `cert export --with-key`, of an exportable key.

use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, SystemTime};

use hsmkit::certificates::{
    CertificateBundle, CertificateDescription, CertificateIssuer, CertificateOperation, CertificatePolicy,
    CertificateProperties, LifetimeAction, PendingCertificate,
};
use hsmkit::report::{
    certificate_description as description_json, certificate_due as due_json,
    certificate_policy as policy_json, certificate_properties as properties_json,
    pending_certificate as pending_json, rfc3339,
};
use hsmkit::x509::{
    self, Certificate, CertificateRequest, ExtendedKeyUsage, IssueParams, KeyUsage, SubjectAltName,
};
use hsmkit::{Error, InvalidReason, KeySpec, Result, Store};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::Outcome;
use crate::backend;
use crate::cli::{
    CertCommand, CertCreateArgs, CertExportArgs, CertFormat, CertImportArgs, CertIssueArgs, CertIssuerArg,
    CertKeyType, CertPendingArgs, Global, NameVersion,
};
use crate::io::{b64, print_json, read_limited, write_all, write_with};

/// The most a certificate, request, PEM or PKCS#12 file is read into memory: real ones
/// are a few KiB, a long chain some tens.
const MAX_FILE: usize = 1 << 20;

/// The most a password file or stdin is read for the PKCS#12 password (its first line).
const MAX_PASSWORD_FILE: usize = 1 << 12;

fn invalid(msg: impl Into<String>) -> Error {
    Error::invalid(InvalidReason::Parameter, msg)
}

// ---------------------------------------------------------------- JSON and text shapes

/// One line per version: name, version, key version, subject, state, expiry.
fn line(p: &CertificateProperties) -> String {
    let now = SystemTime::now();
    let state = if now >= p.expires {
        " EXPIRED"
    } else if now < p.not_before {
        " NOT-YET-VALID"
    } else {
        ""
    };
    format!(
        "{:<24} v{:<3} key v{:<3} {}{state} expires={}",
        p.name,
        p.version,
        p.key_version,
        p.subject,
        rfc3339(p.expires)
    )
}

fn show_properties(g: &Global, p: &CertificateProperties) -> Result<()> {
    if g.json {
        print_json(&properties_json(p))
    } else {
        outln!("{}", line(p))?;
        outln!("  issuer {}  serial {}", p.issuer, p.serial)?;
        outln!("  valid {} to {}  sha256 {}", rfc3339(p.not_before), rfc3339(p.expires), p.thumbprint_sha256)
    }
}

fn policy_text(p: &CertificatePolicy) -> String {
    let mut parts = vec![
        format!("issuer {}", p.issuer),
        p.key_spec.to_string(),
        format!("{} months", p.validity_months),
        match p.lifetime_action {
            Some(a) => a.to_string(),
            None => "no automatic renewal".into(),
        },
        if p.reuse_key { "same key on renewal" } else { "new key on renewal" }.into(),
        if p.exportable { "exportable" } else { "not exportable" }.into(),
    ];
    if p.ca {
        parts.push("CA".into());
    }
    parts.join(", ")
}

/// `cert show`: the current version (if any), the version count, policy and any pending
/// request.
fn show_description(g: &Global, d: &CertificateDescription) -> Result<()> {
    if g.json {
        let mut v = d.current().map_or_else(|| json!({ "name": d.name }), properties_json);
        if let Some(obj) = v.as_object_mut() {
            obj.insert("versions".into(), json!(d.versions.len()));
            obj.insert("policy".into(), policy_json(&d.policy));
            obj.insert("pending".into(), d.pending.as_ref().map(pending_json).transpose()?.into());
        }
        return print_json(&v);
    }
    match d.current() {
        Some(p) => show_properties(g, p)?,
        None => outln!("{:<24} (no version yet)", d.name)?,
    }
    outln!("  {} version(s); policy: {}", d.versions.len(), policy_text(&d.policy))?;
    outln!("  subject {}", d.policy.subject)?;
    if !d.policy.subject_alt_names.is_empty() {
        let sans: Vec<String> = d.policy.subject_alt_names.iter().map(ToString::to_string).collect();
        outln!("  alternative names {}", sans.join(", "))?;
    }
    if let Some(p) = &d.pending {
        outln!(
            "  pending: a request for key version {} since {} ('hsmkit cert pending {}' prints it)",
            p.key_version,
            rfc3339(p.created),
            d.name
        )?;
    }
    Ok(())
}

fn print_versions(g: &Global, list: &[CertificateProperties]) -> Result<()> {
    if g.json {
        print_json(&Value::Array(list.iter().map(properties_json).collect()))
    } else if list.is_empty() {
        outln!("(no versions)")
    } else {
        list.iter().try_for_each(|p| outln!("{}", line(p)))
    }
}

fn print_list(g: &Global, list: &[CertificateDescription]) -> Result<()> {
    if g.json {
        return print_json(&Value::Array(list.iter().map(description_json).collect::<Result<_>>()?));
    }
    if list.is_empty() {
        return outln!("(no certificates)");
    }
    for d in list {
        let pending = if d.pending.is_some() { " (request pending)" } else { "" };
        match d.current() {
            Some(p) => outln!("{}{pending}", line(p))?,
            None => outln!("{:<24} (no version yet){pending}", d.name)?,
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- input

/// A file's bytes, at most [`MAX_FILE`].
fn read_file(path: &Path, what: &str) -> Result<Zeroizing<Vec<u8>>> {
    read_limited(Some(path), MAX_FILE, what)
}

fn is_pem(bytes: &[u8]) -> bool {
    bytes.windows(11).any(|w| w == b"-----BEGIN ")
}

fn text<'a>(bytes: &'a [u8], path: &Path) -> Result<&'a str> {
    std::str::from_utf8(bytes).map_err(|_| {
        Error::invalid(InvalidReason::Malformed, format!("{} is not text (PEM)", path.display()))
    })
}

/// Certificates from a PEM chain (leaf first) or one DER certificate.
fn read_certificates(path: &Path) -> Result<Vec<Certificate>> {
    let bytes = read_file(path, "a certificate file")?;
    if is_pem(&bytes) {
        Certificate::from_pem_chain(text(&bytes, path)?)
    } else {
        Ok(vec![Certificate::from_der(&bytes)?])
    }
}

/// A certificate request, PEM or DER.
fn read_csr(path: &Path) -> Result<CertificateRequest> {
    let bytes = read_file(path, "a certificate request")?;
    if is_pem(&bytes) {
        CertificateRequest::from_pem(text(&bytes, path)?)
    } else {
        CertificateRequest::from_der(&bytes)
    }
}

/// The first line of `bytes` (without its `\n` or `\r\n`), as the PKCS#12 password.
fn first_line(bytes: &[u8], source: &str) -> Result<Zeroizing<String>> {
    let line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let s = std::str::from_utf8(line).map_err(|_| {
        Error::invalid(InvalidReason::Malformed, format!("the password in {source} is not UTF-8"))
    })?;
    Ok(Zeroizing::new(s.to_owned()))
}

/// The PKCS#12 password: never a command-line argument (other users see those), but an
/// environment variable, the first line of a file, a prompt on a terminal, or the first
/// line of stdin.
fn pkcs12_password(a: &CertImportArgs) -> Result<Zeroizing<String>> {
    if let Some(var) = &a.password_env {
        return std::env::var(var)
            .map(Zeroizing::new)
            .map_err(|_| invalid(format!("--password-env {var}: the variable is not set, or not UTF-8")));
    }
    match &a.password_file {
        Some(f) => first_line(
            &read_limited(Some(f), MAX_PASSWORD_FILE, "a password file")?,
            &f.display().to_string(),
        ),
        None if std::io::stdin().is_terminal() => rpassword::prompt_password("PKCS#12 password: ")
            .map(Zeroizing::new)
            .map_err(|e| Error::io("reading from the terminal", &e)),
        None => first_line(&read_limited(None, MAX_PASSWORD_FILE, "a password on stdin")?, "stdin"),
    }
}

fn parse_all<T: std::str::FromStr<Err = Error>>(items: &[String]) -> Result<Vec<T>> {
    items.iter().map(|s| s.parse()).collect()
}

/// The policy `cert create` asks for; the defaults are the library's
/// ([`CertificatePolicy::new`]) unless an option says otherwise.
fn create_policy(a: &CertCreateArgs) -> Result<CertificatePolicy> {
    let t = match a.key_type {
        CertKeyType::Rsa => "rsa",
        CertKeyType::Ec => "ec",
        CertKeyType::Ed25519 => "ed25519",
    };
    let mut p =
        CertificatePolicy::new(a.subject.clone(), KeySpec::from_options(t, a.size, a.curve.as_deref())?);
    p.subject_alt_names = parse_all::<SubjectAltName>(&a.san)?;
    p.key_usage = parse_all::<KeyUsage>(&a.key_usage)?;
    p.extended_key_usage = parse_all::<ExtendedKeyUsage>(&a.eku)?;
    p.exportable = a.exportable;
    p.reuse_key = a.reuse_key;
    p.validity_months = a.validity_months;
    p.issuer = match a.issuer {
        CertIssuerArg::SelfSigned => CertificateIssuer::SelfSigned,
        CertIssuerArg::Unknown => CertificateIssuer::Unknown,
    };
    p.ca = a.ca;
    if let Some(pct) = a.renew_at_percent {
        p.lifetime_action = Some(LifetimeAction::AtPercentage(pct));
    } else if let Some(days) = a.renew_days_before_expiry {
        p.lifetime_action = Some(LifetimeAction::DaysBeforeExpiry(days));
    } else if a.no_auto_renew {
        p.lifetime_action = None;
    }
    if a.csr_out.is_some() && p.issuer != CertificateIssuer::Unknown {
        return Err(invalid("--csr-out is for --issuer unknown (a self-signed certificate has no request)"));
    }
    Ok(p)
}

// ---------------------------------------------------------------- output

/// Prints `doc` with one more member, `field`, holding `value` (a PEM that may hold a
/// private key): written escaped straight into the wiping stdout writer, so no unwiped
/// copy of it (a JSON `Value`, a serialized `String`) is ever made.
fn print_json_with(doc: &Value, field: &str, value: &str) -> Result<()> {
    let head = serde_json::to_string_pretty(doc)
        .ok()
        .and_then(|s| s.strip_suffix("\n}").map(str::to_owned))
        .ok_or_else(|| Error::backend("cli", "cert", "the metadata did not serialize"))?;
    let key = serde_json::to_string(field).unwrap_or_default();
    write_with(None, |w| {
        let io = |e: std::io::Error| Error::io("writing stdout", &e);
        w.write_all(head.as_bytes()).map_err(io)?;
        w.write_all(format!(",\n  {key}: ").as_bytes()).map_err(io)?;
        serde_json::to_writer(&mut *w, value)
            .map_err(|e| Error::io("writing stdout", &std::io::Error::other(e)))?;
        w.write_all(b"\n}\n").map_err(io)
    })
}

/// A request, as `cert create --issuer unknown`, `cert renew` and `cert pending` print it:
/// the PEM on stdout or in `out`; under --json a document with it (or where it went).
fn show_pending(g: &Global, p: &PendingCertificate, out: Option<&Path>) -> Result<()> {
    let pem = p.csr.to_pem()?;
    if let Some(path) = out {
        write_all(Some(path), pem.as_bytes())?;
    }
    if g.json {
        let mut doc = pending_json(p)?;
        if let Some(obj) = doc.as_object_mut() {
            obj.insert("status".into(), json!("pending"));
            if let Some(path) = out {
                obj.remove("csr");
                obj.insert("written".into(), json!(path));
            }
        }
        print_json(&doc)
    } else if let Some(path) = out {
        outln!(
            "{}: request pending for key version {}, written to {}; have a CA sign it, then 'hsmkit cert merge {} --cert FILE'",
            p.name,
            p.key_version,
            path.display(),
            p.name
        )
    } else {
        write_all(None, pem.as_bytes())
    }
}

fn show_operation(g: &Global, op: &CertificateOperation, csr_out: Option<&Path>) -> Result<()> {
    match op {
        CertificateOperation::Completed(p) => show_properties(g, p),
        CertificateOperation::Pending(p) => show_pending(g, p, csr_out),
    }
}

// ---------------------------------------------------------------- commands

pub(crate) fn run(g: &Global, cmd: &CertCommand) -> Result<Outcome> {
    // Only the commands that add a certificate make a missing keystore (as `key create`).
    let missing = match cmd {
        CertCommand::Create(_) | CertCommand::Import(_) => backend::Missing::Create,
        CertCommand::Issue(_)
        | CertCommand::Export(_)
        | CertCommand::Show(_)
        | CertCommand::List
        | CertCommand::Versions { .. }
        | CertCommand::Merge(_)
        | CertCommand::Pending(_)
        | CertCommand::Renew(_)
        | CertCommand::RenewDue
        | CertCommand::Due
        | CertCommand::Delete { .. }
        | CertCommand::Recover { .. }
        | CertCommand::Purge { .. }
        | CertCommand::Deleted => backend::Missing::Refuse,
    };
    // Input is read and checked before the store is opened: bad input costs no PIN or
    // passphrase, and a password prompt does not interleave with the store's.
    match cmd {
        CertCommand::Create(a) => {
            let policy = create_policy(a)?;
            let store = backend::open_with(g, missing)?;
            let op = store.create_certificate(&a.name, &policy)?;
            show_operation(g, &op, a.csr_out.as_deref())?;
        }
        CertCommand::Issue(a) => issue(g, a)?,
        CertCommand::Export(a) => export(g, a)?,
        CertCommand::Import(a) => {
            let props = match (&a.pfx, &a.pem) {
                (Some(pfx), _) => {
                    let bytes = read_file(pfx, "a PKCS#12 file")?;
                    let password = pkcs12_password(a)?;
                    backend::open_with(g, missing)?.import_pkcs12(&a.name, &bytes, &password, a.exportable)?
                }
                (None, Some(pem)) => {
                    let bytes = read_file(pem, "a PEM file")?;
                    let pem_text = text(&bytes, pem)?;
                    backend::open_with(g, missing)?.import_certificate_pem(&a.name, pem_text, a.exportable)?
                }
                // clap requires one of them.
                (None, None) => return Err(invalid("give --pfx FILE or --pem FILE")),
            };
            show_properties(g, &props)?;
        }
        CertCommand::Merge(a) => {
            let chain = read_certificates(&a.cert)?;
            let store = backend::open_with(g, missing)?;
            show_properties(g, &store.merge_certificate(&a.name, &chain)?)?;
        }
        CertCommand::Show(nv) => show(g, &backend::open_with(g, missing)?, nv)?,
        CertCommand::List => print_list(g, &backend::open_with(g, missing)?.list_certificates()?)?,
        CertCommand::Versions { name } => {
            print_versions(g, &backend::open_with(g, missing)?.list_certificate_versions(name)?)?
        }
        CertCommand::Pending(a) => pending(g, &backend::open_with(g, missing)?, a)?,
        CertCommand::Renew(a) => {
            let op = backend::open_with(g, missing)?.renew_certificate(&a.name)?;
            show_operation(g, &op, a.csr_out.as_deref())?;
        }
        CertCommand::RenewDue => renew_due(g, &backend::open_with(g, missing)?)?,
        CertCommand::Due => {
            let due = backend::open_with(g, missing)?.certificates_due()?;
            if g.json {
                print_json(&Value::Array(due.iter().map(due_json).collect()))?;
            } else if due.is_empty() {
                outln!("no certificate is due for renewal")?;
            } else {
                for d in &due {
                    outln!("{:<24} v{:<3} issuer {} {}", d.name, d.version, d.issuer, d.reason)?;
                }
            }
        }
        CertCommand::Delete { name } => {
            let d = backend::open_with(g, missing)?.delete_certificate(name)?;
            if g.json {
                print_json(&description_json(&d)?)?;
            } else {
                let purge = d.state.deleted.map(|x| rfc3339(x.scheduled_purge)).unwrap_or_default();
                outln!(
                    "deleted certificate {name} ({} version(s)) and its key; recoverable until {purge}",
                    d.versions.len()
                )?;
            }
        }
        CertCommand::Recover { name } => {
            show_description(g, &backend::open_with(g, missing)?.recover_deleted_certificate(name)?)?
        }
        CertCommand::Purge { name } => {
            backend::open_with(g, missing)?.purge_deleted_certificate(name)?;
            if g.json {
                print_json(&json!({ "purged": name }))?;
            } else {
                outln!("purged certificate {name} and its key")?;
            }
        }
        CertCommand::Deleted => {
            let list = backend::open_with(g, missing)?.list_deleted_certificates()?;
            if g.json {
                print_json(&Value::Array(list.iter().map(description_json).collect::<Result<_>>()?))?;
            } else if list.is_empty() {
                outln!("(no deleted certificates)")?;
            } else {
                for d in &list {
                    let when = d.state.deleted.map(|x| rfc3339(x.scheduled_purge)).unwrap_or_default();
                    outln!("{:<24} {} version(s), purge scheduled {when}", d.name, d.versions.len())?;
                }
            }
        }
    }
    Ok(Outcome::Ok)
}

fn show(g: &Global, store: &Store, nv: &NameVersion) -> Result<()> {
    let d = store.describe_certificate(&nv.name)?;
    // describe_certificate also answers for deleted certificates; show, like get, does not.
    if d.state.deleted.is_some() {
        return Err(Error::NotFound {
            what: format!("certificate '{}' (it is deleted: recover or purge it)", nv.name),
        });
    }
    match nv.version {
        Some(v) => show_properties(
            g,
            d.versions.iter().find(|p| p.version == v).ok_or_else(|| Error::NotFound {
                what: format!("version {v} of certificate '{}'", nv.name),
            })?,
        ),
        None => show_description(g, &d),
    }
}

fn pending(g: &Global, store: &Store, a: &CertPendingArgs) -> Result<()> {
    if !a.cancel {
        return show_pending(g, &store.pending_certificate(&a.name)?, a.out.as_deref());
    }
    store.cancel_pending_certificate(&a.name)?;
    if g.json {
        print_json(&json!({ "name": a.name, "cancelled": true }))
    } else {
        outln!("{}: pending request cancelled", a.name)
    }
}

/// `cert issue`: the CA object's current certificate and the key version it certifies
/// (not simply the newest key version, which may be one a pending request waits on).
fn issue(g: &Global, a: &CertIssueArgs) -> Result<()> {
    let csr = read_csr(&a.csr)?;
    let mut params = IssueParams::default();
    params.ca = a.ca;
    params.path_len = a.path_len;
    if let Some(days) = a.days {
        params.validity = Duration::from_secs(u64::from(days) * 86_400);
    }
    let store = backend::open(g)?;
    let ca = store.get_certificate(&a.ca_name)?;
    let ca_key = store.get_key_version(&a.ca_name, ca.properties.key_version)?;
    let cert = x509::issue(&ca_key, ca.certificate()?, &csr, &params)?;
    let mut pem = cert.to_pem()?;
    if a.chain {
        pem.push_str(&ca.to_pem(true)?);
    }
    if a.out.is_some() {
        write_all(a.out.as_deref(), pem.as_bytes())?;
    }
    if g.json {
        let (not_before, expires) = cert.validity();
        let mut doc = json!({
            "subject": cert.subject(),
            "issuer": cert.issuer(),
            "serial": cert.serial_hex(),
            "not_before": rfc3339(not_before),
            "expires": rfc3339(expires),
            "thumbprint_sha256": cert.sha256_fingerprint(store.crypto()),
            "ca": cert.basic_constraints()?.0,
            "issued_by": format!("{}/{}", a.ca_name, ca.properties.version),
        });
        if let Some(obj) = doc.as_object_mut() {
            match &a.out {
                Some(p) => obj.insert("written".into(), json!(p)),
                None => obj.insert("pem".into(), json!(pem)),
            };
        }
        print_json(&doc)
    } else {
        match &a.out {
            None => write_all(None, pem.as_bytes()),
            Some(path) => outln!(
                "issued '{}' by '{}' (serial {}), valid until {}: written to {}",
                cert.subject(),
                cert.issuer(),
                cert.serial_hex(),
                rfc3339(cert.validity().1),
                path.file_name()
                    .map_or_else(|| path.display().to_string(), |f| f.to_string_lossy().into_owned())
            ),
        }
    }
}

fn bundle(store: &Store, name: &str, version: Option<u32>) -> Result<CertificateBundle> {
    match version {
        Some(v) => store.get_certificate_version(name, v),
        None => store.get_certificate(name),
    }
}

fn export(g: &Global, a: &CertExportArgs) -> Result<()> {
    if a.format == CertFormat::Der && (a.chain || a.with_key) {
        return Err(invalid("DER holds the leaf certificate only: --chain and --with-key need --format pem"));
    }
    let store = backend::open(g)?;
    let b = bundle(&store, &a.name, a.version)?;
    let out = a.output.as_deref();
    let mut doc = properties_json(&b.properties);
    if a.format == CertFormat::Der {
        let der = b.certificate()?.to_der();
        if let Some(path) = out {
            write_all(Some(path), der)?;
        }
        return match (g.json, out) {
            (false, None) => write_all(None, der),
            (false, Some(_)) => Ok(()),
            (true, _) => {
                if let Some(obj) = doc.as_object_mut() {
                    match out {
                        Some(p) => obj.insert("written".into(), json!(p)),
                        None => obj.insert("der_base64".into(), json!(b64(der))),
                    };
                }
                print_json(&doc)
            }
        };
    }
    // The key (when asked for) first, as Key Vault's PEM form has it; then the
    // certificates. Held in wiped memory: it may be a private key.
    let mut pem = Zeroizing::new(String::new());
    if a.with_key {
        // The certificate version read above, so that key and certificate match.
        pem.push_str(&store.export_certificate_key(&a.name, Some(b.properties.version))?);
    }
    pem.push_str(&b.to_pem(a.chain)?);
    if let Some(path) = out {
        write_all(Some(path), pem.as_bytes())?;
    }
    match (g.json, out) {
        (false, None) => write_all(None, pem.as_bytes()),
        (false, Some(_)) => Ok(()),
        (true, Some(path)) => {
            if let Some(obj) = doc.as_object_mut() {
                obj.insert("written".into(), json!(path));
            }
            print_json(&doc)
        }
        (true, None) => print_json_with(&doc, "pem", &pem),
    }
}

fn renew_due(g: &Global, store: &Store) -> Result<()> {
    let done = store.renew_due_certificates()?;
    let failed = done.iter().any(|r| r.result.is_err());
    if g.json {
        let mut list = Vec::new();
        for r in &done {
            let mut v = due_json(&r.due);
            let (status, extra) = match &r.result {
                Ok(Some(CertificateOperation::Completed(p))) => {
                    ("renewed", json!({ "new_version": p.version }))
                }
                Ok(Some(CertificateOperation::Pending(p))) => {
                    ("pending", json!({ "pending": pending_json(p)? }))
                }
                Ok(None) => ("needs-ca", json!({})),
                Err(e) => ("failed", json!({ "error": e.to_string() })),
            };
            if let (Some(obj), Value::Object(extra)) = (v.as_object_mut(), extra) {
                obj.insert("status".into(), json!(status));
                obj.extend(extra);
            }
            list.push(v);
        }
        print_json(&Value::Array(list))?;
    } else if done.is_empty() {
        outln!("no certificate is due for renewal")?;
    } else {
        for r in &done {
            let (name, from) = (&r.due.name, r.due.version);
            match &r.result {
                Ok(Some(CertificateOperation::Completed(p))) => {
                    outln!("renewed {name} v{from} -> v{} ({})", p.version, r.due.reason)?
                }
                Ok(Some(CertificateOperation::Pending(p))) => outln!(
                    "{name} v{from}: request pending for key version {} ({}); 'hsmkit cert pending {name}' prints it",
                    p.key_version,
                    r.due.reason
                )?,
                Ok(None) => outln!(
                    "{name} v{from} is due ({}), issuer {}: a CA must sign; 'hsmkit cert renew {name}' makes the request",
                    r.due.reason,
                    r.due.issuer
                )?,
                Err(e) => outln!("FAILED to renew {name} v{from}: {e}")?,
            }
        }
    }
    if failed {
        return Err(Error::backend(
            "store",
            "renew-due",
            "some certificates could not be renewed (listed above)",
        ));
    }
    Ok(())
}
