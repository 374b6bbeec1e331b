//! Byte buffers that are wiped before their memory is freed, at the cost of a `memset`.
//!
//! `zeroize` wipes a `Vec<u8>` with one volatile store per byte, which the compiler may
//! not vectorise: on a 1 MiB plaintext that costs more than decrypting it with AES-NI. A
//! [`SecretVec`] instead zeroes its whole allocation (length and spare capacity) with
//! `fill`, then hands the pointer to [`std::hint::black_box`] and places a compiler
//! fence. `black_box` is documented as best effort, not a guarantee: it keeps today's
//! compilers from dropping the stores as dead, and the allocator-scanning tests
//! (`crates/hsmkit-ffi/tests/secret_wipe.rs`) check the result. It never reallocates
//! behind the caller's back: growth moves the bytes to a new allocation and wipes the old
//! one first.

use std::fmt;
use std::mem::MaybeUninit;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{Ordering, compiler_fence};

/// Bytes that are wiped (length and spare capacity) when dropped: the plaintext an
/// envelope opens to, and the buffers the envelope streams through. Derefs to `[u8]`;
/// [`into_unwiped_vec`](Self::into_unwiped_vec) hands the bytes over, as the caller's
/// own. No `PartialEq`: compare secrets in constant time, if at all.
#[derive(Default)]
pub struct SecretVec(Vec<u8>);

impl SecretVec {
    /// An empty buffer (no allocation).
    pub fn new() -> Self {
        SecretVec(Vec::new())
    }

    /// An empty buffer with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        SecretVec(Vec::with_capacity(capacity))
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no bytes are held.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Bytes the buffer can hold without moving.
    pub fn capacity(&self) -> usize {
        self.0.capacity()
    }

    /// Takes the bytes out, unwiped: from here on they (and any spare capacity a
    /// [`truncate`](Self::truncate) left) are the caller's to wipe or not.
    pub fn into_unwiped_vec(mut self) -> Vec<u8> {
        std::mem::take(&mut self.0)
    }

    /// Appends `data`, moving to a larger allocation (the old one wiped) if needed.
    pub fn extend_from_slice(&mut self, data: &[u8]) {
        self.reserve(data.len());
        self.0.extend_from_slice(data);
    }

    /// Grows or shrinks to `len` bytes; new bytes are zero.
    pub fn resize(&mut self, len: usize) {
        self.reserve(len.saturating_sub(self.0.len()));
        self.0.resize(len, 0);
    }

    /// Drops the bytes from `len` on; the memory keeps them until it is reused or wiped.
    pub fn truncate(&mut self, len: usize) {
        self.0.truncate(len);
    }

    /// Room for `additional` more bytes. Unlike `Vec::reserve` it never leaves an unwiped
    /// copy behind: the old allocation is wiped before it is freed.
    pub fn reserve(&mut self, additional: usize) {
        if self.0.capacity().saturating_sub(self.0.len()) >= additional {
            return;
        }
        let want = self.0.len().saturating_add(additional).max(self.0.capacity().saturating_mul(2));
        let mut bigger = Vec::with_capacity(want);
        bigger.extend_from_slice(&self.0);
        let mut old = std::mem::replace(&mut self.0, bigger);
        wipe(&mut old);
    }

    pub(crate) fn copy_within(&mut self, src: std::ops::Range<usize>, dest: usize) {
        self.0.copy_within(src, dest);
    }
}

/// Zeroes `v`'s whole allocation, its spare capacity too (bytes a `truncate` left).
pub(crate) fn wipe(v: &mut Vec<u8>) {
    v.fill(0);
    v.spare_capacity_mut().fill(MaybeUninit::new(0));
    // The zeroes must reach memory although nothing reads them before the free:
    // black_box makes the buffer observable, the fence keeps the stores before the free.
    std::hint::black_box(v.as_mut_ptr());
    compiler_fence(Ordering::SeqCst);
}

/// Zeroes `buf` (a caller's buffer that must not keep plaintext after a failure).
pub(crate) fn wipe_slice(buf: &mut [u8]) {
    buf.fill(0);
    std::hint::black_box(buf.as_mut_ptr());
    compiler_fence(Ordering::SeqCst);
}

impl Drop for SecretVec {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

impl Clone for SecretVec {
    fn clone(&self) -> Self {
        let mut c = SecretVec::with_capacity(self.len());
        c.extend_from_slice(self);
        c
    }
}

impl From<Vec<u8>> for SecretVec {
    fn from(v: Vec<u8>) -> Self {
        SecretVec(v)
    }
}

impl From<&[u8]> for SecretVec {
    fn from(v: &[u8]) -> Self {
        SecretVec(v.to_vec())
    }
}

impl Deref for SecretVec {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl DerefMut for SecretVec {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl AsRef<[u8]> for SecretVec {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl AsMut<[u8]> for SecretVec {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl fmt::Debug for SecretVec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretVec({} bytes, redacted)", self.0.len())
    }
}

impl std::io::Write for SecretVec {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn wipe_zeroes_the_bytes() {
        let mut v = vec![0xa5; 48];
        wipe(&mut v);
        assert_eq!(v, [0; 48]);
    }

    #[test]
    fn growth_keeps_the_bytes_and_debug_redacts() {
        let mut s = SecretVec::with_capacity(2);
        s.extend_from_slice(b"attack");
        s.extend_from_slice(b" at dawn");
        s.extend_from_slice(b"!");
        assert_eq!(&s[..], b"attack at dawn!");
        assert!(!format!("{s:?}").contains("attack"));
        assert_eq!(s.clone().into_unwiped_vec(), b"attack at dawn!");
        s.resize(3);
        assert_eq!(&s[..], b"att");
    }
}
