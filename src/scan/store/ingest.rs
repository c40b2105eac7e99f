//! Ingesting one scan file: one transaction holds the scan, every host sighting, the
//! host status changes, the events and their alert deliveries. A file already ingested
//! changes nothing; an incomplete one is recorded as failed and nothing else.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::io::{BufReader, Read};
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{Any, Row, Transaction};

use super::{ParamStyle, Store, StoreError, now};
use crate::scan::coverage::{Coverage, CoverageSpec};
use crate::scan::diff::{Change, NoisePolicy, PortChangeKind, compare_host, listed_ports};

use crate::scan::model::{Host, RunStats};
use crate::scan::parse::{ScanError, ScanReader};
use crate::scan::report::{change_text, ports_text};
use crate::scan::state::{self, HostStatus, Sighting, StatusEvent};
use quick_xml::events::Event;

/// What became of a file handed to [`Store::ingest`].
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case", rename_all_fields = "camelCase")]
pub enum IngestOutcome {
    /// Stored and compared.
    Ingested(Ingested),
    /// The same content was ingested before: nothing changed.
    AlreadyIngested {
        /// The group, `tenant/group`.
        group: String,
        /// The earlier scan.
        scan_id: i64,
    },
    /// Incomplete or malformed: recorded as a failed scan, never compared.
    Rejected {
        /// The group, `tenant/group`.
        group: String,
        /// The failed scan's record.
        scan_id: i64,
        /// Why.
        reason: String,
    },
}

/// A scan that was stored and compared.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ingested {
    /// The group, `tenant/group`.
    pub group: String,
    /// The scan's record.
    pub scan_id: i64,
    /// Hosts seen up.
    pub hosts_up: u64,
    /// The group's first complete scan: the baseline, compared with nothing and not alerted.
    pub baseline: bool,
    /// Changes found (events recorded).
    pub events: u64,
    /// Events not alerted because the same change was alerted within `repeatWindow` scans.
    pub suppressed: u64,
    /// Alert deliveries queued.
    pub alerts: u64,
    /// Hosts up that the group's targets do not cover (left out, or excluded): ignored.
    pub outside: u64,
}

/// A group as ingest needs it.
struct Group {
    id: i64,
    name: String,
    down_after: u32,
    routes: Vec<String>,
    /// Its targets and exclusions as the file says now.
    coverage_spec: CoverageSpec,
    coverage: Coverage,
}

/// Where events of the scan being ingested go: recorded at once (none in the baseline).
struct Sink<'a> {
    scan_id: i64,
    baseline: bool,
    repeat_window: u32,
    ingested: &'a mut Ingested,
}

/// Hosts sighted per batch of statements: 16,000 parameters at most, under every server's
/// limit (SQLite's 32,766, PostgreSQL's 65,535).
const BATCH: usize = 2000;

/// What the group knew of a host before this scan.
struct Known {
    status: HostStatus,
    misses: u32,
    seen_scan_id: Option<i64>,
    digest: Option<String>,
}

/// A host sighted in this scan, about to be written.
struct Sighted<'a> {
    address: &'a str,
    status: HostStatus,
    observation: &'a str,
    digest: &'a str,
    changed: bool,
}

/// A host seen up, as it is written: its observation (JSON) and the digest of it, made on the
/// thread that reads the file, ahead of the writes.
struct Observed {
    address: String,
    host: Host,
    observation: String,
    digest: String,
}

impl Observed {
    fn new(address: String, host: Host) -> Result<Self, serde_json::Error> {
        let observation = serde_json::to_string(&host)?;
        let digest = digest(&observation);
        Ok(Self { address, host, observation, digest })
    }
}

/// An event about to be recorded.
struct NewEvent {
    address: String,
    kind: String,
    summary: String,
    detail: String,
    fingerprint: String,
}

