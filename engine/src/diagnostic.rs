//! Formula errors as compiler-style diagnostics: what is wrong, where (the
//! file, line and column, with the excerpt underlined) and how to fix it.
//! They are `miette` diagnostics; the CLI renders them.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceSpan};
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

    /// The source as miette wants it for excerpts.
    pub fn named(&self) -> NamedSource<Arc<String>> {
        NamedSource::new(self.name.clone(), Arc::clone(&self.text)).with_language("toml")
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

    /// The file is not well-formed TOML, or not of the formula's shape.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Syntax(Box<SyntaxError>),

    /// The formula parsed but its steps do not form a valid DAG, or its
    /// rules or actions are invalid.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Invalid(Box<InvalidFormula>),
}

/// A formula that is not well-formed TOML, or not of the formula's shape
/// (an unknown key, a wrong type, a bad duration).
#[derive(Debug, Error, Diagnostic)]
#[error("{message}")]
#[diagnostic(code(retort::formula::syntax))]
pub struct SyntaxError {
    /// The formula source.
    #[source_code]
    pub src: NamedSource<Arc<String>>,
    /// Where the parser stopped.
    #[label("{label}")]
    pub span: Option<SourceSpan>,
    /// The parser's message.
    pub message: String,
    /// The label under the excerpt.
    pub label: String,
    /// How to fix it.
    #[help]
    pub help: Option<String>,
}

/// A formula whose steps do not form a valid DAG, or whose rules or actions
/// are invalid, with every problem found.
#[derive(Debug, Error, Diagnostic)]
#[error("formula `{}` has {} problem{}", name, problems.len(), if problems.len() == 1 { "" } else { "s" })]
#[diagnostic(code(retort::formula::invalid))]
pub struct InvalidFormula {
    /// The formula's file name.
    pub name: String,
    /// The formula source.
    #[source_code]
    pub src: NamedSource<Arc<String>>,
    /// Every problem found, each with its own location.
    #[related]
    pub problems: Vec<Problem>,
}

impl FormulaError {
    /// Converts a TOML parse error into a located diagnostic.
    pub fn syntax(source: &SourceFile, error: &toml::de::Error) -> Self {
        let message = error.message().trim().to_string();
        let help = syntax_help(&message);
        FormulaError::Syntax(Box::new(SyntaxError {
            src: source.named(),
            span: error.span().map(SourceSpan::from),
            label: "here".to_string(),
            message,
            help,
        }))
    }
}

fn syntax_help(message: &str) -> Option<String> {
    if message.starts_with("unknown field") {
        Some(
            "remove the key, or correct its spelling; the keys this table accepts are listed above"
                .to_string(),
        )
    } else if message.starts_with("missing field") {
        Some("add the key; every [[steps]] entry needs `id` and `description`, and the formula needs `name`".to_string())
    } else if message.contains("escape") {
        Some("TOML basic strings (\"...\") allow only \\\\, \\\", \\n, \\t, \\uXXXX and a few more escapes; double the backslash, or use a literal string '''...'''".to_string())
    } else {
        None
    }
}

/// One problem in a formula's steps (or, through [`Problem::Rule`], its
/// rules and actions), located in its source.
#[derive(Debug, Error, Diagnostic)]
pub enum Problem {
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

    /// An expression names a field the snapshot does not have.
    #[error("rule `{rule}`: the snapshot has no `{path}`")]
    #[diagnostic(code(retort::rule::unknown_field))]
    UnknownField {
        /// The rule.
        rule: String,
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
        kind: &'static str,
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
        kind: &'static str,
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

/// Converts a byte range into a miette span.
pub(crate) fn span(range: Range<usize>) -> SourceSpan {
    SourceSpan::from(range)
}
