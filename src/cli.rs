//! The command line: clap derive types, and the value parsers that check every duration, CIDR,
//! vantage and transport option once, at the boundary (the library only ever sees typed values:
//! `Duration`, `IpNet`, `Kind` and `Template`).

use clap::{Args, Parser, Subcommand, ValueEnum};
use phoenix_doctor::vantage::{Kind, Template};
use std::path::PathBuf;
use std::time::Duration;

/// The longest `--timeout` accepted (per step; beyond it a hung peer stalls a run for hours).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// The longest `--budget`, `--wait` accepted.
pub const MAX_RUN: Duration = Duration::from_secs(24 * 3600);
/// The longest `--interval` accepted.
pub const MAX_INTERVAL: Duration = Duration::from_secs(3600);

/// Parse a duration with a unit (`500ms`, `2s`, `1m`, `1h 30m`), more than zero and at most `max`
/// (a whole number of hours). clap prints the option and the value before the message.
pub fn parse_duration_in(s: &str, max: Duration) -> Result<Duration, String> {
    let t = s.trim();
    let too_long = || format!("too long: at most {}h", max.as_secs() / 3600);
    if t.is_empty() {
        return Err("empty: expected a duration such as 500ms, 2s or 1m".into());
    }
    if t.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!("no unit: add a unit, e.g. {t}s or {t}ms"));
    }
    let d = match humantime::parse_duration(t) {
        Ok(d) => d,
        Err(humantime::DurationError::NumberOverflow) => return Err(too_long()),
        Err(_) => return Err("not a duration: expected e.g. 500ms, 2s, 1m".into()),
    };
    if d.is_zero() {
        return Err("zero: give a duration above zero, e.g. 2s".into());
    }
    if d > max {
        return Err(too_long());
    }
    Ok(d)
}

/// `--timeout`: above zero, at most [`MAX_TIMEOUT`].
pub fn parse_timeout(s: &str) -> Result<Duration, String> {
    parse_duration_in(s, MAX_TIMEOUT)
}

/// `--budget`, `--wait`: above zero, at most [`MAX_RUN`].
pub fn parse_run_duration(s: &str) -> Result<Duration, String> {
    parse_duration_in(s, MAX_RUN)
}

/// `--interval`: above zero, at most [`MAX_INTERVAL`].
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    parse_duration_in(s, MAX_INTERVAL)
}

/// `--scope`: a CIDR, or one address (a /32 or /128).
pub fn parse_cidr(s: &str) -> Result<ipnet::IpNet, String> {
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| "expected a CIDR such as 127.0.0.0/8".to_string())
}

/// `--vantage`: where every step runs instead of its own vantage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VantageOverride {
    /// From this machine, marking guest-specific results as substituted.
    Host,
}

/// `--vantage`: only `host` overrides the vantages.
pub fn parse_vantage(s: &str) -> Result<VantageOverride, String> {
    match s {
        "host" => Ok(VantageOverride::Host),
        _ => Err("the only override is `host`".into()),
    }
}

/// `--agent-path`: a path, not an empty string.
pub fn parse_agent_path(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err("expected a path, found an empty string".into());
    }
    Ok(s.to_string())
}

const EXIT_CODES: &str =
    "Exit codes: 0 healthy, 1 divergence found, 2 usage or config error, 3 could not judge.";

/// Traces the Phoenix Hypervisor's documented hops (DNS, TCP, TLS, mTLS, HTTP) from the right
/// vantage points and reports the first place where the running platform diverges from its
/// declarative configuration.
#[derive(Debug, Parser)]
#[command(name = "phoenix-doctor", version, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand accepts.
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// The platform's config dir (phoenix_*_configs.json, certificate-manifest.json).
    #[arg(
        long,
        global = true,
        env = "PHOENIX_DOCTOR_CONFIG_DIR",
        default_value = "/usr/local/phoenix_hypervisor/etc"
    )]
    pub config_dir: PathBuf,
    /// Where `stacks/*/phoenix.json` live [default: ../stacks beside the config dir].
    #[arg(long, global = true)]
    pub stacks_dir: Option<PathBuf>,
    /// Read trace definitions from this dir instead of the built-in `probes/*.toml`.
    #[arg(long, global = true)]
    pub probes: Option<PathBuf>,
    /// Output format (not every command has every format).
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Never colour the output (also: the NO_COLOR environment variable).
    #[arg(long, global = true)]
    pub no_color: bool,
}

