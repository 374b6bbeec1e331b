//! The encrypted keystore across processes: writers killed at random points (SIGKILL),
//! several processes rotating one key at once, and reopening after each.
//!
//! This binary is its own child: with `HSMKIT_CHILD` set it runs a writer instead of the
//! tests (`harness = false` in Cargo.toml).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hsmkit::{ErrorKind, KeyAttributes, KeyOp, KeySpec, KeyUpdate, SignatureAlgorithm, Store};
use hsmkit_soft::{FileStorage, KdfParams, SoftBackend, StoreKey};

const KILLS: usize = 200;

fn store_key() -> StoreKey {
    StoreKey::Key(hsmkit::Zeroizing::new([0x42; 32]))
}

fn open(dir: &Path) -> Store {
    let storage =
        FileStorage::open_or_create(dir, &store_key(), KdfParams::default()).expect("open keystore");
    Store::new(SoftBackend::with_storage(storage))
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

/// Child: an endless stream of lifecycle writes, each acknowledged on stdout once it
/// has returned.
fn writer(dir: &Path) {
    let store = open(dir);
    let sign = KeyAttributes::with_ops(&[KeyOp::Sign, KeyOp::Verify]);
    if store.get_key("k").is_err() {
        store.create_key("k", KeySpec::P256, sign).unwrap();
    }
    say("ready");
    loop {
        let v = store.rotate_key("k").unwrap().version();
        say(&format!("rotated {v}"));
        let n = format!("n{v}");
        let attrs = KeyAttributes {
            exportable: true,
            ..KeyAttributes::with_ops(&[KeyOp::WrapKey, KeyOp::UnwrapKey])
        };
        match store.create_key(&n, KeySpec::AES_128, attrs) {
            Ok(_) => say(&format!("created {v}")),
            // Made by a run that was killed before it could say so.
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => panic!("{e}"),
        }
        let tags = [("step".to_owned(), "updated".to_owned())].into();
        store.update_key(&n, 1, &KeyUpdate { tags: Some(tags), ..Default::default() }).unwrap();
        say(&format!("updated {v}"));
        if v > 2 {
            let old = format!("n{}", v - 2);
            if store.get_key(&old).is_ok() {
                store.delete_key(&old).unwrap();
            }
            if store.get_deleted_key(&old).is_ok() {
                store.purge_deleted_key(&old).unwrap();
            }
            say(&format!("purged {}", v - 2));
        }
        let days = if v.is_multiple_of(2) { 7 } else { 8 };
        store.set_retention(Duration::from_secs(days * 86_400)).unwrap();
        say(&format!("retention {days}"));
    }
}

/// Child: rotates the key `shared` N times and reports each version it made.
fn rotator(dir: &Path, n: usize) {
    let store = open(dir);
    for _ in 0..n {
        let v = store.rotate_key("shared").unwrap().version();
        say(&format!("made {v}"));
    }
}

fn child(mode: &str, dir: &Path, arg: &str) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.env("HSMKIT_CHILD", mode).env("HSMKIT_CHILD_DIR", dir).env("HSMKIT_CHILD_ARG", arg);
    c.stdout(Stdio::piped()).stderr(Stdio::inherit());
    c
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    u64::from_le_bytes(b)
}

fn temporaries(dir: &Path) -> usize {
    [dir.to_path_buf(), dir.join("keys")]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).unwrap().flatten())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
        .count()
}

/// What the writers acknowledged, across all runs.
#[derive(Default)]
struct Acked {
    rotated: u32,
    created: BTreeSet<u32>,
    updated: BTreeSet<u32>,
    purged: BTreeSet<u32>,
}

impl Acked {
    fn record(&mut self, line: &str) {
        let (what, n) = line.split_once(' ').unwrap_or((line, "0"));
        let n: u32 = n.parse().unwrap_or(0);
        match what {
            "rotated" => self.rotated = self.rotated.max(n),
            "created" => _ = self.created.insert(n),
            "updated" => _ = self.updated.insert(n),
            "purged" => _ = self.purged.insert(n),
            _ => {}
        }
    }
}

