//! Times each stage of the checker on one file (a profiling aid).
use serde::Deserialize;
use std::time::Instant;
fn main() {
    let Some(path) = std::env::args().nth(1) else {
        return;
    };
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    let t = Instant::now();
    let (mut doc, errs) = toml::de::DeTable::parse_recoverable(&text);
    println!(
        "parse_recoverable {:?} ({} errors)",
        t.elapsed(),
        errs.len()
    );
    let t = Instant::now();
    let s = retort_engine::structure::check(&doc, retort_engine::check::formula_shape());
    println!(
        "structure {:?} ({} problems)",
        t.elapsed(),
        s.problems.len()
    );
    retort_engine::structure::repair(&mut doc, &s.removals);
    let t = Instant::now();
    let Ok(f) = retort_engine::formula::Formula::deserialize(toml::de::Deserializer::from(doc))
    else {
        return;
    };
    println!("serde {:?}", t.elapsed());
    let t = Instant::now();
    let Ok(d) = retort_engine::dag::StepDag::check(&f) else {
        return;
    };
    println!("dag {:?} ({} steps)", t.elapsed(), d.order().len());
    let t = Instant::now();
    let f2: Result<retort_engine::formula::Formula, _> = toml::from_str(&text);
    println!(
        "toml::from_str alone {:?} {}",
        t.elapsed(),
        f2.map(|f| f.steps.len()).unwrap_or(0)
    );
    let t = Instant::now();
    let c = retort_engine::check::check_source(
        std::path::Path::new("x"),
        text.clone(),
        &retort_engine::check::CheckOptions {
            vars: Default::default(),
            cwd: ".".into(),
            purpose: retort_engine::check::Purpose::Authoring,
        },
    );
    println!("check_source {:?} {}", t.elapsed(), c.problems.len());
}
