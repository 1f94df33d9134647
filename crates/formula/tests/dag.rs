//! The step DAG: validation problems, cycle paths and topological order.

use retort_formula::dag::StepDag;
use retort_formula::diagnostic::Problem;
use retort_formula::formula::Formula;

fn formula(steps: &str) -> Formula {
    let text = format!("name = \"f\"\n{steps}");
    Formula::parse(&text).expect("well-formed formula")
}

fn step(id: &str, needs: &[&str]) -> String {
    let needs: Vec<String> = needs.iter().map(|n| format!("\"{n}\"")).collect();
    format!(
        "[[steps]]\nid = \"{id}\"\ndescription = \"do {id}\"\nneeds = [{}]\n",
        needs.join(", ")
    )
}

fn order(formula: &Formula) -> Vec<&str> {
    let dag = StepDag::check(formula).expect("valid DAG");
    dag.order().iter().map(|&i| formula.steps[i].id()).collect()
}

fn problems(formula: &Formula) -> Vec<String> {
    StepDag::check(formula)
        .expect_err("invalid DAG")
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn steps_already_in_order_run_in_file_order() {
    let f = formula(&[step("a", &[]), step("b", &["a"]), step("c", &["b"])].concat());
    assert_eq!(order(&f), ["a", "b", "c"]);
}

#[test]
fn a_step_runs_after_everything_it_needs_and_ties_go_to_the_earlier_step() {
    let f = formula(
        &[
            step("report", &["assess", "fix"]),
            step("assess", &[]),
            step("fix", &["assess"]),
            step("cleanup", &[]),
        ]
        .concat(),
    );
    assert_eq!(order(&f), ["assess", "fix", "report", "cleanup"]);
    let dag = StepDag::check(&f).unwrap();
    assert_eq!(dag.needs(0), [1, 2], "report needs assess and fix");
}

#[test]
fn a_cycle_is_named_as_its_whole_path_with_each_needs_entry() {
    let f = formula(&[step("a", &["c"]), step("b", &["a"]), step("c", &["b"])].concat());
    let problems = StepDag::check(&f).unwrap_err();
    assert_eq!(problems.len(), 1);
    let Problem::Cycle { path, edges } = &problems[0] else {
        panic!("expected a cycle, got {:?}", problems[0]);
    };
    assert_eq!(path, &["a", "c", "b", "a"]);
    let labels: Vec<&str> = edges.iter().filter_map(|e| e.label()).collect();
    assert_eq!(labels, ["`a` needs `c`", "`c` needs `b`", "`b` needs `a`"]);
    assert_eq!(problems[0].to_string(), "steps form a cycle: a → c → b → a");
}

#[test]
fn separate_cycles_are_each_reported() {
    let f = formula(
        &[
            step("a", &["b"]),
            step("b", &["a"]),
            step("ok", &[]),
            step("x", &["y"]),
            step("y", &["x", "ok"]),
        ]
        .concat(),
    );
    assert_eq!(
        problems(&f),
        [
            "steps form a cycle: a → b → a",
            "steps form a cycle: x → y → x"
        ]
    );
}

#[test]
fn unknown_and_self_needs_and_duplicates_are_all_reported_at_once() {
    let f = formula(
        &[
            step("health-assessment", &[]),
            step("report", &["health-asessment", "report", "weather"]),
            step("report", &[]),
        ]
        .concat(),
    );
    let problems = StepDag::check(&f).unwrap_err();
    let messages: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "duplicate step id `report`",
            "step `report` needs `health-asessment`, which is not a step of this formula",
            "step `report` needs itself",
            "step `report` needs `weather`, which is not a step of this formula",
        ]
    );
    let helps: Vec<String> = problems
        .iter()
        .filter_map(|p| match p {
            Problem::UnknownNeed { help, .. } => Some(help.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        helps,
        [
            "did you mean `health-assessment`?",
            "the steps are: health-assessment, report"
        ]
    );
}

#[test]
fn duplicate_ids_point_at_both_definitions() {
    let text = "name = \"f\"\n[[steps]]\nid = \"a\"\ndescription = \"x\"\n[[steps]]\nid = \"a\"\ndescription = \"y\"\n";
    let f = Formula::parse(text).unwrap();
    let problems = StepDag::check(&f).unwrap_err();
    let Problem::DuplicateStep { first, second, .. } = &problems[0] else {
        panic!("expected a duplicate, got {:?}", problems[0]);
    };
    assert_eq!(&text[first.offset()..first.offset() + first.len()], "\"a\"");
    assert_eq!(text[..first.offset()].lines().count(), 3, "first on line 3");
    assert_eq!(
        text[..second.offset()].lines().count(),
        6,
        "second on line 6"
    );
}

#[test]
fn a_formula_without_steps_or_with_an_empty_id_is_refused() {
    assert_eq!(problems(&formula("")), ["formula has no steps"]);
    let f = formula("[[steps]]\nid = \" \"\ndescription = \"x\"\n");
    assert_eq!(problems(&f), ["step id is empty"]);
}
