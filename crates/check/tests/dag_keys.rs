//! The DAG execution keys: `max_parallel`, `on_failure`, the run `timeout`,
//! step `session`, `when`, `retries`, `retry_delay`, and `steps.ID` in
//! templates and conditions, for ancestors only.

use std::path::Path;
use std::time::Duration;

use miette::Diagnostic;
use retort_check::parse_source;
use retort_formula::diagnostic::FormulaError;
use retort_formula::formula::{DEFAULT_MAX_PARALLEL, DEFAULT_RUN_TIMEOUT, OnFailure};

const DIAMOND: &str = r#"
name = "diamond"
[[steps]]
id = "a"
description = "start"
[[steps]]
id = "b"
description = "B"
needs = ["a"]
[[steps]]
id = "c"
description = "C"
needs = ["a"]
[[steps]]
id = "d"
description = "D"
needs = ["b", "c"]
"#;

/// Every error of `text`: (message, located text, help).
fn errors(text: &str) -> Vec<(String, String, String)> {
    match parse_source(Path::new("f.toml"), text.to_string()) {
        Ok(_) => Vec::new(),
        Err(FormulaError::Invalid(invalid)) => invalid
            .problems
            .iter()
            .filter(|p| p.is_error())
            .map(|p| {
                let span = p.primary_span().expect("located");
                (
                    p.to_string(),
                    text[span.offset()..span.offset() + span.len()].to_string(),
                    p.help().map(|h| h.to_string()).unwrap_or_default(),
                )
            })
            .collect(),
        Err(other) => panic!("{other:?}"),
    }
}

#[test]
fn the_keys_parse_with_their_defaults() {
    let loaded = parse_source(Path::new("f.toml"), DIAMOND.to_string()).unwrap();
    let f = &loaded.formula;
    assert_eq!(f.max_parallel(), DEFAULT_MAX_PARALLEL);
    assert_eq!(f.on_failure, OnFailure::Stop);
    assert_eq!(f.run_timeout(), DEFAULT_RUN_TIMEOUT);
    assert_eq!(f.steps[0].retries, 0);
    assert_eq!(f.steps[0].retry_delay(), Duration::from_secs(30));

    let text = DIAMOND.replace(
        "name = \"diamond\"",
        "name = \"diamond\"\nmax_parallel = 2\non_failure = \"continue\"\ntimeout = \"10m\"",
    );
    let text = text.replace(
        "description = \"C\"",
        "description = \"C\"\nsession = \"x\"\nwhen = \"steps.a.outcome == 'done'\"\nretries = 2\nretry_delay = \"5s\"",
    );
    let loaded = parse_source(Path::new("f.toml"), text).unwrap();
    let f = &loaded.formula;
    assert_eq!(f.max_parallel(), 2);
    assert_eq!(f.on_failure, OnFailure::Continue);
    assert_eq!(f.run_timeout(), Duration::from_secs(600));
    let c = f.step("c").unwrap();
    assert_eq!(
        (c.session(), c.when(), c.retries, c.retry_delay()),
        (
            Some("x"),
            Some("steps.a.outcome == 'done'"),
            2,
            Duration::from_secs(5)
        )
    );
}

#[test]
fn max_parallel_zero_and_a_bad_on_failure_are_refused() {
    let found = errors(&DIAMOND.replace("name = \"diamond\"", "name = \"d\"\nmax_parallel = 0"));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].0.contains("`max_parallel` is 0"), "{found:?}");
    assert_eq!(found[0].1, "0");
    let found = errors(&DIAMOND.replace(
        "name = \"diamond\"",
        "name = \"d\"\non_failure = \"ignore\"",
    ));
    assert_eq!(found.len(), 1, "{found:?}");
}

#[test]
fn templates_see_steps_of_their_ancestors_only() {
    let good = DIAMOND.replace(
        "description = \"D\"",
        "description = \"B said {{ steps.b.output }}, a was {{ steps.a.outcome }}\"",
    );
    assert_eq!(errors(&good), Vec::new());

    let bad = DIAMOND.replace(
        "description = \"C\"",
        "description = \"B said {{ steps.b.output }}\"",
    );
    let found = errors(&bad);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].1, "steps.b");
    assert!(
        found[0].2.contains("step `b` is not an ancestor of `c`")
            && found[0].2.contains("the ancestors of `c` are: a"),
        "{found:?}"
    );

    let misspelt = DIAMOND.replace(
        "description = \"D\"",
        "description = \"{{ steps.bb.output }} {{ steps.b.outpt }}\"",
    );
    let found = errors(&misspelt);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].2.contains("did you mean `steps.b`?"), "{found:?}");
    assert!(found[1].2.contains("output"), "{found:?}");
}

#[test]
fn conditions_are_checked_like_rules_with_the_ancestors_in_steps() {
    let bad = DIAMOND.replace(
        "description = \"C\"",
        "description = \"C\"\nwhen = \"steps.b.outcome == 'done' && system.memory.availble_mb > 1\"",
    );
    let found = errors(&bad);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0].1, "b");
    assert!(
        found[0].0.starts_with("step `c`: `when` uses `steps.b`"),
        "{found:?}"
    );
    assert!(
        found[0].2.contains("the ancestors of `c` are: a"),
        "{found:?}"
    );
    assert_eq!(found[1].1, "availble_mb");
    assert!(
        found[1].2.contains("did you mean `available_mb`?"),
        "{found:?}"
    );
}
