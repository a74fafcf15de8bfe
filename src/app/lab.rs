//! `lab` and `demo`: the simulated platform.

use crate::cli::{Format, GlobalArgs, LabArgs};
use crate::error::{Error, Result};
use crate::lab::{self, Fault, Lab, LabHandle, LabSpec};
use std::io::Write;

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
    writeln!(out, "Ctrl-C stops the lab.")?;
    out.flush()
}

async fn wait_for_stop() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
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
        let handle = match &reference {
            Some(r) => Lab::start_reference(&spec, r).await?,
            None => Lab::start(&spec).await?,
        };
        describe(&handle, &mut super::stdout())
            .map_err(|e| Error::tool(format!("writing to stdout: {e}")))?;
        if let Some(r) = &reference {
            println!(
                "platform: built from {} (its own defects included; every other service it declares answers on its address)",
                r.config_dir.display()
            );
        }
        wait_for_stop().await;
        handle.shutdown();
        Ok(0)
    })
}
