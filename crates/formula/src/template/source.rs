//! Positions inside a TOML string value mapped back to byte offsets in the
//! formula file, through its escapes, so that diagnostics point at the
//! formula's own line and column.

use std::ops::Range;

/// Maps positions in a TOML string value back to the formula file.
#[derive(Debug, Clone)]
pub struct StringSource<'a> {
    value: &'a str,
    raw: &'a str,
    raw_start: usize,
    verbatim: bool,
    /// A basic string (`"…"`, `"""…"""`), whose escapes TOML decodes.
    basic: bool,
}

impl<'a> StringSource<'a> {
    /// The string literal at `span` of `source`, whose parsed value is `value`.
    pub fn new(source: &'a str, span: Range<usize>, value: &'a str) -> Self {
        let literal = source.get(span.clone()).unwrap_or("");
        let (open, close) = if literal.starts_with("\"\"\"") || literal.starts_with("'''") {
            (3, 3)
        } else if literal.starts_with('"') || literal.starts_with('\'') {
            (1, 1)
        } else {
            (0, 0)
        };
        let mut start = open.min(literal.len());
        // A newline right after `"""` or `'''` is not part of the value.
        if open == 3 {
            if literal[start..].starts_with("\r\n") {
                start += 2;
            } else if literal[start..].starts_with('\n') {
                start += 1;
            }
        }
        let end = literal.len().saturating_sub(close).max(start);
        let raw = &literal[start..end];
        StringSource {
            value,
            raw,
            raw_start: span.start + start,
            verbatim: raw == value,
            basic: literal.starts_with('"'),
        }
    }

    /// The file offset of byte `offset` of the value: exact when the
    /// literal holds the value verbatim or with TOML's escapes (`\"`,
    /// `\t`, `\u00e9`, a line-ending backslash, …), pointing at an escape
    /// for a byte of what it stands for; else (a literal the value does not
    /// follow, such as one whose line endings the parser changed) the same
    /// line of the literal, at the same column when that line reads the same.
    pub fn offset(&self, offset: usize) -> usize {
        let offset = offset.min(self.value.len());
        if self.verbatim {
            return self.raw_start + offset;
        }
        if let Some(at) = self.unescaped_offset(offset) {
            return self.raw_start + at;
        }
        let line = self.value[..offset].matches('\n').count();
        let column = offset - self.value[..offset].rfind('\n').map_or(0, |at| at + 1);
        let value_line = self.value.split('\n').nth(line).unwrap_or("");
        let mut raw_line_start = 0;
        for _ in 0..line {
            match self.raw[raw_line_start..].find('\n') {
                Some(at) => raw_line_start += at + 1,
                None => break,
            }
        }
        let raw_line = self.raw[raw_line_start..].split('\n').next().unwrap_or("");
        let column = if raw_line == value_line { column } else { 0 };
        self.raw_start + raw_line_start + column.min(raw_line.len())
    }

    /// The file range of a byte range of the value.
    pub fn range(&self, range: Range<usize>) -> Range<usize> {
        let start = self.offset(range.start);
        start..self.offset(range.end).max(start)
    }

    /// The offset in the literal of byte `offset` of the value, read by
    /// decoding the literal's escapes alongside the value; `None` when the
    /// literal does not decode to the value.
    fn unescaped_offset(&self, offset: usize) -> Option<usize> {
        let (mut raw, mut value) = (0, 0);
        while raw < self.raw.len() {
            let (raw_length, value_length) = self.step(raw, value)?;
            // The character at `offset`, or the escape that stands for it;
            // a line-ending backslash before it is passed over.
            if value + value_length > offset || (value == offset && value_length > 0) {
                return Some(raw);
            }
            raw += raw_length;
            value += value_length;
        }
        (value == offset).then_some(raw)
    }

    /// The lengths in the literal and in the value of the character (or
    /// escape) at `raw` of the literal and `value` of the value; `None`
    /// when they differ.
    fn step(&self, raw: usize, value: usize) -> Option<(usize, usize)> {
        let rest = self.value.get(value..)?;
        match self.raw.get(raw..)?.strip_prefix('\\') {
            Some(escape) if self.basic => {
                let (length, decoded) = decode_escape(escape)?;
                if decoded.is_some_and(|c| !rest.starts_with(c)) {
                    return None;
                }
                Some((1 + length, decoded.map_or(0, char::len_utf8)))
            }
            _ => {
                let c = self.raw.get(raw..)?.chars().next()?;
                rest.starts_with(c).then_some((c.len_utf8(), c.len_utf8()))
            }
        }
    }
}