/// Reopens the store and checks that everything acknowledged is there and intact.
fn check(dir: &Path, acked: &Acked, deep: bool) {
    let store = open(dir);
    assert_eq!(temporaries(dir), 0, "reopening removes the temporaries of killed writers");
    let versions: Vec<u32> = store.list_versions("k").unwrap().iter().map(|v| v.version).collect();
    let current = *versions.last().unwrap();
    assert_eq!(versions, (1..=current).collect::<Vec<_>>(), "versions are contiguous");
    assert!(current >= acked.rotated, "acknowledged rotation {} lost (current {current})", acked.rotated);
    let from = if deep { 1 } else { current.saturating_sub(3).max(1) };
    for v in from..=current {
        let k = store.get_key_version("k", v).unwrap();
        let sig = k.sign(SignatureAlgorithm::Es256, b"m").unwrap();
        k.verify(SignatureAlgorithm::Es256, b"m", &sig).unwrap();
    }
    // Every key file decrypts and holds what the writer made.
    let live: BTreeMap<String, _> =
        store.list_keys().unwrap().into_iter().map(|i| (i.name.clone(), i)).collect();
    for (name, info) in &live {
        if name == "k" {
            continue;
        }
        assert_eq!(info.spec, KeySpec::AES_128);
        assert_eq!(store.get_key(name).unwrap().export().unwrap().spec().unwrap(), KeySpec::AES_128);
    }
    for v in &acked.created {
        let name = format!("n{v}");
        let may_be_purged = acked.purged.contains(v) || current >= v + 2;
        if !may_be_purged {
            assert!(live.contains_key(&name), "acknowledged key {name} lost");
        }
        if acked.updated.contains(v)
            && let Some(info) = live.get(&name)
        {
            assert_eq!(info.attributes.tags.get("step").map(String::as_str), Some("updated"), "{name}");
        }
    }
    for v in &acked.purged {
        assert!(!live.contains_key(&format!("n{v}")), "purged n{v} came back");
        assert!(store.get_deleted_key(&format!("n{v}")).is_err());
    }
    let days = store.settings().unwrap().retention.as_secs() / 86_400;
    assert!(days == 7 || days == 8 || days == 90, "settings intact: {days}");
}

fn kill_at_random_points() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut acked = Acked::default();
    let (mut mid_write, start) = (0, Instant::now());
    for _ in 0..KILLS {
        let mut c = child("writer", dir, "").spawn().unwrap();
        let mut out = BufReader::new(c.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "writer failed to start");
        // Let it write for a random 0-25 ms, then SIGKILL it wherever it is.
        std::thread::sleep(Duration::from_micros(random_u64() % 25_000));
        c.kill().unwrap();
        c.wait().unwrap();
        for l in out.lines() {
            acked.record(&l.unwrap());
        }
        mid_write += usize::from(temporaries(dir) > 0);
        check(dir, &acked, false);
    }
    check(dir, &acked, true);
    println!(
        "kill test: {KILLS} writers killed in {:.1?}; {mid_write} left a half-written temporary; \
         {} rotations, {} keys created, {} purged, all intact",
        start.elapsed(),
        acked.rotated,
        acked.created.len(),
        acked.purged.len()
    );
    assert!(acked.rotated > 50, "the writers made progress");
}

fn concurrent_processes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    open(dir).create_key("shared", KeySpec::P256, KeyAttributes::default()).unwrap();
    let (procs, each) = (3, 10);
    let children: Vec<_> =
        (0..procs).map(|_| child("rotator", dir, &each.to_string()).spawn().unwrap()).collect();
    let mut made = Vec::new();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success());
        made.extend(
            String::from_utf8(o.stdout)
                .unwrap()
                .lines()
                .map(|l| l.trim_start_matches("made ").parse::<u32>().unwrap()),
        );
    }
    made.sort_unstable();
    let total = u32::try_from(procs * each).unwrap();
    assert_eq!(made, (2..=total + 1).collect::<Vec<_>>(), "each version made exactly once");
    let versions: Vec<u32> = open(dir).list_versions("shared").unwrap().iter().map(|v| v.version).collect();
    assert_eq!(versions, (1..=total + 1).collect::<Vec<_>>(), "no rotation lost");
    println!(
        "concurrent processes: {procs} x {each} rotations of one key, versions 1..={} intact",
        total + 1
    );
}

fn main() {
    if let Ok(mode) = std::env::var("HSMKIT_CHILD") {
        let dir = std::env::var("HSMKIT_CHILD_DIR").unwrap();
        match mode.as_str() {
            "writer" => writer(Path::new(&dir)),
            "rotator" => {
                rotator(Path::new(&dir), std::env::var("HSMKIT_CHILD_ARG").unwrap().parse().unwrap())
            }
            other => panic!("unknown child mode {other}"),
        }
        return;
    }
    concurrent_processes();
    kill_at_random_points();
}
