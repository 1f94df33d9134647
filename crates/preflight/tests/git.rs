//! The git collector against real repositories: worktrees, a rebase in
//! progress, a merge in progress, a detached HEAD, ahead/behind an upstream.

mod support;

use std::path::Path;

use retort_preflight::{CollectorStatus, RepoConfig, collect};
use support::{age_file, git, git_command, init_repo, quiet_config};

fn repo_config(path: &Path, branch: Option<&str>) -> RepoConfig {
    RepoConfig {
        path: path.to_path_buf(),
        branch: branch.map(str::to_owned),
    }
}

#[tokio::test]
async fn branch_changes_upstream_and_worktrees() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // An upstream with one commit the clone lacks, and a clone with two the upstream lacks.
    let origin = init_repo(&d.join("origin"));
    git(d, &["clone", "-q", origin.to_str().unwrap(), "clone"]);
    let clone = d.join("clone");
    std::fs::write(origin.join("upstream.txt"), "u\n").unwrap();
    git(&origin, &["add", "."]);
    git(&origin, &["commit", "-q", "-m", "upstream"]);
    git(&clone, &["fetch", "-q"]);
    for n in 1..=2 {
        std::fs::write(clone.join(format!("local{n}.txt")), "l\n").unwrap();
        git(&clone, &["add", "."]);
        git(&clone, &["commit", "-q", "-m", "local"]);
    }
    // Changes: one modified, one staged new, one untracked.
    std::fs::write(clone.join("file.txt"), "changed\n").unwrap();
    std::fs::write(clone.join("staged.txt"), "s\n").unwrap();
    git(&clone, &["add", "staged.txt"]);
    std::fs::write(clone.join("untracked.txt"), "u\n").unwrap();
    // A linked worktree on a new branch, and a stray worktree-like directory.
    let linked = d.join("tmp-worktree-7");
    git(
        &clone,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "fix-7",
            linked.to_str().unwrap(),
        ],
    );
    std::fs::create_dir(d.join("stray-worktree-9")).unwrap();

    let mut config = quiet_config(d);
    config.git.enabled = true;
    config.git.repos = Some(vec![repo_config(&clone, Some("main"))]);
    config.git.worktree_globs = vec!["*-worktree-*".to_owned()];
    let snapshot = collect(&config).await;
    let section = &snapshot.git;
    assert_eq!(section.status, CollectorStatus::Ok, "{:?}", section.reason);
    let repo = &section.repos[0];
    assert_eq!(repo.status, CollectorStatus::Ok, "{:?}", repo.reason);
    assert_eq!(repo.root.as_deref(), Some(clone.to_str().unwrap()));
    assert_eq!(repo.branch.as_deref(), Some("main"));
    assert_eq!(repo.expected_branch.as_deref(), Some("main"));
    assert!(!repo.detached && !repo.rebase_in_progress && !repo.merge_in_progress);
    assert_eq!(
        repo.head.as_deref(),
        Some(git(&clone, &["rev-parse", "HEAD"]).trim())
    );
    assert_eq!(repo.changed_files, 3);
    assert_eq!(repo.untracked_files, 1);
    assert_eq!(repo.conflicted_files, 0);
    assert_eq!(repo.upstream.as_deref(), Some("origin/main"));
    assert_eq!((repo.ahead, repo.behind), (Some(2), Some(1)));

    assert_eq!(repo.worktrees.len(), 2);
    assert!(repo.worktrees[0].primary);
    assert_eq!(repo.worktrees[0].path, clone.to_str().unwrap());
    let wt = &repo.worktrees[1];
    assert_eq!(wt.path, linked.to_str().unwrap());
    assert_eq!(wt.branch.as_deref(), Some("fix-7"));
    assert!(!wt.primary && !wt.detached && !wt.prunable);
    assert!(wt.age_seconds.is_some_and(|age| age < 60), "{wt:?}");

    let dirs: Vec<&str> = section
        .worktree_dirs
        .iter()
        .map(|w| w.path.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(dirs, ["stray-worktree-9", "tmp-worktree-7"]);

    let markdown = snapshot.to_markdown();
    assert!(
        markdown.contains(&format!(
            "- **{}**: on `main` as expected; 3 changed files (1 untracked); 2 ahead, 1 behind `origin/main`",
            clone.display()
        )),
        "{markdown}"
    );
    assert!(
        markdown.contains(&format!(
            "  - worktree {}: `fix-7`, modified ",
            linked.display()
        )),
        "{markdown}"
    );
    assert!(
        markdown.contains("2 worktree directories matching `*-worktree-*`:"),
        "{markdown}"
    );

    // Removing the linked worktree's directory makes it prunable.
    std::fs::remove_dir_all(&linked).unwrap();
    let snapshot = collect(&config).await;
    let wt = &snapshot.git.repos[0].worktrees[1];
    assert!(wt.prunable, "{wt:?}");
    assert_eq!(wt.age_seconds, None);
}