impl Store {
    /// Ingests the scan file at `path` into group `tenant/group`.
    pub async fn ingest(
        &self,
        tenant: &str,
        group: &str,
        path: &Path,
        noise: NoisePolicy,
        repeat_window: u32,
    ) -> Result<IngestOutcome, StoreError> {
        let group = self.group(tenant, group).await?;
        // The file is read twice on purpose: its hash decides, before anything is parsed or
        // written, whether it was ingested already (the usual case when a directory is
        // ingested again), and hashing runs at disk speed.
        let hash = content_hash(path).map_err(|e| StoreError::Query(format!("cannot read {}: {e}", path.display())))?;
        let earlier = sqlx::query("SELECT id FROM scans WHERE group_id = $1 AND content_hash = $2")
            .bind(group.id)
            .bind(&hash)
            .fetch_optional(&self.pool)
            .await?;
        if let Some(row) = earlier {
            return Ok(IngestOutcome::AlreadyIngested { group: group.name, scan_id: row.try_get(0)? });
        }
        let source = path.display().to_string();
        match self.ingest_complete(&group, path, &hash, &source, noise, repeat_window).await? {
            Ok(ingested) => Ok(IngestOutcome::Ingested(ingested)),
            Err(error) => {
                let scan_id: i64 = sqlx::query(
                    "INSERT INTO scans (group_id, content_hash, source, status, error, ingested_at) VALUES ($1, $2, $3, 'failed', $4, $5) RETURNING id",
                )
                .bind(group.id)
                .bind(&hash)
                .bind(&source)
                .bind(error.to_string())
                .bind(now())
                .fetch_one(&self.pool)
                .await?
                .try_get(0)?;
                Ok(IngestOutcome::Rejected { group: group.name, scan_id, reason: error.to_string() })
            }
        }
    }

    async fn group(&self, tenant: &str, group: &str) -> Result<Group, StoreError> {
        let name = format!("{tenant}/{group}");
        let row = sqlx::query(
            "SELECT g.id, g.down_after, g.spec FROM scan_groups g JOIN tenants t ON t.id = g.tenant_id \
             WHERE t.name = $1 AND g.name = $2 AND g.retired_at IS NULL",
        )
        .bind(tenant)
        .bind(group)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::UnknownGroup(name.clone()))?;
        let spec: serde_json::Value = serde_json::from_str(&row.try_get::<String, _>(2)?).unwrap_or_default();
        let routes = spec["alerts"]
            .as_array()
            .map(|a| a.iter().filter_map(|r| r.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let down_after = u32::try_from(row.try_get::<i64, _>(1)?).unwrap_or(1);
        let coverage_spec: CoverageSpec = serde_json::from_value(spec).unwrap_or_default();
        let coverage = Coverage::new(&coverage_spec);
        Ok(Group { id: row.try_get(0)?, name, down_after, routes, coverage_spec, coverage })
    }

    /// Stores a complete scan in one transaction; the inner error says why the file was
    /// rejected (the transaction is then rolled back).
    async fn ingest_complete(
        &self,
        group: &Group,
        path: &Path,
        hash: &str,
        source: &str,
        noise: NoisePolicy,
        repeat_window: u32,
    ) -> Result<Result<Ingested, ScanError>, StoreError> {
        let file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) => return Ok(Err(ScanError::Io(e.to_string()))),
        };
        let reader = match ScanReader::new(BufReader::with_capacity(64 * 1024, file)) {
            Ok(reader) => reader,
            Err(error) => return Ok(Err(error)),
        };
        let repeated = match repeated_addresses(path) {
            Ok(repeated) => repeated,
            Err(error) => return Ok(Err(error)),
        };
        let mut tx = self.pool.begin().await?;
        let previous = sqlx::query(
            "SELECT coverage FROM scans WHERE group_id = $1 AND status = 'complete' ORDER BY id DESC LIMIT 1",
        )
        .bind(group.id)
        .fetch_optional(&mut *tx)
        .await?;
        let baseline = previous.is_none();
        // Scans ingested before coverage was recorded covered whatever they saw.
        let previous: Option<Coverage> = match previous {
            Some(row) => row
                .try_get::<Option<String>, _>(0)?
                .and_then(|json| serde_json::from_str::<CoverageSpec>(&json).ok())
                .map(|spec| Coverage::new(&spec)),
            None => None,
        };
        let coverage = serde_json::to_string(&group.coverage_spec).map_err(|e| StoreError::Query(e.to_string()))?;
        let info = reader.info().clone();
        let scan_id: i64 = sqlx::query(
            "INSERT INTO scans (group_id, content_hash, source, status, started_at, ingested_at, nmap_version, args, baseline, coverage) \
             VALUES ($1, $2, $3, 'complete', $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(group.id)
        .bind(hash)
        .bind(source)
        .bind(info.start)
        .bind(now())
        .bind(&info.version)
        .bind(&info.args)
        .bind(i64::from(baseline))
        .bind(&coverage)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        let mut ingested = Ingested {
            group: group.name.clone(),
            scan_id,
            hosts_up: 0,
            baseline,
            events: 0,
            suppressed: 0,
            alerts: 0,
            outside: 0,
        };
        let mut sink = Sink { scan_id, baseline, repeat_window, ingested: &mut ingested };
        // The file is read on a thread of its own, a batch of hosts ahead of the writes.
        let (batches, mut received) = tokio::sync::mpsc::channel(2);
        let reading = tokio::task::spawn_blocking(move || read_hosts(reader, &repeated, &batches));
        while let Some(batch) = received.recv().await {
            self.seen(&mut tx, group, previous.as_ref(), batch, noise, &mut sink).await?;
        }
        let (merged, stats) = match reading.await.expect("the scan reader does not panic") {
            Ok(read) => read,
            Err(error) => return Ok(Err(error)),
        };
        let mut merged = merged.into_iter().peekable();
        while merged.peek().is_some() {
            let batch = merged
                .by_ref()
                .take(BATCH)
                .map(|(address, host)| Observed::new(address, host))
                .collect::<Result<_, _>>()
                .map_err(|e| StoreError::Query(e.to_string()))?;
            self.seen(&mut tx, group, previous.as_ref(), batch, noise, &mut sink).await?;
        }
        self.missed(&mut tx, group, &mut sink).await?;
        sqlx::query("UPDATE scans SET finished_at = $1, hosts_up = $2 WHERE id = $3")
            .bind(stats.finished)
            .bind(i64::try_from(sink.ingested.hosts_up).unwrap_or(i64::MAX))
            .bind(scan_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Ok(ingested))
    }

