//! `hsmkit key ...`: the lifecycle.

use hsmkit::InvalidReason;
use std::collections::BTreeMap;
use std::time::SystemTime;

use hsmkit::report::{
    key_description as describe_json, key_info as info_json, rfc3339, rotation_policy as policy_json,
};
use hsmkit::{
    Error, KeyAttributes, KeyDescription, KeyInfo, KeyMaterial, KeyOps, KeySpec, KeyUpdate, Result,
    RotationPolicy, Store, parse_iso_duration,
};
use serde_json::{Value, json};

use crate::Outcome;
use crate::backend;
use crate::backup::{read_backup, write_backup};
use crate::cli::{
    AttrArgs, CreateArgs, Global, ImportArgs, ImportFormat, KeyCommand, KeyTypeArg, PolicyArgs, PublicArgs,
    PublicFormat, UpdateArgs,
};
use crate::io::{print_json, read_all, write_all};

/// An RFC 3339 time, or an ISO 8601 duration from now.
pub(crate) fn parse_time(s: &str) -> Result<SystemTime> {
    let s = s.trim();
    if let Some(d) = s.strip_prefix('+').or(Some(s)).filter(|d| d.starts_with('P')) {
        return Ok(SystemTime::now() + parse_iso_duration(d)?);
    }
    humantime::parse_rfc3339_weak(s).map_err(|_| {
        Error::invalid(
            InvalidReason::Malformed,
            format!("'{s}' is not an RFC 3339 time (2027-01-31T00:00:00Z) or a duration (P90D)"),
        )
    })
}

fn parse_optional_time(s: &str) -> Result<Option<SystemTime>> {
    if s.eq_ignore_ascii_case("none") { Ok(None) } else { parse_time(s).map(Some) }
}

/// `K=V` pairs.
pub(crate) fn parse_pairs(pairs: &[String], what: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for p in pairs {
        let (k, v) = p.split_once('=').ok_or_else(|| {
            Error::invalid(InvalidReason::Malformed, format!("{what} '{p}' is not KEY=VALUE"))
        })?;
        if out.insert(k.to_string(), v.to_string()).is_some() {
            return Err(Error::invalid(InvalidReason::Parameter, format!("{what} '{k}' given twice")));
        }
    }
    Ok(out)
}

fn attributes(a: &AttrArgs, exportable: bool) -> Result<KeyAttributes> {
    Ok(KeyAttributes {
        ops: a.ops.as_deref().map(str::parse::<KeyOps>).transpose()?,
        enabled: true,
        not_before: a.not_before.as_deref().map(parse_time).transpose()?,
        expires: a.expires.as_deref().map(parse_time).transpose()?,
        tags: parse_pairs(&a.tags, "tag")?,
        exportable,
    })
}

fn info_line(i: &KeyInfo) -> String {
    let a = &i.attributes;
    let mut s = format!(
        "{:<24} v{:<3} {:<9} ops={}{}",
        i.name,
        i.version,
        i.spec.to_string(),
        a.allowed(),
        if a.enabled { "" } else { " DISABLED" }
    );
    if let Some(t) = a.not_before {
        s.push_str(&format!(" not-before={}", rfc3339(t)));
    }
    if let Some(t) = a.expires {
        s.push_str(&format!(" expires={}", rfc3339(t)));
    }
    if !i.has_private {
        s.push_str(" (public only)");
    }
    s
}

fn show_info(g: &Global, i: &KeyInfo) -> Result<()> {
    if g.json {
        print_json(&info_json(i))?;
    } else {
        outln!("{}", info_line(i))?;
        if !i.attributes.tags.is_empty() {
            let tags: Vec<String> = i.attributes.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            outln!("  tags: {}", tags.join(", "))?;
        }
        outln!("  created {}  updated {}", rfc3339(i.created), rfc3339(i.updated))?;
    }
    Ok(())
}

/// The spec from `--type`, `--size`, `--curve`; defaults are the core's
/// ([`KeySpec::from_parts`]).
fn spec(a: &CreateArgs) -> Result<KeySpec> {
    let t = match a.key_type {
        KeyTypeArg::Rsa => "rsa",
        KeyTypeArg::Ec => "ec",
        KeyTypeArg::Aes => "aes",
        KeyTypeArg::Ed25519 => "ed25519",
        KeyTypeArg::Hmac => "hmac",
    };
    KeySpec::from_options(t, a.size, a.curve.as_deref())
}

fn import_material(a: &ImportArgs) -> Result<KeyMaterial> {
    let bytes = read_all(a.input.as_deref())?;
    let text = || {
        std::str::from_utf8(&bytes)
            .map_err(|_| Error::invalid(InvalidReason::Malformed, "the key file is not text"))
    };
    match a.format {
        None => KeyMaterial::from_bytes(&bytes),
        Some(ImportFormat::Pem) => KeyMaterial::from_pem(text()?),
        Some(ImportFormat::Der) => KeyMaterial::from_der(&bytes),
        Some(ImportFormat::Jwk) => KeyMaterial::from_jwk_str(text()?),
        Some(ImportFormat::Raw) => KeyMaterial::aes(&bytes),
    }
}

