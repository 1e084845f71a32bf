//! Starting a whole mesh on this machine: `sluice run … -n N` without `-p` re-runs this binary
//! N times with `-p 0 … -p N-1` over loopback TCP and forwards their output.
//!
//! Children's stdout is read line by line and written whole to ours, so rows from different
//! processes never interleave inside a line; their stderr (logs, the report) passes straight
//! through. Process 0 gets our standard input (`--source file:-` is read there); the others get
//! none. If any process fails, the others are stopped and the first failure's exit code is
//! returned.
//!
//! Signals: the children run in a process group of their own, so a terminal's Ctrl-C reaches
//! only the launcher, which forwards every SIGINT and SIGTERM it gets to each child exactly once
//! — the first stops the mesh gracefully, a second ends it at once. When our stdout is closed
//! (`| head`), the children are asked to stop (SIGTERM) and their remaining output is discarded.
//! If the launcher itself is killed, the kernel sends each child SIGTERM ([`follow_launcher`]).
//!
//! **Supervision.** With `--checkpoint-dir`, the launcher supervises the mesh ([`Supervision`]):
//! when a process fails — exits with an error, is killed, or stops responding (its peers then
//! halt with exit 5 after `--stall-timeout`) — every process of that execution is killed and
//! waited for, and the whole mesh restarts from its last checkpoint with `--restore` and the
//! next execution number, with a growing pause, up to `--max-restarts` times.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
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
    /// Signal handling could not be set up.
    #[error("installing signal handlers")]
    Signals(#[source] std::io::Error),
}

/// The environment variable that tells a process of a local mesh its launcher's process id.
pub const LAUNCHER_ENV: &str = "SLUICE_LAUNCHER_PID";

/// In a process started by [`run_local_mesh`]: asks the kernel to send us SIGTERM when the
/// launcher dies (on Linux), so a mesh whose launcher was killed stops gracefully instead of
/// running on as orphans; returns `false` if the launcher is already gone.
pub fn follow_launcher() -> bool {
    let Some(launcher) = std::env::var(LAUNCHER_ENV)
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    else {
        return true;
    };
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM) {
        tracing::warn!("cannot follow the launcher (prctl): {e}");
    }
    // The launcher may have died before the request above: then we were re-parented.
    std::os::unix::process::parent_id() == launcher
}

/// The children's process ids, for forwarding signals.
#[derive(Clone, Default)]
struct Pids(Arc<Mutex<Vec<u32>>>);

impl Pids {
    fn signal(&self, signal: Signal) {
        let pids = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for pid in pids.iter() {
            // A child that already exited cannot be signalled: nothing to do.
            let _ = kill(Pid::from_raw(*pid as i32), signal);
        }
    }
}

/// How a local mesh that takes checkpoints is supervised.
#[derive(Clone, Debug)]
pub struct Supervision {
    /// The mesh's checkpoint directory (for naming the checkpoint a restart resumes from).
    pub checkpoint_dir: PathBuf,
    /// Restarts allowed before giving up.
    pub max_restarts: u32,
}

/// The longest pause between a failure and the restart.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Runs `args` (this binary's arguments, without `-p`) as processes `0..processes`; returns the
/// exit code to use: 0 if all succeeded, else the first failing process's code.
///
/// With `supervision`, a failed execution — a process that exits with an error or is killed,
/// or whose peers halt because it stopped responding — is not the end: every process of it is
/// killed and waited for (executions never overlap), and the mesh starts again with `--restore`
/// and the next `--execution` number, after a pause that doubles with each restart (0.5 s up to
/// 10 s), at most `max_restarts` times. A stop (SIGINT/SIGTERM, or our stdout closed) is never
/// answered with a restart.
pub fn run_local_mesh(
    args: &[OsString],
    processes: usize,
    supervision: Option<Supervision>,
) -> Result<i32, LocalMeshError> {
    let exe =
        std::env::current_exe().map_err(|source| LocalMeshError::Spawn { process: 0, source })?;
    let pids = Pids::default();
    let stopping = Arc::new(AtomicBool::new(false));
    forward_signals(pids.clone(), Arc::clone(&stopping))?;
    let stdout_closed = Arc::new(AtomicBool::new(false));
    let mut execution = execution_of(args);
    let mut restarts = 0;
    let mut args = args.to_vec();
    loop {
        let Some(failure) = run_execution(&exe, &args, processes, &pids, &stdout_closed)? else {
            return Ok(0);
        };
        let Some(supervision) = &supervision else {
            return Ok(failure.code);
        };
        if stopping.load(Ordering::SeqCst) || stdout_closed.load(Ordering::SeqCst) {
            return Ok(failure.code);
        }
        if restarts >= supervision.max_restarts {
            tracing::error!(
                "supervisor: process {} {}; giving up after {restarts} restart(s) (--max-restarts)",
                failure.process,
                failure.cause
            );
            return Ok(failure.code);
        }
        restarts += 1;
        execution += 1;
        let backoff = Duration::from_millis(500)
            .saturating_mul(1 << (restarts - 1).min(5))
            .min(MAX_BACKOFF);
        let from = crate::checkpoint::store::Store::open(&supervision.checkpoint_dir)
            .ok()
            .and_then(|s| s.manifests().first().copied())
            .map_or("the beginning (no checkpoint yet)".to_string(), |c| {
                format!("checkpoint {c}")
            });
        tracing::warn!(
            "supervisor: process {} {}; restarting the mesh as execution {execution} from {from} in {} ms (restart {restarts} of at most {})",
            failure.process,
            failure.cause,
            backoff.as_millis(),
            supervision.max_restarts
        );
        std::thread::sleep(backoff);
        if stopping.load(Ordering::SeqCst) {
            return Ok(failure.code);
        }
        args = restart_args(&args, execution);
    }
}