/// Output formats; `docs/cli.md` lists which command prints which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// For people.
    #[default]
    Table,
    /// The versioned contract of `docs/output-json.md`.
    Json,
    /// JUnit XML for CI test reports.
    Junit,
    /// Mermaid sequence diagrams (Markdown with one fenced block per target for several targets).
    Mermaid,
    /// Prometheus text format for node_exporter's textfile collector.
    Prometheus,
    /// GitHub Actions workflow commands (`::error file=...,line=...::...`).
    Github,
    /// One monitoring-plugins status line with perfdata, and its exit codes (0/1/2/3).
    Nagios,
}

impl From<Format> for phoenix_doctor::report::Format {
    fn from(f: Format) -> Self {
        use phoenix_doctor::report::Format as R;
        match f {
            Format::Table => R::Table,
            Format::Json => R::Json,
            Format::Junit => R::Junit,
            Format::Mermaid => R::Mermaid,
            Format::Prometheus => R::Prometheus,
            Format::Github => R::Github,
            Format::Nagios => R::Nagios,
        }
    }
}

impl Format {
    /// The name as given to `--format`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Json => "json",
            Format::Junit => "junit",
            Format::Mermaid => "mermaid",
            Format::Prometheus => "prometheus",
            Format::Github => "github",
            Format::Nagios => "nagios",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the simulated platform on loopback with a real fault and trace qdrant through it.
    ///
    /// Example: phoenix-doctor demo --fault expired-leaf
    #[cfg(feature = "lab")]
    Demo(DemoArgs),
    /// Run the simulated platform on loopback until interrupted, and print how to trace it.
    ///
    /// Example: phoenix-doctor lab --dir /tmp/phx-lab --fault no-route
    #[cfg(feature = "lab")]
    Lab(LabArgs),
    /// Trace one target's documented hops and name the first divergence.
    ///
    /// Example: phoenix-doctor trace qdrant --config-dir /usr/local/phoenix_hypervisor/etc
    #[command(after_help = EXIT_CODES)]
    Trace(TraceArgs),
    /// Trace several targets (or every stack and routed service) and summarise, for CI.
    ///
    /// Example: phoenix-doctor check --all --format junit > phoenix-doctor.xml
    #[command(after_help = EXIT_CODES)]
    Check(CheckArgs),
    /// Show the resolved steps of a trace without sending anything.
    ///
    /// Example: phoenix-doctor plan qdrant --format json
    Plan(PlanArgs),
    /// Static findings from the configs alone (no network).
    ///
    /// Example: phoenix-doctor lint --severity warning --format json
    #[command(after_help = EXIT_CODES)]
    Lint(LintArgs),
    /// Print what the configs derive, in the platform's own file formats, to diff against the
    /// deployed files.
    ///
    /// Example: phoenix-doctor show dns | diff - /etc/dnsmasq.d/00-phoenix-internal.conf
    Show(ShowArgs),
    /// What is deployed versus what the platform's generators would write from the configs now
    /// (dnsmasq records, the gateway site, Traefik's dynamic files, firewall files).
    ///
    /// Example: phoenix-doctor drift --deployed /srv/phoenix-copy
    #[command(after_help = EXIT_CODES)]
    Drift(DriftArgs),
    /// Run one probe by hand (replaces dig, nc, openssl s_client, curl).
    ///
    /// Example: phoenix-doctor probe tls 127.0.0.1:443 --sni nginx.internal.thinkheads.ai --ca root.crt
    #[command(subcommand)]
    Probe(ProbeCommand),
    /// What a finding code means, how to confirm it by hand, how to fix it.
    ///
    /// Example: phoenix-doctor explain PD-DNS-002
    Explain(ExplainArgs),
    /// Run a job of steps read as JSON on stdin and write observations as JSON on stdout
    /// (used inside guests through a transport).
    ///
    /// Example: phoenix-doctor agent < job.json
    Agent,
    /// Record the current findings as accepted (a baseline file for `--baseline`).
    ///
    /// Example: phoenix-doctor baseline write known.toml --all
    #[command(subcommand)]
    Baseline(BaselineCommand),
    /// Serve Prometheus: `/probe?target=NAME` traces a target and answers its metrics,
    /// `/metrics` the exporter's own (see docs/prometheus.md).
    ///
    /// Example: phoenix-doctor serve --listen 127.0.0.1:9799
    Serve(ServeArgs),
    /// Print shell completions.
    ///
    /// Example: phoenix-doctor completions bash > /etc/bash_completion.d/phoenix-doctor
    Completions(CompletionsArgs),
    /// Print the man page (roff), or write one page per subcommand into a new directory.
    ///
    /// Example: phoenix-doctor man --dir /tmp/phoenix-doctor-man
    Man(ManArgs),
}

