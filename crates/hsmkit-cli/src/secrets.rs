//! `hsmkit secret ...`: versioned values sealed in the store. Only `secret get` ever
//! writes a value (`secret backup` writes them sealed); everything else prints metadata,
//! and no message names a value.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::SystemTime;

use hsmkit::report::{rfc3339, rotation_policy as policy_json};
use hsmkit::secrets::MAX_SECRET_VALUE_LEN;
use hsmkit::{
    Error, InvalidReason, Result, RotationPolicy, SecretAttributes, SecretDescription, SecretProperties,
    SecretUpdate, Store, parse_iso_duration,
};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::Outcome;
use crate::backend;
use crate::backup::{read_backup, write_backup};
use crate::cli::{
    Global, NameVersion, PolicyArgs, SecretCommand, SecretGetArgs, SecretSetArgs, SecretUpdateArgs,
};
use crate::io::{b64, print_json, read_limited, write_all, write_with};
use crate::keys::{parse_pairs, parse_time};

// The JSON shapes every front end shares (C returns the same).
use hsmkit::report::{
    secret_description as description_json, secret_due as due_json, secret_properties as properties_json,
};

/// One line per version: name, version, content type, state, dates.
fn line(p: &SecretProperties) -> String {
    let a = &p.attributes;
    let now = SystemTime::now();
    let state = if !a.enabled {
        " DISABLED"
    } else if a.expires.is_some_and(|t| now >= t) {
        " EXPIRED"
    } else if a.not_before.is_some_and(|t| now < t) {
        " NOT-YET-VALID"
    } else {
        ""
    };
    let mut s =
        format!("{:<24} v{:<3} {}{state}", p.name, p.version, a.content_type.as_deref().unwrap_or("-"));
    if let Some(t) = a.not_before {
        s.push_str(&format!(" not-before={}", rfc3339(t)));
    }
    if let Some(t) = a.expires {
        s.push_str(&format!(" expires={}", rfc3339(t)));
    }
    s
}

fn show(g: &Global, p: &SecretProperties) -> Result<()> {
    if g.json {
        print_json(&properties_json(p))
    } else {
        outln!("{}", line(p))?;
        if !p.attributes.tags.is_empty() {
            let tags: Vec<String> = p.attributes.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            outln!("  tags: {}", tags.join(", "))?;
        }
        outln!("  created {}  updated {}", rfc3339(p.created), rfc3339(p.updated))
    }
}

fn print_list(g: &Global, list: &[SecretProperties], empty: &str) -> Result<()> {
    if g.json {
        print_json(&Value::Array(list.iter().map(properties_json).collect()))
    } else if list.is_empty() {
        outln!("{empty}")
    } else {
        list.iter().try_for_each(|p| outln!("{}", line(p)))
    }
}

fn version_not_found(name: &str, version: u32) -> Error {
    Error::NotFound { what: format!("version {version} of secret '{name}'") }
}

