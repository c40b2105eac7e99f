//! The alert outbox: each event's delivery to each route, written with the scan and
//! marked delivered only after the route accepted it. A lease keeps two seclab
//! processes from sending the same delivery at once; one killed mid-send loses its
//! lease, and the delivery is retried.

use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError, now};

/// How long a claimed delivery is reserved for the process that claimed it.
const LEASE_SECONDS: i64 = 60;
/// Longest wait between two attempts.
const MAX_BACKOFF_SECONDS: i64 = 300;

/// One alert to deliver to one route.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// The delivery's id, stable across retries (sent as `X-Seclab-Delivery`).
    pub id: i64,
    /// The route's name.
    pub route: String,
    /// Attempts made before this one.
    pub attempts: i64,
    /// The event's id.
    pub event_id: i64,
    /// `tenant/group`.
    pub group: String,
    /// The host's address.
    pub address: String,
    /// `host-new`, `port-opened`...
    pub kind: String,
    /// One line for people.
    pub summary: String,
    /// The change as JSON.
    pub detail: serde_json::Value,
    /// When the change was found.
    pub created_at: i64,
}

impl Store {
    /// Claims up to `limit` deliveries that are due, reserving them for this process.
    pub async fn claim_due(&self, limit: i64) -> Result<Vec<Delivery>, StoreError> {
        let now = now();
        let candidates = sqlx::query(
            "SELECT o.id FROM outbox o WHERE o.delivered_at IS NULL AND o.next_attempt_at <= $1 \
             AND (o.lease_until IS NULL OR o.lease_until < $1) ORDER BY o.id LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut claimed = Vec::new();
        for row in candidates {
            let id: i64 = row.try_get(0)?;
            let taken = sqlx::query(
                "UPDATE outbox SET lease_until = $1 WHERE id = $2 AND delivered_at IS NULL AND (lease_until IS NULL OR lease_until < $3)",
            )
            .bind(now + LEASE_SECONDS)
            .bind(id)
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected();
            if taken == 1 {
                claimed.push(self.delivery(id).await?);
            }
        }
        Ok(claimed)
    }

    async fn delivery(&self, id: i64) -> Result<Delivery, StoreError> {
        let row = sqlx::query(
            "SELECT o.id, o.route, o.attempts, e.id, t.name, g.name, e.address, e.kind, e.summary, e.detail, e.created_at \
             FROM outbox o JOIN events e ON e.id = o.event_id JOIN scan_groups g ON g.id = e.group_id \
             JOIN tenants t ON t.id = g.tenant_id WHERE o.id = $1",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        Ok(Delivery {
            id: row.try_get(0)?,
            route: row.try_get(1)?,
            attempts: row.try_get(2)?,
            event_id: row.try_get(3)?,
            group: format!("{}/{}", row.try_get::<String, _>(4)?, row.try_get::<String, _>(5)?),
            address: row.try_get(6)?,
            kind: row.try_get(7)?,
            summary: row.try_get(8)?,
            detail: serde_json::from_str(&row.try_get::<String, _>(9)?).unwrap_or_default(),
            created_at: row.try_get(10)?,
        })
    }

    /// Records that the route accepted the delivery.
    pub async fn mark_delivered(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE outbox SET delivered_at = $1, lease_until = NULL, attempts = attempts + 1, last_error = NULL WHERE id = $2")
            .bind(now())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records a failed attempt and schedules the next with exponential backoff.
    pub async fn mark_failed(&self, id: i64, attempts_before: i64, error: &str) -> Result<(), StoreError> {
        let backoff =
            2i64.saturating_pow(u32::try_from(attempts_before.min(16)).unwrap_or(16)).min(MAX_BACKOFF_SECONDS);
        sqlx::query("UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $1, lease_until = NULL, last_error = $2 WHERE id = $3")
            .bind(now() + backoff)
            .bind(error)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The newest failure of a delivery still waiting, as `route <name>: <cause>`.
    pub async fn last_failure(&self) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT route, last_error FROM outbox WHERE delivered_at IS NULL AND last_error IS NOT NULL ORDER BY next_attempt_at DESC, id DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let (route, error): (String, String) = (row.try_get(0)?, row.try_get(1)?);
        Ok(Some(format!("route {route}: {error}")))
    }

    /// Deliveries not yet accepted by their route.
    pub async fn pending_deliveries(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL").fetch_one(&self.pool).await?;
        Ok(row.try_get(0)?)
    }
}
