//! The desired side: tenants and scan groups from the file, reconciled into the database
//! like objects into a cluster: created, updated, or retired with their history kept.

use std::collections::HashSet;

use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError, now};
use crate::config::fields::Target;
use crate::config::model::{LabFile, ScanGroup};
use crate::scan::state::HostStatus;

/// What a sync did to one tenant or group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncChange {
    /// `tenant` or `group`.
    pub object: &'static str,
    /// `barbican` or `barbican/dmz`.
    pub name: String,
    /// What happened.
    pub action: SyncAction,
}

/// What happened to a tenant or group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncAction {
    /// Added to the database.
    Created,
    /// Its settings changed.
    Updated,
    /// Removed from the file: kept with its history, no longer scanned or alerted.
    Retired,
    /// Back in the file after being retired.
    Restored,
}

/// The settings of a group the database keeps (and compares to notice updates).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupSpec<'a> {
    targets: &'a [String],
    exclude: &'a [String],
    ports: &'a Option<String>,
    schedule: &'a str,
    down_after: u32,
    alerts: Vec<String>,
}

impl Store {
    /// Reconciles the file's tenants and scan groups into the database.
    pub async fn sync(&self, lab: &LabFile) -> Result<Vec<SyncChange>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let now = now();
        let mut changes = Vec::new();
        let mut live_tenants = HashSet::new();
        let mut live_groups = HashSet::new();
        for tenant in &lab.tenants {
            let row = sqlx::query("SELECT id, retired_at FROM tenants WHERE name = $1")
                .bind(&tenant.name)
                .fetch_optional(&mut *tx)
                .await?;
            let tenant_id: i64 = match row {
                Some(row) => {
                    let id: i64 = row.try_get(0)?;
                    if row.try_get::<Option<i64>, _>(1)?.is_some() {
                        sqlx::query("UPDATE tenants SET retired_at = NULL WHERE id = $1")
                            .bind(id)
                            .execute(&mut *tx)
                            .await?;
                        changes.push(SyncChange {
                            object: "tenant",
                            name: tenant.name.clone(),
                            action: SyncAction::Restored,
                        });
                    }
                    id
                }
                None => {
                    changes.push(SyncChange {
                        object: "tenant",
                        name: tenant.name.clone(),
                        action: SyncAction::Created,
                    });
                    sqlx::query("INSERT INTO tenants (name, created_at) VALUES ($1, $2) RETURNING id")
                        .bind(&tenant.name)
                        .bind(now)
                        .fetch_one(&mut *tx)
                        .await?
                        .try_get(0)?
                }
            };
            live_tenants.insert(tenant_id);
            for group in &tenant.scans {
                let name = format!("{}/{}", tenant.name, group.name);
                let spec = spec_json(lab, group);
                let row =
                    sqlx::query("SELECT id, spec, retired_at FROM scan_groups WHERE tenant_id = $1 AND name = $2")
                        .bind(tenant_id)
                        .bind(&group.name)
                        .fetch_optional(&mut *tx)
                        .await?;
                let group_id: i64 = match row {
                    Some(row) => {
                        let id: i64 = row.try_get(0)?;
                        let old: String = row.try_get(1)?;
                        let retired = row.try_get::<Option<i64>, _>(2)?.is_some();
                        if retired || old != spec {
                            sqlx::query("UPDATE scan_groups SET spec = $1, down_after = $2, updated_at = $3, retired_at = NULL WHERE id = $4")
                                .bind(&spec)
                                .bind(i64::from(group.down_after))
                                .bind(now)
                                .bind(id)
                                .execute(&mut *tx)
                                .await?;
                            let action = if retired { SyncAction::Restored } else { SyncAction::Updated };
                            changes.push(SyncChange { object: "group", name: name.clone(), action });
                        }
                        id
                    }
                    None => {
                        changes.push(SyncChange { object: "group", name: name.clone(), action: SyncAction::Created });
                        sqlx::query(
                            "INSERT INTO scan_groups (tenant_id, name, spec, down_after, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
                        )
                        .bind(tenant_id)
                        .bind(&group.name)
                        .bind(&spec)
                        .bind(i64::from(group.down_after))
                        .bind(now)
                        .fetch_one(&mut *tx)
                        .await?
                        .try_get(0)?
                    }
                };
                live_groups.insert(group_id);
                self.retire_hosts_outside_targets(&mut tx, group_id, group).await?;
            }
        }
        let groups = sqlx::query(
            "SELECT g.id, t.name, g.name FROM scan_groups g JOIN tenants t ON t.id = g.tenant_id WHERE g.retired_at IS NULL",
        )
        .fetch_all(&mut *tx)
        .await?;
        for row in groups {
            let id: i64 = row.try_get(0)?;
            if !live_groups.contains(&id) {
                sqlx::query("UPDATE scan_groups SET retired_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                let name = format!("{}/{}", row.try_get::<String, _>(1)?, row.try_get::<String, _>(2)?);
                changes.push(SyncChange { object: "group", name, action: SyncAction::Retired });
            }
        }
        let tenants = sqlx::query("SELECT id, name FROM tenants WHERE retired_at IS NULL").fetch_all(&mut *tx).await?;
        for row in tenants {
            let id: i64 = row.try_get(0)?;
            if !live_tenants.contains(&id) {
                sqlx::query("UPDATE tenants SET retired_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                changes.push(SyncChange { object: "tenant", name: row.try_get(1)?, action: SyncAction::Retired });
            }
        }
        tx.commit().await?;
        Ok(changes)
    }

    /// Marks `gone` the hosts whose address left the group's targets (when every target
    /// is an address, network or range, so that coverage can be decided).
    async fn retire_hosts_outside_targets(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        group_id: i64,
        group: &ScanGroup,
    ) -> Result<(), StoreError> {
        let targets: Vec<Target> = group.targets.iter().filter_map(|t| Target::parse(t).ok()).collect();
        if targets.iter().any(|t| matches!(t, Target::HostName(_))) {
            return Ok(());
        }
        let gone = HostStatus::Gone.code();
        let rows = sqlx::query("SELECT id, address FROM hosts WHERE group_id = $1 AND status <> $2")
            .bind(group_id)
            .bind(gone)
            .fetch_all(&mut **tx)
            .await?;
        for row in rows {
            let address: String = row.try_get(1)?;
            let covered = address.parse().is_ok_and(|ip| targets.iter().any(|t| t.contains(ip)));
            if !covered {
                sqlx::query("UPDATE hosts SET status = $1 WHERE id = $2")
                    .bind(gone)
                    .bind(row.try_get::<i64, _>(0)?)
                    .execute(&mut **tx)
                    .await?;
            }
        }
        Ok(())
    }
}

/// The group's settings as stored, with its alert routes resolved from the defaults.
fn spec_json(lab: &LabFile, group: &ScanGroup) -> String {
    let alerts = group.alerts.clone().unwrap_or_else(|| lab.alerts.default_routes.clone());
    let spec = GroupSpec {
        targets: &group.targets,
        exclude: &group.exclude,
        ports: &group.ports,
        schedule: &group.schedule,
        down_after: group.down_after,
        alerts,
    };
    serde_json::to_string(&spec).unwrap_or_default()
}
