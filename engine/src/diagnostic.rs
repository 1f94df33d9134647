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
    pub src: NamedSource<Arc<String>>,
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
    #[error("{place} uses `{path}`, which is not in its template context")]
    #[diagnostic(code(retort::unknown_variable))]
    UnknownVariable {
        /// Which template.
        place: String,
        /// The variable path as written: `preflight.system.memroy`.
        path: String,
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

    /// Warning: a declared variable that no template uses.
    #[error("var `{name}` is declared but never used")]
    #[diagnostic(
        code(retort::unused_var),
        severity(Warning),
        help(
            "use it as {{{{ vars.{name} }}}} in a description or the agent command, or remove it"
        )
    )]
    UnusedVar {
        /// The variable.
        name: String,
        /// Its declaration.
        #[label("declared here")]
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

/// Converts a byte range into a miette span.
pub(crate) fn span(range: Range<usize>) -> SourceSpan {
    SourceSpan::from(range)
}
