//! Comparing two scans: per host, what changed. Pure: no I/O.
//!
//! The rules follow nmap's ndiff (the same ports, states and service fields are compared;
//! ports summarised as "extra ports" on both sides are not), except that by default
//! hosts are matched by address alone, so a changed reverse-DNS name reads as a changed
//! name rather than one host gone and another new.

use std::collections::{HashMap, VecDeque};

use serde::Serialize;

use super::model::{Host, Port, Script, Service};
use crate::config::model::Alerts;

/// How hosts of the two scans are paired.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Matching {
    /// By primary address (seclab's default).
    #[default]
    Address,
    /// By primary address plus primary host name, exactly as ndiff does.
    Ndiff,
}

/// Which differences count as noise and are left out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NoisePolicy {
    /// Leave out ports whose service is `tcpwrapped` on either side.
    pub ignore_tcpwrapped: bool,
    /// Leave out service changes where one side is only nmap's port-table guess
    /// (service detection timed out).
    pub ignore_service_timeouts: bool,
}

impl NoisePolicy {
    /// What the file's `alerts` leave out as noise: what `scan ingest` compares with, and so
    /// `scan diff --group` of the scans it stored.
    pub fn of(alerts: &Alerts) -> Self {
        Self { ignore_tcpwrapped: alerts.ignore_tcpwrapped, ignore_service_timeouts: alerts.ignore_service_timeouts }
    }

    /// What either policy leaves out.
    pub fn or(self, other: Self) -> Self {
        Self {
            ignore_tcpwrapped: self.ignore_tcpwrapped || other.ignore_tcpwrapped,
            ignore_service_timeouts: self.ignore_service_timeouts || other.ignore_service_timeouts,
        }
    }

    /// What this policy leaves out, in words; `None` when it leaves out nothing.
    pub fn describe(self) -> Option<String> {
        let left_out: Vec<&str> = [
            (self.ignore_tcpwrapped, "tcpwrapped ports"),
            (self.ignore_service_timeouts, "service changes after a detection time-out"),
        ]
        .into_iter()
        .filter_map(|(on, what)| on.then_some(what))
        .collect();
        (!left_out.is_empty()).then(|| left_out.join(" and "))
    }
}

/// A port's state, service and script output, as compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortView {
    /// The port's state.
    pub state: String,
    /// Service name, product, version and extra information, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceView>,
    /// Its scripts' output, one line each (`id: output`), sorted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scripts: Vec<String>,
}

/// A port as a scan lists it: what a new host exposes, or a gone host did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListedPort {
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    /// The port number.
    pub port: u16,
    /// Its state, service and scripts.
    #[serde(flatten)]
    pub view: PortView,
}

/// The service fields ndiff compares (and the tunnel, shown with the name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extrainfo: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<String>,
}

/// What kind of port change this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PortChangeKind {
    /// Now open, before not.
    Opened,
    /// Open before, now not.
    Closed,
    /// Another state change (filtered to closed, say).
    StateChanged,
    /// Same state, different service, product, version or extra information.
    ServiceChanged,
    /// Same state and service, different script output.
    ScriptsChanged,
}

/// One difference of one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "kebab-case")]
pub enum Change {
    /// The host appears only in the later scan, with the ports it lists.
    HostNew {
        /// Its listed ports (those not summarised as extra ports).
        ports: Vec<ListedPort>,
    },
    /// The host appears only in the earlier scan, with the ports it listed.
    HostGone {
        /// Its listed ports in the earlier scan.
        ports: Vec<ListedPort>,
    },
    /// Its state changed (up to down, say).
    HostState { before: String, after: String },
    /// Its addresses changed.
    Addresses { before: Vec<String>, after: Vec<String> },
    /// Its host names changed.
    Hostnames { before: Vec<String>, after: Vec<String> },
    /// A port changed.
    Port {
        protocol: String,
        port: u16,
        kind: PortChangeKind,
        #[serde(skip_serializing_if = "Option::is_none")]
        before: Option<Box<PortView>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        after: Option<Box<PortView>>,
    },
    /// The ports summarised by state changed.
    ExtraPorts { before: Vec<String>, after: Vec<String> },
    /// The OS matches changed.
    Os { before: Vec<String>, after: Vec<String> },
    /// Host script output changed.
    HostScripts { before: Vec<String>, after: Vec<String> },
}