pub(crate) fn run(g: &Global, cmd: &SecretCommand) -> Result<Outcome> {
    // Only `set` adds something, so only it makes a missing keystore (as `key create`).
    let missing = match cmd {
        SecretCommand::Set(_) => backend::Missing::Create,
        SecretCommand::Get(_)
        | SecretCommand::Show(_)
        | SecretCommand::List
        | SecretCommand::Versions { .. }
        | SecretCommand::Update(_)
        | SecretCommand::Delete { .. }
        | SecretCommand::Recover { .. }
        | SecretCommand::Purge { .. }
        | SecretCommand::ListDeleted
        | SecretCommand::Due { .. }
        | SecretCommand::Policy(_)
        | SecretCommand::Backup(_)
        // A backup restores only into a store holding the backup key it was made under,
        // which a new store does not: a mistyped --store is reported as missing.
        | SecretCommand::Restore(_) => backend::Missing::Refuse,
    };
    // The value (or backup) is read before the store is opened: a passphrase prompt and a
    // value prompt on the same terminal would otherwise interleave.
    let input = match cmd {
        SecretCommand::Set(a) => Some(read_value(a)?),
        SecretCommand::Restore(a) => Some(read_backup(a.file.as_deref())?),
        SecretCommand::Get(_)
        | SecretCommand::Show(_)
        | SecretCommand::List
        | SecretCommand::Versions { .. }
        | SecretCommand::Update(_)
        | SecretCommand::Delete { .. }
        | SecretCommand::Recover { .. }
        | SecretCommand::Purge { .. }
        | SecretCommand::ListDeleted
        | SecretCommand::Due { .. }
        | SecretCommand::Policy(_)
        | SecretCommand::Backup(_) => None,
    };
    let input = input.as_deref().map_or(&[][..], |v| v.as_slice());
    let store = backend::open_with(g, missing)?;
    match cmd {
        SecretCommand::Set(a) => {
            let attrs = SecretAttributes {
                enabled: !a.disabled,
                not_before: a.not_before.as_deref().map(parse_time).transpose()?,
                expires: a.expires.as_deref().map(parse_time).transpose()?,
                content_type: a.content_type.clone(),
                tags: parse_pairs(&a.tags, "tag")?,
            };
            show(g, &store.set_secret(&a.name, input, attrs)?)?;
        }
        SecretCommand::Get(a) => get(g, &store, a)?,
        SecretCommand::Show(nv) => show_secret(g, &store, nv)?,
        SecretCommand::List => print_list(g, &store.list_secrets()?, "(no secrets)")?,
        SecretCommand::Versions { name } => {
            print_list(g, &store.list_secret_versions(name)?, "(no versions)")?
        }
        SecretCommand::Update(a) => update(g, &store, a)?,
        SecretCommand::Delete { name } => {
            let d = store.delete_secret(name)?;
            if g.json {
                print_json(&description_json(&d))?;
            } else {
                let purge = d.state.deleted.map(|x| rfc3339(x.scheduled_purge)).unwrap_or_default();
                outln!("deleted secret {name} ({} version(s)); recoverable until {purge}", d.versions.len())?;
            }
        }
        SecretCommand::Recover { name } => show(g, &store.recover_deleted_secret(name)?)?,
        SecretCommand::Purge { name } => {
            store.purge_deleted_secret(name)?;
            if g.json {
                print_json(&json!({"purged": name}))?;
            } else {
                outln!("purged secret {name}")?;
            }
        }
        SecretCommand::ListDeleted => {
            let list = store.list_deleted_secrets()?;
            if g.json {
                print_json(&Value::Array(list.iter().map(description_json).collect()))?;
            } else if list.is_empty() {
                outln!("(no deleted secrets)")?;
            } else {
                for d in &list {
                    let when = d.state.deleted.map(|x| rfc3339(x.scheduled_purge)).unwrap_or_default();
                    outln!("{:<24} {} version(s), purge scheduled {when}", d.name, d.versions.len())?;
                }
            }
        }
        SecretCommand::Due { within } => {
            let due = store.secrets_due(parse_iso_duration(within)?)?;
            if g.json {
                print_json(&Value::Array(due.iter().map(due_json).collect()))?;
            } else if due.is_empty() {
                outln!("no secret is due for rotation within {within}")?;
            } else {
                for d in &due {
                    outln!("{:<24} v{:<3} {}", d.name, d.version, d.reason)?;
                }
            }
        }
        SecretCommand::Policy(a) => policy(g, &store, a)?,
        SecretCommand::Backup(a) => {
            write_backup(g, "secret", &a.name, a.output.as_deref(), &store.backup_secret(&a.name)?)?
        }
        SecretCommand::Restore(_) => show_current(g, &store.restore_secret(input)?)?,
    }
    Ok(Outcome::Ok)
}

/// The value to set: `--value`, `--file`, a no-echo prompt on a terminal, else all of
/// stdin (byte for byte: a trailing newline is part of the value).
fn read_value(a: &SecretSetArgs) -> Result<Zeroizing<Vec<u8>>> {
    let what = "a secret value";
    match (&a.value, &a.file) {
        // Over-long values are refused by the core, with their length.
        (Some(v), _) => Ok(Zeroizing::new(v.as_bytes().to_vec())),
        (None, Some(f)) => read_limited(Some(f), MAX_SECRET_VALUE_LEN, what),
        (None, None) if std::io::stdin().is_terminal() => {
            rpassword::prompt_password(format!("value for secret '{}': ", a.name))
                .map(|s| Zeroizing::new(s.into_bytes()))
                .map_err(|e| Error::io("reading from the terminal", &e))
        }
        (None, None) => read_limited(None, MAX_SECRET_VALUE_LEN, what),
    }
}

fn get(g: &Global, store: &Store, a: &SecretGetArgs) -> Result<()> {
    let secret = match a.version {
        Some(v) => store.get_secret_version(&a.name, v)?,
        None => store.get_secret(&a.name)?,
    };
    let value = secret.value();
    match (g.json, &a.output) {
        (false, out) => write_all(out.as_deref(), value),
        (true, Some(path)) => {
            write_all(Some(path), value)?;
            let mut doc = properties_json(secret.properties());
            if let Some(obj) = doc.as_object_mut() {
                obj.insert("written".into(), json!(path));
            }
            print_json(&doc)
        }
        (true, None) => {
            // The metadata goes through serde_json as usual; the value is written escaped
            // straight into the wiping stdout writer, so no unwiped copy of it (a JSON
            // `Value`, a serialized `String`) is ever made.
            let head = serde_json::to_string_pretty(&properties_json(secret.properties()))
                .ok()
                .and_then(|s| s.strip_suffix("\n}").map(str::to_owned))
                .ok_or_else(|| Error::backend("cli", "secret get", "the metadata did not serialize"))?;
            write_with(None, |w| {
                let io = |e: std::io::Error| Error::io("writing stdout", &e);
                w.write_all(head.as_bytes()).map_err(io)?;
                match std::str::from_utf8(value) {
                    Ok(text) => {
                        w.write_all(b",\n  \"value\": ").map_err(io)?;
                        serde_json::to_writer(&mut *w, text)
                            .map_err(|e| Error::io("writing stdout", &std::io::Error::other(e)))?;
                    }
                    Err(_) => {
                        // base64url without padding, as every other byte string in the
                        // CLI's JSON.
                        let encoded = Zeroizing::new(b64(value));
                        w.write_all(b",\n  \"value_base64\": \"").map_err(io)?;
                        w.write_all(encoded.as_bytes()).map_err(io)?;
                        w.write_all(b"\"").map_err(io)?;
                    }
                }
                w.write_all(b"\n}\n").map_err(io)
            })
        }
    }
}

