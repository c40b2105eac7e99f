//! Checks of single field values: names, addresses, ports, schedules, quantities.
//!
//! Each check returns the parsed value, or a [`Problem`] saying what is wrong and how to fix it.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use std::sync::{LazyLock, Mutex, PoisonError};

use croner::parser::{CronParser, Seconds, Year};
use ipnetwork::IpNetwork;

/// What is wrong with a value, and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What is wrong, naming the value.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl Problem {
    /// A problem with its hint.
    pub(crate) fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self { message: message.into(), hint: Some(hint.into()) }
    }
}

/// A DNS-1123 label: what Kubernetes accepts as a Namespace or Service name.
pub fn dns_label(value: &str) -> Result<(), Problem> {
    if value.len() <= 63 && is_label(value) {
        Ok(())
    } else {
        Err(Problem::new(
            format!("`{value}` is not a valid name"),
            "use at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit",
        ))
    }
}

/// A DNS-1123 subdomain: dot-separated labels, at most 253 characters (host names, object names).
pub fn dns_subdomain(value: &str) -> Result<(), Problem> {
    if !value.is_empty() && value.len() <= 253 && value.split('.').all(is_label) {
        Ok(())
    } else {
        Err(Problem::new(
            format!("`{value}` is not a valid DNS name"),
            "use dot-separated lower-case labels of letters, digits and '-', e.g. `k.my.domain`",
        ))
    }
}

fn is_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// A scan target as nmap takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One address.
    Address(IpAddr),
    /// A network in CIDR notation.
    Network(IpNetwork),
    /// An inclusive IPv4 range, `198.51.100.10-20` or `198.51.100.10-198.51.100.20`.
    Range(Ipv4Addr, Ipv4Addr),
    /// A host name, resolved by nmap.
    HostName(String),
}

impl Target {
    /// Parses one target.
    pub fn parse(value: &str) -> Result<Self, Problem> {
        let bad = |why: &str| {
            Problem::new(
                format!("`{value}` is not a valid target: {why}"),
                "write an address (`198.51.100.7`), a CIDR (`198.51.100.0/24`), a range (`198.51.100.10-20`) or a host name",
            )
        };
        let looks_numeric = value.starts_with(|c: char| c.is_ascii_digit()) || value.contains(':');
        if value.contains('/') {
            return IpNetwork::from_str(value).map(Self::Network).map_err(|e| bad(&e.to_string()));
        }
        if let Some((start, end)) = value.split_once('-').filter(|_| looks_numeric) {
            let start = Ipv4Addr::from_str(start).map_err(|_| bad("the range must start with an IPv4 address"))?;
            let end = if end.contains('.') {
                Ipv4Addr::from_str(end).map_err(|_| bad("the range must end with an IPv4 address"))?
            } else {
                let last: u8 = end.parse().map_err(|_| bad("the range must end with a number from 0 to 255"))?;
                let [a, b, c, _] = start.octets();
                Ipv4Addr::new(a, b, c, last)
            };
            if end < start {
                return Err(bad("the range ends before it starts"));
            }
            return Ok(Self::Range(start, end));
        }
        if looks_numeric {
            return IpAddr::from_str(value).map(Self::Address).map_err(|_| bad("not an IP address"));
        }
        dns_subdomain(value).map(|()| Self::HostName(value.to_owned())).map_err(|_| bad("not a host name"))
    }
}

impl Target {
    /// Whether `ip` is this target (host names contain no addresses until resolved).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self, ip) {
            (Self::Address(address), ip) => *address == ip,
            (Self::Network(network), ip) => network.contains(ip),
            (Self::Range(start, end), IpAddr::V4(v4)) => *start <= v4 && v4 <= *end,
            _ => false,
        }
    }
}

