//! `serve`: a Prometheus exporter in the style of blackbox_exporter. `GET /probe?target=NAME`
//! traces one target and answers its metrics, `GET /metrics` the exporter's own. Owns the HTTP
//! server, the per-target serialisation of traces, the global concurrency cap and the per-scrape
//! deadline (`docs/prometheus.md`).

use super::live::{self, Context};
use crate::cli::{Format, GlobalArgs, RunArgs, ServeArgs};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use phoenix_doctor::diagnose::{self, Overall, Report};
use phoenix_doctor::engine::{self, Run};
use phoenix_doctor::error::{Error, Result};
use phoenix_doctor::report::prometheus::label;
use phoenix_doctor::report::{self, Style};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// Connections served at once; further ones are closed on accept.
const MAX_CONNECTIONS: usize = 256;
/// Bytes of a request head (request line and headers); a larger one is refused by hyper.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// A connection lives this long at most (Prometheus reconnects).
const CONNECTION_LIFETIME: Duration = Duration::from_secs(300);
/// The longest target name echoed back in an error.
const ECHO_CHARS: usize = 64;
/// Prometheus' text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A finished trace: its reports and runs (one each).
pub(crate) struct Traced {
    reports: Vec<Report>,
    runs: Vec<Run>,
}

/// Runs traces; the live one reads the configs on every call, tests use a stand-in.
pub(crate) trait Tracer: Send + Sync + 'static {
    /// The names `/probe?target=` accepts.
    fn targets(&self) -> BoxFuture<Result<Vec<String>>>;
    /// Trace `target`, finishing within `budget`.
    fn trace(&self, target: String, budget: Duration) -> BoxFuture<Result<Traced>>;
}

/// The real tracer: the configs and options of `trace`.
struct Live {
    g: GlobalArgs,
    run: RunArgs,
    /// `--baseline`: accepted findings are exported but do not count in the verdict.
    baseline: Option<Arc<phoenix_doctor::baseline::Baseline>>,
}

/// Run sync work (config reads) off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::tool(format!("a trace task failed: {e}")))?
}

impl Tracer for Live {
    fn targets(&self) -> BoxFuture<Result<Vec<String>>> {
        let g = self.g.clone();
        Box::pin(blocking(move || live::all_targets(&g)))
    }

    fn trace(&self, target: String, budget: Duration) -> BoxFuture<Result<Traced>> {
        let (g, run, baseline) = (self.g.clone(), self.run.clone(), self.baseline.clone());
        Box::pin(async move {
            // The same run and diagnosis as `trace`: placed vantages, guest facts read with each
            // guest's one call, the drifted upstream at a proxy's error.
            let run2 = run.clone();
            let (ctx, plan, vantages) = blocking(move || {
                let ctx = Context::load(&g)?;
                let plan = phoenix_doctor::plan::build(&ctx.model, &ctx.defs, &target)?;
                let vantages = live::vantages(&run2, &g.config_dir)?;
                Ok((ctx, plan, vantages))
            })
            .await?;
            let plans = [plan];
            let placing = Instant::now();
            let vantages = live::placed(vantages, &plans, &ctx.model, budget).await;
            let mut settings = live::settings_for(&run, &ctx.model, vantages.clone())?;
            // The cluster's listing (on a Proxmox host) comes out of the scrape's budget.
            settings.budget = settings
                .budget
                .min(budget.saturating_sub(placing.elapsed()));
            let [plan] = plans;
            let (observed, facts) =
                live::execute_with_facts(&plan, &ctx.model, &vantages, &settings).await;
            let executed = live::Executed {
                saved: vec![engine::SavedRun {
                    plan,
                    run: observed.clone(),
                    static_findings: Vec::new(),
                    facts,
                }],
                statics: live::static_findings(&ctx.model),
                model: ctx.model,
            };
            let mut reports = blocking(move || live::diagnose(&executed, &run)).await?;
            if let Some(b) = &baseline {
                phoenix_doctor::baseline::apply_reports(
                    &mut reports,
                    b.as_ref(),
                    phoenix_doctor::baseline::Day::today(),
                );
            }
            Ok(Traced {
                reports,
                runs: vec![observed],
            })
        })
    }
}

/// The last answer for one target.
#[derive(Clone)]
struct Last {
    body: String,
    at: Instant,
}

