//! Rules: what `RuleSet::check` reports, located in the formula file, and
//! what evaluating rules against a snapshot yields.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{TimeZone, Utc};
use miette::Diagnostic;
use retort_check::check::{CheckOptions, Purpose, check_source};
use retort_check::parse_source;
use retort_decide::ruleset::{RuleSet, RuleStatus};
use retort_formula::diagnostic::{Problem, RuleProblem};
use retort_formula::formula::Formula;
use retort_preflight::{CollectorStatus, Disk, Snapshot, TmuxSession};
use support::describe;

const STEP: &str = "[[steps]]\nid = \"look\"\ndescription = \"Look.\"\n";

/// A problem as `line:column: message [label text] (help)`.
fn problems(rules: &str) -> Vec<String> {
    let text = format!("name = \"f\"\n{STEP}{rules}");
    let formula = Formula::parse(&text).expect("well-formed");
    let problems = RuleSet::check(&formula, &text).expect_err("invalid rules");
    problems.iter().map(|p| describe(&text, p)).collect()
}

fn rule(id: &str, body: &str) -> String {
    format!("[[rules]]\nid = \"{id}\"\npriority = \"P0\"\nmessage = \"m\"\n{body}\n")
}

#[test]
fn a_misspelt_field_points_at_itself_with_the_right_one_suggested() {
    assert_eq!(
        problems(&rule(
            "memory-crisis",
            "when = \"system.swap.used_mb > 3072 && system.memory.availble_mb < 2000\""
        )),
        [
            "9:53: rule `memory-crisis`: the snapshot has no `system.memory.availble_mb` [availble_mb] (did you mean `available_mb`?)"
        ]
    );
}

#[test]
fn cel_syntax_errors_are_located_in_the_file_even_in_multi_line_strings() {
    assert_eq!(
        problems(&rule(
            "broken",
            "when = '''\nsystem.memory.available_mb <\n  < 500'''"
        )),
        [
            "11:3: rule `broken`: `when` is not a valid CEL expression: extraneous input '<' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER} [<] (CEL reads like C: `system.memory.available_mb < 500 && system.swap.used_mb > 3072`; strings take quotes, `'ok'`)"
        ]
    );
}

#[test]
fn every_problem_of_every_rule_and_action_is_reported_at_once_in_file_order() {
    let rules = [
        rule("a", "when = \"sytem.memory.available_mb < 500\""),
        rule(
            "a",
            "when = \"item.used_percent > 80\"\naction = \"free-memroy\"",
        ),
        rule("c", "each = \"system.memory\"\nwhen = \"true\"\nfor = 0"),
        rule("d", "when = \"true\"\nlabel = \"item.name\""),
        "[[rules]]\nid = \"e\"\npriority = \"P1\"\nwhen = \"true\"\nmessage = \"{{ broken\"\n"
            .to_string(),
        "[[actions]]\nid = \"free-memory\"\nrun = []\n".to_string(),
    ]
    .concat();
    let found = problems(&rules);
    let expected = [
        "9:9: rule `a`: `when` uses `sytem`, which is not a variable [sytem] (did you mean `system`?)",
        "6:6: duplicate rule id `a` [\"a\"] (rule ids must be unique within a formula: rename one of the two)",
        "14:9: rule `a`: `when` uses `item`, which is not a variable [item]",
        "15:10: rule `a` names action `free-memroy`, which is not an [[actions]] id [\"free-memroy\"] (did you mean `free-memory`?)",
        "20:8: rule `c`: `each` must give a list, but this is a table [\"system.memory\"]",
        "20:8: rule `c`: a rule with `each` needs a `label` [\"system.memory\"]",
        "22:7: rule `c`: `for` must be at least 1 [0]",
        "28:9: rule `d`: `label` names the items of `each`, and this rule has no `each`",
        "33:11: rule `e`: `message` is not a valid template",
        "36:7: action `free-memory` has an empty `run` [[]]",
    ];
    assert_eq!(found.len(), expected.len(), "{found:#?}");
    let found_all = &found;
    for (found, expected) in found.iter().zip(expected) {
        assert!(
            found.starts_with(expected),
            "{found}\n  expected {expected}\n{found_all:#?}"
        );
    }
    assert!(
        found[2].contains("`item` is the list item of a rule with `each`"),
        "{}",
        found[2]
    );
}

