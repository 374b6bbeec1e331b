//! The conformance suite on the software backend.

hsmkit_conformance::conformance_tests!(|| hsmkit::Store::new(hsmkit_soft::SoftBackend::new()));