/// One target: held while its trace runs, and its last answer.
#[derive(Default)]
struct Slot {
    running: tokio::sync::Mutex<()>,
    last: Mutex<Option<Last>>,
}

/// The exporter's own counters (`/metrics`).
#[derive(Default)]
struct Stats {
    runs: BTreeMap<(String, &'static str), u64>,
    duration_sum: BTreeMap<String, f64>,
    last_run: BTreeMap<String, f64>,
    errors: BTreeMap<&'static str, u64>,
    stale: BTreeMap<String, u64>,
}

/// Shared by every connection.
pub(crate) struct State {
    tracer: Arc<dyn Tracer>,
    permits: Semaphore,
    budget: Duration,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    stats: Mutex<Stats>,
    in_flight: AtomicUsize,
}

/// Lock a std mutex, also after a panic elsewhere (the data stays usable: counters and answers).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl State {
    pub(crate) fn new(tracer: Arc<dyn Tracer>, max_concurrent: usize, budget: Duration) -> State {
        State {
            tracer,
            permits: Semaphore::new(max_concurrent.max(1)),
            budget,
            slots: Mutex::new(HashMap::new()),
            stats: Mutex::new(Stats::default()),
            in_flight: AtomicUsize::new(0),
        }
    }

    /// The slot of a known target (only known names get one, so the map stays bounded).
    fn slot(&self, target: &str) -> Arc<Slot> {
        lock(&self.slots)
            .entry(target.to_string())
            .or_default()
            .clone()
    }

    fn error(&self, kind: &'static str) {
        *lock(&self.stats).errors.entry(kind).or_default() += 1;
    }
}

