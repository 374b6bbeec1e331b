//! The host lock file: in a private per-user directory, never through a symbolic link,
//! and a bounded wait for another process's hold.
//!
//! The lock's place comes from the environment (`XDG_RUNTIME_DIR`, `TMPDIR`) and the
//! wait's bound from `HSMKIT_LOCK_TIMEOUT_MS`, so each case runs the lifecycle calls in a
//! child process (this test binary again, running only [`child`]) with its own
//! environment; the parent plants links, directories and holds on the lock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use hsmkit::{KeyAttributes, KeySpec, Store};
use hsmkit_pkcs11::Pkcs11Backend;
use hsmkit_pkcs11::testing::SoftHsmToken;

/// The child's side: opens the token `HSMKIT_CHILD_URI` names and runs the
/// comma-separated actions of `HSMKIT_TEST_CHILD` (`create:NAME`, `list`), printing one
/// line `@@ ACTION: ok` or `@@ ACTION: err KIND: MESSAGE` each. A no-op in the parent's run.
#[test]
fn child() {
    let Ok(actions) = std::env::var("HSMKIT_TEST_CHILD") else { return };
    // Opening may itself take the lock (a first open probes the token under it): then
    // every action is refused with that error.
    let store = Pkcs11Backend::open(&std::env::var("HSMKIT_CHILD_URI").unwrap()).map(Store::new);
    for action in actions.split(',') {
        let Ok(store) = &store else {
            let Err(e) = &store else { unreachable!() };
            println!("\n@@ {action}: err {:?}: {e}", e.kind());
            continue;
        };
        let r = match action.split_once(':') {
            Some(("create", name)) => {
                store.create_key(name, KeySpec::AES_128, KeyAttributes::default()).map(drop)
            }
            None if action == "list" => store.list_keys().map(drop),
            _ => panic!("unknown action {action}"),
        };
        match r {
            // On a line of its own: libtest's "test child ... " precedes the first.
            Ok(()) => println!("\n@@ {action}: ok"),
            Err(e) => println!("\n@@ {action}: err {:?}: {e}", e.kind()),
        }
    }
}

/// Runs `actions` in a child process with `XDG_RUNTIME_DIR` unset, then `env` set, and
/// returns the child's line for each action.
fn in_child(token: &SoftHsmToken, actions: &str, env: &[(&str, &Path)]) -> Vec<String> {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["child", "--exact", "--nocapture", "--test-threads=1"])
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("HSMKIT_LOCK_TIMEOUT_MS")
        .env("HSMKIT_TEST_CHILD", actions)
        .env("HSMKIT_CHILD_URI", token.uri());
    // The probe cache: a first open probes the token under the exclusive lock, so
    // whether a child probes must not depend on the environment the suite runs in.
    static CACHE: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    cmd.env("XDG_CACHE_HOME", CACHE.get_or_init(|| tempfile::tempdir().unwrap()).path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    // Returns: the child ends whether or not the lock is free (that is the point).
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    actions
        .split(',')
        .map(|a| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix("@@ ").filter(|l| l.starts_with(&format!("{a}: "))))
                .unwrap_or_else(|| panic!("no line for {a} in {stdout}"))
                .to_owned()
        })
        .collect()
}

/// The one `*.lock` regular file under `root` (at most two levels down).
fn lock_file(root: &Path) -> PathBuf {
    let mut found = Vec::new();
    let mut dirs = vec![(root.to_owned(), 0)];
    while let Some((dir, depth)) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() && depth < 1 {
                dirs.push((path, depth + 1));
            } else if path.extension().is_some_and(|e| e == "lock")
                && std::fs::symlink_metadata(&path).unwrap().is_file()
            {
                found.push(path);
            }
        }
    }
    assert_eq!(found.len(), 1, "one lock file under {}: {found:?}", root.display());
    found.remove(0)
}

fn refused(line: &str) -> bool {
    line.contains(": err Backend: ")
}

