//! libFuzzer entry point of the `index_loading` target (body in `src/targets.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_fuzz::targets::index_loading(data));
