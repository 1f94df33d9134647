//! Actions: what `retort check` reports of the variable paths of each
//! `run` element, checked against every rule that names the action and
//! located inside the element in the formula file.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use retort_check::check::{CheckOptions, Purpose, check_source};
use retort_decide::ruleset::RuleSet;
use retort_formula::formula::Formula;
use support::describe;

const STEP: &str = "[[steps]]\nid = \"look\"\ndescription = \"Look.\"\n";

/// The formula `problems` and `check` read: a step (lines 2–4), then
/// `rules`, from line 5 on.
fn formula(rules: &str) -> String {
    format!("name = \"f\"\n{STEP}{rules}")
}

/// Each problem of the rules and actions, as `line:column: message
/// [marked text] (help)`.
fn problems(rules: &str) -> Vec<String> {
    let text = formula(rules);
    let formula = Formula::parse(&text).expect("well-formed");
    match RuleSet::check(&formula, &text) {
        Ok(_) => Vec::new(),
        Err(problems) => problems.iter().map(|p| describe(&text, p)).collect(),
    }
}

/// The whole check of `formula(rules)`, as [`describe`] writes each problem.
fn check(rules: &str) -> Vec<String> {
    let text = formula(rules);
    let options = CheckOptions {
        vars: BTreeMap::new(),
        cwd: ".".into(),
        purpose: Purpose::Authoring,
    };
    let checked = check_source(Path::new("f.toml"), text.clone(), &options);
    checked
        .problems
        .iter()
        .map(|p| describe(&text, p))
        .collect()
}

/// Rule `dead-pane`, one finding per session with a dead pane, naming
/// `action`: lines 5–12.
fn sessions_rule(action: &str) -> String {
    format!(
        "[[rules]]\nid = \"dead-pane\"\npriority = \"P2\"\neach = \"tmux.sessions\"\nlabel = \"item.name\"\nwhen = \"item.panes.exists(p, p.dead)\"\nmessage = \"dead pane in {{{{ item.name }}}}\"\naction = \"{action}\"\n"
    )
}

/// Rule `id` without `each`, naming `action`: eight lines.
fn plain_rule(id: &str, action: &str) -> String {
    format!(
        "[[rules]]\nid = \"{id}\"\npriority = \"P0\"\nwhen = \"system.memory.available_mb < 500\"\nmessage = \"low\"\naction = \"{action}\"\n\n\n"
    )
}

/// Rule `disk-pressure`, one finding per disk, naming `action`: eight lines.
fn disks_rule(action: &str) -> String {
    format!(
        "[[rules]]\nid = \"disk-pressure\"\npriority = \"P1\"\neach = \"system.disks\"\nlabel = \"item.mount\"\nwhen = \"item.used_percent > 80\"\nmessage = \"disk\"\naction = \"{action}\"\n"
    )
}

/// Action `id` with the `run` array `run`, as written in the file, on the
/// line after its `[[actions]]` and `id`.
fn action(id: &str, run: &str) -> String {
    format!("[[actions]]\nid = \"{id}\"\nrun = {run}\n")
}

#[test]
fn a_misspelt_item_field_points_at_itself_inside_its_run_element() {
    let misspelt = "the `run` of action `kill` uses `item.nmae`, which the items of rule `dead-pane` (`tmux.sessions`) do not have [item.nmae] (did you mean `name`?)";
    let cases = [
        (
            r#"["tmux", "kill-session", "-t", "={{ item.nmae }}"]"#,
            "15:43",
        ),
        // An element on a line of its own, after escapes.
        (
            "[\n  \"tmux\",\n  \"kill-session\",\n  \"-t\",\n  \"\\\"=\\\"\\t{{ item.name }}{{ item.nmae }}\",\n]",
            "19:29",
        ),
        // A multi-line element, and a literal one before it.
        (
            "['sh', \"\"\"\necho {{ item.name }}\necho {{ finding.fingerprint }} {{ item.nmae }}\"\"\"]",
            "17:35",
        ),
    ];
    for (run, place) in cases {
        assert_eq!(
            problems(&format!("{}{}", sessions_rule("kill"), action("kill", run))),
            [format!("{place}: {misspelt}")],
            "{run}"
        );
    }
}

#[test]
fn finding_fields_are_checked_against_what_finding_holds() {
    let run = r#"["notify", "{{ finding.fingerprint }} {{ finding.label }} {{ finding.priority }} {{ finding.message }}", "{{ finding.rul }}", "{{ finding.rule.id }}"]"#;
    assert_eq!(
        problems(&format!(
            "{}{}",
            sessions_rule("notify"),
            action("notify", run)
        )),
        [
            "15:116: the `run` of action `notify` uses `finding.rul`, which is not in its template context [finding.rul] (did you mean `rule`?)",
            "15:137: the `run` of action `notify` uses `finding.rule.id`, which is not in its template context [finding.rule.id] (`finding.rule` is a string and has no fields)",
        ]
    );
}