/// The differences of one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostDiff {
    /// The host's primary address (empty when it has none).
    pub address: String,
    /// Its primary host name in the later scan (or the earlier one, if gone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// What changed, in a fixed order.
    pub changes: Vec<Change>,
}

/// Compares scan `before` with scan `after`; returns the hosts that differ, sorted. Hosts
/// with the same key are paired in file order, as ndiff pairs them: a host listed twice (a
/// target given twice) is two entries, and one without a counterpart is new or gone.
pub fn compare(before: &[Host], after: &[Host], matching: Matching, noise: NoisePolicy) -> Vec<HostDiff> {
    let mut earlier: HashMap<String, VecDeque<&Host>> = HashMap::with_capacity(before.len());
    for host in before {
        earlier.entry(host_key(host, matching)).or_default().push_back(host);
    }
    let mut diffs = Vec::new();
    let mut keep = |key: String, diff: HostDiff| {
        if !diff.changes.is_empty() {
            diffs.push((key, diff));
        }
    };
    for host in after {
        let key = host_key(host, matching);
        let paired = earlier.get_mut(&key).and_then(VecDeque::pop_front);
        let diff = compare_host(paired, Some(host), noise);
        keep(key, diff);
    }
    for (key, unpaired) in earlier {
        for host in unpaired {
            keep(key.clone(), compare_host(Some(host), None, noise));
        }
    }
    // Stable: entries of one key stay in the order they were paired.
    diffs.sort_by(|a, b| a.0.cmp(&b.0));
    diffs.into_iter().map(|(_, diff)| diff).collect()
}

/// The key pairing hosts across scans: ndiff's id, or the address alone.
pub fn host_key(host: &Host, matching: Matching) -> String {
    let address = host.primary_address().map(|a| format!("{:<40}", sort_form(host, a)));
    match (matching, host.primary_hostname()) {
        (Matching::Ndiff, Some(name)) => format!("{}{name}", address.unwrap_or_else(|| " ".repeat(40))),
        _ => address.or_else(|| host.primary_hostname().map(str::to_owned)).unwrap_or_default(),
    }
}

/// Addresses sort IPv4 first, then IPv6, then MAC, as in ndiff.
fn sort_form(host: &Host, address: &str) -> String {
    let rank = host.addresses.iter().find(|a| a.addr == address).map_or("2", |a| match a.kind.as_str() {
        "ipv4" => "0",
        "ipv6" => "1",
        _ => "2",
    });
    format!("{rank}{address}")
}

