//! Operating Sluice, end to end through the `sluice` binary: a running `q5 --unbounded --paced`
//! is scraped by a real Prometheus server that then answers PromQL, and its dashboard is loaded
//! in a real headless browser (Chromium) that shows the query's numbers and updates them; the
//! health probes; the configuration file, variables and `--print-config`; JSON logs; shell
//! completions and manual pages.
//!
//! Prometheus and Chromium are Debian packages that `scripts/monitoring-tools.sh install`
//! (run by scripts/test.sh) installs; the tests start them on 127.0.0.1 and stop them.

mod common;

use common::free_port_pair;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");

/// A command's stdout, stderr and exit code.
fn sluice(args: &[&str], vars: &[(&str, &str)], dir: &Path) -> Output {
    let mut cmd = Command::new(SLUICE);
    cmd.args(args).current_dir(dir);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().expect("sluice runs")
}

/// The words of a command line.
fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The effective configuration `sluice run ARGS --print-config` prints.
fn printed_config(args: &[&str], vars: &[(&str, &str)], dir: &Path) -> String {
    let args = [&["run"][..], args, &["--print-config"]].concat();
    let out = sluice(&args, vars, dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

/// Asserts that `text` has each of `lines`.
fn assert_lines(text: &str, lines: &[&str]) {
    for line in lines {
        assert!(text.contains(line), "no {line:?} in:\n{text}");
    }
}

/// GET `url`: the status and the body (any status, no error for 503).
fn get(url: &str) -> Option<(u16, String)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let mut response = agent.get(url).call().ok()?;
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().ok()?;
    Some((status, body))
}

/// Waits up to `limit` for `check` to give a value.
fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "gave up after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A child process killed when dropped (a failed assertion leaves nothing running).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `sluice run q5 --unbounded --paced` with its metrics endpoint on a free loopback port.
struct Pipeline {
    child: Running,
    base: String,
}

impl Pipeline {
    fn start(extra: &[&str]) -> Pipeline {
        let port = free_port_pair().to_string();
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new(SLUICE)
            .args(["run", "q5", "--unbounded", "--paced", "--rate", "20000"])
            .args(["-w", "2", "--sink", "null", "--progress", "off"])
            .args(["--metrics-addr", &addr])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sluice starts");
        let pipeline = Pipeline {
            child: Running(child),
            base: format!("http://{addr}"),
        };
        let ready = format!("{}/readyz", pipeline.base);
        wait_for("/readyz to answer 200", Duration::from_secs(30), || {
            get(&ready).filter(|(status, _)| *status == 200)
        });
        pipeline
    }

    /// Stops the pipeline with SIGTERM: it ends its input and exits 0; its stderr.
    fn stop(mut self) -> String {
        let pid = nix::unistd::Pid::from_raw(self.child.0.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.0.try_wait().unwrap() {
                break status;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut err = String::new();
        use std::io::Read;
        self.child
            .0
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert!(status.success(), "{status}: {err}");
        err
    }
}

/// The executable of `name` (`prometheus`, `chromium`): `SLUICE_<NAME>` or as installed by
/// scripts/monitoring-tools.sh.
fn tool(name: &str) -> PathBuf {
    let var = format!("SLUICE_{}", name.to_uppercase());
    if let Some(path) = std::env::var_os(&var) {
        return PathBuf::from(path);
    }
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!("{name} is not installed: run `bash scripts/monitoring-tools.sh install` (or set {var})")
    })
}

/// The value of a sample line `name{labels} value` of an exposition.
fn samples<'a>(exposition: &'a str, name: &'a str) -> impl Iterator<Item = (&'a str, f64)> + 'a {
    exposition.lines().filter_map(move |line| {
        let rest = line.strip_prefix(name)?;
        let (labels, value) = rest.rsplit_once(' ')?;
        if !(labels.is_empty() || labels.starts_with('{')) {
            return None;
        }
        Some((labels, value.parse().ok()?))
    })
}