fn show_secret(g: &Global, store: &Store, nv: &NameVersion) -> Result<()> {
    let d = store.describe_secret(&nv.name)?;
    // describe_secret also answers for deleted secrets; show, like get, does not.
    if d.state.deleted.is_some() {
        return Err(Error::NotFound {
            what: format!("secret '{}' (it is deleted: recover or purge it)", nv.name),
        });
    }
    match nv.version {
        Some(v) => {
            show(g, d.versions.iter().find(|p| p.version == v).ok_or_else(|| version_not_found(&nv.name, v))?)
        }
        None => show_current(g, &d),
    }
}

/// A secret's current version, with how many versions it has and its rotation policy
/// (`secret show NAME`, `secret restore`).
fn show_current(g: &Global, d: &SecretDescription) -> Result<()> {
    let p = d.current().ok_or_else(|| Error::NotFound { what: format!("secret '{}'", d.name) })?;
    if g.json {
        let mut v = properties_json(p);
        if let Some(obj) = v.as_object_mut() {
            obj.insert("versions".into(), json!(d.versions.len()));
            obj.insert("rotation_policy".into(), json!(d.state.rotation.map(|r| policy_json(&r))));
        }
        print_json(&v)
    } else {
        show(g, p)?;
        match d.state.rotation {
            Some(r) => outln!("  {} version(s); rotation policy {r}", d.versions.len()),
            None => outln!("  {} version(s); no rotation policy", d.versions.len()),
        }
    }
}

/// `Some(None)` to clear, `Some(Some(t))` to set, `None` to leave as it is.
fn time_change(set: Option<&str>, clear: bool) -> Result<Option<Option<SystemTime>>> {
    if clear { Ok(Some(None)) } else { set.map(|t| parse_time(t).map(Some)).transpose() }
}

fn update(g: &Global, store: &Store, a: &SecretUpdateArgs) -> Result<()> {
    let update = SecretUpdate {
        enabled: if a.enable {
            Some(true)
        } else if a.disable {
            Some(false)
        } else {
            None
        },
        not_before: time_change(a.not_before.as_deref(), a.no_not_before)?,
        expires: time_change(a.expires.as_deref(), a.no_expires)?,
        content_type: if a.no_content_type { Some(None) } else { a.content_type.clone().map(Some) },
        tags: if a.clear_tags {
            Some(BTreeMap::new())
        } else if a.tags.is_empty() {
            None
        } else {
            Some(parse_pairs(&a.tags, "tag")?)
        },
    };
    if update == SecretUpdate::default() {
        return Err(Error::invalid(
            InvalidReason::Parameter,
            "nothing to update: give --enable/--disable, --expires/--no-expires, --not-before/--no-not-before, \
             --content-type/--no-content-type, --tag or --clear-tags",
        ));
    }
    let version = match a.version {
        Some(v) => v,
        None => store
            .list_secret_versions(&a.name)?
            .last()
            .map(|p| p.version)
            .ok_or_else(|| Error::NotFound { what: format!("secret '{}'", a.name) })?,
    };
    show(g, &store.update_secret(&a.name, version, &update)?)
}

fn policy(g: &Global, store: &Store, a: &PolicyArgs) -> Result<()> {
    let d = |s: &Option<String>| s.as_deref().map(parse_iso_duration).transpose();
    let p = RotationPolicy {
        rotate_after: d(&a.rotate_after)?,
        rotate_before_expiry: d(&a.rotate_before_expiry)?,
        expires_after: d(&a.expires_after)?,
    };
    let (now, changed) = if a.clear {
        store.set_secret_rotation_policy(&a.name, None)?;
        (None, true)
    } else if p == RotationPolicy::default() {
        // No option: show the policy.
        (store.secret_rotation_policy(&a.name)?, false)
    } else {
        store.set_secret_rotation_policy(&a.name, Some(p))?;
        (Some(p), true)
    };
    if g.json {
        print_json(&json!({"name": a.name, "rotation_policy": now.map(|p| policy_json(&p))}))
    } else {
        match (now, changed) {
            (Some(p), _) => outln!("{}: rotation policy {p}", a.name),
            (None, true) => outln!("{}: rotation policy cleared", a.name),
            (None, false) => outln!("{}: no rotation policy", a.name),
        }
    }
}