/// How a live run is carried out (trace, check, demo).
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// Allowed target networks (CIDR, repeatable). Targets outside are refused, not probed.
    /// [default: the platform's subnets from the config, plus 127.0.0.0/8]
    #[arg(long = "scope", value_name = "CIDR", value_parser = parse_cidr)]
    pub scope: Vec<ipnet::IpNet>,
    /// Time limit of each step, all its phases together (e.g. 2s, 500ms; at most 1h). Below the
    /// layer's floor (docs/cli.md) a step that times out cannot be judged.
    #[arg(long, default_value = "2s", value_name = "DURATION", value_parser = parse_timeout)]
    pub timeout: Duration,
    /// Overall budget for one attempt (at most 24h); steps it cuts cannot be judged.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_run_duration)]
    pub budget: Duration,
    /// Steps run at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// A served certificate with less life left than N days is close to expiry (PD-TLS-007);
    /// a short-lived leaf (such as step-ca's 24-hour ones) already under 40% of its life.
    #[arg(long, value_name = "N", default_value_t = phoenix_doctor::probe::tls::DEFAULT_WARN_DAYS)]
    pub warn_days: u32,
    /// Run every step from here (`host`), marking guest-specific results as substituted.
    #[arg(long, value_name = "host", value_parser = parse_vantage)]
    pub vantage: Option<VantageOverride>,
    /// Transport template per vantage kind: `lxc='pct exec {id} --'`, `vm='qm guest exec {id} --'`,
    /// `host=...` (repeatable); `{node}` is the Proxmox node the guest runs on.
    #[arg(long = "via", value_name = "KIND=TEMPLATE", value_parser = phoenix_doctor::vantage::parse_via_value)]
    pub via: Vec<(Kind, Template)>,
    /// Path of phoenix-doctor inside guests (for remote vantages).
    #[arg(long, default_value = "phoenix-doctor", value_parser = parse_agent_path)]
    pub agent_path: String,
    /// Copy this binary into each guest first (`pct push`, or the VM equivalent).
    #[arg(long)]
    pub push: bool,
    /// Keep the observations in FILE for `--replay` (a new file, written atomically, mode
    /// 0600; an existing FILE is kept unless `--force`; a symlink is never followed).
    #[arg(long, value_name = "FILE")]
    pub save_run: Option<PathBuf>,
    /// Let `--save-run` (and `baseline write`) replace an existing regular file.
    #[arg(long)]
    pub force: bool,
    /// Re-diagnose observations saved with `--save-run`, with no network.
    #[arg(long, value_name = "FILE")]
    pub replay: Option<PathBuf>,
    /// Retry until healthy or this long has passed (post-deploy checks; at most 24h).
    #[arg(long, value_name = "DURATION", value_parser = parse_run_duration)]
    pub wait: Option<Duration>,
    /// Pause between attempts with --wait (at most 1h).
    #[arg(long, default_value = "2s", value_name = "DURATION", value_parser = parse_interval)]
    pub interval: Duration,
    /// Read deployed files from this operator's copy instead of the guests: DIR/host/etc/...,
    /// DIR/lxc-101/etc/nginx/..., DIR/lxc-102/etc/traefik/... (docs/cli.md, Drift). Keep
    /// modification times when copying (cp -p, rsync -a).
    #[arg(long, value_name = "DIR")]
    pub deployed: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TraceArgs {
    /// What to trace: a trace name (`qdrant`, `portainer`, `agent`, `step-ca`) or a routed service.
    pub target: String,
    /// Accept the findings listed in FILE (TOML, see docs/baseline.md): shown, but not counted.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Targets to trace.
    pub targets: Vec<String>,
    /// Every stack and Traefik-routed service.
    #[arg(long)]
    pub all: bool,
    /// Accept the findings listed in FILE (TOML, see docs/baseline.md): shown, but not counted.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    #[command(flatten)]
    pub run: RunArgs,
}
#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// Trace the targets (or --all), lint the configs, and write every error found as an
    /// accepted entry to FILE (refuses an existing FILE without --force).
    ///
    /// Example: phoenix-doctor baseline write known.toml --all
    Write(BaselineWriteArgs),
}