#[test]
fn the_endpoint_serves_openmetrics_probes_and_the_graph() {
    let pipeline = Pipeline::start(&[]);
    let (status, body) = get(&format!("{}/healthz", pipeline.base)).unwrap();
    assert_eq!((status, body.trim()), (200, "ok"));

    let metrics = format!("{}/metrics", pipeline.base);
    let events = |text: &str| {
        samples(text, "sluice_events_in_total")
            .map(|(_, v)| v)
            .sum::<f64>()
    };
    let (status, first) = get(&metrics).unwrap();
    assert_eq!(status, 200);
    assert!(
        first.trim_end().ends_with("# EOF"),
        "OpenMetrics text ends with # EOF"
    );
    let workers: Vec<&str> = samples(&first, "sluice_events_in_total")
        .map(|(labels, _)| labels)
        .collect();
    assert_eq!(workers.len(), 2, "{first}");
    assert!(
        workers.iter().all(|l| l.contains("pipeline=\"q5\"")),
        "{workers:?}"
    );
    // The counters move while the pipeline runs.
    let second = wait_for("events to grow", Duration::from_secs(20), || {
        let (_, now) = get(&metrics)?;
        (events(&now) > events(&first)).then_some(now)
    });
    for family in [
        "sluice_run_info",
        "sluice_up",
        "sluice_rows_out_total",
        "sluice_late_events_total",
        "sluice_dead_letters_total",
        "sluice_in_flight_records",
        "sluice_throttled_seconds_total",
        "sluice_watermark_seconds",
        "sluice_watermark_lag_seconds",
        "sluice_processing_latency_seconds_bucket",
        "sluice_restarts_total",
    ] {
        assert!(
            samples(&second, family).next().is_some(),
            "{family} in {second}"
        );
    }
    // Every metric family is in the README's table.
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for line in second.lines().filter(|l| l.starts_with("# TYPE ")) {
        let family = line.split_whitespace().nth(2).unwrap();
        assert!(
            readme.contains(&format!("`{family}")),
            "README's metric table lacks {family}"
        );
    }

    // The dataflow graph, from timely's logging: q5's named operators, joined by channels.
    let (status, graph) = get(&format!("{}/api/graph", pipeline.base)).unwrap();
    assert_eq!(status, 200);
    let graph: Value = serde_json::from_str(&graph).unwrap();
    let names: Vec<&str> = graph["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"q5.hottest_per_window"), "{names:?}");
    assert!(names.contains(&"q5.sink"), "{names:?}");
    assert!(
        graph["edges"].as_array().unwrap().len() >= names.len() - 1,
        "{graph}"
    );

    let (_, snapshot) = get(&format!("{}/api/snapshot", pipeline.base)).unwrap();
    let snapshot: Value = serde_json::from_str(&snapshot).unwrap();
    assert_eq!(snapshot["pipeline"], "q5");
    assert_eq!(snapshot["state"], "running");
    assert_eq!(snapshot["workers"].as_array().unwrap().len(), 2);

    let err = pipeline.stop();
    assert!(err.contains("STOPPED (SIGTERM)"), "{err}");
}

#[test]
fn a_real_prometheus_scrapes_a_running_pipeline() {
    let prometheus = tool("prometheus");
    let pipeline = Pipeline::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let target = pipeline.base.trim_start_matches("http://");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: sluice\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let port = free_port_pair();
    let listen = format!("127.0.0.1:{port}");
    let server = Command::new(&prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={listen}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", prometheus.display()));
    let _server = Running(server);

    let query = |promql: &str| -> Option<f64> {
        let url = format!(
            "http://{listen}/api/v1/query?query={}",
            promql
                .bytes()
                .map(|b| match b {
                    b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
                    _ => format!("%{b:02X}"),
                })
                .collect::<String>()
        );
        let (status, body) = get(&url)?;
        if status != 200 {
            return None;
        }
        let answer: Value = serde_json::from_str(&body).ok()?;
        let value = answer["data"]["result"].get(0)?["value"][1]
            .as_str()?
            .to_string();
        value.parse().ok()
    };
    // The events counted, summed over the workers; then their rate, which needs two scrapes.
    let events = wait_for("PromQL: events read by q5", Duration::from_secs(60), || {
        query("sum(sluice_events_in_total{pipeline=\"q5\"})").filter(|&v| v > 0.0)
    });
    let rate = wait_for("PromQL: q5's rate", Duration::from_secs(60), || {
        query("sum(rate(sluice_events_in_total{pipeline=\"q5\"}[5s]))").filter(|&v| v > 0.0)
    });
    assert_eq!(query("sluice_up{pipeline=\"q5\"}"), Some(1.0));
    let workers = query("count(sluice_events_in_total{pipeline=\"q5\"})");
    assert_eq!(workers, Some(2.0));
    let p99 = query(
        "histogram_quantile(0.99, sum by (le) (rate(sluice_processing_latency_seconds_bucket{pipeline=\"q5\"}[10s])))",
    );
    eprintln!("Prometheus: {events} events, {rate:.0} events/s, p99 {p99:?} s");
    pipeline.stop();
}

/// Chromium's DOM of `url` after `budget_ms` of (virtual) time.
fn dump_dom(chromium: &Path, url: &str, profile: &Path, budget_ms: u64) -> String {
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--virtual-time-budget={budget_ms}"))
        .arg("--dump-dom")
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", chromium.display()));
    assert!(out.status.success(), "chromium: {}", text(&out.stderr));
    text(&out.stdout)
}

/// The value of `attribute` on the element whose opening tag contains `marker`.
fn attribute<'a>(dom: &'a str, marker: &str, attribute: &str) -> Option<&'a str> {
    let at = dom.find(marker)?;
    let start = dom[..at].rfind('<')?;
    let end = at + dom[at..].find('>')?;
    let tag = &dom[start..end];
    let key = format!("{attribute}=\"");
    let from = tag.find(&key)? + key.len();
    Some(&tag[from..from + tag[from..].find('"')?])
}

