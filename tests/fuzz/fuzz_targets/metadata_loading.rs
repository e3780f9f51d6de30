//! libFuzzer entry point of the `metadata_loading` target (body in `src/targets.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_fuzz::targets::metadata_loading(data));
