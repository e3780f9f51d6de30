//! libFuzzer entry point of the `segment_recovery` target (body in `src/targets.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_fuzz::targets::segment_recovery(data));