#[test]
fn item_in_an_action_of_a_rule_without_each_is_an_error_naming_that_rule() {
    assert_eq!(
        problems(&format!(
            "{}{}",
            plain_rule("memory-crisis", "free"),
            action(
                "free",
                r#"["free-memory", "{{ item.name }}", "{{ label }}"]"#
            )
        )),
        [
            "15:27: the `run` of action `free` uses `item`, which rule `memory-crisis` does not give: it has no `each` [item] (in a `run` element, `item` is the list item of the rule with `each` whose finding triggers the action; give rule `memory-crisis` an `each`, or name action `free` only in rules with one)",
            "15:46: the `run` of action `free` uses `label`, which rule `memory-crisis` does not give: it has no `each` [label] (in a `run` element, `label` names the list item of the rule with `each` whose finding triggers the action; give rule `memory-crisis` an `each`, or name action `free` only in rules with one)",
        ]
    );
}

#[test]
fn an_action_named_by_two_rules_is_checked_against_each_and_reported_once() {
    let rules = [
        disks_rule("prune"),
        sessions_rule("prune"),
        action(
            "prune",
            r#"["prune", "{{ item.mount }}", "{{ item.mout }}", "{{ system.memroy }}"]"#,
        ),
    ]
    .concat();
    assert_eq!(
        problems(&rules),
        [
            // Fine for the disks, not for the sessions.
            "23:21: the `run` of action `prune` uses `item.mount`, which the items of rule `dead-pane` (`tmux.sessions`) do not have [item.mount] (the names here are: attached, created, idle_seconds, last_activity, name, panes, windows)",
            // Wrong for both: the first rule is named.
            "23:41: the `run` of action `prune` uses `item.mout`, which the items of rule `disk-pressure` (`system.disks`) do not have [item.mout] (did you mean `mount`?)",
            // Wrong whatever the rule: not tied to one.
            "23:60: the `run` of action `prune` uses `system.memroy`, which is not in its template context [system.memroy] (did you mean `memory`?)",
        ]
    );
    // A rule without `each` among them: `item` fails for that one only.
    let rules = [
        disks_rule("prune"),
        plain_rule("memory-crisis", "prune"),
        action("prune", r#"["prune", "{{ item.mount }}"]"#),
    ]
    .concat();
    let found = problems(&rules);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with(
            "23:21: the `run` of action `prune` uses `item`, which rule `memory-crisis` does not give: it has no `each` [item]"
        ),
        "{found:#?}"
    );
}

#[test]
fn vars_in_run_elements_are_checked_and_count_as_used() {
    let rules = format!(
        "[vars]\ncontainer = \"web\"\nspare = \"x\"\n{}{}",
        disks_rule("restart"),
        action(
            "restart",
            r#"["docker", "restart", "{{ vars.container }}", "{{ vars.contianer }}", "{{ vars.room }}"]"#
        )
    );
    assert_eq!(
        check(&rules),
        [
            // `container`, read only by the `run`, is used; `spare` is not.
            "7:1: var `spare` is declared but never used [spare] (use it as {{ spare }} or {{ vars.spare }} in a step's description or the agent command, as {{ vars.spare }} in a rule message or an action command, or as vars.spare in a rule condition; or remove it)",
            "18:57: the `run` of action `restart` uses `vars.contianer`, which is not in its template context [vars.contianer] (did you mean `vars.container`?)",
            "18:81: the `run` of action `restart` uses `vars.room`, which is not in its template context [vars.room] (declare it in [vars]: room = \"default value\")",
        ]
    );
}

#[test]
fn an_action_no_rule_names_is_checked_without_item() {
    assert_eq!(
        problems(&action(
            "orphan",
            r#"["echo", "{{ finding.rule }} {{ now }} {{ system.memory.available_mb }}", "{{ item.name }}", "{{ sytem.load }}"]"#
        )),
        [
            "7:85: the `run` of action `orphan` uses `item`, which no rule gives it: no rule names action `orphan` [item] (in a `run` element, `item` is the list item of the rule with `each` whose finding triggers the action; name action `orphan` in such a rule (`action = \"orphan\"`))",
            "7:104: the `run` of action `orphan` uses `sytem`, which is not in its template context [sytem] (did you mean `system`?)",
        ]
    );
}

#[test]
fn a_run_element_that_does_not_parse_is_pointed_at() {
    let found = problems(&format!(
        "{}{}",
        sessions_rule("kill"),
        action("kill", r#"["tmux", "kill-session", "{{ item.name "]"#)
    ));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with(
            "15:32: action `kill`: `run` is not a valid template: error: Unexpected end of input"
        ),
        "{found:#?}"
    );
    assert!(found[0].contains("[\"{{ item.name \"]"), "{found:#?}");
}

#[test]
fn good_actions_check_clean() {
    let rules = [
        disks_rule("prune"),
        sessions_rule("kill"),
        plain_rule("memory-crisis", "free"),
        action(
            "prune",
            r#"["prune", "{{ item.mount }}", "{{ label }}", "{{ finding.label }}"]"#,
        ),
        action(
            "kill",
            r#"["tmux", "kill-session", "-t", "={{ item.name }}", "{% for p in item.panes %}{{ p.pid }}{% endfor %}"]"#,
        ),
        action(
            "free",
            r#"["free", "{{ finding.fingerprint }}", "{{ system.memory.available_mb }}", "{{ now }}"]"#,
        ),
    ]
    .concat();
    assert_eq!(problems(&rules), Vec::<String>::new());
}