#[tokio::test]
async fn rebase_merge_detached_and_wrong_branch() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // A rebase stopped at a conflict.
    let rebasing = init_repo(&d.join("rebasing"));
    git(&rebasing, &["checkout", "-q", "-b", "feature"]);
    std::fs::write(rebasing.join("file.txt"), "feature\n").unwrap();
    git(&rebasing, &["commit", "-q", "-am", "feature"]);
    git(&rebasing, &["checkout", "-q", "main"]);
    std::fs::write(rebasing.join("file.txt"), "main\n").unwrap();
    git(&rebasing, &["commit", "-q", "-am", "main"]);
    git(&rebasing, &["checkout", "-q", "feature"]);
    let status = git_command(&rebasing, &["rebase", "main"])
        .output()
        .unwrap();
    assert!(
        !status.status.success(),
        "the rebase should stop at the conflict"
    );

    // A merge stopped at a conflict, on a branch other than the expected one.
    let merging = init_repo(&d.join("merging"));
    git(&merging, &["checkout", "-q", "-b", "other"]);
    std::fs::write(merging.join("file.txt"), "other\n").unwrap();
    git(&merging, &["commit", "-q", "-am", "other"]);
    git(&merging, &["checkout", "-q", "-b", "topic", "main"]);
    std::fs::write(merging.join("file.txt"), "topic\n").unwrap();
    git(&merging, &["commit", "-q", "-am", "topic"]);
    let status = git_command(&merging, &["merge", "other"]).output().unwrap();
    assert!(
        !status.status.success(),
        "the merge should stop at the conflict"
    );

    // A detached HEAD.
    let detached = init_repo(&d.join("detached"));
    let head = git(&detached, &["rev-parse", "HEAD"]).trim().to_owned();
    git(&detached, &["checkout", "-q", &head]);

    // Not a repository at all.
    let plain = d.join("plain");
    std::fs::create_dir(&plain).unwrap();

    let mut config = quiet_config(d);
    config.git.enabled = true;
    config.git.repos = Some(vec![
        repo_config(&rebasing, None),
        repo_config(&merging, Some("main")),
        repo_config(Path::new("detached"), None),
        repo_config(&plain, None),
    ]);
    config.git.worktree_globs = vec![];
    let snapshot = collect(&config).await;
    let section = &snapshot.git;
    assert_eq!(section.status, CollectorStatus::Error);
    let reason = section.reason.as_deref().unwrap();
    assert!(reason.contains(&plain.display().to_string()), "{reason}");
    assert!(reason.contains("not a git repository"), "{reason}");

    let [r, m, h, p] = &section.repos[..] else {
        panic!("{:?}", section.repos)
    };
    assert!(
        r.rebase_in_progress && r.detached && !r.merge_in_progress,
        "{r:?}"
    );
    assert_eq!(r.branch, None);
    assert_eq!(r.conflicted_files, 1);
    assert!(m.merge_in_progress && !m.rebase_in_progress, "{m:?}");
    assert_eq!(m.branch.as_deref(), Some("topic"));
    assert_eq!(m.conflicted_files, 1);
    assert!(h.detached && !h.rebase_in_progress, "{h:?}");
    assert_eq!(h.head.as_deref(), Some(head.as_str()));
    assert_eq!(h.path, d.join("detached").display().to_string());
    assert_eq!(p.status, CollectorStatus::Error);

    let markdown = snapshot.to_markdown();
    assert!(markdown.contains("**detached HEAD** at "), "{markdown}");
    assert!(markdown.contains("**rebase in progress**"), "{markdown}");
    assert!(
        markdown.contains("on `topic`, **expected `main`**; **merge in progress**"),
        "{markdown}"
    );
    assert!(
        snapshot
            .health_summary()
            .iter()
            .any(|l| l.starts_with("Git: error: ")),
        "{:?}",
        snapshot.health_summary()
    );
}

#[tokio::test]
async fn by_default_the_working_directory_repository() {
    let dir = tempfile::tempdir().unwrap();
    let repo = init_repo(&dir.path().join("repo"));
    let sub = repo.join("sub");
    std::fs::create_dir(&sub).unwrap();
    age_file(&repo.join("file.txt"), 10);

    let mut config = quiet_config(&sub);
    config.git.enabled = true;
    let snapshot = collect(&config).await;
    assert_eq!(
        snapshot.git.status,
        CollectorStatus::Ok,
        "{:?}",
        snapshot.git.reason
    );
    assert_eq!(snapshot.git.repos.len(), 1);
    assert_eq!(snapshot.git.repos[0].path, repo.display().to_string());
    assert_eq!(snapshot.git.repos[0].branch.as_deref(), Some("main"));

    // Outside any repository: nothing to report, and a note saying why.
    let elsewhere = tempfile::tempdir().unwrap();
    let mut config = quiet_config(elsewhere.path());
    config.git.enabled = true;
    let snapshot = collect(&config).await;
    assert_eq!(snapshot.git.status, CollectorStatus::Ok);
    assert!(snapshot.git.repos.is_empty());
    assert!(
        snapshot
            .git
            .reason
            .as_deref()
            .unwrap()
            .contains("is not in a git repository"),
        "{:?}",
        snapshot.git.reason
    );
}
