//! Delivering queued alerts to their routes: a webhook (JSON, signed with HMAC-SHA256
//! when a secret is set), email over SMTP, or seclab's log. Failed attempts are retried
//! with exponential backoff; a delivery is marked done only once its route accepted it.

use std::path::Path;
use std::time::Duration;

use hmac::{Hmac, Mac};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Serialize;
use sha2::Sha256;

use super::store::{Delivery, Store, StoreError};
use crate::causes::one_line;
use crate::config::ResolveError;
use crate::config::model::{Email, LabFile, Route, SmtpTls, Webhook};

/// What a delivery run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryReport {
    /// Deliveries accepted by their route.
    pub delivered: u64,
    /// Attempts that failed (each is retried later).
    pub failed_attempts: u64,
    /// Deliveries still waiting when the run ended.
    pub pending: i64,
    /// The newest failure, as `route <name>: <cause>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
    /// Attempts by route and result.
    #[serde(skip)]
    pub attempts: std::collections::BTreeMap<(String, Attempt), u64>,
}

/// How one delivery attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Attempt {
    /// The route accepted it.
    Delivered,
    /// It failed, and is retried later.
    Failed,
}

impl Attempt {
    /// The word a metric's label says.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }
}

/// Delivers every due alert, retrying failures with backoff until none is left or
/// `within` has passed.
pub async fn deliver(
    store: &Store,
    lab: &LabFile,
    base_dir: &Path,
    within: Duration,
) -> Result<DeliveryReport, StoreError> {
    let deadline = tokio::time::Instant::now() + within;
    // No redirect is followed: one would re-post customers' ports to wherever it points.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
        .build()
        .map_err(|e| StoreError::Query(e.to_string()))?;
    let mut report = DeliveryReport::default();
    loop {
        let due = store.claim_due(100).await?;
        if due.is_empty() {
            if store.pending_deliveries().await? == 0 || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250).min(deadline - tokio::time::Instant::now())).await;
            continue;
        }
        for delivery in due {
            match send(&client, lab, base_dir, &delivery).await {
                Ok(()) => {
                    store.mark_delivered(delivery.id).await?;
                    report.delivered += 1;
                    *report.attempts.entry((delivery.route.clone(), Attempt::Delivered)).or_default() += 1;
                }
                Err(error) => {
                    tracing::warn!(route = %delivery.route, delivery = delivery.id, "alert not delivered, will retry: {error}");
                    store.mark_failed(delivery.id, delivery.attempts, &error.to_string()).await?;
                    report.last_failure = Some(format!("route {}: {error}", delivery.route));
                    report.failed_attempts += 1;
                    *report.attempts.entry((delivery.route.clone(), Attempt::Failed)).or_default() += 1;
                }
            }
        }
    }
    report.pending = store.pending_deliveries().await?;
    if report.pending > 0 && report.last_failure.is_none() {
        // Nothing was tried again in this run (each waits out its backoff): the one before.
        report.last_failure = store.last_failure().await?;
    }
    Ok(report)
}

/// The JSON body a webhook receives.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WebhookBody<'a> {
    delivery: i64,
    event: i64,
    group: &'a str,
    address: &'a str,
    kind: &'a str,
    summary: &'a str,
    detail: &'a serde_json::Value,
    created_at: i64,
}

