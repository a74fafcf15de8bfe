//! Probe latency on loopback, one probe at a time, against in-process peers: a TCP listener, a
//! UDP DNS responder, a rustls TLS server (ECDSA chain from rcgen, optional client certificate)
//! and an HTTP/1.1 responder behind it. Prints the median, p90 and min per probe kind.
//!
//! Run: `cargo bench --bench probes`

use hickory_proto::op::Message;
use hickory_proto::rr::{rdata::A, RData, Record};
use phoenix_doctor::observe::Outcome;
use phoenix_doctor::plan::{ProbeSpec, Step, Trust, VantageRef};
use phoenix_doctor::probe::{self, ProbeCtx};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const RUNS: usize = 200;

fn step(spec: ProbeSpec) -> Step {
    Step {
        id: "bench".into(),
        hop: "bench".into(),
        from: VantageRef::Host,
        to: "peer".into(),
        layer: spec.layer(),
        probe: spec,
        expect: String::new(),
        provenance: vec![],
        depends_on: vec![],
        through: vec![],
    }
}

async fn dns_responder(addr: &str) {
    let sock = tokio::net::UdpSocket::bind(addr).await.unwrap();
    tokio::spawn(async move {
        let mut b = vec![0u8; 512];
        while let Ok((n, from)) = sock.recv_from(&mut b).await {
            let q = Message::from_vec(&b[..n]).unwrap();
            let mut r = Message::response(q.metadata.id, q.metadata.op_code);
            r.add_queries(q.queries.clone());
            let name = q.queries[0].name().clone();
            r.add_answer(Record::from_rdata(
                name,
                300,
                RData::A(A::new(127, 0, 0, 10)),
            ));
            let _ = sock.send_to(&r.to_vec().unwrap(), from).await;
        }
    });
}

async fn tls_http_server(addr: &str, cfg: rustls::ServerConfig) {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let l = tokio::net::TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let a = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut t) = a.accept(s).await {
                    let mut b = [0u8; 2048];
                    if t.read(&mut b).await.unwrap_or(0) > 0 {
                        let _ = t
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
                            .await;
                        let _ = t.shutdown().await;
                    }
                }
            });
        }
    });
}

fn report(name: &str, mut v: Vec<f64>) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{name:<6} n={:<4} median {:>7.3} ms  p90 {:>7.3} ms  min {:>7.3} ms",
        v.len(),
        v[v.len() / 2],
        v[v.len() * 9 / 10],
        v[0]
    );
}

async fn measure(name: &str, ctx: &ProbeCtx, spec: ProbeSpec) {
    let s = step(spec);
    let first = probe::run(ctx, &s).await;
    assert_eq!(first.outcome, Outcome::Ok, "{name}: {first:?}");
    let mut v = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let t = Instant::now();
        let o = probe::run(ctx, &s).await;
        v.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(o.outcome, Outcome::Ok, "{name}: {o:?}");
    }
    report(name, v);
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        // root -> leaf, ECDSA P-256
        let root_key = rcgen::KeyPair::generate().unwrap();
        let mut rp = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        rp.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        rp.distinguished_name
            .push(rcgen::DnType::CommonName, "Bench Root CA");
        let root = rp.self_signed(&root_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let lp = rcgen::CertificateParams::new(vec!["bench.example.test".to_string()]).unwrap();
        let leaf = lp.signed_by(&leaf_key, &root, &root_key).unwrap();
        let client_key = rcgen::KeyPair::generate().unwrap();
        let cp = rcgen::CertificateParams::new(vec!["bench-client".to_string()]).unwrap();
        let client = cp.signed_by(&client_key, &root, &root_key).unwrap();
        let ca_file = dir.path().join("root.crt");
        std::fs::write(&ca_file, root.pem()).unwrap();
        std::fs::write(dir.path().join("client.crt"), client.pem()).unwrap();
        std::fs::write(dir.path().join("client.key"), client_key.serialize_pem()).unwrap();

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain: Vec<CertificateDer<'static>> = vec![leaf.der().clone()];
        let key = || PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let plain = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain.clone(), key())
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(root.der().clone()).unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .unwrap();
        let mutual = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key())
            .unwrap();

        dns_responder("127.0.55.1:5355").await;
        tls_http_server("127.0.55.2:8443", plain).await;
        tls_http_server("127.0.55.3:8443", mutual).await;
        let tcp = tokio::net::TcpListener::bind("127.0.55.4:7000")
            .await
            .unwrap();
        tokio::spawn(async move { while tcp.accept().await.is_ok() {} });

        let ctx = ProbeCtx {
            timeout: Duration::from_secs(2),
            ..ProbeCtx::default()
        };
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let trust = Trust::Ca {
            file: ca_file.clone(),
        };
        measure(
            "dns",
            &ctx,
            ProbeSpec::Dns {
                name: "bench.example.test".into(),
                server: a("127.0.55.1:5355"),
                expect: vec![],
                system: false,
            },
        )
        .await;
        measure(
            "tcp",
            &ctx,
            ProbeSpec::Tcp {
                addr: a("127.0.55.4:7000"),
            },
        )
        .await;
        measure(
            "tls",
            &ctx,
            ProbeSpec::Tls {
                addr: a("127.0.55.2:8443"),
                sni: "bench.example.test".into(),
                trust: trust.clone(),
            },
        )
        .await;
        measure(
            "mtls",
            &ctx,
            ProbeSpec::Mtls {
                addr: a("127.0.55.3:8443"),
                sni: "bench.example.test".into(),
                trust: trust.clone(),
                identity: Some(phoenix_doctor::plan::Identity {
                    cert: dir.path().join("client.crt"),
                    key: dir.path().join("client.key"),
                }),
                require: true,
            },
        )
        .await;
        measure(
            "https",
            &ctx,
            ProbeSpec::Http {
                url: "https://bench.example.test:8443/".into(),
                connect: a("127.0.55.2:8443"),
                trust: Some(trust),
                identity: None,
                expect_status: vec![200],
                expect_body: Some("ok".into()),
            },
        )
        .await;
    });
}