#[test]
fn a_value_with_escapes_is_pointed_at_as_a_whole() {
    assert_eq!(
        problems(&rule("esc", "when = \"system.memory.avail_mb < 5\\u0030\"")),
        [
            "9:8: rule `esc`: the snapshot has no `system.memory.avail_mb` [\"system.memory.avail_mb < 5\\u0030\"] (did you mean `available_mb`?)"
        ]
    );
}

#[test]
fn step_and_rule_problems_are_one_report_of_the_formula_check() {
    let text = format!(
        "name = \"f\"\n[[steps]]\nid = \"look\"\ndescription = \"x\"\nneeds = [\"nope\"]\n{}",
        rule("r", "when = \"system.disks.used_percent > 80\"")
    );
    let options = CheckOptions {
        vars: BTreeMap::new(),
        cwd: ".".into(),
        purpose: Purpose::Authoring,
    };
    let checked = check_source(Path::new("f.toml"), text, &options);
    let messages: Vec<String> = checked.problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "step `look` needs `nope`, which is not a step of this formula",
            "rule `r`: `system.disks.used_percent` selects a field of a list of tables",
        ]
    );
    assert!(checked.rules.is_none());
    let Problem::Rule(problem) = &checked.problems[1] else {
        panic!("a rule problem");
    };
    assert!(matches!(**problem, RuleProblem::NotAnObject { .. }));
    assert_eq!(
        problem.help().unwrap().to_string(),
        "`system.disks` is a list: test its items with `system.disks.exists(x, x.used_percent …)` or `system.disks.all(x, …)`, or write a rule over it with `each = \"system.disks\"` and `item.used_percent`"
    );
    assert_eq!(
        problem.code().unwrap().to_string(),
        "retort::rule::not_an_object"
    );
    assert!(checked.problems[1].is_error());
}

