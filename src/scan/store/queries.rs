//! Reading the scan database back for people: per-group status and history.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError};
use crate::scan::model::Host;

/// One scan group at a glance.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupStatus {
    /// `tenant/group`.
    pub group: String,
    /// The latest scan, complete or failed.
    pub last_scan: Option<ScanRecord>,
    /// Host count per status code.
    pub hosts: BTreeMap<String, i64>,
    /// Alert deliveries not yet accepted by their route.
    pub pending_alerts: i64,
}

/// One scan as recorded.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanRecord {
    /// Its id.
    pub id: i64,
    /// `complete` or `failed`.
    pub status: String,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When nmap started it.
    pub started_at: Option<i64>,
    /// When it was ingested.
    pub ingested_at: i64,
    /// Hosts seen up.
    pub hosts_up: i64,
    /// Whether it was the group's baseline.
    pub baseline: bool,
    /// Changes found.
    pub events: i64,
    /// The file it came from.
    pub source: String,
}

/// One change as recorded.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventRecord {
    /// The scan that found it.
    pub scan_id: i64,
    /// The host.
    pub address: String,
    /// `host-new`, `port-opened`...
    pub kind: String,
    /// One line for people.
    pub summary: String,
    /// Not alerted: seen within the repeat window.
    pub suppressed: bool,
    /// When it was found.
    pub created_at: i64,
}

const SCAN_COLUMNS: &str = "s.id, s.status, s.error, s.started_at, s.ingested_at, s.hosts_up, s.baseline, \
     (SELECT COUNT(*) FROM events e WHERE e.scan_id = s.id), s.source";

fn scan_record(row: &sqlx::any::AnyRow) -> Result<ScanRecord, StoreError> {
    Ok(ScanRecord {
        id: row.try_get(0)?,
        status: row.try_get(1)?,
        error: row.try_get(2)?,
        started_at: row.try_get(3)?,
        ingested_at: row.try_get(4)?,
        hosts_up: row.try_get(5)?,
        baseline: row.try_get::<i64, _>(6)? != 0,
        events: row.try_get(7)?,
        source: row.try_get(8)?,
    })
}

fn event_record(row: &sqlx::any::AnyRow) -> Result<EventRecord, StoreError> {
    Ok(EventRecord {
        scan_id: row.try_get(0)?,
        address: row.try_get(1)?,
        kind: row.try_get(2)?,
        summary: row.try_get(3)?,
        suppressed: row.try_get::<i64, _>(4)? != 0,
        created_at: row.try_get(5)?,
    })
}

