//! libFuzzer entry point of the `batch_validation` target (body in `src/targets.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_fuzz::targets::batch_validation(data));