    /// Hosts seen up, a batch at a time (one query reads what the group knows of them, one
    /// writes them, one stores their observations). A host the group does not cover is
    /// ignored; one the previous scan did not cover is baselined (no alert); any other is
    /// compared with its last sighting. A host already sighted in this scan is not counted
    /// again.
    async fn seen(
        &self,
        tx: &mut Transaction<'_, Any>,
        group: &Group,
        previous: Option<&Coverage>,
        hosts: Vec<Observed>,
        noise: NoisePolicy,
        sink: &mut Sink<'_>,
    ) -> Result<(), StoreError> {
        let scan_id = sink.scan_id;
        let mut covered = Vec::with_capacity(hosts.len());
        let mut addresses = HashSet::with_capacity(hosts.len());
        for observed in hosts {
            if !group.coverage.covers(&observed.host) {
                sink.ingested.outside += 1;
            } else if addresses.insert(observed.address.clone()) {
                covered.push(observed);
            }
        }
        if covered.is_empty() {
            return Ok(());
        }
        let known = self.known(tx, group, &covered).await?;
        let newly_covered = |host: &Host| previous.is_some_and(|p| !p.covers(host));
        // The last observation, read back only where the digest says the host changed. A host
        // the previous scan did not cover starts afresh, as in a baseline.
        let changed: Vec<&str> = covered
            .iter()
            .filter(|observed| {
                known.get(observed.address.as_str()).is_some_and(|known| {
                    known.seen_scan_id != Some(scan_id)
                        && known.digest.as_ref() != Some(&observed.digest)
                        && !newly_covered(&observed.host)
                })
            })
            .map(|observed| observed.address.as_str())
            .collect();
        let last = self.last_observations(tx, group, &changed).await?;
        let mut sighted = Vec::with_capacity(covered.len());
        let mut events = Vec::new();
        for Observed { address, host, observation, digest } in &covered {
            let newly_covered = newly_covered(host);
            let Some(known) = known.get(address.as_str()) else {
                let transition = state::next(None, Sighting::Seen { changed: false }, group.down_after);
                if let Some(event) = transition.event.filter(|_| !newly_covered) {
                    events.push(status_event(address, event, Some(host)));
                }
                sighted.push(Sighted { address, status: transition.status, observation, digest, changed: false });
                continue;
            };
            if known.seen_scan_id == Some(scan_id) {
                continue;
            }
            let changes: Vec<Change> = match last.get(address.as_str()).map(|last| serde_json::from_str::<Host>(last)) {
                Some(Ok(last)) => {
                    compare_host(Some(&last), Some(host), noise).changes.into_iter().filter(alertable).collect()
                }
                _ => Vec::new(),
            };
            let before = (!newly_covered).then_some((known.status, known.misses));
            let transition = state::next(before, Sighting::Seen { changed: !changes.is_empty() }, group.down_after);
            if let Some(event) = transition.event.filter(|_| !newly_covered) {
                events.push(status_event(address, event, Some(host)));
            }
            events.extend(changes.iter().map(|change| change_event(address, change)));
            let changed = !changes.is_empty();
            sighted.push(Sighted { address, status: transition.status, observation, digest, changed });
        }
        self.store_sighted(tx, group, scan_id, &sighted).await?;
        sink.ingested.hosts_up += sighted.len() as u64;
        self.record(tx, group, events, sink).await
    }

