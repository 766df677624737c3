//! Hardened streaming XML reading for scanner reports (Greenbone, Qualys, Nessus).
//!
//! Scanner files and API answers are large and, as far as vowguard is concerned, hostile.
//! [`XmlReader`] is a pull reader over any [`BufRead`] (built on quick-xml) that:
//!
//! * reads **UTF-8 only**: a UTF-16 byte order mark, an XML declaration naming another
//!   encoding, or bytes that are not UTF-8 are refused;
//! * **never expands** a DTD or a custom entity: a `<!DOCTYPE` is refused outright (no
//!   billion laughs, no external entities), and only the five predefined entities and
//!   character references are resolved; any other `&name;` is refused;
//! * keeps **memory bounded**: the whole input ([`Limits::max_bytes`]), any single tag,
//!   text run or comment ([`Limits::max_token_bytes`]) and the nesting depth
//!   ([`Limits::max_depth`]) are capped, and [`XmlReader::read_text`] keeps at most
//!   [`Limits::max_text_chars`] of an element's text;
//! * names the **source and byte position** in every refusal, e.g.
//!   `report.xml: byte 10: a DOCTYPE is not accepted (no DTD or entity expansion)`,
//!   as an [`ErrorKind::InvalidInput`](vowguard_core::ErrorKind::InvalidInput) error.
//!
//! Element and attribute names are reported without their namespace prefix. Empty elements
//! (`<a/>`) come as a start and an end, so callers handle one shape.

use std::io::{self, BufRead};

use quick_xml::XmlVersion;
use quick_xml::events::Event as QxEvent;
use vowguard_core::Error;

/// Size limits of one [`XmlReader`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Most bytes read from the input in all.
    pub max_bytes: u64,
    /// Most bytes of one token: a tag with its attributes, one run of text, a comment.
    pub max_token_bytes: u64,
    /// Deepest element nesting.
    pub max_depth: usize,
    /// Most characters [`XmlReader::read_text`] keeps of one element's text (the rest is
    /// read and dropped).
    pub max_text_chars: usize,
}

impl Limits {
    /// These settings with [`max_bytes`](Self::max_bytes) set to `max_bytes`.
    #[must_use]
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// These settings with [`max_token_bytes`](Self::max_token_bytes) set to `max_token_bytes`.
    #[must_use]
    pub fn with_max_token_bytes(mut self, max_token_bytes: u64) -> Self {
        self.max_token_bytes = max_token_bytes;
        self
    }

    /// These settings with [`max_depth`](Self::max_depth) set to `max_depth`.
    #[must_use]
    pub fn with_max_depth(mut self, max_depth: usize) -> Self {
        self.max_depth = max_depth;
        self
    }

    /// These settings with [`max_text_chars`](Self::max_text_chars) set to `max_text_chars`.
    #[must_use]
    pub fn with_max_text_chars(mut self, max_text_chars: usize) -> Self {
        self.max_text_chars = max_text_chars;
        self
    }
}

impl Default for Limits {
    /// 4 GiB in all, 16 MiB per token, 64 levels, 64 Ki characters of kept text.
    fn default() -> Self {
        Self {
            max_bytes: 4 * 1024 * 1024 * 1024,
            max_token_bytes: 16 * 1024 * 1024,
            max_depth: 64,
            max_text_chars: 64 * 1024,
        }
    }
}

/// A start tag: its local name and attributes (values unescaped).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    /// The local name (namespace prefix dropped).
    pub name: String,
    /// Attributes in document order, local names, values unescaped.
    pub attrs: Vec<(String, String)>,
}

impl Element {
    /// The value of attribute `name`, if present.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// What [`XmlReader::next_event`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XmlEvent {
    /// A start tag (also the first half of an empty element).
    Start(Element),
    /// An end tag, with the element's local name.
    End(String),
    /// A piece of character data (text, CDATA, or a resolved reference). One text run may
    /// come as several pieces.
    Text(String),
    /// The end of the document.
    Eof,
}

/// Which limit the input ran into (kept by the capped input so the error can say so).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LimitHit {
    Bytes,
    Token,
}

/// The input, counting what the parser consumes and refusing to hand it more than the
/// limits allow.
struct Capped<R> {
    inner: R,
    consumed: u64,
    token_start: u64,
    max_bytes: u64,
    max_token: u64,
    hit: Option<LimitHit>,
}