/// A port list such as `22,80,443,8000-8100`, as inclusive ranges.
pub fn port_list(value: &str) -> Result<Vec<(u16, u16)>, Problem> {
    let bad = |item: &str| {
        Problem::new(
            format!("`{item}` in `{value}` is not a port or port range"),
            "write ports from 1 to 65535 separated by commas, with ranges as `8000-8100`",
        )
    };
    let port = |text: &str, item: &str| text.trim().parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| bad(item));
    value
        .split(',')
        .map(|item| match item.split_once('-') {
            Some((low, high)) => {
                let (low, high) = (port(low, item)?, port(high, item)?);
                if low > high { Err(bad(item)) } else { Ok((low, high)) }
            }
            None => port(item, item).map(|p| (p, p)),
        })
        .collect()
}

/// Schedules found valid before: many groups share one, and `watch` checks every
/// schedule again on each save. Emptied when it grows past [`KNOWN_SCHEDULES_MAX`].
static KNOWN_SCHEDULES: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(Mutex::default);
const KNOWN_SCHEDULES_MAX: usize = 16_384;

/// A CronJob schedule: five fields or a `@daily`-style macro, no seconds.
pub fn cron_schedule(value: &str) -> Result<(), Problem> {
    let known = || KNOWN_SCHEDULES.lock().unwrap_or_else(PoisonError::into_inner);
    if known().contains(value) {
        return Ok(());
    }
    parse_cron_schedule(value)?;
    let mut known = known();
    if known.len() >= KNOWN_SCHEDULES_MAX {
        known.clear();
    }
    known.insert(value.to_owned());
    Ok(())
}

fn parse_cron_schedule(value: &str) -> Result<(), Problem> {
    let hint =
        "write five fields `minute hour day-of-month month day-of-week`, e.g. `0 2 * * *` (02:00 daily), or `@daily`";
    if value.trim_start().starts_with("TZ=") || value.trim_start().starts_with("CRON_TZ=") {
        return Err(Problem::new(
            format!("`{value}` sets a time zone inside the schedule"),
            "set the group's `timeZone` field instead",
        ));
    }
    if !value.trim_start().starts_with('@') && value.split_whitespace().count() != 5 {
        return Err(Problem::new(format!("`{value}` is not a cron schedule: it needs exactly 5 fields"), hint));
    }
    if is_plain_schedule(value) {
        return Ok(());
    }
    let parser = CronParser::builder().seconds(Seconds::Disallowed).year(Year::Disallowed).build();
    parser.parse(value).map(drop).map_err(|e| Problem::new(format!("`{value}` is not a cron schedule: {e}"), hint))
}

/// Whether each of the five fields is `*` or one number in its range (no leading zero): the
/// common schedule, valid without croner building its bit sets (which took 6% of the CPU
/// of an unchanged re-apply of a lab with 2,000 schedules).
fn is_plain_schedule(value: &str) -> bool {
    const HIGHEST: [u8; 5] = [59, 23, 31, 12, 6];
    const LOWEST: [u8; 5] = [0, 0, 1, 1, 0];
    let fields: Vec<&str> = value.split_whitespace().collect();
    fields.len() == 5
        && fields.iter().enumerate().all(|(i, field)| {
            *field == "*"
                || (field.len() <= 2
                    && !(field.len() == 2 && field.starts_with('0'))
                    && field.parse::<u8>().is_ok_and(|n| (LOWEST[i]..=HIGHEST[i]).contains(&n)))
        })
}

/// An IANA time-zone name such as `Europe/London` or `UTC`.
pub fn time_zone(value: &str) -> Result<(), Problem> {
    let ok = !value.is_empty()
        && value
            .split('/')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || "_+-".contains(c)));
    let database = jiff::tz::TimeZoneDatabase::bundled();
    if ok && database.get(value).is_ok() {
        return Ok(());
    }
    // The names Kubernetes takes are the IANA database's, which the binary carries.
    let names: Vec<String> = database.available().map(|name| name.as_str().to_owned()).collect();
    let hint = match suggest(value, names.iter().map(String::as_str)) {
        Some(close) => format!("did you mean `{close}`?"),
        None => "use an IANA name such as `Europe/London` or `UTC`".to_owned(),
    };
    Err(Problem::new(format!("`{value}` is not a time zone in the IANA database"), hint))
}