#[derive(Debug, Args)]
pub struct BaselineWriteArgs {
    /// The baseline file to write.
    pub file: PathBuf,
    /// Targets to trace.
    pub targets: Vec<String>,
    /// Every stack and Traefik-routed service.
    #[arg(long)]
    pub all: bool,
    /// (`--force`, from the run options: replace FILE if it exists.)
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0: a free port, printed on stderr).
    #[arg(long, default_value = "127.0.0.1:9799", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    /// Traces running at once, over every target; further scrapes wait within their deadline.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_concurrent: u32,
    /// Accept the findings listed in FILE (TOML, see docs/baseline.md): exported, but not counted
    /// in the verdict.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    // The options of `trace`; --budget caps each scrape's deadline.
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// A trace name or routed service.
    pub target: String,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[arg(value_enum)]
    pub what: ShowWhat,
    /// For `firewall`: only this file (`cluster`, or a VM id such as `1002`).
    #[arg(long)]
    pub file: Option<String>,
}

/// `drift`: where the deployed files are read from: the guests, through the vantages of the
/// run options (`--via`, `--vantage`, ...), or an operator's copy (`--deployed DIR`).
#[derive(Debug, Args, Clone)]
pub struct DriftArgs {
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShowWhat {
    /// dnsmasq `address=` lines (00-phoenix-internal.conf).
    Dns,
    /// Traefik dynamic config (dynamic_conf.yml).
    Routes,
    /// Proxmox firewall files (cluster.fw and <vmid>.fw).
    Firewall,
    /// The NGINX gateway site (sites-available/gateway of generate_nginx_gateway_config.sh).
    Gateway,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// A finding code such as PD-DNS-002 (omit to list every code).
    pub code: Option<String>,
}

/// Which static findings `lint` reports.
#[derive(Debug, Args, Clone, Default)]
pub struct LintArgs {
    /// Report only findings of this severity or worse (info < warning < error).
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub severity: Option<SeverityArg>,
    /// Report only these codes (repeatable; a prefix such as PD-FW matches a family).
    #[arg(long = "code", value_name = "CODE")]
    pub codes: Vec<String>,
    /// Accept the findings listed in FILE (TOML, see docs/baseline.md): shown, but not counted.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
}

/// A finding severity on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SeverityArg {
    Info,
    Warning,
    Error,
}

/// Where `man` writes.
#[derive(Debug, Args, Clone, Default)]
pub struct ManArgs {
    /// Write phoenix-doctor.1 and one page per subcommand (phoenix-doctor-trace.1, ...) into
    /// this directory, which must be new or empty. Without it, one page goes to stdout.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[cfg(feature = "lab")]
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Start the lab with no fault.
    #[arg(long)]
    pub healthy: bool,
    /// Inject a named fault (repeatable; see --list-faults).
    #[arg(long = "fault", value_name = "NAME")]
    pub faults: Vec<String>,
    /// List the faults and exit.
    #[arg(long)]
    pub list_faults: bool,
    /// Trace this target instead of qdrant.
    #[arg(long, default_value = "qdrant")]
    pub target: String,
}

