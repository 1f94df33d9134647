//! Formula errors as compiler-style diagnostics: what is wrong, where (the
//! file, line and column, with the excerpt underlined) and how to fix it.
//! They are `miette` diagnostics; the CLI renders them.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{
    Diagnostic, LabeledSpan, MietteError, MietteSpanContents, NamedSource, SourceCode, SourceSpan,
    SpanContents,
};
use thiserror::Error;

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

/// Why a formula cannot be used.
#[derive(Debug, Error, Diagnostic)]
pub enum FormulaError {
    /// The file could not be read.
    #[error("cannot read formula `{}`: {source}", path.display())]
    #[diagnostic(
        code(retort::formula::read),
        help("give the path of a formula TOML file, such as formulas/run-supervisor.toml")
    )]
    Read {
        /// The path given.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },

    /// The file is not UTF-8 (TOML files are): where its first invalid
    /// byte is.
    #[error(
        "formula `{}` is not UTF-8: line {line}, column {column} (byte {offset}) starts an invalid sequence",
        path.display()
    )]
    #[diagnostic(
        code(retort::formula::utf8),
        help(
            "TOML files are UTF-8: re-encode the file (`iconv -f LATIN1 -t UTF-8`), or check that the path names a formula and not a binary file"
        )
    )]
    NotUtf8 {
        /// The path given.
        path: PathBuf,
        /// 1-based line of the first invalid byte.
        line: usize,
        /// 1-based column, in characters of the valid text before it.
        column: usize,
        /// Its byte offset, from 0.
        offset: usize,
    },

    /// The formula has errors: every problem found, warnings included.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Invalid(Box<InvalidFormula>),
}

/// Reads the formula file at `path` as text.
///
/// # Errors
/// [`FormulaError::Read`] when it cannot be read; [`FormulaError::NotUtf8`],
/// with the line and column of the first invalid byte, when it is not UTF-8.
pub fn read_formula_text(path: &Path) -> Result<String, FormulaError> {
    let bytes = std::fs::read(path).map_err(|source| FormulaError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|error| {
        let offset = error.utf8_error().valid_up_to();
        let valid = std::str::from_utf8(&error.as_bytes()[..offset]).unwrap_or_default();
        let (line, column) = position(valid, offset);
        FormulaError::NotUtf8 {
            path: path.to_path_buf(),
            line,
            column,
            offset,
        }
    })
}

/// A formula with errors, and every problem found in it.
#[derive(Debug, Error, Diagnostic)]
#[error("{name}: {}", count(problems))]
#[diagnostic(code(retort::formula::invalid))]
pub struct InvalidFormula {
    /// The formula's file name.
    pub name: String,
    /// The formula source.
    #[source_code]
    pub src: NamedSource<FormulaText>,
    /// Every problem found, each with its own location.
    #[related]
    pub problems: Vec<Problem>,
}

/// "2 errors and 1 warning".
fn count(problems: &[Problem]) -> String {
    let errors = problems.iter().filter(|p| p.is_error()).count();
    let warnings = problems.len() - errors;
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    match warnings {
        0 => plural(errors, "error"),
        _ => format!(
            "{} and {}",
            plural(errors, "error"),
            plural(warnings, "warning")
        ),
    }
}

/// The reason of a [`Problem::UnknownVariable`] whose context does not
/// depend on a rule: "is not in its template context".
pub const NOT_IN_CONTEXT: &str = "is not in its template context";

/// One problem in a formula, located in its source. Most are errors; those
/// marked "warning" do not stop a run.
#[derive(Debug, Error, Diagnostic)]
pub enum Problem {
    /// The file is not well-formed TOML.
    #[error("{message}")]
    #[diagnostic(code(retort::toml))]
    Toml {
        /// The TOML parser's message.
        message: String,
        /// Where.
        #[label("here")]
        span: SourceSpan,
        /// How to fix it.
        #[help]
        help: Option<String>,
    },

    /// A key the table does not have.
    #[error("unknown key `{key}` in {table}")]
    #[diagnostic(code(retort::unknown_key))]
    UnknownKey {
        /// The key.
        key: String,
        /// The table, as a reader would name it: `[[steps]] "report"`.
        table: String,
        /// The key's place.
        #[label("unknown key")]
        span: SourceSpan,
        /// The likely intended key, or the keys there are.
        #[help]
        help: String,
    },

