//! The catalogue of problems in a formula's `[[rules]]` and `[[actions]]`:
//! each one's message, code, help text and labelled span.

use miette::{Diagnostic, SourceSpan};
use thiserror::Error;

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
