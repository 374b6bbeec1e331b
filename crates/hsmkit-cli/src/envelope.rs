//! seal, unseal, rewrap: streaming, constant memory, a progress bar on a terminal.

use hsmkit::InvalidReason;
use std::io::{IsTerminal, Read};

use hsmkit::envelope::{EnvelopeHeader, RewrapMode, Rewrapper, Suite};
use hsmkit::{Error, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::Outcome;
use crate::backend;
use crate::cli::{Global, InOut, RewrapArgs, SealArgs, UnsealArgs};
use crate::io::{print_json, reader, write_with};
use crate::keys::parse_pairs;

/// The input, counted by a progress bar when stderr is a terminal and the size is known.
fn input(io: &InOut, verb: &str) -> Result<(Box<dyn Read>, ProgressBar)> {
    let (r, len) = reader(io.input.as_deref())?;
    let bar = match len {
        Some(n) if std::io::stderr().is_terminal() && n >= 1 << 20 => {
            let style =
                ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> ");
            ProgressBar::new(n).with_style(style).with_message(verb.to_string())
        }
        _ => ProgressBar::hidden(),
    };
    let wrapped: Box<dyn Read> = Box::new(bar.wrap_read(r));
    Ok((wrapped, bar))
}

fn json_needs_out(g: &Global, io: &InOut) -> Result<()> {
    if g.json && io.output.is_none() {
        return Err(Error::invalid(
            InvalidReason::Parameter,
            "--json prints a summary: give --out FILE for the data",
        ));
    }
    Ok(())
}

pub(crate) fn seal(g: &Global, a: &SealArgs) -> Result<Outcome> {
    json_needs_out(g, &a.io)?;
    let store = backend::open(g)?;
    let names: Vec<&str> = std::iter::once(a.name.as_str()).chain(a.to.iter().map(String::as_str)).collect();
    let mut sealer = store.sealer(&names)?.with_context(parse_pairs(&a.aad, "--aad")?)?;
    if let Some(n) = a.chunk_size {
        sealer = sealer.with_chunk_size(n)?;
    }
    if let Some(id) = a.suite {
        sealer = sealer.with_suite(Suite::try_from(id)?);
    }
    let (inp, bar) = input(&a.io, "sealing")?;
    let n = write_with(a.io.output.as_deref(), |w| sealer.seal_stream(inp, w));
    bar.finish_and_clear();
    let n = n?;
    if g.json {
        let r: Vec<_> = sealer
            .recipients()
            .iter()
            .map(|r| json!({"kid": r.key().info().kid(), "alg": r.algorithm().name()}))
            .collect();
        print_json(
            &json!({"plaintext_bytes": n, "suite": sealer.suite().id(), "recipients": r, "written": a.io.output}),
        )?;
    }
    Ok(Outcome::Ok)
}

pub(crate) fn unseal(g: &Global, a: &UnsealArgs) -> Result<Outcome> {
    json_needs_out(g, &a.io)?;
    let store = backend::open(g)?;
    let opener = store.opener().with_context(parse_pairs(&a.aad, "--aad")?);
    let (inp, bar) = input(&a.io, "opening")?;
    // To a file: a temporary file renamed into place only when every chunk verified.
    let n = write_with(a.io.output.as_deref(), |w| opener.open_stream(inp, w));
    bar.finish_and_clear();
    let n = n?;
    if g.json {
        print_json(&json!({"plaintext_bytes": n, "written": a.io.output}))?;
    }
    Ok(Outcome::Ok)
}

pub(crate) fn rewrap(g: &Global, a: &RewrapArgs) -> Result<Outcome> {
    json_needs_out(g, &a.io)?;
    let store = backend::open(g)?;
    let mode = if a.add { RewrapMode::Add } else { RewrapMode::Replace };
    let rewrapper =
        Rewrapper::new(&store, store.recipients(&a.to)?, mode)?.with_context(parse_pairs(&a.aad, "--aad")?);
    let (inp, bar) = input(&a.io, "rewrapping")?;
    let n = write_with(a.io.output.as_deref(), |w| rewrapper.rewrap_stream(inp, w));
    bar.finish_and_clear();
    let n = n?;
    if g.json {
        let path = a.io.output.as_deref().ok_or_else(|| Error::invalid(InvalidReason::Parameter, "--out"))?;
        let head = std::fs::File::open(path).map_err(|e| Error::io("reading the output back", &e))?;
        let h = EnvelopeHeader::read_from(&mut std::io::BufReader::new(head))?;
        let r: Vec<_> = h
            .recipients()
            .iter()
            .map(|r| json!({"kid": format!("{}/{}", r.name, r.version), "alg": r.algorithm.name()}))
            .collect();
        print_json(
            &json!({"body_bytes": n, "suite": h.suite().id(), "recipients": r, "written": a.io.output}),
        )?;
    }
    Ok(Outcome::Ok)
}
