//! A streaming reader of nmap's XML output: hosts come out one at a time, so memory
//! stays flat however large the file. A scan counts only if it ends with a successful
//! `<runstats><finished>` (`exit="success"`, or no `exit` and no error, as nmap wrote before
//! 2010); anything else is rejected whole, and so is malformed XML.

use std::io::BufRead;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::model::{
    Address, ExtraPorts, Host, Hostname, OsMatch, Port, RunInfo, RunStats, Scan, Script, Service, Times,
};

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
pub struct ScanReader<R: BufRead> {
    reader: Reader<R>,
    buf: Vec<u8>,
    info: RunInfo,
    stats: Option<RunStats>,
    /// Set by `<finished exit="error">`.
    failure: Option<String>,
    closed: bool,
    hosts_read: u64,
    in_host: bool,
    /// Where the last event read starts, for errors.
    at: u64,
}

impl<R: BufRead> ScanReader<R> {
    /// Starts reading; fails unless the document's root is `<nmaprun>`.
    pub fn new(mut input: R) -> Result<Self, ScanError> {
        if input.fill_buf().map_err(|e| ScanError::Io(e.to_string()))?.starts_with(&GZIP_MAGIC) {
            return Err(ScanError::NotNmap(
                "it is gzip-compressed; decompress it first (gunzip FILE), seclab reads nmap's XML as nmap writes it"
                    .into(),
            ));
        }
        let mut reader = Reader::from_reader(input);
        let config = reader.config_mut();
        config.check_end_names = true;
        // The whitespace between elements carries nothing: no event for it.
        config.trim_text(true);
        let mut this = Self {
            reader,
            buf: Vec::with_capacity(4096),
            info: RunInfo::default(),
            stats: None,
            failure: None,
            closed: false,
            hosts_read: 0,
            in_host: false,
            at: 0,
        };
        loop {
            let (hosts_read, in_host) = (this.hosts_read, this.in_host);
            match read(&mut this.reader, &mut this.buf, hosts_read, in_host, &mut this.at)? {
                Event::Start(e) | Event::Empty(e) if e.name().as_ref() == "nmaprun" => {
                    each_attr(&e, this.at, |key, value| match key {
                        "scanner" => this.info.scanner = value.into_owned(),
                        "args" => this.info.args = value.into_owned(),
                        "start" => this.info.start = value.parse().unwrap_or_default(),
                        "version" => this.info.version = value.into_owned(),
                        _ => {}
                    })?;
                    return Ok(this);
                }
                Event::Start(e) | Event::Empty(e) => {
                    let name = e.name().as_ref().to_owned();
                    return Err(ScanError::NotNmap(format!("the root element is <{name}>, not <nmaprun>")));
                }
                Event::Eof => return Err(ScanError::NotNmap("the file holds no <nmaprun> element".into())),
                _ => {}
            }
        }
    }

    /// Run information from `<nmaprun>`.
    pub fn info(&self) -> &RunInfo {
        &self.info
    }

