//! The one pass over XML bytes that both the streaming reader (`parse::ScanReader`, for
//! ingest and for the hosts a comparison parses) and the check of the hosts it does not
//! parse (`parse::check_element`) make: it finds each token, checks it as XML (and nmap's own
//! reader, expat) requires, and keeps the elements open, so that every end tag closes its
//! own. quick-xml lets through duplicate attributes, unquoted values, `<` in a value and
//! entities XML does not define; this pass lets none through.

use std::ops::Range;

/// The longest attribute value, text or comment a scan may hold: nmap's longest (script
/// output) are a few KiB.
pub const MAX_TEXT: usize = 1 << 20;

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token {
    /// A start tag, `<name ...>`, or an empty element, `<name .../>` (`empty`); its name
    /// ends at `name_end`, from the token's start.
    Start { name_end: usize, empty: bool },
    /// An end tag, `</name>`, that closes the element open; its name ends at `name_end`.
    End { name_end: usize },
    /// Text with its references, or a part of it where the input ends.
    Text,
    /// A comment, a CDATA section or a processing instruction.
    Declaration,
    /// The XML declaration or the document type declaration, before the root element.
    Prolog,
}

/// A token found at the start of the bytes given: where it lies in them (after a line break
/// that comes before a tag), and where the next one starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    /// What it is.
    pub token: Token,
    /// Where it starts.
    pub start: usize,
    /// Where it ends, and the next starts.
    pub end: usize,
}

/// Why no token was read.
#[derive(Debug, PartialEq, Eq)]
pub enum Fault {
    /// The bytes end inside a token: what is left open, as a message.
    Short(&'static str),
    /// Not well-formed XML: where (from the bytes' start) and why.
    Malformed(usize, String),
}

/// An attribute of the last start tag read: where its name and its raw value (without quotes)
/// lie in the token.
#[derive(Debug, Clone)]
pub struct Attribute {
    /// The name's bytes.
    pub name: Range<usize>,
    /// The value's bytes.
    pub value: Range<usize>,
}

/// Where in a document a scanner is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// At its first byte: an XML declaration may come.
    First,
    /// Before its root element: a document type declaration may come.
    Prolog,
    /// In or after the root element.
    Elements,
}

/// Reads tokens one at a time from bytes that are valid UTF-8 (the caller checks them).
#[derive(Debug)]
pub struct Scanner {
    /// The names of the elements open, one after another, and where each ends.
    names: Vec<u8>,
    name_ends: Vec<usize>,
    /// The attributes of the last start tag, when kept.
    attributes: Vec<Attribute>,
    keep_attributes: bool,
    /// Bytes of text since the last tag.
    text: usize,
    place: Place,
}

impl Scanner {
    /// A scanner at the start of a document, keeping each start tag's attributes.
    pub fn document() -> Self {
        Self { place: Place::First, keep_attributes: true, ..Self::element() }
    }

    /// A scanner for the bytes of one element, only checking them.
    pub fn element() -> Self {
        Self {
            names: Vec::new(),
            name_ends: Vec::new(),
            attributes: Vec::new(),
            keep_attributes: false,
            text: 0,
            place: Place::Elements,
        }
    }

    /// The same, keeping each start tag's attributes.
    pub fn keeping_attributes(self) -> Self {
        Self { keep_attributes: true, ..self }
    }

    /// How many elements are open.
    pub fn depth(&self) -> usize {
        self.name_ends.len()
    }

    /// The innermost element open.
    pub fn open(&self) -> Option<&[u8]> {
        let end = *self.name_ends.last()?;
        let start = self.name_ends.len().checked_sub(2).map_or(0, |i| self.name_ends[i]);
        Some(&self.names[start..end])
    }

    /// The attributes of the last start tag (of a document's scanner).
    pub fn attributes(&self) -> &[Attribute] {
        &self.attributes
    }

    /// The token at the start of `bytes`. [`Fault::Short`] when `bytes` end inside it: given
    /// more, the same call reads it.
    #[inline]
    pub fn next(&mut self, bytes: &[u8]) -> Result<Found, Fault> {
        // A tag mostly starts right away, or after a line break.
        let lead = match bytes {
            [b'<', ..] => 0,
            [b'\n', b'<', ..] => 1,
            _ => return self.text(bytes),
        };
        let tag = &bytes[lead..];
        let read = match tag.get(1) {
            Some(b'!' | b'?') => self.declaration(tag, self.place == Place::First && lead == 0),
            Some(b'/') => self.end_tag(tag),
            Some(_) => self.start_tag(tag),
            None => Err(Fault::Short("a tag is never closed")),
        };
        let (token, length) = read.map_err(|fault| match fault {
            Fault::Malformed(at, message) => Fault::Malformed(lead + at, message),
            short => short,
        })?;
        self.place = match (self.place, token) {
            (_, Token::Start { .. }) | (Place::Elements, _) => Place::Elements,
            _ => Place::Prolog,
        };
        self.text = 0;
        Ok(Found { token, start: lead, end: lead + length })
    }

