//! A streaming reader of nmap's XML output: hosts come out one at a time, so memory
//! stays flat however large the file (the reader holds a window of it, and each token is
//! found and checked by [`super::xml::Scanner`], the pass `scan diff`'s check makes too). A scan counts only if it ends with a successful
//! `<runstats><finished>` (`exit="success"`, or no `exit` and no error, as nmap wrote before
//! 2010); anything else is rejected whole, and so is malformed XML.

use std::borrow::Cow;
use std::io::{BufRead, Read};

use super::model::{
    Address, ExtraPorts, Host, Hostname, OsMatch, Port, RunInfo, RunStats, Scan, Script, Service, Times,
};
use super::xml::{Attribute, Fault, Scanner, Token};

/// The first two bytes of a gzip stream (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Why a file is not a usable scan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    /// The file could not be read.
    #[error("cannot read the scan: {0}")]
    Io(String),
    /// The file is not nmap XML output at all.
    #[error("not an nmap XML file: {0}")]
    NotNmap(String),
    /// The XML is broken.
    #[error("malformed XML at byte {offset}: {message}")]
    Malformed {
        /// Byte offset where the parser stopped.
        offset: u64,
        /// What the parser found.
        message: String,
    },
    /// Well-formed XML holding a value nmap never writes (an address that is not one).
    #[error("invalid scan at byte {offset}: {message}")]
    Invalid {
        /// Byte offset of the element.
        offset: u64,
        /// What is wrong.
        message: String,
    },
    /// The scan did not finish: nmap was killed, the file was cut short, or nmap failed.
    #[error("incomplete scan: {0}")]
    Incomplete(String),
}

/// Reads hosts from nmap XML one at a time.
pub struct ScanReader<R: Read> {
    input: Input<R>,
    info: RunInfo,
    stats: Option<RunStats>,
    /// Set by `<finished exit="error">`.
    failure: Option<String>,
    closed: bool,
    hosts_read: u64,
    in_host: bool,
}

impl<R: BufRead> ScanReader<R> {
    /// Starts reading; fails unless the document's root is `<nmaprun>`.
    pub fn new(mut input: R) -> Result<Self, ScanError> {
        let start = input.fill_buf().map_err(|e| ScanError::Io(e.to_string()))?;
        if start.starts_with(&GZIP_MAGIC) {
            return Err(ScanError::NotNmap(
                "it is gzip-compressed; decompress it first (gunzip FILE), seclab reads nmap's XML as nmap writes it"
                    .into(),
            ));
        }
        // A byte order mark is no part of the document.
        let mark = if start.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
        input.consume(mark);
        let mut this = Self {
            input: Input::document(input, mark as u64),
            info: RunInfo::default(),
            stats: None,
            failure: None,
            closed: false,
            hosts_read: 0,
            in_host: false,
        };
        loop {
            match next_piece(&mut this.input, 0, false)? {
                Some(piece @ Piece { token: Token::Start { .. }, .. }) if piece.name() == "nmaprun" => {
                    piece.each(|key, value| match key {
                        "scanner" => this.info.scanner = value.into_owned(),
                        "args" => this.info.args = value.into_owned(),
                        "start" => this.info.start = value.parse().unwrap_or_default(),
                        "version" => this.info.version = value.into_owned(),
                        _ => {}
                    });
                    return Ok(this);
                }
                Some(piece @ Piece { token: Token::Start { .. }, .. }) => {
                    return Err(ScanError::NotNmap(format!("the root element is <{}>, not <nmaprun>", piece.name())));
                }
                None => return Err(ScanError::NotNmap("the file holds no <nmaprun> element".into())),
                Some(_) => {}
            }
        }
    }
}

