//! Counting the requests seclab sends, by verb (as the API server's audit log names them)
//! and status code: a layer in the kube client's service stack.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::{Method, Request, Response};
use kube::client::Body;
use tower::{Layer, Service};

/// Told of every request when its answer arrives: the verb and the status code (0 when no
/// answer came).
pub type RequestObserver = Arc<dyn Fn(Verb, u16) + Send + Sync>;

/// What a request does, as the API server's audit log names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// Reads one object.
    Get,
    /// Reads a collection.
    List,
    /// Follows a collection's changes.
    Watch,
    /// Creates an object.
    Create,
    /// A server-side apply.
    Apply,
    /// Any other patch.
    Patch,
    /// Replaces an object.
    Update,
    /// Deletes an object.
    Delete,
    /// A dry-run of a write, which changes nothing.
    DryRun,
    /// Anything else.
    Other,
}

impl Verb {
    /// The audit log's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::List => "list",
            Self::Watch => "watch",
            Self::Create => "create",
            Self::Apply => "apply",
            Self::Patch => "patch",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::DryRun => "dryrun",
            Self::Other => "other",
        }
    }
}

/// The layer that tells a [`RequestObserver`] of every request.
#[derive(Clone)]
pub struct CountRequests(pub RequestObserver);

impl<S> Layer<S> for CountRequests {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Counted<S> {
        Counted { inner, observe: self.0.clone() }
    }
}

/// A service whose requests are counted.
#[derive(Clone)]
pub struct Counted<S> {
    inner: S,
    observe: RequestObserver,
}

impl<S, B> Service<Request<Body>> for Counted<S>
where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let verb = verb(&request);
        let answer = self.inner.call(request);
        let observe = self.observe.clone();
        Box::pin(async move {
            let result = answer.await;
            observe(verb, result.as_ref().map_or(0, |response| response.status().as_u16()));
            result
        })
    }
}

/// The audit log's verb of a request.
fn verb<B>(request: &Request<B>) -> Verb {
    let query = request.uri().query().unwrap_or_default();
    let has = |name: &str| query.split('&').any(|pair| pair.split('=').next() == Some(name));
    match *request.method() {
        Method::GET if query.split('&').any(|p| p == "watch=true" || p == "watch=1") => Verb::Watch,
        Method::GET if names_a_collection(request.uri().path()) => Verb::List,
        Method::GET => Verb::Get,
        _ if has("dryRun") => Verb::DryRun,
        Method::PATCH => {
            let content_type = request.headers().get(http::header::CONTENT_TYPE);
            if content_type.is_some_and(|t| t.as_bytes().starts_with(b"application/apply-patch")) {
                Verb::Apply
            } else {
                Verb::Patch
            }
        }
        Method::POST => Verb::Create,
        Method::PUT => Verb::Update,
        Method::DELETE => Verb::Delete,
        _ => Verb::Other,
    }
}

/// Whether `path` names a collection (`/api/v1/namespaces/n/pods`) rather than one object or
/// a discovery document.
fn names_a_collection(path: &str) -> bool {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let rest = match segments.first() {
        Some(&"api") => segments.get(2..),
        Some(&"apis") => segments.get(3..),
        _ => None,
    };
    let rest = rest.unwrap_or_default();
    let rest = if rest.len() >= 3 && rest[0] == "namespaces" { &rest[2..] } else { rest };
    rest.len() == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, uri: &str, content_type: Option<&str>) -> Request<()> {
        let mut builder = Request::builder().method(method).uri(uri);
        if let Some(content_type) = content_type {
            builder = builder.header(http::header::CONTENT_TYPE, content_type);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn verbs_are_the_audit_logs() {
        let cases = [
            (Method::GET, "/api/v1/namespaces/n/configmaps?labelSelector=a", None, "list"),
            (Method::GET, "/apis/apps/v1/namespaces/n/deployments?watch=true&resourceVersion=5", None, "watch"),
            (Method::GET, "/apis/apps/v1/namespaces/n/deployments/d", None, "get"),
            (Method::GET, "/api/v1/namespaces", None, "list"),
            (Method::GET, "/api/v1/namespaces/n", None, "get"),
            (Method::GET, "/api/v1/persistentvolumes", None, "list"),
            (Method::GET, "/apis/apps/v1", None, "get"),
            (
                Method::PATCH,
                "/api/v1/namespaces/n/secrets/s?fieldManager=seclab",
                Some("application/apply-patch+yaml"),
                "apply",
            ),
            (
                Method::PATCH,
                "/api/v1/namespaces/n/secrets/s?dryRun=All&fieldManager=seclab",
                Some("application/apply-patch+yaml"),
                "dryrun",
            ),
            (
                Method::PATCH,
                "/apis/coordination.k8s.io/v1/namespaces/n/leases/l",
                Some("application/strategic-merge-patch+json"),
                "patch",
            ),
            (Method::POST, "/apis/coordination.k8s.io/v1/namespaces/n/leases", None, "create"),
            (Method::DELETE, "/api/v1/namespaces/n/services/s", None, "delete"),
        ];
        for (method, uri, content_type, expected) in cases {
            assert_eq!(verb(&request(method, uri, content_type)).as_str(), expected, "{uri}");
        }
    }
}