/// The text of the element with `id`.
fn text_of<'a>(dom: &'a str, id: &str) -> Option<&'a str> {
    let at = dom.find(&format!("id=\"{id}\""))?;
    let from = at + dom[at..].find('>')? + 1;
    Some(dom[from..from + dom[from..].find('<')?].trim())
}

#[test]
fn the_dashboard_shows_the_running_query_live_in_a_browser() {
    let chromium = tool("chromium");
    let pipeline = Pipeline::start(&[]);
    let profile = tempfile::tempdir().unwrap();
    let url = format!("{}/", pipeline.base);
    let seen = |dom: &str| -> (u64, f64) {
        let updates = attribute(dom, "<body", "data-updates")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let events = attribute(dom, "id=\"events-in\"", "data-value")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        (updates, events)
    };
    let first = dump_dom(&chromium, &url, profile.path(), 5000);
    assert_eq!(text_of(&first, "pipeline"), Some("q5"), "{first}");
    let (updates, events) = seen(&first);
    assert!(updates >= 2, "the page polled {updates} times: {first}");
    assert!(events > 0.0, "events in: {events}: {first}");
    let nodes: u64 = attribute(&first, "<body", "data-graph-nodes")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(nodes >= 5, "the graph drew {nodes} operators: {first}");
    assert!(
        first.contains("q5.hottest_per_window"),
        "the graph names q5's operators"
    );
    // A second load, a little later, shows more events: the numbers are the running query's.
    std::thread::sleep(Duration::from_secs(1));
    let second = dump_dom(&chromium, &url, profile.path(), 3000);
    let (_, later) = seen(&second);
    assert!(later > events, "events in: {events} then {later}");
    pipeline.stop();
}

#[test]
fn readiness_follows_the_run() {
    // A bounded run: ready while it runs; the endpoint goes with the process.
    let pipeline = Pipeline::start(&["--stop-after", "3s"]);
    let ready = format!("{}/readyz", pipeline.base);
    assert_eq!(get(&ready).map(|(s, _)| s), Some(200));
    let Pipeline { mut child, .. } = pipeline;
    let status = wait_for("the bounded run to end", Duration::from_secs(30), || {
        child.0.try_wait().unwrap()
    });
    assert!(status.success());
    assert!(get(&ready).is_none(), "nothing listens after the run");
}