impl<'a> ScanReader<&'a [u8]> {
    /// Reads one `<host>` element, `element`, which starts at `offset` in its file: every
    /// byte of it checked as a whole file's are, a tag it does not close named as such.
    pub fn host_element(element: &'a [u8], offset: u64) -> Result<Host, ScanError> {
        let mut this = Self {
            input: Input::element(element, offset),
            info: RunInfo::default(),
            stats: None,
            failure: None,
            closed: false,
            hosts_read: 0,
            in_host: true,
        };
        let host = match next_piece(&mut this.input, 0, true)? {
            Some(piece @ Piece { token: Token::Start { empty, .. }, .. }) if piece.name() == "host" => {
                let host = Self::host_start(&piece);
                if empty { Host { state: "unknown".into(), ..host } } else { this.host(host)? }
            }
            _ => return Err(ScanError::Malformed { offset, message: "not a <host> element".into() }),
        };
        match next_piece(&mut this.input, 0, true)? {
            None => Ok(host),
            Some(piece) => Err(ScanError::Malformed { offset: piece.offset, message: "more after </host>".into() }),
        }
    }
}

impl<R: Read> ScanReader<R> {
    /// Run information from `<nmaprun>`.
    pub fn info(&self) -> &RunInfo {
        &self.info
    }

    /// The next host, or `None` once the document has ended.
    pub fn next_host(&mut self) -> Result<Option<Host>, ScanError> {
        while !self.closed {
            let Some(piece) = next_piece(&mut self.input, self.hosts_read, self.in_host)? else { break };
            let empty = match piece.token {
                Token::Start { empty, .. } => empty,
                Token::End { .. } if piece.name() == "nmaprun" => {
                    self.closed = true;
                    continue;
                }
                _ => continue,
            };
            match piece.name() {
                "host" => {
                    let host = Self::host_start(&piece);
                    if empty {
                        self.hosts_read += 1;
                        return Ok(Some(Host { state: "unknown".into(), ..host }));
                    }
                    return self.host(host).map(Some);
                }
                "hosthint" | "prescript" | "postscript" | "taskprogress" if !empty => self.skip()?,
                "finished" => {
                    let (mut exit, mut time, mut summary, mut error) = (None, 0, String::new(), None);
                    piece.each(|key, value| match key {
                        "exit" => exit = Some(value.into_owned()),
                        "time" => time = value.parse().unwrap_or_default(),
                        "summary" => summary = value.into_owned(),
                        "errormsg" => error = Some(value.into_owned()),
                        _ => {}
                    });
                    // `exit` is optional (nmap before 2010 did not write it): a run that
                    // finished without one and without an error message completed.
                    match (exit.as_deref(), error) {
                        (Some("success"), _) | (None, None) => {
                            self.stats = Some(RunStats { finished: time, summary, ..RunStats::default() });
                        }
                        (Some("error") | None, error) => {
                            self.failure = Some(error.unwrap_or_else(|| "nmap reported an error".into()));
                        }
                        (Some(other), _) => {
                            self.failure =
                                Some(format!("nmap wrote exit=\"{other}\", which is neither success nor error"));
                        }
                    }
                }
                "hosts" => {
                    if let Some(stats) = &mut self.stats {
                        piece.each(|key, value| match key {
                            "up" => stats.hosts_up = value.parse().unwrap_or_default(),
                            "down" => stats.hosts_down = value.parse().unwrap_or_default(),
                            _ => {}
                        });
                    }
                }
                _ => {}
            }
        }
        Ok(None)
    }

    /// Skips the element just started and everything inside it (checked all the same).
    fn skip(&mut self) -> Result<(), ScanError> {
        let depth = self.input.scanner.depth();
        while self.input.scanner.depth() >= depth {
            if next_piece(&mut self.input, self.hosts_read, self.in_host)?.is_none() {
                return Err(truncated(self.hosts_read, self.in_host));
            }
        }
        Ok(())
    }

    /// A host as its start tag says: whether it timed out, and when it was scanned.
    fn host_start(piece: &Piece<'_>) -> Host {
        let (mut timed_out, mut times) = (false, Times::default());
        piece.each(|key, value| match key {
            "timedout" => timed_out = value == "true",
            "starttime" => times.start = value.parse().unwrap_or_default(),
            "endtime" => times.end = value.parse().unwrap_or_default(),
            _ => {}
        });
        Host { timed_out, times: Some(times), ..Host::default() }
    }