    /// The next host, or `None` once the document has ended.
    pub fn next_host(&mut self) -> Result<Option<Host>, ScanError> {
        while !self.closed {
            let (hosts_read, in_host) = (self.hosts_read, self.in_host);
            let (e, empty) = match read(&mut self.reader, &mut self.buf, hosts_read, in_host, &mut self.at)? {
                Event::Start(e) => (e, false),
                Event::Empty(e) => (e, true),
                Event::End(e) if e.name().as_ref() == "nmaprun" => {
                    self.closed = true;
                    continue;
                }
                Event::Eof => break,
                _ => continue,
            };
            let skip = match e.name().as_ref() {
                "host" => {
                    let (mut timed_out, mut times) = (false, Times::default());
                    each_attr(&e, self.at, |key, value| match key {
                        "timedout" => timed_out = value == "true",
                        "starttime" => times.start = value.parse().unwrap_or_default(),
                        "endtime" => times.end = value.parse().unwrap_or_default(),
                        _ => {}
                    })?;
                    let host = Host { timed_out, times: Some(times), ..Host::default() };
                    if empty {
                        self.hosts_read += 1;
                        return Ok(Some(Host { state: "unknown".into(), ..host }));
                    }
                    return self.host(host).map(Some);
                }
                name @ ("hosthint" | "prescript" | "postscript" | "taskprogress") if !empty => {
                    check_start(&e, self.at)?;
                    Some(name.to_owned())
                }
                "finished" => {
                    let (mut exit, mut time, mut summary, mut error) = (None, 0, String::new(), None);
                    each_attr(&e, self.at, |key, value| match key {
                        "exit" => exit = Some(value.into_owned()),
                        "time" => time = value.parse().unwrap_or_default(),
                        "summary" => summary = value.into_owned(),
                        "errormsg" => error = Some(value.into_owned()),
                        _ => {}
                    })?;
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
                    None
                }
                "hosts" => {
                    match &mut self.stats {
                        Some(stats) => each_attr(&e, self.at, |key, value| match key {
                            "up" => stats.hosts_up = value.parse().unwrap_or_default(),
                            "down" => stats.hosts_down = value.parse().unwrap_or_default(),
                            _ => {}
                        })?,
                        None => check_start(&e, self.at)?,
                    }
                    None
                }
                _ => {
                    check_start(&e, self.at)?;
                    None
                }
            };
            if let Some(name) = skip {
                self.skip(&name)?;
            }
        }
        Ok(None)
    }

    /// Skips an element and everything inside it.
    fn skip(&mut self, name: &str) -> Result<(), ScanError> {
        let mut depth = 1usize;
        while depth > 0 {
            let (hosts_read, in_host) = (self.hosts_read, self.in_host);
            let event = read(&mut self.reader, &mut self.buf, hosts_read, in_host, &mut self.at)?;
            if let Event::Start(e) | Event::Empty(e) = &event {
                check_start(e, self.at)?;
            }
            match event {
                Event::Start(e) if e.name().as_ref() == name => depth += 1,
                Event::End(e) if e.name().as_ref() == name => depth -= 1,
                Event::Eof => return Err(truncated(hosts_read, in_host)),
                _ => {}
            }
        }
        Ok(())
    }