/// How long a scrape may take: Prometheus' `X-Prometheus-Scrape-Timeout-Seconds` minus a tenth
/// of it (at most 0.5 s) for the network and Prometheus itself, capped by `budget`; `budget` when
/// the header is absent or not a positive number.
pub(crate) fn scrape_deadline(header: Option<&str>, budget: Duration) -> Duration {
    let Some(secs) = header
        .and_then(|h| h.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
    else {
        return budget;
    };
    let margin = (secs / 10.0).min(0.5);
    Duration::from_secs_f64((secs - margin).min(budget.as_secs_f64()))
}

/// The trace's own budget inside a deadline: a tenth (at most 250 ms) is kept to diagnose and
/// render, so the engine's budget ends before the scrape's.
fn trace_budget(deadline: Duration) -> Duration {
    deadline.saturating_sub((deadline / 10).min(Duration::from_millis(250)))
}

fn text(status: StatusCode, ctype: &str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(ctype) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

/// A one-line plain-text error.
fn refuse(status: StatusCode, line: String) -> Response<Full<Bytes>> {
    text(status, "text/plain; charset=utf-8", format!("{line}\n"))
}

/// The renderer's metrics of a trace (or of a verdict alone).
fn render(traced: &Traced) -> String {
    let mut buf = Vec::new();
    // Writing into memory cannot fail.
    let _ = report::render_runs(
        &traced.reports,
        &traced.runs,
        Format::Prometheus.into(),
        Style::default(),
        &mut buf,
    );
    String::from_utf8_lossy(&buf).into_owned()
}

/// The metrics of a trace that could not be judged (nothing observed): the renderer's series
/// with the cannot-judge verdict.
fn cannot_judge(target: &str, elapsed: Duration) -> String {
    render(&Traced {
        reports: vec![Report {
            schema_version: diagnose::REPORT_SCHEMA_VERSION,
            target: target.to_string(),
            verdict: Overall::CannotJudge,
            first_divergence: None,
            hops: Vec::new(),
            steps: Vec::new(),
            findings: Vec::new(),
            started_at: engine::now_rfc3339(),
            duration_ms: elapsed.as_secs_f64() * 1000.0,
            attempts: 1,
            baseline: None,
        }],
        runs: Vec::new(),
    })
}

/// A `/probe` answer: the metrics and the age of the result they come from.
fn probe_answer(target: &str, body: &str, age: Duration) -> Response<Full<Bytes>> {
    let mut out = body.to_string();
    let _ = writeln!(
        out,
        "# HELP phoenix_doctor_result_age_seconds How old the trace behind this answer is (0: run for this scrape).\n\
         # TYPE phoenix_doctor_result_age_seconds gauge\n\
         phoenix_doctor_result_age_seconds{{target=\"{}\"}} {:.3}",
        label(target),
        age.as_secs_f64()
    );
    text(StatusCode::OK, CONTENT_TYPE, out)
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// Decrements the in-flight gauge when a trace ends or its scrape goes away.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `/probe?target=NAME`.
async fn probe(state: &State, target: &str, timeout_header: Option<&str>) -> Response<Full<Bytes>> {
    let arrived = Instant::now();
    let deadline = scrape_deadline(timeout_header, state.budget);
    let end = arrived + deadline;
    let known = match tokio::time::timeout_at(end, state.tracer.targets()).await {
        Ok(Ok(k)) => k,
        Ok(Err(e)) => {
            state.error("config");
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                phoenix_doctor::fsutil::escape_terminal_line(&e.to_string()).into_owned(),
            );
        }
        Err(_) => {
            state.error("config");
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "the configs were not read within the scrape deadline".to_string(),
            );
        }
    };
    if !known.iter().any(|k| k == target) {
        state.error("unknown_target");
        let shown: String = target.chars().take(ECHO_CHARS).collect();
        let more = if target.chars().count() > ECHO_CHARS {
            "…"
        } else {
            ""
        };
        return refuse(
            StatusCode::BAD_REQUEST,
            format!(
                "unknown target `{}{more}`; known targets: {}",
                phoenix_doctor::fsutil::escape_terminal_line(&shown),
                known.join(", ")
            ),
        );
    }
    let slot = state.slot(target);
    let last = |slot: &Slot| lock(&slot.last).clone();
    // Traces of one target never overlap: wait for a running one within the deadline.
    let Ok(_running) = tokio::time::timeout_at(end, slot.running.lock()).await else {
        return stale(state, target, last(&slot), arrived);
    };
    // A trace that ended while this scrape waited is this scrape's answer.
    if let Some(l) = last(&slot).filter(|l| l.at >= arrived) {
        return probe_answer(target, &l.body, l.at.elapsed());
    }
    let Ok(_permit) = tokio::time::timeout_at(end, state.permits.acquire()).await else {
        return stale(state, target, last(&slot), arrived);
    };
    state.in_flight.fetch_add(1, Ordering::SeqCst);
    let _in_flight = InFlight(&state.in_flight);
    let started = Instant::now();
    let budget = trace_budget(end.saturating_duration_since(started));
    let traced = tokio::time::timeout_at(end, state.tracer.trace(target.to_string(), budget)).await;
    let elapsed = started.elapsed();
    let (body, verdict) = match traced {
        Ok(Ok(t)) => (render(&t), report::overall(&t.reports)),
        Ok(Err(e)) => {
            state.error("trace");
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                phoenix_doctor::fsutil::escape_terminal_line(&e.to_string()).into_owned(),
            );
        }
        Err(_) => {
            // The tool ran out of time: that says nothing about the platform.
            state.error("deadline");
            (cannot_judge(target, elapsed), Overall::CannotJudge)
        }
    };
    {
        let mut s = lock(&state.stats);
        *s.runs
            .entry((target.to_string(), verdict.as_str()))
            .or_default() += 1;
        *s.duration_sum.entry(target.to_string()).or_default() += elapsed.as_secs_f64();
        s.last_run.insert(target.to_string(), unix_now());
    }
    let now = Instant::now();
    *lock(&slot.last) = Some(Last {
        body: body.clone(),
        at: now,
    });
    probe_answer(target, &body, Duration::ZERO)
}

/// The answer of a scrape that could not run a trace in time: the last result with its age, or
/// cannot-judge when there is none yet.
fn stale(
    state: &State,
    target: &str,
    last: Option<Last>,
    arrived: Instant,
) -> Response<Full<Bytes>> {
    *lock(&state.stats)
        .stale
        .entry(target.to_string())
        .or_default() += 1;
    match last {
        Some(l) => probe_answer(target, &l.body, l.at.elapsed()),
        None => probe_answer(
            target,
            &cannot_judge(target, arrived.elapsed()),
            Duration::ZERO,
        ),
    }
}