/// A positive Kubernetes quantity of bytes such as `10Gi` or `500Mi`.
pub fn quantity(value: &str) -> Result<(), Problem> {
    // Milli-bytes are a quantity Kubernetes takes and no one means.
    if !value.ends_with('m') && resource_quantity(value).is_ok_and(|bytes| bytes > 0.0) {
        Ok(())
    } else {
        Err(Problem::new(format!("`{value}` is not a size"), "write a positive size such as `10Gi` or `500Mi`"))
    }
}

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub fn suggest<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let lower = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(&lower, &c.to_ascii_lowercase()), c))
        .filter(|(distance, c)| *distance <= (c.len().max(word.len()) / 3).max(1))
        .min_by_key(|(distance, c)| (*distance, *c))
        .map(|(_, c)| c)
}

/// A label or taint key: `name` or `prefix/name`, where the prefix is a DNS subdomain and the
/// name at most 63 letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit.
pub fn label_key(value: &str) -> Result<(), Problem> {
    let (prefix, name) = match value.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, value),
    };
    if prefix.is_none_or(|p| dns_subdomain(p).is_ok()) && !name.is_empty() && label_value(name).is_ok() {
        Ok(())
    } else {
        Err(Problem::new(
            format!("`{value}` is not a label key"),
            "write `name` or `prefix/name`, e.g. `kubernetes.io/hostname` or `disk`",
        ))
    }
}

/// A label value: empty, or at most 63 letters, digits, `-`, `_` and `.`, starting and ending
/// with a letter or digit.
pub fn label_value(value: &str) -> Result<(), Problem> {
    let bytes = value.as_bytes();
    let valid = bytes.is_empty()
        || (bytes.len() <= 63
            && bytes.iter().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(b))
            && bytes[0].is_ascii_alphanumeric()
            && bytes[bytes.len() - 1].is_ascii_alphanumeric());
    if valid {
        Ok(())
    } else {
        Err(Problem::new(
            format!("`{value}` is not a label value"),
            "use at most 63 letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit",
        ))
    }
}

/// A compute resource quantity (`500m`, `2`, `1.5Gi`), as its value in base units, for
/// comparing a request with its limit.
pub fn resource_quantity(value: &str) -> Result<f64, Problem> {
    const SUFFIXES: [(&str, f64); 14] = [
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("Pi", 1125899906842624.0),
        ("Ei", 1152921504606846976.0),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
        ("", 1.0),
    ];
    let parsed = SUFFIXES.iter().find_map(|(suffix, scale)| {
        let number = value.strip_suffix(suffix)?;
        let plain = !number.is_empty()
            && number.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && number.bytes().filter(|&b| b == b'.').count() <= 1
            && number.bytes().any(|b| b.is_ascii_digit());
        plain.then(|| number.parse::<f64>().ok().map(|n| n * scale)).flatten()
    });
    parsed.ok_or_else(|| {
        Problem::new(
            format!("`{value}` is not a resource quantity"),
            "write CPU as cores or millicores (`2`, `500m`) and memory in bytes with a unit (`512Mi`, `2Gi`)",
        )
    })
}

/// A duration such as `5m` or `300ms`.
pub fn duration(value: &str) -> Result<std::time::Duration, Problem> {
    humantime::parse_duration(value).map_err(|e| {
        Problem::new(format!("`{value}` is not a duration: {e}"), "write a duration such as `300ms`, `30s` or `5m`")
    })
}

/// An absolute path.
pub fn absolute_path(value: &str) -> Result<(), Problem> {
    if value.starts_with('/') {
        Ok(())
    } else {
        Err(Problem::new(format!("`{value}` is not an absolute path"), "start the path with `/`"))
    }
}

