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

    /// The formula parsed but its steps do not form a valid DAG.
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

/// A formula whose steps do not form a valid DAG, with every problem found.
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

/// One problem in a formula's steps, located in its source.
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

/// Converts a byte range into a miette span.
pub(crate) fn span(range: Range<usize>) -> SourceSpan {
    SourceSpan::from(range)
}
