//! Launching a worker mesh: `-w` threads per process, `-n` processes, `-p` this process's index,
//! and `--hostfile` for their addresses — built into timely's communication layer directly, never
//! by handing the command line to timely's own argument parser.
//!
//! For several processes Sluice makes the TCP connections itself (timely's handshake: connect to
//! every lower-indexed process and send our index; accept the higher-indexed ones) so that a port
//! in use is a clear error at once, an unreachable peer is a clear error after
//! `--connect-timeout`, and nothing is printed on stdout, which belongs to results. Without a
//! hostfile every process binds loopback (`127.0.0.1`, ports from `--port`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::{Duration, Instant};
use timely::communication::allocator::zero_copy::initialize::initialize_networking_from_sockets;
use timely::communication::allocator::{AllocatorBuilder, ProcessBuilder};
use timely::communication::Hooks;
use timely::worker::Worker;
use timely::{CommunicationConfig, WorkerConfig};

/// The first port of a loopback mesh when `--port` is not given.
pub const DEFAULT_PORT: u16 = 2101;

/// Why a mesh could not be formed.
#[derive(Debug, thiserror::Error)]
pub enum MeshError {
    /// Flags that describe no valid mesh.
    #[error("{0}")]
    Invalid(String),
    /// The hostfile could not be read.
    #[error("cannot read hostfile {path}")]
    Hostfile {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Our own address could not be bound.
    #[error("cannot listen on {address} (process {process}){hint}")]
    Bind {
        /// Address.
        address: String,
        /// Our index.
        process: usize,
        /// The cause.
        #[source]
        source: std::io::Error,
        /// A hint for the common case.
        hint: &'static str,
    },
    /// A peer did not answer in time.
    #[error("process {peer} at {address} did not connect within {seconds} s: {detail}")]
    Unreachable {
        /// Peer index.
        peer: usize,
        /// Peer address.
        address: String,
        /// The timeout.
        seconds: u64,
        /// The last error seen.
        detail: String,
    },
    /// Any other failure of the communication layer.
    #[error("communication setup failed: {0}")]
    Setup(String),
}

/// A worker mesh description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mesh {
    /// Worker threads per process.
    pub workers: usize,
    /// This process's index.
    pub process: usize,
    /// `host:port` of every process, by index.
    pub addresses: Vec<String>,
    /// How long to wait for peers.
    pub connect_timeout: Duration,
    /// How long an idle worker polls before it parks (timely's `idle_spin`).
    pub idle_spin: Duration,
}

/// Timely's default `idle_spin`.
pub const DEFAULT_IDLE_SPIN: Duration =
    Duration::from_micros(WorkerConfig::DEFAULT_IDLE_SPIN_MICROS);

impl Mesh {
    /// Whether every process of the mesh runs on one host (a loopback mesh, or a hostfile
    /// that names one host throughout): then each needs ports of its own.
    pub fn on_one_host(&self) -> bool {
        let host = |a: &String| a.rsplit_once(':').map_or(a.clone(), |(h, _)| h.to_string());
        self.addresses
            .windows(2)
            .all(|w| host(&w[0]) == host(&w[1]))
    }

    /// A single-process mesh of `workers` threads.
    pub fn local(workers: usize) -> Self {
        Mesh {
            workers,
            process: 0,
            addresses: vec![String::new()],
            connect_timeout: Duration::from_secs(30),
            idle_spin: DEFAULT_IDLE_SPIN,
        }
    }

