//! Which hosts a scan group covers: its targets minus its exclusions, as the file says when a
//! scan is ingested. A host is compared only with scans that covered it: one the group no
//! longer scans is retired without an alert, and one in a newly added range is baselined.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::model::Host;
use crate::config::fields::Target;

/// A group's targets and exclusions, as written in the file (and stored with each scan).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoverageSpec {
    /// Addresses, networks, ranges and host names.
    pub targets: Vec<String>,
    /// What the targets leave out.
    #[serde(default)]
    pub exclude: Vec<String>,
}

/// A group's targets and exclusions, parsed.
#[derive(Debug, Clone)]
pub struct Coverage {
    targets: Vec<Target>,
    exclude: Vec<Target>,
}

impl Coverage {
    /// Parses `spec`; targets that do not parse (validation rejects them) cover nothing.
    pub fn new(spec: &CoverageSpec) -> Self {
        let parse = |list: &[String]| list.iter().filter_map(|t| Target::parse(t).ok()).collect();
        Self { targets: parse(&spec.targets), exclude: parse(&spec.exclude) }
    }

    /// Whether the group scans `host`: one of its addresses or host names is a target, and
    /// none is excluded.
    pub fn covers(&self, host: &Host) -> bool {
        let ips: Vec<IpAddr> = host.addresses.iter().filter_map(|a| a.addr.parse().ok()).collect();
        let names: Vec<&str> = host.hostnames.iter().map(|h| h.name.as_str()).collect();
        let hit = |list: &[Target]| {
            list.iter().any(|target| match target {
                Target::HostName(name) => names.iter().any(|n| n.eq_ignore_ascii_case(name)),
                other => ips.iter().any(|ip| other.contains(*ip)),
            })
        };
        hit(&self.targets) && !hit(&self.exclude)
    }

    /// Whether a target or exclusion is a host name (only a host's scan can match it).
    pub fn names_hosts(&self) -> bool {
        self.targets.iter().chain(&self.exclude).any(|t| matches!(t, Target::HostName(_)))
    }

    /// Whether the group scans `address`, when its address alone tells (`None` when a target
    /// or exclusion is a host name, which only the host's scan can match).
    pub fn covers_address(&self, address: &str) -> Option<bool> {
        if self.names_hosts() {
            return None;
        }
        let ip: IpAddr = address.parse().ok()?;
        Some(self.targets.iter().any(|t| t.contains(ip)) && !self.exclude.iter().any(|t| t.contains(ip)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::model::{Address, Hostname};

    fn host(address: &str, name: Option<&str>) -> Host {
        Host {
            state: "up".into(),
            addresses: vec![Address { kind: "ipv4".into(), addr: address.into(), vendor: None }],
            hostnames: name.map(|n| Hostname { name: n.into(), kind: "user".into() }).into_iter().collect(),
            ..Host::default()
        }
    }

    #[test]
    fn targets_minus_exclusions_by_address_and_by_name() {
        let spec = CoverageSpec {
            targets: vec!["198.51.100.0/29".into(), "scanme.lab.test".into()],
            exclude: vec!["198.51.100.3-4".into()],
        };
        let coverage = Coverage::new(&spec);
        assert!(coverage.covers(&host("198.51.100.2", None)));
        assert!(!coverage.covers(&host("198.51.100.3", None)), "excluded");
        assert!(!coverage.covers(&host("198.51.100.9", None)), "outside the network");
        assert!(coverage.covers(&host("203.0.113.5", Some("ScanMe.lab.test"))), "a host name target");
        assert_eq!(coverage.covers_address("198.51.100.2"), None, "a host name target needs the host");
        let by_address = Coverage::new(&CoverageSpec { targets: vec!["198.51.100.0/29".into()], exclude: vec![] });
        assert_eq!(by_address.covers_address("198.51.100.2"), Some(true));
        assert_eq!(by_address.covers_address("198.51.100.9"), Some(false));
    }
}
