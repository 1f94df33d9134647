//! Checks one file once (for profilers such as callgrind).
fn main() {
    let Some(path) = std::env::args().nth(1) else {
        return;
    };
    let Ok(text) = std::fs::read_to_string(&path) else {
        return;
    };
    let options = retort_engine::check::CheckOptions {
        vars: Default::default(),
        cwd: ".".into(),
        purpose: retort_engine::check::Purpose::Authoring,
    };
    let checked = retort_engine::check::check_source(std::path::Path::new(&path), text, &options);
    println!("{} problems", checked.problems.len());
}
