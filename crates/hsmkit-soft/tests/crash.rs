//! The encrypted keystore across processes: writers killed at random points (SIGKILL),
//! several processes rotating one key (and setting one secret) at once, and reopening
//! after each. Secret writes are in the same stream as key writes: a killed writer never
//! leaves a half secret (a version that does not open, or a record that does not read).
//!
//! This binary is its own child: with `HSMKIT_CHILD` set it runs a writer instead of the
//! tests (`harness = false` in Cargo.toml).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hsmkit::{
    ErrorKind, KeyAttributes, KeyOp, KeySpec, KeyUpdate, SecretAttributes, SecretUpdate, SignatureAlgorithm,
    Store,
};
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
        // Secrets: a version of `s` per round (its value names the round), a tag update,
        // and a secret per round deleted and purged two rounds later.
        let sv =
            store.set_secret("s", secret_value(v).as_bytes(), SecretAttributes::default()).unwrap().version;
        say(&format!("secret {sv} {v}"));
        let tags = [("round".to_owned(), v.to_string())].into();
        store.update_secret("s", sv, &SecretUpdate { tags: Some(tags), ..Default::default() }).unwrap();
        say(&format!("tagged {sv} {v}"));
        let d = format!("d{v}");
        match store.set_secret(&d, b"short-lived", SecretAttributes::default()) {
            Ok(_) => say(&format!("dset {v}")),
            // Set by a run that was killed before it could say so (or deleted, then killed).
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => panic!("{e}"),
        }
        if v > 2 {
            let old = format!("d{}", v - 2);
            if store.get_secret(&old).is_ok() {
                store.delete_secret(&old).unwrap();
            }
            if store.get_deleted_secret(&old).is_ok() {
                store.purge_deleted_secret(&old).unwrap();
            }
            say(&format!("dpurged {}", v - 2));
        }
    }
}

fn secret_value(round: u32) -> String {
    format!("secret value of round {round}")
}

/// Child: rotates the key `shared` N times and reports each version it made.
fn rotator(dir: &Path, n: usize) {
    let store = open(dir);
    for _ in 0..n {
        let v = store.rotate_key("shared").unwrap().version();
        say(&format!("made {v}"));
        let sv = store.set_secret(
            "shared",
            format!("from {}", std::process::id()).as_bytes(),
            SecretAttributes::default(),
        );
        say(&format!("secret {}", sv.unwrap().version));
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
    [dir.to_path_buf(), dir.join("keys"), dir.join("secrets")]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
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
    /// Secret version of `s` -> the round whose value it holds.
    secrets: BTreeMap<u32, u32>,
    tagged: BTreeMap<u32, u32>,
    dset: BTreeSet<u32>,
    dpurged: BTreeSet<u32>,
}

impl Acked {
    fn record(&mut self, line: &str) {
        let (what, n) = line.split_once(' ').unwrap_or((line, "0"));
        if let Some((a, b)) = n.split_once(' ') {
            let (a, b): (u32, u32) = (a.parse().unwrap(), b.parse().unwrap());
            match what {
                "secret" => _ = self.secrets.insert(a, b),
                "tagged" => _ = self.tagged.insert(a, b),
                _ => panic!("unknown line {line}"),
            }
            return;
        }
        let n: u32 = n.parse().unwrap_or(0);
        match what {
            "dset" => _ = self.dset.insert(n),
            "dpurged" => _ = self.dpurged.insert(n),
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
        if name == "k" || name == hsmkit::secrets::SECRETS_KEK_NAME {
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
    check_secrets(&store, acked, deep);
}

/// Every version of `s` is contiguous and opens; the acknowledged ones hold their value
/// and tags; the short-lived secrets are there or purged as acknowledged.
fn check_secrets(store: &Store, acked: &Acked, deep: bool) {
    let Ok(versions) = store.list_secret_versions("s") else {
        assert!(acked.secrets.is_empty(), "acknowledged secret versions lost: the secret is gone");
        return;
    };
    let numbers: Vec<u32> = versions.iter().map(|p| p.version).collect();
    let current = numbers.last().copied().unwrap_or(0);
    assert_eq!(numbers, (1..=current).collect::<Vec<_>>(), "secret versions are contiguous");
    let from = if deep { 1 } else { current.saturating_sub(3).max(1) };
    for p in versions.iter().filter(|p| p.version >= from) {
        // Opens: no half-written version. Its value is some round's.
        let value = store.get_secret_version("s", p.version).unwrap();
        let value = String::from_utf8(value.value().to_vec()).unwrap();
        assert!(value.starts_with("secret value of round "), "{value}");
    }
    for (sv, round) in &acked.secrets {
        assert!(*sv <= current, "acknowledged secret version {sv} lost");
        if deep || *sv >= from {
            let got = store.get_secret_version("s", *sv).unwrap();
            assert_eq!(got.value(), secret_value(*round).as_bytes(), "version {sv}");
        }
    }
    for (sv, round) in &acked.tagged {
        let p = versions.iter().find(|p| p.version == *sv).unwrap();
        assert_eq!(p.attributes.tags.get("round"), Some(&round.to_string()), "tags of version {sv}");
    }
    let live: BTreeSet<String> = store.list_secrets().unwrap().into_iter().map(|p| p.name).collect();
    for v in &acked.dset {
        if !acked.dpurged.contains(v) && acked.rotated < v + 2 {
            assert!(live.contains(&format!("d{v}")), "acknowledged secret d{v} lost");
        }
    }
    for v in &acked.dpurged {
        assert!(!live.contains(&format!("d{v}")), "purged d{v} came back");
        assert!(store.get_deleted_secret(&format!("d{v}")).is_err());
    }
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
         {} rotations, {} keys created, {} purged, {} secret versions set, {} secrets purged, all intact",
        start.elapsed(),
        acked.rotated,
        acked.created.len(),
        acked.purged.len(),
        acked.secrets.len(),
        acked.dpurged.len()
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
    let (mut made, mut secrets) = (Vec::new(), Vec::new());
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success());
        for l in String::from_utf8(o.stdout).unwrap().lines() {
            match l.split_once(' ') {
                Some(("made", v)) => made.push(v.parse::<u32>().unwrap()),
                Some(("secret", v)) => secrets.push(v.parse::<u32>().unwrap()),
                _ => panic!("unexpected line {l}"),
            }
        }
    }
    secrets.sort_unstable();
    made.sort_unstable();
    let total = u32::try_from(procs * each).unwrap();
    assert_eq!(made, (2..=total + 1).collect::<Vec<_>>(), "each version made exactly once");
    let versions: Vec<u32> = open(dir).list_versions("shared").unwrap().iter().map(|v| v.version).collect();
    assert_eq!(versions, (1..=total + 1).collect::<Vec<_>>(), "no rotation lost");
    assert_eq!(secrets, (1..=total).collect::<Vec<_>>(), "each secret version set exactly once");
    let store = open(dir);
    let listed: Vec<u32> = store.list_secret_versions("shared").unwrap().iter().map(|p| p.version).collect();
    assert_eq!(listed, secrets, "no secret version lost");
    for v in listed {
        assert!(store.get_secret_version("shared", v).unwrap().value().starts_with(b"from "));
    }
    println!(
        "concurrent processes: {procs} x {each} rotations of one key and sets of one secret, versions 1..={} intact",
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
