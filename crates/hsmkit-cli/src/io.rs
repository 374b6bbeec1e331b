//! Input and output: files or stdin/stdout, binary-safe; files written whole or not at all.

use std::io::{Read, Write};
use std::path::Path;

use hsmkit::{Error, Result};

/// All of a file, or of stdin.
pub(crate) fn read_all(path: Option<&Path>) -> Result<Vec<u8>> {
    match path {
        Some(p) => std::fs::read(p).map_err(|e| Error::io(&format!("reading {}", p.display()), &e)),
        None => {
            let mut buf = Vec::new();
            std::io::stdin().lock().read_to_end(&mut buf).map_err(|e| Error::io("reading stdin", &e))?;
            Ok(buf)
        }
    }
}

/// A file for streaming, or stdin; with its length when known (for progress).
pub(crate) fn reader(path: Option<&Path>) -> Result<(Box<dyn Read>, Option<u64>)> {
    match path {
        Some(p) => {
            let f = std::fs::File::open(p).map_err(|e| Error::io(&format!("opening {}", p.display()), &e))?;
            let len = f.metadata().ok().map(|m| m.len());
            Ok((Box::new(std::io::BufReader::with_capacity(1 << 16, f)), len))
        }
        None => Ok((Box::new(std::io::stdin().lock()), None)),
    }
}

/// Writes `data` to a file (through a temporary file renamed into place) or stdout.
pub(crate) fn write_all(path: Option<&Path>, data: &[u8]) -> Result<()> {
    write_with(path, |w| w.write_all(data).map_err(|e| Error::io("writing the output", &e)))
}

/// Runs `write` against the output: a temporary file beside `path`, renamed over it only
/// if `write` succeeds (removed otherwise); or stdout.
pub(crate) fn write_with<T>(
    path: Option<&Path>,
    write: impl FnOnce(&mut dyn Write) -> Result<T>,
) -> Result<T> {
    match path {
        Some(p) => {
            let dir = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
            let mut tmp = tempfile::Builder::new()
                .prefix(".hsmkit-")
                .suffix(".partial")
                .tempfile_in(dir)
                .map_err(|e| Error::io(&format!("creating a temporary file in {}", dir.display()), &e))?;
            let value = {
                let mut w = std::io::BufWriter::with_capacity(1 << 16, tmp.as_file_mut());
                let v = write(&mut w)?;
                w.flush().map_err(|e| Error::io("writing the output", &e))?;
                v
            };
            tmp.as_file().sync_all().map_err(|e| Error::io("writing the output", &e))?;
            tmp.persist(p).map_err(|e| Error::io(&format!("writing {}", p.display()), &e.error))?;
            Ok(value)
        }
        None => {
            let mut out = std::io::stdout().lock();
            let v = write(&mut out)?;
            out.flush().map_err(|e| Error::io("writing stdout", &e))?;
            Ok(v)
        }
    }
}

/// Prints a JSON document on stdout.
pub(crate) fn print_json(v: &serde_json::Value) -> Result<()> {
    outln!("{}", serde_json::to_string_pretty(v).unwrap_or_default())
}

/// One line on stdout (see `outln!`).
pub(crate) fn print_line(args: std::fmt::Arguments<'_>) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(args).and_then(|()| out.write_all(b"\n")).map_err(|e| Error::io("writing stdout", &e))
}

/// base64url without padding, for bytes in JSON.
pub(crate) fn b64(bytes: &[u8]) -> String {
    use base64ct::Encoding;
    base64ct::Base64UrlUnpadded::encode_string(bytes)
}