    /// Text up to the next tag, or to the end of `bytes`, its references checked.
    fn text(&mut self, bytes: &[u8]) -> Result<Found, Fault> {
        let end = memchr::memchr(b'<', bytes).unwrap_or(bytes.len());
        let mut length = end;
        let mut from = 0;
        while let Some(found) = memchr::memchr(b'&', &bytes[from..end]) {
            let amp = from + found;
            match memchr::memchr(b';', &bytes[amp..end]) {
                Some(semicolon) => {
                    check_references(&bytes[amp..=amp + semicolon])
                        .map_err(|message| Fault::Malformed(amp, format!("text: {message}")))?;
                    from = amp + semicolon + 1;
                }
                // Past a `<`, or too far for any reference (however many leading zeros).
                None if end < bytes.len() || end - amp > MAX_TEXT => {
                    return Err(Fault::Malformed(amp, "text: `&` starts no entity".into()));
                }
                // The bytes end inside what may be a reference.
                None => {
                    length = amp;
                    break;
                }
            }
        }
        if length == 0 {
            return Err(Fault::Short(if bytes.is_empty() { "nothing is left" } else { "text: `&` starts no entity" }));
        }
        if self.place == Place::First {
            self.place = Place::Prolog;
        }
        self.text += length;
        if self.text > MAX_TEXT {
            return Err(Fault::Malformed(0, "one text is over 1 MiB long (nmap writes none that long)".into()));
        }
        Ok(Found { token: Token::Text, start: 0, end: length })
    }

    /// `<name attributes>` or `<name attributes/>`: its name, then its attributes up to its
    /// end, in one pass.
    fn start_tag(&mut self, tag: &[u8]) -> Result<(Token, usize), Fault> {
        let name_end = 1 + name_length(&tag[1..]);
        match tag.get(name_end) {
            Some(b' ' | b'\t' | b'\r' | b'\n' | b'>' | b'/') if name_end > 1 => {}
            None => return Err(Fault::Short("a tag is never closed")),
            Some(_) => {
                let Some(name) = not_a_name(&tag[1..], b" \t\r\n>/") else {
                    return Err(Fault::Short("a tag is never closed"));
                };
                return Err(Fault::Malformed(0, format!("`{name}` is not an element name")));
            }
        }
        let name = &tag[1..name_end];
        self.attributes.clear();
        let (keep, attributes) = (self.keep_attributes, &mut self.attributes);
        let end = name_end
            + attributes_until_end(&tag[name_end..], false, |name, value| {
                if keep {
                    attributes.push(Attribute {
                        name: name.start + name_end..name.end + name_end,
                        value: value.start + name_end..value.end + name_end,
                    });
                }
            })
            .map_err(|fault| match fault {
                Fault::Malformed(_, message) => {
                    Fault::Malformed(0, format!("<{}>: {message}", String::from_utf8_lossy(name)))
                }
                short => short,
            })?;
        match tag.get(end) {
            Some(b'>') => {
                self.names.extend_from_slice(name);
                self.name_ends.push(self.names.len());
                Ok((Token::Start { name_end, empty: false }, end + 1))
            }
            // `attributes_until_end` stops at a `/` only before `>`.
            Some(_) => Ok((Token::Start { name_end, empty: true }, end + 2)),
            None => Err(Fault::Short("a tag is never closed")),
        }
    }

    /// `</name>`, which must close the element open.
    fn end_tag(&mut self, tag: &[u8]) -> Result<(Token, usize), Fault> {
        let Some(end) = memchr::memchr(b'>', tag) else { return Err(Fault::Short("an end tag is never closed")) };
        let name = tag[2..end].trim_ascii_end();
        if self.open() != Some(name) {
            let name = String::from_utf8_lossy(name);
            let message = match self.open() {
                Some(open) => format!("</{name}> closes <{}>", String::from_utf8_lossy(open)),
                None => format!("</{name}> closes no element"),
            };
            return Err(Fault::Malformed(0, message));
        }
        self.name_ends.pop();
        self.names.truncate(self.name_ends.last().copied().unwrap_or(0));
        Ok((Token::End { name_end: 2 + name.len() }, end + 1))
    }