    /// What the group knows of `hosts`, by address: one query.
    async fn known(
        &self,
        tx: &mut Transaction<'_, Any>,
        group: &Group,
        hosts: &[Observed],
    ) -> Result<HashMap<String, Known>, StoreError> {
        let sql = format!(
            "SELECT h.address, h.status, h.misses, h.seen_scan_id, h.digest FROM hosts h WHERE {}",
            of_group(self.params, hosts.len())
        );
        // Not prepared once for the transaction: its best plan changes as the table fills.
        let mut query = sqlx::query(&sql).persistent(false).bind(group.id);
        for observed in hosts {
            query = query.bind(&observed.address);
        }
        let mut known = HashMap::with_capacity(hosts.len());
        for row in query.fetch_all(&mut **tx).await? {
            let status: HostStatus = row.try_get::<String, _>(1)?.parse().map_err(StoreError::Query)?;
            let misses = u32::try_from(row.try_get::<i64, _>(2)?).unwrap_or(u32::MAX);
            let seen_scan_id = row.try_get::<Option<i64>, _>(3)?;
            let digest = row.try_get::<Option<String>, _>(4)?;
            known.insert(row.try_get::<String, _>(0)?, Known { status, misses, seen_scan_id, digest });
        }
        Ok(known)
    }

    /// The last observation of each host of `addresses` (JSON), by address: one query.
    async fn last_observations(
        &self,
        tx: &mut Transaction<'_, Any>,
        group: &Group,
        addresses: &[&str],
    ) -> Result<HashMap<String, String>, StoreError> {
        if addresses.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT h.address, o.host FROM hosts h JOIN observations o ON o.scan_id = h.seen_scan_id AND o.address = h.address \
             WHERE {}",
            of_group(self.params, addresses.len())
        );
        let mut query = sqlx::query(&sql).persistent(false).bind(group.id);
        for address in addresses {
            query = query.bind(*address);
        }
        let mut last = HashMap::with_capacity(addresses.len());
        for row in query.fetch_all(&mut **tx).await? {
            last.insert(row.try_get::<String, _>(0)?, row.try_get::<String, _>(1)?);
        }
        Ok(last)
    }

    /// Writes hosts seen in scan `scan_id` (added, or updated: seen now, not missed) and their
    /// observations: two multi-row statements.
    async fn store_sighted(
        &self,
        tx: &mut Transaction<'_, Any>,
        group: &Group,
        scan_id: i64,
        sighted: &[Sighted<'_>],
    ) -> Result<(), StoreError> {
        if sighted.is_empty() {
            return Ok(());
        }
        let now = now();
        let sql = format!(
            "INSERT INTO hosts (group_id, address, status, first_scan_id, seen_scan_id, last_seen_at, changed_scan_id, digest) \
             VALUES {} ON CONFLICT (group_id, address) DO UPDATE SET status = excluded.status, misses = 0, \
             seen_scan_id = excluded.seen_scan_id, last_seen_at = excluded.last_seen_at, digest = excluded.digest, \
             changed_scan_id = COALESCE(excluded.changed_scan_id, hosts.changed_scan_id)",
            self.params.rows(sighted.len(), 8)
        );
        let mut query = sqlx::query(&sql).persistent(false);
        for host in sighted {
            query = query
                .bind(group.id)
                .bind(host.address)
                .bind(host.status.code())
                .bind(scan_id)
                .bind(scan_id)
                .bind(now)
                .bind(host.changed.then_some(scan_id))
                .bind(host.digest);
        }
        query.execute(&mut **tx).await?;
        let sql =
            format!("INSERT INTO observations (scan_id, address, host) VALUES {}", self.params.rows(sighted.len(), 3));
        let mut query = sqlx::query(&sql).persistent(false);
        for host in sighted {
            query = query.bind(scan_id).bind(host.address).bind(host.observation);
        }
        query.execute(&mut **tx).await?;
        Ok(())
    }

    /// Advances every host of the group that this scan did not see.
    async fn missed(
        &self,
        tx: &mut Transaction<'_, Any>,
        group: &Group,
        sink: &mut Sink<'_>,
    ) -> Result<(), StoreError> {
        let scan_id = sink.scan_id;
        // The last observation only when a target is a host name: an address decides the rest.
        let observation = if group.coverage.names_hosts() {
            "(SELECT o.host FROM observations o WHERE o.scan_id = h.seen_scan_id AND o.address = h.address)"
        } else {
            "NULL"
        };
        let rows = sqlx::query(&format!("SELECT h.id, h.address, h.status, h.misses, {observation} FROM hosts h WHERE h.group_id = $1 AND (h.seen_scan_id IS NULL OR h.seen_scan_id <> $2)"))
            .bind(group.id)
            .bind(scan_id)
            .fetch_all(&mut **tx)
            .await?;
        // The hosts that move alike are written together.
        let mut moves: HashMap<(&'static str, u32), Vec<i64>> = HashMap::new();
        let mut events = Vec::new();
        for row in rows {
            let status: HostStatus = row.try_get::<String, _>(2)?.parse().map_err(StoreError::Query)?;
            let misses = u32::try_from(row.try_get::<i64, _>(3)?).unwrap_or(u32::MAX);
            let address: String = row.try_get(1)?;
            // Not scanned any more (targets narrowed, or excluded): gone, without an alert.
            let covered = group.coverage.covers_address(&address).unwrap_or_else(|| {
                let last = row.try_get::<Option<String>, _>(4).ok().flatten();
                let last: Option<Host> = last.and_then(|json| serde_json::from_str(&json).ok());
                last.is_none_or(|host| group.coverage.covers(&host))
            });
            let transition = if covered {
                state::next(Some((status, misses)), Sighting::Missed, group.down_after)
            } else {
                state::next(Some((HostStatus::Gone, misses)), Sighting::Missed, group.down_after)
            };
            moves.entry((transition.status.code(), transition.misses)).or_default().push(row.try_get::<i64, _>(0)?);
            if let Some(event) = transition.event {
                events.push(status_event(&address, event, None));
            }
        }
        for ((status, misses), ids) in moves {
            for ids in ids.chunks(BATCH) {
                let mut placeholders = self.params.placeholders(ids.len() + 2);
                let (status_at, misses_at) =
                    (placeholders.next().unwrap_or_default(), placeholders.next().unwrap_or_default());
                let sql = format!(
                    "UPDATE hosts SET status = {status_at}, misses = {misses_at} WHERE id IN ({})",
                    placeholders.collect::<Vec<_>>().join(", ")
                );
                let mut query = sqlx::query(&sql).persistent(false).bind(status).bind(i64::from(misses));
                for id in ids {
                    query = query.bind(*id);
                }
                query.execute(&mut **tx).await?;
            }
        }
        self.record(tx, group, events, sink).await
    }

    /// Records events (none in the baseline) and queues an alert per route for each, unless
    /// the same change was alerted within the repeat window: a few multi-row statements per
    /// batch of events, not one or more per event.
    async fn record(
        &self,
        tx: &mut Transaction<'_, Any>,
        group: &Group,
        events: Vec<NewEvent>,
        sink: &mut Sink<'_>,
    ) -> Result<(), StoreError> {
        if sink.baseline {
            return Ok(());
        }
        let now = now();
        for events in events.chunks(EVENT_BATCH) {
            let repeated = self.alerted_recently(tx, group, events, sink).await?;
            let sql = format!(
                "INSERT INTO events (scan_id, group_id, address, kind, summary, detail, fingerprint, suppressed, created_at) \
                 VALUES {} RETURNING id, suppressed",
                self.params.rows(events.len(), 9)
            );
            let mut query = sqlx::query(&sql).persistent(false);
            for event in events {
                query = query
                    .bind(sink.scan_id)
                    .bind(group.id)
                    .bind(&event.address)
                    .bind(&event.kind)
                    .bind(&event.summary)
                    .bind(&event.detail)
                    .bind(&event.fingerprint)
                    .bind(i64::from(repeated.contains(event.fingerprint.as_str())))
                    .bind(now);
            }
            // Which id went to which event does not matter here: each one alerted gets a
            // delivery per route.
            let mut alerted = Vec::with_capacity(events.len());
            for row in query.fetch_all(&mut **tx).await? {
                if row.try_get::<i64, _>(1)? == 0 {
                    alerted.push(row.try_get::<i64, _>(0)?);
                }
            }
            sink.ingested.events += events.len() as u64;
            sink.ingested.suppressed += (events.len() - alerted.len()) as u64;
            let deliveries: Vec<(i64, &String)> =
                alerted.iter().flat_map(|&id| group.routes.iter().map(move |route| (id, route))).collect();
            for deliveries in deliveries.chunks(BATCH) {
                let sql = format!(
                    "INSERT INTO outbox (event_id, route, next_attempt_at) VALUES {}",
                    self.params.rows(deliveries.len(), 3)
                );
                let mut query = sqlx::query(&sql).persistent(false);
                for (id, route) in deliveries {
                    query = query.bind(*id).bind(*route).bind(now);
                }
                query.execute(&mut **tx).await?;
                sink.ingested.alerts += deliveries.len() as u64;
            }
        }
        Ok(())
    }

    /// The fingerprints among `events` of changes alerted within the repeat window (the
    /// complete scans of the group before this one): one query.
    async fn alerted_recently(
        &self,
        tx: &mut Transaction<'_, Any>,
        group: &Group,
        events: &[NewEvent],
        sink: &Sink<'_>,
    ) -> Result<HashSet<String>, StoreError> {
        if sink.repeat_window == 0 || events.is_empty() {
            return Ok(HashSet::new());
        }
        let mut placeholders = self.params.placeholders(events.len() + 4);
        let group_at = placeholders.next().unwrap_or_default();
        let fingerprints = placeholders.by_ref().take(events.len()).collect::<Vec<_>>().join(", ");
        let rest: Vec<String> = placeholders.collect();
        let sql = format!(
            "SELECT DISTINCT e.fingerprint FROM events e WHERE e.group_id = {group_at} AND e.suppressed = 0 \
             AND e.fingerprint IN ({fingerprints}) AND e.scan_id IN (SELECT s.id FROM scans s WHERE s.group_id = {} \
             AND s.status = 'complete' AND s.id < {} ORDER BY s.id DESC LIMIT {})",
            rest[0], rest[1], rest[2]
        );
        let mut query = sqlx::query(&sql).persistent(false).bind(group.id);
        for event in events {
            query = query.bind(&event.fingerprint);
        }
        query = query.bind(group.id).bind(sink.scan_id).bind(i64::from(sink.repeat_window));
        let mut repeated = HashSet::new();
        for row in query.fetch_all(&mut **tx).await? {
            repeated.insert(row.try_get::<String, _>(0)?);
        }
        Ok(repeated)
    }
}

/// Events recorded per statement: 9,000 parameters, under every server's limit.
const EVENT_BATCH: usize = 1000;

/// The condition selecting `count` hosts `h` of a group: the group's id is bound first, then
/// the addresses.
fn of_group(params: ParamStyle, count: usize) -> String {
    let mut placeholders = params.placeholders(count + 1);
    let group_id = placeholders.next().unwrap_or_default();
    format!("h.group_id = {group_id} AND h.address IN ({})", placeholders.collect::<Vec<_>>().join(", "))
}

/// The digest of an observation without its times (the last field, never compared): two
/// observations with the same digest say the same of their host. (`,"times":` cannot occur
/// inside a JSON string, whose quotes are escaped.)
fn digest(observation: &str) -> String {
    let without_times = observation.rfind(",\"times\":").map_or(observation, |at| &observation[..at]);
    hex::encode(&Sha256::digest(without_times.as_bytes())[..16])
}

/// Changes worth an alert: ports, services, names, addresses and OS; not script output
/// or the count of ports nmap did not list.
fn alertable(change: &Change) -> bool {
    match change {
        Change::Port { kind, .. } => *kind != PortChangeKind::ScriptsChanged,
        Change::Addresses { .. } | Change::Hostnames { .. } | Change::Os { .. } => true,
        _ => false,
    }
}

/// A status event; a host seen (new, or back up) is listed with its ports, so that the alert
/// for a machine that appeared says what it exposes.
fn status_event(address: &str, event: StatusEvent, seen: Option<&Host>) -> NewEvent {
    let (kind, text) = match event {
        StatusEvent::HostNew => ("host-new", "new host"),
        StatusEvent::HostDown => ("host-down", "host down"),
        StatusEvent::HostBackUp => ("host-back-up", "host back up"),
    };
    let mut detail = serde_json::json!({ "change": kind });
    let summary = match seen {
        Some(host) => {
            let ports = listed_ports(host);
            detail["ports"] = serde_json::to_value(&ports).unwrap_or_default();
            format!("{address}: {text}: {}", ports_text(&ports))
        }
        None => format!("{address}: {text}"),
    };
    NewEvent {
        address: address.to_owned(),
        kind: kind.to_owned(),
        summary,
        detail: detail.to_string(),
        fingerprint: format!("{kind} {address}"),
    }
}

fn change_event(address: &str, change: &Change) -> NewEvent {
    let detail = serde_json::to_value(change).unwrap_or_default();
    let kind = match change {
        Change::Port { kind, .. } => match kind {
            PortChangeKind::Opened => "port-opened",
            PortChangeKind::Closed => "port-closed",
            PortChangeKind::StateChanged => "port-state-changed",
            PortChangeKind::ServiceChanged => "service-changed",
            PortChangeKind::ScriptsChanged => "scripts-changed",
        },
        Change::Hostnames { .. } => "hostnames-changed",
        Change::Addresses { .. } => "addresses-changed",
        Change::Os { .. } => "os-changed",
        _ => "changed",
    };
    // The same change seen again is the same fingerprint: what changed, and to what.
    let after = match change {
        Change::Port { protocol, port, after, .. } => {
            format!("{port}/{protocol} {}", serde_json::to_string(after).unwrap_or_default())
        }
        other => serde_json::to_value(other).map(|v| v["after"].to_string()).unwrap_or_default(),
    };
    NewEvent {
        address: address.to_owned(),
        kind: kind.to_owned(),
        summary: format!("{address}: {}", change_text(change)),
        detail: detail.to_string(),
        fingerprint: format!("{kind} {address} {after}"),
    }
}

/// Reads the hosts up of a scan, in batches sent to `batches`, but for those listed more than
/// once (`repeated`), whose entries are merged and returned with the scan's end. Stops early
/// when nobody receives any more.
fn read_hosts<R: std::io::BufRead>(
    mut reader: ScanReader<R>,
    repeated: &HashSet<String>,
    batches: &tokio::sync::mpsc::Sender<Vec<Observed>>,
) -> Result<(Vec<(String, Host)>, RunStats), ScanError> {
    let mut merged: Vec<(String, Host)> = Vec::new();
    let mut merged_at: HashMap<String, usize> = HashMap::new();
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(host) = reader.next_host()? {
        if !host.is_up() {
            continue;
        }
        let Some(address) = host.primary_address().map(str::to_owned) else { continue };
        if repeated.contains(&address) {
            match merged_at.get(&address) {
                Some(&at) => merged[at].1.merge(host),
                None => {
                    merged_at.insert(address.clone(), merged.len());
                    merged.push((address, host));
                }
            }
            continue;
        }
        batch.push(Observed::new(address, host).map_err(|e| ScanError::Io(e.to_string()))?);
        if batch.len() == BATCH && batches.blocking_send(std::mem::take(&mut batch)).is_err() {
            return Ok((Vec::new(), RunStats::default()));
        }
    }
    let stats = reader.finish()?;
    if !batch.is_empty() {
        let _ = batches.blocking_send(batch);
    }
    Ok((merged, stats))
}

/// Addresses that appear more than once among the hosts of the scan at `path` (nmap lists a
/// host twice when a target is given twice): a superset of the repeated hosts' first
/// addresses, which is all ingest needs. A quick pass over the elements, no more: the full
/// reader checks the file. A fixed-size filter (2 MiB) keeps memory flat whatever the scan's
/// size; the few addresses it wrongly suspects are merged with nothing.
fn repeated_addresses(path: &Path) -> Result<HashSet<String>, ScanError> {
    const BITS: u64 = 1 << 24;
    let mut filter = vec![0u64; (BITS / 64) as usize];
    let mut repeated = HashSet::new();
    let file = std::fs::File::open(path).map_err(|e| ScanError::Io(e.to_string()))?;
    let mut reader = quick_xml::Reader::from_reader(BufReader::with_capacity(64 * 1024, file));
    let hasher = foldhash::fast::FixedState::with_seed(0x5ec1ab);
    let mut buf = Vec::new();
    let mut in_host = false;
    loop {
        let (element, end) = match reader.read_event_into(&mut buf) {
            Ok(Event::Start(element)) => (element, false),
            Ok(Event::Empty(element)) => (element, true),
            Ok(Event::End(element)) => {
                in_host &= element.local_name().into_inner() != "host";
                buf.clear();
                continue;
            }
            // The full reader says what is wrong with the file.
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => {
                buf.clear();
                continue;
            }
        };
        match element.local_name().into_inner() {
            "host" => in_host = !end,
            "address" if in_host => {
                let addr = element.attributes().flatten().find(|a| a.key.into_inner() == "addr");
                if let Some(addr) = addr {
                    let address = addr.value.into_owned();
                    let hash = hasher.hash_one(&address);
                    let step = hash.rotate_left(32) | 1;
                    let mut seen = true;
                    for probe in 0..3u64 {
                        let bit = hash.wrapping_add(probe.wrapping_mul(step)) % BITS;
                        let (word, mask) = ((bit / 64) as usize, 1u64 << (bit % 64));
                        seen &= filter[word] & mask != 0;
                        filter[word] |= mask;
                    }
                    if seen {
                        repeated.insert(address);
                    }
                }
            }
            _ => {}
        }
        buf.clear();
    }
    Ok(repeated)
}

/// SHA-256 of the file, read in chunks.
fn content_hash(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_ignores_the_times_and_nothing_else() {
        let host = |product: &str, start: i64| {
            let json = serde_json::json!({ "state": "up", "addresses": [{ "addr": "127.0.0.2", "kind": "ipv4" }],
                "ports": [{ "product": product }], "times": { "start": start, "end": start + 5 } });
            json.to_string()
        };
        assert_eq!(digest(&host("OpenSSH", 1)), digest(&host("OpenSSH", 2)));
        assert_ne!(digest(&host("OpenSSH", 1)), digest(&host("Dropbear", 1)));
        assert_eq!(digest(&host("OpenSSH", 1)).len(), 32);
    }
}
