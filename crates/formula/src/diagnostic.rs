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
    text: Arc<String>,
}

impl SourceFile {
    /// Wraps `text`, read from `path`.
    pub fn new(path: &Path, text: String) -> Self {
        SourceFile {
            name: path.display().to_string(),
            text: Arc::new(text),
        }
    }

    /// The source text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The source as miette wants it for excerpts, with columns counted
    /// in characters (see [`FormulaText`]).
    pub fn named(&self) -> NamedSource<FormulaText> {
        NamedSource::new(self.name.clone(), FormulaText(Arc::clone(&self.text)))
            .with_language("toml")
    }

    /// The line and column (both from 1; the column in characters, as
    /// editors and `retort check --format json` count it) of byte `offset`,
    /// clamped to the text. An offset inside a multi-byte character counts
    /// as that character.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        position(&self.text, offset)
    }
}

/// The line and column (both from 1; the column in characters) of byte
/// `offset` of `text`, clamped to the text.
pub fn position(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |at| at + 1);
    (
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
}

/// A formula's text as a miette [`SourceCode`]: miette's own `str` source
/// counts the column of a report's `[file:line:column]` header in bytes
/// (miette 7.6, `source_impls.rs`), so a line with `—` or `→` before the
/// place showed a later column than an editor (and the JSON output) does.
/// This one counts characters; excerpts are miette's.
#[derive(Debug, Clone)]
pub struct FormulaText(Arc<String>);

impl SourceCode for FormulaText {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let text = self.0.as_str();
        let contents = text.read_span(span, context_lines_before, context_lines_after)?;
        // With context lines, miette starts at a line's start (column 0);
        // without, at the span, with its byte column.
        if context_lines_before > 0 {
            return Ok(contents);
        }
        let (_, column) = position(text, span.offset());
        Ok(Box::new(MietteSpanContents::new(
            contents.data(),
            *contents.span(),
            contents.line(),
            column - 1,
            contents.line_count(),
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

    /// The formula has errors: every problem found, warnings included.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Invalid(Box<InvalidFormula>),
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
