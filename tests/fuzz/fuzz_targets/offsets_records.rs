//! libFuzzer entry point of the `offsets_records` target (body in `src/targets.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_fuzz::targets::offsets_records(data));
