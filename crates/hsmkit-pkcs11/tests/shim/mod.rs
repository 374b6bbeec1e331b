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
/// when the store drops.
pub(crate) fn quirk_store(quirks: &[&str]) -> Store {
    let module = fixed_shim(quirks);
    let token = SoftHsmToken::new().unwrap();
    let uri = format!("pkcs11:token={}?module-path={}&pin-value={USER_PIN}", token.label(), module.display());
    let backend = Pkcs11Backend::open(&uri).unwrap();
    Store::new(Owning { backend, _token: token })
}

/// A backend that keeps its throw-away token alive.
#[derive(Debug)]
struct Owning {
    backend: Pkcs11Backend,
    _token: SoftHsmToken,
}

impl hsmkit::Backend for Owning {
    fn kind(&self) -> &'static str {
        self.backend.kind()
    }
    fn capabilities(&self) -> hsmkit::Capabilities {
        self.backend.capabilities()
    }
    fn generate(
        &self,
        req: &hsmkit::NewKey<'_>,
        spec: hsmkit::KeySpec,
    ) -> hsmkit::Result<Box<dyn hsmkit::BackendKey>> {
        self.backend.generate(req, spec)
    }
    fn import(
        &self,
        req: &hsmkit::NewKey<'_>,
        m: hsmkit::KeyMaterial,
    ) -> hsmkit::Result<Box<dyn hsmkit::BackendKey>> {
        self.backend.import(req, m)
    }
    fn next_version(&self, key: &hsmkit::KeyDescription) -> hsmkit::Result<u32> {
        self.backend.next_version(key)
    }
    fn open(&self, name: &str, version: u32) -> hsmkit::Result<Box<dyn hsmkit::BackendKey>> {
        self.backend.open(name, version)
    }
    fn describe(&self, name: &str) -> hsmkit::Result<hsmkit::KeyDescription> {
        self.backend.describe(name)
    }
    fn list(&self) -> hsmkit::Result<Vec<hsmkit::KeyDescription>> {
        self.backend.list()
    }
    fn update_version(
        &self,
        name: &str,
        version: u32,
        edit: hsmkit::VersionEdit<'_>,
    ) -> hsmkit::Result<hsmkit::KeyInfo> {
        self.backend.update_version(name, version, edit)
    }
    fn update_state(&self, name: &str, edit: hsmkit::StateEdit<'_>) -> hsmkit::Result<hsmkit::KeyState> {
        self.backend.update_state(name, edit)
    }
    fn purge(&self, name: &str, check: hsmkit::StateEdit<'_>) -> hsmkit::Result<()> {
        self.backend.purge(name, check)
    }
    fn settings(&self) -> hsmkit::Result<hsmkit::StoreSettings> {
        self.backend.settings()
    }
    fn update_settings(&self, edit: hsmkit::SettingsEdit<'_>) -> hsmkit::Result<hsmkit::StoreSettings> {
        self.backend.update_settings(edit)
    }
}