    fn host(&mut self, mut host: Host) -> Result<Host, ScanError> {
        self.in_host = true;
        let mut port: Option<Port> = None;
        let mut in_hostscript = false;
        loop {
            let Some(piece) = next_piece(&mut self.input, self.hosts_read, true)? else {
                return Err(truncated(self.hosts_read, true));
            };
            let empty = match piece.token {
                Token::Start { empty, .. } => empty,
                Token::End { .. } => {
                    match piece.name() {
                        "port" => {
                            if let Some(port) = port.take().filter(|p| p.port != 0 && !p.protocol.is_empty()) {
                                host.ports.push(port);
                            }
                        }
                        "hostscript" => in_hostscript = false,
                        "host" => {
                            self.in_host = false;
                            self.hosts_read += 1;
                            if host.state.is_empty() {
                                host.state = "unknown".into();
                            }
                            return Ok(host);
                        }
                        _ => {}
                    }
                    continue;
                }
                _ => continue,
            };
            match piece.name() {
                "status" => piece.each(|key, value| match key {
                    "state" => host.state = value.into_owned(),
                    "reason" => host.reason = value.into_owned(),
                    _ => {}
                }),
                "address" => {
                    let (mut addr, mut kind, mut vendor) = (None, None, None);
                    piece.each(|key, value| match key {
                        "addr" => addr = Some(value.into_owned()),
                        "addrtype" => kind = Some(value.into_owned()),
                        "vendor" => vendor = Some(value.into_owned()),
                        _ => {}
                    });
                    if let Some(addr) = addr {
                        let kind = kind.unwrap_or_else(|| "ipv4".into());
                        check_address(&kind, &addr).map_err(|message| ScanError::Invalid {
                            offset: piece.offset,
                            message: format!("<address>: {message}"),
                        })?;
                        host.addresses.push(Address { kind, addr, vendor });
                    }
                }
                "hostname" => {
                    let (mut name, mut kind) = (None, String::new());
                    piece.each(|key, value| match key {
                        "name" => name = Some(value.into_owned()),
                        "type" => kind = value.into_owned(),
                        _ => {}
                    });
                    if let Some(name) = name {
                        host.hostnames.push(Hostname { name, kind });
                    }
                }
                "extraports" => {
                    let mut extra = ExtraPorts { state: "unknown".into(), count: 0 };
                    piece.each(|key, value| match key {
                        "state" => extra.state = value.into_owned(),
                        "count" => extra.count = value.parse().unwrap_or_default(),
                        _ => {}
                    });
                    host.extraports.push(extra);
                }
                "port" => {
                    let mut new = Port::default();
                    piece.each(|key, value| match key {
                        "protocol" => new.protocol = value.into_owned(),
                        "portid" => new.port = value.parse().unwrap_or_default(),
                        _ => {}
                    });
                    if empty {
                        if new.port != 0 && !new.protocol.is_empty() {
                            host.ports.push(new);
                        }
                    } else {
                        port = Some(new);
                    }
                }
                "state" => {
                    if let Some(port) = &mut port {
                        piece.each(|key, value| match key {
                            "state" => port.state = value.into_owned(),
                            "reason" => port.reason = value.into_owned(),
                            _ => {}
                        });
                    }
                }
                "service" => {
                    if let Some(port) = &mut port {
                        let mut service = Service::default();
                        piece.each(|key, value| {
                            let field = match key {
                                "name" => &mut service.name,
                                "product" => &mut service.product,
                                "version" => &mut service.version,
                                "extrainfo" => &mut service.extrainfo,
                                "tunnel" => &mut service.tunnel,
                                "method" => &mut service.method,
                                _ => return,
                            };
                            *field = Some(value.into_owned());
                        });
                        port.service = Some(service);
                    }
                }
                "script" => {
                    let mut script = Script { id: String::new(), output: String::new() };
                    piece.each(|key, value| match key {
                        "id" => script.id = value.into_owned(),
                        "output" => script.output = value.into_owned(),
                        _ => {}
                    });
                    match &mut port {
                        Some(port) => port.scripts.push(script),
                        None if in_hostscript => host.scripts.push(script),
                        None => {}
                    }
                }
                "hostscript" => in_hostscript = !empty,
                "times" => {
                    if let Some(times) = &mut host.times {
                        piece.each(|key, value| match key {
                            "srtt" => times.srtt = value.parse().unwrap_or_default(),
                            "rttvar" => times.rttvar = value.parse().unwrap_or_default(),
                            "to" => times.timeout = value.parse().unwrap_or_default(),
                            _ => {}
                        });
                    }
                }
                "osmatch" => {
                    let mut os = OsMatch { name: String::new(), accuracy: 0 };
                    piece.each(|key, value| match key {
                        "name" => os.name = value.into_owned(),
                        "accuracy" => os.accuracy = value.parse().unwrap_or_default(),
                        _ => {}
                    });
                    host.os.push(os);
                }
                _ => {}
            }
        }
    }

