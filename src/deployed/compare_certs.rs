//! The gateway site's `ssl_certificate` and `ssl_certificate_key` paths against the
//! certificate-manifest.json entry the renewal writes for the gateway LXC: the manifest's host
//! paths (`cert_path`, `key_path`) seen through the LXC's mount points. Paths only: a key file
//! is never read.

use super::catalog;
use super::compare::{Ctx, Drift, GATEWAY_SCRIPT};
use super::{nginx, Loaded};
use crate::config::Val;
use crate::finding::{Finding, Severity};
use crate::model::stacks::Cert;
use crate::model::Intended;
use crate::observe::VantageRef;

pub use crate::model::Mount;

/// Where `guest` sees the host file `host`, through the longest mount that holds it.
fn in_guest(mounts: &[Mount], guest: VantageRef, host: &str) -> Option<String> {
    mounts
        .iter()
        .filter(|m| m.guest == guest)
        .filter_map(|m| {
            let base = m.host_path.trim_end_matches('/');
            let rest = host.strip_prefix(base)?;
            (rest.starts_with('/')).then(|| {
                (
                    base.len(),
                    m.container_path.trim_end_matches('/').to_string() + rest,
                )
            })
        })
        .max_by_key(|(n, _)| *n)
        .map(|(_, p)| p)
}

/// The manifest entry the gateway serves: kept in the gateway LXC's persistent data, and naming
/// the first name of its TLS server when there are several.
fn gateway_entry<'a>(m: &'a Intended, guest: VantageRef, name: &str) -> Option<&'a Cert> {
    let mine: Vec<&Cert> = m.certs.iter().filter(|c| c.guest == Some(guest)).collect();
    match mine.as_slice() {
        [one] => Some(one),
        many => many
            .iter()
            .find(|c| crate::model::stacks::san_covers(&c.effective_sans, name))
            .copied(),
    }
}

/// The gateway site's certificate and key paths against the manifest's, for the server NGINX
/// picks for the gateway's first name on its TLS port. Nothing is compared when the manifest's
/// file is not under one of the LXC's mount points (the container cannot see it at any path:
/// a config matter, not a deployed one).
pub(crate) fn gateway_cert_paths(
    m: &Intended,
    loaded: &Loaded<nginx::Site>,
    ctx: &Ctx,
) -> Vec<Drift> {
    let mut out = Vec::new();
    let Some(gw) = &m.gateway else {
        return out;
    };
    let v = VantageRef::Lxc(gw.lxc);
    let Some(name) = gw.server_names.first() else {
        return out;
    };
    let Some(server) = loaded.value.server_for(name, gw.listen.value) else {
        return out; // no TLS server: the gateway comparison reports it
    };
    let Some(cert) = gateway_entry(m, v, name) else {
        return out;
    };
    let pairs = [
        (
            "ssl_certificate",
            "cert_path",
            &server.ssl_certificate,
            &cert.cert_path,
        ),
        (
            "ssl_certificate_key",
            "key_path",
            &server.ssl_certificate_key,
            &cert.key_path,
        ),
    ];
    for (directive, key, deployed, manifest) in pairs {
        let Some(Val { value: host, prov }) = manifest else {
            continue;
        };
        let Some(want) = in_guest(&ctx.mounts, v, host) else {
            continue;
        };
        let (actual, at) = match deployed {
            Some((p, _)) if *p == want => continue,
            Some((p, at)) => (format!("{v} {at}: {directive} {p};"), Some(at.clone())),
            None => (
                format!("the TLS server for {name} has no {directive} directive"),
                server.at.clone(),
            ),
        };
        let text = deployed
            .as_ref()
            .map(|(p, _)| format!("{directive} {p};"))
            .unwrap_or_else(|| "server { ... }".to_string());
        let looks = ctx.looks(at.as_ref().and_then(|a| loaded.mtime(&a.file)), false);
        out.push(Drift {
            code: catalog::GATEWAY_CERT_PATH,
            title: format!(
                "gateway site's {directive} is not the file certificate-renewal-manager.sh renews"
            ),
            expected: format!("{directive} {want}; (the manifest's {key} {host}, mounted in {v})"),
            actual,
            vantage: v,
            deployed: at.map(|a| (a, text)),
            looks,
            regenerate: GATEWAY_SCRIPT,
            prov: vec![prov.clone(), cert.prov.clone()],
            subject: name.clone(),
        });
    }
    out
}

