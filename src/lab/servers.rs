//! The lab's HTTP(S) components: the NGINX-like gateway, the Traefik-like router, the
//! Portainer-like mTLS API, the agent, qdrant and step-ca, on hyper 1 and tokio-rustls.

use super::config::{Backend, Route};
use super::pki::Leaf;
use crate::error::{Error, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// How long the router waits for a backend before answering 504.
pub const ROUTER_BACKEND_TIMEOUT: Duration = Duration::from_millis(1500);
/// How long the gateway waits for the router before answering 504 (longer than the router's).
pub const GATEWAY_UPSTREAM_TIMEOUT: Duration = Duration::from_millis(1800);
/// How long the `slow-backend` qdrant takes to answer.
pub const SLOW_BACKEND_DELAY: Duration = Duration::from_secs(10);

pub type Body = Full<Bytes>;
type BoxFut = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;
/// A request handler: the request and the peer address.
pub type Handler = Arc<dyn Fn(Request<Incoming>, SocketAddr) -> BoxFut + Send + Sync>;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_err(what: &str) -> impl Fn(rustls::Error) -> Error + '_ {
    move |e| Error::tool(format!("lab: TLS config for {what}: {e}"))
}

/// Who a TLS server asks for a client certificate.
pub enum ClientAuth {
    None,
    /// Client certificate required, verified against these roots.
    Require(Vec<rustls::pki_types::CertificateDer<'static>>),
}

/// A TLS server config presenting `leaf.chain`.
pub fn server_config(what: &str, leaf: &Leaf, auth: ClientAuth) -> Result<TlsAcceptor> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_err(what))?;
    let builder = match auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Require(roots) => {
            let mut store = RootCertStore::empty();
            for r in roots {
                store.add(r).map_err(tls_err(what))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider())
                .build()
                .map_err(|e| Error::tool(format!("lab: client verifier for {what}: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut cfg = builder
        .with_single_cert(leaf.chain.clone(), leaf.key())
        .map_err(tls_err(what))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(cfg)))
}

/// The router's client config for https backends: the lab root, and its client identity.
pub fn router_client(
    root: rustls::pki_types::CertificateDer<'static>,
    identity: &Leaf,
) -> Result<TlsConnector> {
    let mut store = RootCertStore::empty();
    store.add(root).map_err(tls_err("the router"))?;
    let cfg = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_err("the router"))?
        .with_root_certificates(store)
        .with_client_auth_cert(identity.chain.clone(), identity.key())
        .map_err(tls_err("the router"))?;
    Ok(TlsConnector::from(Arc::new(cfg)))
}

/// Serve HTTP/1.1 (over TLS when `tls` is set) until the task is aborted.
pub async fn serve(listener: TcpListener, tls: Option<TlsAcceptor>, handler: Handler) {
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        // Without it a response written in pieces (TLS records, headers then body) waits for
        // the client's delayed ACK: 40 ms per request on loopback.
        let _ = tcp.set_nodelay(true);
        let tls = tls.clone();
        let handler = handler.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let fut = handler(req, peer);
                async move { Ok::<_, Infallible>(fut.await) }
            });
            let http = hyper::server::conn::http1::Builder::new();
            match tls {
                Some(acceptor) => {
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
                    else {
                        return;
                    };
                    let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                }
                None => {
                    let _ = http.serve_connection(TokioIo::new(tcp), svc).await;
                }
            }
        });
    }
}

/// A response with a body and a content type.
pub fn respond(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}

// ---- the proxy core shared by the gateway and the router ----

/// Why a forwarded request got no answer.
#[derive(Debug, PartialEq, Eq)]
pub enum ProxyError {
    Refused,
    Timeout,
    Tls,
    Other,
}

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

fn is_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
}

fn caused_by_tls(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if e.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                if inner.downcast_ref::<rustls::Error>().is_some() {
                    return true;
                }
            }
        }
        cur = e.source();
    }
    false
}

/// Forward `req` to `addr` (over TLS when `tls` is set) with extra headers, all within `timeout`.
pub async fn forward(
    req: Request<Incoming>,
    addr: SocketAddr,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    extra: Vec<(HeaderName, String)>,
    timeout: Duration,
) -> std::result::Result<Response<Body>, ProxyError> {
    match tokio::time::timeout(timeout, forward_inner(req, addr, tls, extra)).await {
        Ok(r) => r,
        Err(_) => Err(ProxyError::Timeout),
    }
}

