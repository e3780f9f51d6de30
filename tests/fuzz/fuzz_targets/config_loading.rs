//! libFuzzer entry point of the `config_loading` target (body in `src/targets.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_fuzz::targets::config_loading(data));
