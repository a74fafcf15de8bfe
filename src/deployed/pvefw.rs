//! Proxmox firewall files as deployed (`/etc/pve/firewall/cluster.fw`, `<vmid>.fw`): the
//! `[OPTIONS]` values and the `[RULES]` lines, each with its line number.

use super::At;

/// One parsed firewall file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FwDeployed {
    /// `[OPTIONS]` keys (lower-cased) → value and line.
    pub options: Vec<(String, String, At)>,
    /// `[RULES]` lines as written (trimmed, inner whitespace collapsed), with their line.
    pub rules: Vec<(String, At)>,
}

impl FwDeployed {
    /// An option's value.
    pub fn option(&self, key: &str) -> Option<(&str, &At)> {
        self.options
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, v, a)| (v.as_str(), a))
    }
}

/// Collapse runs of blanks to one space, keeping the comment as written.
pub fn normalise_rule(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Parse a `.fw` file. Sections other than OPTIONS and RULES (IPSET, ALIASES, group) are kept
/// out; lines before any section are ignored, as `pve-firewall` does with a warning.
pub fn parse(file: &str, text: &str) -> FwDeployed {
    #[derive(PartialEq)]
    enum Sec {
        None,
        Options,
        Rules,
        Other,
    }
    let mut sec = Sec::None;
    let mut out = FwDeployed::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            sec = match line.to_ascii_uppercase().as_str() {
                "[OPTIONS]" => Sec::Options,
                "[RULES]" => Sec::Rules,
                _ => Sec::Other,
            };
            continue;
        }
        let at = At::new(file, i + 1);
        match sec {
            Sec::Options => {
                if let Some((k, v)) = line.split_once(':') {
                    out.options
                        .push((k.trim().to_ascii_lowercase(), v.trim().to_string(), at));
                }
            }
            Sec::Rules => out.rules.push((normalise_rule(line), at)),
            Sec::None | Sec::Other => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_options_and_rules_with_lines() {
        let text = "[OPTIONS]\nenable: 1\npolicy_in:DROP\n\n[RULES]\nIN ACCEPT  -p tcp -dport 443 # a  b\n# comment\n[IPSET x]\n10.0.0.1\n";
        let f = parse("cluster.fw", text);
        assert_eq!(f.option("enable").map(|x| x.0), Some("1"));
        assert_eq!(f.option("policy_in").map(|x| x.1.line), Some(3));
        assert_eq!(f.rules.len(), 1);
        assert_eq!(f.rules[0].0, "IN ACCEPT -p tcp -dport 443 # a b");
        assert_eq!(f.rules[0].1.line, 6);
    }
}
