//! Sharp edges: interfaces between hsmkit and its engines that are easy to misuse when
//! called directly (raw AES-GCM leaves nonce uniqueness to the caller). Applications use
//! [`Store`](crate::Store), [`Key`](crate::Key) and [`envelope`](crate::envelope)
//! instead; engines and conformance tests use this.

pub mod aead;