    /// Ends the read: the run statistics if the scan finished successfully and the
    /// document is whole, else why it is incomplete. Reads any hosts left unread.
    pub fn finish(mut self) -> Result<RunStats, ScanError> {
        while self.next_host()?.is_some() {}
        if let Some(message) = self.failure.take() {
            return Err(ScanError::Incomplete(format!("nmap failed: {message}")));
        }
        if !self.closed {
            return Err(ScanError::Incomplete(
                "the file ends before </nmaprun> (nmap was stopped or the file was cut short)".into(),
            ));
        }
        self.stats
            .take()
            .ok_or_else(|| ScanError::Incomplete("the file has no <runstats><finished>: nmap did not finish".into()))
    }
}

/// How much of a file the reader holds at a time (more while one token is longer).
const WINDOW: usize = 64 * 1024;

/// The longest token the reader holds: no tag nmap writes comes near it.
const MAX_TOKEN: usize = 8 << 20;

/// The reader's input: a window of the file, refilled as the scanner needs more; every byte
/// checked to be UTF-8 once, a token at a time.
struct Input<R> {
    source: R,
    scanner: Scanner,
    buf: Vec<u8>,
    /// Where the next token starts in `buf`, and where the bytes read end.
    start: usize,
    filled: usize,
    /// The source has no more.
    eof: bool,
    /// The source is one element, all of it there: a token cut short is malformed, not a
    /// file cut short.
    whole: bool,
    /// The file offset of `buf[0]`.
    base: u64,
}

/// A token as the reader hands it on: its text, the attributes of a start tag, and where it
/// is in the file.
struct Piece<'a> {
    token: Token,
    text: &'a str,
    attributes: &'a [Attribute],
    offset: u64,
}

impl Piece<'_> {
    /// The element name of a start or end tag.
    fn name(&self) -> &str {
        match self.token {
            Token::Start { name_end, .. } => &self.text[1..name_end],
            Token::End { name_end } => &self.text[2..name_end],
            _ => "",
        }
    }

    /// Calls `f` with each attribute's name and value (checked as the tag was read); values
    /// are unescaped and normalised as XML says.
    fn each(&self, mut f: impl FnMut(&str, Cow<'_, str>)) {
        for attribute in self.attributes {
            let raw = &self.text[attribute.value.clone()];
            // Most values hold no entity and no whitespace to normalise: borrowed as they are.
            let value = if raw.bytes().any(|b| matches!(b, b'&' | b'\r' | b'\n' | b'\t')) {
                let spaced = raw.replace(['\r', '\n', '\t'], " ");
                // The entities were checked: only XML's own are left to replace.
                let unescaped = quick_xml::escape::unescape(&spaced).map(|v| v.into_owned());
                Cow::Owned(unescaped.unwrap_or(spaced))
            } else {
                Cow::Borrowed(raw)
            };
            f(&self.text[attribute.name.clone()], value);
        }
    }
}