/// Compares one host's two sightings (either may be missing).
pub fn compare_host(before: Option<&Host>, after: Option<&Host>, noise: NoisePolicy) -> HostDiff {
    let named = after.or(before);
    let mut diff = HostDiff {
        address: named.and_then(Host::primary_address).unwrap_or_default().to_owned(),
        hostname: named.and_then(Host::primary_hostname).map(str::to_owned),
        changes: Vec::new(),
    };
    let (a, b) = match (before, after) {
        (None, None) => return diff,
        (None, Some(b)) => {
            diff.changes.push(Change::HostNew { ports: listed_ports(b) });
            return diff;
        }
        (Some(a), None) => {
            diff.changes.push(Change::HostGone { ports: listed_ports(a) });
            return diff;
        }
        // Most hosts do not change between two scans.
        (Some(a), Some(b)) if a.same_as(b) => return diff,
        (Some(a), Some(b)) => (a, b),
    };
    let changes = &mut diff.changes;
    if a.state != b.state {
        changes.push(Change::HostState { before: a.state.clone(), after: b.state.clone() });
    }
    let addresses = |h: &Host| sorted(h.addresses.iter().map(|x| x.addr.clone()));
    if addresses(a) != addresses(b) {
        changes.push(Change::Addresses { before: addresses(a), after: addresses(b) });
    }
    let names = |h: &Host| sorted(h.hostnames.iter().map(|x| x.name.clone()));
    if names(a) != names(b) {
        changes.push(Change::Hostnames { before: names(a), after: names(b) });
    }
    compare_ports(a, b, noise, changes);
    let extra = |h: &Host| sorted(h.extraports.iter().map(|e| format!("{} {}", e.count, e.state)));
    if extra(a) != extra(b) {
        changes.push(Change::ExtraPorts { before: extra(a), after: extra(b) });
    }
    let os = |h: &Host| h.os.iter().map(|o| o.name.clone()).collect::<Vec<_>>();
    if os(a) != os(b) {
        changes.push(Change::Os { before: os(a), after: os(b) });
    }
    let scripts = |h: &Host| sorted(h.scripts.iter().map(script_line));
    if scripts(a) != scripts(b) {
        changes.push(Change::HostScripts { before: scripts(a), after: scripts(b) });
    }
    diff
}

/// A host's listed ports, in port order.
pub fn listed_ports(host: &Host) -> Vec<ListedPort> {
    let mut ports: Vec<ListedPort> =
        host.ports.iter().map(|p| ListedPort { protocol: p.protocol.clone(), port: p.port, view: view(p) }).collect();
    ports.sort_by(|a, b| (a.port, &a.protocol).cmp(&(b.port, &b.protocol)));
    ports
}

/// A script's output on one line: `id: output`, its lines trimmed and joined with ` | `
/// (nmap indents multi-line output; a change is one line of text).
fn script_line(script: &Script) -> String {
    let lines: Vec<&str> = script.output.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    format!("{}: {}", script.id, lines.join(" | "))
}

fn sorted(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut items: Vec<String> = items.collect();
    items.sort();
    items.dedup();
    items
}

fn compare_ports(a: &Host, b: &Host, noise: NoisePolicy, changes: &mut Vec<Change>) {
    let (pa, pb) = (port_map(a), port_map(b));
    let mut specs: Vec<&(u16, String)> = pa.keys().chain(pb.keys()).collect();
    specs.sort();
    specs.dedup();
    for spec in specs {
        let (before, after) = (pa.get(spec).copied(), pb.get(spec).copied());
        let extra =
            |host: &Host, port: Option<&Port>| port.is_none_or(|p| host.extraports.iter().any(|e| e.state == p.state));
        if extra(a, before) && extra(b, after) {
            continue;
        }
        if noise.ignore_tcpwrapped && [before, after].into_iter().flatten().any(is_tcpwrapped) {
            continue;
        }
        let service_a = before.and_then(|p| p.service.as_ref());
        let service_b = after.and_then(|p| p.service.as_ref());
        let scripts = |p: Option<&Port>| p.map(|p| sorted(p.scripts.iter().map(script_line))).unwrap_or_default();
        let (state_a, state_b) = (before.map(|p| p.state.as_str()), after.map(|p| p.state.as_str()));
        let kind = if state_a != state_b {
            match (state_a == Some("open"), state_b == Some("open")) {
                (false, true) => PortChangeKind::Opened,
                (true, false) => PortChangeKind::Closed,
                _ => PortChangeKind::StateChanged,
            }
        } else if !same_service(service_a, service_b) {
            if noise.ignore_service_timeouts && one_side_guessed(service_a, service_b) {
                continue;
            }
            PortChangeKind::ServiceChanged
        } else if scripts(before) != scripts(after) {
            PortChangeKind::ScriptsChanged
        } else {
            continue;
        };
        changes.push(Change::Port {
            protocol: spec.1.clone(),
            port: spec.0,
            kind,
            before: before.map(|p| Box::new(view(p))),
            after: after.map(|p| Box::new(view(p))),
        });
    }
}

