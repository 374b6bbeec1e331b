//! Benchmarks only: see `benches/` and BENCHMARKS.md.
#![forbid(unsafe_code)]
