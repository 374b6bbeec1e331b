//! 1 GiB sealed and opened as a stream in bounded memory: a sealing thread writes into a
//! pipe, the main thread opens from it and checks every byte. Peak RSS (VmHWM) must stay
//! under 64 MiB. Its own binary (`harness = false`), so the peak is this test's alone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::{Read, Write};
use std::time::Instant;

use hsmkit::envelope::Sealer;
use hsmkit::{KeyAttributes, KeySpec, Store};

const TOTAL: u64 = 1 << 30;
const LIMIT_KIB: u64 = 64 * 1024;

fn byte_at(i: u64) -> u8 {
    (i ^ (i >> 13)).to_le_bytes()[0]
}

/// Yields `TOTAL` bytes of a known pattern.
struct Pattern(u64);
impl Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = usize::try_from((TOTAL - self.0).min(u64::try_from(buf.len()).unwrap())).unwrap();
        for (k, b) in buf[..n].iter_mut().enumerate() {
            *b = byte_at(self.0 + u64::try_from(k).unwrap());
        }
        self.0 += u64::try_from(n).unwrap();
        Ok(n)
    }
}

/// Checks that it is written the pattern, in order.
struct Check(u64);
impl Write for Check {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for (k, b) in buf.iter().enumerate() {
            assert_eq!(*b, byte_at(self.0 + u64::try_from(k).unwrap()), "plaintext byte {}", self.0);
        }
        self.0 += u64::try_from(buf.len()).unwrap();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status (Linux)");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn main() {
    let store = Store::new(hsmkit_soft::SoftBackend::new());
    let kek = store.create_key("kek", KeySpec::AES_256, KeyAttributes::default()).unwrap();
    let sealer = Sealer::for_key(kek).unwrap();
    let before = peak_rss_kib();
    let (reader, writer) = std::io::pipe().unwrap();
    let start = Instant::now();
    let sealing = std::thread::spawn(move || sealer.seal_stream(Pattern(0), writer).unwrap());
    let mut check = Check(0);
    let opened =
        store.opener().open_stream(std::io::BufReader::with_capacity(1 << 16, reader), &mut check).unwrap();
    assert_eq!(sealing.join().unwrap(), TOTAL);
    assert_eq!(opened, TOTAL);
    assert_eq!(check.0, TOTAL);
    let secs = start.elapsed().as_secs_f64();
    let peak = peak_rss_kib();
    println!(
        "envelope 1 GiB stream: sealed and opened in {secs:.2} s; peak RSS {} MiB (before: {} MiB; limit {} MiB)",
        peak / 1024,
        before / 1024,
        LIMIT_KIB / 1024
    );
    assert!(peak < LIMIT_KIB, "peak RSS {peak} KiB is over {LIMIT_KIB} KiB");
}
