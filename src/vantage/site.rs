//! Simulated vantages from the site file (`<config-dir>/phoenix-doctor.toml`, read by `config::site`, tables
//! `[vantage."lxc:102"]`): run here, but read the given files as the guest's system files.

use crate::config::site::{self, SiteFile};
use crate::error::{Error, Result};
use crate::fsutil::{read_bounded_string, FileKind};
use crate::plan::VantageRef;
use crate::probe::SystemFiles;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The site file's name inside the config dir.
pub const SITE_FILE: &str = crate::config::SITE_FILE;

/// The simulated vantages named in `<config_dir>/phoenix-doctor.toml` (none when the file is
/// absent). Relative paths are taken from the config dir; a missing key keeps the system default.
pub fn site_vantages(config_dir: &Path) -> Result<BTreeMap<VantageRef, SystemFiles>> {
    Ok(site_simulated(config_dir)?.0)
}

/// The simulated vantages of `<config_dir>/phoenix-doctor.toml` and the root directories that
/// stand for their `/` (`root = ...`) when files are read from them.
pub fn site_simulated(config_dir: &Path) -> Result<(BTreeMap<VantageRef, SystemFiles>, Roots)> {
    let path = config_dir.join(SITE_FILE);
    let text = match read_bounded_string(&path, FileKind::SiteFile) {
        Ok(t) => t,
        Err(e) if e.is_not_found() => return Ok(Default::default()),
        Err(e) => return Err(Error::input(format!("cannot read {e}"))),
    };
    let file = site::read(&path.display().to_string(), &text)?;
    Ok((
        from_site_file(&file, config_dir)?,
        roots(&file, config_dir)?,
    ))
}

/// Per simulated vantage, the directory that stands for its `/`.
pub type Roots = BTreeMap<VantageRef, PathBuf>;

/// The `root = ...` of each `[vantage."..."]` (relative to `config_dir`).
pub fn roots(file: &SiteFile, config_dir: &Path) -> Result<Roots> {
    let name = file.file.clone().unwrap_or_else(|| SITE_FILE.to_string());
    let mut out = BTreeMap::new();
    for (key, t) in &file.vantages {
        let Some(root) = &t.root else { continue };
        let v: VantageRef = key
            .parse()
            .map_err(|e| Error::input(format!("{name}: [vantage.\"{key}\"]: {e}")))?;
        out.insert(v, abs(config_dir, &root.value));
    }
    Ok(out)
}

fn abs(config_dir: &Path, p: &str) -> PathBuf {
    let p = PathBuf::from(p);
    if p.is_absolute() {
        p
    } else {
        config_dir.join(p)
    }
}