/// (a) A symbolic link at the lock file's path, new (in the private directory) or old
/// (`hsmkit-pkcs11-*.lock` straight in the temp directory, where earlier builds kept
/// it), is not followed: its target is neither created nor changed.
#[test]
fn a_symlink_at_the_lock_path_is_not_followed() {
    let token = SoftHsmToken::new().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let env = [("TMPDIR", tmp.path())];
    // Earlier builds locked `<temp dir>/hsmkit-pkcs11-<serial>-<label>.lock`: a link
    // there, to a file that does not exist, is left alone.
    let slot = token.raw_session().unwrap().get_session_info().unwrap().slot_id();
    let info = token.context().unwrap().get_token_info(slot).unwrap();
    let name = format!("hsmkit-pkcs11-{}-{}.lock", info.serial_number().trim_end(), token.label());
    let old_target = tmp.path().join("old-target");
    symlink(&old_target, tmp.path().join(&name)).unwrap();
    assert_eq!(in_child(&token, "create:k1", &env), ["create:k1: ok"]);
    assert!(!old_target.exists(), "the link at the old lock path was followed");

    // The lock file now in the private directory is replaced by a link to a file that
    // does exist: it is neither opened nor changed, and the lock is refused.
    let lock = lock_file(tmp.path());
    assert_eq!(lock.file_name().and_then(|n| n.to_str()), Some(name.as_str()));
    assert_ne!(lock.parent(), Some(tmp.path()), "the lock is not straight in the temp directory");
    let new_target = tmp.path().join("new-target");
    std::fs::write(&new_target, "keep").unwrap();
    std::fs::set_permissions(&new_target, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::remove_file(&lock).unwrap();
    symlink(&new_target, &lock).unwrap();

    let lines = in_child(&token, "create:k2,list", &env);
    for line in &lines {
        assert!(refused(line) && line.contains("symbolic link"), "{line}");
        assert!(line.contains(&lock.display().to_string()), "the error names the lock file: {line}");
    }
    assert!(!old_target.exists(), "the link at the old lock path was followed");
    assert_eq!(std::fs::read_to_string(&new_target).unwrap(), "keep");
    assert_eq!(std::fs::metadata(&new_target).unwrap().mode() & 0o777, 0o644);
}

/// (b) A lock directory that is not a directory owned by us with mode 0700 is refused
/// (and one that is missing is made so).
#[test]
fn b_an_unsafe_lock_directory_is_refused() {
    let token = SoftHsmToken::new().unwrap();
    let run = |setup: &dyn Fn(&Path)| {
        // XDG_RUNTIME_DIR is a private directory of ours; the lock directory is in it.
        let runtime = tempfile::tempdir().unwrap();
        setup(&runtime.path().join("hsmkit"));
        let lines = in_child(&token, "create:k,list", &[("XDG_RUNTIME_DIR", runtime.path())]);
        (runtime, lines)
    };

    let (runtime, lines) = run(&|_| {});
    assert_eq!(lines, ["create:k: ok", "list: ok"]);
    let made = std::fs::symlink_metadata(runtime.path().join("hsmkit")).unwrap();
    assert!(made.is_dir() && made.mode() & 0o777 == 0o700, "made mode {:o}", made.mode());

    let open_to_others = |d: &Path| {
        std::fs::create_dir(d).unwrap();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    let (_rt, lines) = run(&open_to_others);
    for line in &lines {
        assert!(refused(line) && line.contains("mode"), "{line}");
    }

    let link_to_private_dir = |d: &Path| {
        let real = d.with_file_name("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).unwrap();
        symlink(&real, d).unwrap();
    };
    let (rt, lines) = run(&link_to_private_dir);
    for line in &lines {
        assert!(refused(line) && line.contains("not a directory"), "{line}");
    }
    assert_eq!(
        std::fs::read_dir(rt.path().join("real")).unwrap().count(),
        0,
        "nothing made through the link"
    );

    let a_file = |d: &Path| std::fs::write(d, "").unwrap();
    let (_rt, lines) = run(&a_file);
    for line in &lines {
        assert!(refused(line) && line.contains("not a directory"), "{line}");
    }

    // Someone else's directory (only root can make one to test with).
    if rustix::process::geteuid().is_root() {
        let someone_elses = |d: &Path| {
            std::fs::create_dir(d).unwrap();
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700)).unwrap();
            std::os::unix::fs::chown(d, Some(65534), Some(65534)).unwrap();
        };
        let (_rt, lines) = run(&someone_elses);
        for line in &lines {
            assert!(refused(line) && line.contains("owned by uid 65534"), "{line}");
        }
    }
}

/// (c) While another process holds the token's lock, lifecycle writes and metadata
/// reads fail with a typed error naming the lock file once the bound has passed, rather
/// than wait for ever; once it is released they work again.
#[test]
fn c_a_lock_held_by_another_process_fails_within_the_bound() {
    let token = SoftHsmToken::new().unwrap();
    let runtime = tempfile::tempdir().unwrap();
    let env = [("XDG_RUNTIME_DIR", runtime.path()), ("HSMKIT_LOCK_TIMEOUT_MS", Path::new("200"))];
    assert_eq!(in_child(&token, "create:k1", &env), ["create:k1: ok"]);
    let path = lock_file(&runtime.path().join("hsmkit"));

    // This process holds it, as another hsmkit process in the middle of a write would.
    let held = std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
    held.lock().unwrap();
    let lines = in_child(&token, "create:k2,list", &env);
    for line in &lines {
        assert!(refused(line) && line.contains("another process holds the token lock"), "{line}");
        assert!(line.contains(&path.display().to_string()), "{line}");
    }
    // A shared hold (another process reading metadata) lets readers in, not writers.
    held.unlock().unwrap();
    held.lock_shared().unwrap();
    let lines = in_child(&token, "create:k2,list", &env);
    assert!(refused(&lines[0]), "{}", lines[0]);
    assert_eq!(lines[1], "list: ok");

    held.unlock().unwrap();
    assert_eq!(in_child(&token, "create:k2,list", &env), ["create:k2: ok", "list: ok"]);
}
