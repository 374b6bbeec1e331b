//! The conformance suite on the software backend with the aws-lc engine.

hsmkit_conformance::conformance_tests!(|| hsmkit::Store::new(
    hsmkit_soft::SoftBackend::new().with_engine(hsmkit_soft::SoftEngine::AwsLc)
));
