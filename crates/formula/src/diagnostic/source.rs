//! A formula's source text as diagnostics show it: its name, line and
//! column of a byte offset, and the excerpts a report underlines.

use std::path::Path;
use std::sync::Arc;

use miette::{MietteError, MietteSpanContents, NamedSource, SourceCode, SourceSpan, SpanContents};

/// A formula's source text with the name diagnostics show for it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SourceFile {
    name: String,
    text: FormulaText,
}

impl SourceFile {
    /// Wraps `text`, read from `path`.
    pub fn new(path: &Path, text: String) -> Self {
        SourceFile {
            name: path.display().to_string(),
            text: FormulaText::new(text),
        }
    }

    /// The source text.
    pub fn text(&self) -> &str {
        &self.text.text
    }

    /// The source as miette wants it for excerpts, with columns counted
    /// in characters and excerpts cut to the neighbourhood of their span
    /// (see [`FormulaText`]).
    pub fn named(&self) -> NamedSource<FormulaText> {
        NamedSource::new(self.name.clone(), self.text.clone()).with_language("toml")
    }

    /// The line and column (both from 1; the column in characters, as
    /// editors and `retort check --format json` count it) of byte `offset`,
    /// clamped to the text. An offset inside a multi-byte character counts
    /// as that character. After the first call, finding the line costs a
    /// binary search and the column a count of the characters before
    /// `offset` on its line.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        self.text.position(offset)
    }
}

/// The line and column (both from 1; the column in characters) of byte
/// `offset` of `text`, clamped to the text. Scans `text` up to `offset`:
/// for many positions in one text, use [`SourceFile::position`].
pub fn position(text: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(text, offset);
    let before = &text.as_bytes()[..offset];
    let line_start = memchr::memrchr(b'\n', before).map_or(0, |at| at + 1);
    (
        memchr::memchr_iter(b'\n', before).count() + 1,
        text[line_start..offset].chars().count() + 1,
    )
}

/// `offset` clamped to `text` and moved back to a character boundary.
fn floor_char_boundary(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// `offset` clamped to `text` and moved on to a character boundary.
fn ceil_char_boundary(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset += 1;
    }
    offset
}

/// The most bytes of source an excerpt shows on either side of its span:
/// 160. A line longer than that (a minified file, a log passed to `retort
/// check` by mistake) is shown as its neighbourhood of the span, not whole.
pub const EXCERPT_REACH: usize = 160;

/// The most bytes of a span an excerpt shows: 2 KiB. The label of a longer
/// span runs on past the excerpt's end.
pub const EXCERPT_SPAN_MAX: usize = 2048;

/// A formula's text as a miette [`SourceCode`].
///
/// Two differences from miette's own `str` source (miette 7.6,
/// `source_impls.rs`): the column of a report's `[file:line:column]`
/// header counts characters, not bytes (so a line with `—` or `→` before
/// the place shows the column an editor, and the JSON output, shows); and
/// an excerpt is read from a window of the text around its span (at most
/// [`EXCERPT_REACH`] bytes either side, and [`EXCERPT_SPAN_MAX`] of the span
/// itself), where miette scans the text from its start for every excerpt
/// and shows whole lines: 100 problems in a 50 MB file cost 100 scans of
/// it, and a label past column 65,535 made miette's renderer panic
/// ("Formatting argument out of range"). Line numbers come from an index
/// of the text's line starts, built once.
#[derive(Debug, Clone)]
pub struct FormulaText {
    text: Arc<String>,
    /// The byte offset of every `\n`, built on first use.
    newlines: Arc<std::sync::OnceLock<Vec<usize>>>,
}

impl FormulaText {
    fn new(text: String) -> Self {
        FormulaText {
            text: Arc::new(text),
            newlines: Arc::new(std::sync::OnceLock::new()),
        }
    }

    fn newlines(&self) -> &[usize] {
        self.newlines
            .get_or_init(|| memchr::memchr_iter(b'\n', self.text.as_bytes()).collect())
    }

    /// How many lines start before byte `offset` (the 0-based line of `offset`).
    fn line_of(&self, offset: usize) -> usize {
        self.newlines().partition_point(|&newline| newline < offset)
    }

    /// As [`SourceFile::position`].
    fn position(&self, offset: usize) -> (usize, usize) {
        let text = self.text.as_str();
        let offset = floor_char_boundary(text, offset);
        let line = self.line_of(offset);
        let line_start = match line {
            0 => 0,
            n => self.newlines()[n - 1] + 1,
        };
        (line + 1, text[line_start..offset].chars().count() + 1)
    }
}

impl SourceCode for FormulaText {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let text = self.text.as_str();
        if span.offset() > text.len() {
            return Err(MietteError::OutOfBounds);
        }
        let start = span.offset();
        let end = (start + span.len()).min(text.len());
        let shown_end = ceil_char_boundary(text, end.min(start + EXCERPT_SPAN_MAX));
        let window_start = floor_char_boundary(text, start.saturating_sub(EXCERPT_REACH));
        let window_end = ceil_char_boundary(text, shown_end.saturating_add(EXCERPT_REACH));
        let window = &text[window_start..window_end];
        let inner = SourceSpan::new((start - window_start).into(), shown_end - start);
        let contents = window.read_span(&inner, context_lines_before, context_lines_after)?;
        let data_start = window_start + contents.span().offset();
        let line = self.line_of(data_start);
        let lines_in_window = contents.line_count().saturating_sub(contents.line());
        // With context lines, miette starts at a line's start (column 0)
        // or, here, at the window's start; without, at the span.
        let column = match context_lines_before {
            0 => self.position(data_start).1 - 1,
            _ => contents.column(),
        };
        Ok(Box::new(MietteSpanContents::new(
            contents.data(),
            (data_start, contents.span().len()).into(),
            line,
            column,
            lines_in_window,
        )))
    }
}
