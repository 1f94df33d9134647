//! The catalogue of problems in a formula's structure, steps, templates
//! and DAG: each one's message, code, help text and labelled spans.

use miette::{Diagnostic, LabeledSpan, SourceSpan};
use thiserror::Error;

use super::RuleProblem;

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