/// An http(s) URL that carries no credentials.
pub fn webhook_url(value: &str) -> Result<(), Problem> {
    // Messages never echo the URL: it may hold credentials.
    let url = url::Url::parse(value).map_err(|e| {
        Problem::new(
            format!("the webhook URL is not valid: {e}"),
            "write a full URL such as `https://hooks.example.org/seclab`",
        )
    })?;
    if url.password().is_some() {
        return Err(Problem::new(
            "the webhook URL contains a password",
            "remove the credentials from the URL and set `secret` (by reference) to sign requests instead",
        ));
    }
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Problem::new(
            format!("the webhook URL's scheme `{}` is not http or https", url.scheme()),
            "webhooks are sent with HTTP POST",
        ));
    }
    if url.scheme() == "http" && !url.host().is_some_and(|host| is_loopback(&host.to_string())) {
        return Err(Problem::new(
            "the webhook URL is plain http to another machine: alerts carry customers' open ports",
            "use an `https://` URL, or a receiver on this machine (`http://127.0.0.1:...`)",
        ));
    }
    Ok(())
}

/// Whether `host` names this machine: `localhost`, or an address in 127.0.0.0/8 or `::1`.
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Where an operator's manifest is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestSource {
    /// A local file, relative to the desired-state file's directory unless absolute.
    File(std::path::PathBuf),
    /// An `https://` URL.
    Https(url::Url),
}

/// An operator's manifest: `file:PATH` or an `https://` URL.
pub fn manifest_source(value: &str) -> Result<ManifestSource, Problem> {
    let hint = "write `file:./eck-all-in-one.yaml` or an `https://` URL";
    if let Some(path) = value.strip_prefix("file:") {
        if path.is_empty() {
            return Err(Problem::new("`file:` names no file", hint));
        }
        return Ok(ManifestSource::File(path.into()));
    }
    let url = url::Url::parse(value)
        .map_err(|e| Problem::new(format!("`{value}` is neither `file:PATH` nor a URL ({e})"), hint))?;
    if url.scheme() != "https" {
        return Err(Problem::new(
            format!("the manifest URL's scheme `{}` is not https", url.scheme()),
            "an operator's manifest grants cluster-wide rights: fetch it over https, or download it and use `file:`",
        ));
    }
    if url.password().is_some() {
        return Err(Problem::new("the manifest URL contains a password", "download the manifest and use `file:`"));
    }
    Ok(ManifestSource::Https(url))
}

