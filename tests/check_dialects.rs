//! `retort check` on a repository as a new user meets it: formulas beside
//! `Cargo.toml` and configuration, keys for other tools, CI's `--deny
//! warnings`, and JSON that carries every labelled place, with columns
//! the text reports agree with.

mod support;

use std::path::Path;

use support::{Sandbox, stderr};

fn write(sandbox: &Sandbox, name: &str, text: &str) {
    let path = sandbox.work().join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("crates/check/tests/fixtures")
            .join(name),
    )
    .unwrap()
}

/// A repository: a crate, a tool's configuration, a formula with only
/// warnings (keys for other tools), build output in `target/`.
fn repository(sandbox: &Sandbox) {
    write(
        sandbox,
        "Cargo.toml",
        "[package]\nname = \"factory\"\nversion = \"0.1.0\"\n[dependencies]\nserde = \"1\"\n",
    );
    write(sandbox, "rustfmt.toml", "edition = \"2024\"\n");
    write(sandbox, "config/factory.toml", &fixture("config-only.toml"));
    write(
        sandbox,
        "formulas/gardener.toml",
        &fixture("foreign-keys.toml"),
    );
    write(
        sandbox,
        "target/CACHEDIR.TAG",
        "Signature: 8a477f597d28d172789f06886806bc55\n",
    );
    write(sandbox, "target/debug/broken.toml", "[[steps]]\nid = \"x\n");
    write(sandbox, ".git/config.toml", "[[steps]]\nid = \"x\n");
}

#[test]
fn check_dot_checks_only_the_formulas_and_says_what_it_skipped() {
    let sandbox = Sandbox::new();
    repository(&sandbox);

    let output = sandbox
        .retort(&["check", "."])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let report = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{report}");
    assert!(
        report.contains("checked 1 formula, skipped 3 other TOML files: 0 errors, 6 warnings"),
        "{report}"
    );
    assert!(
        report.contains("unknown key `stack_script` in [[steps]] \"survey\" is ignored"),
        "{report}"
    );
    for other in [
        "Cargo.toml",
        "rustfmt.toml",
        "factory.toml",
        "broken.toml",
        ".git",
    ] {
        assert!(!report.contains(other), "{other} in:\n{report}");
    }

    // A file named on the command line is checked, formula or not.
    let output = sandbox
        .retort(&["check", "config/factory.toml"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("the top level has no `name`"));
}

#[test]
fn deny_warnings_fails_the_check_on_warnings() {
    let sandbox = Sandbox::new();
    repository(&sandbox);

    let output = sandbox
        .retort(&["check", "formulas", "--deny", "warnings"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let report = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(
        report.contains("checked 1 formula: 0 errors, 6 warnings (denied)"),
        "{report}"
    );
    // Without warnings, nothing to deny.
    write(
        &sandbox,
        "clean/ok.toml",
        "name = \"ok\"\n[[steps]]\nid = \"a\"\ndescription = \"A\"\n",
    );
    let output = sandbox
        .retort(&["check", "clean", "--deny", "warnings"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn json_carries_every_label_with_the_columns_the_text_shows() {
    let sandbox = Sandbox::new();
    write(&sandbox, "places.toml", &fixture("places.toml"));

    let diagnostics = sandbox.check_json(&["places.toml"]);
    let all = diagnostics.as_array().unwrap();
    let find = |code: &str| {
        all.iter()
            .find(|d| d["code"] == code)
            .unwrap_or_else(|| panic!("no {code} in {all:#?}"))
    };
    let labels = |d: &serde_json::Value| -> Vec<(u64, u64, u64, u64, String)> {
        d["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["line"].as_u64().unwrap(),
                    l["column"].as_u64().unwrap(),
                    l["end_line"].as_u64().unwrap(),
                    l["end_column"].as_u64().unwrap(),
                    l["message"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let duplicate = find("retort::formula::duplicate_step");
    assert_eq!(
        labels(duplicate),
        [
            (15, 6, 15, 12, "first defined here".to_string()),
            (25, 6, 25, 12, "defined again here".to_string()),
        ]
    );
    let cycle = find("retort::formula::cycle");
    assert_eq!(
        labels(cycle),
        [
            (12, 10, 12, 16, "`build` needs `ship`".to_string()),
            (22, 10, 22, 16, "`ship` needs `test`".to_string()),
            (17, 10, 17, 17, "`test` needs `build`".to_string()),
        ]
    );
    assert_eq!(
        (cycle["line"].as_u64(), cycle["column"].as_u64()),
        (Some(12), Some(10))
    );
    // After `—` and `→` (three bytes each), in characters, as the text says.
    let unknown = find("retort::unknown_variable");
    assert_eq!(
        (
            unknown["line"].as_u64(),
            unknown["column"].as_u64(),
            unknown["end_column"].as_u64()
        ),
        (Some(11), Some(44), Some(67))
    );
    let output = sandbox
        .retort(&["check", "places.toml"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let report = stderr(&output);
    for d in all {
        let header = format!(
            "[places.toml:{}:{}]",
            d["line"].as_u64().unwrap(),
            d["column"].as_u64().unwrap()
        );
        assert!(report.contains(&header), "no {header} in:\n{report}");
    }
}