/// ndiff's service equality: name, product, version and extra information.
fn same_service(a: Option<&Service>, b: Option<&Service>) -> bool {
    let fields = |s: Option<&Service>| {
        s.map(|s| (s.name.clone(), s.product.clone(), s.version.clone(), s.extrainfo.clone())).unwrap_or_default()
    };
    fields(a) == fields(b)
}

fn one_side_guessed(a: Option<&Service>, b: Option<&Service>) -> bool {
    guessed(a) != guessed(b)
}

/// Whether a service is only the port table's guess (no detection, or it timed out).
fn guessed(service: Option<&Service>) -> bool {
    service.and_then(|s| s.method.as_deref()).is_none_or(|m| m == "table")
}

fn port_map(host: &Host) -> HashMap<(u16, String), &Port> {
    host.ports.iter().map(|p| ((p.port, p.protocol.clone()), p)).collect()
}

fn is_tcpwrapped(port: &Port) -> bool {
    port.service.as_ref().and_then(|s| s.name.as_deref()) == Some("tcpwrapped")
}

fn view(port: &Port) -> PortView {
    PortView {
        state: port.state.clone(),
        service: port.service.as_ref().map(|s| ServiceView {
            name: s.name.clone(),
            product: s.product.clone(),
            version: s.version.clone(),
            extrainfo: s.extrainfo.clone(),
            tunnel: s.tunnel.clone(),
        }),
        scripts: sorted(port.scripts.iter().map(script_line)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::model::{Address, ExtraPorts, Hostname};

    /// A port: number, state, and service name with detection method.
    type TestPort<'a> = (u16, &'a str, Option<(&'a str, &'a str)>);
    /// A case: name, hosts before, hosts after, expected changes.
    type Case<'a> = (&'a str, Vec<Host>, Vec<Host>, Vec<&'a str>);

    fn host(address: &str, ports: &[TestPort<'_>]) -> Host {
        Host {
            state: "up".into(),
            addresses: vec![Address { kind: "ipv4".into(), addr: address.into(), vendor: None }],
            ports: ports
                .iter()
                .map(|(port, state, service)| Port {
                    protocol: "tcp".into(),
                    port: *port,
                    state: (*state).into(),
                    service: service.map(|(name, method)| Service {
                        name: Some(name.into()),
                        method: Some(method.into()),
                        ..Service::default()
                    }),
                    ..Port::default()
                })
                .collect(),
            extraports: vec![ExtraPorts { state: "closed".into(), count: 998 }],
            ..Host::default()
        }
    }

    fn kinds(diffs: &[HostDiff]) -> Vec<String> {
        diffs
            .iter()
            .flat_map(|d| {
                d.changes.iter().map(move |c| match c {
                    Change::Port { port, kind, .. } => format!("{} {port} {kind:?}", d.address),
                    other => {
                        format!("{} {}", d.address, serde_json::to_value(other).unwrap()["change"].as_str().unwrap())
                    }
                })
            })
            .collect()
    }

    #[test]
    fn table_of_changes() {
        let ssh = Some(("ssh", "probed"));
        let cases: Vec<Case<'_>> = vec![
            (
                "unchanged",
                vec![host("10.0.0.1", &[(22, "open", ssh)])],
                vec![host("10.0.0.1", &[(22, "open", ssh)])],
                vec![],
            ),
            ("new host", vec![], vec![host("10.0.0.1", &[])], vec!["10.0.0.1 host-new"]),
            ("gone host", vec![host("10.0.0.1", &[])], vec![], vec!["10.0.0.1 host-gone"]),
            (
                "opened",
                vec![host("10.0.0.1", &[])],
                vec![host("10.0.0.1", &[(80, "open", None)])],
                vec!["10.0.0.1 80 Opened"],
            ),
            (
                "closed",
                vec![host("10.0.0.1", &[(80, "open", None)])],
                vec![host("10.0.0.1", &[])],
                vec!["10.0.0.1 80 Closed"],
            ),
            (
                "filtered",
                vec![host("10.0.0.1", &[(80, "open", None)])],
                vec![host("10.0.0.1", &[(80, "filtered", None)])],
                vec!["10.0.0.1 80 Closed"],
            ),
            (
                "state",
                vec![host("10.0.0.1", &[(80, "filtered", None)])],
                vec![host("10.0.0.1", &[(80, "open|filtered", None)])],
                vec!["10.0.0.1 80 StateChanged"],
            ),
            (
                "service",
                vec![host("10.0.0.1", &[(22, "open", ssh)])],
                vec![host("10.0.0.1", &[(22, "open", Some(("http", "probed")))])],
                vec!["10.0.0.1 22 ServiceChanged"],
            ),
            ("both extraports", vec![host("10.0.0.1", &[(81, "closed", None)])], vec![host("10.0.0.1", &[])], vec![]),
        ];
        for (name, before, after, expected) in cases {
            assert_eq!(kinds(&compare(&before, &after, Matching::Address, NoisePolicy::default())), expected, "{name}");
        }
    }

    #[test]
    fn noise_policy() {
        let quiet = NoisePolicy { ignore_tcpwrapped: true, ignore_service_timeouts: true };
        let wrapped = vec![host("10.0.0.1", &[(8080, "open", Some(("tcpwrapped", "probed")))])];
        assert_eq!(kinds(&compare(&[host("10.0.0.1", &[])], &wrapped, Matching::Address, quiet)), Vec::<String>::new());
        assert_eq!(
            kinds(&compare(&[host("10.0.0.1", &[])], &wrapped, Matching::Address, NoisePolicy::default())).len(),
            1
        );
        let probed = vec![host("10.0.0.1", &[(22, "open", Some(("ssh", "probed")))])];
        let guessed = vec![host("10.0.0.1", &[(22, "open", Some(("ssh-alt", "table")))])];
        assert!(compare(&probed, &guessed, Matching::Address, quiet).is_empty());
        assert_eq!(compare(&probed, &guessed, Matching::Address, NoisePolicy::default()).len(), 1);
    }

    #[test]
    fn a_host_listed_twice_is_two_entries_paired_in_file_order() {
        let (one, two) = (host("10.0.0.1", &[(22, "open", None)]), host("10.0.0.1", &[(80, "open", None)]));
        let twice = vec![one.clone(), two.clone()];
        assert!(compare(&twice, &twice, Matching::Address, NoisePolicy::default()).is_empty());
        let diffs = compare(std::slice::from_ref(&one), &twice, Matching::Address, NoisePolicy::default());
        assert_eq!(kinds(&diffs), ["10.0.0.1 host-new"], "the second entry has no counterpart");
        let Change::HostNew { ports } = &diffs[0].changes[0] else { panic!() };
        assert_eq!(ports.iter().map(|p| p.port).collect::<Vec<_>>(), [80], "the new entry lists its ports");
        let diffs = compare(&twice, &[two.clone(), one.clone()], Matching::Address, NoisePolicy::default());
        assert_eq!(
            kinds(&diffs),
            ["10.0.0.1 22 Closed", "10.0.0.1 80 Opened", "10.0.0.1 22 Opened", "10.0.0.1 80 Closed"]
        );
    }

    #[test]
    fn a_changed_host_name_is_one_change_not_two_hosts() {
        let mut a = host("10.0.0.1", &[]);
        a.hostnames.push(Hostname { name: "old.example".into(), kind: "PTR".into() });
        let mut b = a.clone();
        b.hostnames[0].name = "new.example".into();
        let (before, after) = (vec![a], vec![b]);
        assert_eq!(kinds(&compare(&before, &after, Matching::Address, NoisePolicy::default())), ["10.0.0.1 hostnames"]);
        assert_eq!(
            kinds(&compare(&before, &after, Matching::Ndiff, NoisePolicy::default())),
            ["10.0.0.1 host-new", "10.0.0.1 host-gone"]
        );
    }
}
