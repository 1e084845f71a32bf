//! Monitoring a running process over HTTP (`--metrics-addr`): Prometheus's `/metrics`, the
//! dashboard at `/` (with its JSON at `/api/snapshot` and `/api/graph`), and the probes
//! `/healthz` (the process answers) and `/readyz` (its dataflow runs) — one thread, one port.
//!
//! The endpoint reads the process's [`LiveMetrics`] and never writes to the run: a slow or
//! stuck scraper costs the workers nothing. Served by `tiny_http` (synchronous; the engine has
//! no async runtime, and one thread is enough for a few scrapers and browsers).

pub mod dashboard;
pub mod graph;
pub mod prometheus;

use crate::metrics::live::LiveMetrics;
use dashboard::History;
use graph::Graph;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tiny_http::{Header, Method, Request, Response, Server};

/// How often the dashboard's history takes a point.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// The endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// The address could not be bound.
    #[error("--metrics-addr {addr}: cannot listen there: {why}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// Why.
        why: String,
    },
}

/// The running endpoint; stops when dropped or [`Monitor::stop`]ped.
pub struct Monitor {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Monitor {
    /// Listens on `addr` (`HOST:PORT`; port 0 picks a free one) and serves `live` and `graph`.
    pub fn start(addr: &str, live: Arc<LiveMetrics>, graph: Graph) -> Result<Self, MonitorError> {
        let bind = |why: String| MonitorError::Bind {
            addr: addr.to_string(),
            why,
        };
        let server = Server::http(addr).map_err(|e| bind(e.to_string()))?;
        let bound = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| bind("not an IP address".into()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("sluice-metrics".into())
            .spawn(move || serve(&server, &live, &graph, &stopping))
            .map_err(|e| bind(e.to_string()))?;
        tracing::info!("metrics on http://{bound}/metrics, dashboard on http://{bound}/");
        Ok(Monitor {
            addr: bound,
            stop,
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.halt();
    }
}

fn serve(server: &Server, live: &Arc<LiveMetrics>, graph: &Graph, stop: &AtomicBool) {
    let registry = prometheus::registry(Arc::clone(live));
    let graph_json = serde_json::to_string(graph).unwrap_or_else(|_| "{}".into());
    let mut history = History::default();
    let mut next_sample = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= next_sample {
            history.sample(live, now);
            next_sample = now + SAMPLE_EVERY;
        }
        let wait = next_sample
            .saturating_duration_since(now)
            .min(Duration::from_millis(200));
        let request = match server.recv_timeout(wait) {
            Ok(Some(request)) => request,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!("metrics endpoint: {e}");
                continue;
            }
        };
        let answer = route(&request, live, &registry, &history, &graph_json);
        // A client that went away is not an error of the run.
        let _ = request.respond(answer);
    }
}

fn header(name: &str, value: &str) -> Header {
    // Names and values are ASCII constants.
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("valid header")
}

fn text(
    status: u16,
    content_type: &str,
    body: impl Into<String>,
) -> Response<std::io::Cursor<Vec<u8>>> {
    Response::from_string(body.into())
        .with_status_code(status)
        .with_header(header("Content-Type", content_type))
        .with_header(header("Cache-Control", "no-store"))
}

fn route(
    request: &Request,
    live: &LiveMetrics,
    registry: &prometheus_client::registry::Registry,
    history: &History,
    graph_json: &str,
) -> Response<std::io::Cursor<Vec<u8>>> {
    if !matches!(request.method(), Method::Get | Method::Head) {
        return text(405, "text/plain; charset=utf-8", "only GET\n");
    }
    let path = request.url().split('?').next().unwrap_or("/");
    const JSON: &str = "application/json";
    match path {
        "/metrics" => text(200, prometheus::CONTENT_TYPE, prometheus::encode(registry)),
        "/healthz" => text(200, "text/plain; charset=utf-8", "ok\n"),
        "/readyz" if live.is_running() => text(200, "text/plain; charset=utf-8", "ready\n"),
        "/readyz" if live.is_done() => text(503, "text/plain; charset=utf-8", "finished\n"),
        "/readyz" => text(503, "text/plain; charset=utf-8", "starting\n"),
        "/api/snapshot" => {
            let body = serde_json::to_string(&history.snapshot(live)).unwrap_or_default();
            text(200, JSON, body)
        }
        "/api/graph" => text(200, JSON, graph_json),
        "/" | "/index.html" => text(200, "text/html; charset=utf-8", dashboard::INDEX_HTML),
        "/dashboard.js" => text(
            200,
            "text/javascript; charset=utf-8",
            dashboard::DASHBOARD_JS,
        ),
        "/dashboard.css" => text(200, "text/css; charset=utf-8", dashboard::DASHBOARD_CSS),
        _ => text(404, "text/plain; charset=utf-8", "not found\n"),
    }
}

/// The address process `process` of a mesh listens on for `--metrics-addr ADDR`: `ADDR`'s port
/// plus the process index when the whole mesh shares one machine (`same_host`), else `ADDR`.
pub fn process_addr(addr: &str, process: usize, same_host: bool) -> Result<String, String> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| format!("{addr:?} is not HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{addr:?}: {port:?} is not a port number"))?;
    if !same_host || process == 0 || port == 0 {
        return Ok(format!("{host}:{port}"));
    }
    let port = u16::try_from(usize::from(port) + process)
        .map_err(|_| format!("{addr:?}: port {port} + process {process} is beyond 65535"))?;
    Ok(format!("{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_on_one_machine_take_consecutive_ports() {
        assert_eq!(
            process_addr("127.0.0.1:9464", 0, true).unwrap(),
            "127.0.0.1:9464"
        );
        assert_eq!(
            process_addr("127.0.0.1:9464", 2, true).unwrap(),
            "127.0.0.1:9466"
        );
        assert_eq!(
            process_addr("0.0.0.0:9464", 2, false).unwrap(),
            "0.0.0.0:9464"
        );
        assert_eq!(process_addr("[::1]:9464", 1, true).unwrap(), "[::1]:9465");
        assert!(process_addr("localhost", 0, true).is_err());
        assert!(process_addr("127.0.0.1:65535", 1, true).is_err());
    }
}