/// Why an alert was not delivered this time (it is tried again later). Shown on one line,
/// with every cause, in the log and in the store's `last_error`; never with a webhook's URL
/// past its origin, whose path or query may hold a token.
#[derive(Debug, thiserror::Error)]
enum DeliveryError {
    #[error("route `{0}` is no longer in the desired-state file")]
    RouteGone(String),
    #[error("route `{0}` has no destination")]
    NoDestination(String),
    #[error("{}", one_line(.0))]
    Secret(#[source] ResolveError),
    #[error("webhook {origin}: the request failed: {}", one_line(.source))]
    Request { origin: String, source: reqwest::Error },
    #[error(
        "webhook {origin} answered {status}; seclab follows no redirect (it would post the alert elsewhere): set the route's `url` to where the webhook lives"
    )]
    Redirected { origin: String, status: reqwest::StatusCode },
    #[error("webhook {origin} answered {status}")]
    Refused { origin: String, status: reqwest::StatusCode },
    #[error("{which} `{address}`: {source}")]
    Address { which: &'static str, address: String, source: lettre::address::AddressError },
    #[error("the message cannot be built: {0}")]
    Message(#[source] lettre::error::Error),
    #[error("SMTP delivery to {host} failed: {}", one_line(.source))]
    Smtp { host: String, source: lettre::transport::smtp::Error },
}

async fn send(
    client: &reqwest::Client,
    lab: &LabFile,
    base_dir: &Path,
    delivery: &Delivery,
) -> Result<(), DeliveryError> {
    if delivery.route == "log" {
        tracing::info!(target: "seclab::alert", group = %delivery.group, kind = %delivery.kind, "{}", delivery.summary);
        return Ok(());
    }
    let route = lab
        .alerts
        .routes
        .iter()
        .find(|r| r.name == delivery.route)
        .ok_or_else(|| DeliveryError::RouteGone(delivery.route.clone()))?;
    match route {
        Route { webhook: Some(webhook), .. } => send_webhook(client, webhook, base_dir, delivery).await,
        Route { email: Some(email), .. } => send_email(email, base_dir, delivery).await,
        Route { log: Some(_), .. } => {
            tracing::info!(target: "seclab::alert", route = %route.name, group = %delivery.group, kind = %delivery.kind, "{}", delivery.summary);
            Ok(())
        }
        _ => Err(DeliveryError::NoDestination(route.name.clone())),
    }
}

async fn send_webhook(
    client: &reqwest::Client,
    webhook: &Webhook,
    base_dir: &Path,
    delivery: &Delivery,
) -> Result<(), DeliveryError> {
    let body = WebhookBody {
        delivery: delivery.id,
        event: delivery.event_id,
        group: &delivery.group,
        address: &delivery.address,
        kind: &delivery.kind,
        summary: &delivery.summary,
        detail: &delivery.detail,
        created_at: delivery.created_at,
    };
    let body = serde_json::to_vec(&body).expect("the webhook body is plain JSON");
    let mut request = client
        .post(&webhook.url)
        .header("content-type", "application/json")
        .header("x-seclab-delivery", delivery.id.to_string())
        .header("x-seclab-event", delivery.event_id.to_string());
    if let Some(secret) = &webhook.secret {
        let key = secret.resolve(base_dir).map_err(DeliveryError::Secret)?;
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes a key of any length");
        mac.update(&body);
        request = request.header("x-seclab-signature", format!("sha256={}", hex::encode(mac.finalize().into_bytes())));
    }
    let origin = url::Url::parse(&webhook.url).map(|u| u.origin().ascii_serialization()).unwrap_or_default();
    let response = request
        .body(body)
        .send()
        .await
        .map_err(|e| DeliveryError::Request { origin: origin.clone(), source: e.without_url() })?;
    let status = response.status();
    if status.is_redirection() {
        return Err(DeliveryError::Redirected { origin, status });
    }
    if status.is_success() { Ok(()) } else { Err(DeliveryError::Refused { origin, status }) }
}

async fn send_email(email: &Email, base_dir: &Path, delivery: &Delivery) -> Result<(), DeliveryError> {
    let address = |which: &'static str, address: &str| {
        let address = address.to_owned();
        move |source| DeliveryError::Address { which, address, source }
    };
    let from: Mailbox = email.from.parse().map_err(address("sender", &email.from))?;
    let mut message =
        Message::builder().from(from).subject(format!("[seclab] {} {}", delivery.group, delivery.summary));
    for to in &email.to {
        message = message.to(to.parse().map_err(address("recipient", to))?);
    }
    let text = format!(
        "{}\n\ngroup: {}\nhost: {}\nchange: {}\ndetail: {}\ndelivery: {}\n",
        delivery.summary, delivery.group, delivery.address, delivery.kind, delivery.detail, delivery.id
    );
    let message = message.body(text).map_err(DeliveryError::Message)?;
    let smtp = &email.smtp;
    let failed = |source| DeliveryError::Smtp { host: smtp.host.clone(), source };
    let mut transport = match smtp.tls {
        SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host),
        SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host).map_err(failed)?,
        SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host).map_err(failed)?,
    }
    .port(smtp.port)
    .timeout(Some(Duration::from_secs(10)));
    if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
        let password = password.resolve(base_dir).map_err(DeliveryError::Secret)?;
        transport = transport.credentials(Credentials::new(user.clone(), password));
    }
    transport.build().send(message).await.map(drop).map_err(failed)
}