async fn forward_inner(
    req: Request<Incoming>,
    addr: SocketAddr,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    extra: Vec<(HeaderName, String)>,
) -> std::result::Result<Response<Body>, ProxyError> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|_| ProxyError::Other)?
        .to_bytes();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let mut out = Request::builder().method(parts.method).uri(path);
    for (k, v) in parts.headers.iter() {
        if !is_hop(k) {
            out = out.header(k, v);
        }
    }
    for (k, v) in extra {
        out = out.header(k, v);
    }
    let out = out.body(Full::new(body)).map_err(|_| ProxyError::Other)?;

    let tcp = TcpStream::connect(addr).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::ConnectionRefused => ProxyError::Refused,
        _ => ProxyError::Other,
    })?;
    let _ = tcp.set_nodelay(true);
    let resp = match tls {
        Some((connector, name)) => {
            let stream = connector
                .connect(name, tcp)
                .await
                .map_err(|_| ProxyError::Tls)?;
            send(TokioIo::new(stream), out).await?
        }
        None => send(TokioIo::new(tcp), out).await?,
    };
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| {
            if caused_by_tls(&e) {
                ProxyError::Tls
            } else {
                ProxyError::Other
            }
        })?
        .to_bytes();
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = parts.status;
    for (k, v) in parts.headers.iter() {
        if !is_hop(k) {
            r.headers_mut().append(k.clone(), v.clone());
        }
    }
    Ok(r)
}

async fn send<IO>(io: IO, req: Request<Body>) -> std::result::Result<Response<Incoming>, ProxyError>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| {
            if caused_by_tls(&e) {
                ProxyError::Tls
            } else {
                ProxyError::Other
            }
        })?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender.send_request(req).await.map_err(|e| {
        if caused_by_tls(&e) {
            ProxyError::Tls
        } else {
            ProxyError::Other
        }
    })
}

fn host_of(req: &Request<Incoming>) -> String {
    let raw = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().host().map(str::to_string))
        .unwrap_or_default();
    let host = match raw.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h.to_string(),
        _ => raw,
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

// ---- gateway (NGINX) ----