fn print_versions(g: &Global, list: &[KeyInfo]) -> Result<()> {
    if g.json {
        print_json(&Value::Array(list.iter().map(info_json).collect()))?;
    } else if list.is_empty() {
        outln!("(no keys)")?;
    } else {
        for i in list {
            outln!("{}", info_line(i))?;
        }
    }
    Ok(())
}

pub(crate) fn run(g: &Global, cmd: &KeyCommand) -> Result<Outcome> {
    // Only the commands that add a key make a missing keystore.
    let missing = match cmd {
        KeyCommand::Create(_) | KeyCommand::Import(_) => backend::Missing::Create,
        KeyCommand::List { .. }
        | KeyCommand::Show(_)
        | KeyCommand::Versions { .. }
        | KeyCommand::Rotate { .. }
        | KeyCommand::Update(_)
        | KeyCommand::Delete { .. }
        | KeyCommand::Recover { .. }
        | KeyCommand::Purge { .. }
        | KeyCommand::Policy(_)
        | KeyCommand::RotateDue
        | KeyCommand::Public(_)
        | KeyCommand::Backup(_)
        // A backup restores only into a store holding the backup key it was made under,
        // which a new store does not: a mistyped --store is reported as missing.
        | KeyCommand::Restore(_) => backend::Missing::Refuse,
    };
    // The backup is read before the store is opened (and its passphrase prompt).
    let backup = match cmd {
        KeyCommand::Restore(a) => Some(read_backup(a.file.as_deref())?),
        KeyCommand::Create(_)
        | KeyCommand::Import(_)
        | KeyCommand::List { .. }
        | KeyCommand::Show(_)
        | KeyCommand::Versions { .. }
        | KeyCommand::Rotate { .. }
        | KeyCommand::Update(_)
        | KeyCommand::Delete { .. }
        | KeyCommand::Recover { .. }
        | KeyCommand::Purge { .. }
        | KeyCommand::Policy(_)
        | KeyCommand::RotateDue
        | KeyCommand::Public(_)
        | KeyCommand::Backup(_) => None,
    };
    let store = backend::open_with(g, missing)?;
    match cmd {
        KeyCommand::Create(a) => {
            let key = store.create_key(&a.name, spec(a)?, attributes(&a.attrs, a.exportable)?)?;
            show_info(g, key.info())?;
        }
        KeyCommand::List { deleted: false } => print_versions(g, &store.list_keys()?)?,
        KeyCommand::List { deleted: true } => {
            let list = store.list_deleted_keys()?;
            if g.json {
                print_json(&Value::Array(list.iter().map(describe_json).collect()))?;
            } else if list.is_empty() {
                outln!("(no deleted keys)")?;
            } else {
                for d in &list {
                    let when = d.state.deleted.map(|x| rfc3339(x.scheduled_purge)).unwrap_or_default();
                    outln!("{:<24} {} version(s), purge scheduled {when}", d.name, d.versions.len())?;
                }
            }
        }
        KeyCommand::Show(nv) => {
            let key = backend::key_at(&store, &nv.name, nv.version)?;
            if g.json && nv.version.is_none() {
                print_json(&described_json(key.info(), &store.describe_key(&nv.name)?))?;
            } else {
                show_info(g, key.info())?;
            }
        }
        KeyCommand::Versions { name } => print_versions(g, &store.list_versions(name)?)?,
        KeyCommand::Rotate { name } => {
            let key = store.rotate_key(name)?;
            show_info(g, key.info())?;
        }
        KeyCommand::Update(a) => update(g, &store, a)?,
        KeyCommand::Delete { name } => {
            let d = store.delete_key(name)?;
            if g.json {
                print_json(&describe_json(&d))?;
            } else {
                let purge = d.state.deleted.map(|x| rfc3339(x.scheduled_purge)).unwrap_or_default();
                outln!("deleted {name} ({} version(s)); recoverable until {purge}", d.versions.len())?;
            }
        }
        KeyCommand::Recover { name } => {
            let key = store.recover_deleted_key(name)?;
            show_info(g, key.info())?;
        }
        KeyCommand::Purge { name } => {
            store.purge_deleted_key(name)?;
            if g.json {
                print_json(&json!({"purged": name}))?;
            } else {
                outln!("purged {name}")?;
            }
        }
        KeyCommand::Policy(a) => policy(g, &store, a)?,
        KeyCommand::RotateDue => {
            let done = store.rotate_due()?;
            let failed = done.iter().any(|r| r.result.is_err());
            if g.json {
                let v: Vec<Value> = done
                    .iter()
                    .map(|r| {
                        json!({
                            "name": r.name, "from_version": r.from_version, "reason": r.reason,
                            "new_version": r.result.as_ref().ok(),
                            "error": r.result.as_ref().err().map(ToString::to_string),
                        })
                    })
                    .collect();
                print_json(&Value::Array(v))?;
            } else if done.is_empty() {
                outln!("no key is due for rotation")?;
            } else {
                for r in &done {
                    match &r.result {
                        Ok(v) => outln!("rotated {} v{} -> v{v} ({})", r.name, r.from_version, r.reason)?,
                        Err(e) => outln!("FAILED to rotate {} v{}: {e}", r.name, r.from_version)?,
                    }
                }
            }
            if failed {
                return Err(Error::backend(
                    "store",
                    "rotate-due",
                    "some keys could not be rotated (listed above)",
                ));
            }
        }
        KeyCommand::Import(a) => {
            let material = import_material(a)?;
            let attrs = attributes(&a.attrs, a.exportable)?;
            let key = if a.new_version {
                store.import_key_version(&a.name, material, attrs)?
            } else {
                store.import_key(&a.name, material, attrs)?
            };
            show_info(g, key.info())?;
        }
        KeyCommand::Public(a) => public(g, &store, a)?,
        KeyCommand::Backup(a) => {
            write_backup(g, "key", &a.name, a.output.as_deref(), &store.backup_key(&a.name)?)?
        }
        KeyCommand::Restore(_) => {
            let bytes = backup.as_deref().map_or(&[][..], |b| b.as_slice());
            show_restored(g, &store.restore_key(bytes)?)?;
        }
    }
    Ok(Outcome::Ok)
}