impl<'a> Input<&'a [u8]> {
    /// One element, all of it in `element`, which starts at `offset` in its file.
    fn element(element: &'a [u8], offset: u64) -> Self {
        let (scanner, buf) = (Scanner::element().keeping_attributes(), vec![0; element.len().max(64)]);
        Self { source: element, scanner, buf, start: 0, filled: 0, eof: false, whole: true, base: offset }
    }
}

impl<R: Read> Input<R> {
    /// A document read from `source`, whose first byte is at `base` in its file.
    fn document(source: R, base: u64) -> Self {
        let buf = vec![0; WINDOW];
        Self { source, scanner: Scanner::document(), buf, start: 0, filled: 0, eof: false, whole: false, base }
    }

    /// The next token, or `None` at the end of the input; `Err(None)` when the input ends
    /// inside one (the file was cut short).
    fn next(&mut self) -> Result<Option<Piece<'_>>, Option<ScanError>> {
        loop {
            let window = &self.buf[self.start..self.filled];
            // A character the window's end cuts in two waits for its rest.
            let usable = if self.eof { window.len() } else { whole_characters(window) };
            let at = self.base + self.start as u64;
            let fault = match self.scanner.next(&window[..usable]) {
                Ok(found) => {
                    let begin = self.start;
                    self.start += found.end;
                    let bytes = &self.buf[begin..begin + found.end];
                    let text = std::str::from_utf8(bytes).map_err(|error| {
                        Some(ScanError::Malformed {
                            offset: at + error.valid_up_to() as u64,
                            message: "the bytes here are not UTF-8".into(),
                        })
                    })?;
                    return Ok(Some(Piece {
                        token: found.token,
                        text: &text[found.start..],
                        attributes: self.scanner.attributes(),
                        offset: at + found.start as u64,
                    }));
                }
                Err(fault) => fault,
            };
            match fault {
                Fault::Malformed(offset, message) => {
                    return Err(Some(ScanError::Malformed { offset: at + offset as u64, message }));
                }
                Fault::Short(_) if usable > MAX_TOKEN => {
                    return Err(Some(ScanError::Malformed {
                        offset: at,
                        message: "a tag over 8 MiB long (nmap writes none near that)".into(),
                    }));
                }
                Fault::Short(_) if !self.eof => self.refill().map_err(Some)?,
                Fault::Short(_) if self.start == self.filled => return Ok(None),
                Fault::Short(what) if self.whole => {
                    return Err(Some(ScanError::Malformed { offset: at, message: what.into() }));
                }
                Fault::Short(_) => {
                    if let Err(error) = std::str::from_utf8(&self.buf[self.start..self.filled]) {
                        let offset = at + error.valid_up_to() as u64;
                        return Err(Some(ScanError::Malformed {
                            offset,
                            message: "the bytes here are not UTF-8".into(),
                        }));
                    }
                    return Err(None);
                }
            }
        }
    }

    /// Reads more of the source after the bytes not yet read (moved to the front).
    fn refill(&mut self) -> Result<(), ScanError> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.filled, 0);
            self.base += self.start as u64;
            self.filled -= self.start;
            self.start = 0;
        }
        if self.filled == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        loop {
            match self.source.read(&mut self.buf[self.filled..]) {
                Ok(0) => self.eof = true,
                Ok(read) => self.filled += read,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(ScanError::Io(error.to_string())),
            }
            return Ok(());
        }
    }
}

/// The length of `bytes` without a character cut short at their end.
fn whole_characters(bytes: &[u8]) -> usize {
    let length = bytes.len();
    for back in 1..=length.min(3) {
        let byte = bytes[length - back];
        if byte < 0x80 {
            return length;
        }
        if byte >= 0xC0 {
            let needs = if byte >= 0xF0 {
                4
            } else if byte >= 0xE0 {
                3
            } else {
                2
            };
            return if needs > back { length - back } else { length };
        }
    }
    length
}