impl Store {
    /// Every active group with its latest scan, hosts by status, and pending alerts: four
    /// queries, however many groups there are.
    pub async fn status(&self) -> Result<Vec<GroupStatus>, StoreError> {
        let groups = sqlx::query(
            "SELECT g.id, t.name, g.name FROM scan_groups g JOIN tenants t ON t.id = g.tenant_id \
             WHERE g.retired_at IS NULL ORDER BY t.name, g.name",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut last_scans: HashMap<i64, ScanRecord> = HashMap::new();
        let latest = format!(
            "SELECT {SCAN_COLUMNS}, s.group_id FROM scans s \
             WHERE s.id IN (SELECT MAX(id) FROM scans GROUP BY group_id)"
        );
        for row in sqlx::query(&latest).fetch_all(&self.pool).await? {
            last_scans.insert(row.try_get(9)?, scan_record(&row)?);
        }
        let mut hosts: HashMap<i64, BTreeMap<String, i64>> = HashMap::new();
        for row in sqlx::query("SELECT group_id, status, COUNT(*) FROM hosts GROUP BY group_id, status")
            .fetch_all(&self.pool)
            .await?
        {
            hosts.entry(row.try_get(0)?).or_default().insert(row.try_get(1)?, row.try_get(2)?);
        }
        let mut pending: HashMap<i64, i64> = HashMap::new();
        for row in sqlx::query(
            "SELECT e.group_id, COUNT(*) FROM outbox o JOIN events e ON e.id = o.event_id \
             WHERE o.delivered_at IS NULL GROUP BY e.group_id",
        )
        .fetch_all(&self.pool)
        .await?
        {
            pending.insert(row.try_get(0)?, row.try_get(1)?);
        }
        groups
            .iter()
            .map(|group| {
                let id: i64 = group.try_get(0)?;
                Ok(GroupStatus {
                    group: format!("{}/{}", group.try_get::<String, _>(1)?, group.try_get::<String, _>(2)?),
                    last_scan: last_scans.remove(&id),
                    hosts: hosts.remove(&id).unwrap_or_default(),
                    pending_alerts: pending.get(&id).copied().unwrap_or(0),
                })
            })
            .collect()
    }

    /// The latest changes of every active group (`tenant/group` and the change), newest first.
    pub async fn latest_events(&self, limit: i64) -> Result<Vec<(String, EventRecord)>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.scan_id, e.address, e.kind, e.summary, e.suppressed, e.created_at, t.name, g.name \
             FROM events e JOIN scan_groups g ON g.id = e.group_id JOIN tenants t ON t.id = g.tenant_id \
             WHERE g.retired_at IS NULL ORDER BY e.id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let group = format!("{}/{}", row.try_get::<String, _>(6)?, row.try_get::<String, _>(7)?);
                Ok((group, event_record(row)?))
            })
            .collect()
    }

    /// The group's scans, newest first.
    pub async fn scan_history(&self, tenant: &str, group: &str, limit: i64) -> Result<Vec<ScanRecord>, StoreError> {
        self.scans(tenant, group, "", limit).await
    }

    /// The group's events (for one host, when given), newest first.
    pub async fn event_history(
        &self,
        tenant: &str,
        group: &str,
        host: Option<&str>,
        limit: i64,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let id = self.group_id(tenant, group).await?;
        let rows = sqlx::query(
            "SELECT scan_id, address, kind, summary, suppressed, created_at FROM events \
             WHERE group_id = $1 AND ($2 = '' OR address = $2) ORDER BY id DESC LIMIT $3",
        )
        .bind(id)
        .bind(host.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_record).collect()
    }

    /// A host's status code and consecutive misses.
    pub async fn host_status(
        &self,
        tenant: &str,
        group: &str,
        address: &str,
    ) -> Result<Option<(String, i64)>, StoreError> {
        let id = self.group_id(tenant, group).await?;
        let row = sqlx::query("SELECT status, misses FROM hosts WHERE group_id = $1 AND address = $2")
            .bind(id)
            .bind(address)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
    }

    /// The group's complete scans, newest first (at most `limit`), as `scan diff --group`
    /// picks them.
    pub async fn complete_scans(&self, tenant: &str, group: &str, limit: i64) -> Result<Vec<ScanRecord>, StoreError> {
        self.scans(tenant, group, "AND s.status = 'complete'", limit).await
    }

    async fn scans(&self, tenant: &str, group: &str, filter: &str, limit: i64) -> Result<Vec<ScanRecord>, StoreError> {
        let id = self.group_id(tenant, group).await?;
        let rows = sqlx::query(&format!(
            "SELECT {SCAN_COLUMNS} FROM scans s WHERE s.group_id = $1 {filter} ORDER BY s.id DESC LIMIT $2"
        ))
        .bind(id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(scan_record).collect()
    }

    /// One of the group's scans, and the hosts it saw up (one per address, as ingested);
    /// `None` when the group has no scan with that id.
    pub async fn stored_scan(
        &self,
        tenant: &str,
        group: &str,
        scan: i64,
    ) -> Result<Option<(ScanRecord, Vec<Host>)>, StoreError> {
        let id = self.group_id(tenant, group).await?;
        let row = sqlx::query(&format!("SELECT {SCAN_COLUMNS} FROM scans s WHERE s.group_id = $1 AND s.id = $2"))
            .bind(id)
            .bind(scan)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let record = scan_record(&row)?;
        let rows = sqlx::query("SELECT host FROM observations WHERE scan_id = $1 ORDER BY address")
            .bind(scan)
            .fetch_all(&self.pool)
            .await?;
        let hosts = rows
            .iter()
            .map(|row| {
                let json: String = row.try_get(0)?;
                serde_json::from_str(&json).map_err(|e| StoreError::Query(format!("scan {scan}: a stored host: {e}")))
            })
            .collect::<Result<Vec<Host>, StoreError>>()?;
        Ok(Some((record, hosts)))
    }

    async fn group_id(&self, tenant: &str, group: &str) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT g.id FROM scan_groups g JOIN tenants t ON t.id = g.tenant_id WHERE t.name = $1 AND g.name = $2",
        )
        .bind(tenant)
        .bind(group)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::UnknownGroup(format!("{tenant}/{group}")))?;
        Ok(row.try_get(0)?)
    }
}
