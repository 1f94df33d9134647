//! Formulas written the way real factories write them (`tests/fixtures/`),
//! each with one class of what a new user meets: vars written bare, keys
//! meant for other tools, Go templates in shell lines, another engine's
//! dialect, several problems at once, places on lines with multi-byte
//! characters. Each is checked as `retort check` checks it, and its
//! diagnostics are exactly the true ones, each at its place.

use std::path::{Path, PathBuf};

use miette::Diagnostic;
use retort_check::check::{CheckOptions, Purpose, check_file};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// "LINE:COLUMN severity code" of each problem (column in characters),
/// and each problem's message and help.
fn check(name: &str) -> (Vec<String>, Vec<(String, String)>) {
    let options = CheckOptions {
        vars: Default::default(),
        cwd: Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"),
        purpose: Purpose::Authoring,
    };
    let checked = check_file(&fixture(name), &options).unwrap();
    let places = checked
        .problems
        .iter()
        .map(|p| {
            let (line, column) = checked
                .source
                .position(p.primary_span().map_or(0, |s| s.offset()));
            let severity = if p.is_error() { "error" } else { "warning" };
            let code = p.code().map(|c| c.to_string()).unwrap_or_default();
            format!("{line}:{column} {severity} {code}")
        })
        .collect();
    let texts = checked
        .problems
        .iter()
        .map(|p| {
            (
                p.to_string(),
                p.help().map(|h| h.to_string()).unwrap_or_default(),
            )
        })
        .collect();
    (places, texts)
}

#[test]
fn declared_vars_written_bare_are_in_the_context() {
    let (places, texts) = check("bare-vars.toml");
    // Only the true one: a required var `check` was given no value for.
    assert_eq!(places, ["10:7 warning retort::required_var"], "{texts:#?}");
}

#[test]
fn keys_for_other_tools_are_ignored_with_a_warning_and_tool_lists_are_keys() {
    let (places, texts) = check("foreign-keys.toml");
    assert_eq!(
        places,
        [
            "9:2 warning retort::ignored_key",
            "15:1 warning retort::ignored_key",
            "24:1 warning retort::ignored_key",
            "25:1 warning retort::ignored_key",
            "33:1 warning retort::ignored_key",
            "34:1 warning retort::ignored_key",
        ],
        "{texts:#?}"
    );
    assert_eq!(
        texts[0].0,
        "unknown key `project` in the top level is ignored"
    );
    assert!(texts[0].1.contains("[meta]"), "{:?}", texts[0]);
    assert_eq!(
        texts[2].0,
        "unknown key `stack_script` in [[steps]] \"survey\" is ignored"
    );
    let loaded = retort_check::load(&fixture("foreign-keys.toml")).expect("warnings only");
    let formula = &loaded.formula;
    let groom = formula.step("groom").unwrap();
    let survey = formula.step("survey").unwrap();
    let texts_of = |tools: &[toml::Spanned<String>]| -> Vec<String> {
        tools.iter().map(|t| t.get_ref().clone()).collect()
    };
    assert_eq!(
        texts_of(&formula.agent.allowed_tools),
        ["Read", "Bash(git log:*)", "Bash(tea issues:*)"]
    );
    assert_eq!(
        texts_of(&groom.allowed_tools),
        ["Read", "Bash(tea issues:*)", "Bash(tea labels:*)"],
        "a step's own tools, added to the formula's by the agent profile"
    );
    assert!(survey.allowed_tools.is_empty());
    assert_eq!(
        texts_of(&formula.agent.disallowed_tools),
        ["Bash(git push:*)"]
    );
}

#[test]
fn go_templates_pass_with_raw_and_get_both_fixes_without() {
    let (places, texts) = check("docker-go.toml");
    // The `raw` step is fine; the other cannot be rendered as it is.
    assert_eq!(
        places,
        ["19:32 error retort::template_syntax"],
        "{texts:#?}"
    );
    assert_eq!(
        texts[0].1,
        "`{{.Repository}}` is a Go template (as `docker --format` takes), not Tera: set `raw = true` in step `images` (or at the top of the formula for every step) to pass the description verbatim, or keep Tera for the rest and write {% raw %}{{.Repository}}{% endraw %}"
    );
}

#[test]
fn another_engines_dialect_gets_hints_and_its_missing_name_hides_nothing() {
    let (places, texts) = check("gastown.toml");
    assert_eq!(
        places,
        [
            "1:1 error retort::missing_key",
            "3:1 error retort::unknown_key",
            "7:1 warning retort::unused_var",
            "13:37 error retort::unknown_variable",
            "20:3 error retort::template_syntax",
        ],
        "{texts:#?}"
    );
    assert!(texts[1].1.starts_with("did you mean `name`?"), "{texts:#?}");
    assert_eq!(texts[3].1, "did you mean `reviewer`?");
    assert!(
        texts[4].1.starts_with(
            "`{{#each prs}}` is Handlebars, not Tera: a loop is {% for item in prs %}"
        ),
        "{texts:#?}"
    );
}

#[test]
fn a_bad_escape_a_misspelt_variable_and_an_unknown_need_in_one_run() {
    let (places, texts) = check("one-pass.toml");
    assert_eq!(
        places,
        [
            "10:63 error retort::toml",
            "17:13 error retort::unknown_variable",
            "19:20 error retort::formula::unknown_need",
        ],
        "{texts:#?}"
    );
    assert_eq!(texts[2].1, "the steps are: gather, summarise");
}

#[test]
fn places_after_multi_byte_characters_and_names_the_context_has() {
    let (places, texts) = check("places.toml");
    assert_eq!(
        places,
        [
            "6:1 error retort::var_name_taken",
            "6:1 warning retort::unused_var",
            "10:16 warning retort::not_a_template",
            // After `—` and `→`, three bytes each: column 44, not 48.
            "11:44 error retort::unknown_variable",
            "12:10 error retort::formula::cycle",
            "15:6 error retort::formula::duplicate_step",
        ],
        "{texts:#?}"
    );
    assert_eq!(
        texts[0].0,
        "var `step` has the name of the template context's `step`"
    );
    assert_eq!(
        texts[2].0,
        "the title of step `build` holds template syntax, but is shown verbatim"
    );
}

#[test]
fn a_config_file_beside_the_formulas_is_not_one() {
    let text = std::fs::read_to_string(fixture("config-only.toml")).unwrap();
    assert!(!retort_check::files::is_formula(&text));
    let found = retort_check::files::formula_files(&[fixture("")]).unwrap();
    assert_eq!(found.skipped, 1);
    let names: Vec<_> = found
        .formulas
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "bare-vars.toml",
            "docker-go.toml",
            "foreign-keys.toml",
            "gastown.toml",
            "one-pass.toml",
            "places.toml"
        ]
    );
}

#[test]
fn the_seed_formula_checks_clean() {
    // `shared/` beside the repository, else the repository's copy.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let seed = root.join("../shared/formulas/run-supervisor.toml");
    let path = match seed.exists() {
        true => seed.to_path_buf(),
        false => root.join("formulas/run-supervisor.toml"),
    };
    let options = CheckOptions {
        vars: Default::default(),
        cwd: Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf(),
        purpose: Purpose::Run,
    };
    let checked = check_file(&path, &options).unwrap();
    assert!(checked.problems.is_empty(), "{:#?}", checked.problems);
}