    /// A comment, a CDATA section, a processing instruction, or (before the root element) the
    /// XML declaration, first of all, or the document type declaration.
    fn declaration(&mut self, tag: &[u8], first: bool) -> Result<(Token, usize), Fault> {
        // Where the declaration ends, after `marker`; `what` it is, and how a short one is named.
        let closed = |marker: &[u8], from: usize, what: &str, short: &'static str| match tag
            .get(from..)
            .and_then(|rest| memchr::memmem::find(rest, marker))
        {
            Some(end) => Ok(from + end + marker.len()),
            None if tag.len() > MAX_TEXT => {
                Err(Fault::Malformed(0, format!("{what} is over 1 MiB long (nmap writes none that long)")))
            }
            None => Err(Fault::Short(short)),
        };
        let starts = |prefix: &[u8]| {
            let common = tag.len().min(prefix.len());
            (tag[..common] == prefix[..common]).then_some(common == prefix.len())
        };
        if tag[1] == b'?' {
            let length = closed(b"?>", 2, "a processing instruction", "a processing instruction is never closed")?;
            let target = &tag[2..];
            if target.get(..3).is_some_and(|t| t.eq_ignore_ascii_case(b"xml")) && !is_name_byte(target.get(3)) {
                if !first {
                    return Err(Fault::Malformed(0, "an XML declaration inside the document".into()));
                }
                check_xml_declaration(&tag[5..length - 2])
                    .map_err(|message| Fault::Malformed(0, format!("the XML declaration: {message}")))?;
                return Ok((Token::Prolog, length));
            }
            return Ok((Token::Declaration, length));
        }
        match (starts(b"<!--"), starts(b"<![CDATA["), starts(b"<!DOCTYPE")) {
            (Some(true), _, _) => {
                let length = closed(b"-->", 4, "a comment", "a comment is never closed")?;
                if memchr::memmem::find(&tag[4..length - 3], b"--").is_some() {
                    return Err(Fault::Malformed(0, "a comment holds `--`".into()));
                }
                Ok((Token::Declaration, length))
            }
            (_, Some(true), _) => {
                Ok((Token::Declaration, closed(b"]]>", 9, "a CDATA section", "a CDATA section is never closed")?))
            }
            (_, _, Some(true)) if self.place == Place::Prolog => Ok((Token::Prolog, document_type(tag)?)),
            (_, _, Some(true)) => Err(Fault::Malformed(0, "a document type declaration after the root element".into())),
            (Some(false), _, _) | (_, Some(false), _) | (_, _, Some(false)) => {
                Err(Fault::Short("a declaration is never closed"))
            }
            _ => Err(Fault::Malformed(0, "`<!` starts no comment, CDATA section or document type".into())),
        }
    }
}

/// The length of `<!DOCTYPE ...>`, its internal subset (`[...]`) and quoted strings included.
fn document_type(tag: &[u8]) -> Result<usize, Fault> {
    let (mut quote, mut subset) = (None, false);
    for (at, &byte) in tag.iter().enumerate() {
        match (quote, byte) {
            (Some(open), _) if byte == open => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(byte),
            (None, b'[') => subset = true,
            (None, b']') => subset = false,
            (None, b'>') if !subset => return Ok(at + 1),
            _ => {}
        }
        if at > MAX_TEXT {
            return Err(Fault::Malformed(0, "the document type declaration is over 1 MiB long".into()));
        }
    }
    Err(Fault::Short("the document type declaration is never closed"))
}

