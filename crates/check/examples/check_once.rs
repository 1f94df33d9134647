//! Checks one file, once or `TIMES` times (for profilers such as callgrind
//! and perf): `check_once FILE [TIMES]`.
fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        return;
    };
    let times: usize = args.next().and_then(|t| t.parse().ok()).unwrap_or(1);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return;
    };
    let options = retort_check::check::CheckOptions {
        vars: Default::default(),
        cwd: ".".into(),
        purpose: retort_check::check::Purpose::Authoring,
    };
    for _ in 0..times {
        let checked =
            retort_check::check::check_source(std::path::Path::new(&path), text.clone(), &options);
        println!("{} problems", checked.problems.len());
    }
}