    /// Warning: a key the table does not have, and not a likely typo of
    /// one it has (a key meant for another tool, or for the formula's
    /// readers): it is ignored, as cargo ignores unused manifest keys.
    /// `retort check --deny warnings` refuses it.
    #[error("unknown key `{key}` in {table} is ignored")]
    #[diagnostic(code(retort::ignored_key), severity(Warning))]
    IgnoredKey {
        /// The key.
        key: String,
        /// The table, as a reader would name it: `[[steps]] "report"`.
        table: String,
        /// The key's place.
        #[label("ignored")]
        span: SourceSpan,
        /// What to do instead.
        #[help]
        help: String,
    },

    /// A declared var whose name is also a name of the template context
    /// (`step`, `preflight`, …): templates see vars at the top level too,
    /// so `{{ NAME }}` could not mean both.
    #[error("var `{name}` has the name of the template context's `{name}`")]
    #[diagnostic(code(retort::var_name_taken))]
    VarNameTaken {
        /// The var.
        name: String,
        /// Its declaration.
        #[label("declared here")]
        span: SourceSpan,
        /// What the context's name holds, and what to do.
        #[help]
        help: String,
    },

    /// Warning: a step title or the formula's description with template
    /// syntax: neither is a template, so the braces are shown verbatim.
    #[error("{place} holds template syntax, but is shown verbatim")]
    #[diagnostic(code(retort::not_a_template), severity(Warning))]
    NotATemplate {
        /// "the title of step `report`", "the formula's description".
        place: String,
        /// The first tag.
        #[label("not rendered")]
        span: SourceSpan,
        /// Why, and what to do.
        #[help]
        help: String,
    },

    /// A value of the wrong type.
    #[error("`{key}` in {table} must be {expected}, not {found}")]
    #[diagnostic(code(retort::wrong_type))]
    WrongType {
        /// The key.
        key: String,
        /// The table.
        table: String,
        /// What it must be: "a list of strings".
        expected: String,
        /// What it is: "a string".
        found: String,
        /// The value.
        #[label("{found}")]
        span: SourceSpan,
        /// An example of the right form, where there is one.
        #[help]
        help: Option<String>,
    },

    /// A required key that is missing.
    #[error("{table} has no `{key}`")]
    #[diagnostic(code(retort::missing_key))]
    MissingKey {
        /// The key.
        key: String,
        /// The table.
        table: String,
        /// The table's place.
        #[label("`{key}` is required here")]
        span: SourceSpan,
        /// What the key is for.
        #[help]
        help: String,
    },

    /// A value of the right type that is still not acceptable.
    #[error("{message}")]
    #[diagnostic(code(retort::bad_value))]
    BadValue {
        /// What is wrong.
        message: String,
        /// The value.
        #[label("here")]
        span: SourceSpan,
        /// How to fix it.
        #[help]
        help: Option<String>,
    },

    /// A template (a step description, the agent command) that does not parse.
    #[error("{place} is not a valid template: {message}")]
    #[diagnostic(code(retort::template_syntax))]
    TemplateSyntax {
        /// Which template: "the description of step `report`".
        place: String,
        /// Tera's message.
        message: String,
        /// Where in the formula file.
        #[label("{message}")]
        span: SourceSpan,
        /// How to fix it.
        #[help]
        help: String,
    },

    /// A template variable that the template's context does not provide.
    #[error("{place} uses `{path}`, which {reason}")]
    #[diagnostic(code(retort::unknown_variable))]
    UnknownVariable {
        /// Which template.
        place: String,
        /// The variable path as written: `preflight.system.memroy`.
        path: String,
        /// Why it is not there, read after "which": [`NOT_IN_CONTEXT`], or
        /// for an action's `run`, which of the rules that name the action
        /// does not give it (`` the items of rule `dead-pane`
        /// (`tmux.sessions`) do not have ``).
        reason: String,
        /// Where in the formula file.
        #[label("unknown")]
        span: SourceSpan,
        /// The likely intended name, or the names there are.
        #[help]
        help: String,
    },

