//! Starting a whole mesh on this machine: `sluice run … -n N` without `-p` re-runs this binary
//! N times with `-p 0 … -p N-1` over loopback TCP and forwards their output.
//!
//! Children's stdout is read line by line and written whole to ours, so rows from different
//! processes never interleave inside a line; their stderr (logs, the report) passes straight
//! through. If any process fails, the others are stopped and the first failure's exit code is
//! returned.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Why the local mesh could not run.
#[derive(Debug, thiserror::Error)]
pub enum LocalMeshError {
    /// A process could not be started.
    #[error("cannot start process {process} of the local mesh")]
    Spawn {
        /// Index.
        process: usize,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Waiting on a process failed.
    #[error("waiting for the local mesh")]
    Wait(#[source] std::io::Error),
}

/// Runs `args` (this binary's arguments, without `-p`) as processes `0..processes`; returns the
/// exit code to use: 0 if all succeeded, else the first failing process's code.
pub fn run_local_mesh(args: &[OsString], processes: usize) -> Result<i32, LocalMeshError> {
    let exe =
        std::env::current_exe().map_err(|source| LocalMeshError::Spawn { process: 0, source })?;
    let mut children: Vec<Child> = Vec::new();
    let mut forwarders = Vec::new();
    for process in 0..processes {
        let spawned = Command::new(&exe)
            .args(args)
            .arg("-p")
            .arg(process.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(source) => {
                stop(&mut children);
                return Err(LocalMeshError::Spawn { process, source });
            }
        };
        if let Some(out) = child.stdout.take() {
            forwarders.push(std::thread::spawn(move || forward_lines(out)));
        }
        children.push(child);
    }

    let mut codes: Vec<Option<i32>> = vec![None; processes];
    let mut failure = None;
    while codes.iter().any(Option::is_none) {
        for (i, child) in children.iter_mut().enumerate() {
            if codes[i].is_some() {
                continue;
            }
            if let Some(status) = child.try_wait().map_err(LocalMeshError::Wait)? {
                let code = status.code().unwrap_or(1);
                codes[i] = Some(code);
                if code != 0 && failure.is_none() {
                    tracing::error!("process {i} of the local mesh exited with code {code}; stopping the others");
                    failure = Some(code);
                }
            }
        }
        if failure.is_some() {
            stop(&mut children);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for f in forwarders {
        let _ = f.join();
    }
    Ok(failure.unwrap_or(0))
}

fn stop(children: &mut [Child]) {
    for child in children.iter_mut() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Copies complete lines (many at a time) from a child's stdout to ours.
fn forward_lines(mut out: impl Read) {
    let mut buf = vec![0u8; 1 << 16];
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let n = match out.read(&mut buf[filled..]) {
            Ok(0) | Err(_) => 0,
            Ok(n) => n,
        };
        if n == 0 {
            // End of the child's output: pass on a last unterminated line as it is.
            let _ = std::io::stdout().lock().write_all(&buf[..filled]);
            return;
        }
        filled += n;
        if let Some(last) = memchr::memrchr(b'\n', &buf[..filled]) {
            if std::io::stdout().lock().write_all(&buf[..=last]).is_err() {
                return;
            }
            buf.copy_within(last + 1..filled, 0);
            filled -= last + 1;
        }
    }
}