/// The XML declaration's pseudo-attributes (after `<?xml`, before `?>`): a 1.x version, an
/// encoding name and a standalone `yes` or `no`, nothing else.
fn check_xml_declaration(raw: &[u8]) -> Result<(), String> {
    let mut version = None;
    let mut problem = None;
    attributes(raw, |name, value| {
        let (name, value) = (&raw[name], &raw[value]);
        let fine = match name {
            b"version" => {
                version = Some(value);
                value.strip_prefix(b"1.").is_some_and(|v| !v.is_empty() && v.iter().all(u8::is_ascii_digit))
            }
            b"encoding" => {
                value.first().is_some_and(u8::is_ascii_alphabetic)
                    && value.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            }
            b"standalone" => matches!(value, b"yes" | b"no"),
            _ => false,
        };
        if !fine && problem.is_none() {
            problem = Some(String::from_utf8_lossy(name).into_owned());
        }
    })?;
    match (problem, version) {
        (Some(name), _) => Err(format!("its `{name}` is not one XML allows")),
        (None, None) => Err("it has no version".into()),
        (None, Some(_)) => Ok(()),
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

/// Checks one tag on its own, `<name attributes>` or `<name attributes/>`, as the reader
/// checks an element's start, and calls `each` with where the value of each attribute named
/// in `names` lies in the tag (without its quotes), each value checked before. `false` when
/// the tag is not well-formed: then values `each` was given before the fault do not count.
pub fn values_of(tag: &[u8], names: &[&str], mut each: impl FnMut(Range<usize>)) -> bool {
    if std::str::from_utf8(tag).is_err() {
        return false;
    }
    let Some(inner) = tag.strip_prefix(b"<").and_then(|t| t.strip_suffix(b">")) else { return false };
    let inner = inner.strip_suffix(b"/").unwrap_or(inner);
    let name_end = inner.iter().position(u8::is_ascii_whitespace).unwrap_or(inner.len());
    let raw = &inner[name_end..];
    is_name(&inner[..name_end])
        && attributes(raw, |key, value| {
            if names.iter().any(|name| name.as_bytes() == &raw[key.clone()]) {
                let start = 1 + name_end;
                each(start + value.start..start + value.end);
            }
        })
        .is_ok()
}

/// [`attributes_until_end`] of bytes that hold attributes and nothing else.
fn attributes(raw: &[u8], each: impl FnMut(Range<usize>, Range<usize>)) -> Result<(), String> {
    match attributes_until_end(raw, true, each) {
        Ok(end) if end == raw.len() => Ok(()),
        Ok(_) => Err("`>` outside the attribute values".into()),
        Err(Fault::Malformed(_, message)) => Err(message),
        Err(Fault::Short(message)) => Err(message.into()),
    }
}

/// One pass over a tag's attributes (`name="value"` pairs, as XML writes them) from just
/// after its element name: checks them and hands where each name and raw value lie to
/// `each`; returns where the tag ends (its `>` or `/>`, outside quoted values), or where
/// `raw` does if it is `whole` (the attributes and nothing more). [`Fault::Short`] when `raw`
/// ends first.
fn attributes_until_end(
    raw: &[u8],
    whole: bool,
    mut each: impl FnMut(Range<usize>, Range<usize>),
) -> Result<usize, Fault> {
    let bad = |message: String| Err(Fault::Malformed(0, message));
    let short = Err(Fault::Short("a tag is never closed"));
    // The names so far, for duplicates: on the stack (nmap writes at most a dozen), else on
    // the heap.
    let (mut few, mut count, mut more): ([&[u8]; 16], usize, Vec<&[u8]>) = ([&[]; 16], 0, Vec::new());
    let mut seen = 0u64;
    let mut at = 0;
    loop {
        let spaced = at;
        while raw.get(at).is_some_and(u8::is_ascii_whitespace) {
            at += 1;
        }
        match raw.get(at) {
            None if whole => return Ok(at),
            None => return short,
            Some(b'>') => return Ok(at),
            Some(b'/') => match raw.get(at + 1) {
                Some(b'>') => return Ok(at),
                None => return short,
                Some(_) => {}
            },
            _ => {}
        }
        if at == spaced && count > 0 {
            return bad("attributes must be separated by a space".into());
        }
        let start = at;
        at += name_length(&raw[at..]);
        let name = &raw[start..at];
        let shown = || String::from_utf8_lossy(name);
        match raw.get(at) {
            None => return short,
            Some(b'=' | b' ' | b'\t' | b'\r' | b'\n' | b'>' | b'/') if at > start => {}
            Some(_) => {
                let Some(name) = not_a_name(&raw[start..], b"= \t\r\n>/") else { return short };
                return bad(format!("`{name}` is not an attribute name"));
            }
        }
        while raw.get(at).is_some_and(u8::is_ascii_whitespace) {
            at += 1;
        }
        match raw.get(at) {
            None => return short,
            Some(b'=') => at += 1,
            Some(_) => return bad(format!("attribute `{}` has no value", shown())),
        }
        while raw.get(at).is_some_and(u8::is_ascii_whitespace) {
            at += 1;
        }
        let quote = match raw.get(at) {
            None => return short,
            Some(quote @ (b'"' | b'\'')) => *quote,
            Some(_) => return bad(format!("the value of attribute `{}` is not in quotes", shown())),
        };
        // Where the value ends: most are short, so its first bytes are looked at one by one
        // before a search for the closing quote, a `<` (never allowed) or a `&` (checked
        // after).
        let (value_start, mut end, mut entity) = (at + 1, at + 1, false);
        loop {
            let found = match raw.get(end..end + SHORT_VALUE) {
                Some(near) if end - value_start < SHORT_VALUE => {
                    near.iter().position(|&b| b == quote || b == b'<' || b == b'&').map_or(SHORT_VALUE, |f| f)
                }
                _ => match memchr::memchr3(quote, b'<', b'&', &raw[end..]) {
                    Some(found) => found,
                    None if raw.len() - value_start > MAX_TEXT => {
                        end = raw.len();
                        break;
                    }
                    None => return short,
                },
            };
            end += found;
            match raw.get(end) {
                Some(b'<') => return bad(format!("`<` in the value of attribute `{}`", shown())),
                Some(b'&') => {
                    entity = true;
                    end += 1;
                }
                Some(&b) if b == quote => break,
                _ => {}
            }
        }
        if end - value_start > MAX_TEXT {
            return bad(format!(
                "the value of attribute `{}` is over 1 MiB long (nmap writes none that long)",
                shown()
            ));
        }
        if entity {
            check_references(&raw[value_start..end])
                .map_err(|e| Fault::Malformed(0, format!("attribute `{}`: {e}", shown())))?;
        }
        // A name is compared with those before only where its length and ends match one's.
        let signature = 1u64 << ((name.len() * 7 + usize::from(name[0]) * 3 + usize::from(name[name.len() - 1])) & 63);
        if seen & signature != 0 && (few[..count.min(16)].contains(&name) || more.contains(&name)) {
            return bad(format!("attribute `{}` is given twice", shown()));
        }
        seen |= signature;
        match few.get_mut(count) {
            Some(slot) => *slot = name,
            None => more.push(name),
        }
        count += 1;
        each(start..start + name.len(), value_start..end);
        at = end + 1;
    }
}

/// How many bytes of a value are looked at one by one before a search.
const SHORT_VALUE: usize = 16;

/// An XML name: a letter, `_` or `:`, then letters, digits, `-`, `.`, `_` or `:` (any
/// character above ASCII counts as a letter, as XML's name ranges nearly all do).
fn is_name(name: &[u8]) -> bool {
    !name.is_empty() && name_length(name) == name.len()
}

/// For a message: what stands where a name should, up to the first of `ends`; `None` when
/// the bytes end first.
fn not_a_name<'b>(bytes: &'b [u8], ends: &[u8]) -> Option<std::borrow::Cow<'b, str>> {
    let end = bytes.iter().position(|b| ends.contains(b))?;
    Some(String::from_utf8_lossy(&bytes[..end]))
}

