//! What one nmap scan says about the network: run information and hosts.

use serde::{Deserialize, Serialize};

/// The `<nmaprun>` element: who ran what, and when.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The scanner (`nmap`).
    pub scanner: String,
    /// The command line.
    pub args: String,
    /// Start time, seconds since the epoch.
    pub start: i64,
    /// nmap's version.
    pub version: String,
}

/// The `<runstats>` of a scan that finished successfully.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStats {
    /// End time, seconds since the epoch.
    pub finished: i64,
    /// nmap's summary line.
    pub summary: String,
    /// Hosts reported up.
    pub hosts_up: u64,
    /// Hosts reported down.
    pub hosts_down: u64,
}

/// One host as a scan saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    /// `up`, `down`, `unknown` or `skipped`.
    pub state: String,
    /// Why nmap decided the state (`syn-ack`, `conn-refused`, `localhost-response`...).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Whether nmap gave up on the host (`--host-timeout`): the host counts as missed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timed_out: bool,
    /// Addresses, in file order.
    pub addresses: Vec<Address>,
    /// Host names, in file order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hostnames: Vec<Hostname>,
    /// Ports listed one by one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    /// Ports summarised by state (`997 closed`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extraports: Vec<ExtraPorts>,
    /// OS matches, best first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub os: Vec<OsMatch>,
    /// Host script results.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scripts: Vec<Script>,
    /// When nmap scanned the host, and its round-trip timings. Not compared: they change on
    /// every scan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<Times>,
}

/// A host's scan times (`<host starttime endtime>`) and timings (`<times>`, microseconds).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Times {
    /// Scan of the host started, seconds since the epoch.
    pub start: i64,
    /// Scan of the host ended, seconds since the epoch.
    pub end: i64,
    /// Smoothed round-trip time.
    pub srtt: u64,
    /// Round-trip time variance.
    pub rttvar: u64,
    /// Probe time-out.
    pub timeout: u64,
}

/// A host address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Address {
    /// `ipv4`, `ipv6` or `mac`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The address as nmap wrote it.
    pub addr: String,
    /// MAC vendor, when nmap knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
}

/// A host name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Hostname {
    /// The name.
    pub name: String,
    /// `user` (given as a target) or `PTR` (reverse DNS).
    #[serde(rename = "type", default)]
    pub kind: String,
}

/// One port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    /// Port number.
    pub port: u16,
    /// `open`, `closed`, `filtered`, `open|filtered`...
    pub state: String,
    /// Why nmap decided the state.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// What runs there, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<Service>,
    /// Port script results.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scripts: Vec<Script>,
}

/// A service as detected (`-sV`) or looked up in nmap's port table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    /// Service name (`ssh`, `http`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Product (`OpenSSH`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// Version (`9.2p1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Extra information (`protocol 2.0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extrainfo: Option<String>,
    /// `ssl` when the service runs over TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<String>,
    /// `probed` (detected) or `table` (only the port table's guess).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

/// Ports not listed one by one, by state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraPorts {
    /// Their state.
    pub state: String,
    /// How many.
    pub count: u32,
}

/// An OS match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsMatch {
    /// Name (`Linux 5.0 - 5.14`).
    pub name: String,
    /// Accuracy in percent.
    pub accuracy: u8,
}

/// An NSE script result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Script {
    /// Script id.
    pub id: String,
    /// Its output.
    pub output: String,
}

impl Host {
    /// The address that identifies the host: IPv4 before IPv6 before MAC, then the
    /// smallest, as ndiff orders them.
    pub fn primary_address(&self) -> Option<&str> {
        self.addresses.iter().min_by_key(|a| (address_rank(&a.kind), a.addr.as_str())).map(|a| a.addr.as_str())
    }

    /// The smallest host name, as ndiff orders them.
    pub fn primary_hostname(&self) -> Option<&str> {
        self.hostnames.iter().map(|h| h.name.as_str()).min()
    }