impl<R: io::Read> io::Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // quick-xml only uses the BufRead side; keep the counts right all the same.
        let n = self.inner.read(buf)?;
        self.consumed += n as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Capped<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        // Never hand out more than the limits leave, so crossing one always comes back here.
        let room = self.max_bytes.saturating_sub(self.consumed);
        let token_room =
            (self.max_token + 1).saturating_sub(self.consumed.saturating_sub(self.token_start));
        let buf = self.inner.fill_buf()?;
        if buf.is_empty() {
            return Ok(buf);
        }
        let hit = if room == 0 {
            Some(LimitHit::Bytes)
        } else if token_room == 0 {
            Some(LimitHit::Token)
        } else {
            None
        };
        if let Some(hit) = hit {
            self.hit = Some(hit);
            return Err(io::Error::other("input limit reached"));
        }
        let allowed = usize::try_from(room.min(token_room)).unwrap_or(usize::MAX);
        Ok(&buf[..buf.len().min(allowed)])
    }

    fn consume(&mut self, amt: usize) {
        self.inner.consume(amt);
        self.consumed += amt as u64;
    }
}

/// A hardened pull reader; see the [crate docs](crate).
pub struct XmlReader<R: BufRead> {
    reader: quick_xml::Reader<Capped<R>>,
    buf: Vec<u8>,
    source: String,
    limits: Limits,
    depth: usize,
    /// An empty element's end, returned by the next call.
    pending_end: Option<String>,
    started: bool,
    done: bool,
}

impl<R: BufRead> std::fmt::Debug for XmlReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XmlReader")
            .field("source", &self.source)
            .field("position", &self.position())
            .field("depth", &self.depth)
            .finish_non_exhaustive()
    }
}

/// Buffers above this size are released after the token that needed them.
const KEEP_BUFFER: usize = 64 * 1024;

impl<R: BufRead> XmlReader<R> {
    /// Reads `input`; `source` names it in errors (a file path, "Qualys page 3").
    pub fn new(input: R, source: impl Into<String>, limits: Limits) -> Self {
        let capped = Capped {
            inner: input,
            consumed: 0,
            token_start: 0,
            max_bytes: limits.max_bytes,
            max_token: limits.max_token_bytes,
            hit: None,
        };
        let mut reader = quick_xml::Reader::from_reader(capped);
        let config = reader.config_mut();
        config.expand_empty_elements = false;
        config.check_end_names = true;
        config.check_comments = false;
        config.trim_text(false);
        Self {
            reader,
            buf: Vec::new(),
            source: source.into(),
            limits,
            depth: 0,
            pending_end: None,
            started: false,
            done: false,
        }
    }

