//! The `[[notify]]` tables of a formula, as written, and how they become
//! [`Target`]s. The formula crate embeds [`NotifyConfig`] in its model
//! (`notify: Vec<NotifyConfig>`), shows [`NotifyConfig::check`]'s problems
//! with `retort check`, and calls [`NotifyConfig::resolve`] when a run starts.
//!
//! ```toml
//! [[notify]]
//! kind = "matrix"
//! homeserver = "https://matrix.example.org"
//! room = "#factory-ops:example.org"      # a room id (!…) or an alias (#…)
//! token_env = "RETORT_MATRIX_TOKEN"      # the access token is read from here
//! on = ["escalate", "failed", "finding", "resolved"]
//! min_priority = "P1"                    # findings: P0 and P1 only
//! repeat = "4h"
//!
//! [[notify]]
//! kind = "webhook"
//! url = "https://hooks.example.org/retort"
//! body = '{"text": {{ message | json }}}'
//! headers_env = { "X-Api-Key" = "RETORT_HOOK_KEY" }
//! on = ["escalate", "failed"]
//! ```
//!
//! Values that may be wrong after parsing keep their place in the file
//! ([`toml::Spanned`]), so a [`ConfigProblem`] points at the value; a missing
//! key points at `kind`. Deserialise with the `toml` crate: the spans need it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use crate::event::{Event, EventKind, Priority};
use crate::secret::Secret;
use crate::target::{DEFAULT_REPEAT, Destination, MatrixRoom, Policy, Target, Webhook};
use crate::webhook::render_body;

/// One `[[notify]]` table: where to send news, which news, how often.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// `matrix` (a Matrix room: `homeserver`, `room`, `token_env`) or
    /// `webhook` (an HTTP POST: `url`, optional `body` and `headers_env`).
    #[schemars(with = "TargetKind")]
    pub kind: Spanned<TargetKind>,
    /// Matrix: the homeserver's client-server API base URL,
    /// `https://matrix.example.org`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub homeserver: Option<Spanned<String>>,
    /// Matrix: the room, by id (`!AbCdEf:example.org`) or alias
    /// (`#factory-ops:example.org`). The posting user must have joined it.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub room: Option<Spanned<String>>,
    /// Matrix: the name of the environment variable that holds the posting
    /// user's access token, `RETORT_MATRIX_TOKEN`. Never the token itself.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub token_env: Option<Spanned<String>>,
    /// Webhook: the URL that receives a `POST` per message. Its path and
    /// query may hold a secret: retort shows only its scheme, host and port.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub url: Option<Spanned<String>>,
    /// Webhook: a Tera template for the request body, over `event`
    /// (`formula`, `kind`, `fingerprint`, `priority`, `title`, `body`,
    /// `run_id`, `at`) and `message` (the plain text), with a `json` filter:
    /// `'{"text": {{ message | json }}}'`. Default: a JSON object with the
    /// event's fields and `text`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub body: Option<Spanned<String>>,
    /// Webhook: extra request headers, header name → the name of the
    /// environment variable holding its value:
    /// `{ "Authorization" = "RETORT_HOOK_AUTH" }`. Values are never shown.
    #[serde(default)]
    #[schemars(with = "Option<BTreeMap<String, String>>")]
    pub headers_env: Option<Spanned<BTreeMap<String, String>>>,
    /// The kinds of news sent: any of `escalate`, `failed`, `finding`,
    /// `resolved`, `proposal`. Default: all five.
    #[serde(default)]
    #[schemars(with = "Option<Vec<EventKind>>")]
    pub on: Option<Spanned<Vec<EventKind>>>,
    /// For findings: the least urgent priority sent, `P0` … `P4` (`P1`
    /// sends P0 and P1 findings; findings of priority `info` are then not
    /// sent). Default: every finding.
    #[serde(default)]
    #[schemars(with = "Option<Priority>")]
    pub min_priority: Option<Spanned<Priority>>,
    /// How long the same news (formula, kind, fingerprint) stays quiet
    /// after it reached this target: `"30m"`, `"4h"`, `"1d"` (humantime).
    /// Default `"4h"`.
    #[serde(default)]
    #[schemars(with = "Option<HumanDuration>")]
    pub repeat: Option<Spanned<HumanDuration>>,
}

/// The kinds of target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// A Matrix room.
    Matrix,
    /// An HTTP endpoint that takes a POST.
    Webhook,
}

impl TargetKind {
    /// `matrix` or `webhook`.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Matrix => "matrix",
            TargetKind::Webhook => "webhook",
        }
    }
}

/// A positive duration written the way people write them: `"90s"`, `"30m"`,
/// `"1h 30m"` (parsed by the `humantime` crate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match humantime::parse_duration(&text) {
            Ok(duration) if duration.is_zero() => Err(serde::de::Error::custom(format!(
                "`{text}` is no time at all; give a positive duration such as \"4h\""
            ))),
            Ok(duration) => Ok(HumanDuration(duration)),
            Err(error) => Err(serde::de::Error::custom(format!(
                "`{text}` is not a duration ({error}); write it like \"30m\", \"4h\" or \"1d\""
            ))),
        }
    }
}

