//! `demo`: start the built-in lab with one of the platform's real faults, trace it, print the
//! report and how to explore further.

use super::lab::{list_faults, parse_faults, StopSignals};
use super::trace::{emit, run_targets};
use crate::cli::{DemoArgs, GlobalArgs, RunArgs};
use phoenix_doctor::error::{Error, Result};
use phoenix_doctor::lab::{Fault, Lab, LabSpec};

/// The seeds' own failure: LXC 102's /etc/hosts pins portainer.internal.thinkheads.ai to the
/// old Portainer address, invisible from the host.
/// Like `eprintln!`, but a closed stderr (`demo 2>&1 | head`) is not an error.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

const DEFAULT_FAULT: Fault = Fault::HostsOverride;

pub fn demo(g: &GlobalArgs, a: &DemoArgs) -> Result<u8> {
    if a.list_faults {
        list_faults(g, &mut super::stdout())?;
        return Ok(0);
    }
    if a.healthy && !a.faults.is_empty() {
        return Err(Error::input(
            "demo: --healthy and --fault exclude each other",
        ));
    }
    let faults = if a.healthy {
        Vec::new()
    } else if a.faults.is_empty() {
        vec![DEFAULT_FAULT]
    } else {
        parse_faults(&a.faults)?
    };
    let dir = tempfile::Builder::new()
        .prefix("phoenix-doctor-demo-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()
        .map_err(|e| Error::tool(format!("creating a temp dir for the lab: {e}")))?;
    let spec = LabSpec {
        dir: Some(dir.path().to_path_buf()),
        faults: faults.clone(),
        net: 0,
    };
    let rt = super::runtime()?;
    // A signal at any point from here removes the lab's directory (with its private keys)
    // before the process exits with 128 + the signal's number.
    let mut stop = {
        let _in_rt = rt.enter();
        StopSignals::register()?
    };
    let doomed = dir.path().to_path_buf();
    rt.spawn(async move {
        let n = stop.recv().await;
        let _ = std::fs::remove_dir_all(&doomed);
        note!(
            "phoenix-doctor demo: interrupted; removed {}",
            doomed.display()
        );
        std::process::exit(128 + n);
    });
    let lab = rt.block_on(Lab::start(&spec))?;
    let names: Vec<&str> = faults.iter().map(|f| f.name()).collect();
    note!(
        "phoenix-doctor demo: simulated Phoenix platform on {} started in {} ms; fault: {}",
        lab.addrs().net(),
        lab.startup_time().as_millis(),
        if names.is_empty() {
            "none (healthy)".to_string()
        } else {
            names.join(", ")
        }
    );
    note!("tracing {} ...\n", a.target);

    let lab_g = GlobalArgs {
        config_dir: lab.config_dir().to_path_buf(),
        stacks_dir: Some(lab.stacks_dir().to_path_buf()),
        ..g.clone()
    };
    let run = RunArgs {
        scope: lab.scope().allowed.clone(),
        timeout: std::time::Duration::from_secs(1),
        budget: std::time::Duration::from_secs(20),
        concurrency: 64,
        warn_days: phoenix_doctor::probe::tls::DEFAULT_WARN_DAYS,
        vantage: None,
        via: Vec::new(),
        agent_path: "phoenix-doctor".into(),
        push: false,
        save_run: None,
        force: false,
        replay: None,
        wait: None,
        interval: std::time::Duration::from_secs(2),
        deployed: Some(lab.deployed_dir().to_path_buf()),
    };
    let reports = run_targets(&lab_g, std::slice::from_ref(&a.target), &run);
    let code = reports.and_then(|r| emit(&lab_g, &r));
    lab.shutdown();
    drop(rt);
    let code = code?;
    let fault_flags: String = names.iter().map(|n| format!(" --fault {n}")).collect();
    note!();
    note!("Explore further:");
    note!("  phoenix-doctor demo --list-faults            # the platform's real failures the lab can inject");
    note!("  phoenix-doctor demo --fault backend-tls      # another one (or --healthy)");
    note!("  phoenix-doctor demo --format mermaid         # the hops as a sequence diagram (also json, junit, prometheus)");
    note!("  phoenix-doctor explain PD-DNS-003            # what a finding means and how to confirm it by hand");
    note!("  phoenix-doctor lab --dir /tmp/phx-lab{fault_flags}   # keep the lab running, then:");
    note!("  phoenix-doctor plan qdrant --config-dir /tmp/phx-lab/etc");
    note!("  phoenix-doctor trace qdrant --config-dir /tmp/phx-lab/etc");
    Ok(code)
}
