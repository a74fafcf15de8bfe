//! `plan`, `lint`, `show`: commands that read the configs and send nothing.

use crate::cli::{Format, GlobalArgs, PlanArgs, ShowArgs, ShowWhat};
use phoenix_doctor::error::{Error, Result};
use phoenix_doctor::model::{self, render, Intended};
use phoenix_doctor::plan;

/// Read the config dir named by the global options and derive the intended state.
pub fn load_model(g: &GlobalArgs) -> Result<Intended> {
    model::load(&g.config_dir, g.stacks_dir.as_deref())
}

fn out(text: &str, format: Format) -> Result<u8> {
    super::print_stdout(text, format, false)?;
    Ok(0)
}

/// Build the plan for `target` from the global options (config dir, probes dir).
pub fn build_plan(g: &GlobalArgs, target: &str) -> Result<phoenix_doctor::plan::Plan> {
    let m = load_model(g)?;
    let defs = plan::load_defs(g.probes.as_deref())?;
    plan::build(&m, &defs, target)
}

/// Render a plan in the requested format (table or json).
pub fn plan_text(p: &phoenix_doctor::plan::Plan, format: Format) -> Result<String> {
    match format {
        Format::Table => Ok(plan::render::table(
            p,
            phoenix_doctor::report::output_width(),
        )),
        Format::Json => super::versioned_json(p),
        other => Err(Error::input(format!(
            "plan: --format {} is not available; use table or json",
            format!("{other:?}").to_ascii_lowercase()
        ))),
    }
}

pub fn plan(g: &GlobalArgs, a: &PlanArgs) -> Result<u8> {
    let p = build_plan(g, &a.target)?;
    out(&plan_text(&p, g.format)?, g.format)
}

pub fn lint(g: &GlobalArgs, a: &crate::cli::LintArgs) -> Result<u8> {
    super::lint_cmd::lint(g, a)
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
        ShowWhat::Gateway => render::nginx_gateway(m)
            .ok_or_else(|| Error::input("show gateway: the configs name no gateway LXC")),
    }
}

/// The same facts as JSON, with the rule, provenance and enforcement behind each line.
pub fn show_json(m: &Intended, a: &ShowArgs) -> Result<String> {
    if a.file.is_some() && a.what != ShowWhat::Firewall {
        return Err(Error::input("--file applies to `show firewall` only"));
    }
    match a.what {
        ShowWhat::Dns => super::versioned_json(&m.dns),
        ShowWhat::Routes => super::versioned_json(&m.routes),
        ShowWhat::Gateway => match &m.gateway {
            Some(g) => super::versioned_json(g),
            None => Err(Error::input(
                "show gateway: the configs name no gateway LXC",
            )),
        },
        ShowWhat::Firewall => match a.file.as_deref() {
            None => super::versioned_json(&m.firewall),
            Some(f) => {
                render::firewall(m, Some(f))?;
                let want = f.trim_end_matches(".fw");
                let file = m
                    .firewall
                    .files()
                    .chain(m.firewall.lxcs.iter())
                    .find(|x| x.name == want);
                match file {
                    Some(f) => super::versioned_json(f),
                    None => Err(Error::input(format!("show firewall: no file `{f}`"))),
                }
            }
        },
    }
}

pub fn show(g: &GlobalArgs, a: &ShowArgs) -> Result<u8> {
    let m = load_model(g)?;
    match g.format {
        Format::Table => out(&show_text(&m, a)?, Format::Table),
        Format::Json => out(&show_json(&m, a)?, Format::Json),
        other => Err(Error::input(format!(
            "show: --format {} is not available; use table (the platform's file format) or json",
            format!("{other:?}").to_ascii_lowercase()
        ))),
    }
}
