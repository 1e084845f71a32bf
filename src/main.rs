//! The `sluice` binary: Sluice's command line over every domain of this crate.

use std::process::ExitCode;

/// mimalloc: dataflows allocate and free many small strings per event, and glibc's allocator
/// spent ~40 % of q0's time on them. Set here, not in the library, so programs built on the
/// library choose their own.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    sluice::app::main(sluice::queries::catalog())
}
