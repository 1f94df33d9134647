//! Locating in an expression's text: a small tokenizer of CEL text (names,
//! dots, everything else, string literals skipped) that finds the byte
//! range of a path the type check names, and the byte range of a parser
//! error's line and column.

use std::ops::Range;

/// A name or a dot in an expression's text, with its byte range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Token {
    Name(String, Range<usize>),
    Dot,
    Other,
}

/// Splits CEL text into names, dots and everything else, skipping string
/// literals (so that a name inside quotes is never blamed).
pub(super) fn tokenize(text: &str) -> Vec<Token> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let raw = (i - start == 1) && matches!(c, b'r' | b'R');
            if i < bytes.len() && matches!(bytes[i], b'\'' | b'"') && i - start <= 2 {
                // A prefixed literal: r'…', b"…", rb'…'.
                i = skip_string(bytes, i, raw || text[start..i].contains(['r', 'R']));
                tokens.push(Token::Other);
                continue;
            }
            tokens.push(Token::Name(text[start..i].to_string(), start..i));
        } else if c == b'\'' || c == b'"' {
            i = skip_string(bytes, i, false);
            tokens.push(Token::Other);
        } else if c == b'.' && !bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
            tokens.push(Token::Dot);
            i += 1;
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || c == b'.' {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.') {
                i += 1;
            }
            tokens.push(Token::Other);
        } else {
            // One character, however many bytes it takes.
            i += text[i..].chars().next().map_or(1, char::len_utf8);
            tokens.push(Token::Other);
        }
    }
    tokens
}

/// The index just past the string literal that starts at `start`.
pub(super) fn skip_string(bytes: &[u8], start: usize, raw: bool) -> usize {
    let quote = bytes[start];
    let triple = bytes.len() >= start + 3 && bytes[start + 1] == quote && bytes[start + 2] == quote;
    let mut i = start + if triple { 3 } else { 1 };
    while i < bytes.len() {
        if bytes[i] == b'\\' && !raw {
            i += 2;
            continue;
        }
        if bytes[i] == quote {
            if !triple {
                return i + 1;
            }
            if bytes.len() >= i + 3 && bytes[i + 1] == quote && bytes[i + 2] == quote {
                return i + 3;
            }
        }
        i += 1;
    }
    bytes.len()
}

/// The range of the last name of the `nth` occurrence of `path` written as
/// `a.b.c`; failing that, of its last name after a dot (or alone).
pub(super) fn locate(tokens: &[Token], path: &[String], nth: usize) -> Option<Range<usize>> {
    let last = path.last()?;
    let mut found = Vec::new();
    'start: for start in 0..tokens.len() {
        if start > 0 && tokens[start - 1] == Token::Dot {
            continue;
        }
        let mut at = start;
        let mut range = None;
        for (k, name) in path.iter().enumerate() {
            if k > 0 {
                if tokens.get(at) != Some(&Token::Dot) {
                    continue 'start;
                }
                at += 1;
            }
            match tokens.get(at) {
                Some(Token::Name(text, r)) if text == name => range = Some(r.clone()),
                _ => continue 'start,
            }
            at += 1;
        }
        found.extend(range);
    }
    if let Some(range) = found.get(nth).or(found.first()) {
        return Some(range.clone());
    }
    let dotted = path.len() > 1;
    tokens
        .iter()
        .enumerate()
        .find_map(|(i, token)| match token {
            Token::Name(text, r)
                if text == last && (!dotted || (i > 0 && tokens[i - 1] == Token::Dot)) =>
            {
                Some(r.clone())
            }
            _ => None,
        })
}

/// The byte range of the character at the parser's `(line, column)` (both
/// from 1, column in characters), or the end of the text.
pub(super) fn offset_of(text: &str, (line, column): (isize, isize)) -> Range<usize> {
    let line = usize::try_from(line.max(1) - 1).unwrap_or(0);
    let column = usize::try_from(column.max(1) - 1).unwrap_or(0);
    let mut start = 0;
    for (number, content) in text.split_inclusive('\n').enumerate() {
        if number == line {
            let offset = content
                .char_indices()
                .nth(column)
                .map_or(content.trim_end_matches('\n').len(), |(i, _)| i);
            let at = start + offset;
            let width = text[at..].chars().next().map_or(0, char::len_utf8);
            return at..at + width;
        }
        start += content.len();
    }
    text.len()..text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tokenizer_skips_strings_and_numbers() {
        let tokens = tokenize(r#"a.b == "x.y\"z" && 'q' + r'\' + 1.5 > c"#);
        let names: Vec<&str> = tokens
            .iter()
            .filter_map(|t| match t {
                Token::Name(n, _) => Some(n.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
    }
}