#[test]
fn vars_in_rules_are_checked_against_the_declared_ones_and_count_as_used() {
    let declared = "[vars]\nram_floor = \"500\"\nunused = \"x\"\n";
    let text = format!(
        "name = \"f\"\n{declared}{STEP}{}",
        rule(
            "r",
            "when = \"system.memory.available_mb < int(vars.ram_floor) && vars.ram_flor == ''\""
        )
    );
    let options = CheckOptions {
        vars: BTreeMap::new(),
        cwd: ".".into(),
        purpose: Purpose::Authoring,
    };
    let checked = check_source(Path::new("f.toml"), text, &options);
    let messages: Vec<String> = checked
        .problems
        .iter()
        .map(|p| {
            format!(
                "{p} ({})",
                p.help().map(|h| h.to_string()).unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert!(
        messages[0].starts_with("var `unused` is declared but never used"),
        "{messages:#?}"
    );
    assert_eq!(
        messages[1],
        "rule `r`: the formula's `[vars]` has no `vars.ram_flor` (did you mean `ram_floor`?)"
    );
}

/// A rule whose `message` is `message`, written in the file as given
/// (quotes included), on line 8 of the formula `problems` makes.
fn with_message(id: &str, message: &str, body: &str) -> String {
    rule(id, body).replace("message = \"m\"", &format!("message = {message}"))
}

const DISKS: &str =
    "each = \"system.disks\"\nlabel = \"item.mount\"\nwhen = \"item.used_percent > 80\"";

#[test]
fn a_misspelt_snapshot_path_in_a_message_points_at_itself_with_the_right_one_suggested() {
    assert_eq!(
        problems(&with_message(
            "memory-crisis",
            "\"RAM {{ system.memroy.available_mb }} MB\"",
            "when = \"system.memory.available_mb < 500\""
        )),
        [
            "8:19: the message of rule `memory-crisis` uses `system.memroy`, which is not in its template context [system.memroy] (did you mean `memory`?)"
        ]
    );
}

#[test]
fn a_misspelt_item_field_is_checked_against_the_items_of_each() {
    let cases = [
        (
            "\"Disk {{ item.mout }} at {{ item.used_percent }}%\"",
            DISKS.to_string(),
            "8:20",
        ),
        // On its own line of a multi-line string.
        (
            "\"\"\"\nDisk {{ item.used_percent }}%\n  on {{ item.mout }}\n\"\"\"",
            DISKS.to_string(),
            "10:9",
        ),
        // After escapes, at its own column.
        (
            "\"\\\"Disk\\\"\\t{{ item.mout }}\"",
            DISKS.to_string(),
            "8:25",
        ),
    ];
    for (message, body, place) in cases {
        assert_eq!(
            problems(&with_message("disk", message, &body)),
            [format!(
                "{place}: the message of rule `disk` uses `item.mout`, which is not in its template context [item.mout] (did you mean `mount`?)"
            )],
            "{message}"
        );
    }
    // The items of a filtered list are the list's items.
    assert_eq!(
        problems(&with_message(
            "idle",
            "\"Session {{ item.nmae }} idle\"",
            "each = \"tmux.sessions.filter(s, !s.attached)\"\nlabel = \"item.name\"\nwhen = \"true\""
        )),
        [
            "8:23: the message of rule `idle` uses `item.nmae`, which is not in its template context [item.nmae] (did you mean `name`?)"
        ]
    );
}

#[test]
fn item_in_the_message_of_a_rule_without_each_is_an_error_in_file_order() {
    assert_eq!(
        problems(&with_message(
            "r",
            "\"{{ item.mount }} full\"",
            "when = \"item.used_percent > 80\""
        )),
        [
            "8:15: the message of rule `r` uses `item`, which is not in its template context [item] (`item` is the list item of a rule with `each`; add `each = \"…\"` to check a list item by item)",
            "9:9: rule `r`: `when` uses `item`, which is not a variable [item] (`item` is the list item of a rule with `each`; add `each = \"…\"` to check a list item by item)",
        ]
    );
    assert_eq!(
        problems(&with_message(
            "r",
            "\"full: {{ label }}\"",
            "when = \"true\""
        )),
        [
            "8:21: the message of rule `r` uses `label`, which is not in its template context [label] (`label` names the list item of a rule with `each`; add `each = \"…\"` and `label = \"…\"` to check a list item by item)"
        ]
    );
}

#[test]
fn vars_in_messages_are_checked_against_the_declared_ones_and_count_as_used() {
    let text = format!(
        "name = \"f\"\n[vars]\nfloor = \"5\"\nspare = \"x\"\n{STEP}{}",
        with_message(
            "r",
            "\"below {{ vars.floor }} MB, {{ vars.flor }}\"",
            "when = \"true\""
        )
    );
    let options = CheckOptions {
        vars: BTreeMap::new(),
        cwd: ".".into(),
        purpose: Purpose::Authoring,
    };
    let checked = check_source(Path::new("f.toml"), text.clone(), &options);
    let found: Vec<String> = checked
        .problems
        .iter()
        .map(|p| describe(&text, p))
        .collect();
    assert_eq!(
        found,
        [
            // `floor`, read only by the message, is used; `spare` is not.
            "4:1: var `spare` is declared but never used [spare] (use it as {{ spare }} or {{ vars.spare }} in a step's description or the agent command, as {{ vars.spare }} in a rule message or an action command, or as vars.spare in a rule condition; or remove it)",
            "11:42: the message of rule `r` uses `vars.flor`, which is not in its template context [vars.flor] (did you mean `vars.floor`?)",
        ]
    );
    assert!(checked.rules.is_none(), "an unknown variable is an error");
    assert_eq!(
        checked.problems[1].code().unwrap().to_string(),
        "retort::unknown_variable"
    );
}

#[test]
fn names_a_message_binds_itself_are_not_checked_but_what_it_loops_over_is() {
    let text = format!(
        "name = \"f\"\n{STEP}{}",
        with_message(
            "disks",
            "\"{% for d in system.disks %}{{ d.mount }} {{ loop.index }}{% endfor %}{% set n = 3 %}{{ n }} {{ now }}\"",
            "when = \"true\""
        )
    );
    let formula = Formula::parse(&text).expect("well-formed");
    assert!(
        RuleSet::check(&formula, &text).is_ok(),
        "`d`, `loop` and `n` are the template's own"
    );
    assert_eq!(
        problems(&with_message(
            "disks",
            "\"{% for d in system.dsks %}{{ d.mount }}{% endfor %}\"",
            "when = \"true\""
        )),
        [
            "8:24: the message of rule `disks` uses `system.dsks`, which is not in its template context [system.dsks] (did you mean `disks`?)"
        ]
    );
}

#[test]
fn items_of_unknown_shape_take_any_path_but_item_itself_is_checked() {
    let computed =
        "each = \"system.disks.map(d, {'m': d.mount})\"\nlabel = \"item.m\"\nwhen = \"true\"";
    assert_eq!(
        problems(&with_message(
            "computed",
            "\"{{ item.m }} {{ item.any.depth[0] }} {{ label }} {{ itme.m }}\"",
            computed
        )),
        [
            "8:64: the message of rule `computed` uses `itme`, which is not in its template context [itme] (did you mean `item`?)"
        ]
    );
}

fn snapshot() -> Snapshot {
    let at = Utc.with_ymd_and_hms(2026, 11, 21, 11, 20, 0).unwrap();
    let mut s = Snapshot {
        collected_at: at,
        hostname: "factory".into(),
        ..Default::default()
    };
    s.system.status = CollectorStatus::Ok;
    s.system.memory.available_mb = 300;
    s.system.memory.total_mb = 8000;
    s.system.disks = vec![
        Disk {
            mount: "/".into(),
            used_percent: 85,
            used_mb: 85,
            total_mb: 100,
        },
        Disk {
            mount: "/data".into(),
            used_percent: 40,
            used_mb: 40,
            total_mb: 100,
        },
        Disk {
            mount: "/srv".into(),
            used_percent: 91,
            used_mb: 91,
            total_mb: 100,
        },
    ];
    s.tmux.status = CollectorStatus::Unavailable;
    s.tmux.reason = Some("no tmux server is running".into());
    s.tmux.sessions = vec![TmuxSession {
        name: "dev-1".into(),
        last_activity: at - chrono::Duration::hours(5),
        idle_seconds: 5 * 3600,
        ..Default::default()
    }];
    s
}

const RULES: &str = r#"
[[rules]]
id = "memory-crisis"
priority = "P0"
when = "system.memory.available_mb < 500"
message = "RAM {{ system.memory.available_mb }} MB available"

[[rules]]
id = "disk-pressure"
priority = "P1"
each = "system.disks"
label = "item.mount"
when = "item.used_percent > 80"
message = "Disk {{ item.mount }} at {{ item.used_percent }}% ({{ label }})"

[[rules]]
id = "idle-session"
priority = "P4"
each = "tmux.sessions"
label = "item.name"
when = "now - item.last_activity > duration('3h')"
message = "idle"

[[rules]]
id = "tmux-down"
priority = "info"
when = "tmux.status != 'ok'"
message = "tmux: {{ tmux.reason }}"

[[rules]]
id = "threshold"
priority = "P2"
when = "system.memory.available_mb < int(vars.floor_mb)"
message = "below {{ vars.floor_mb }} MB"

[[rules]]
id = "not-a-bool"
priority = "P3"
when = "system.memory.available_mb"
message = "m"
"#;

#[test]
fn rules_yield_matches_per_item_and_say_why_others_were_not_evaluated() {
    let text = format!("name = \"f\"\n[vars]\nfloor_mb = \"a lot\"\n{STEP}{RULES}");
    let loaded = parse_source(Path::new("f.toml"), text).unwrap();
    let rules = RuleSet::build(&loaded).expect("valid rules");

    let vars = BTreeMap::from([("floor_mb".to_string(), "a lot".to_string())]);
    let evaluation = rules.evaluate(&snapshot(), &vars);
    let matches: Vec<(&str, &str)> = evaluation
        .matches
        .iter()
        .map(|m| (m.fingerprint.as_str(), m.message.as_str()))
        .collect();
    assert_eq!(
        matches,
        [
            ("memory-crisis", "RAM 300 MB available"),
            ("disk-pressure[/]", "Disk / at 85% (/)"),
            ("disk-pressure[/srv]", "Disk /srv at 91% (/srv)"),
            ("tmux-down", "tmux: no tmux server is running"),
        ]
    );
    assert_eq!(
        evaluation.matches[1].item.as_ref().unwrap()["used_mb"],
        85,
        "the item travels with its match"
    );
    let status: Vec<(&str, &RuleStatus)> = evaluation
        .rules
        .iter()
        .map(|r| (r.id.as_str(), &r.status))
        .collect();
    assert_eq!(status[0], ("memory-crisis", &RuleStatus::Evaluated));
    assert_eq!(
        status[2],
        (
            "idle-session",
            &RuleStatus::Skipped(
                "`tmux` was not collected (unavailable: no tmux server is running)".into()
            )
        ),
        "a rule over an uncollected section is not evaluated"
    );
    assert_eq!(status[3], ("tmux-down", &RuleStatus::Evaluated));
    assert_eq!(status[4].0, "threshold");
    assert!(
        matches!(status[4].1, RuleStatus::Failed(why) if why.starts_with("`when`: ")),
        "a var that is no number: {:?}",
        status[4]
    );
    assert!(
        matches!(status[5].1, RuleStatus::Failed(why) if why == "`when` gave a number `300`, not true or false"),
        "{:?}",
        status[5]
    );

    // With the variable set to a number, the threshold rule is decided by it.
    let vars = BTreeMap::from([("floor_mb".to_string(), "1000".to_string())]);
    let evaluation = rules.evaluate(&snapshot(), &vars);
    assert!(
        evaluation
            .matches
            .iter()
            .any(|m| m.fingerprint == "threshold" && m.message == "below 1000 MB")
    );
    assert_eq!(evaluation.rules[4].status, RuleStatus::Evaluated);
}

#[test]
fn a_message_that_cannot_be_rendered_is_kept_as_written_with_a_warning() {
    // The path exists in the snapshot's shape, but this snapshot has three
    // disks: only rendering finds that out.
    let text = format!(
        "name = \"f\"\n{STEP}{}",
        rule("m", "when = \"true\"").replace(
            "message = \"m\"",
            "message = \"{{ system.disks[7].mount }}\""
        )
    );
    let loaded = parse_source(Path::new("f.toml"), text).unwrap();
    let rules = RuleSet::build(&loaded).unwrap();
    let evaluation = rules.evaluate(&snapshot(), &BTreeMap::new());
    assert_eq!(evaluation.matches[0].message, "{{ system.disks[7].mount }}");
    assert_eq!(evaluation.warnings.len(), 1);
    assert!(
        evaluation.warnings[0].starts_with("rule `m`: the message could not be rendered"),
        "{}",
        evaluation.warnings[0]
    );
}

#[test]
fn the_formula_schema_describes_rules_actions_and_the_gate() {
    let schema =
        serde_json::to_value(schemars::schema_for!(retort_formula::formula::Formula)).unwrap();
    let text = schema.to_string();
    let defs = &schema["$defs"];
    let rule = &defs["Rule"]["properties"];
    for key in [
        "id", "priority", "when", "message", "each", "label", "for", "repeat", "action",
    ] {
        assert!(rule.get(key).is_some(), "rule key {key}: {text}");
    }
    let action = &defs["Action"]["properties"];
    for key in ["id", "run", "mode", "timeout", "cooldown"] {
        assert!(action.get(key).is_some(), "action key {key}: {text}");
    }
    assert!(
        defs["GateSection"]["properties"].get("agent").is_some(),
        "{text}"
    );
    for word in ["\"P0\"", "\"info\"", "\"on-new-findings\"", "\"propose\""] {
        assert!(text.contains(word), "{word}: {text}");
    }
}

#[test]
fn deeply_bracketed_rules_are_checked_and_evaluated_without_overflowing_the_stack() {
    let deep = format!(
        "{}system.memory.available_mb < 500{}",
        "(".repeat(32),
        ")".repeat(32)
    );
    let text = format!(
        "name = \"f\"\n{STEP}{}",
        rule("deep", &format!("when = \"{deep}\""))
    );
    let loaded = parse_source(Path::new("f.toml"), text).unwrap();
    let rules = RuleSet::build(&loaded).expect("32 brackets are allowed");
    let evaluation = rules.evaluate(&snapshot(), &BTreeMap::new());
    assert_eq!(evaluation.matches.len(), 1);

    let deeper = format!("{}true{}", "(".repeat(33), ")".repeat(33));
    let found = problems(&rule("deeper", &format!("when = \"{deeper}\"")));
    assert_eq!(found.len(), 1);
    assert!(
        found[0].starts_with("9:41: rule `deeper`: `when` is not a valid CEL expression: brackets nest more than 32 deep here"),
        "{}",
        found[0]
    );
}

#[test]
fn the_deepest_allowed_expression_evaluates_on_a_small_stack() {
    // `a + 0 + 0 …` is a left-leaning tree: 60 terms are 61 levels deep.
    let sum = format!("system.memory.available_mb{} < 500", " + 0".repeat(59));
    let text = format!(
        "name = \"f\"\n{STEP}{}",
        rule("sum", &format!("when = \"{sum}\""))
    );
    let loaded = parse_source(Path::new("f.toml"), text).unwrap();
    let rules = RuleSet::build(&loaded).expect("within the depth limit");
    let evaluation = rules.evaluate(&snapshot(), &BTreeMap::new());
    assert_eq!(evaluation.rules[0].status, RuleStatus::Evaluated);
    assert_eq!(evaluation.matches.len(), 1);
    let too_deep = format!("system.memory.available_mb{} < 500", " + 0".repeat(70));
    let found = problems(&rule("sum", &format!("when = \"{too_deep}\"")));
    assert!(
        found[0].contains("the expression nests 74 operations deep; at most 64"),
        "{found:?}"
    );
}

#[test]
fn arbitrary_expressions_and_templates_never_panic_the_checker() {
    // A fixed-seed xorshift: the same 400 inputs every run.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let pieces = [
        "system",
        ".",
        "memory",
        "available_mb",
        "item",
        "disks",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        " < ",
        " && ",
        " || ",
        "!",
        "-",
        "1",
        "2.5",
        "'x'",
        "\"",
        "'",
        "\\",
        "now",
        "duration('1h')",
        ".exists(d, d.",
        "tmux.sessions",
        "size(",
        ",",
        ":",
        "?",
        "{{",
        "}}",
        "{%",
        "%}",
        "vars.x",
        "日",
        "\u{0}",
        "has(",
        "r'",
        "b'",
        ".filter(s, ",
        "0x",
        "1e9",
        "u",
        "in",
    ];
    for _ in 0..400 {
        let length = next() % 12;
        let text: String = (0..length)
            .map(|_| pieces[(next() % pieces.len() as u64) as usize])
            .collect();
        let literal = text.replace(['\'', '\\'], "");
        let rules = format!(
            "[[rules]]\nid = \"r\"\npriority = \"P1\"\nwhen = '{literal}'\nmessage = '{literal}'\neach = '{literal}'\nlabel = '{literal}'\n"
        );
        let source = format!("name = \"f\"\n{STEP}{rules}");
        if let Ok(loaded) = parse_source(Path::new("f.toml"), source.clone()) {
            match RuleSet::check(&loaded.formula, &source) {
                Ok(rules) => {
                    rules.evaluate(&snapshot(), &BTreeMap::new());
                }
                Err(problems) => {
                    for problem in &problems {
                        describe(&source, problem);
                    }
                }
            }
        }
    }
}