    /// A required variable with no value, when running or rendering.
    #[error("required var `{name}` has no value")]
    #[diagnostic(code(retort::required_var), help("give it one: --var {name}=VALUE"))]
    RequiredVarUnset {
        /// The variable.
        name: String,
        /// Its declaration.
        #[label("declared required here")]
        span: SourceSpan,
    },

    /// Warning: a required variable that `retort check` was not given.
    #[error("required var `{name}` has no value here")]
    #[diagnostic(
        code(retort::required_var),
        severity(Warning),
        help("`retort run` and `retort render` will need --var {name}=VALUE")
    )]
    RequiredVarNotGiven {
        /// The variable.
        name: String,
        /// Its declaration.
        #[label("declared required here")]
        span: SourceSpan,
    },

    /// Warning: a declared variable that no template or rule uses.
    #[error("var `{name}` is declared but never used")]
    #[diagnostic(
        code(retort::unused_var),
        severity(Warning),
        help(
            "use it as {{{{ {name} }}}} or {{{{ vars.{name} }}}} in a step's description or the agent command, as {{{{ vars.{name} }}}} in a rule message or an action command, or as vars.{name} in a rule condition; or remove it"
        )
    )]
    UnusedVar {
        /// The variable.
        name: String,
        /// Its declaration.
        #[label("declared here")]
        span: SourceSpan,
    },

    /// Warning: an `[agent]` setting that the chosen backend does not use
    /// (`ready` or `submit_delay` with `backend = "headless"`).
    #[error("`{key}` in [agent] does nothing with backend = \"headless\"")]
    #[diagnostic(
        code(retort::unused_agent_setting),
        severity(Warning),
        help(
            "a headless agent gets each prompt on its standard input, so there is no screen to wait for and no paste to submit; remove `{key}`, or use backend = \"tmux\""
        )
    )]
    UnusedAgentSetting {
        /// The key.
        key: String,
        /// Where it is set.
        #[label("not used by the headless backend")]
        span: SourceSpan,
    },

    /// Warning: a `[context] files` entry that does not exist.
    #[error("context file `{path}` does not exist in {cwd}")]
    #[diagnostic(
        code(retort::missing_context_file),
        severity(Warning),
        help(
            "paths are relative to the directory retort runs in; the first prompt will leave it out"
        )
    )]
    MissingContextFile {
        /// The path as written.
        path: String,
        /// The directory it was looked for in.
        cwd: String,
        /// The entry.
        #[label("not found")]
        span: SourceSpan,
    },

    /// The formula has no `[[steps]]`.
    #[error("formula has no steps")]
    #[diagnostic(
        code(retort::formula::no_steps),
        help("add at least one [[steps]] table with an `id` and a `description`")
    )]
    NoSteps {
        /// The formula's name.
        #[label("this formula")]
        span: SourceSpan,
    },

    /// A step's id is empty or blank.
    #[error("step id is empty")]
    #[diagnostic(
        code(retort::formula::empty_id),
        help(
            "give the step a short id such as \"health-assessment\"; it names its prompt and signal files"
        )
    )]
    EmptyId {
        /// The empty id.
        #[label("empty id")]
        span: SourceSpan,
    },

    /// Two steps share an id.
    #[error("duplicate step id `{id}`")]
    #[diagnostic(
        code(retort::formula::duplicate_step),
        help("step ids must be unique within a formula: rename one of the two")
    )]
    DuplicateStep {
        /// The id.
        id: String,
        /// The first definition.
        #[label("first defined here")]
        first: SourceSpan,
        /// The second definition.
        #[label("defined again here")]
        second: SourceSpan,
    },

    /// A `needs` entry names no step.
    #[error("step `{step}` needs `{need}`, which is not a step of this formula")]
    #[diagnostic(code(retort::formula::unknown_need))]
    UnknownNeed {
        /// The step whose `needs` it is.
        step: String,
        /// The unknown id.
        need: String,
        /// The entry.
        #[label("no step has this id")]
        span: SourceSpan,
        /// The closest id, or the list of ids.
        #[help]
        help: String,
    },

    /// A step needs itself.
    #[error("step `{step}` needs itself")]
    #[diagnostic(
        code(retort::formula::self_need),
        help("remove `{step}` from its own `needs`")
    )]
    SelfNeed {
        /// The step.
        step: String,
        /// The entry.
        #[label("a step cannot wait for itself")]
        span: SourceSpan,
    },

    /// A step's `when` condition is not CEL, or uses a name it cannot
    /// see (the snapshot, `vars`, `findings`, `now`, and `steps.ID` of the
    /// step's ancestors).
    #[error("step `{step}`: `when` {message}")]
    #[diagnostic(code(retort::formula::step_condition))]
    StepCondition {
        /// The step.
        step: String,
        /// What is wrong: `is not a valid CEL expression: …`, `uses …`.
        message: String,
        /// Where, within the condition.
        #[label("here")]
        span: SourceSpan,
        /// How to fix it.
        #[help]
        help: String,
    },

    /// A problem in the formula's rules or actions.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Rule(Box<RuleProblem>),

    /// Steps that need each other in a circle.
    #[error("steps form a cycle: {}", path.join(" → "))]
    #[diagnostic(
        code(retort::formula::cycle),
        help("no step of a cycle can ever start: remove one of these `needs` entries to break it")
    )]
    Cycle {
        /// The cycle, first step repeated at the end: `a → b → c → a`.
        path: Vec<String>,
        /// Each edge's `needs` entry, labelled `a needs b`.
        #[label(collection)]
        edges: Vec<LabeledSpan>,
    },
}

