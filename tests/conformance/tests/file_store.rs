//! The conformance suite on the software backend over the encrypted on-disk keystore.

hsmkit_conformance::conformance_tests!(hsmkit_conformance::temp_file_store);