/// The certificate files the manifest names, read on the host: one finding per file with less
/// life left than its threshold (`--warn-days`, or 40% of a short life): a warning, an error
/// once expired. A file that does not exist or holds no certificate is listed, not judged.
pub(crate) fn cert_files(
    m: &Intended,
    src: &dyn super::FileSource,
    ctx: &Ctx,
    arts: &mut Vec<super::Artefact>,
) -> Vec<Finding> {
    let paths: Vec<(&Cert, &Val<String>)> = m
        .certs
        .iter()
        .filter_map(|c| Some((c, c.cert_path.as_ref()?)))
        .collect();
    if paths.is_empty() {
        return Vec::new();
    }
    let v = VantageRef::Host;
    let mut loaded: Loaded<()> = Loaded::default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut out = Vec::new();
    for (c, p) in paths {
        let read = src.read(v, std::slice::from_ref(&p.value));
        let Some(text) = read.into_iter().next().and_then(|f| loaded.take(f)) else {
            continue;
        };
        let Some((s, left, below)) = crate::probe::tls::pem_life(&text, ctx.warn_days, now) else {
            continue;
        };
        if left >= below {
            continue;
        }
        let expired = left < 0;
        let life = crate::observe::remaining_life(left);
        let mut f = Finding::new(
            catalog::CERT_FILE_LIFE,
            if expired { Severity::Error } else { Severity::Warning },
            if expired {
                format!("{}: the certificate file on disk expired {life} ago", c.common_name.value)
            } else {
                format!("{}: the certificate file on disk expires in {life}", c.common_name.value)
            },
        )
        .expected(format!(
            "{} renewed by certificate-renewal-manager.sh: more than {} left",
            p.value,
            crate::observe::remaining_life(below)
        ))
        .actual(format!(
            "{v} {}: sha256 {} valid {} .. {}",
            p.value,
            s.sha256.get(..16).unwrap_or(&s.sha256),
            s.not_before,
            s.not_after
        ))
        .hint("Run certificate-renewal-manager.sh --force and fix what stops the hourly renewal; then the entry's post_renewal_command.")
        .provenance(vec![p.prov.clone(), c.prov.clone()])
        .subject(c.common_name.value.clone());
        f.layer = catalog::CERT_FILE_LIFE.layer();
        out.push(f);
    }
    let mut a = super::compare::artefact("certificates", v, &loaded);
    a.name = "certificates";
    arts.push(a);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_file_is_seen_through_the_longest_mount_of_its_guest() {
        let g = VantageRef::Lxc(101);
        let mounts = vec![
            Mount {
                guest: g,
                host_path: "/mnt/p/101".into(),
                container_path: "/srv".into(),
            },
            Mount {
                guest: g,
                host_path: "/mnt/p/101/ssl/".into(),
                container_path: "/etc/nginx/ssl".into(),
            },
            Mount {
                guest: VantageRef::Lxc(102),
                host_path: "/mnt/p/102/ssl".into(),
                container_path: "/etc/x".into(),
            },
        ];
        assert_eq!(
            in_guest(&mounts, g, "/mnt/p/101/ssl/a.crt").as_deref(),
            Some("/etc/nginx/ssl/a.crt")
        );
        assert_eq!(
            in_guest(&mounts, g, "/mnt/p/101/b").as_deref(),
            Some("/srv/b")
        );
        assert_eq!(in_guest(&mounts, g, "/mnt/p/1011/a.crt"), None);
        assert_eq!(in_guest(&mounts, g, "/mnt/p/102/ssl/a.crt"), None);
    }
}
