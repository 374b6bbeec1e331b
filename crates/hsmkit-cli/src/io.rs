//! Input and output: files or stdin/stdout, binary-safe; files written whole or not at all.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use hsmkit::{Error, InvalidReason, Result};
use zeroize::Zeroizing;

/// Temporary output files being written (they hold plaintext until renamed into place).
/// A terminating signal removes them before the process ends; the signal thread keeps the
/// lock until then, so no new one is made after the sweep.
static PARTIAL: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// On SIGINT, SIGTERM or SIGHUP: removes the temporary output files, then exits with
/// 128 + the signal's number, as the shell reports a process the signal ended. (SIGKILL
/// cannot be caught: a `kill -9` mid-write leaves its `.hsmkit-*.partial` behind.)
pub(crate) fn remove_partial_files_on_signals() -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .map_err(|e| Error::io("installing signal handlers", &e))?;
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            let partial = partial_files();
            for p in partial.iter() {
                let _ = std::fs::remove_file(p);
            }
            std::process::exit(128 + signal);
        }
    });
    Ok(())
}

fn partial_files() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    PARTIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A buffered writer whose buffer is wiped when dropped: `std::io::BufWriter` frees its
/// 64 KiB of plaintext as it is.
struct WipingWriter<W: Write> {
    inner: W,
    buf: Zeroizing<Vec<u8>>,
}

impl<W: Write> WipingWriter<W> {
    const CAPACITY: usize = 1 << 16;

    fn new(inner: W) -> Self {
        WipingWriter { inner, buf: Zeroizing::new(Vec::with_capacity(Self::CAPACITY)) }
    }

    fn write_buffered(&mut self) -> std::io::Result<()> {
        self.inner.write_all(&self.buf)?;
        // Only the length changes: the bytes stay until overwritten or wiped on drop.
        self.buf.clear();
        Ok(())
    }
}

impl<W: Write> Write for WipingWriter<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len().saturating_add(data.len()) > Self::CAPACITY {
            self.write_buffered()?;
        }
        if data.len() >= Self::CAPACITY {
            self.inner.write_all(data)?;
        } else {
            // Within the capacity reserved at creation: never reallocates (which would
            // free a copy unwiped).
            self.buf.extend_from_slice(data);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.write_buffered()?;
        self.inner.flush()
    }
}

/// All of a file, or of stdin, in memory that is wiped when freed: it may be plaintext
/// or key material. (`std::fs::read` and `read_to_end` grow their buffer by reallocating,
/// which frees the old copy as it is, when the length is not known up front: a pipe.)
pub(crate) fn read_all(path: Option<&Path>) -> Result<Zeroizing<Vec<u8>>> {
    match path {
        Some(p) => {
            let what = || format!("reading {}", p.display());
            let mut f = std::fs::File::open(p).map_err(|e| Error::io(&what(), &e))?;
            let hint = f.metadata().ok().and_then(|m| usize::try_from(m.len()).ok()).unwrap_or(0);
            read_wiping(&mut f, hint).map_err(|e| Error::io(&what(), &e))
        }
        None => read_wiping(&mut std::io::stdin().lock(), 0).map_err(|e| Error::io("reading stdin", &e)),
    }
}

/// Like [`read_all`], but reads at most `limit` bytes: more is refused as invalid input
/// (`what` names the thing read, in the message) before it is all in memory.
pub(crate) fn read_limited(path: Option<&Path>, limit: usize, what: &str) -> Result<Zeroizing<Vec<u8>>> {
    // One byte past the limit tells "exactly the limit" from "more".
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let (out, source) = match path {
        Some(p) => {
            let doing = || format!("reading {}", p.display());
            let f = std::fs::File::open(p).map_err(|e| Error::io(&doing(), &e))?;
            let len = f.metadata().ok().map_or(0, |m| m.len().min(cap));
            let hint = usize::try_from(len).unwrap_or(0);
            (
                read_wiping(&mut f.take(cap), hint).map_err(|e| Error::io(&doing(), &e))?,
                p.display().to_string(),
            )
        }
        None => {
            let mut stdin = std::io::stdin().lock().take(cap);
            (read_wiping(&mut stdin, 0).map_err(|e| Error::io("reading stdin", &e))?, "stdin".to_string())
        }
    };
    if out.len() > limit {
        return Err(Error::invalid(
            InvalidReason::Length,
            format!("{what} is at most {limit} bytes; {source} holds more"),
        ));
    }
    Ok(out)
}

fn read_wiping(r: &mut dyn Read, hint: usize) -> std::io::Result<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(Vec::with_capacity(hint.saturating_add(1)));
    let mut chunk = Zeroizing::new([0u8; 1 << 13]);
    loop {
        let n = match r.read(chunk.as_mut_slice()) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let got = chunk.get(..n).unwrap_or_default();
        if out.len().saturating_add(n) > out.capacity() {
            // Grow by hand: the old buffer is wiped when `out` is replaced.
            let mut bigger =
                Zeroizing::new(Vec::with_capacity(out.capacity().saturating_mul(2).max(out.len() + n)));
            bigger.extend_from_slice(&out);
            out = bigger;
        }
        out.extend_from_slice(got);
    }
}

/// A file for streaming, or stdin; with its length when known (for progress).
pub(crate) fn reader(path: Option<&Path>) -> Result<(Box<dyn Read>, Option<u64>)> {
    match path {
        Some(p) => {
            let f = std::fs::File::open(p).map_err(|e| Error::io(&format!("opening {}", p.display()), &e))?;
            let len = f.metadata().ok().map(|m| m.len());
            // Unbuffered: the streams read whole chunks, and a BufReader's buffer (the
            // plaintext being sealed) would be freed unwiped.
            Ok((Box::new(f), len))
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
            let mut tmp = {
                let mut partial = partial_files();
                let tmp =
                    tempfile::Builder::new().prefix(".hsmkit-").suffix(".partial").tempfile_in(dir).map_err(
                        |e| Error::io(&format!("creating a temporary file in {}", dir.display()), &e),
                    )?;
                partial.push(tmp.path().to_path_buf());
                tmp
            };
            let written = tmp.path().to_path_buf();
            let r = (|| {
                let value = {
                    let mut w = WipingWriter::new(tmp.as_file_mut());
                    let v = write(&mut w)?;
                    w.flush().map_err(|e| Error::io("writing the output", &e))?;
                    v
                };
                tmp.as_file().sync_all().map_err(|e| Error::io("writing the output", &e))?;
                tmp.persist(p).map_err(|e| Error::io(&format!("writing {}", p.display()), &e.error))?;
                Ok(value)
            })();
            // Renamed into place, or removed by the temporary file's drop on error.
            partial_files().retain(|q| *q != written);
            r
        }
        None => {
            let mut out = WipingWriter::new(raw_stdout()?);
            let v = write(&mut out)?;
            out.flush().map_err(|e| Error::io("writing stdout", &e))?;
            Ok(v)
        }
    }
}

/// Stdout without std's buffer: `std::io::stdout()` keeps output in a `LineWriter` that
/// is freed unwiped when the process exits, and the output here may be plaintext.
#[cfg(unix)]
fn raw_stdout() -> Result<std::fs::File> {
    use std::os::fd::AsFd;
    std::io::stdout().flush().map_err(|e| Error::io("writing stdout", &e))?;
    let fd = std::io::stdout().as_fd().try_clone_to_owned().map_err(|e| Error::io("opening stdout", &e))?;
    Ok(std::fs::File::from(fd))
}

#[cfg(not(unix))]
fn raw_stdout() -> Result<std::io::StdoutLock<'static>> {
    Ok(std::io::stdout().lock())
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
