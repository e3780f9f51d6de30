//! Sluice's fuzz targets as plain functions, shared by the libFuzzer binaries
//! (`fuzz_targets/`) and the corpus replay in the normal suite (`tests/fuzz_replay.rs`).

pub mod targets;