/// How long the XML name `bytes` start with is (0 when they start with none).
#[inline]
fn name_length(bytes: &[u8]) -> usize {
    match bytes.first() {
        Some(&first) if NAME_BYTES[usize::from(first)] == NAME_START => {
            bytes.iter().position(|&b| NAME_BYTES[usize::from(b)] == 0).unwrap_or(bytes.len())
        }
        _ => 0,
    }
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
    byte.is_some_and(|&b| NAME_BYTES[usize::from(b)] != 0)
}

/// Whether XML 1.0 allows `c` in a document (its `Char` production): no control character
/// but tab, line feed and carriage return, no surrogate, no U+FFFE or U+FFFF.
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Every `&...;` in `text` is one of XML's five entities or a character reference to a
/// character XML 1.0 allows.
fn check_references(text: &[u8]) -> Result<(), String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every token of `bytes`, fed one byte more at a time as a stream would.
    fn tokens(bytes: &[u8]) -> Result<Vec<(Token, usize, usize)>, Fault> {
        let (mut scanner, mut at, mut found) = (Scanner::document(), 0, Vec::new());
        while at < bytes.len() {
            let mut available = at + 1;
            let token = loop {
                match scanner.next(&bytes[at..available]) {
                    Ok(token) => break token,
                    Err(Fault::Short(_)) if available < bytes.len() => available += 1,
                    Err(fault) => return Err(fault),
                }
            };
            found.push((token.token, at + token.start, at + token.end));
            at += token.end;
        }
        Ok(found)
    }

    #[test]
    fn a_token_cut_anywhere_is_short_and_read_whole_with_more() {
        let document = br#"<?xml version="1.0"?>
<!DOCTYPE nmaprun [<!ENTITY x "y>z">]>
<nmaprun a="1" b='2'><!-- c --><x>t &amp; &#65;</x><e/>
<![CDATA[<not a tag>]]><?p i?></nmaprun>"#;
        let (mut whole, mut at) = (Scanner::document(), 0);
        let mut read_whole = Vec::new();
        while at < document.len() {
            let found = whole.next(&document[at..]).unwrap();
            read_whole.push((found.token, at + found.start, at + found.end));
            at += found.end;
        }
        use Token::*;
        let kinds: Vec<Token> = read_whole.iter().map(|f| f.0).collect();
        assert_eq!(
            kinds,
            [
                Prolog,
                Prolog,
                Start { name_end: 8, empty: false },
                Declaration,
                Start { name_end: 2, empty: false },
                Text,
                End { name_end: 3 },
                Start { name_end: 2, empty: true },
                Declaration,
                Declaration,
                End { name_end: 9 },
            ],
        );
        assert_eq!(&document[read_whole[2].1..read_whole[2].2], br#"<nmaprun a="1" b='2'>"#);
        // Fed a byte at a time, text comes in pieces; every tag is the same.
        let tags = |tokens: Vec<(Token, usize, usize)>| tokens.into_iter().filter(|t| t.0 != Text).collect::<Vec<_>>();
        assert_eq!(tags(tokens(document).unwrap()), tags(read_whole));
        // Values of every length around the bytes looked at one by one.
        for length in 0..40 {
            let value = "v".repeat(length);
            let tag = format!("<a b=\"{value}\" c='{value}&amp;'/>");
            let found = Scanner::document().next(tag.as_bytes()).unwrap();
            assert_eq!((found.token, found.end), (Start { name_end: 2, empty: true }, tag.len()), "{tag}");
        }
    }

    #[test]
    fn what_xml_forbids_is_malformed_not_short() {
        for (bytes, message) in [
            (&br#"<a b="1" b="2">"#[..], "given twice"),
            (b"<a b=1>", "not in quotes"),
            (b"<a b>", "has no value"),
            (br#"<a b="<">"#, "`<` in the value"),
            // Past the bytes of a value looked at one by one.
            (br#"<a b="0123456789abcdefghij<">"#, "`<` in the value"),
            (br#"<a b="0123456789abcdefghij&bogus;">"#, "not an entity XML defines"),
            (br#"<a b="0123456789abcdef" b="0123456789abcdef">"#, "given twice"),
            (br#"<a b="&bogus;">"#, "not an entity XML defines"),
            (b"<a></b>", "</b> closes <a>"),
            (b"<a>&#1;</a>", "forbids"),
            (b"<a><?xml version=\"1.0\"?></a>", "an XML declaration inside the document"),
            (b"<a><!-- a -- b --></a>", "holds `--`"),
            (b"<!BOGUS>", "starts no comment"),
        ] {
            match tokens(bytes) {
                Err(Fault::Malformed(_, found)) => assert!(found.contains(message), "{found}"),
                other => panic!("{}: {other:?}", String::from_utf8_lossy(bytes)),
            }
        }
    }

    #[test]
    fn what_nmap_never_writes_is_refused_before_it_is_held_whole() {
        let long = "a".repeat(MAX_TEXT + 1);
        for (bytes, message) in [
            (format!("<!--{long}"), "a comment is over 1 MiB long"),
            (format!("<a b=\"{long}"), "the value of attribute `b` is over 1 MiB long"),
            (format!("&{long}"), "`&` starts no entity"),
        ] {
            match Scanner::document().next(bytes.as_bytes()) {
                Err(Fault::Malformed(_, found)) => assert!(found.contains(message), "{found}"),
                other => panic!("{message}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_xml_declaration_comes_first_and_says_what_xml_allows() {
        let mut first = Scanner::document();
        assert_eq!(first.next(br#"<?xml version="1.0" encoding="UTF-8"?>"#).unwrap().token, Token::Prolog);
        for bad in [r#"<?xml version="2.0"?>"#, r#"<?xml version="1.0&amp;"?>"#, r#"<?xml encoding="UTF-8"?>"#] {
            assert!(matches!(Scanner::document().next(bad.as_bytes()), Err(Fault::Malformed(..))), "{bad}");
        }
    }
}