/// A version's JSON with its key's version count and rotation policy (`key show NAME`).
fn described_json(i: &KeyInfo, d: &KeyDescription) -> Value {
    let mut v = info_json(i);
    if let Some(obj) = v.as_object_mut() {
        obj.insert("versions".into(), json!(d.versions.len()));
        obj.insert("rotation_policy".into(), json!(d.state.rotation.map(|p| policy_json(&p))));
    }
    v
}

/// A restored key as `key show NAME` shows it, with how many versions came back.
fn show_restored(g: &Global, d: &KeyDescription) -> Result<()> {
    let current = d.current().ok_or_else(|| Error::NotFound { what: format!("key '{}'", d.name) })?;
    if g.json {
        print_json(&described_json(current, d))
    } else {
        show_info(g, current)?;
        match d.state.rotation {
            Some(p) => outln!("  {} version(s) restored; rotation policy {p}", d.versions.len()),
            None => outln!("  {} version(s) restored; no rotation policy", d.versions.len()),
        }
    }
}

fn update(g: &Global, store: &Store, a: &UpdateArgs) -> Result<()> {
    let version = match a.version {
        Some(v) => v,
        None => store.get_key(&a.name)?.version(),
    };
    let update = KeyUpdate {
        enabled: a.enabled,
        not_before: a.not_before.as_deref().map(parse_optional_time).transpose()?,
        expires: a.expires.as_deref().map(parse_optional_time).transpose()?,
        ops: a.ops.as_deref().map(str::parse::<KeyOps>).transpose()?,
        tags: if a.tags.is_empty() { None } else { Some(parse_pairs(&a.tags, "tag")?) },
    };
    if update == KeyUpdate::default() {
        return Err(Error::invalid(
            InvalidReason::Parameter,
            "nothing to update: give --enabled, --ops, --not-before, --expires or --tag",
        ));
    }
    let info = store.update_key(&a.name, version, &update)?;
    show_info(g, &info)?;
    Ok(())
}

fn policy(g: &Global, store: &Store, a: &PolicyArgs) -> Result<()> {
    let d = |s: &Option<String>| s.as_deref().map(parse_iso_duration).transpose();
    let p = RotationPolicy {
        rotate_after: d(&a.rotate_after)?,
        rotate_before_expiry: d(&a.rotate_before_expiry)?,
        expires_after: d(&a.expires_after)?,
    };
    let set = if a.clear {
        None
    } else if p == RotationPolicy::default() {
        return Err(Error::invalid(
            InvalidReason::Parameter,
            "give --rotate-after, --rotate-before-expiry, --expires-after or --clear",
        ));
    } else {
        Some(p)
    };
    store.set_rotation_policy(&a.name, set)?;
    if g.json {
        print_json(&json!({"name": a.name, "rotation_policy": set.map(|p| policy_json(&p))}))?;
    } else {
        match set {
            Some(p) => outln!("{}: rotation policy {p}", a.name)?,
            None => outln!("{}: rotation policy cleared", a.name)?,
        }
    }
    Ok(())
}

fn public(g: &Global, store: &Store, a: &PublicArgs) -> Result<()> {
    let key = backend::key_at(store, &a.name, a.version)?;
    let kid = key.info().kid();
    match a.format {
        PublicFormat::Pem => write_all(a.output.as_deref(), key.public_key_pem()?.as_bytes())?,
        PublicFormat::Der => write_all(a.output.as_deref(), &key.public_key_der()?)?,
        PublicFormat::Jwk => {
            let jwk = key.public_key()?.to_jwk(Some(&kid))?;
            let text = serde_json::to_string_pretty(&jwk).unwrap_or_default() + "\n";
            write_all(a.output.as_deref(), text.as_bytes())?;
        }
    }
    if g.json && a.output.is_some() {
        print_json(&json!({"kid": kid, "written": a.output}))?;
    }
    Ok(())
}