impl Problem {
    /// Whether the problem stops a run (warnings do not).
    pub fn is_error(&self) -> bool {
        !matches!(
            self.severity(),
            Some(miette::Severity::Warning | miette::Severity::Advice)
        )
    }

    /// The place the problem points at: its first label's span.
    pub fn primary_span(&self) -> Option<SourceSpan> {
        self.labels()
            .and_then(|mut labels| labels.next())
            .map(|label| *label.inner())
    }
}

/// One problem in a formula's `[[rules]]` or `[[actions]]`, located in its
/// source. The span of a problem inside an expression or template is the
/// offending name when it can be found in the file, else the whole value.
#[derive(Debug, Error, Diagnostic)]
pub enum RuleProblem {
    /// A rule's or action's id is empty or blank.
    #[error("{kind} id is empty")]
    #[diagnostic(
        code(retort::rule::empty_id),
        help("give it a short id such as \"memory-crisis\"; it names its findings and proposals")
    )]
    EmptyId {
        /// `rule` or `action`.
        kind: &'static str,
        /// The empty id.
        #[label("empty id")]
        span: SourceSpan,
    },

    /// Two rules, or two actions, share an id.
    #[error("duplicate {kind} id `{id}`")]
    #[diagnostic(
        code(retort::rule::duplicate_id),
        help("{kind} ids must be unique within a formula: rename one of the two")
    )]
    DuplicateId {
        /// `rule` or `action`.
        kind: &'static str,
        /// The id.
        id: String,
        /// The first definition.
        #[label("first defined here")]
        first: SourceSpan,
        /// The second definition.
        #[label("defined again here")]
        second: SourceSpan,
    },

    /// An expression is not CEL.
    #[error("rule `{rule}`: `{key}` is not a valid CEL expression: {message}")]
    #[diagnostic(
        code(retort::rule::cel_syntax),
        help(
            "CEL reads like C: `system.memory.available_mb < 500 && system.swap.used_mb > 3072`; strings take quotes, `'ok'`"
        )
    )]
    CelSyntax {
        /// The rule.
        rule: String,
        /// `when`, `each` or `label`.
        key: &'static str,
        /// The parser's message.
        message: String,
        /// Where the parser stopped.
        #[label("here")]
        span: SourceSpan,
    },

    /// An expression names a variable that does not exist.
    #[error("rule `{rule}`: `{key}` uses `{name}`, which is not a variable")]
    #[diagnostic(code(retort::rule::unknown_variable))]
    UnknownVariable {
        /// The rule.
        rule: String,
        /// `when`, `each` or `label`.
        key: &'static str,
        /// The name.
        name: String,
        /// Where.
        #[label("unknown variable")]
        span: SourceSpan,
        /// The closest name, or the variables there are.
        #[help]
        help: String,
    },

    /// An expression names a field the snapshot (or `[vars]`) does not have.
    #[error("rule `{rule}`: {owner} has no `{path}`")]
    #[diagnostic(code(retort::rule::unknown_field))]
    UnknownField {
        /// The rule.
        rule: String,
        /// `the snapshot`, or `` the formula's `[vars]` ``.
        owner: &'static str,
        /// The path as written.
        path: String,
        /// Where.
        #[label("no such field")]
        span: SourceSpan,
        /// The closest field, or the fields there are.
        #[help]
        help: String,
    },

    /// An expression selects a field of something without fields.
    #[error("rule `{rule}`: `{path}` selects a field of {kind}")]
    #[diagnostic(code(retort::rule::not_an_object))]
    NotAnObject {
        /// The rule.
        rule: String,
        /// The path as written.
        path: String,
        /// What the value is.
        kind: String,
        /// Where.
        #[label("not a field")]
        span: SourceSpan,
        /// How to fix it.
        #[help]
        help: String,
    },

    /// `each` is not a list.
    #[error("rule `{rule}`: `each` must give a list, but this is {kind}")]
    #[diagnostic(
        code(retort::rule::each_not_list),
        help("name a list of the snapshot, such as `system.disks` or `tmux.sessions`")
    )]
    EachNotList {
        /// The rule.
        rule: String,
        /// What it gives.
        kind: String,
        /// The `each` value.
        #[label("not a list")]
        span: SourceSpan,
    },

    /// `each` without `label`, or `label` without `each`.
    #[error("rule `{rule}`: {message}")]
    #[diagnostic(code(retort::rule::each_label))]
    EachLabel {
        /// The rule.
        rule: String,
        /// What is missing.
        message: &'static str,
        /// The key that is there.
        #[label("here")]
        span: SourceSpan,
        /// How to fix it.
        #[help]
        help: &'static str,
    },

    /// `for = 0`.
    #[error("rule `{rule}`: `for` must be at least 1")]
    #[diagnostic(
        code(retort::rule::zero_for),
        help("`for` counts the consecutive runs the condition must hold; 1 fires at the first")
    )]
    ZeroFor {
        /// The rule.
        rule: String,
        /// The value.
        #[label("zero runs")]
        span: SourceSpan,
    },

    /// A rule names an action the formula does not define.
    #[error("rule `{rule}` names action `{action}`, which is not an [[actions]] id")]
    #[diagnostic(code(retort::rule::unknown_action))]
    UnknownAction {
        /// The rule.
        rule: String,
        /// The action named.
        action: String,
        /// Where.
        #[label("no action has this id")]
        span: SourceSpan,
        /// The closest id, or the ids there are.
        #[help]
        help: String,
    },

    /// A message or command template is not a valid Tera template.
    #[error("{owner}: `{key}` is not a valid template: {report}")]
    #[diagnostic(
        code(retort::rule::template),
        help(
            "templates are Tera: `{{{{ system.memory.available_mb }}}}`; write a literal brace pair as `{{{{ \"{{{{\" }}}}`"
        )
    )]
    Template {
        /// `rule `ID`` or `action `ID``.
        owner: String,
        /// `message` or `run`.
        key: &'static str,
        /// Tera's report.
        report: String,
        /// The template.
        #[label("in this template")]
        span: SourceSpan,
    },

    /// An action with an empty `run`.
    #[error("action `{action}` has an empty `run`")]
    #[diagnostic(
        code(retort::rule::empty_command),
        help("give the program and its arguments: run = [\"supervisor/actions/free-memory.sh\"]")
    )]
    EmptyCommand {
        /// The action.
        action: String,
        /// The `run` value.
        #[label("nothing to run")]
        span: SourceSpan,
    },
}

/// Converts a byte range of the formula text into a miette span.
pub fn span(range: Range<usize>) -> SourceSpan {
    SourceSpan::from(range)
}