/// A mail address, `user@host`.
pub fn email_address(value: &str) -> Result<(), Problem> {
    match value.split_once('@') {
        Some((user, host))
            if !user.is_empty() && !host.is_empty() && !host.contains('@') && !value.contains(char::is_whitespace) =>
        {
            Ok(())
        }
        _ => {
            Err(Problem::new(format!("`{value}` is not a mail address"), "write an address such as `soc@example.org`"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(suggest("replica", ["replicas", "image"]), Some("replicas"));
        assert_eq!(suggest("shedule", ["schedule", "scans"]), Some("schedule"));
        assert_eq!(suggest("xyz", ["replicas", "image"]), None);
    }

    #[test]
    fn labels_and_resource_quantities() {
        for key in ["disk", "kubernetes.io/hostname", "seclab.test/node", "a_b.c-d"] {
            assert!(label_key(key).is_ok(), "{key}");
        }
        for key in ["", "-disk", "disk-", "a/b/c", "Example.COM/x", "/x", &"a".repeat(64)] {
            assert!(label_key(key).is_err(), "{key}");
        }
        for value in ["", "ssd", "a.b_c-d", "X9"] {
            assert!(label_value(value).is_ok(), "{value}");
        }
        for value in ["a b", "-a", "a-", &"a".repeat(64)] {
            assert!(label_value(value).is_err(), "{value}");
        }
        for (text, value) in
            [("500m", 0.5), ("2", 2.0), ("1.5Gi", 1.5 * 1073741824.0), ("64Mi", 67108864.0), ("1k", 1e3)]
        {
            assert_eq!(resource_quantity(text), Ok(value), "{text}");
        }
        for text in ["", "lots", "1 Gi", "1.2.3", "-1", "m", "1GB", "0x10"] {
            assert!(resource_quantity(text).is_err(), "{text}");
        }
    }

    #[test]
    fn names() {
        assert!(dns_label("barbican").is_ok());
        assert!(dns_label("Barbican").is_err());
        assert!(dns_label("-a").is_err());
        assert!(dns_label(&"a".repeat(64)).is_err());
        assert!(dns_subdomain("registry.k.my.domain").is_ok());
        assert!(dns_subdomain("k..domain").is_err());
    }

    #[test]
    fn targets() {
        assert_eq!(Target::parse("127.0.0.1").unwrap(), Target::Address("127.0.0.1".parse().unwrap()));
        assert!(matches!(Target::parse("198.51.100.0/24").unwrap(), Target::Network(_)));
        assert!(matches!(Target::parse("::1").unwrap(), Target::Address(_)));
        assert_eq!(
            Target::parse("198.51.100.10-20").unwrap(),
            Target::Range("198.51.100.10".parse().unwrap(), "198.51.100.20".parse().unwrap())
        );
        assert!(matches!(Target::parse("dmz.example.org").unwrap(), Target::HostName(_)));
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(Target::parse("198.51.100.0/24").unwrap().contains(ip("198.51.100.9")));
        assert!(Target::parse("198.51.100.10-20").unwrap().contains(ip("198.51.100.20")));
        assert!(!Target::parse("198.51.100.10-20").unwrap().contains(ip("198.51.100.21")));
        for bad in ["10.0.0.0/33", "10.0.0.300", "10.0.0.20-10", "10.0.0.1-300", "not a host", ""] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ports() {
        assert_eq!(port_list("22,80,8000-8100").unwrap(), vec![(22, 22), (80, 80), (8000, 8100)]);
        for bad in ["0", "70000", "80-22", "http", "22,,80", ""] {
            assert!(port_list(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn schedules() {
        for good in ["0 2 * * *", "*/15 * * * 1-5", "@daily", "0 0 1 JAN *"] {
            assert!(cron_schedule(good).is_ok(), "{good}");
        }
        for bad in ["0 2 * *", "0 0 2 * * *", "61 * * * *", "TZ=UTC 0 2 * * *", "nightly"] {
            assert!(cron_schedule(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_plain_schedule_is_one_croner_accepts_too() {
        let croner = CronParser::builder().seconds(Seconds::Disallowed).year(Year::Disallowed).build();
        for field in 0..5 {
            for value in ["*", "00", "07", "100", "-1", "x"]
                .into_iter()
                .map(str::to_owned)
                .chain((0..=60).map(|n| n.to_string()))
            {
                let mut fields = ["*"; 5];
                fields[field] = &value;
                let schedule = fields.join(" ");
                if is_plain_schedule(&schedule) {
                    assert!(croner.parse(&schedule).is_ok(), "{schedule}");
                }
            }
        }
        assert!(is_plain_schedule("59 23 31 12 6") && is_plain_schedule("0 0 1 1 0"));
        for not_plain in
            ["60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 7", "05 * * * *", "*/5 * * * *"]
        {
            assert!(!is_plain_schedule(not_plain), "{not_plain}");
        }
    }

    #[test]
    fn sizes_durations_urls_addresses() {
        assert!(quantity("10Gi").is_ok());
        assert!(quantity("1.5G").is_ok());
        for bad in ["0", "Gi", "10 Gi", "-1Gi", "ten"] {
            assert!(quantity(bad).is_err(), "{bad}");
        }
        assert_eq!(duration("300ms").unwrap().as_millis(), 300);
        assert!(duration("soon").is_err());
        assert!(webhook_url("https://hooks.example.org/x").is_ok());
        let leak = webhook_url("https://u:hunter2@hooks.example.org/x").unwrap_err();
        assert!(!leak.message.contains("hunter2"));
        assert!(webhook_url("ftp://x").is_err());
        assert!(!webhook_url("ftp://u:hunter2@x").unwrap_err().message.contains("hunter2"));
        assert!(email_address("soc@example.org").is_ok());
        assert!(email_address("soc").is_err());
        assert!(time_zone("Europe/London").is_ok());
        assert!(time_zone("Europe/ London").is_err());
    }
}
