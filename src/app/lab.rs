//! `lab` and `demo`: the simulated platform.

use crate::cli::{Format, GlobalArgs, LabArgs};
use phoenix_doctor::error::{Error, Result};
use phoenix_doctor::lab::{self, Fault, Lab, LabHandle, LabSpec};
use std::io::Write;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// Parse `--fault` names (an unknown name is a usage error listing the known ones).
pub fn parse_faults(names: &[String]) -> Result<Vec<Fault>> {
    names.iter().map(|n| Fault::parse(n)).collect()
}

/// Print the fault catalogue (table or JSON).
pub fn list_faults(g: &GlobalArgs, out: &mut dyn Write) -> Result<()> {
    let io = |e: std::io::Error| Error::tool(format!("writing the fault list: {e}"));
    if g.format == Format::Json {
        let s = serde_json::to_string_pretty(lab::faults())
            .map_err(|e| Error::tool(format!("serialising the fault list: {e}")))?;
        writeln!(out, "{s}").map_err(io)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<21} {:<30} {:<12} SUMMARY",
        "FAULT", "FIRST DIVERGENCE (hop/layer)", "FINDING"
    )
    .map_err(io)?;
    for f in lab::faults() {
        let at = format!("{}/{}", f.expected.hop, f.expected.layer);
        writeln!(
            out,
            "{:<21} {:<30} {:<12} {}",
            f.name, at, f.expected.code, f.summary
        )
        .map_err(io)?;
    }
    Ok(())
}

/// What a started lab prints: its components and how to trace it.
pub fn describe(h: &LabHandle, out: &mut dyn Write) -> std::io::Result<()> {
    let a = h.addrs();
    let f = h.faults();
    let down = |x: Fault| if f.contains(&x) { " (down: fault)" } else { "" };
    writeln!(
        out,
        "phoenix-doctor lab: simulated Phoenix platform on {} (started in {} ms)",
        a.net(),
        h.startup_time().as_millis()
    )?;
    writeln!(
        out,
        "  DNS (host)            {}{}",
        h.dns_addr(),
        down(Fault::DnsDown)
    )?;
    writeln!(out, "  gateway (LXC 101)     {}", h.gateway_addr())?;
    writeln!(out, "  router (LXC 102)      {}", h.router_addr())?;
    writeln!(
        out,
        "  step-ca (LXC 103)     {}{}",
        h.ca_addr(),
        down(Fault::CaDown)
    )?;
    writeln!(out, "  Portainer (VM 1001)   {} (mTLS)", h.portainer_addr())?;
    writeln!(out, "  agent (VM 1002)       {}", h.agent_addr())?;
    writeln!(
        out,
        "  qdrant (VM 1002)      {}{}",
        h.qdrant_addr(),
        down(Fault::QdrantDown)
    )?;
    if h.ports().high {
        writeln!(
            out,
            "  (not root: high ports stand in for 53/443/80; see [ports] in {})",
            h.site_file().display()
        )?;
    }
    let names: Vec<&str> = f.iter().map(|x| x.name()).collect();
    writeln!(
        out,
        "faults: {}",
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    )?;
    writeln!(out, "root CA: {}", h.pki().root_ca.display())?;
    writeln!(out, "config dir: {}", h.config_dir().display())?;
    writeln!(
        out,
        "trace it: phoenix-doctor trace qdrant --config-dir {}",
        h.config_dir().display()
    )?;
    writeln!(
        out,
        "drift: phoenix-doctor drift --config-dir {} --deployed {}",
        h.config_dir().display(),
        h.deployed_dir().display()
    )?;
    writeln!(out, "Ctrl-C stops the lab.")?;
    out.flush()
}

/// The signals that stop a lab or a demo and clean up its temporary directory: SIGINT, SIGTERM,
/// SIGHUP and SIGQUIT (every catchable one a terminal, a service manager or `kill` sends).
pub(super) struct StopSignals {
    int: Signal,
    term: Signal,
    hup: Signal,
    quit: Signal,
}

impl StopSignals {
    /// Register the handlers (inside a tokio runtime). From here on these signals no longer
    /// kill the process: [`StopSignals::recv`] reports them.
    pub(super) fn register() -> Result<Self> {
        let reg = |k: SignalKind| {
            signal(k).map_err(|e| Error::tool(format!("installing a signal handler: {e}")))
        };
        Ok(StopSignals {
            int: reg(SignalKind::interrupt())?,
            term: reg(SignalKind::terminate())?,
            hup: reg(SignalKind::hangup())?,
            quit: reg(SignalKind::quit())?,
        })
    }

    /// Wait for one of the signals; returns its number.
    pub(super) async fn recv(&mut self) -> i32 {
        tokio::select! {
            _ = self.int.recv() => libc::SIGINT,
            _ = self.term.recv() => libc::SIGTERM,
            _ = self.hup.recv() => libc::SIGHUP,
            _ = self.quit.recv() => libc::SIGQUIT,
        }
    }
}

pub fn lab(g: &GlobalArgs, a: &LabArgs) -> Result<u8> {
    if a.list_faults {
        list_faults(g, &mut super::stdout())?;
        return Ok(0);
    }
    let spec = LabSpec {
        dir: a.dir.clone(),
        faults: parse_faults(&a.faults)?,
        net: a.net,
    };
    let reference = a
        .serve_config
        .as_deref()
        .map(|d| lab::Reference::load(d, None))
        .transpose()?;
    let rt = super::runtime()?;
    rt.block_on(async {
        // Registered before the lab writes anything, so an early signal still cleans up.
        let mut stop = StopSignals::register()?;
        let started = tokio::select! {
            h = async {
                match &reference {
                    Some(r) => Lab::start_reference(&spec, r).await,
                    None => Lab::start(&spec).await,
                }
            } => Some(h?),
            _ = stop.recv() => None,
        };
        let Some(handle) = started else {
            return Ok(0);
        };
        describe(&handle, &mut super::stdout())
            .map_err(|e| Error::tool(format!("writing to stdout: {e}")))?;
        if let Some(r) = &reference {
            super::print(&format!(
                "platform: built from {} (its own defects included; every other service it declares answers on its address)\n",
                r.config_dir.display()
            ))?;
        }
        stop.recv().await;
        // Stops every component; a temporary directory (no --dir) is removed with the handle.
        handle.shutdown();
        Ok(0)
    })
}