    /// The name of the input, as errors give it.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> u64 {
        self.reader.buffer_position()
    }

    /// Current element depth (0 outside the root element).
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// An [`ErrorKind::InvalidInput`](vowguard_core::ErrorKind::InvalidInput) error naming
    /// the source and `position`.
    pub fn error_at(&self, position: u64, reason: impl std::fmt::Display) -> Error {
        Error::invalid_input(format!("{}: byte {position}: {reason}", self.source))
    }

    fn check_start(&mut self) -> Result<(), Error> {
        if self.started {
            return Ok(());
        }
        self.started = true;
        let head = self
            .reader
            .get_mut()
            .inner
            .fill_buf()
            .map_err(|e| Error::io(format!("{}: cannot read", self.source), e))?;
        if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
            return Err(self.error_at(
                0,
                "the input is UTF-16 (byte order mark); only UTF-8 is read",
            ));
        }
        if head.starts_with(&[0x00, 0x00, 0xFE, 0xFF]) || head.starts_with(&[0x00, 0x3C, 0x00]) {
            return Err(self.error_at(0, "the input is UTF-16 or UTF-32; only UTF-8 is read"));
        }
        if head.starts_with(&[0x3C, 0x00]) {
            return Err(self.error_at(0, "the input is UTF-16 or UTF-32; only UTF-8 is read"));
        }
        Ok(())
    }

    /// The next event. After [`XmlEvent::Eof`] every call returns `Eof` again.
    pub fn next_event(&mut self) -> Result<XmlEvent, Error> {
        if let Some(name) = self.pending_end.take() {
            self.depth -= 1;
            return Ok(XmlEvent::End(name));
        }
        if self.done {
            return Ok(XmlEvent::Eof);
        }
        self.check_start()?;
        loop {
            if self.buf.capacity() > KEEP_BUFFER {
                self.buf = Vec::new();
            }
            self.buf.clear();
            let start = self.reader.buffer_position();
            self.reader.get_mut().token_start = start;
            let event = match self.reader.read_event_into(&mut self.buf) {
                Ok(event) => event,
                Err(e) => {
                    let hit = self.reader.get_ref().hit;
                    let reason = match hit {
                        Some(LimitHit::Bytes) => {
                            format!("the input is larger than {} bytes", self.limits.max_bytes)
                        }
                        Some(LimitHit::Token) => format!(
                            "a single tag or text run is larger than {} bytes",
                            self.limits.max_token_bytes
                        ),
                        None => format!("not well-formed XML: {}", describe(&e)),
                    };
                    let at = if hit.is_some() {
                        self.reader.buffer_position()
                    } else {
                        self.reader.error_position().max(start)
                    };
                    return Err(self.error_at(at, reason));
                }
            };
            match event {
                QxEvent::Start(tag) | QxEvent::Empty(tag)
                    if self.depth >= self.limits.max_depth =>
                {
                    let _ = tag;
                    return Err(self.error_at(
                        start,
                        format!("elements nested deeper than {}", self.limits.max_depth),
                    ));
                }
                QxEvent::Start(tag) => {
                    let element = element(&tag).map_err(|r| self.error_at(start, r))?;
                    self.depth += 1;
                    return Ok(XmlEvent::Start(element));
                }
                QxEvent::Empty(tag) => {
                    let element = element(&tag).map_err(|r| self.error_at(start, r))?;
                    self.depth += 1;
                    self.pending_end = Some(element.name.clone());
                    return Ok(XmlEvent::Start(element));
                }
                QxEvent::End(tag) => {
                    let name = tag.local_name().as_ref().to_owned();
                    self.depth = self.depth.saturating_sub(1);
                    return Ok(XmlEvent::End(name));
                }
                QxEvent::Text(text) => {
                    let text = text.xml10_content().into_owned();
                    if self.depth == 0 {
                        if text.trim().is_empty() {
                            continue;
                        }
                        return Err(self.error_at(start, "text outside the root element"));
                    }
                    return Ok(XmlEvent::Text(text));
                }
                QxEvent::CData(data) => {
                    return Ok(XmlEvent::Text(data.xml10_content().into_owned()));
                }
                QxEvent::GeneralRef(reference) => {
                    if reference.is_char_ref() {
                        match reference.resolve_char_ref() {
                            Ok(Some(c)) => return Ok(XmlEvent::Text(c.to_string())),
                            _ => {
                                return Err(self.error_at(start, "an invalid character reference"));
                            }
                        }
                    }
                    match quick_xml::escape::resolve_predefined_entity(&reference) {
                        Some(text) => return Ok(XmlEvent::Text(text.to_owned())),
                        None => {
                            let name: String = reference.chars().take(40).collect();
                            return Err(self.error_at(
                                start,
                                format!(
                                    "entity `&{}` is not one of the five predefined entities \
                                     (no entity expansion)",
                                    printable(&name)
                                ),
                            ));
                        }
                    }
                }
                QxEvent::DocType(_) => {
                    return Err(self.error_at(
                        start,
                        "a DOCTYPE is not accepted (no DTD or entity expansion)",
                    ));
                }
                QxEvent::Decl(decl) => {
                    if let Some(encoding) = decl.encoding() {
                        let encoding = encoding.map(|e| e.into_owned()).unwrap_or_default();
                        let normalised = encoding.trim().to_ascii_lowercase();
                        if normalised != "utf-8" && normalised != "utf8" {
                            let shown: String = encoding.chars().take(40).collect();
                            return Err(self.error_at(
                                start,
                                format!(
                                    "the XML declaration names encoding `{}`; only UTF-8 is read",
                                    printable(&shown)
                                ),
                            ));
                        }
                    }
                }
                QxEvent::Comment(_) | QxEvent::PI(_) => {}
                QxEvent::Eof => {
                    if self.depth != 0 {
                        return Err(self.error_at(
                            self.reader.buffer_position(),
                            "the input ends inside an element",
                        ));
                    }
                    self.done = true;
                    return Ok(XmlEvent::Eof);
                }
            }
        }
    }

    /// After a [`XmlEvent::Start`]: reads up to the element's end and returns its own text
    /// (child elements and their text are skipped), trimmed, at most
    /// [`Limits::max_text_chars`] characters.
    pub fn read_text(&mut self) -> Result<String, Error> {
        let target = self.depth;
        let mut out = String::new();
        let mut kept = 0usize;
        loop {
            match self.next_event()? {
                XmlEvent::Text(text) if self.depth == target => {
                    for c in text.chars() {
                        if kept == 0 && c.is_whitespace() {
                            continue;
                        }
                        if kept >= self.limits.max_text_chars {
                            break;
                        }
                        out.push(c);
                        kept += 1;
                    }
                }
                XmlEvent::End(_) if self.depth < target => break,
                XmlEvent::Eof => {
                    return Err(self.error_at(self.position(), "the input ends inside an element"));
                }
                _ => {}
            }
        }
        let trimmed = out.trim();
        if trimmed.len() == out.len() {
            Ok(out)
        } else {
            Ok(trimmed.to_owned())
        }
    }

    /// After a [`XmlEvent::Start`]: reads and drops everything up to the element's end.
    pub fn skip(&mut self) -> Result<(), Error> {
        let target = self.depth;
        loop {
            match self.next_event()? {
                XmlEvent::End(_) if self.depth < target => return Ok(()),
                XmlEvent::Eof => {
                    return Err(self.error_at(self.position(), "the input ends inside an element"));
                }
                _ => {}
            }
        }
    }
}

