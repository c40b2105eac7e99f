//! The endpoints of `watch`: `/healthz`, `/readyz`, Prometheus `/metrics`, and a read-only
//! status page at `/`. With a token, every endpoint but `/healthz` needs
//! `Authorization: Bearer <token>`: the page shows customers' open ports.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use super::page;
use super::state::Shared;

/// What the endpoints need.
#[derive(Clone)]
struct Endpoints {
    shared: Arc<Shared>,
    token: Option<Arc<str>>,
}

/// Why the endpoints cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Off loopback without a token.
    #[error(
        "watch.listen is {0}, which is not a loopback address, and no watch.token is set: the status page shows customers' open ports. Set `watch.token: env:VAR` (or `file:PATH`), or listen on 127.0.0.1"
    )]
    NoToken(SocketAddr),
    /// The address cannot be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The reason.
        source: std::io::Error,
    },
}

/// Binds `address`; refuses a non-loopback address without a token.
pub async fn bind(address: SocketAddr, token: Option<&str>) -> Result<tokio::net::TcpListener, ServeError> {
    if !address.ip().is_loopback() && token.is_none() {
        return Err(ServeError::NoToken(address));
    }
    tokio::net::TcpListener::bind(address).await.map_err(|source| ServeError::Bind { address, source })
}

/// The shortest `watch.token` accepted.
pub const MIN_TOKEN: usize = 16;
/// How long a client may take to send a request's headers (a slow one holds a connection).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How many connections are served at once; more are closed as they arrive.
const MAX_CONNECTIONS: usize = 64;

/// Serves the endpoints on `listener` until `stop` fires: HTTP/1 with a deadline for each
/// request's headers and at most [`MAX_CONNECTIONS`] connections.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    token: Option<String>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let endpoints = Endpoints { shared, token: token.map(Arc::from) };
    let guarded = Router::new()
        .route("/", get(status_page))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(endpoints.clone(), require_token));
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(guarded)
        .layer(middleware::from_fn_with_state(endpoints.clone(), loopback_host))
        .layer(middleware::map_response(hardened))
        .with_state(endpoints);
    let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let stream = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors, say: wait a moment rather than spin.
                Err(error) => {
                    tracing::warn!("watch: cannot accept a connection: {error}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else { continue };
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(
                hyper_util::rt::TokioIo::new(stream),
                hyper_util::service::TowerToHyperService::new(app.clone()),
            );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    // Requests under way get a moment to finish.
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
    Ok(())
}

/// Without a token, only a loopback `Host` is served: a web page the user opens elsewhere
/// could otherwise reach the endpoints by pointing a name of its own at 127.0.0.1 (DNS
/// rebinding).
async fn loopback_host(State(endpoints): State<Endpoints>, request: Request, next: Next) -> Response {
    if endpoints.token.is_some() {
        return next.run(request).await;
    }
    let host = request.headers().get(header::HOST).and_then(|value| value.to_str().ok()).unwrap_or_default();
    let name = match host.rsplit_once(':') {
        // `[::1]:9464`, `127.0.0.1:9464`, `localhost:9464`; a bare `::1` has colons of its own.
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !name.ends_with(':') => name,
        _ => host,
    };
    if crate::config::fields::is_loopback(name) {
        next.run(request).await
    } else {
        let message = "this endpoint answers loopback names only (localhost, 127.0.0.1, [::1]); set watch.token to serve others\n";
        (StatusCode::MISDIRECTED_REQUEST, message).into_response()
    }
}

/// Headers every answer carries: nothing cached (the page shows customers' open ports),
/// nothing sniffed, nothing loaded or run but the page's own style.
async fn hardened(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, header::HeaderValue::from_static("nosniff"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"),
    );
    response
}

async fn require_token(State(endpoints): State<Endpoints>, request: Request, next: Next) -> Response {
    let Some(token) = &endpoints.token else { return next.run(request).await };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    if given.is_some_and(|given| same(given.as_bytes(), token.as_bytes())) {
        next.run(request).await
    } else {
        let challenge = [(header::WWW_AUTHENTICATE, "Bearer")];
        (StatusCode::UNAUTHORIZED, challenge, "a bearer token is required (watch.token)\n").into_response()
    }
}

/// Compares in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn readyz(State(endpoints): State<Endpoints>) -> Response {
    match endpoints.shared.readiness() {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {reason}\n")).into_response(),
    }
}

async fn metrics(State(endpoints): State<Endpoints>) -> Response {
    let content_type = [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")];
    (content_type, endpoints.shared.metrics.encode()).into_response()
}

async fn status_page(State(endpoints): State<Endpoints>) -> Response {
    match page::render(&endpoints.shared.view()) {
        Ok(html) => Html(html).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot show the page: {error}\n")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd") && !same(b"abc", b"ab") && !same(b"", b"a"));
    }
}
