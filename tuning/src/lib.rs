//! Host checks and tuning for running Sluice (`sluice tune` grows here in a later issue).
//!
//! For now: sizing glommio's io_uring memory from the locked-memory limit, so that the broker
//! starts as an unprivileged user under a small `RLIMIT_MEMLOCK` — or says exactly what to raise.

pub mod memlock;