fn element(tag: &quick_xml::events::BytesStart<'_>) -> Result<Element, String> {
    let name = tag.local_name().as_ref().to_owned();
    let mut attrs = Vec::new();
    for attr in tag.attributes() {
        let attr = attr.map_err(|e| {
            format!(
                "a bad attribute in <{}>: {}",
                printable(&name),
                printable(&e.to_string().chars().take(200).collect::<String>())
            )
        })?;
        let key = attr.key.local_name().as_ref().to_owned();
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| {
                format!(
                    "attribute `{}` of <{}>: {}",
                    printable(&key),
                    printable(&name),
                    describe(&e)
                )
            })?;
        attrs.push((key, value.into_owned()));
    }
    Ok(Element { name, attrs })
}

/// The parser's reason, cut to 200 characters with control characters replaced, so an
/// error message cannot be used to forge log lines.
fn describe(error: &quick_xml::Error) -> String {
    printable(&error.to_string().chars().take(200).collect::<String>())
}

fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(xml: &[u8]) -> Result<Vec<XmlEvent>, Error> {
        events_with(xml, Limits::default())
    }

    fn events_with(xml: &[u8], limits: Limits) -> Result<Vec<XmlEvent>, Error> {
        let mut reader = XmlReader::new(xml, "t.xml", limits);
        let mut out = Vec::new();
        loop {
            let event = reader.next_event()?;
            if event == XmlEvent::Eof {
                return Ok(out);
            }
            out.push(event);
        }
    }

    fn text(xml: &[u8]) -> String {
        events(xml)
            .unwrap()
            .into_iter()
            .filter_map(|e| match e {
                XmlEvent::Text(t) => Some(t),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn elements_attributes_and_text() {
        let got = events(br#"<?xml version="1.0" encoding="UTF-8"?><a x:k="1 &amp; 2"><b/>t</a>"#)
            .unwrap();
        assert_eq!(
            got,
            vec![
                XmlEvent::Start(Element {
                    name: "a".into(),
                    attrs: vec![("k".into(), "1 & 2".into())]
                }),
                XmlEvent::Start(Element {
                    name: "b".into(),
                    attrs: vec![]
                }),
                XmlEvent::End("b".into()),
                XmlEvent::Text("t".into()),
                XmlEvent::End("a".into()),
            ]
        );
    }

    #[test]
    fn predefined_and_character_references_and_cdata() {
        assert_eq!(
            text(b"<a>&lt;x&gt; &quot;&apos;&amp; &#65;&#x42; <![CDATA[<c>&amp;]]></a>"),
            "<x> \"'& AB <c>&amp;"
        );
    }

    #[test]
    fn utf8_bom_is_skipped() {
        assert_eq!(text("\u{FEFF}<a>é</a>".as_bytes()), "é");
    }

    fn refusal(xml: &[u8]) -> String {
        let e = events(xml).unwrap_err();
        assert_eq!(e.kind(), vowguard_core::ErrorKind::InvalidInput, "{e}");
        e.to_string()
    }

    #[test]
    fn billion_laughs_is_refused_at_the_doctype() {
        let bomb = br#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<lolz>&lol2;</lolz>"#;
        let e = refusal(bomb);
        assert_eq!(
            e,
            "t.xml: byte 22: a DOCTYPE is not accepted (no DTD or entity expansion)"
        );
    }

    #[test]
    fn external_and_custom_entities_are_refused() {
        let e = refusal(b"<a>x &xxe; y</a>");
        assert!(e.starts_with("t.xml: byte 5: entity `&xxe`"), "{e}");
        let e = refusal(b"<a k='&xxe;'/>");
        assert!(e.starts_with("t.xml: byte 0: attribute `k` of <a>"), "{e}");
    }

    #[test]
    fn wrong_encodings_are_refused() {
        let e = refusal(b"<?xml version='1.0' encoding='ISO-8859-1'?><a>\xE9</a>");
        assert_eq!(
            e,
            "t.xml: byte 0: the XML declaration names encoding `ISO-8859-1`; only UTF-8 is read"
        );
        let e = refusal(b"\xFF\xFE<\0a\0>\0");
        assert!(e.contains("byte 0: the input is UTF-16"), "{e}");
        let e = refusal(b"<a>caf\xE9</a>");
        assert!(e.starts_with("t.xml: byte 3: not well-formed XML"), "{e}");
        assert!(e.to_lowercase().contains("utf"), "{e}");
    }

    #[test]
    fn limits_are_enforced_with_positions() {
        let limits = Limits::default().with_max_bytes(100);
        let big = format!("<a>{}</a>", "x".repeat(200));
        let e = events_with(big.as_bytes(), limits).unwrap_err().to_string();
        assert!(e.contains("larger than 100 bytes"), "{e}");
        assert!(e.starts_with("t.xml: byte 100:"), "{e}");

        let limits = Limits::default().with_max_token_bytes(50);
        let many_small = format!("<a>{}</a>", "<b>xx</b>".repeat(100));
        assert!(events_with(many_small.as_bytes(), limits).is_ok());
        let big_text = format!("<a><b>{}</b></a>", "x".repeat(500));
        let e = events_with(big_text.as_bytes(), limits)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("single tag or text run is larger than 50 bytes"),
            "{e}"
        );
        let big_tag = format!("<a><b k='{}'/></a>", "x".repeat(500));
        assert!(events_with(big_tag.as_bytes(), limits).is_err());

        let limits = Limits::default().with_max_depth(3);
        assert!(events_with(b"<a><b><c/></b></a>", limits).is_ok());
        let e = events_with(b"<a><b><c><d/></c></b></a>", limits)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "t.xml: byte 9: elements nested deeper than 3");
    }

    #[test]
    fn malformed_documents_are_refused() {
        assert!(refusal(b"<a><b></a>").contains("not well-formed"));
        assert!(refusal(b"<a><b>").contains("ends inside an element"));
        assert!(refusal(b"junk<a/>").contains("text outside the root element"));
    }

    #[test]
    fn read_text_skips_children_and_caps() {
        let limits = Limits::default().with_max_text_chars(5);
        let mut r = XmlReader::new(
            &b"<r><a> 12<i>no</i>345678 </a><z>q</z></r>"[..],
            "t",
            limits,
        );
        assert!(matches!(r.next_event().unwrap(), XmlEvent::Start(_)));
        assert!(matches!(r.next_event().unwrap(), XmlEvent::Start(e) if e.name == "a"));
        assert_eq!(r.read_text().unwrap(), "12345");
        assert!(matches!(r.next_event().unwrap(), XmlEvent::Start(e) if e.name == "z"));
        r.skip().unwrap();
        assert_eq!(r.next_event().unwrap(), XmlEvent::End("r".into()));
        assert_eq!(r.next_event().unwrap(), XmlEvent::Eof);
        assert_eq!(r.next_event().unwrap(), XmlEvent::Eof);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = events_with(&bytes, Limits { max_bytes: 256, max_token_bytes: 64, max_depth: 8, max_text_chars: 16 });
        }

        #[test]
        fn text_round_trips(s in "\\PC{0,64}") {
            let escaped = quick_xml::escape::escape(s.as_str());
            let xml = format!("<a>{escaped}</a>");
            let got = text(xml.as_bytes());
            // XML 1.0 end-of-line handling turns CR and CRLF into LF.
            proptest::prop_assert_eq!(got, s.replace("\r\n", "\n").replace('\r', "\n"));
        }
    }
}