/// The escape of a TOML basic string that starts `escape` (the text after
/// its backslash): its length in bytes after the backslash, and the
/// character it stands for, or `None` for a line-ending backslash, which
/// stands for nothing (it trims the whitespace and newlines after it).
/// `None` when it is not a valid escape.
fn decode_escape(escape: &str) -> Option<(usize, Option<char>)> {
    let hex = |digits: usize| -> Option<(usize, Option<char>)> {
        let code = u32::from_str_radix(escape.get(1..1 + digits)?, 16).ok()?;
        Some((1 + digits, Some(char::from_u32(code)?)))
    };
    let simple = |c: char| Some((1, Some(c)));
    match escape.chars().next()? {
        'b' => simple('\u{8}'),
        't' => simple('\t'),
        'n' => simple('\n'),
        'f' => simple('\u{c}'),
        'r' => simple('\r'),
        'e' => simple('\u{1b}'),
        '"' => simple('"'),
        '\\' => simple('\\'),
        'x' => hex(2),
        'u' => hex(4),
        'U' => hex(8),
        ' ' | '\t' | '\r' | '\n' => {
            let rest = escape.trim_start_matches([' ', '\t', '\r', '\n']);
            let skipped = &escape[..escape.len() - rest.len()];
            // Only whitespace up to a newline ends a line this way.
            skipped.contains('\n').then_some((skipped.len(), None))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_map_back_into_the_toml_literal() {
        let source = "d = \"\"\"\nfirst\nsecond {{ x }}\n\"\"\"\n";
        let span = 4..source.len() - 1;
        let value = "first\nsecond {{ x }}\n";
        let map = StringSource::new(source, span, value);
        let x = value.find('x').unwrap();
        assert_eq!(&source[map.offset(x)..map.offset(x) + 1], "x");

        let escaped = "d = \"a\\tb {{ y }}\"\n";
        let value = "a\tb {{ y }}";
        let map = StringSource::new(escaped, 4..escaped.len() - 1, value);
        let y = value.find('y').unwrap();
        assert_eq!(
            &escaped[map.offset(y)..map.offset(y) + 1],
            "y",
            "past an escape"
        );
        assert_eq!(map.offset(1), 6, "an escaped character is its escape");
    }

    #[test]
    fn positions_map_back_through_every_kind_of_escape() {
        let source = "d = \"\"\"\n\\\"q\\\" \\u00e9\\U0001F600 \\x41 \\e \\\n   {{ here }}\\\\\n  {{ too }}\"\"\"\n";
        let value = "\"q\" é😀 A \u{1b} {{ here }}\\\n  {{ too }}";
        let map = StringSource::new(source, 4..source.len() - 1, value);
        for word in ["here", "too", "q"] {
            let at = value.find(word).unwrap();
            assert_eq!(
                &source[map.offset(at)..map.offset(at) + word.len()],
                word,
                "{word}"
            );
        }
        let brace = map.offset(value.find("{{ here").unwrap());
        assert_eq!(
            &source[brace..brace + 2],
            "{{",
            "past a line-ending backslash"
        );
        let a = map.offset(value.find('A').unwrap());
        assert_eq!(
            &source[a..a + 4],
            "\\x41",
            "an escaped character is its escape"
        );
        // A literal the value does not follow falls back to the line.
        let odd = "d = \"a\\q {{ x }}\"";
        let map = StringSource::new(odd, 4..odd.len(), "a\u{7}q {{ x }}");
        assert_eq!(map.offset(8), 5);
    }

    proptest::proptest! {
        #[test]
        fn positions_map_back_through_escapes_as_toml_reads_them(
            characters in proptest::collection::vec(
                (
                    proptest::sample::select(vec![
                        'a', ' ', '{', '}', 'é', '😀', '"', '\\', '\t', '\n', '\u{1b}', '\u{7f}',
                    ]),
                    0u8..4,
                ),
                0..24,
            ),
            multi_line in proptest::bool::ANY,
        ) {
            // Each character written as itself where TOML allows, or as one
            // of its escapes; in a multi-line string, now and then after a
            // line-ending backslash, which stands for nothing.
            let (mut raw, mut value) = (String::from("a"), String::from("a"));
            for (c, how) in characters {
                // (Whitespace after it would be trimmed with it.)
                if multi_line && how == 3 && !c.is_whitespace() {
                    raw.push_str("\\  \n\t ");
                }
                let short = match c {
                    '"' => Some("\\\""),
                    '\\' => Some("\\\\"),
                    '\t' => Some("\\t"),
                    '\n' => Some("\\n"),
                    '\u{1b}' => Some("\\e"),
                    _ => None,
                };
                let plain = match c {
                    '"' | '\\' | '\u{1b}' | '\u{7f}' => false,
                    '\n' => multi_line,
                    _ => true,
                };
                let written = match (how, short) {
                    (0 | 3, _) if plain => c.to_string(),
                    (1, Some(short)) => short.to_string(),
                    (2, _) if (c as u32) < 0x100 => format!("\\x{:02X}", c as u32),
                    _ if (c as u32) > 0xFFFF => format!("\\U{:08X}", c as u32),
                    _ => format!("\\u{:04x}", c as u32),
                };
                raw.push_str(&written);
                value.push(c);
            }
            raw.push_str("{{ mark }}");
            value.push_str("{{ mark }}");
            let quote = if multi_line { "\"\"\"" } else { "\"" };
            let source = format!("d = {quote}{raw}{quote}\n");
            let parsed: toml::Table = toml::from_str(&source).map_err(|e| {
                proptest::test_runner::TestCaseError::fail(format!("{source:?}: {e}"))
            })?;
            proptest::prop_assert_eq!(parsed["d"].as_str(), Some(value.as_str()), "{:?}", source);
            let map = StringSource::new(&source, 4..source.len() - 1, &value);
            let mark = value.rfind("mark").unwrap_or(0);
            let at = map.offset(mark);
            proptest::prop_assert_eq!(source.get(at..at + 4), Some("mark"), "{:?}", source);
        }
    }
}