    fn host(&mut self, mut host: Host) -> Result<Host, ScanError> {
        self.in_host = true;
        let hosts_read = self.hosts_read;
        let mut port: Option<Port> = None;
        let mut in_hostscript = false;
        loop {
            let (e, empty) = match read(&mut self.reader, &mut self.buf, hosts_read, true, &mut self.at)? {
                Event::Start(e) => (e, false),
                Event::Empty(e) => (e, true),
                Event::End(e) => {
                    match e.name().as_ref() {
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
                Event::Eof => return Err(truncated(hosts_read, true)),
                _ => continue,
            };
            // The elements read below are checked as their attributes are read; the others here.
            let read_below = match e.name().as_ref() {
                "status" | "address" | "hostname" | "extraports" | "port" | "script" | "osmatch" => true,
                "state" | "service" => port.is_some(),
                "times" => host.times.is_some(),
                _ => false,
            };
            if !read_below {
                check_start(&e, self.at)?;
            }
            match e.name().as_ref() {
                "status" => each_attr(&e, self.at, |key, value| match key {
                    "state" => host.state = value.into_owned(),
                    "reason" => host.reason = value.into_owned(),
                    _ => {}
                })?,
                "address" => {
                    let (mut addr, mut kind, mut vendor) = (None, None, None);
                    each_attr(&e, self.at, |key, value| match key {
                        "addr" => addr = Some(value.into_owned()),
                        "addrtype" => kind = Some(value.into_owned()),
                        "vendor" => vendor = Some(value.into_owned()),
                        _ => {}
                    })?;
                    if let Some(addr) = addr {
                        let kind = kind.unwrap_or_else(|| "ipv4".into());
                        check_address(&kind, &addr).map_err(|message| ScanError::Invalid {
                            offset: self.at,
                            message: format!("<address>: {message}"),
                        })?;
                        host.addresses.push(Address { kind, addr, vendor });
                    }
                }
                "hostname" => {
                    let (mut name, mut kind) = (None, String::new());
                    each_attr(&e, self.at, |key, value| match key {
                        "name" => name = Some(value.into_owned()),
                        "type" => kind = value.into_owned(),
                        _ => {}
                    })?;
                    if let Some(name) = name {
                        host.hostnames.push(Hostname { name, kind });
                    }
                }
                "extraports" => {
                    let mut extra = ExtraPorts { state: "unknown".into(), count: 0 };
                    each_attr(&e, self.at, |key, value| match key {
                        "state" => extra.state = value.into_owned(),
                        "count" => extra.count = value.parse().unwrap_or_default(),
                        _ => {}
                    })?;
                    host.extraports.push(extra);
                }
                "port" => {
                    let mut new = Port::default();
                    each_attr(&e, self.at, |key, value| match key {
                        "protocol" => new.protocol = value.into_owned(),
                        "portid" => new.port = value.parse().unwrap_or_default(),
                        _ => {}
                    })?;
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
                        each_attr(&e, self.at, |key, value| match key {
                            "state" => port.state = value.into_owned(),
                            "reason" => port.reason = value.into_owned(),
                            _ => {}
                        })?;
                    }
                }
                "service" => {
                    if let Some(port) = &mut port {
                        let mut service = Service::default();
                        each_attr(&e, self.at, |key, value| {
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
                        })?;
                        port.service = Some(service);
                    }
                }
                "script" => {
                    let mut script = Script { id: String::new(), output: String::new() };
                    each_attr(&e, self.at, |key, value| match key {
                        "id" => script.id = value.into_owned(),
                        "output" => script.output = value.into_owned(),
                        _ => {}
                    })?;
                    match &mut port {
                        Some(port) => port.scripts.push(script),
                        None if in_hostscript => host.scripts.push(script),
                        None => {}
                    }
                }
                "hostscript" => in_hostscript = !empty,
                "times" => {
                    if let Some(times) = &mut host.times {
                        each_attr(&e, self.at, |key, value| match key {
                            "srtt" => times.srtt = value.parse().unwrap_or_default(),
                            "rttvar" => times.rttvar = value.parse().unwrap_or_default(),
                            "to" => times.timeout = value.parse().unwrap_or_default(),
                            _ => {}
                        })?;
                    }
                }
                "osmatch" => {
                    let mut os = OsMatch { name: String::new(), accuracy: 0 };
                    each_attr(&e, self.at, |key, value| match key {
                        "name" => os.name = value.into_owned(),
                        "accuracy" => os.accuracy = value.parse().unwrap_or_default(),
                        _ => {}
                    })?;
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

/// The next event, borrowing `buf`; an end of input inside markup means the file was cut short.
fn read<'b, R: BufRead>(
    reader: &mut Reader<R>,
    buf: &'b mut Vec<u8>,
    hosts_read: u64,
    in_host: bool,
    at: &mut u64,
) -> Result<Event<'b>, ScanError> {
    buf.clear();
    let offset = reader.buffer_position();
    *at = offset;
    match reader.read_event_into(buf) {
        Ok(event) => {
            // Elements are checked where they are read (or skipped), in one pass over their
            // attributes: see [`each_attr`] and [`check_start`].
            well_formed(&event).map_err(|message| ScanError::Malformed { offset, message })?;
            Ok(event)
        }
        // An unclosed tag, comment or attribute at the end of input: the file was cut short.
        Err(quick_xml::Error::Syntax(error)) if !matches!(error, quick_xml::errors::SyntaxError::InvalidBangMarkup) => {
            Err(truncated(hosts_read, in_host))
        }
        Err(error) => {
            Err(ScanError::Malformed { offset: reader.error_position().max(offset), message: error.to_string() })
        }
    }
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
/// parse because they are the same in both files. One pass over the bytes, without a reader:
/// valid UTF-8, every tag closed by its own name, every start tag's name and attributes
/// checked as the reader checks them, every entity one XML defines, comments (without `--`),
/// CDATA sections and processing instructions closed. `offset` is where the element starts
/// in its file, for the error. Says whether the element holds anything but elements, text
/// and references.
pub fn check_element(element: &[u8], offset: u64) -> Result<Markup, ScanError> {
    let malformed = |at: usize, message: String| ScanError::Malformed { offset: offset + at as u64, message };
    let text = match std::str::from_utf8(element) {
        Ok(text) => text,
        Err(error) => return Err(malformed(error.valid_up_to(), "the bytes here are not UTF-8".into())),
    };
    let (mut open, mut markup): (Vec<&[u8]>, _) = (Vec::new(), Markup::Plain);
    let mut at = 0;
    // The next tag mostly starts right after the last, or after a line break: looked at
    // before searching.
    let next = |at: usize| match element.get(at..at + 2) {
        Some([b'<', _]) => Some(0),
        Some([b'\n', b'<']) => Some(1),
        _ => memchr::memchr2(b'<', b'&', &element[at..]),
    };
    while let Some(found) = next(at) {
        let start = at + found;
        let rest = &element[start..];
        if rest[0] == b'&' {
            let end =
                memchr::memchr(b';', rest).ok_or_else(|| malformed(start, "text: `&` starts no entity".into()))?;
            entities_defined(&rest[..=end]).map_err(|e| malformed(start, format!("text: {e}")))?;
            at = start + end + 1;
            continue;
        }
        let closed = |marker: &[u8], from: usize, what: &str| {
            memchr::memmem::find(&rest[from..], marker)
                .map(|e| from + e + marker.len())
                .ok_or_else(|| malformed(start, format!("{what} is never closed")))
        };
        if rest.get(1).is_some_and(|b| matches!(b, b'!' | b'?')) {
            markup = Markup::Declarations;
        }
        let length = if rest.starts_with(b"<!--") {
            let length = closed(b"-->", 4, "a comment")?;
            if memchr::memmem::find(&rest[4..length - 3], b"--").is_some() {
                return Err(malformed(start, "a comment holds `--`".into()));
            }
            length
        } else if rest.starts_with(b"<![CDATA[") {
            closed(b"]]>", 9, "a CDATA section")?
        } else if rest.starts_with(b"<?") {
            let length = closed(b"?>", 2, "a processing instruction")?;
            if rest[2..].get(..3).is_some_and(|t| t.eq_ignore_ascii_case(b"xml")) && !is_name_byte(rest.get(5)) {
                return Err(malformed(start, "an XML declaration inside the document".into()));
            }
            length
        } else if let Some(end_tag) = rest.strip_prefix(b"</") {
            let end =
                memchr::memchr(b'>', end_tag).ok_or_else(|| malformed(start, "an end tag is never closed".into()))?;
            let name = end_tag[..end].trim_ascii_end();
            match open.pop() {
                Some(expected) if expected == name => {}
                expected => {
                    let name = String::from_utf8_lossy(name);
                    let message = match expected {
                        Some(expected) => format!("</{name}> closes <{}>", String::from_utf8_lossy(expected)),
                        None => format!("</{name}> closes no element"),
                    };
                    return Err(malformed(start, message));
                }
            }
            end + 3
        } else {
            // A start tag: its name, then its attributes up to its end, in one pass.
            let name_length = rest[1..].iter().position(|b| b.is_ascii_whitespace() || matches!(b, b'>' | b'/'));
            let name_end = start + 1 + name_length.unwrap_or(rest.len() - 1);
            // `<` and the bytes that end a name are ASCII: the name is whole characters.
            let name = &text[start + 1..name_end];
            if !is_name(name) {
                return Err(malformed(start, format!("`{name}` is not an element name")));
            }
            let attributes = attributes_until_end(&text[name_end..], |_, _| {})
                .map_err(|message| malformed(start, format!("<{name}>: {message}")))?;
            let end = name_end + attributes;
            match element.get(end) {
                Some(b'>') => {
                    open.push(name.as_bytes());
                    end + 1 - start
                }
                Some(_) => end + 2 - start,
                None => return Err(malformed(start, "a tag is never closed".into())),
            }
        };
        at = start + length;
    }
    match open.last() {
        None => Ok(markup),
        Some(name) => Err(malformed(0, format!("<{}> is never closed", String::from_utf8_lossy(name)))),
    }
}

/// Where the tag that `tag` starts with ends (its `>`, outside quoted values); `None` when it
/// does not end, or holds a `<` outside quotes.
pub fn tag_end(tag: &[u8]) -> Option<usize> {
    let mut at = 1;
    loop {
        let found = at + memchr::memchr3(b'>', b'"', b'\'', &tag[at..])?;
        if memchr::memchr(b'<', &tag[at..found]).is_some() {
            return None;
        }
        match tag[found] {
            b'>' => return Some(found),
            quote => at = found + 1 + memchr::memchr(quote, &tag[found + 1..])? + 1,
        }
    }
}

/// An XML name: a letter, `_` or `:`, then letters, digits, `-`, `.`, `_` or `:` (any
/// character above ASCII counts as a letter, as XML's name ranges nearly all do).
fn is_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.first().is_some_and(|&b| NAME_BYTES[usize::from(b)] == NAME_START)
        && bytes.iter().all(|&b| NAME_BYTES[usize::from(b)] != 0)
}

/// Per byte: [`NAME_START`] for a letter, `_`, `:` or a byte above ASCII (part of a
/// character the text, valid UTF-8, holds), 1 for a digit, `-` or `.`, else 0.
const NAME_BYTES: [u8; 256] = {
    let mut table = [0; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = if b.is_ascii_alphabetic() || b == b'_' || b == b':' || !b.is_ascii() {
            NAME_START
        } else if b.is_ascii_digit() || b == b'-' || b == b'.' {
            1
        } else {
            0
        };
        byte += 1;
    }
    table
};
const NAME_START: u8 = 2;

fn is_name_byte(byte: Option<&u8>) -> bool {
    byte.is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

fn too_long(length: usize) -> String {
    format!("one text is {} MiB long; nmap writes none over 1 MiB", length >> 20)
}

/// What quick-xml lets through but XML (and nmap's own reader, expat) rejects, outside
/// element tags (whose attributes [`attributes`] checks): an entity XML does not define in
/// text, and an XML declaration XML does not allow.
fn well_formed(event: &Event<'_>) -> Result<(), String> {
    match event {
        Event::Decl(declaration) => {
            let raw = declaration.trim_end_matches('?');
            let problem = |message: &str| format!("the XML declaration: {message}");
            attributes(raw.strip_prefix("xml").unwrap_or(raw), |_, _| {}).map_err(|m| problem(&m))?;
            let version = declaration.version().map_err(|e| problem(&e.to_string()))?;
            let digits =
                version.strip_prefix("1.").is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()));
            let encoding = declaration.encoding().transpose().map_err(|e| problem(&e.to_string()))?;
            let named = encoding.as_deref().is_none_or(|e| {
                e.starts_with(|c: char| c.is_ascii_alphabetic())
                    && e.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            });
            let standalone = declaration.standalone().transpose().map_err(|e| problem(&e.to_string()))?;
            match (digits, named, standalone.as_deref()) {
                (true, true, None | Some("yes" | "no")) => Ok(()),
                _ => Err(problem("its version, encoding or standalone value is not one XML allows")),
            }
        }
        Event::Text(text) | Event::Comment(text) if text.len() > MAX_ATTRIBUTE => Err(too_long(text.len())),
        Event::CData(text) if text.len() > MAX_ATTRIBUTE => Err(too_long(text.len())),
        Event::Text(text) if text.contains('&') => entities_defined(text.as_bytes()).map_err(|e| format!("text: {e}")),
        // An entity in text comes as its own event.
        Event::GeneralRef(entity) => match (&**entity, entity.resolve_char_ref()) {
            (name, Ok(Some(c))) if !xml_char(c) => {
                Err(format!("text: `&{name};` refers to a character XML 1.0 forbids"))
            }
            ("amp" | "lt" | "gt" | "quot" | "apos", _) | (_, Ok(Some(_))) => Ok(()),
            (name, _) => Err(format!("text: `&{name};` is not an entity XML defines")),
        },
        _ => Ok(()),
    }
}

/// One pass over an element's attributes (`name="value"` pairs, as XML writes them): checks
/// them and hands each name and raw value to `each`. quick-xml's own checked iteration costs
/// twice as much, and every element is checked.
/// The longest attribute value a scan may hold: nmap's longest (script output) are a few KiB.
const MAX_ATTRIBUTE: usize = 1 << 20;

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

fn attributes<'a>(raw: &'a str, each: impl FnMut(&'a str, &'a str)) -> Result<(), String> {
    match attributes_until_end(raw, each)? {
        end if end == raw.len() => Ok(()),
        _ => Err("`>` outside the attribute values".into()),
    }
}

/// [`attributes`] of a tag read from just after its element name, up to where the tag ends:
/// returns where that is (its `>` or `/>`, outside quoted values), or the end of `raw`.
fn attributes_until_end<'a>(raw: &'a str, mut each: impl FnMut(&'a str, &'a str)) -> Result<usize, String> {
    let bytes = raw.as_bytes();
    // The names so far, for duplicates: on the stack (nmap writes at most a dozen), else on
    // the heap.
    let (mut few, mut count, mut more): ([&str; 16], usize, Vec<&str>) = ([""; 16], 0, Vec::new());
    let mut at = 0;
    loop {
        let spaced = at;
        while bytes.get(at).is_some_and(u8::is_ascii_whitespace) {
            at += 1;
        }
        match bytes.get(at) {
            None | Some(b'>') => return Ok(at),
            Some(b'/') if bytes.get(at + 1) == Some(&b'>') => return Ok(at),
            _ => {}
        }
        if at == spaced && count > 0 {
            return Err("attributes must be separated by a space".into());
        }
        let start = at;
        while bytes.get(at).is_some_and(|b| !matches!(b, b'=' | b' ' | b'\t' | b'\r' | b'\n' | b'>' | b'/')) {
            at += 1;
        }
        let name = &raw[start..at];
        if !is_name(name) {
            return Err(format!("`{name}` is not an attribute name"));
        }
        while bytes.get(at).is_some_and(u8::is_ascii_whitespace) {
            at += 1;
        }
        if bytes.get(at) != Some(&b'=') {
            return Err(format!("attribute `{name}` has no value"));
        }
        at += 1;
        while bytes.get(at).is_some_and(u8::is_ascii_whitespace) {
            at += 1;
        }
        let quote = match bytes.get(at) {
            Some(quote @ (b'"' | b'\'')) => *quote,
            _ => return Err(format!("the value of attribute `{name}` is not in quotes")),
        };
        // One search for the closing quote, a `<` (never allowed) or a `&` (checked after).
        let (value_start, mut end, mut entity) = (at + 1, at + 1, false);
        loop {
            let Some(found) = memchr::memchr3(quote, b'<', b'&', &bytes[end..]) else {
                return Err(format!("the value of attribute `{name}` has no closing quote"));
            };
            end += found;
            match bytes[end] {
                b'<' => return Err(format!("`<` in the value of attribute `{name}`")),
                b'&' => {
                    entity = true;
                    end += 1;
                }
                _ => break,
            }
        }
        let value = &raw[value_start..end];
        if value.len() > MAX_ATTRIBUTE {
            return Err(format!(
                "the value of attribute `{name}` is {} MiB long; nmap writes none over 1 MiB",
                value.len() >> 20
            ));
        }
        if entity {
            entities_defined(value.as_bytes()).map_err(|e| format!("attribute `{name}`: {e}"))?;
        }
        if few[..count.min(16)].contains(&name) || more.contains(&name) {
            return Err(format!("attribute `{name}` is given twice"));
        }
        match few.get_mut(count) {
            Some(slot) => *slot = name,
            None => more.push(name),
        }
        count += 1;
        each(name, value);
        at = end + 1;
    }
}

/// Checks one tag on its own, `<name attributes>` or `<name attributes/>`, as [`ScanReader`]
/// checks an element's start, and calls `each` with where the value of each attribute named
/// in `names` lies in the tag (without its quotes), each value checked before. `false` when
/// the tag is not well-formed: then values `each` was given before the fault do not count.
pub fn values_of(tag: &[u8], names: &[&str], mut each: impl FnMut(std::ops::Range<usize>)) -> bool {
    let Ok(text) = std::str::from_utf8(tag) else { return false };
    let Some((name, raw)) = split_tag(text) else { return false };
    is_name(name)
        && attributes(raw, |key, value| {
            if names.contains(&key) {
                let start = value.as_ptr() as usize - tag.as_ptr() as usize;
                each(start..start + value.len());
            }
        })
        .is_ok()
}

/// A tag's element name and the raw attributes after it; `None` unless it is `<...>`.
fn split_tag(tag: &str) -> Option<(&str, &str)> {
    let inner = tag.strip_prefix('<')?.strip_suffix('>')?;
    let text = inner.strip_suffix('/').unwrap_or(inner);
    Some(text.split_at(text.bytes().position(|b| b.is_ascii_whitespace()).unwrap_or(text.len())))
}

/// Checks the attributes of an element the reader does not use (it still must be XML).
fn check_start(element: &BytesStart<'_>, at: u64) -> Result<(), ScanError> {
    attributes(element.attributes_raw(), |_, _| {}).map_err(|message| malformed(element, at, message))
}

fn malformed(element: &BytesStart<'_>, at: u64, message: String) -> ScanError {
    let name = String::from_utf8_lossy(element.name().as_ref().as_bytes()).into_owned();
    ScanError::Malformed { offset: at, message: format!("<{name}>: {message}") }
}

/// Whether XML 1.0 allows `c` in a document (its `Char` production): no control character
/// but tab, line feed and carriage return, no surrogate, no U+FFFE or U+FFFF.
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Every `&...;` in `text` is one of XML's five entities or a character reference to a
/// character XML 1.0 allows.
fn entities_defined(text: &[u8]) -> Result<(), String> {
    for amp in memchr::memchr_iter(b'&', text) {
        let rest = &text[amp + 1..];
        let Some(end) = memchr::memchr(b';', rest) else { return Err("`&` starts no entity".into()) };
        let name = &rest[..end];
        let char_ref = match name {
            [b'#', b'x', hex @ ..] if !hex.is_empty() => {
                std::str::from_utf8(hex).ok().and_then(|h| u32::from_str_radix(h, 16).ok())
            }
            [b'#', digits @ ..] if !digits.is_empty() => std::str::from_utf8(digits).ok().and_then(|d| d.parse().ok()),
            _ => None,
        };
        if let Some(c) = char_ref.and_then(char::from_u32)
            && !xml_char(c)
        {
            return Err(format!("`&{};` refers to a character XML 1.0 forbids", String::from_utf8_lossy(name)));
        }
        let known =
            matches!(name, b"amp" | b"lt" | b"gt" | b"quot" | b"apos") || char_ref.and_then(char::from_u32).is_some();
        if !known {
            return Err(format!("`&{};` is not an entity XML defines", String::from_utf8_lossy(name)));
        }
    }
    Ok(())
}

fn truncated(hosts_read: u64, in_host: bool) -> ScanError {
    let place = if in_host { format!("inside host {}", hosts_read + 1) } else { "before the scan finished".to_owned() };
    ScanError::Incomplete(format!("the file ends {place} (nmap was stopped or the file was cut short)"))
}

/// Calls `f` with each attribute's name and value, in one pass over the element that also
/// checks it (see [`attributes`]); values are unescaped and normalised as XML says.
fn each_attr(
    element: &BytesStart<'_>,
    at: u64,
    mut f: impl FnMut(&str, std::borrow::Cow<'_, str>),
) -> Result<(), ScanError> {
    attributes(element.attributes_raw(), |key, raw| {
        // Most values hold no entity and no whitespace to normalise: borrow them as they are.
        let value = if raw.bytes().any(|b| matches!(b, b'&' | b'\r' | b'\n' | b'\t')) {
            let spaced = raw.replace(['\r', '\n', '\t'], " ");
            // The entities were checked: only XML's own are left to replace.
            let unescaped = quick_xml::escape::unescape(&spaced).map(|v| v.into_owned());
            std::borrow::Cow::Owned(unescaped.unwrap_or(spaced))
        } else {
            std::borrow::Cow::Borrowed(raw)
        };
        f(key, value);
    })
    .map_err(|message| malformed(element, at, message))
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