#[test]
fn a_metrics_address_in_use_is_a_one_line_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let line = format!("run q5 --events 1000 --sink null --metrics-addr {addr}");
    let out = sluice(&words(&line), &[], dir.path());
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains(&addr), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_configuration_file_and_variables_configure_a_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("job.toml"),
        "# q5 over a short generated input\nquery = \"q5\"\nevents = 3000\nsink = \"null\"\n\
         watermark-delay = \"1s\"\nprogress = \"off\"\n[kafka-prop]\n\"sasl.password\" = \"hunter2\"\n",
    )
    .unwrap();
    // --print-config: the effective values and where each comes from; no secret.
    let printed = printed_config(
        &["--config", "job.toml", "--events", "4000"],
        &[("SLUICE_WATERMARK_DELAY", "2s"), ("SLUICE_WORKERS", "2")],
        dir.path(),
    );
    assert_lines(
        &printed,
        &[
            "query = \"q5\"  # job.toml line 2",
            "events = \"4000\"  # command line",
            "watermark-delay = \"2s\"  # SLUICE_WATERMARK_DELAY",
            "workers = \"2\"  # SLUICE_WORKERS",
            "sink = \"null\"  # job.toml line 4",
        ],
    );
    assert!(!printed.contains("hunter2"), "{printed}");

    // A value that only the whole run can refuse says where it was set.
    let out = sluice(&["run", "--config", "job.toml"], &[], dir.path());
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--kafka-prop applies only"), "{err}");
    assert!(
        err.trim_end().ends_with("(set by job.toml line 7)"),
        "{err}"
    );

    // The file runs the pipeline.
    let job = std::fs::read_to_string(dir.path().join("job.toml")).unwrap();
    let run = job.split("[kafka-prop]").next().unwrap();
    std::fs::write(dir.path().join("run.toml"), run).unwrap();
    let out = sluice(
        &["run", "--config", "run.toml", "--report", "json"],
        &[],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", text(&out.stdout));
    });
    assert_eq!(report["events"], 3000, "{report}");

    // A misspelt key: one line naming the file and line, exit 2.
    std::fs::write(
        dir.path().join("bad.toml"),
        "query = \"q5\"\nwatermark-dealy = \"1s\"\n",
    )
    .unwrap();
    let out = sluice(&["run", "--config", "bad.toml"], &[], dir.path());
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("bad.toml line 2: unknown key \"watermark-dealy\""),
        "{err}"
    );

    // A bad value from a variable names the variable.
    let out = sluice(&["run", "q5"], &[("SLUICE_RATE", "fast")], dir.path());
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("SLUICE_RATE: rate: "), "{err}");
}

/// The `sluice.toml` of deploy/k8s/configmap.yaml (a block scalar under `data:`).
fn configmap_toml() -> String {
    let yaml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/k8s/configmap.yaml"
    ))
    .unwrap();
    let mut lines = yaml
        .lines()
        .skip_while(|l| l.trim() != "sluice.toml: |")
        .skip(1);
    let first = lines.next().expect("sluice.toml in the ConfigMap");
    let indent = first.len() - first.trim_start().len();
    std::iter::once(first)
        .chain(
            lines.take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() >= indent),
        )
        .map(|l| l.get(indent..).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_kubernetes_configuration_is_a_valid_configuration_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sluice.toml"), configmap_toml()).unwrap();
    let printed = printed_config(&["--config", "sluice.toml"], &[], dir.path());
    assert_lines(
        &printed,
        &[
            "query = \"q5\"  # sluice.toml line",
            "metrics-addr = \"0.0.0.0:9464\"  # sluice.toml line",
            "restore = true  # sluice.toml line",
        ],
    );
}

#[test]
fn json_logs_are_one_object_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port_pair();
    let addr = format!("127.0.0.1:{port}");
    let line = format!(
        "run q5 --events 1000 --sink null --progress off --log-format json --metrics-addr {addr}"
    );
    let out = sluice(&words(&line), &[("SLUICE_LOG", "info")], dir.path());
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    let logs: Vec<Value> = err
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let endpoint = logs
        .iter()
        .find(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(&addr))
        })
        .unwrap_or_else(|| panic!("no log line names the endpoint: {err}"));
    assert_eq!(endpoint["level"], "INFO");
    assert!(endpoint["timestamp"].is_string());
    assert!(endpoint["target"].as_str().unwrap().starts_with("sluice"));
}

#[test]
fn completions_and_manual_pages_come_from_the_command_line_definition() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let out = sluice(&["completions", shell], &[], dir.path());
        let script = text(&out.stdout);
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        assert!(script.contains("metrics-addr"), "{shell}");
        assert!(script.contains("watermark-delay"), "{shell}");
    }
    let out = sluice(&["man", "--dir", "man"], &[], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let page = std::fs::read_to_string(dir.path().join("man/sluice-run.1")).unwrap();
    assert!(page.starts_with(".ie") || page.contains(".TH"), "{page}");
    assert!(page.contains("metrics\\-addr"), "{page}");
    assert!(dir.path().join("man/sluice.1").is_file());
}