/// `/metrics`: the exporter's own series.
fn metrics(state: &State) -> String {
    let s = lock(&state.stats);
    let mut o = String::new();
    let head = |o: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    head(
        &mut o,
        "phoenix_doctor_exporter_runs_total",
        "counter",
        "Traces run, by target and verdict.",
    );
    for ((t, v), n) in &s.runs {
        let _ = writeln!(
            o,
            "phoenix_doctor_exporter_runs_total{{target=\"{}\",verdict=\"{v}\"}} {n}",
            label(t)
        );
    }
    head(
        &mut o,
        "phoenix_doctor_exporter_run_duration_seconds",
        "summary",
        "Wall time of the traces, by target.",
    );
    for (t, sum) in &s.duration_sum {
        let count: u64 = s
            .runs
            .iter()
            .filter(|((rt, _), _)| rt == t)
            .map(|(_, n)| n)
            .sum();
        let _ = writeln!(
            o,
            "phoenix_doctor_exporter_run_duration_seconds_sum{{target=\"{0}\"}} {sum:.6}\n\
             phoenix_doctor_exporter_run_duration_seconds_count{{target=\"{0}\"}} {count}",
            label(t)
        );
    }
    head(
        &mut o,
        "phoenix_doctor_exporter_last_run_timestamp_seconds",
        "gauge",
        "When the last trace of a target ended (Unix time).",
    );
    for (t, at) in &s.last_run {
        let _ = writeln!(
            o,
            "phoenix_doctor_exporter_last_run_timestamp_seconds{{target=\"{}\"}} {at:.3}",
            label(t)
        );
    }
    head(
        &mut o,
        "phoenix_doctor_exporter_stale_answers_total",
        "counter",
        "Scrapes answered with the last result (or cannot-judge) because no trace could run in time.",
    );
    for (t, n) in &s.stale {
        let _ = writeln!(
            o,
            "phoenix_doctor_exporter_stale_answers_total{{target=\"{}\"}} {n}",
            label(t)
        );
    }
    head(
        &mut o,
        "phoenix_doctor_exporter_errors_total",
        "counter",
        "Scrapes that failed: config (configs unreadable), unknown_target, trace (tool error), deadline (trace unfinished in time).",
    );
    for kind in ["config", "unknown_target", "trace", "deadline"] {
        let _ = writeln!(
            o,
            "phoenix_doctor_exporter_errors_total{{kind=\"{kind}\"}} {}",
            s.errors.get(kind).copied().unwrap_or(0)
        );
    }
    head(
        &mut o,
        "phoenix_doctor_exporter_in_flight",
        "gauge",
        "Traces running now.",
    );
    let _ = writeln!(
        o,
        "phoenix_doctor_exporter_in_flight {}",
        state.in_flight.load(Ordering::SeqCst)
    );
    o
}

/// One request.
async fn handle<B>(state: Arc<State>, req: Request<B>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET is served".to_string(),
        );
    }
    match req.uri().path() {
        "/probe" => {
            let target = req.uri().query().and_then(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == "target")
                    .map(|(_, v)| v.into_owned())
            });
            let Some(target) = target.filter(|t| !t.is_empty()) else {
                let known = state.tracer.targets().await.unwrap_or_default();
                return refuse(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "missing ?target=NAME; known targets: {}",
                        known.join(", ")
                    ),
                );
            };
            let header = req
                .headers()
                .get("x-prometheus-scrape-timeout-seconds")
                .and_then(|v| v.to_str().ok());
            probe(&state, &target, header).await
        }
        "/metrics" => text(StatusCode::OK, CONTENT_TYPE, metrics(&state)),
        "/" => text(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            "phoenix-doctor exporter: /probe?target=NAME traces a target, /metrics has the exporter's own series (docs/prometheus.md)\n"
                .to_string(),
        ),
        _ => refuse(StatusCode::NOT_FOUND, "not found".to_string()),
    }
}

/// Serve connections from `listener` until `shutdown` resolves.
pub(crate) async fn run(
    listener: tokio::net::TcpListener,
    state: Arc<State>,
    shutdown: impl Future<Output = ()>,
) {
    let conns = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors and the like: pause instead of spinning.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = conns.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let svc = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(state, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .max_buf_size(MAX_HEAD_BYTES)
                .serve_connection(TokioIo::new(stream), svc);
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, conn).await;
        });
    }
}