impl JsonSchema for HumanDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "HumanDuration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A duration such as \"30m\", \"4h\" or \"1d\" (humantime syntax).",
            "examples": ["4h"]
        })
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

/// Something wrong with a `[[notify]]` table: what, how to fix it, and
/// where (byte offsets into the formula file, when known). Never holds a
/// secret's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConfigProblem {
    /// What is wrong: ``a matrix target needs `room` ``.
    pub message: String,
    /// How to fix it.
    pub help: String,
    /// Where, in bytes of the formula file.
    pub span: Option<Range<usize>>,
}

impl NotifyConfig {
    /// The problems found without looking at the environment: keys missing
    /// or not for this kind, URLs, the room, variable and header names, the
    /// body template (rendered for a sample event), an empty `on`. Empty
    /// when the table is good.
    pub fn check(&self) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        let kind = *self.kind.get_ref();
        let keys = [
            ("homeserver", span(&self.homeserver), TargetKind::Matrix),
            ("room", span(&self.room), TargetKind::Matrix),
            ("token_env", span(&self.token_env), TargetKind::Matrix),
            ("url", span(&self.url), TargetKind::Webhook),
            ("body", span(&self.body), TargetKind::Webhook),
            ("headers_env", span(&self.headers_env), TargetKind::Webhook),
        ];
        let required = ["homeserver", "room", "token_env", "url"];
        let takes = match kind {
            TargetKind::Matrix => "`homeserver`, `room` and `token_env`",
            TargetKind::Webhook => "`url`, and optionally `body` and `headers_env`",
        };
        let name = kind.as_str();
        for (key, at, owner) in keys.iter().cloned() {
            match at {
                None if owner == kind && required.contains(&key) => {
                    problems.push(ConfigProblem {
                        message: format!("a {name} target needs `{key}`"),
                        help: format!("a {name} target takes {takes}"),
                        span: Some(self.kind.span()),
                    });
                }
                Some(at) if owner != kind => problems.push(ConfigProblem {
                    message: format!("`{key}` is not a key of a {name} target"),
                    help: format!("a {name} target takes {takes}; remove `{key}` or change `kind`"),
                    span: Some(at),
                }),
                _ => {}
            }
        }
        if kind == TargetKind::Matrix {
            if let Some(homeserver) = &self.homeserver {
                check_url("homeserver", homeserver, &mut problems);
            }
            if let Some(room) = &self.room {
                check_room(room, &mut problems);
            }
            if let Some(name) = &self.token_env {
                check_variable("token_env", name, &mut problems);
            }
        } else {
            if let Some(url) = &self.url {
                check_url("url", url, &mut problems);
            }
            if let Some(body) = &self.body
                && let Err(reason) = render_body(body.get_ref(), &sample_event())
            {
                problems.push(ConfigProblem {
                    message: format!("the webhook `body` template does not render: {reason}"),
                    help: "it sees `event` (formula, kind, fingerprint, priority, title, body, \
                           run_id, at) and `message`; write values into JSON with `| json`"
                        .to_owned(),
                    span: Some(body.span()),
                });
            }
            if let Some(headers) = &self.headers_env {
                for (name, variable) in headers.get_ref() {
                    if ureq::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                        problems.push(ConfigProblem {
                            message: format!(
                                "`{name}` in `headers_env` is not an HTTP header name"
                            ),
                            help: "header names are letters, digits and `-`: `X-Api-Key`"
                                .to_owned(),
                            span: Some(headers.span()),
                        });
                    }
                    if !is_variable_name(variable) {
                        problems.push(variable_problem(
                            &format!("`headers_env` entry `{name}`"),
                            headers.span(),
                        ));
                    }
                }
            }
        }
        if let Some(on) = &self.on
            && on.get_ref().is_empty()
        {
            problems.push(ConfigProblem {
                message: "`on` is empty: this target would never be sent anything".to_owned(),
                help: "list kinds of news (escalate, failed, finding, resolved, proposal), \
                       or remove `on` for all of them"
                    .to_owned(),
                span: Some(on.span()),
            });
        }
        problems
    }

    /// What the target is sent: `on`, `min_priority` and `repeat` with their
    /// defaults.
    pub fn policy(&self) -> Policy {
        Policy {
            on: match &self.on {
                Some(on) => on.get_ref().iter().copied().collect(),
                None => EventKind::ALL.into_iter().collect::<BTreeSet<_>>(),
            },
            min_priority: self.min_priority.as_ref().map(|p| *p.get_ref()),
            repeat: self
                .repeat
                .as_ref()
                .map_or(DEFAULT_REPEAT, |r| r.get_ref().0),
        }
    }

    /// The target, its secrets read through `env` (a variable's value, or
    /// `None` when unset; `|name| std::env::var(name).ok()` in a run).
    ///
    /// # Errors
    /// [`NotifyConfig::check`]'s problems, and one for each variable that is
    /// unset or empty.
    pub fn resolve(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Target, Vec<ConfigProblem>> {
        let mut problems = self.check();
        let mut read = |key: &str, variable: &str, at: Range<usize>| {
            let value = env(variable).map(Secret::new).filter(|s| !s.is_empty());
            if value.is_none() {
                problems.push(ConfigProblem {
                    message: format!("the environment variable {variable} (`{key}`) is not set"),
                    help: format!(
                        "set {variable} in the environment retort runs in (the env file of its \
                         cron line or systemd unit)"
                    ),
                    span: Some(at),
                });
            }
            value
        };
        let destination = match *self.kind.get_ref() {
            TargetKind::Matrix => {
                let token = self
                    .token_env
                    .as_ref()
                    .and_then(|name| read("token_env", name.get_ref(), name.span()));
                Destination::Matrix(MatrixRoom {
                    homeserver: text(&self.homeserver),
                    room: text(&self.room),
                    token: token.unwrap_or_else(|| Secret::new("")),
                })
            }
            TargetKind::Webhook => {
                let mut headers = Vec::new();
                if let Some(map) = &self.headers_env {
                    for (name, variable) in map.get_ref() {
                        if let Some(value) = read("headers_env", variable, map.span()) {
                            headers.push((name.clone(), value));
                        }
                    }
                }
                Destination::Webhook(Webhook {
                    url: text(&self.url),
                    body_template: self.body.as_ref().map(|b| b.get_ref().clone()),
                    headers,
                })
            }
        };
        if problems.is_empty() {
            Ok(Target {
                destination,
                policy: self.policy(),
            })
        } else {
            Err(problems)
        }
    }
}