    /// A mesh from the command-line flags.
    pub fn from_flags(
        workers: usize,
        processes: usize,
        process: usize,
        hostfile: Option<&Path>,
        port: u16,
        connect_timeout: Duration,
    ) -> Result<Self, MeshError> {
        if workers == 0 {
            return Err(MeshError::Invalid("-w/--workers must be at least 1".into()));
        }
        if processes == 0 {
            return Err(MeshError::Invalid(
                "-n/--processes must be at least 1".into(),
            ));
        }
        if process >= processes {
            return Err(MeshError::Invalid(format!(
                "-p/--process {process} is out of range for -n {processes} (0..{})",
                processes - 1
            )));
        }
        let addresses = match hostfile {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| MeshError::Hostfile {
                    path: path.display().to_string(),
                    source,
                })?;
                let hosts: Vec<String> = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(String::from)
                    .collect();
                if hosts.len() < processes {
                    return Err(MeshError::Invalid(format!(
                        "hostfile {} lists {} address(es) but -n is {processes}",
                        path.display(),
                        hosts.len()
                    )));
                }
                hosts.into_iter().take(processes).collect()
            }
            None => (0..processes)
                .map(|i| {
                    let p = usize::from(port) + i;
                    u16::try_from(p)
                        .map(|p| format!("127.0.0.1:{p}"))
                        .map_err(|_| {
                            MeshError::Invalid(format!("--port {port} + {i} exceeds 65535"))
                        })
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(Mesh {
            workers,
            process,
            addresses,
            connect_timeout,
            idle_spin: DEFAULT_IDLE_SPIN,
        })
    }

    /// Worker threads of each process.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// This process's index in the mesh.
    pub fn process(&self) -> usize {
        self.process
    }

    /// Every process's `host:port`, by index.
    pub fn addresses(&self) -> &[String] {
        &self.addresses
    }

    /// Processes in the mesh.
    pub fn processes(&self) -> usize {
        self.addresses.len()
    }

    /// Workers in the whole mesh.
    pub fn peers(&self) -> usize {
        self.workers * self.processes()
    }

    /// Runs `func` on every worker of this process and returns their results, in worker order.
    /// A worker that panicked is reported as `Err` with the panic message.
    pub fn execute<T, F>(&self, func: F) -> Result<Vec<Result<T, String>>, MeshError>
    where
        T: Send + 'static,
        F: Fn(&mut Worker) -> T + Send + Sync + 'static,
    {
        let (builders, guard): (Vec<AllocatorBuilder>, Box<dyn std::any::Any + Send>) =
            if self.processes() == 1 {
                let config = if self.workers == 1 {
                    CommunicationConfig::Thread
                } else {
                    CommunicationConfig::Process(self.workers)
                };
                config.try_build().map_err(MeshError::Setup)?
            } else {
                let sockets = connect(self)?;
                halt_on_communication_errors(self.addresses.clone());
                let hooks = Hooks::default();
                let local = ProcessBuilder::new_typed_vector(
                    self.workers,
                    hooks.refill.clone(),
                    hooks.spill.clone(),
                );
                let (builders, guard) = initialize_networking_from_sockets(
                    local,
                    sockets,
                    self.process,
                    self.workers,
                    hooks,
                )
                .map_err(|e| MeshError::Setup(e.to_string()))?;
                (
                    builders.into_iter().map(AllocatorBuilder::Tcp).collect(),
                    Box::new(guard),
                )
            };
        let config = WorkerConfig::default().idle_spin(self.idle_spin);
        let guards = timely::execute::execute_from(builders, guard, config, func)
            .map_err(MeshError::Setup)?;
        Ok(guards.join())
    }
}

fn resolve(address: &str) -> Result<SocketAddr, MeshError> {
    address
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            MeshError::Invalid(format!(
                "cannot resolve mesh address {address:?} (expected host:port)"
            ))
        })
}

