//! `seclab scan ...`: the scan side by hand.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use serde_json::json;

use seclab::config::Lab;
use seclab::reconcile::scan_database;
use seclab::scan::alerts::{self, DeliveryReport};
use seclab::scan::diff::{self, Matching, NoisePolicy};
use seclab::scan::files::{self, ScanFile};
use seclab::scan::model::Host;
use seclab::scan::store::{IngestOutcome, ScanRecord, Store, StoreError, SyncAction};
use seclab::scan::{chunks, parse, report, run as nmap};
use seclab::words::count;

use super::{Failure, Secrets, exit, load, load_with_secrets, print};
use crate::{Cli, DeliveryArgs, MatchBy, Output, ScanCommand};

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Failure::of(error)
    }
}

/// `seclab scan ...`.
pub fn run(cli: &Cli, command: &ScanCommand) -> Result<(), Failure> {
    let mut stored_diff = None;
    if let ScanCommand::Diff { scans, group, matching, ignore_tcpwrapped, ignore_service_timeouts, show_noise } =
        command
    {
        let noise =
            NoisePolicy { ignore_tcpwrapped: *ignore_tcpwrapped, ignore_service_timeouts: *ignore_service_timeouts };
        let matching = match matching {
            MatchBy::Address => Matching::Address,
            MatchBy::Ndiff => Matching::Ndiff,
        };
        match (group, scans.as_slice()) {
            // Two files, no database and no desired-state file needed.
            (None, [before, after]) => return diff(cli, Path::new(before), Path::new(after), matching, noise),
            (None, _) => {
                return Err(Failure::usage(
                    "`scan diff` needs two files, or --group",
                    "Compare two files with `seclab scan diff A.xml B.xml`, or stored scans with `seclab scan diff --group TENANT/GROUP`.",
                ));
            }
            (Some(group), ids) => {
                let ids = ids
                    .iter()
                    .map(|id| {
                        id.parse::<i64>().map_err(|_| {
                            Failure::usage(
                                format!("`{id}` is not a scan id"),
                                &format!("`seclab scan history {group}` lists them."),
                            )
                        })
                    })
                    .collect::<Result<Vec<i64>, Failure>>()?;
                stored_diff = Some((group.clone(), ids, matching, noise, *show_noise));
            }
        }
    }
    // What ingests or delivers needs the alerts' secrets here; reading the database does not.
    let lab = match command {
        ScanCommand::Sync | ScanCommand::Ingest { .. } | ScanCommand::Run { .. } | ScanCommand::Deliver { .. } => {
            load_with_secrets(cli, Secrets::Scans)?
        }
        _ => load(cli)?,
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(Failure::of)?;
    runtime.block_on(async {
        let store = scan_database::open(&lab).await?;
        let result = match command {
            ScanCommand::Sync => sync(cli, &lab, &store).await,
            ScanCommand::Ingest { paths, group, delivery } => {
                let files = scan_files(&lab, paths, group.as_deref())?;
                ingest(cli, &lab, &store, files, delivery).await
            }
            ScanCommand::Run { group, nmap, delivery } => {
                let (tenant, name) = split_group(group)?;
                let spec = lab
                    .spec()
                    .tenants
                    .iter()
                    .find(|t| t.name == tenant)
                    .and_then(|t| t.scans.iter().find(|g| g.name == name));
                let Some(spec) = spec else {
                    return Err(Failure::error(format!(
                        "no scan group `{group}` in {}; see `tenants[].scans`",
                        cli.file.display()
                    )));
                };
                let dir = scan_database::scan_directory(&lab).join(tenant).join(name);
                // nmap's own percentage, on a terminal only, overwritten in place.
                let terminal = cli.output == Output::Text && std::io::stderr().is_terminal();
                let show = |done: &str| eprint!("\r\x1b[K{group}: {done}");
                let progress: Option<&(dyn Fn(&str) + Sync)> = if terminal { Some(&show) } else { None };
                let path = nmap::run_nmap(nmap, &spec.nmap_arguments(), &dir, progress).await.map_err(Failure::of)?;
                if terminal {
                    eprint!("\r\x1b[K");
                }
                let file = ScanFile { tenant: tenant.to_owned(), group: name.to_owned(), path };
                ingest(cli, &lab, &store, vec![file], delivery).await
            }
            ScanCommand::Deliver { timeout } => {
                let report = alerts::deliver(&store, lab.spec(), &scan_database::base_dir(&lab), *timeout).await?;
                print_delivery(cli, &report)?;
                if report.pending > 0 {
                    let cause = report.last_failure.as_deref().unwrap_or("no route accepted them in time");
                    // The JSON document printed already says what waits.
                    return Err(Failure {
                        code: exit::ERROR,
                        text: format!(
                            "error: {} still undelivered ({cause}); they stay queued: fix the route, then run this again",
                            count(report.pending as u64, "alert", "alerts")
                        ),
                        json: serde_json::Value::Null,
                    });
                }
                Ok(())
            }
            ScanCommand::Status => status(cli, &store).await,
            ScanCommand::History { group, host, limit } => history(cli, &store, group, host.as_deref(), *limit).await,
            ScanCommand::Diff { .. } => match &stored_diff {
                Some((group, ids, matching, noise, show_noise)) => {
                    // As `scan ingest` compared them: the file's noise filters, unless shown.
                    let noise = if *show_noise { *noise } else { noise.or(NoisePolicy::of(&lab.spec().alerts)) };
                    diff_stored(cli, &store, group, ids, *matching, noise).await
                }
                None => Ok(()), // two files: compared above, without the lab
            },
        };
        store.close().await;
        result
    })
}

fn split_group(group: &str) -> Result<(&str, &str), Failure> {
    group.split_once('/').filter(|(t, g)| !t.is_empty() && !g.is_empty() && !g.contains('/')).ok_or_else(|| {
        Failure::usage(format!("`{group}` is not a group"), "Write `tenant/group`, e.g. `barbican/dmz`.")
    })
}

async fn sync(cli: &Cli, lab: &Lab, store: &Store) -> Result<(), Failure> {
    let changes = store.sync(lab.spec()).await?;
    match cli.output {
        Output::Json => print(&json!({ "changes": changes }).to_string()),
        Output::Text if changes.is_empty() => print("scan database is up to date"),
        Output::Text => {
            let lines: Vec<String> = changes
                .iter()
                .map(|c| {
                    let action = match c.action {
                        SyncAction::Created => "created",
                        SyncAction::Updated => "updated",
                        SyncAction::Retired => "retired (history kept)",
                        SyncAction::Restored => "restored",
                    };
                    format!("{} {}: {action}", c.object, c.name)
                })
                .collect();
            print(&lines.join("\n"))
        }
    }
}

/// The files to ingest: those named (with their group from `--group` or their directory),
/// every finished scan under the directories named, or under the scan directory.
fn scan_files(lab: &Lab, paths: &[PathBuf], group: Option<&str>) -> Result<Vec<ScanFile>, Failure> {
    let forced = group.map(split_group).transpose()?;
    let default = [scan_database::scan_directory(lab)];
    let roots: &[PathBuf] = if paths.is_empty() { &default } else { paths };
    let mut found = Vec::new();
    for root in roots {
        if root.is_dir() {
            let files =
                files::find(root).map_err(|e| Failure::error(format!("cannot read {}: {e}", root.display())))?;
            found.extend(files);
        } else if root.is_file() {
            let (tenant, group) = match forced {
                Some((t, g)) => (t.to_owned(), g.to_owned()),
                None => files::group_of(root).ok_or_else(|| {
                    Failure::error(format!("cannot tell the group of {}: pass --group tenant/group", root.display()))
                })?,
            };
            found.push(ScanFile { tenant, group, path: root.clone() });
        } else {
            let hint = if paths.is_empty() { "; pass scan files, or set scanDatabase.scanDirectory" } else { "" };
            return Err(Failure::error(format!("{} does not exist{hint}", root.display())));
        }
    }
    Ok(found)
}

async fn ingest(
    cli: &Cli,
    lab: &Lab,
    store: &Store,
    files: Vec<ScanFile>,
    delivery: &DeliveryArgs,
) -> Result<(), Failure> {
    store.sync(lab.spec()).await?;
    let alerts = &lab.spec().alerts;
    let noise = NoisePolicy::of(alerts);
    let mut outcomes = Vec::new();
    for file in &files {
        let outcome = store.ingest(&file.tenant, &file.group, &file.path, noise, alerts.repeat_window).await?;
        outcomes.push((file, outcome));
    }
    let rejected = outcomes.iter().any(|(_, o)| matches!(o, IngestOutcome::Rejected { .. }));
    let report = if delivery.no_deliver {
        None
    } else {
        Some(alerts::deliver(store, lab.spec(), &scan_database::base_dir(lab), delivery.alert_timeout).await?)
    };
    match cli.output {
        Output::Json => {
            let files: Vec<_> =
                outcomes.iter().map(|(f, o)| json!({ "file": f.path.display().to_string(), "outcome": o })).collect();
            print(&json!({ "files": files, "alerts": report, "noise": noise }).to_string())?;
        }
        Output::Text => {
            let mut lines: Vec<String> = outcomes.iter().map(|(f, o)| ingest_line(f, o)).collect();
            if files.is_empty() {
                lines.push("no scan files found".to_owned());
            }
            if let Some(report) = report.as_ref().filter(|r| r.delivered > 0 || r.pending > 0 || r.failed_attempts > 0)
            {
                lines.push(delivery_line(report));
            }
            print(&lines.join("\n"))?;
        }
    }
    if rejected {
        return Err(Failure {
            code: exit::INVALID_INPUT,
            text: "error: some scans were rejected; they are recorded as failed and were not compared".into(),
            json: serde_json::Value::Null,
        });
    }
    Ok(())
}

fn ingest_line(file: &ScanFile, outcome: &IngestOutcome) -> String {
    let name =
        file.path.file_name().map_or_else(|| file.path.display().to_string(), |n| n.to_string_lossy().into_owned());
    let what = match outcome {
        IngestOutcome::Ingested(i) if i.baseline => {
            format!(
                "baseline: {} (the group's first complete scan; later scans are compared with it)",
                count(i.hosts_up, "host up", "hosts up")
            )
        }
        IngestOutcome::Ingested(i) => {
            let suppressed = if i.suppressed > 0 {
                format!(" ({} seen within the repeat window, not alerted)", i.suppressed)
            } else {
                String::new()
            };
            format!(
                "ingested: {}, {}{suppressed}, {}",
                count(i.hosts_up, "host up", "hosts up"),
                count(i.events, "change", "changes"),
                count(i.alerts, "alert queued", "alerts queued")
            )
        }
        IngestOutcome::AlreadyIngested { scan_id, .. } => {
            format!("already ingested as scan {scan_id}; nothing changed")
        }
        IngestOutcome::Rejected { scan_id, reason, .. } => {
            format!("rejected: {reason}; recorded as failed scan {scan_id}")
        }
    };
    let outside = match outcome {
        IngestOutcome::Ingested(i) if i.outside > 0 => {
            format!("; {} outside the group's targets ignored", count(i.outside, "host up", "hosts up"))
        }
        _ => String::new(),
    };
    format!("{}/{} {name}: {what}{outside}", file.tenant, file.group)
}

fn delivery_line(report: &DeliveryReport) -> String {
    let mut line = format!("alerts: {} delivered", report.delivered);
    if report.pending > 0 {
        line.push_str(&format!(", {} still waiting (retried by `seclab scan deliver`)", report.pending));
    }
    line
}

/// `scan deliver`'s own line: what it delivered (what waits, it says as its error).
fn print_delivery(cli: &Cli, report: &DeliveryReport) -> Result<(), Failure> {
    match cli.output {
        Output::Json => print(&json!({ "alerts": report }).to_string()),
        Output::Text => print(&format!("alerts: {} delivered", report.delivered)),
    }
}

fn time(seconds: Option<i64>) -> String {
    seconds
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map_or_else(|| "-".to_owned(), |t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
}

async fn status(cli: &Cli, store: &Store) -> Result<(), Failure> {
    let groups = store.status().await?;
    if cli.output == Output::Json {
        return print(&json!({ "groups": groups }).to_string());
    }
    if groups.is_empty() {
        return print("no scan groups yet: add `scans` to a tenant, then run `seclab scan sync`");
    }
    let mut rows =
        vec![["GROUP".to_owned(), "LAST SCAN".into(), "RESULT".into(), "HOSTS".into(), "ALERTS WAITING".into()]];
    for g in &groups {
        let hosts = if g.hosts.is_empty() {
            "-".to_owned()
        } else {
            g.hosts.iter().map(|(s, n)| format!("{n} {s}")).collect::<Vec<_>>().join(", ")
        };
        let (when, result) = match &g.last_scan {
            Some(scan) => (time(scan.started_at.or(Some(scan.ingested_at))), scan.status.clone()),
            None => ("never".to_owned(), "-".to_owned()),
        };
        rows.push([g.group.clone(), when, result, hosts, g.pending_alerts.to_string()]);
    }
    print(&table(&rows))
}

async fn history(cli: &Cli, store: &Store, group: &str, host: Option<&str>, limit: i64) -> Result<(), Failure> {
    let (tenant, name) = split_group(group)?;
    if let Some(address) = host {
        let events = store.event_history(tenant, name, Some(address), limit).await?;
        let status = store.host_status(tenant, name, address).await?;
        if cli.output == Output::Json {
            let status = status.map(|(code, misses)| json!({ "status": code, "misses": misses }));
            return print(&json!({ "group": group, "host": address, "current": status, "events": events }).to_string());
        }
        let Some((code, misses)) = status else {
            return Err(Failure::error(format!("{address} has never been seen in {group}")));
        };
        let mut lines = vec![format!("{address} in {group}: {code} (missed {misses} scans in a row)")];
        lines.extend(events.iter().map(|e| {
            let note = if e.suppressed { " (not alerted: repeat)" } else { "" };
            format!("scan {} {}: {}{note}", e.scan_id, time(Some(e.created_at)), e.summary)
        }));
        return print(&lines.join("\n"));
    }
    let scans = store.scan_history(tenant, name, limit).await?;
    if cli.output == Output::Json {
        return print(&json!({ "group": group, "scans": scans }).to_string());
    }
    let mut rows = vec![[
        "SCAN".to_owned(),
        "STARTED".into(),
        "RESULT".into(),
        "HOSTS UP".into(),
        "CHANGES".into(),
        "FILE".into(),
    ]];
    for s in &scans {
        let result = match (&s.error, s.baseline) {
            (Some(error), _) => format!("{}: {error}", s.status),
            (None, true) => format!("{} (baseline)", s.status),
            (None, false) => s.status.clone(),
        };
        rows.push([
            s.id.to_string(),
            time(s.started_at),
            result,
            s.hosts_up.to_string(),
            s.events.to_string(),
            s.source.clone(),
        ]);
    }
    print(&table(&rows))
}

/// Rows as aligned columns, like `kubectl get`.
fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let widths: Vec<usize> = (0..N).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
            cells.join("  ").trim_end().to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `seclab scan diff --group T/G [A] [B]`: two stored scans, as the file form compares files.
async fn diff_stored(
    cli: &Cli,
    store: &Store,
    group: &str,
    ids: &[i64],
    matching: Matching,
    noise: NoisePolicy,
) -> Result<(), Failure> {
    let (tenant, name) = split_group(group)?;
    let missing =
        |id: i64| Failure::error(format!("{group} has no scan {id}; `seclab scan history {group}` lists its scans"));
    let rejected = |id: i64, record: &ScanRecord| {
        let message = format!(
            "scan {id} of {group} was rejected ({}); it was not compared",
            record.error.as_deref().unwrap_or("incomplete")
        );
        Failure::invalid_input(message).with(json!({ "scan": id }))
    };
    // One id: that scan and the complete one before it; a scan that was rejected says so.
    if let [id] = ids {
        match store.stored_scan(tenant, name, *id).await? {
            None => return Err(missing(*id)),
            Some((record, _)) if record.status != "complete" => return Err(rejected(*id, &record)),
            Some(_) => {}
        }
    }
    let pair = match ids {
        [before, after] => (*before, *after),
        _ => {
            let complete = store.complete_scans(tenant, name, 64).await?;
            let later = match ids.first() {
                Some(id) => complete.iter().position(|s| s.id == *id),
                None => (!complete.is_empty()).then_some(0),
            };
            let pair = later.and_then(|i| Some((complete.get(i + 1)?.id, complete[i].id)));
            pair.ok_or_else(|| {
                let what = ids.first().map_or_else(
                    || "two complete scans to compare".to_owned(),
                    |id| format!("complete scan before scan {id} to compare it with"),
                );
                Failure::error(format!("{group} has no {what}; `seclab scan history {group}` lists its scans"))
            })?
        }
    };
    let mut sides = Vec::new();
    for id in [pair.0, pair.1] {
        let Some((record, hosts)) = store.stored_scan(tenant, name, id).await? else { return Err(missing(id)) };
        if record.status != "complete" {
            return Err(rejected(id, &record));
        }
        sides.push((record, hosts));
    }
    let (before, after) = (&sides[0], &sides[1]);
    let diffs = diff::compare(&before.1, &after.1, matching, noise);
    let side = |(record, hosts): &(ScanRecord, Vec<Host>)| json!({ "scan": record.id, "source": record.source, "start": record.started_at, "hosts": hosts.len() });
    let document = json!({ "matching": matching, "group": group, "before": side(before), "after": side(after) });
    let how = "as `scan ingest` compared them, from the file's `alerts`; --show-noise shows them";
    print_diff(cli, &diffs, document, noise, how)
}

/// Prints the differences (`document` with them, for JSON); exit code 3 when there are any.
/// What `noise` left out is said too: `noise` in JSON, a note on stderr (`how` says why).
fn print_diff(
    cli: &Cli,
    diffs: &[diff::HostDiff],
    mut document: serde_json::Value,
    noise: NoisePolicy,
    how: &str,
) -> Result<(), Failure> {
    match cli.output {
        Output::Json => {
            document["hosts"] = serde_json::to_value(diffs).map_err(Failure::of)?;
            document["noise"] = json!(noise);
            print(&document.to_string())?;
        }
        Output::Text => {
            print(&report::diff_text(diffs))?;
            if let Some(left_out) = noise.describe() {
                eprintln!("note: left out as noise: {left_out} ({how})");
            }
        }
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(Failure { code: exit::DIFFERENT, text: String::new(), json: serde_json::Value::Null })
    }
}

/// `seclab scan diff`.
fn diff(cli: &Cli, before: &Path, after: &Path, matching: Matching, noise: NoisePolicy) -> Result<(), Failure> {
    let invalid = |path: &Path, error: parse::ScanError| {
        // A file that cannot be read is an error (1); one that is not a whole scan is invalid input (2).
        let code = if matches!(error, parse::ScanError::Io(_)) { exit::ERROR } else { exit::INVALID_INPUT };
        let message = format!("{}: {error}; it was not compared", path.display());
        let mut failure = Failure { code, ..Failure::error(message) };
        failure.json["errors"][0]["file"] = path.display().to_string().into();
        failure
    };
    // Both files are read and split into host elements on two threads; only the hosts
    // whose elements differ between the files are parsed and compared.
    let read = |path: &Path| files::read_whole(path).map_err(|e| parse::ScanError::Io(e.to_string()));
    let (a_bytes, b_bytes) = std::thread::scope(|scope| {
        let later = scope.spawn(|| read(after));
        (read(before), later.join().unwrap_or_else(|_| Err(parse::ScanError::Io("the reader thread failed".into()))))
    });
    let (a_bytes, b_bytes) = (a_bytes.map_err(|e| invalid(before, e))?, b_bytes.map_err(|e| invalid(after, e))?);
    let (a, b) = std::thread::scope(|scope| {
        let later = scope.spawn(|| chunks::split(&b_bytes));
        (
            chunks::split(&a_bytes),
            later.join().unwrap_or_else(|_| Err(parse::ScanError::Io("the reader thread failed".into()))),
        )
    });
    let (a, b) = (a.map_err(|e| invalid(before, e))?, b.map_err(|e| invalid(after, e))?);
    let (earlier, later) =
        chunks::changed_hosts(&a, &b).map_err(|(in_later, e)| invalid(if in_later { after } else { before }, e))?;
    let diffs = diff::compare(&earlier, &later, matching, noise);
    let document = json!({
        "matching": matching,
        "before": { "file": before.display().to_string(), "start": a.info.start, "hosts": a.hosts.len() },
        "after": { "file": after.display().to_string(), "start": b.info.start, "hosts": b.hosts.len() },
    });
    let printed = print_diff(cli, &diffs, document, noise, "asked on the command line");
    // The process ends next: unmapping both files and freeing every host parsed would only
    // cost time (a tenth of a second on two 700 MB scans).
    std::mem::forget((a, b, earlier, later, diffs));
    std::mem::forget((a_bytes, b_bytes));
    printed
}