#[cfg(feature = "lab")]
#[derive(Debug, Args)]
pub struct LabArgs {
    /// Where to write the lab's config dir and PKI [default: a temp dir].
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Serve the platform this config dir describes (e.g. the platform's reference
    /// configuration, with its own defects) instead of the built-in one; its stacks are read
    /// from ../stacks beside it.
    #[arg(long, value_name = "DIR")]
    pub serve_config: Option<PathBuf>,
    /// Second octet of the lab's loopback block (127.<NET>.0.0/24), so labs can run side by side.
    #[arg(long, default_value_t = 0, value_name = "NET")]
    pub net: u8,
    /// Inject a named fault (repeatable; see --list-faults).
    #[arg(long = "fault", value_name = "NAME")]
    pub faults: Vec<String>,
    /// List the faults and exit.
    #[arg(long)]
    pub list_faults: bool,
}

/// One probe by hand.
#[derive(Debug, Subcommand)]
pub enum ProbeCommand {
    /// Query a nameserver directly (no cache) and show the vantage's hosts file and resolv.conf.
    ///
    /// Example: phoenix-doctor probe dns qdrant.internal.thinkheads.ai --server 127.0.0.53:5353
    Dns(ProbeDnsArgs),
    /// Open a TCP connection: open, refused, filtered or unreachable.
    ///
    /// Example: phoenix-doctor probe tcp 127.0.0.1:9001
    Tcp(ProbeTcpArgs),
    /// TLS handshake; show the served chain and verify it.
    ///
    /// Example: phoenix-doctor probe tls 127.0.0.1:443 --sni nginx.internal.thinkheads.ai --ca root.crt
    Tls(ProbeTlsArgs),
    /// Does the server require a client certificate, and does it accept ours?
    ///
    /// Example: phoenix-doctor probe mtls 127.0.0.1:9443 --sni portainer --ca root.crt --cert c.crt --key c.key
    Mtls(ProbeMtlsArgs),
    /// An HTTP(S) request with per-phase timings and the meaning of proxy answers.
    ///
    /// Example: phoenix-doctor probe http https://qdrant.internal.thinkheads.ai/healthz --resolve qdrant.internal.thinkheads.ai:127.0.0.1 --ca root.crt
    Http(ProbeHttpArgs),
}

#[derive(Debug, Args, Clone)]
pub struct ProbeCommon {
    /// Time limit of the whole probe, all its phases together (at most 1h).
    #[arg(long, default_value = "2s", value_name = "DURATION", value_parser = parse_timeout)]
    pub timeout: Duration,
    /// Allowed target networks (CIDR, repeatable) [default: any].
    #[arg(long = "scope", value_name = "CIDR", value_parser = parse_cidr)]
    pub scope: Vec<ipnet::IpNet>,
}

#[derive(Debug, Args)]
pub struct ProbeDnsArgs {
    pub name: String,
    /// Nameserver to query: IP or IP:PORT.
    #[arg(long)]
    pub server: String,
    /// Expected answer (repeatable).
    #[arg(long = "expect", value_name = "IP")]
    pub expect: Vec<String>,
    /// Hosts file to read for the system view.
    #[arg(long, default_value = "/etc/hosts")]
    pub hosts_file: PathBuf,
    /// resolv.conf to read for the system view.
    #[arg(long, default_value = "/etc/resolv.conf")]
    pub resolv_conf: PathBuf,
    #[command(flatten)]
    pub common: ProbeCommon,
}

#[derive(Debug, Args)]
pub struct ProbeTcpArgs {
    /// IP:PORT.
    pub addr: String,
    #[command(flatten)]
    pub common: ProbeCommon,
}

#[derive(Debug, Args)]
pub struct ProbeTlsArgs {
    /// IP:PORT.
    pub addr: String,
    /// Server name to send and verify.
    #[arg(long)]
    pub sni: String,
    /// Trust anchors (PEM). Without it the chain is shown but not verified.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    #[command(flatten)]
    pub common: ProbeCommon,
}

#[derive(Debug, Args)]
pub struct ProbeMtlsArgs {
    /// IP:PORT.
    pub addr: String,
    #[arg(long)]
    pub sni: String,
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM).
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// Client key (PEM).
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    #[command(flatten)]
    pub common: ProbeCommon,
}

