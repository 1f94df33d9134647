//! Property tests: whatever bytes a formula file holds, the parser and the
//! checker return problems instead of panicking, and every problem points
//! inside the file. Bounded (a few hundred cases each) so that CI runs them
//! on every change; raise `PROPTEST_CASES` to search longer locally.

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;
use retort_check::check::{CheckOptions, Checked, Purpose, check_source};

fn check(text: &str) -> Checked {
    let options = CheckOptions {
        vars: BTreeMap::from([("X".to_string(), "1".to_string())]),
        cwd: ".".into(),
        purpose: Purpose::Run,
    };
    let checked = check_source(Path::new("fuzz.toml"), text.to_string(), &options);
    for problem in &checked.problems {
        let _ = problem.to_string();
        if let Some(span) = problem.primary_span() {
            assert!(
                span.offset() + span.len() <= text.len(),
                "{problem} points past the end ({} + {} > {})",
                span.offset(),
                span.len(),
                text.len()
            );
        }
    }
    if let (Some(formula), Some(dag)) = (&checked.formula, &checked.dag) {
        let _ = retort_formula::graph::text(formula, dag);
        let _ = retort_formula::graph::mermaid(formula, dag);
    }
    checked
}

/// Pieces formulas are made of, so that generated input reaches past the
/// TOML parser into the structure, DAG and template checks.
fn fragment() -> impl Strategy<Value = String> {
    let keys = prop::sample::select(vec![
        "name",
        "description",
        "version",
        "model",
        "raw",
        "id",
        "title",
        "needs",
        "need",
        "timeout",
        "files",
        "command",
        "X",
        "required",
        "default",
    ]);
    let values = prop::sample::select(vec![
        "\"a\"",
        "\"b\"",
        "\"\"",
        "[\"a\"]",
        "[\"a\", \"b\"]",
        "[\"c\", 3]",
        "3",
        "-1",
        "true",
        "\"30m\"",
        "\"0s\"",
        "\"soon\"",
        "{ required = true }",
        "{ x = 1 }",
        "[]",
        "\"{{ preflight.system.memory.available_mb }}\"",
        "\"{{ vars.X }}\"",
        "\"{{ vars.Y.z }}\"",
        "\"{% for s in preflight.tmux.sessions %}{{ s.nme }}{% endfor %}\"",
        "\"{{ a[ }}\"",
        "\"{{\"",
        "\"{% if %}\"",
        "'''{{.Names}}'''",
        "\"\\\\(x\\\\)\"",
        "\"\\(x\\)\"",
        "\"\"\"\nmulti {{ step.id }}\n\"\"\"",
    ]);
    let headers = prop::sample::select(vec![
        "[[steps]]",
        "[vars]",
        "[context]",
        "[agent]",
        "[steps]",
        "[[vars]]",
        "",
    ]);
    prop_oneof![
        (keys, values).prop_map(|(k, v)| format!("{k} = {v}\n")),
        headers.prop_map(|h| format!("{h}\n")),
        "[ -~]{0,20}\n",
    ]
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        check(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn arbitrary_formula_shaped_text_never_panics(pieces in prop::collection::vec(fragment(), 0..30)) {
        check(&pieces.concat());
    }

    #[test]
    fn arbitrary_templates_never_panic(template in "[a-zé→{}%#|.\\[\\]()=\"' _0-9\n-]{0,80}") {
        let text = format!("name = \"t\"\n[vars]\nX = \"1\"\n[[steps]]\nid = \"s\"\ndescription = '''{template}'''\n");
        check(&text);
    }

    #[test]
    fn action_templates_never_panic(template in "[a-zé→{}%#|.\\[\\]()=\"' _0-9\\\\\n-]{0,80}") {
        // Checked against a rule with `each` and one without, in a literal
        // element and in an escaped multi-line one.
        let literal = template.replace('\'', "");
        let escaped = template.replace('\\', "\\\\").replace('"', "\\\"");
        let text = format!(
            "name = \"t\"\n[[steps]]\nid = \"s\"\ndescription = \"d\"\n\
             [[rules]]\nid = \"a\"\npriority = \"P1\"\neach = \"system.disks\"\nlabel = \"item.mount\"\nwhen = \"true\"\nmessage = \"m\"\naction = \"x\"\n\
             [[rules]]\nid = \"b\"\npriority = \"P1\"\nwhen = \"true\"\nmessage = \"m\"\naction = \"x\"\n\
             [[actions]]\nid = \"x\"\nrun = ['''{literal}''', \"\"\"{escaped}\"\"\"]\n\
             [[actions]]\nid = \"y\"\nrun = ['''{literal}''']\n"
        );
        let checked = check(&text);
        prop_assert!(checked.formula.is_some(), "the actions were not reached: {text}");
    }

    #[test]
    fn templates_in_escaped_strings_never_panic(template in "[a-zé→{}%#|.()=' _0-9\\\\nt\"-]{0,80}") {
        let text = format!("name = \"t\"\n[[steps]]\nid = \"s\"\ndescription = \"\"\"{template}\"\"\"\n");
        check(&text);
    }
}
