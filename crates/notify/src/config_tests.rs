//! `[[notify]]` tables as a formula writes them.

use std::collections::HashMap;

use super::*;

#[derive(Deserialize)]
struct File {
    notify: Vec<NotifyConfig>,
}

fn parse(text: &str) -> Vec<NotifyConfig> {
    toml::from_str::<File>(text).unwrap().notify
}

fn one(text: &str) -> NotifyConfig {
    parse(&format!("[[notify]]\n{text}")).remove(0)
}

fn messages(config: &NotifyConfig) -> Vec<String> {
    config.check().into_iter().map(|p| p.message).collect()
}

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

const MATRIX: &str = r##"
kind = "matrix"
homeserver = "https://matrix.example.org"
room = "#factory-ops:example.org"
token_env = "RETORT_MATRIX_TOKEN"
on = ["escalate", "finding"]
min_priority = "P1"
repeat = "30m"
"##;

#[test]
fn a_matrix_table_resolves_to_a_target_with_its_token() {
    let config = one(MATRIX);
    assert_eq!(messages(&config), Vec::<String>::new());
    let target = config
        .resolve(env(&[("RETORT_MATRIX_TOKEN", "syt_s3cr3t\n")]))
        .unwrap();
    let Destination::Matrix(room) = &target.destination else {
        panic!("not matrix: {target:?}");
    };
    assert_eq!(room.homeserver, "https://matrix.example.org");
    assert_eq!(room.room, "#factory-ops:example.org");
    assert_eq!(room.token.expose(), "syt_s3cr3t");
    assert_eq!(
        target.policy,
        Policy {
            on: [EventKind::Escalate, EventKind::Finding]
                .into_iter()
                .collect(),
            min_priority: Some(Priority::P1),
            repeat: Duration::from_secs(30 * 60),
        }
    );
    assert!(!format!("{target:?}").contains("s3cr3t"));
}

#[test]
fn defaults_are_every_kind_every_priority_every_four_hours() {
    let config = one("kind = \"webhook\"\nurl = \"https://hooks.example.org/x\"");
    assert_eq!(config.policy(), Policy::default());
    assert_eq!(config.policy().repeat, Duration::from_secs(4 * 3600));
    assert_eq!(config.policy().on.len(), 5);
}

#[test]
fn an_unset_token_variable_is_named_and_located() {
    let text = format!("[[notify]]\n{MATRIX}");
    let config = parse(&text).remove(0);
    let problems = config.resolve(env(&[])).unwrap_err();
    assert_eq!(problems.len(), 1);
    assert_eq!(
        problems[0].message,
        "the environment variable RETORT_MATRIX_TOKEN (`token_env`) is not set"
    );
    let at = problems[0].span.clone().unwrap();
    assert_eq!(&text[at], "\"RETORT_MATRIX_TOKEN\"");
}

#[test]
fn missing_and_foreign_keys_are_reported_together() {
    let config = one(
        "kind = \"matrix\"\nhomeserver = \"https://m.example.org\"\nurl = \"https://h.example.org\"",
    );
    assert_eq!(
        messages(&config),
        [
            "a matrix target needs `room`",
            "a matrix target needs `token_env`",
            "`url` is not a key of a matrix target",
        ]
    );
    let webhook = one("kind = \"webhook\"\ntoken_env = \"T\"");
    assert_eq!(
        messages(&webhook),
        [
            "`token_env` is not a key of a webhook target",
            "a webhook target needs `url`",
        ]
    );
}

#[test]
fn unknown_keys_and_kinds_are_parse_errors() {
    let err = toml::from_str::<File>("[[notify]]\nkind = \"matrix\"\nrom = \"!a:b\"")
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("unknown field `rom`"), "{err}");
    let err = toml::from_str::<File>("[[notify]]\nkind = \"slack\"")
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("unknown variant `slack`"), "{err}");
    let err = toml::from_str::<File>("[[notify]]\nkind = \"webhook\"\nrepeat = \"soon\"")
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("`soon` is not a duration"), "{err}");
    let err = toml::from_str::<File>("[[notify]]\nkind = \"webhook\"\non = [\"escalated\"]")
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("unknown variant `escalated`"), "{err}");
}

#[test]
fn bad_values_are_reported_without_repeating_secrets() {
    let config = one(
        "kind = \"matrix\"\nhomeserver = \"matrix.example.org\"\nroom = \"ops\"\ntoken_env = \"syt-abc.def\"",
    );
    let problems = messages(&config);
    assert_eq!(
        problems,
        [
            "`homeserver` is not an http:// or https:// URL",
            "room `ops` is neither a Matrix room id nor a room alias",
            "`token_env` is not the name of an environment variable",
        ]
    );
    assert!(!problems.concat().contains("syt-abc"));
}

#[test]
fn webhook_headers_and_body_are_checked() {
    let config = one(r#"kind = "webhook"
url = "https://hooks.example.org/x"
body = '{"text": {{ event.titel | json }}}'
headers_env = { "Bad Header" = "OK_NAME", "X-Key" = "not a name" }
on = []"#);
    let problems = messages(&config);
    assert_eq!(problems.len(), 4, "{problems:#?}");
    assert!(
        problems[0].starts_with("the webhook `body` template does not render")
            && problems[0].contains("titel"),
        "{}",
        problems[0]
    );
    assert_eq!(
        problems[1],
        "`Bad Header` in `headers_env` is not an HTTP header name"
    );
    assert_eq!(
        problems[2],
        "`headers_env` entry `X-Key` is not the name of an environment variable"
    );
    assert_eq!(
        problems[3],
        "`on` is empty: this target would never be sent anything"
    );
}

#[test]
fn webhook_headers_are_read_from_the_environment() {
    let config = one(r#"kind = "webhook"
url = "https://hooks.example.org/x"
headers_env = { "Authorization" = "HOOK_AUTH" }"#);
    let target = config.resolve(env(&[("HOOK_AUTH", "Bearer abc")])).unwrap();
    let Destination::Webhook(hook) = &target.destination else {
        panic!("not a webhook");
    };
    assert_eq!(hook.headers[0].0, "Authorization");
    assert_eq!(hook.headers[0].1.expose(), "Bearer abc");
    assert_eq!(hook.body_template, None);
}

#[test]
fn the_json_schema_documents_every_key() {
    let schema = serde_json::to_value(schemars::schema_for!(NotifyConfig)).unwrap();
    let properties = schema["properties"].as_object().unwrap();
    let keys: Vec<&str> = properties.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "body",
            "headers_env",
            "homeserver",
            "kind",
            "min_priority",
            "on",
            "repeat",
            "room",
            "token_env",
            "url"
        ]
    );
    for (key, value) in properties {
        assert!(
            value.get("description").is_some(),
            "{key} has no description"
        );
    }
}