/// The execution number `args` name (`--execution N`), 1 if none.
fn execution_of(args: &[OsString]) -> u64 {
    let mut words = args.iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(word) = words.next() {
        if let Some(n) = word.strip_prefix("--execution=") {
            return n.parse().unwrap_or(1);
        }
        if word == "--execution" {
            return words.next().and_then(|n| n.parse().ok()).unwrap_or(1);
        }
    }
    1
}

/// `args` for execution `execution`: with `--restore`, and that execution number.
fn restart_args(args: &[OsString], execution: u64) -> Vec<OsString> {
    let mut out = Vec::with_capacity(args.len() + 3);
    let mut skip_value = false;
    for arg in args {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        let text = arg.to_string_lossy();
        if text == "--restore" || text.starts_with("--execution=") {
            continue;
        }
        if text == "--execution" {
            skip_value = true;
            continue;
        }
        out.push(arg.clone());
    }
    out.push("--restore".into());
    out.push("--execution".into());
    out.push(execution.to_string().into());
    out
}

/// The first process of an execution to fail, and how.
struct Failure {
    process: usize,
    code: i32,
    cause: String,
}

/// Runs one execution of the mesh to its end; returns its first failure, if any (the other
/// processes are then killed and waited for).
fn run_execution(
    exe: &Path,
    args: &[OsString],
    processes: usize,
    pids: &Pids,
    stdout_closed: &Arc<AtomicBool>,
) -> Result<Option<Failure>, LocalMeshError> {
    pids.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
    let mut children: Vec<Child> = Vec::new();
    let mut forwarders = Vec::new();
    for process in 0..processes {
        let spawned = Command::new(exe)
            .args(args)
            .arg("-p")
            .arg(process.to_string())
            .stdin(if process == 0 {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .env(LAUNCHER_ENV, std::process::id().to_string())
            .process_group(0)
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(source) => {
                stop(&mut children);
                return Err(LocalMeshError::Spawn { process, source });
            }
        };
        pids.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(child.id());
        if let Some(out) = child.stdout.take() {
            let closed = Arc::clone(stdout_closed);
            let pids = pids.clone();
            forwarders.push(std::thread::spawn(move || {
                forward_lines(out, || {
                    if !closed.swap(true, Ordering::SeqCst) {
                        tracing::info!("standard output closed: stopping the mesh");
                        pids.signal(Signal::SIGTERM);
                    }
                })
            }));
        }
        children.push(child);
    }

    let mut done = vec![false; processes];
    let mut failure = None;
    while done.iter().any(|d| !d) {
        for (i, child) in children.iter_mut().enumerate() {
            if done[i] {
                continue;
            }
            if let Some(status) = child.try_wait().map_err(LocalMeshError::Wait)? {
                done[i] = true;
                if !status.success() && failure.is_none() {
                    let (code, cause) = match (status.code(), status.signal()) {
                        (Some(code), _) => (code, format!("exited with code {code}")),
                        (None, Some(signal)) => {
                            let name = Signal::try_from(signal).map_or("a signal", Signal::as_str);
                            (128 + signal, format!("was killed by {name}"))
                        }
                        (None, None) => (1, "ended abnormally".to_string()),
                    };
                    failure = Some(Failure {
                        process: i,
                        code,
                        cause,
                    });
                }
            }
        }
        if failure.is_some() {
            // Peers of a lost process halt too (exit 5): name the cause, not a consequence.
            std::thread::sleep(Duration::from_millis(50));
            for (i, child) in children.iter_mut().enumerate() {
                if let Ok(Some(status)) = child.try_wait() {
                    if let Some(signal) = status.signal() {
                        let name = Signal::try_from(signal).map_or("a signal", Signal::as_str);
                        failure = Some(Failure {
                            process: i,
                            code: 128 + signal,
                            cause: format!("was killed by {name}"),
                        });
                        break;
                    }
                }
            }
            stop(&mut children);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for f in forwarders {
        let _ = f.join();
    }
    Ok(failure)
}

fn stop(children: &mut [Child]) {
    for child in children.iter_mut() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Forwards every SIGINT and SIGTERM this process receives to the children, from a thread, and
/// records that a stop was asked for.
fn forward_signals(pids: Pids, stopping: Arc<AtomicBool>) -> Result<(), LocalMeshError> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).map_err(LocalMeshError::Signals)?;
    std::thread::Builder::new()
        .name("sluice-mesh-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                stopping.store(true, Ordering::SeqCst);
                let signal = if signal == SIGINT {
                    Signal::SIGINT
                } else {
                    Signal::SIGTERM
                };
                pids.signal(signal);
            }
        })
        .map_err(LocalMeshError::Signals)?;
    Ok(())
}

/// Copies complete lines (many at a time) from a child's stdout to ours. If ours is closed by
/// its reader, calls `on_closed` and keeps reading the child's output (so it never blocks on a
/// full pipe), discarding it.
fn forward_lines(mut out: impl Read, on_closed: impl FnOnce()) {
    let mut on_closed = Some(on_closed);
    let mut buf = vec![0u8; 1 << 16];
    let mut filled = 0;
    let mut closed = false;
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
            if !closed {
                let _ = std::io::stdout().lock().write_all(&buf[..filled]);
            }
            return;
        }
        filled += n;
        if closed {
            filled = 0;
            continue;
        }
        if let Some(last) = memchr::memrchr(b'\n', &buf[..filled]) {
            if std::io::stdout().lock().write_all(&buf[..=last]).is_err() {
                closed = true;
                filled = 0;
                if let Some(f) = on_closed.take() {
                    f();
                }
                continue;
            }
            buf.copy_within(last + 1..filled, 0);
            filled -= last + 1;
        }
    }
}
