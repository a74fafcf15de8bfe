//! Proxmox firewall files as deployed against what the platform's scripts write
//! (`cluster.fw`: hypervisor_feature_setup_firewall.sh; `<vmid>.fw`: vm-manager.sh).

use super::catalog;
use super::compare::{Artefact, Ctx, Drift, Unreadable, CLUSTER_FW_SCRIPT, VM_FW_SCRIPT};
use super::pvefw;
use super::source::{FileRead, FileSource};
use crate::model::{render, FwScope, Intended};
use crate::observe::VantageRef;
use std::collections::HashMap;

/// Is `line` a rule in the form the platform's scripts write (`IN|OUT ACTION ...`)?
fn generator_rule(line: &str) -> bool {
    let mut w = line.split_whitespace();
    matches!(w.next(), Some("IN" | "OUT"))
        && w.next()
            .is_some_and(|a| a.chars().all(|c| c.is_ascii_uppercase()))
}

pub(crate) fn firewall(
    m: &Intended,
    src: &dyn FileSource,
    ctx: &Ctx,
    arts: &mut Vec<Artefact>,
    out: &mut Vec<Drift>,
) {
    let v = VantageRef::Host;
    let files: Vec<&crate::model::FwFile> = m.firewall.files().collect();
    let paths: Vec<String> = files
        .iter()
        .map(|f| format!("/etc/pve/firewall/{}.fw", f.name))
        .collect();
    let mut a = Artefact {
        name: "firewall",
        vantage: v.to_string(),
        files: vec![],
        missing: vec![],
        unreadable: vec![],
        skipped: None,
    };
    for (f, read) in files.iter().zip(src.read(v, &paths)) {
        let script = match f.scope {
            FwScope::Cluster => CLUSTER_FW_SCRIPT,
            _ => VM_FW_SCRIPT,
        };
        match read {
            FileRead::Text { path, text, mtime } => {
                a.files.push(path.clone());
                let deployed = pvefw::parse(&path, &text);
                if let Some(d) = file_drift(
                    f,
                    &deployed,
                    &path,
                    ctx.looks(mtime, deployed.rules.iter().all(|(r, _)| generator_rule(r))),
                    script,
                ) {
                    out.push(d);
                }
            }
            FileRead::Missing { path } => {
                a.missing.push(path.clone());
                out.push(Drift {
                    code: catalog::FIREWALL,
                    title: format!("{path} does not exist"),
                    expected: format!("{} rules written by {script}", f.rules.len()),
                    actual: format!("{v}: {path} does not exist: Proxmox applies no rules of it"),
                    vantage: v,
                    deployed: None,
                    looks: (
                        super::Looks::GeneratorNotRerun,
                        "the file was never written".into(),
                    ),
                    regenerate: script,
                    prov: f
                        .rules
                        .first()
                        .map(|r| r.prov.clone())
                        .into_iter()
                        .collect(),
                    subject: f.name.clone(),
                });
            }
            FileRead::Unreadable { path, why } => a.unreadable.push(Unreadable { path, why }),
        }
    }
    arts.push(a);
}

/// The first difference of one file, in file order: rules the script writes that are not
/// deployed, and deployed rules it does not write (as multisets), then `enable`.
fn file_drift(
    f: &crate::model::FwFile,
    d: &pvefw::FwDeployed,
    path: &str,
    looks: (super::Looks, String),
    script: &'static str,
) -> Option<Drift> {
    let v = VantageRef::Host;
    let text = render::fw_file(f);
    let want = pvefw::parse("", &text);
    let mut left: HashMap<&str, usize> = HashMap::new();
    for (r, _) in &want.rules {
        *left.entry(r.as_str()).or_default() += 1;
    }
    let mut extra = Vec::new();
    for (r, at) in &d.rules {
        match left.get_mut(r.as_str()) {
            Some(n) if *n > 0 => *n -= 1,
            _ => extra.push((r, at)),
        }
    }
    let mut missing: Vec<(usize, &String)> = Vec::new();
    for (i, (r, _)) in want.rules.iter().enumerate() {
        if let Some(n) = left.get_mut(r.as_str()) {
            if *n > 0 {
                *n -= 1;
                missing.push((i, r));
            }
        }
    }
    let enable_want = want.option("enable").map(|x| x.0);
    let enable_have = d.option("enable");
    let enable_differs = enable_want.is_some() && enable_want != enable_have.map(|x| x.0);
    if extra.is_empty() && missing.is_empty() && !enable_differs {
        return None;
    }
    let prov_of = |i: usize| f.rules.get(i).map(|r| r.prov.clone());
    let deployed = extra
        .first()
        .map(|(r, at)| ((*at).clone(), (*r).clone()))
        .or_else(|| enable_have.map(|(val, at)| (at.clone(), format!("enable: {val}"))));
    let mut prov: Vec<_> = missing
        .iter()
        .filter_map(|(i, _)| prov_of(*i))
        .take(3)
        .collect();
    if prov.is_empty() {
        prov.extend(f.rules.first().map(|r| r.prov.clone()));
    }
    let mut actual = Vec::new();
    if let Some((r, at)) = extra.first() {
        actual.push(format!(
            "{v} {at}: `{r}` is not written by the script ({} such rules)",
            extra.len()
        ));
    }
    if let Some((_, r)) = missing.first() {
        actual.push(format!(
            "`{r}` is not deployed ({} such rules)",
            missing.len()
        ));
    }
    if enable_differs {
        actual.push(format!(
            "[OPTIONS] enable: {} (the script writes {})",
            enable_have.map(|x| x.0).unwrap_or("(absent)"),
            enable_want.unwrap_or_default()
        ));
    }
    Some(Drift {
        code: catalog::FIREWALL,
        title: format!(
            "{path} differs from what {} writes",
            script.split(' ').next().unwrap_or(script)
        ),
        expected: format!(
            "{} rules as `phoenix-doctor show firewall --file {}` prints them",
            want.rules.len(),
            f.name
        ),
        actual: actual.join("; "),
        vantage: v,
        deployed,
        looks,
        regenerate: script,
        prov,
        subject: f.name.clone(),
    })
}
