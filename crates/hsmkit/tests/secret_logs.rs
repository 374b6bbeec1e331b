//! Secret values never reach logs or error messages: every secret operation (and its
//! failures) runs under a subscriber that records every tracing event and span field at
//! every level, and a canary value is searched for in all of it, in hex and base64 too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use base64ct::{Base64, Encoding};
use hsmkit::metadata::RecordKind;
use hsmkit::secrets::SecretCache;
use hsmkit::{SecretAttributes, SecretUpdate, Store};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Everything logged, as text.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<String>>);

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut s = self.0.lock().unwrap();
        span.record(&mut Fields(&mut s));
        s.push('\n');
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, values: &Record<'_>) {
        let mut s = self.0.lock().unwrap();
        values.record(&mut Fields(&mut s));
        s.push('\n');
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut s = self.0.lock().unwrap();
        let _ = write!(s, "{} {}", event.metadata().level(), event.metadata().target());
        event.record(&mut Fields(&mut s));
        s.push('\n');
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

const CANARY: &[u8] = b"canary-secret-5e1f0d";

#[test]
fn secret_values_never_reach_logs_or_errors() {
    let capture = Capture::default();
    let mut errors = String::new();
    tracing::subscriber::with_default(capture.clone(), || {
        let store = Store::new(hsmkit_soft::SoftBackend::new());
        store.set_secret("s", CANARY, SecretAttributes::default()).unwrap();
        store.set_secret("s", CANARY, SecretAttributes::default()).unwrap();
        let got = store.get_secret("s").unwrap();
        let _ = writeln!(errors, "{got:?}");
        let mut note = |r: hsmkit::Result<()>| {
            if let Err(e) = r {
                let _ = writeln!(errors, "{e} / {e:?}");
            }
        };
        store.get_secret_version("s", 1).unwrap();
        store.list_secrets().unwrap();
        store.update_secret("s", 2, &SecretUpdate::enabled(false)).unwrap();
        note(store.get_secret("s").map(|_| ()));
        note(store.get_secret_version("s", 9).map(|_| ()));
        let over = [CANARY, &[b'x'; 26 * 1024]].concat();
        note(store.set_secret("s", &over, SecretAttributes::default()).map(|_| ()));
        let blob = store.backup_secret("s").unwrap();
        note(store.restore_secret(&blob).map(|_| ()));
        let mut bad = blob.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        note(store.restore_secret(&bad).map(|_| ()));
        store.delete_secret("s").unwrap();
        store.purge_deleted_secret("s").unwrap();
        store.restore_secret(&blob).unwrap();
        // A value moved onto another version: the decryption failure path.
        let meta = store.metadata_store();
        meta.modify_record(RecordKind::Secret, "s", &mut |doc| {
            let mut doc = doc.unwrap();
            let first = doc["versions"][0]["sealed"].clone();
            doc["versions"][1]["sealed"] = first;
            doc["versions"][1]["enabled"] = true.into();
            Ok(Some(doc))
        })
        .unwrap();
        note(store.get_secret("s").map(|_| ()));
        note(store.backup_secret("s").map(|_| ()));
        store.set_secret("c", CANARY, SecretAttributes::default()).unwrap();
        let cache = SecretCache::new(store.clone());
        let shown = format!("{:?} {cache:?}", cache.get("c").unwrap());
        note(Err(hsmkit::Error::backend("test", "debug", shown)));
    });
    let logged = capture.0.lock().unwrap().clone();
    assert!(
        logged.contains("hsmkit::audit") && logged.contains("op=\"get\""),
        "nothing was captured:\n{logged}"
    );
    assert!(errors.contains("permission denied on secret 's'"), "{errors}");
    let text = String::from_utf8_lossy(CANARY).into_owned();
    let forms = [text.clone(), hex::encode(CANARY), Base64::encode_string(CANARY), format!("{:?}", CANARY)];
    for form in &forms {
        assert!(!logged.contains(form.as_str()), "a secret value in the logs ({form}):\n{logged}");
        assert!(!errors.contains(form.as_str()), "a secret value in an error or Debug ({form}):\n{errors}");
    }
}
