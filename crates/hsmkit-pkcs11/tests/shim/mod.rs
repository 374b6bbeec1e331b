//! The fault/quirk shim rig shared by test files: a fresh SoftHSM2 token and a build of
//! tests/pkcs11-shim/shim.c that forwards to it, with its own module path (so hsmkit's
//! per-module probe cache gives every rig its own probe) and its own config file.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use hsmkit::Store;
use hsmkit_pkcs11::Pkcs11Backend;
use hsmkit_pkcs11::testing::{SoftHsmToken, USER_PIN};

/// Builds the shim for SoftHSM2 `module` with config file `config`, at `out`.
pub(crate) fn build_shim(module: &Path, config: &Path, out: &Path) {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/pkcs11-shim/shim.c");
    let cflags = Command::new("pkg-config").args(["--cflags", "p11-kit-1"]).output().unwrap();
    assert!(cflags.status.success(), "pkg-config p11-kit-1 (apt-get install libp11-kit-dev)");
    let o = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-Wall", "-Wextra", "-Werror"])
        .arg(format!("-DSHIM_TARGET=\"{}\"", module.display()))
        .arg(format!("-DSHIM_CONFIG=\"{}\"", config.display()))
        .args(String::from_utf8(cflags.stdout).unwrap().split_whitespace())
        .arg(&src)
        .arg("-o")
        .arg(out)
        .args(["-ldl", "-lpthread"])
        .output()
        .unwrap();
    assert!(o.status.success(), "building the shim: {}", String::from_utf8_lossy(&o.stderr));
}

#[derive(Debug)]
/// A token behind its own shim. Nothing is opened until [`Shim::open`] / [`Shim::store`],
/// so quirks that matter at open time (and to the probe) can be set first.
pub(crate) struct Shim {
    pub(crate) token: SoftHsmToken,
    dir: tempfile::TempDir,
    config: PathBuf,
    module: PathBuf,
    generation: AtomicU32,
}

impl Shim {
    pub(crate) fn new() -> Self {
        let token = SoftHsmToken::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("faults");
        std::fs::write(&config, "gen 0\n").unwrap();
        let module = dir.path().join("shim.so");
        build_shim(token.module(), &config, &module);
        Shim { token, dir, config, module, generation: AtomicU32::new(0) }
    }

    /// The shim's module path.
    pub(crate) fn module(&self) -> &Path {
        &self.module
    }

    /// The token's URI through the shim.
    pub(crate) fn uri(&self) -> String {
        format!(
            "pkcs11:token={}?module-path={}&pin-value={USER_PIN}",
            self.token.label(),
            self.module.display()
        )
    }

    pub(crate) fn open(&self) -> hsmkit::Result<Pkcs11Backend> {
        Pkcs11Backend::open(&self.uri())
    }

    /// A store on the token through the shim (a fresh backend each call).
    pub(crate) fn store(&self) -> Store {
        Store::new(self.open().unwrap())
    }

    /// Replaces the config: these fault rules (`FUNCTION ACTION COUNT`) and quirks
    /// (`NAME` or `NAME ARG`); zeroes the call counts and the shim's quirk state.
    pub(crate) fn configure(&self, rules: &[(&str, &str, u32)], quirks: &[&str]) {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let mut text = format!("gen {generation}\n");
        for (f, action, count) in rules {
            text.push_str(&format!("{f} {action} {count}\n"));
        }
        for q in quirks {
            text.push_str(&format!("quirk {q}\n"));
        }
        std::fs::write(&self.config, text).unwrap();
    }

    /// Turns on exactly these quirks (and no fault rules).
    pub(crate) fn quirk(&self, quirks: &[&str]) {
        self.configure(&[], quirks);
    }
}

/// A shim built once per quirk set for this test binary (under CARGO_TARGET_TMPDIR),
/// whose config turns these quirks on and is never changed: for stores that many tests
/// make, each on its own fresh token.
pub(crate) fn fixed_shim(quirks: &[&str]) -> PathBuf {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let key = quirks.join("+");
    let mut built = BUILT.get_or_init(Default::default).lock().unwrap();
    if let Some(p) = built.get(&key) {
        return p.clone();
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("quirk-shims").join(if key.is_empty() {
        "none"
    } else {
        &key
    });
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("faults");
    let text: String =
        std::iter::once("gen 1\n".to_owned()).chain(quirks.iter().map(|q| format!("quirk {q}\n"))).collect();
    // Written then renamed, as another test process may be using the same files.
    let pid = std::process::id();
    let tmp = dir.join(format!("faults.{pid}"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &config).unwrap();
    let module = hsmkit_pkcs11::testing::softhsm_module().unwrap();
    let so = dir.join("shim.so");
    let tmp = dir.join(format!("shim.so.{pid}"));
    build_shim(&module, &config, &tmp);
    std::fs::rename(&tmp, &so).unwrap();
    built.insert(key, so.clone());
    so
}

/// A store on a fresh token through the fixed shim for `quirks`; the token is deleted
/// when the store drops. `bad-token-info NEIGHBOUR` scopes that quirk to a second token
/// of the same module (made once per test binary), so the suite runs on a token whose
/// neighbour's info cannot be read.
pub(crate) fn quirk_store(quirks: &[&str]) -> Store {
    static NEIGHBOUR: std::sync::OnceLock<SoftHsmToken> = std::sync::OnceLock::new();
    let neighbour = || NEIGHBOUR.get_or_init(|| SoftHsmToken::new().unwrap()).label().to_owned();
    let quirks: Vec<String> = quirks.iter().map(|q| q.replace("NEIGHBOUR", &neighbour())).collect();
    let quirks: Vec<&str> = quirks.iter().map(String::as_str).collect();
    let module = fixed_shim(&quirks);
    let token = SoftHsmToken::new().unwrap();
    let uri = format!("pkcs11:token={}?module-path={}&pin-value={USER_PIN}", token.label(), module.display());
    token.into_store_at(&uri).unwrap()
}
