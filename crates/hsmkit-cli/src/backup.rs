//! What `secret backup|restore` and `key backup|restore` share: the backup is an opaque
//! blob the core sealed under the store's backup key, written and read byte for byte.

use std::io::IsTerminal;
use std::path::Path;

use hsmkit::{Error, InvalidReason, Result};
use serde_json::json;
use zeroize::Zeroizing;

use crate::cli::Global;
use crate::io::{b64, print_json, read_all, write_all};

/// Writes a backup of `object` (`secret`, `key`) `name` to `out` (mode 0600, replaced
/// whole) or stdout. With `--json`: a document naming what was written, holding the blob
/// as base64url when there is no `--out`.
pub(crate) fn write_backup(
    g: &Global,
    object: &str,
    name: &str,
    out: Option<&Path>,
    blob: &[u8],
) -> Result<()> {
    if !g.json {
        return write_all(out, blob);
    }
    let mut doc = json!({"object": object, "name": name, "length": blob.len()});
    if let Some(obj) = doc.as_object_mut() {
        match out {
            Some(p) => {
                write_all(Some(p), blob)?;
                obj.insert("written".into(), json!(p));
            }
            None => {
                obj.insert("backup".into(), json!(b64(blob)));
            }
        }
    }
    print_json(&doc)
}

/// The backup to restore: the file, else stdin (which must not be a terminal: a backup
/// is binary).
pub(crate) fn read_backup(file: Option<&Path>) -> Result<Zeroizing<Vec<u8>>> {
    if file.is_none() && std::io::stdin().is_terminal() {
        return Err(Error::invalid(
            InvalidReason::Parameter,
            "give the backup with --file FILE, or on stdin (hsmkit ... restore < FILE)",
        ));
    }
    read_all(file)
}
