//! Scan differences as text for people: one line per change, easy to grep.

use std::fmt::Write;

use super::diff::{Change, HostDiff, ListedPort, PortChangeKind, PortView};

/// `text` from a scan with its control characters written as `\u{1b}` (an escape sequence
/// would drive the reader's terminal, a carriage return hide what precedes it); line feeds
/// and tabs stay, as script output holds them.
pub fn escaped(text: &str) -> std::borrow::Cow<'_, str> {
    let escapes = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.chars().any(escapes) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if escapes(c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// One line per change, then a summary line.
pub fn diff_text(diffs: &[HostDiff]) -> String {
    let mut out = String::new();
    let (mut new, mut gone, mut ports, mut other) = (0, 0, 0, 0);
    for host in diffs {
        let name = match &host.hostname {
            Some(hostname) => format!("{} ({})", host.address, escaped(hostname)),
            None => host.address.clone(),
        };
        for change in &host.changes {
            match change {
                Change::HostNew { .. } => new += 1,
                Change::HostGone { .. } => gone += 1,
                Change::Port { .. } => ports += 1,
                _ => other += 1,
            }
            let _ = writeln!(out, "{name}: {}", change_text(change));
        }
    }
    if diffs.is_empty() {
        out.push_str("no differences\n");
    } else {
        let _ = writeln!(
            out,
            "{} {}: {new} new, {gone} gone, {ports} port change{}, {other} other change{}",
            diffs.len(),
            if diffs.len() == 1 { "host differs" } else { "hosts differ" },
            if ports == 1 { "" } else { "s" },
            if other == 1 { "" } else { "s" },
        );
    }
    out
}

/// One change as a short phrase, e.g. `port 80/tcp opened: closed http -> open http`.
pub fn change_text(change: &Change) -> String {
    escaped(&phrase(change)).into_owned()
}

fn phrase(change: &Change) -> String {
    match change {
        Change::HostNew { ports } => format!("new host: {}", ports_text(ports)),
        Change::HostGone { ports } => format!("host gone: it listed {}", ports_text(ports)),
        Change::HostState { before, after } => format!("host {before} -> {after}"),
        Change::Addresses { before, after } => format!("addresses {} -> {}", list(before), list(after)),
        Change::Hostnames { before, after } => format!("host names {} -> {}", list(before), list(after)),
        Change::Port { protocol, port, kind, before, after } => {
            let what = match kind {
                PortChangeKind::Opened => "opened",
                PortChangeKind::Closed => "closed",
                PortChangeKind::StateChanged => "state changed",
                PortChangeKind::ServiceChanged => "service changed",
                PortChangeKind::ScriptsChanged => "script output changed",
            };
            let (before, after) = (before.as_deref(), after.as_deref());
            let scripts = |p: Option<&PortView>| p.map(|p| p.scripts.clone()).unwrap_or_default();
            let (scripts_before, scripts_after) = (scripts(before), scripts(after));
            if *kind == PortChangeKind::ScriptsChanged {
                let (before, after) = (scripts_list(&scripts_before), scripts_list(&scripts_after));
                return format!("port {port}/{protocol} {what}: {before} -> {after}");
            }
            let mut text = format!("port {port}/{protocol} {what}: {} -> {}", port_text(before), port_text(after));
            if scripts_before != scripts_after {
                let (before, after) = (scripts_list(&scripts_before), scripts_list(&scripts_after));
                text.push_str(&format!("; scripts {before} -> {after}"));
            }
            text
        }
        Change::ExtraPorts { before, after } => format!("not shown {} -> {}", list(before), list(after)),
        Change::Os { before, after } => format!("OS {} -> {}", list(before), list(after)),
        Change::HostScripts { before, after } => {
            format!("host scripts {} -> {}", scripts_list(before), scripts_list(after))
        }
    }
}

/// Listed ports as `22/tcp open ssh OpenSSH 9.2p1, 80/tcp open http`.
pub fn ports_text(ports: &[ListedPort]) -> String {
    if ports.is_empty() {
        return "no port listed".to_owned();
    }
    let ports: Vec<String> =
        ports.iter().map(|p| format!("{}/{} {}", p.port, p.protocol, port_text(Some(&p.view)))).collect();
    escaped(&ports.join(", ")).into_owned()
}

/// Script results (`id: output`, themselves often holding commas), separated by `; `.
fn scripts_list(items: &[String]) -> String {
    if items.is_empty() { "(none)".to_owned() } else { items.join("; ") }
}

fn list(items: &[String]) -> String {
    if items.is_empty() { "(none)".to_owned() } else { items.join(", ") }
}

fn port_text(port: Option<&PortView>) -> String {
    let Some(port) = port else { return "(not listed)".to_owned() };
    let mut text = port.state.clone();
    if let Some(service) = &port.service {
        let name = match (&service.tunnel, &service.name) {
            (Some(tunnel), Some(name)) => format!("{tunnel}/{name}"),
            (None, Some(name)) => name.clone(),
            (Some(tunnel), None) => tunnel.clone(),
            (None, None) => String::new(),
        };
        let version: Vec<String> =
            [service.product.clone(), service.version.clone(), service.extrainfo.as_ref().map(|e| format!("({e})"))]
                .into_iter()
                .flatten()
                .collect();
        for part in [name, version.join(" ")] {
            if !part.is_empty() {
                text.push(' ');
                text.push_str(&part);
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_from_a_scan_are_written_out_but_lines_and_tabs_stay() {
        assert_eq!(escaped("OpenSSH 9.2"), "OpenSSH 9.2");
        assert_eq!(escaped("Open\u{1b}[2JSSH\r\u{7}"), "Open\\u{1b}[2JSSH\\u{d}\\u{7}");
        assert_eq!(escaped("line one\n\tline two"), "line one\n\tline two");
    }
}
