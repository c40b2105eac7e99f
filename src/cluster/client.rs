//! The HTTP stack under seclab's kube client: kube's own layers (base URI, retries on 429,
//! 503 and 504, credentials, extra headers, connect and read timeouts) over a connector that
//! sets `TCP_NODELAY`, which kube's default builder leaves off (kube-rs/kube#2056). With
//! Nagle's algorithm on, the first request on each new connection waits for the server's
//! delayed ACK: 40 ms, measured, on the first request and again on every parallel LIST of a
//! plan. Go clients (kubectl) set it by default.

use http::{Request, Response};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube::client::retry::RetryPolicy;
use kube::client::{Body, ClientBuilder, ConfigExt, DynBody};
use tower::retry::RetryLayer;
use tower::util::BoxService;
use tower::{BoxError, ServiceBuilder, ServiceExt};
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use tracing::Level;

/// The service a client is built on: the same type kube's own builder makes.
pub(super) type Stack = BoxService<Request<Body>, Response<Box<DynBody>>, BoxError>;

/// A client builder for `config`. A kubeconfig with a proxy gets kube's own stack, which
/// reports the proxy kinds this build does not support.
pub(super) fn builder(config: kube::Config) -> Result<ClientBuilder<Stack>, kube::Error> {
    if config.proxy_url.is_some() {
        return ClientBuilder::try_from(config);
    }
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    let mut connector = hyper_timeout::TimeoutConnector::new(config.rustls_https_connector_with_connector(tcp)?);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    connector.set_reset_reader_on_write(config.reset_reader_on_write);
    let http = Client::builder(TokioExecutor::new()).build(connector);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.default_retry.then(|| RetryLayer::new(RetryPolicy::server_retry())))
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .layer(TraceLayer::new_for_http().on_failure(DefaultOnFailure::new().level(Level::DEBUG)))
        .map_err(BoxError::from)
        .service(http)
        .map_response(|response| response.map(|body| Box::new(body.map_err(BoxError::from)) as Box<DynBody>))
        .boxed();
    Ok(ClientBuilder::new(service, config.default_namespace))
}
