//! `plan`, `lint`, `show`: commands that read the configs and send nothing.

use crate::cli::{GlobalArgs, PlanArgs, ShowArgs, ShowWhat};
use crate::error::{Error, Result};
use crate::model::{self, render, Intended};
use std::io::Write;

/// Read the config dir named by the global options and derive the intended state.
pub fn load_model(g: &GlobalArgs) -> Result<Intended> {
    model::load(&g.config_dir, g.stacks_dir.as_deref())
}

fn out(text: &str) -> Result<u8> {
    let mut o = std::io::stdout().lock();
    o.write_all(text.as_bytes())
        .and_then(|_| o.flush())
        .map_err(|e| Error::tool(format!("writing to stdout: {e}")))?;
    Ok(0)
}

pub fn plan(_g: &GlobalArgs, _a: &PlanArgs) -> Result<u8> {
    Err(Error::tool("plan: not built yet"))
}

pub fn lint(g: &GlobalArgs) -> Result<u8> {
    super::lint_cmd::lint(g)
}

/// Render what the model derives, in the platform's own formats.
pub fn show_text(m: &Intended, a: &ShowArgs) -> Result<String> {
    if a.file.is_some() && a.what != ShowWhat::Firewall {
        return Err(Error::input("--file applies to `show firewall` only"));
    }
    match a.what {
        ShowWhat::Dns => Ok(render::dnsmasq(m)),
        ShowWhat::Routes => Ok(render::traefik_dynamic(m)),
        ShowWhat::Firewall => render::firewall(m, a.file.as_deref()),
    }
}

pub fn show(g: &GlobalArgs, a: &ShowArgs) -> Result<u8> {
    let m = load_model(g)?;
    out(&show_text(&m, a)?)
}