/// `phoenix-doctor serve`.
pub fn serve(g: &GlobalArgs, a: &ServeArgs) -> Result<u8> {
    if a.run.replay.is_some() || a.run.save_run.is_some() || a.run.wait.is_some() {
        return Err(Error::input(
            "serve: --replay, --save-run and --wait do not apply (each scrape runs one trace)",
        ));
    }
    // Fail at start on configs or options that no scrape could use.
    let ctx = Context::load(g)?;
    live::settings(g, &a.run, &ctx.model)?;
    let budget = a.run.budget;
    let baseline = a
        .baseline
        .as_deref()
        .map(super::load_baseline)
        .transpose()?
        .map(Arc::new);
    let tracer = Arc::new(Live {
        g: g.clone(),
        run: a.run.clone(),
        baseline,
    });
    let state = Arc::new(State::new(tracer, a.max_concurrent as usize, budget));
    let rt = super::runtime()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(a.listen)
            .await
            .map_err(|e| Error::tool(format!("serve: cannot listen on {}: {e}", a.listen)))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::tool(format!("serve: {e}")))?;
        eprintln!(
            "phoenix-doctor: serving http://{addr}/probe?target=NAME and http://{addr}/metrics"
        );
        run(listener, state, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
        Ok(0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A stand-in tracer: targets a, b, c; each trace sleeps `delay_ms` and records how many run
    /// at once (per target and overall) and the budget it was given.
    #[derive(Default)]
    struct Fake {
        delay_ms: AtomicU64,
        running: Mutex<HashMap<String, usize>>,
        max_same_target: AtomicUsize,
        now: AtomicUsize,
        max_overall: AtomicUsize,
        traces: AtomicUsize,
        budgets: Mutex<Vec<Duration>>,
    }

    impl Tracer for Arc<Fake> {
        fn targets(&self) -> BoxFuture<Result<Vec<String>>> {
            Box::pin(async { Ok(vec!["a".into(), "b".into(), "c".into()]) })
        }

        fn trace(&self, target: String, budget: Duration) -> BoxFuture<Result<Traced>> {
            let me = self.clone();
            Box::pin(async move {
                me.traces.fetch_add(1, Ordering::SeqCst);
                lock(&me.budgets).push(budget);
                let same = {
                    let mut r = lock(&me.running);
                    let n = r.entry(target.clone()).or_default();
                    *n += 1;
                    *n
                };
                me.max_same_target.fetch_max(same, Ordering::SeqCst);
                let all = me.now.fetch_add(1, Ordering::SeqCst) + 1;
                me.max_overall.fetch_max(all, Ordering::SeqCst);
                let delay = me.delay_ms.load(Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(delay)).await;
                me.now.fetch_sub(1, Ordering::SeqCst);
                *lock(&me.running).get_mut(&target).unwrap() -= 1;
                let mut r = fake_report(&target);
                r.verdict = Overall::Healthy;
                Ok(Traced {
                    reports: vec![r],
                    runs: Vec::new(),
                })
            })
        }
    }

    fn fake_report(target: &str) -> Report {
        Report {
            schema_version: diagnose::REPORT_SCHEMA_VERSION,
            target: target.into(),
            verdict: Overall::Healthy,
            first_divergence: None,
            hops: Vec::new(),
            steps: Vec::new(),
            findings: Vec::new(),
            started_at: engine::now_rfc3339(),
            duration_ms: 1.0,
            attempts: 1,
            baseline: None,
        }
    }

    async fn start(fake: &Arc<Fake>, max: usize, budget: Duration) -> std::net::SocketAddr {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let state = Arc::new(State::new(Arc::new(fake.clone()), max, budget));
        tokio::spawn(run(l, state, std::future::pending()));
        addr
    }

    /// A raw HTTP/1.1 request; returns the status and the body (empty when the server closed).
    async fn get(addr: std::net::SocketAddr, path: &[u8], headers: &str) -> (u16, String) {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut req = b"GET ".to_vec();
        req.extend_from_slice(path);
        req.extend_from_slice(
            format!(" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{headers}\r\n").as_bytes(),
        );
        let _ = s.write_all(&req).await;
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        let text = String::from_utf8_lossy(&out).to_string();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }

    fn value(body: &str, series: &str) -> Option<f64> {
        body.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    const TIMEOUT_5S: &str = "X-Prometheus-Scrape-Timeout-Seconds: 5\r\n";

    #[test]
    fn the_deadline_is_the_scrape_timeout_less_a_margin_capped_by_the_budget() {
        let b = Duration::from_secs(30);
        assert_eq!(scrape_deadline(Some("10"), b), Duration::from_millis(9500));
        assert_eq!(scrape_deadline(Some("1"), b), Duration::from_millis(900));
        assert_eq!(scrape_deadline(Some("2.5"), b), Duration::from_millis(2250));
        assert_eq!(scrape_deadline(Some("120"), b), b);
        for bad in [
            None,
            Some(""),
            Some("soon"),
            Some("-3"),
            Some("0"),
            Some("NaN"),
        ] {
            assert_eq!(scrape_deadline(bad, b), b, "{bad:?}");
        }
        assert_eq!(
            trace_budget(Duration::from_millis(900)),
            Duration::from_millis(810)
        );
        assert_eq!(
            trace_budget(Duration::from_secs(10)),
            Duration::from_millis(9750)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_trace_gets_its_budget_from_the_scrape_timeout_header() {
        let fake = Arc::new(Fake::default());
        let addr = start(&fake, 2, Duration::from_secs(30)).await;
        let (code, _) = get(
            addr,
            b"/probe?target=a",
            "X-Prometheus-Scrape-Timeout-Seconds: 4\r\n",
        )
        .await;
        assert_eq!(code, 200);
        let (code, _) = get(addr, b"/probe?target=b", "").await;
        assert_eq!(code, 200);
        let budgets = lock(&fake.budgets).clone();
        // 4 s less 0.4 s of margin, less at most 250 ms kept to render.
        assert!(
            budgets[0] <= Duration::from_millis(3350) && budgets[0] > Duration::from_secs(3),
            "{budgets:?}"
        );
        // No header: --budget.
        assert!(
            budgets[1] <= Duration::from_millis(29750) && budgets[1] > Duration::from_secs(29),
            "{budgets:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_trace_past_the_deadline_is_cannot_judge() {
        let fake = Arc::new(Fake::default());
        fake.delay_ms.store(10_000, Ordering::SeqCst);
        let addr = start(&fake, 2, Duration::from_secs(30)).await;
        let t0 = std::time::Instant::now();
        let (code, body) = get(
            addr,
            b"/probe?target=a",
            "X-Prometheus-Scrape-Timeout-Seconds: 1\r\n",
        )
        .await;
        assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
        assert_eq!(code, 200, "{body}");
        let v = |s: &str| {
            value(
                &body,
                &format!("phoenix_doctor_trace_verdict{{target=\"a\",verdict=\"{s}\"}}"),
            )
        };
        assert_eq!(v("cannot-judge"), Some(1.0), "{body}");
        assert_eq!(v("diverged"), Some(0.0), "{body}");
        assert_eq!(v("healthy"), Some(0.0), "{body}");
        let (_, m) = get(addr, b"/metrics", "").await;
        assert_eq!(
            value(
                &m,
                "phoenix_doctor_exporter_errors_total{kind=\"deadline\"}"
            ),
            Some(1.0),
            "{m}"
        );
        assert_eq!(
            value(
                &m,
                "phoenix_doctor_exporter_runs_total{target=\"a\",verdict=\"cannot-judge\"}"
            ),
            Some(1.0),
            "{m}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn scrapes_of_one_target_never_overlap_and_share_the_running_trace() {
        let fake = Arc::new(Fake::default());
        fake.delay_ms.store(300, Ordering::SeqCst);
        let addr = start(&fake, 4, Duration::from_secs(30)).await;
        let scrapes: Vec<_> = (0..4)
            .map(|_| tokio::spawn(get(addr, b"/probe?target=a", TIMEOUT_5S)))
            .collect();
        for s in scrapes {
            let (code, body) = s.await.unwrap();
            assert_eq!(code, 200);
            assert_eq!(
                value(&body, "phoenix_doctor_trace_healthy{target=\"a\"}"),
                Some(1.0),
                "{body}"
            );
        }
        assert_eq!(fake.max_same_target.load(Ordering::SeqCst), 1);
        // The scrapes that waited got the trace they waited for, not one more each.
        assert_eq!(fake.traces.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_scrape_that_cannot_wait_gets_the_last_result_with_its_age() {
        let fake = Arc::new(Fake::default());
        let addr = start(&fake, 2, Duration::from_secs(30)).await;
        let (_, first) = get(addr, b"/probe?target=a", TIMEOUT_5S).await;
        assert_eq!(
            value(&first, "phoenix_doctor_result_age_seconds{target=\"a\"}"),
            Some(0.0)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        fake.delay_ms.store(3000, Ordering::SeqCst);
        let long = tokio::spawn(get(addr, b"/probe?target=a", TIMEOUT_5S));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (code, body) = get(
            addr,
            b"/probe?target=a",
            "X-Prometheus-Scrape-Timeout-Seconds: 0.5\r\n",
        )
        .await;
        assert_eq!(code, 200);
        let age = value(&body, "phoenix_doctor_result_age_seconds{target=\"a\"}").unwrap();
        assert!((0.3..2.0).contains(&age), "age {age}\n{body}");
        assert_eq!(
            value(&body, "phoenix_doctor_trace_healthy{target=\"a\"}"),
            Some(1.0)
        );
        assert_eq!(fake.max_same_target.load(Ordering::SeqCst), 1);
        let (_, m) = get(addr, b"/metrics", "").await;
        assert_eq!(
            value(
                &m,
                "phoenix_doctor_exporter_stale_answers_total{target=\"a\"}"
            ),
            Some(1.0),
            "{m}"
        );
        assert_eq!(value(&m, "phoenix_doctor_exporter_in_flight"), Some(1.0));
        long.await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_traces_run_at_once_than_the_cap() {
        let fake = Arc::new(Fake::default());
        fake.delay_ms.store(300, Ordering::SeqCst);
        let addr = start(&fake, 2, Duration::from_secs(30)).await;
        let scrapes: Vec<_> = [
            &b"/probe?target=a"[..],
            b"/probe?target=b",
            b"/probe?target=c",
        ]
        .into_iter()
        .map(|p| tokio::spawn(get(addr, p, TIMEOUT_5S)))
        .collect();
        for s in scrapes {
            let (code, body) = s.await.unwrap();
            assert_eq!(code, 200, "{body}");
            assert!(body.contains("phoenix_doctor_trace_healthy"), "{body}");
        }
        assert_eq!(fake.max_overall.load(Ordering::SeqCst), 2);
        assert_eq!(fake.traces.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unknown_targets_and_hostile_requests_get_an_error_never_a_trace() {
        let fake = Arc::new(Fake::default());
        let addr = start(&fake, 2, Duration::from_secs(30)).await;
        let (code, body) = get(addr, b"/probe?target=qdrant", "").await;
        assert_eq!(code, 400);
        assert_eq!(body, "unknown target `qdrant`; known targets: a, b, c\n");
        let (code, body) = get(addr, b"/probe", "").await;
        assert_eq!(code, 400);
        assert!(body.starts_with("missing ?target=NAME"), "{body}");
        // Bad UTF-8, raw and percent-encoded, and a control character.
        for path in [
            &b"/probe?target=a\xff"[..],
            b"/probe?target=%ff%fe",
            b"/probe?target=%1b[2J",
        ] {
            let (code, body) = get(addr, path, "").await;
            assert!(code == 400 || code == 0, "{code} {body}");
            assert!(!body.contains('\x1b'), "{body:?}");
        }
        // A long target is echoed cut short.
        let long = format!("/probe?target={}", "x".repeat(5000));
        let (code, body) = get(addr, long.as_bytes(), "").await;
        assert_eq!(code, 400);
        assert!(body.len() < 200, "{}", body.len());
        // A request head over the limit is refused by the server.
        let huge = format!("/probe?target={}", "x".repeat(64 * 1024));
        let (code, _) = get(addr, huge.as_bytes(), "").await;
        assert_ne!(code, 200);
        let (code, _) = get(addr, b"/nope", "").await;
        assert_eq!(code, 404);
        // Many idle connections at once, then the server still answers.
        let mut idle = Vec::new();
        for _ in 0..300 {
            idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        drop(idle);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (code, _) = get(addr, b"/probe?target=a", "").await;
        assert_eq!(code, 200);
        assert_eq!(fake.traces.load(Ordering::SeqCst), 1);
        let (_, m) = get(addr, b"/metrics", "").await;
        assert!(
            value(
                &m,
                "phoenix_doctor_exporter_errors_total{kind=\"unknown_target\"}"
            )
            .unwrap()
                >= 3.0,
            "{m}"
        );
    }
}
