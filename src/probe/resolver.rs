//! What a program at a vantage resolves: hickory-resolver configured from the vantage's own
//! resolv.conf (nameservers, `timeout:`, `attempts:`, `ndots:`, search list) and its own hosts
//! file, never this machine's. The walk over the nameservers (in order, `attempts` rounds, each
//! try `timeout` long, as glibc's resolver does) is ours: hickory's pool gives one deadline to
//! a whole round and does not say which nameserver answered. A nameserver outside the run's
//! scope is never asked: what a program gets then is unknown.

use super::dns::{Asked, DnsAnswer, NoAnswer};
use super::ProbeCtx;
use crate::observe::DnsTransport;
use hickory_resolver::config::{
    NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts, ServerOrderingStrategy,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::{Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::{Hosts, Resolver};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// At most this many nameservers of a resolv.conf are used (glibc's MAXNS).
pub const MAXNS: usize = 3;

/// A vantage's resolver configuration: hickory's, from the resolv.conf text, with glibc's
/// rules on top (no `nameserver` line means 127.0.0.1; at most [`MAXNS`]; `timeout:` 1..30 s,
/// `attempts:` 1..5), each nameserver with its line in the file (0: none named).
pub struct VantageResolver {
    pub config: ResolverConfig,
    pub opts: ResolverOpts,
    pub lines: Vec<u32>,
    hosts: Arc<Hosts>,
}

/// The lines of a resolv.conf that name a nameserver hickory reads (an address, `%zone` cut).
fn nameserver_lines(text: &str) -> Vec<(u32, IpAddr)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split(['#', ';']).next().unwrap_or("");
        let mut parts = line.split_whitespace();
        if parts.next() == Some("nameserver") {
            if let Some(ip) = parts.next().and_then(|p| p.split('%').next()?.parse().ok()) {
                out.push((i as u32 + 1, ip));
            }
        }
    }
    out
}

impl VantageResolver {
    /// From the vantage's resolv.conf and hosts file texts. Err: hickory does not understand
    /// the resolv.conf (the reason).
    pub fn new(resolv_conf: &str, hosts: &str) -> Result<VantageResolver, String> {
        let named = nameserver_lines(resolv_conf);
        let text = if named.is_empty() {
            format!("{resolv_conf}\nnameserver 127.0.0.1\n")
        } else {
            resolv_conf.to_string()
        };
        let (mut config, mut opts) =
            hickory_resolver::system_conf::parse_resolv_conf(text.as_bytes())
                .map_err(|e| e.to_string())?;
        config.name_servers.truncate(MAXNS);
        let lines = config
            .name_servers
            .iter()
            .map(|n| named.iter().find(|(_, ip)| *ip == n.ip).map_or(0, |l| l.0))
            .collect();
        // One nameserver per try, nothing cached, the vantage's hosts file (set below), never
        // this machine's /etc/hosts.
        opts.num_concurrent_reqs = 1;
        opts.server_ordering_strategy = ServerOrderingStrategy::UserProvidedOrder;
        opts.cache_size = 0;
        opts.use_hosts_file = ResolveHosts::Never;
        opts.timeout = opts
            .timeout
            .clamp(Duration::from_secs(1), Duration::from_secs(30));
        opts.attempts = opts.attempts.clamp(1, 5);
        let mut table = Hosts::default();
        table
            .read_hosts_conf(hosts.as_bytes())
            .map_err(|e| format!("hosts file: {e}"))?;
        Ok(VantageResolver {
            config,
            opts,
            lines,
            hosts: Arc::new(table),
        })
    }

    /// The addresses the hosts file gives `name` (hickory's reading of it), if any.
    pub fn from_hosts(&self, name: &str) -> Option<Vec<IpAddr>> {
        let n = Name::from_ascii(format!("{}.", name.trim_end_matches('.'))).ok()?;
        let l = self
            .hosts
            .lookup_static_host(&Query::query(n, RecordType::A))?;
        Some(ips(l.answers()))
    }

    /// One try at one nameserver (at `addr`), with the vantage's search list and ndots, within
    /// `budget`: its answer (SERVFAIL and REFUSED included, as answers), or why there was none.
    async fn ask(
        &self,
        addr: SocketAddr,
        name: &str,
        budget: Duration,
    ) -> Result<DnsAnswer, NoAnswer> {
        let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
        for c in &mut ns.connections {
            c.port = addr.port();
        }
        let config = ResolverConfig::from_parts(
            self.config.domain.clone(),
            self.config.search.clone(),
            vec![ns],
        );
        let mut opts = self.opts.clone();
        opts.attempts = 1;
        opts.timeout = budget.max(Duration::from_millis(1));
        let mut b = Resolver::builder_with_config(config, TokioRuntimeProvider::default());
        *b.options_mut() = opts;
        let mut r = b
            .build()
            .map_err(|e| NoAnswer::Silent(format!("resolver not built: {e}")))?;
        r.set_hosts(self.hosts.clone());
        let answer = |rcode, answers| DnsAnswer {
            protocol: DnsTransport::Udp,
            rcode,
            answers,
            ttl: None,
            cnames: Vec::new(),
            ignored: Vec::new(),
        };
        let got = tokio::time::timeout(budget, r.lookup(name.trim_end_matches('.'), RecordType::A));
        match got.await {
            Ok(Ok(l)) => {
                let mut a = answer(ResponseCode::NoError, ips(l.answers()));
                a.ttl = l.answers().iter().map(|r| r.ttl).min();
                Ok(a)
            }
            Ok(Err(NetError::Dns(DnsError::NoRecordsFound(n)))) => {
                Ok(answer(n.response_code, Vec::new()))
            }
            Ok(Err(NetError::Dns(DnsError::ResponseCode(rc)))) => Ok(answer(rc, Vec::new())),
            Ok(Err(e)) => Err(NoAnswer::Silent(format!(
                "no answer within {} ms ({e})",
                budget.as_millis()
            ))),
            Err(_) => Err(NoAnswer::Silent(format!(
                "no answer within {} ms",
                budget.as_millis()
            ))),
        }
    }
}

