//! The header parser: never panics, and whatever it accepts it re-encodes to the same bytes
//! (the tag is computed over the re-encoding, so a parser/encoder mismatch would matter).
#![no_main]

use hsmkit::envelope::EnvelopeHeader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = EnvelopeHeader::parse(data) {
        let n = h.encoded_len();
        assert!(n <= data.len());
        let again = EnvelopeHeader::parse(&data[..n]).expect("a parsed header parses again");
        assert_eq!(again, h);
    }
});
