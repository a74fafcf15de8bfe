//! `man`: the manual, as one page on stdout (naming no other page) or as one page per
//! subcommand written into a new directory.

use crate::cli::{Cli, ManArgs};
use clap::CommandFactory;
use phoenix_doctor::error::{Error, Result};
use phoenix_doctor::fsutil::{write_atomic, Existing};
use std::path::Path;

/// The built command tree (display names `phoenix-doctor-probe-dns` set), without `help`.
fn command() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

fn man_err(e: std::io::Error) -> Error {
    Error::tool(format!("rendering the man page: {e}"))
}

/// Escape text for a roff line: backslashes, hyphens (so they are not hyphenation points) and
/// a leading control character.
fn roff_text(s: &str) -> String {
    let t = s.replace('\\', "\\e").replace('-', "\\-");
    if t.starts_with('.') || t.starts_with('\'') {
        format!("\\&{t}")
    } else {
        t
    }
}

/// The single page for stdout: clap_mangen's sections, but the subcommands are listed as
/// commands (`phoenix-doctor trace`), not as pages that were never installed.
pub fn single_page() -> Result<String> {
    let cmd = command();
    let man = clap_mangen::Man::new(cmd.clone());
    let mut out: Vec<u8> = Vec::new();
    man.render_title(&mut out).map_err(man_err)?;
    man.render_name_section(&mut out).map_err(man_err)?;
    man.render_synopsis_section(&mut out).map_err(man_err)?;
    man.render_description_section(&mut out).map_err(man_err)?;
    man.render_options_section(&mut out).map_err(man_err)?;
    let mut text = String::from_utf8_lossy(&out).into_owned();
    text.push_str(".SH SUBCOMMANDS\n");
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        text.push_str(".TP\n");
        text.push_str(&format!(
            "\\fB{}\\fR\n",
            roff_text(&format!("phoenix-doctor {}", sub.get_name()))
        ));
        if let Some(about) = sub.get_about() {
            for line in about.to_string().lines() {
                text.push_str(&roff_text(line));
                text.push('\n');
            }
        }
    }
    text.push_str(".PP\n");
    text.push_str(&roff_text(
        "`phoenix-doctor <command> --help` describes each command; `phoenix-doctor man --dir DIR` writes one page per command.",
    ));
    text.push('\n');
    let mut rest: Vec<u8> = Vec::new();
    man.render_extra_section(&mut rest).map_err(man_err)?;
    man.render_version_section(&mut rest).map_err(man_err)?;
    text.push_str(&String::from_utf8_lossy(&rest));
    Ok(text)
}

/// Every page: `(file name, roff)` for the command and each visible subcommand, recursively.
pub fn pages() -> Result<Vec<(String, String)>> {
    fn walk(cmd: &clap::Command, out: &mut Vec<(String, String)>) -> Result<()> {
        let man = clap_mangen::Man::new(cmd.clone());
        let mut buf = Vec::new();
        man.render(&mut buf).map_err(man_err)?;
        out.push((
            man.get_filename(),
            String::from_utf8_lossy(&buf).into_owned(),
        ));
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            walk(sub, out)?;
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(&command(), &mut out)?;
    Ok(out)
}

/// Create `dir` (or take it if it exists and is empty) and write every page into it.
fn write_pages(dir: &Path) -> Result<Vec<String>> {
    match std::fs::symlink_metadata(dir) {
        Ok(m) if !m.is_dir() => {
            return Err(Error::input(format!(
                "man --dir {}: exists and is not a directory",
                dir.display()
            )))
        }
        Ok(_) => {
            let mut entries = std::fs::read_dir(dir)
                .map_err(|e| Error::input(format!("man --dir {}: {e}", dir.display())))?;
            if entries.next().is_some() {
                return Err(Error::input(format!(
                    "man --dir {}: the directory is not empty; name a new or empty directory",
                    dir.display()
                )));
            }
        }
        Err(_) => std::fs::create_dir_all(dir)
            .map_err(|e| Error::tool(format!("creating {}: {e}", dir.display())))?,
    }
    let mut names = Vec::new();
    for (name, text) in pages()? {
        write_atomic(&dir.join(&name), text.as_bytes(), Existing::Refuse, 0o644)
            .map_err(|e| Error::tool(format!("writing {}: {e}", dir.join(&name).display())))?;
        names.push(name);
    }
    Ok(names)
}

pub fn man(a: &ManArgs) -> Result<u8> {
    match &a.dir {
        None => super::print(&single_page()?)?,
        Some(dir) => {
            let names = write_pages(dir)?;
            super::print(&format!(
                "wrote {} pages to {}: {}\n",
                names.len(),
                dir.display(),
                names.join(" ")
            ))?;
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roff_escapes_hyphens_backslashes_and_leading_dots() {
        assert_eq!(roff_text("a-b"), "a\\-b");
        assert_eq!(roff_text(".x\\y"), "\\&.x\\ey");
    }

    #[test]
    fn every_subcommand_page_is_named_after_its_command() {
        let names: Vec<String> = pages().unwrap().into_iter().map(|(n, _)| n).collect();
        assert!(names.contains(&"phoenix-doctor.1".to_string()));
        assert!(names.contains(&"phoenix-doctor-trace.1".to_string()));
        assert!(names.contains(&"phoenix-doctor-probe-dns.1".to_string()));
        assert!(!names.iter().any(|n| n.contains("help")), "{names:?}");
    }
}
