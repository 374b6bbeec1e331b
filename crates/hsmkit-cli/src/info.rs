//! `hsmkit info`: what the store the options name can do.

use std::fmt::Display;

use hsmkit::{Capabilities, Result, Store};

use crate::Outcome;
use crate::backend;
use crate::cli::Global;
use crate::io::print_json;

/// The JSON `hsmkit info --json` prints: [`Capabilities::to_json`] plus `"backend"`.
pub(crate) fn json(store: &Store) -> serde_json::Value {
    let mut doc = store.capabilities().to_json();
    if let Some(obj) = doc.as_object_mut() {
        obj.insert("backend".into(), store.backend_kind().into());
    }
    doc
}

/// Names separated by commas, or `(none)`.
fn list<T: Display>(items: &[T]) -> String {
    if items.is_empty() {
        "(none)".to_string()
    } else {
        items.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// The human report: backend, engine, metadata, one line per capability group, notes.
fn text(store: &Store) -> String {
    // Every field, so that a new one is not forgotten here.
    let Capabilities {
        generate,
        import,
        export,
        sign,
        decrypt,
        wrap,
        unwrap,
        oaep_label,
        engine,
        metadata,
        notes,
    } = store.capabilities();
    let mut lines = vec![
        format!("backend   {}", store.backend_kind()),
        format!("engine    {engine}"),
        format!("metadata  {metadata}"),
        format!("generate  {}", list(&generate)),
        format!("keys      import: {}, export of exportable keys: {}", yes_no(import), yes_no(export)),
        format!("sign      {}", list(&sign)),
        format!("decrypt   {} (OAEP label: {})", list(&decrypt), yes_no(oaep_label)),
        format!("wrap      {}", list(&wrap)),
        format!("unwrap    {}", list(&unwrap)),
    ];
    lines.extend(notes.iter().map(|n| format!("note: {n}")));
    lines.join("\n")
}

pub(crate) fn run(g: &Global) -> Result<Outcome> {
    show(g, &backend::open(g)?)
}

fn show(g: &Global, store: &Store) -> Result<Outcome> {
    if g.json {
        print_json(&json(store))?;
    } else {
        outln!("{}", text(store))?;
    }
    Ok(Outcome::Ok)
}

/// `hsmkit init`: creates the keystore, which must not exist yet (a PKCS#11 token is
/// initialised with its own tools: for it, init only checks that it opens).
pub(crate) fn init(g: &Global) -> Result<Outcome> {
    show(g, &backend::open_with(g, backend::Missing::CreateNew)?)
}