/// The simulated vantages of an already-read site file (`config::load(..).site`); relative
/// paths are taken from `config_dir`.
pub fn from_site_file(
    file: &SiteFile,
    config_dir: &Path,
) -> Result<BTreeMap<VantageRef, SystemFiles>> {
    let name = file.file.clone().unwrap_or_else(|| SITE_FILE.to_string());
    let mut out = BTreeMap::new();
    for (key, t) in &file.vantages {
        let v: VantageRef = key
            .parse()
            .map_err(|e| Error::input(format!("{name}: [vantage.\"{key}\"]: {e}")))?;
        if t.hosts_file.is_none() && t.resolv_conf.is_none() && t.root.is_none() {
            return Err(Error::input(format!(
                "{name}: [vantage.\"{key}\"]: expected `hosts_file`, `resolv_conf` and/or `root`"
            )));
        }
        // Without its own entry, a system file is the root's (or this machine's).
        let d = match &t.root {
            Some(r) => {
                let r = abs(config_dir, &r.value);
                SystemFiles {
                    hosts_file: r.join("etc/hosts"),
                    resolv_conf: r.join("etc/resolv.conf"),
                }
            }
            None => SystemFiles::default(),
        };
        let abs = |p: &str| abs(config_dir, p);
        out.insert(
            v,
            SystemFiles {
                hosts_file: t
                    .hosts_file
                    .as_ref()
                    .map(|x| abs(&x.value))
                    .unwrap_or(d.hosts_file),
                resolv_conf: t
                    .resolv_conf
                    .as_ref()
                    .map(|x| abs(&x.value))
                    .unwrap_or(d.resolv_conf),
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_site_vantages(
        text: &str,
        path: &Path,
        base: &Path,
    ) -> Result<BTreeMap<VantageRef, SystemFiles>> {
        let file = site::read(&path.display().to_string(), text)?;
        from_site_file(&file, base)
    }

    #[test]
    fn a_root_stands_for_the_guests_slash() {
        let text = "[vantage.\"lxc:101\"]\nroot = \"v/lxc-101\"\n[vantage.\"lxc:102\"]\nroot = \"/r\"\nhosts_file = \"/h\"\n";
        let file = site::read("/c/phoenix-doctor.toml", text).unwrap();
        let r = roots(&file, Path::new("/c")).unwrap();
        assert_eq!(r[&VantageRef::Lxc(101)], PathBuf::from("/c/v/lxc-101"));
        assert_eq!(r[&VantageRef::Lxc(102)], PathBuf::from("/r"));
        let m = from_site_file(&file, Path::new("/c")).unwrap();
        let l = &m[&VantageRef::Lxc(101)];
        assert_eq!(l.hosts_file, PathBuf::from("/c/v/lxc-101/etc/hosts"));
        assert_eq!(l.resolv_conf, PathBuf::from("/c/v/lxc-101/etc/resolv.conf"));
        // The vantage's own entry wins over the root's file.
        assert_eq!(m[&VantageRef::Lxc(102)].hosts_file, PathBuf::from("/h"));
        assert_eq!(
            m[&VantageRef::Lxc(102)].resolv_conf,
            PathBuf::from("/r/etc/resolv.conf")
        );
    }

    #[test]
    fn reads_vantage_tables_and_ignores_the_rest() {
        let text = r#"
[ports]
dns = 53
[paths]
root_ca = "/x/root.crt"
[vantage."lxc:102"]
hosts_file = "/tmp/lab/vantages/lxc-102/hosts"
resolv_conf = "v/resolv.conf"
[vantage."vm:1001"]
hosts_file = "/h"
"#;
        let m = parse_site_vantages(text, Path::new("/c/phoenix-doctor.toml"), Path::new("/c"))
            .unwrap();
        assert_eq!(m.len(), 2);
        let l = &m[&VantageRef::Lxc(102)];
        assert_eq!(
            l.hosts_file,
            PathBuf::from("/tmp/lab/vantages/lxc-102/hosts")
        );
        assert_eq!(l.resolv_conf, PathBuf::from("/c/v/resolv.conf"));
        assert_eq!(
            m[&VantageRef::Vm(1001)].resolv_conf,
            PathBuf::from("/etc/resolv.conf")
        );
    }

    #[test]
    fn bad_tables_name_the_file() {
        let p = Path::new("/c/phoenix-doctor.toml");
        let e = parse_site_vantages(
            "[vantage.\"ct:1\"]\nhosts_file=\"/h\"\n",
            p,
            Path::new("/c"),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("phoenix-doctor.toml") && e.to_string().contains("lxc:<id>"),
            "{e}"
        );
        let e = parse_site_vantages(
            "[vantage.\"lxc:1\"]\nhost_file=\"/h\"\n",
            p,
            Path::new("/c"),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains(":2") && e.to_string().contains("host_file"),
            "{e}"
        );
        assert_eq!(e.kind(), crate::error::Kind::Input);
    }

    #[test]
    fn absent_file_means_no_simulated_vantages() {
        let d = tempfile::tempdir().unwrap();
        assert!(site_vantages(d.path()).unwrap().is_empty());
        std::fs::write(
            d.path().join(SITE_FILE),
            "[vantage.\"lxc:7\"]\nhosts_file = \"h\"\n",
        )
        .unwrap();
        let m = site_vantages(d.path()).unwrap();
        assert_eq!(m[&VantageRef::Lxc(7)].hosts_file, d.path().join("h"));
    }
}
