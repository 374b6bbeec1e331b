//! The conformance suite on the software backend's RustCrypto engine (soft_aws_lc.rs runs
//! it on AWS-LC, the default engine when the feature is on).

hsmkit_conformance::conformance_tests!(|| hsmkit::Store::new(
    hsmkit_soft::SoftBackend::new().with_engine(hsmkit_soft::SoftEngine::RustCrypto)
));