fn span<T>(value: &Option<Spanned<T>>) -> Option<Range<usize>> {
    value.as_ref().map(Spanned::span)
}

fn text(value: &Option<Spanned<String>>) -> String {
    value
        .as_ref()
        .map(|v| v.get_ref().trim().to_owned())
        .unwrap_or_default()
}

/// An `http://` or `https://` URL with a host. The value is not repeated in
/// the problem: it may hold a secret.
fn check_url(key: &str, url: &Spanned<String>, problems: &mut Vec<ConfigProblem>) {
    let value = url.get_ref().trim();
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or(""));
    let host = host.map(|h| h.rsplit('@').next().unwrap_or(""));
    let good = host.is_some_and(|h| !h.is_empty() && !h.contains(char::is_whitespace))
        && ureq::http::Uri::try_from(value).is_ok();
    if !good {
        problems.push(ConfigProblem {
            message: format!("`{key}` is not an http:// or https:// URL"),
            help: format!(
                "write it like \"https://example.org{}\"",
                match key {
                    "url" => "/hooks/retort",
                    _ => "",
                }
            ),
            span: Some(url.span()),
        });
    }
}

/// A room id (`!opaque:server`) or alias (`#name:server`).
fn check_room(room: &Spanned<String>, problems: &mut Vec<ConfigProblem>) {
    let value = room.get_ref().trim();
    let sigil = value.starts_with('!') || value.starts_with('#');
    let server = value
        .split_once(':')
        .is_some_and(|(local, server)| local.len() > 1 && !server.is_empty());
    if !(sigil && server) {
        problems.push(ConfigProblem {
            message: format!("room `{value}` is neither a Matrix room id nor a room alias"),
            help: "give the room id (\"!AbCdEf:example.org\", in the room's settings) or an alias \
                   (\"#factory-ops:example.org\")"
                .to_owned(),
            span: Some(room.span()),
        });
    }
}

fn check_variable(key: &str, name: &Spanned<String>, problems: &mut Vec<ConfigProblem>) {
    if !is_variable_name(name.get_ref()) {
        problems.push(variable_problem(&format!("`{key}`"), name.span()));
    }
}

/// The problem of a value that is not a variable name: not repeated, as it
/// may be the secret itself, written where its name belongs.
fn variable_problem(what: &str, at: Range<usize>) -> ConfigProblem {
    ConfigProblem {
        message: format!("{what} is not the name of an environment variable"),
        help:
            "give the variable's name (letters, digits and `_`, such as RETORT_MATRIX_TOKEN) and \
               put the secret in that variable, never in the formula"
                .to_owned(),
        span: Some(at),
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`.
fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The event a body template is checked with.
fn sample_event() -> Event {
    Event {
        formula: "formula".to_owned(),
        kind: EventKind::Finding,
        fingerprint: "rule[label]".to_owned(),
        priority: Some(Priority::P1),
        title: "title".to_owned(),
        body: "body".to_owned(),
        run_id: "run".to_owned(),
        at: Utc.timestamp_opt(0, 0).single().unwrap_or_default(),
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