/// Forms the TCP connections of this process: `result[i]` is the stream to process `i`.
fn connect(mesh: &Mesh) -> Result<Vec<Option<TcpStream>>, MeshError> {
    let me = mesh.process;
    let deadline = Instant::now() + mesh.connect_timeout;
    let own = resolve(&mesh.addresses[me])?;
    let listener = TcpListener::bind(own).map_err(|source| MeshError::Bind {
        address: mesh.addresses[me].clone(),
        process: me,
        hint: if source.kind() == std::io::ErrorKind::AddrInUse {
            " (port in use: pick another with --port, or stop the process holding it)"
        } else {
            ""
        },
        source,
    })?;
    let mut sockets: Vec<Option<TcpStream>> = (0..mesh.processes()).map(|_| None).collect();

    for (peer, address) in mesh.addresses.iter().enumerate().take(me) {
        let target = resolve(address)?;
        let stream = loop {
            let error = match TcpStream::connect_timeout(&target, Duration::from_millis(500)) {
                Ok(s) => break s,
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                return Err(MeshError::Unreachable {
                    peer,
                    address: address.clone(),
                    seconds: mesh.connect_timeout.as_secs(),
                    detail: error.to_string(),
                });
            }
            tracing::debug!(
                "process {me}: connecting to process {peer} at {address}: {error}; retrying"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut stream = stream;
        stream
            .set_nodelay(true)
            .and_then(|_| stream.write_all(&(me as u64).to_be_bytes()))
            .map_err(|e| MeshError::Setup(format!("handshake with process {peer}: {e}")))?;
        sockets[peer] = Some(stream);
    }

    listener
        .set_nonblocking(true)
        .map_err(|e| MeshError::Setup(e.to_string()))?;
    while sockets.iter().skip(me + 1).any(Option::is_none) {
        match listener.accept() {
            Ok((mut stream, _)) => {
                stream
                    .set_nonblocking(false)
                    .and_then(|_| stream.set_nodelay(true))
                    .and_then(|_| stream.set_read_timeout(Some(Duration::from_secs(5))))
                    .map_err(|e| MeshError::Setup(e.to_string()))?;
                let mut index = [0u8; 8];
                if let Err(e) = stream.read_exact(&mut index) {
                    tracing::warn!("ignoring a connection that sent no process index: {e}");
                    continue;
                }
                let peer = u64::from_be_bytes(index) as usize;
                if peer <= me || peer >= mesh.processes() || sockets[peer].is_some() {
                    tracing::warn!("ignoring a connection claiming to be process {peer}");
                    continue;
                }
                stream
                    .set_read_timeout(None)
                    .map_err(|e| MeshError::Setup(e.to_string()))?;
                sockets[peer] = Some(stream);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    let peer = (me + 1..mesh.processes())
                        .find(|p| sockets[*p].is_none())
                        .unwrap_or(me + 1);
                    return Err(MeshError::Unreachable {
                        peer,
                        address: mesh.addresses[peer].clone(),
                        seconds: mesh.connect_timeout.as_secs(),
                        detail: "it never connected to us".into(),
                    });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(MeshError::Setup(format!("accepting peers: {e}"))),
        }
    }
    for stream in sockets.iter().flatten() {
        detect_dead_peers(stream).map_err(|e| MeshError::Setup(format!("socket options: {e}")))?;
    }
    tracing::debug!(
        "process {me}: mesh of {} processes connected",
        mesh.processes()
    );
    Ok(sockets)
}

/// Makes the kernel notice a peer whose host died or became unreachable within seconds (TCP
/// keepalive probes, and a bound on unacknowledged data), so that timely's threads see an error
/// instead of waiting forever. A stopped process is still a live socket: the heartbeat
/// watchdog of a run notices those.
fn detect_dead_peers(stream: &TcpStream) -> std::io::Result<()> {
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(5))
        .with_interval(Duration::from_secs(2))
        .with_retries(3);
    let socket = socket2::SockRef::from(stream);
    socket.set_tcp_keepalive(&keepalive)?;
    #[cfg(target_os = "linux")]
    socket.set_tcp_user_timeout(Some(Duration::from_secs(15)))?;
    Ok(())
}

/// The exit code of a process that halted because it lost a peer (the command line's table
/// lists it as `exit::PEER_LOST`).
pub const PEER_LOST_EXIT: u8 = 5;

/// Ends this process at once after losing process `process` of the mesh: one line on stderr
/// and exit code [`PEER_LOST_EXIT`]. Unwinding would only cascade panics through
/// timely's threads and could block on sockets to the lost peer; everything a run commits is
/// covered by its checkpoints, so halting loses nothing a restore does not redo.
pub fn halt_peer_lost(process: usize, address: &str, why: &str) -> ! {
    // The send and receive threads of a connection notice together: one line, one exit.
    static HALTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if HALTING.swap(true, std::sync::atomic::Ordering::SeqCst) {
        loop {
            std::thread::park();
        }
    }
    let _ = writeln!(
        std::io::stderr(),
        "sluice: error: process {process} ({address}) lost: {why}"
    );
    std::process::exit(i32::from(PEER_LOST_EXIT))
}

/// Installs a panic hook that turns timely's communication failures (a peer's connection
/// closed or broken) into [`halt_peer_lost`], and quiets the panics they cascade into.
fn halt_on_communication_errors(addresses: Vec<String>) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("");
        if let Some(cause) = message.strip_prefix("timely communication error: ") {
            let peer = name
                .strip_prefix("timely:recv-")
                .or_else(|| name.strip_prefix("timely:send-"))
                .and_then(|i| i.parse::<usize>().ok());
            if let Some(peer) = peer {
                let address = addresses.get(peer).map_or("?", String::as_str);
                halt_peer_lost(peer, address, &plain_cause(cause));
            }
        }
        if message.contains("MergeQueue poisoned") {
            // The communication thread that failed is halting the process: wait for it.
            std::thread::sleep(Duration::from_secs(5));
        }
        previous(info);
    }));
}

/// `reading data: Connection reset by peer (os error 104)` → `connection reset`.
fn plain_cause(cause: &str) -> String {
    let lower = cause.to_lowercase();
    if lower.contains("reset") {
        "connection reset".into()
    } else if lower.contains("broken pipe") || lower.contains("closed") || lower.contains("eof") {
        "connection closed".into()
    } else if lower.contains("timed out") {
        "connection timed out".into()
    } else {
        cause.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_build_loopback_addresses() {
        let m = Mesh::from_flags(2, 3, 1, None, 4000, Duration::from_secs(1)).unwrap();
        assert_eq!(
            m.addresses,
            vec!["127.0.0.1:4000", "127.0.0.1:4001", "127.0.0.1:4002"]
        );
        assert_eq!(m.peers(), 6);
        assert!(Mesh::from_flags(1, 2, 2, None, 4000, Duration::from_secs(1)).is_err());
        assert!(Mesh::from_flags(0, 1, 0, None, 4000, Duration::from_secs(1)).is_err());
        assert!(Mesh::from_flags(1, 2, 0, None, 65535, Duration::from_secs(1)).is_err());
    }

    #[test]
    fn port_in_use_is_a_clear_error() {
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let m = Mesh::from_flags(1, 2, 0, None, port, Duration::from_secs(1)).unwrap();
        let err = m.execute(|_w| ()).unwrap_err().to_string();
        assert!(err.contains("port in use"), "{err}");
    }

    #[test]
    fn missing_peer_times_out() {
        let free = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        // Process 1 of 2 whose process 0 never starts.
        let m = Mesh::from_flags(
            1,
            2,
            1,
            None,
            port.saturating_sub(1),
            Duration::from_millis(300),
        )
        .unwrap();
        let err = m.execute(|_w| ()).unwrap_err().to_string();
        assert!(err.contains("did not connect"), "{err}");
    }
}
