//! The desired side: tenants and scan groups from the file, reconciled into the database
//! like objects into a cluster: created, updated, or retired with their history kept.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError, now};
use crate::config::model::{LabFile, ScanGroup};
use crate::scan::coverage::{Coverage, CoverageSpec};
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
    /// Reconciles the file's tenants and scan groups into the database. What is stored is
    /// read with three queries; only changes are written.
    pub async fn sync(&self, lab: &LabFile) -> Result<Vec<SyncChange>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let now = now();
        let mut changes = Vec::new();

        let mut tenants: HashMap<String, (i64, bool)> = HashMap::new();
        for row in sqlx::query("SELECT id, name, retired_at FROM tenants").fetch_all(&mut *tx).await? {
            let retired = row.try_get::<Option<i64>, _>(2)?.is_some();
            tenants.insert(row.try_get(1)?, (row.try_get(0)?, retired));
        }
        let mut groups: HashMap<(i64, String), (i64, String, bool)> = HashMap::new();
        for row in
            sqlx::query("SELECT id, tenant_id, name, spec, retired_at FROM scan_groups").fetch_all(&mut *tx).await?
        {
            let retired = row.try_get::<Option<i64>, _>(4)?.is_some();
            groups.insert((row.try_get(1)?, row.try_get(2)?), (row.try_get(0)?, row.try_get(3)?, retired));
        }
        let mut hosts: HashMap<i64, Vec<(i64, String)>> = HashMap::new();
        let rows = sqlx::query("SELECT id, group_id, address FROM hosts WHERE status <> $1")
            .bind(HostStatus::Gone.code())
            .fetch_all(&mut *tx)
            .await?;
        for row in rows {
            hosts.entry(row.try_get(1)?).or_default().push((row.try_get(0)?, row.try_get(2)?));
        }

        let mut live_tenants = HashSet::new();
        let mut live_groups = HashSet::new();
        for tenant in &lab.tenants {
            let tenant_id: i64 = match tenants.get(&tenant.name) {
                Some(&(id, retired)) => {
                    if retired {
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
                let group_id: i64 = match groups.get(&(tenant_id, group.name.clone())) {
                    Some((id, old, retired)) => {
                        if *retired || *old != spec {
                            sqlx::query("UPDATE scan_groups SET spec = $1, down_after = $2, updated_at = $3, retired_at = NULL WHERE id = $4")
                                .bind(&spec)
                                .bind(i64::from(group.down_after))
                                .bind(now)
                                .bind(id)
                                .execute(&mut *tx)
                                .await?;
                            let action = if *retired { SyncAction::Restored } else { SyncAction::Updated };
                            changes.push(SyncChange { object: "group", name: name.clone(), action });
                        }
                        *id
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
                let known = hosts.get(&group_id).map(Vec::as_slice).unwrap_or_default();
                retire_hosts_outside_targets(&mut tx, known, group).await?;
            }
        }
        let tenant_names: HashMap<i64, &str> = tenants.iter().map(|(name, (id, _))| (*id, name.as_str())).collect();
        let mut retired_groups: Vec<(String, i64)> = groups
            .iter()
            .filter(|(_, (id, _, retired))| !retired && !live_groups.contains(id))
            .map(|((tenant_id, group), (id, _, _))| {
                (format!("{}/{group}", tenant_names.get(tenant_id).copied().unwrap_or_default()), *id)
            })
            .collect();
        retired_groups.sort();
        for (name, id) in retired_groups {
            sqlx::query("UPDATE scan_groups SET retired_at = $1 WHERE id = $2")
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            changes.push(SyncChange { object: "group", name, action: SyncAction::Retired });
        }
        let mut retired_tenants: Vec<(&String, i64)> = tenants
            .iter()
            .filter(|(_, (id, retired))| !retired && !live_tenants.contains(id))
            .map(|(name, (id, _))| (name, *id))
            .collect();
        retired_tenants.sort();
        for (name, id) in retired_tenants {
            sqlx::query("UPDATE tenants SET retired_at = $1 WHERE id = $2")
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            changes.push(SyncChange { object: "tenant", name: name.clone(), action: SyncAction::Retired });
        }
        tx.commit().await?;
        Ok(changes)
    }
}

/// Marks `gone` the group's `known` hosts (id, address, not gone yet) that its targets no
/// longer cover (left the targets, or excluded), when the address alone tells; otherwise the
/// next ingest does it, with the host's names.
async fn retire_hosts_outside_targets(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    known: &[(i64, String)],
    group: &ScanGroup,
) -> Result<(), StoreError> {
    let coverage = Coverage::new(&CoverageSpec { targets: group.targets.clone(), exclude: group.exclude.clone() });
    for (id, address) in known {
        if coverage.covers_address(address) == Some(false) {
            sqlx::query("UPDATE hosts SET status = $1 WHERE id = $2")
                .bind(HostStatus::Gone.code())
                .bind(id)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
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