    /// Whether two sightings say the same about the host (times aside).
    pub fn same_as(&self, other: &Host) -> bool {
        // Exhaustive on purpose: a new field must be placed on one side or the other.
        let Host { state, reason, timed_out, addresses, hostnames, ports, extraports, os, scripts, times: _ } = self;
        *state == other.state
            && *reason == other.reason
            && *timed_out == other.timed_out
            && *addresses == other.addresses
            && *hostnames == other.hostnames
            && *ports == other.ports
            && *extraports == other.extraports
            && *os == other.os
            && *scripts == other.scripts
    }

    /// Whether the scan saw the host up (and did not time out on it).
    pub fn is_up(&self) -> bool {
        self.state == "up" && !self.timed_out
    }

    /// Folds a second entry of the same host in one scan (nmap lists a host twice when a
    /// target is given twice) into this one: up when either is up; the addresses, names and
    /// scripts of both; every port either lists, open when either saw it open, else as the
    /// later entry says; the later entry's extra ports, OS matches and times when it has any.
    pub fn merge(&mut self, later: Host) {
        if later.is_up() || !self.is_up() {
            (self.state, self.reason, self.timed_out) = (later.state, later.reason, later.timed_out);
        }
        fn union<T: PartialEq>(into: &mut Vec<T>, more: Vec<T>) {
            for item in more {
                if !into.contains(&item) {
                    into.push(item);
                }
            }
        }
        union(&mut self.addresses, later.addresses);
        union(&mut self.hostnames, later.hostnames);
        union(&mut self.scripts, later.scripts);
        for port in later.ports {
            match self.ports.iter_mut().find(|p| p.port == port.port && p.protocol == port.protocol) {
                Some(earlier) if earlier.state == "open" && port.state != "open" => {}
                Some(earlier) => *earlier = port,
                None => self.ports.push(port),
            }
        }
        self.ports.sort_by(|a, b| (a.port, &a.protocol).cmp(&(b.port, &b.protocol)));
        if !later.extraports.is_empty() {
            self.extraports = later.extraports;
        }
        if !later.os.is_empty() {
            self.os = later.os;
        }
        if later.times.is_some() {
            self.times = later.times;
        }
    }
}

fn address_rank(kind: &str) -> u8 {
    match kind {
        "ipv4" => 0,
        "ipv6" => 1,
        _ => 2,
    }
}

/// A whole scan that finished: run information, hosts and run statistics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scan {
    /// Who ran what, and when.
    pub info: RunInfo,
    /// Every host listed.
    pub hosts: Vec<Host>,
    /// How it ended.
    pub stats: RunStats,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(number: u16, state: &str) -> Port {
        Port { protocol: "tcp".into(), port: number, state: state.into(), ..Port::default() }
    }

    #[test]
    fn a_host_listed_twice_merges_into_one_with_every_port_either_saw() {
        let address = Address { kind: "ipv4".into(), addr: "127.0.0.1".into(), vendor: None };
        let mut first = Host {
            state: "up".into(),
            addresses: vec![address.clone()],
            ports: vec![port(22, "open"), port(80, "closed")],
            ..Host::default()
        };
        let second = Host {
            state: "up".into(),
            addresses: vec![address],
            ports: vec![port(22, "filtered"), port(80, "open"), port(443, "open")],
            ..Host::default()
        };
        first.merge(second);
        let ports: Vec<(u16, &str)> = first.ports.iter().map(|p| (p.port, p.state.as_str())).collect();
        assert_eq!(ports, [(22, "open"), (80, "open"), (443, "open")]);
        assert_eq!(first.addresses.len(), 1);
        let mut down = Host { state: "down".into(), ..Host::default() };
        down.merge(first.clone());
        assert!(down.is_up(), "up when either entry is up");
        let mut up = first.clone();
        up.merge(Host { state: "down".into(), ..Host::default() });
        assert!(up.is_up());
    }
}
