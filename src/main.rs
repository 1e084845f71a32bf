//! The `sluice` binary: Sluice's command line over every domain of this crate.

use std::process::ExitCode;

/// mimalloc: dataflows allocate and free many small strings per event, and glibc's allocator
/// spent ~40 % of q0's time on them. Set here, not in the library, so programs built on the
/// library choose their own.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    without_transparent_huge_pages();
    sluice::app::main(sluice::queries::catalog())
}

/// Transparent huge pages off for this process, unless `MIMALLOC_ALLOW_THP` is set (then
/// mimalloc's own setting rules). mimalloc asks for huge pages for its arenas, and the kernel
/// zeroes 2 MiB at a first touch: as a dataflow's state grows, workers stalled for tens of
/// milliseconds at a time (q5 at 500 K events/s: p99 26–33 ms with huge pages, 7–9 ms without),
/// while throughput measured the same. Latency-sensitive servers (Redis, MongoDB) advise the same.
fn without_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // Best effort: an old kernel without the setting keeps its default.
        let _ = nix::sys::prctl::set_thp_disable(true);
    }
}