fn ips(records: &[hickory_resolver::proto::rr::Record]) -> Vec<IpAddr> {
    records
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            _ => None,
        })
        .collect()
}

/// Ask the vantage's nameservers as a program there would: `attempts` rounds over them in
/// order, each try `timeout` long, the whole walk capped by the step's timeout; stops at the
/// first answer other than SERVFAIL/REFUSED. The step's own server (`server`, already asked,
/// `intended`) is not asked again; a nameserver outside the run's scope is not asked, and the
/// walk stops there (what a program gets depends on it). One entry per nameserver reached,
/// with its last result.
pub async fn program_view(
    ctx: &ProbeCtx,
    name: &str,
    server: SocketAddr,
    intended: &DnsAnswer,
    vr: &VantageResolver,
) -> Vec<Asked> {
    let deadline = tokio::time::Instant::now() + ctx.timeout;
    let mut asked: Vec<Asked> = Vec::new();
    for _round in 0..vr.opts.attempts {
        for (i, ns) in vr.config.name_servers.iter().enumerate() {
            let (nameserver, result) = if ns.ip == server.ip() {
                (server, Ok(intended.clone()))
            } else {
                let addr = SocketAddr::new(ns.ip, 53);
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                let r = if !ctx.scope.as_ref().is_some_and(|s| s.allows(ns.ip)) {
                    Err(NoAnswer::NotAsked(
                        "it is outside the run's scope (--scope)",
                    ))
                } else if left.is_zero() && asked.len() > i {
                    // asked in an earlier round: that result stands
                    return asked;
                } else if left.is_zero() {
                    Err(NoAnswer::NotAsked("the step's timeout ran out"))
                } else {
                    vr.ask(addr, name, vr.opts.timeout.min(left)).await
                };
                (addr, r)
            };
            let a = Asked {
                line: vr.lines[i],
                nameserver,
                result,
            };
            let stop = a.is_final() || a.not_asked();
            match asked.get_mut(i) {
                Some(prev) => *prev = a,
                None => asked.push(a),
            }
            if stop {
                asked.truncate(i + 1);
                return asked;
            }
        }
    }
    asked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_options_reach_the_resolver_with_glibc_limits() {
        let vr = VantageResolver::new(
            "search a.test\nnameserver 198.18.0.99\n# nameserver 1.1.1.1\nnameserver 198.18.0.13 ; c\noptions timeout:1 attempts:9 ndots:2\nnameserver 198.18.0.3\nnameserver 198.18.0.4\n",
            "",
        )
        .unwrap();
        let ips: Vec<String> = vr
            .config
            .name_servers
            .iter()
            .map(|n| n.ip.to_string())
            .collect();
        assert_eq!(ips, ["198.18.0.99", "198.18.0.13", "198.18.0.3"]);
        assert_eq!(vr.lines, [2, 4, 6]);
        assert_eq!(vr.opts.timeout, Duration::from_secs(1));
        assert_eq!(vr.opts.attempts, 5);
        assert_eq!(vr.opts.ndots, 2);
        assert_eq!(vr.config.search.len(), 1);
        let none = VantageResolver::new("search x\n", "").unwrap();
        assert_eq!(none.config.name_servers[0].ip, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(none.lines, [0]);
        assert_eq!(
            (none.opts.timeout, none.opts.attempts),
            (Duration::from_secs(5), 2)
        );
    }

    #[test]
    fn the_vantages_hosts_file_is_read_by_hickory() {
        let vr = VantageResolver::new(
            "nameserver 10.9.9.9\n",
            "127.0.0.1 localhost\n# 198.18.0.8 q.example.test\n198.18.0.7 Q.example.test x\n",
        )
        .unwrap();
        assert_eq!(
            vr.from_hosts("q.example.test"),
            Some(vec!["198.18.0.7".parse().unwrap()])
        );
        assert_eq!(vr.from_hosts("other.example.test"), None);
    }

    #[tokio::test]
    async fn a_nameserver_outside_the_scope_is_not_asked_and_stops_the_walk() {
        let vr = VantageResolver::new("nameserver 10.9.9.9\nnameserver 127.0.0.1\n", "").unwrap();
        let server: SocketAddr = "127.0.0.1:53".parse().unwrap();
        let intended = DnsAnswer {
            protocol: DnsTransport::Udp,
            rcode: ResponseCode::NoError,
            answers: vec!["198.18.0.7".parse().unwrap()],
            ttl: None,
            cnames: vec![],
            ignored: vec![],
        };
        let ctx = ProbeCtx::default(); // no scope: nothing but the step's server may be asked
        let asked = program_view(&ctx, "q.example.test", server, &intended, &vr).await;
        assert_eq!(asked.len(), 1);
        assert_eq!(asked[0].line, 1);
        assert!(asked[0].not_asked(), "{asked:?}");
    }
}