fn nginx_error(status: StatusCode) -> Response<Body> {
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let body = format!(
        "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    );
    respond(status, "text/html", body)
}

/// NGINX on 443: `proxy_pass http://<router>` with Host and X-Forwarded-* headers.
pub fn gateway(router: SocketAddr) -> Handler {
    Arc::new(move |req, peer| {
        Box::pin(async move {
            let ip = peer.ip().to_string();
            let extra = vec![
                (HeaderName::from_static("x-real-ip"), ip.clone()),
                (HeaderName::from_static("x-forwarded-for"), ip),
                (HeaderName::from_static("x-forwarded-proto"), "https".into()),
            ];
            let mut resp = match forward(req, router, None, extra, GATEWAY_UPSTREAM_TIMEOUT).await {
                Ok(r) => r,
                Err(ProxyError::Timeout) => nginx_error(StatusCode::GATEWAY_TIMEOUT),
                Err(_) => nginx_error(StatusCode::BAD_GATEWAY),
            };
            resp.headers_mut()
                .insert(header::SERVER, HeaderValue::from_static("nginx"));
            resp
        })
    })
}

// ---- router (Traefik) ----

fn traefik_text(status: StatusCode, body: &str) -> Response<Body> {
    respond(status, "text/plain; charset=utf-8", body.to_string())
}

/// Traefik's web entrypoint: routes by Host; unknown Host → `404 page not found`.
pub fn router(routes: Vec<Route>, client: TlsConnector) -> Handler {
    let routes = Arc::new(routes);
    Arc::new(move |req, peer| {
        let routes = routes.clone();
        let client = client.clone();
        Box::pin(async move {
            let host = host_of(&req);
            let Some(route) = routes.iter().find(|r| r.host == host) else {
                return traefik_text(StatusCode::NOT_FOUND, "404 page not found\n");
            };
            let extra = vec![
                (HeaderName::from_static("x-forwarded-host"), host.clone()),
                (
                    HeaderName::from_static("x-forwarded-server"),
                    "traefik".into(),
                ),
                (HeaderName::from_static("x-real-ip"), peer.ip().to_string()),
            ];
            let result = match &route.backend {
                Backend::Api => return dashboard(&req),
                Backend::Http(addr) => {
                    forward(req, *addr, None, extra, ROUTER_BACKEND_TIMEOUT).await
                }
                Backend::Https(addr) => {
                    let name = ServerName::IpAddress(addr.ip().into());
                    forward(
                        req,
                        *addr,
                        Some((client, name)),
                        extra,
                        ROUTER_BACKEND_TIMEOUT,
                    )
                    .await
                }
            };
            match result {
                Ok(r) => r,
                Err(ProxyError::Timeout) => {
                    traefik_text(StatusCode::GATEWAY_TIMEOUT, "Gateway Timeout")
                }
                Err(ProxyError::Tls) => {
                    traefik_text(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
                }
                Err(_) => traefik_text(StatusCode::BAD_GATEWAY, "Bad Gateway"),
            }
        })
    })
}

fn dashboard(req: &Request<Incoming>) -> Response<Body> {
    match req.uri().path() {
        "/" => {
            let mut r = empty(StatusCode::FOUND);
            r.headers_mut()
                .insert(header::LOCATION, HeaderValue::from_static("/dashboard/"));
            r
        }
        "/ping" => traefik_text(StatusCode::OK, "OK"),
        p if p.starts_with("/dashboard") => respond(
            StatusCode::OK,
            "text/html; charset=utf-8",
            "<!DOCTYPE html><html><head><title>Traefik</title></head><body></body></html>",
        ),
        _ => traefik_text(StatusCode::NOT_FOUND, "404 page not found\n"),
    }
}

// ---- backends ----

/// Portainer's API: `GET /api/system/status`.
pub fn portainer(instance_id: String) -> Handler {
    Arc::new(move |req, _| {
        let id = instance_id.clone();
        Box::pin(async move {
            match req.uri().path() {
                "/api/system/status" => respond(
                    StatusCode::OK,
                    "application/json",
                    format!("{{\"Version\":\"2.19.4\",\"InstanceID\":\"{id}\"}}"),
                ),
                p if p.starts_with("/api/") => respond(
                    StatusCode::NOT_FOUND,
                    "application/json",
                    "{\"message\":\"Not found\",\"details\":\"Not found\"}",
                ),
                _ => respond(
                    StatusCode::OK,
                    "text/html; charset=utf-8",
                    "<!DOCTYPE html><html><head><title>Portainer</title></head><body></body></html>",
                ),
            }
        })
    })
}

/// The Portainer agent: `GET /ping` → 204.
pub fn agent() -> Handler {
    Arc::new(|req, _| {
        Box::pin(async move {
            match req.uri().path() {
                "/ping" => empty(StatusCode::NO_CONTENT),
                _ => empty(StatusCode::FORBIDDEN),
            }
        })
    })
}

/// qdrant's REST API; `delay` before every answer (the `slow-backend` fault).
pub fn qdrant(delay: Option<Duration>) -> Handler {
    Arc::new(move |req, _| {
        Box::pin(async move {
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
            }
            match req.uri().path() {
                "/healthz" | "/livez" => {
                    respond(StatusCode::OK, "text/plain", "healthz check passed")
                }
                "/readyz" => respond(StatusCode::OK, "text/plain", "all shards are ready"),
                "/" => respond(
                    StatusCode::OK,
                    "application/json",
                    "{\"title\":\"qdrant - vector search engine\",\"version\":\"1.9.2\",\"commit\":\"34f7f8ec1c7d3e2a95b1b3dc9b1e4bfa2e5f3b0d\"}",
                ),
                _ => respond(
                    StatusCode::NOT_FOUND,
                    "application/json",
                    "{\"status\":{\"error\":\"Not found\"},\"time\":0.0}",
                ),
            }
        })
    })
}

/// step-ca: `GET /health` → `{"status":"ok"}`.
pub fn step_ca() -> Handler {
    Arc::new(|req, _| {
        Box::pin(async move {
            match req.uri().path() {
                "/health" => respond(StatusCode::OK, "application/json", "{\"status\":\"ok\"}\n"),
                _ => respond(
                    StatusCode::NOT_FOUND,
                    "application/json",
                    "{\"status\":404,\"message\":\"Not Found\"}\n",
                ),
            }
        })
    })
}