#[derive(Debug, Args)]
pub struct ProbeHttpArgs {
    pub url: String,
    /// Connect to IP for NAME (like curl --resolve; NAME:IP or NAME:PORT:IP).
    #[arg(long, value_name = "NAME:IP")]
    pub resolve: Option<String>,
    #[arg(long)]
    pub ca: Option<PathBuf>,
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    #[arg(long = "expect-status", value_name = "N")]
    pub expect_status: Vec<u16>,
    #[arg(long = "expect-body", value_name = "TEXT")]
    pub expect_body: Option<String>,
    #[command(flatten)]
    pub common: ProbeCommon,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_a_unit_and_a_sane_size() {
        let t = |s| parse_timeout(s);
        assert_eq!(t("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(t("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(t("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(t("1h"), Ok(Duration::from_secs(3600)));
        assert!(t("2").unwrap_err().contains("add a unit, e.g. 2s"));
        assert!(t("0s").unwrap_err().contains("zero"));
        assert!(t("0ms").unwrap_err().contains("zero"));
        assert!(t("61m").unwrap_err().contains("too long"));
        assert!(t("100000000000000000000s")
            .unwrap_err()
            .contains("too long"));
        assert!(t("10000000000000000000s").unwrap_err().contains("too long"));
        assert!(t("soon").unwrap_err().contains("not a duration"));
        assert!(t("").is_err());
        assert_eq!(parse_run_duration("24h"), Ok(MAX_RUN));
        assert!(parse_run_duration("25h").is_err());
        assert!(parse_interval("2h").is_err());
    }

    fn run_args(extra: &[&str]) -> Result<RunArgs, clap::Error> {
        let mut argv = vec!["phoenix-doctor", "trace", "qdrant"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv)?.command {
            Command::Trace(t) => Ok(t.run),
            c => panic!("{c:?}"),
        }
    }

    #[test]
    fn scope_vantage_via_and_agent_path_are_typed_at_the_boundary() {
        let r = run_args(&["--scope", "127.0.0.0/8", "--scope", "198.18.0.1"]).unwrap();
        assert_eq!(
            r.scope,
            [
                "127.0.0.0/8".parse::<ipnet::IpNet>().unwrap(),
                "198.18.0.1/32".parse().unwrap()
            ]
        );
        let r = run_args(&["--vantage", "host", "--via", "lxc=ip netns exec n{id}"]).unwrap();
        assert_eq!(r.vantage, Some(VantageOverride::Host));
        assert_eq!(r.via[0].0, Kind::Lxc);
        assert_eq!(
            r.via[0].1.prefix(Kind::Lxc, Some(5)),
            ["ip", "netns", "exec", "n5"]
        );
        for (bad, word) in [
            (["--scope", "nope"], "expected a CIDR"),
            (["--vantage", "lxc:102"], "the only override is `host`"),
            (["--via", "ct=pct"], "unknown vantage kind"),
            (["--via", "lxc"], "expected KIND=TEMPLATE"),
            (["--agent-path", " "], "empty string"),
        ] {
            let e = run_args(&bad).unwrap_err();
            assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation, "{bad:?}");
            assert!(
                e.to_string().contains(bad[0]) && e.to_string().contains(word),
                "{e}"
            );
        }
    }

    #[test]
    fn push_needs_an_absolute_agent_path() {
        let dir = tempfile::tempdir().unwrap();
        let e =
            crate::app::live::vantages(&run_args(&["--push"]).unwrap(), dir.path()).unwrap_err();
        assert_eq!(crate::app::exit_code(&e), 2);
        assert!(e.to_string().contains("absolute --agent-path"), "{e}");
        let ok = run_args(&["--push", "--agent-path", "/usr/local/bin/phoenix-doctor"]).unwrap();
        assert!(crate::app::live::vantages(&ok, dir.path()).is_ok());
    }
}
