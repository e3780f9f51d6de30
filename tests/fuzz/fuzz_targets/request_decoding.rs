//! libFuzzer entry point of the `request_decoding` target (body in `src/targets.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_fuzz::targets::request_decoding(data));