/// The next token of `input`; a file cut short says where, by the hosts read so far.
fn next_piece<R: Read>(input: &mut Input<R>, hosts_read: u64, in_host: bool) -> Result<Option<Piece<'_>>, ScanError> {
    input.next().map_err(|stop| stop.unwrap_or_else(|| truncated(hosts_read, in_host)))
}

fn truncated(hosts_read: u64, in_host: bool) -> ScanError {
    let place = if in_host { format!("inside host {}", hosts_read + 1) } else { "before the scan finished".to_owned() };
    ScanError::Incomplete(format!("the file ends {place} (nmap was stopped or the file was cut short)"))
}

/// What a well-formed element holds besides elements, text and references.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Markup {
    /// Nothing else: every `<` in it starts a tag.
    Plain,
    /// A comment, a CDATA section or a processing instruction (nmap writes none in a host).
    Declarations,
}

/// Checks that `element` (the bytes of one element, `<host>` for instance) is well-formed XML
/// as [`ScanReader`] requires, without building anything: for the hosts a comparison does not
/// parse because they are the same in both files. The reader's own pass ([`Scanner`]) over
/// bytes in memory: valid UTF-8, every tag closed by its own name, every start tag's name and
/// attributes checked, every entity one XML defines, comments (without `--`), CDATA sections
/// and processing instructions closed. `offset` is where the element starts in its file, for
/// the error. Says whether the element holds anything but elements, text and references.
pub fn check_element(element: &[u8], offset: u64) -> Result<Markup, ScanError> {
    let malformed = |at: usize, message: String| ScanError::Malformed { offset: offset + at as u64, message };
    if let Err(error) = std::str::from_utf8(element) {
        return Err(malformed(error.valid_up_to(), "the bytes here are not UTF-8".into()));
    }
    let (mut scanner, mut markup, mut at) = (Scanner::element(), Markup::Plain, 0);
    while at < element.len() {
        match scanner.next(&element[at..]) {
            Ok(found) => {
                if found.token == Token::Declaration {
                    markup = Markup::Declarations;
                }
                at += found.end;
            }
            Err(Fault::Short(what)) => return Err(malformed(at, what.into())),
            Err(Fault::Malformed(inside, message)) => return Err(malformed(at + inside, message)),
        }
    }
    match scanner.open() {
        None => Ok(markup),
        Some(name) => Err(malformed(0, format!("<{}> is never closed", String::from_utf8_lossy(name)))),
    }
}

/// Checks that `addr` is an address of nmap's `addrtype` `kind`.
fn check_address(kind: &str, addr: &str) -> Result<(), String> {
    let valid = match kind {
        "ipv4" => addr.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => addr.parse::<std::net::Ipv6Addr>().is_ok(),
        "mac" => addr.len() == 17 && addr.split(':').all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit())),
        _ => return Err(format!("`{}` is not an address type nmap writes (ipv4, ipv6, mac)", shortened(kind))),
    };
    if valid { Ok(()) } else { Err(format!("`{}` is not an {kind} address", shortened(addr))) }
}

/// `text`, cut to 40 characters for a message.
fn shortened(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((cut, _)) => format!("{}... ({} bytes)", &text[..cut], text.len()),
        None => text.to_owned(),
    }
}

/// Reads a whole scan into memory (small files, tests); rejects it unless it is complete.
pub fn read_scan(input: impl BufRead) -> Result<Scan, ScanError> {
    let mut reader = ScanReader::new(input)?;
    let info = reader.info().clone();
    let mut hosts = Vec::new();
    while let Some(host) = reader.next_host()? {
        hosts.push(host);
    }
    let stats = reader.finish()?;
    Ok(Scan { info, hosts, stats })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const SCAN: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<nmaprun scanner="nmap" args="nmap -sV 127.0.0.1" start="1700000000" version="7.93" xmloutputversion="1.05">
<scaninfo type="connect" protocol="tcp" numservices="1000" services="1-1000"/>
<hosthint><status state="up" reason="unknown-response"/><address addr="127.0.0.1" addrtype="ipv4"/></hosthint>
<host starttime="1700000000" endtime="1700000001"><status state="up" reason="conn-refused" reason_ttl="0"/>
<address addr="127.0.0.1" addrtype="ipv4"/>
<hostnames><hostname name="localhost" type="PTR"/></hostnames>
<ports><extraports state="closed" count="998"><extrareasons reason="conn-refused" count="998"/></extraports>
<port protocol="tcp" portid="22"><state state="open" reason="syn-ack" reason_ttl="0"/><service name="ssh" product="OpenSSH" version="9.2p1" extrainfo="protocol 2.0" method="probed" conf="10"><cpe>cpe:/a:openbsd:openssh:9.2p1</cpe></service></port>
<port protocol="tcp" portid="443"><state state="open" reason="syn-ack"/><service name="https" tunnel="ssl" method="table" conf="3"/><script id="ssl-cert" output="Subject: CN=a&amp;b"><elem key="x">y</elem></script></port>
</ports>
<os><osmatch name="Linux 5.0 - 5.14" accuracy="100" line="1"/></os>
<hostscript><script id="clock-skew" output="0s"/></hostscript>
<times srtt="100" rttvar="50" to="100000"/>
</host>
<host timedout="true"><status state="up" reason="user-set"/><address addr="127.0.0.2" addrtype="ipv4"/></host>
<runstats><finished time="1700000002" timestr="x" summary="Nmap done: 2 IP addresses (2 hosts up) scanned in 2.00 seconds" elapsed="2.00" exit="success"/><hosts up="2" down="0" total="2"/></runstats>
</nmaprun>
"#;

    #[test]
    fn reads_every_part_of_a_host() {
        let scan = read_scan(SCAN.as_bytes()).unwrap();
        assert_eq!(scan.info.version, "7.93");
        assert_eq!(scan.info.start, 1_700_000_000);
        assert_eq!(scan.stats.hosts_up, 2);
        assert_eq!(scan.hosts.len(), 2, "the hosthint is not a host");
        let host = &scan.hosts[0];
        assert!(host.is_up());
        assert_eq!(host.primary_address(), Some("127.0.0.1"));
        assert_eq!(host.primary_hostname(), Some("localhost"));
        assert_eq!(host.extraports, vec![ExtraPorts { state: "closed".into(), count: 998 }]);
        assert_eq!(host.ports.len(), 2);
        let ssh = host.ports[0].service.as_ref().unwrap();
        assert_eq!((ssh.product.as_deref(), ssh.version.as_deref()), (Some("OpenSSH"), Some("9.2p1")));
        assert_eq!(host.ports[1].scripts[0].output, "Subject: CN=a&b");
        assert_eq!(host.ports[1].service.as_ref().unwrap().tunnel.as_deref(), Some("ssl"));
        assert_eq!(host.os[0].accuracy, 100);
        assert_eq!(host.scripts[0].id, "clock-skew");
        assert!(scan.hosts[1].timed_out && !scan.hosts[1].is_up());
        let times = host.times.as_ref().unwrap();
        assert_eq!(
            (times.start, times.end, times.srtt, times.rttvar, times.timeout),
            (1_700_000_000, 1_700_000_001, 100, 50, 100_000)
        );
    }

    #[test]
    fn rejects_truncated_failed_and_foreign_files() {
        for cut in [
            SCAN.find("<port protocol=\"tcp\" portid=\"443\"").unwrap(),
            SCAN.find("<runstats>").unwrap(),
            SCAN.len() - 12,
        ] {
            let error = read_scan(&SCAN.as_bytes()[..cut]).unwrap_err();
            assert!(matches!(error, ScanError::Incomplete(_)), "cut at {cut}: {error}");
        }
        let failed = SCAN.replace(r#"exit="success""#, r#"exit="error" errormsg="Failed to open device""#);
        assert_eq!(
            read_scan(failed.as_bytes()).unwrap_err(),
            ScanError::Incomplete("nmap failed: Failed to open device".into())
        );
        assert!(matches!(read_scan("<html></html>".as_bytes()).unwrap_err(), ScanError::NotNmap(_)));
        assert!(matches!(read_scan("".as_bytes()).unwrap_err(), ScanError::NotNmap(_)));
        let gzip = read_scan([0x1f, 0x8b, 0x08, 0x00].as_slice()).unwrap_err();
        assert!(gzip.to_string().contains("gzip-compressed"), "{gzip}");
        let broken = SCAN.replace("</ports>", "</port>");
        assert!(matches!(read_scan(broken.as_bytes()).unwrap_err(), ScanError::Malformed { .. }));
    }

    #[test]
    fn a_run_finished_without_exit_completed_unless_it_says_why_not() {
        // nmap before 2010 wrote no `exit` (its DTD declares it optional).
        let old = SCAN.replace(r#" exit="success""#, "");
        assert_eq!(read_scan(old.as_bytes()).unwrap().hosts.len(), 2);
        let failed = SCAN.replace(r#"exit="success""#, r#"errormsg="Failed to open device""#);
        assert_eq!(
            read_scan(failed.as_bytes()).unwrap_err(),
            ScanError::Incomplete("nmap failed: Failed to open device".into())
        );
        let odd = SCAN.replace(r#"exit="success""#, r#"exit="maybe""#);
        assert!(read_scan(odd.as_bytes()).unwrap_err().to_string().contains(r#"exit="maybe""#));
    }

    #[test]
    fn malformed_attributes_and_entities_are_rejected_wherever_they_are() {
        let cases = [
            // A duplicate attribute, one without a value, an unquoted value, `<` in a value.
            (r#"<state state="open" reason="syn-ack""#, r#"<state state="open" state="closed" reason="syn-ack""#),
            (r#"<state state="open" reason="syn-ack""#, r#"<state state reason="syn-ack""#),
            (r#"<state state="open" reason="syn-ack""#, r#"<state state=open reason="syn-ack""#),
            (r#"<state state="open" reason="syn-ack""#, r#"<state state="op<en" reason="syn-ack""#),
            // An entity XML does not define, in an attribute and in text.
            ("Subject: CN=a&amp;b", "Subject: CN=a&bogus;b"),
            ("cpe:/a:openbsd:openssh:9.2p1", "cpe:/a:&bogus;"),
            // In an element seclab does not read (skipped or ignored).
            (r#"<extrareasons reason="conn-refused""#, r#"<extrareasons reason=conn-refused"#),
            (r#"<hosthint><status state="up""#, r#"<hosthint><status state="up" state="down""#),
        ];
        for (from, to) in cases {
            assert!(SCAN.contains(from), "{from}");
            let broken = SCAN.replacen(from, to, 1);
            let error = read_scan(broken.as_bytes()).expect_err(to);
            assert!(matches!(error, ScanError::Malformed { offset, .. } if offset > 0), "{to}: {error}");
            assert!(roxmltree::Document::parse(&broken).is_err(), "the oracle rejects {to} too");
        }
        assert!(roxmltree::Document::parse(SCAN).is_ok());
        // The XML declaration takes no entity, and only a 1.x version.
        for declaration in [r#"<?xml version="1.0&amp;" encoding="UTF-8"?>"#, r#"<?xml version="2.0"?>"#] {
            let broken = SCAN.replacen(r#"<?xml version="1.0" encoding="UTF-8"?>"#, declaration, 1);
            assert!(matches!(read_scan(broken.as_bytes()), Err(ScanError::Malformed { .. })), "{declaration}");
        }
    }
}
