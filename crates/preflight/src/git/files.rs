//! What the git collector reads from a repository's files instead of
//! starting `git`: where the working tree and the git directory are (what
//! `git rev-parse --show-toplevel --absolute-git-dir` prints) and the
//! worktrees (what `git worktree list --porcelain` prints).
//!
//! Only the plain layout is read: a `.git` directory, or a `.git` file
//! (`gitdir: PATH`) of a linked worktree, files refs with `packed-refs`, and
//! SHA-1 object names. Whenever a repository is anything else (bare, a
//! `core.worktree`, reftable refs, SHA-256, relative worktree paths,
//! `GIT_CEILING_DIRECTORIES`, a `.git` on another file system than the
//! directory asked about), these functions answer `None` and the collector
//! asks `git` itself, so a snapshot means the same whichever way it was
//! read. The rules followed are git's own: `setup.c` (discovery),
//! `worktree.c` (`get_worktrees`, `should_prune_worktree`, with
//! `git worktree list`'s expiry of "never": a linked worktree whose
//! directory is gone is prunable unless locked) and `refs/files-backend.c`
//! (loose refs first, then `packed-refs`).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The object name git prints for a branch with no commit yet (SHA-1).
const NULL_OID: &str = "0000000000000000000000000000000000000000";

/// Where a repository's working tree and git directories are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    /// The top of the working tree, symbolic links resolved (as
    /// `git rev-parse --show-toplevel` prints it).
    pub(crate) root: PathBuf,
    /// The git directory of this working tree (`.git`, or
    /// `.git/worktrees/NAME` for a linked one).
    pub(crate) git_dir: PathBuf,
    /// The directory shared by all worktrees (the main `.git`).
    pub(crate) common_dir: PathBuf,
}

/// One worktree as `git worktree list --porcelain` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListedWorktree {
    pub(crate) path: String,
    pub(crate) head: String,
    /// The full ref HEAD names (`refs/heads/main`); `None` when detached.
    pub(crate) branch: Option<String>,
    pub(crate) locked: bool,
    pub(crate) prunable: bool,
}

/// Finds the working tree holding `dir` as git does, by its `.git` entry,
/// or `None` when the repository is not of the plain layout (see the
/// module's documentation), or there is none.
pub(crate) fn layout(dir: &Path) -> Option<Layout> {
    if std::env::var_os("GIT_CEILING_DIRECTORIES").is_some() {
        return None;
    }
    let dir = std::fs::canonicalize(dir).ok()?;
    let device = std::fs::metadata(&dir).ok()?.dev();
    for ancestor in dir.ancestors() {
        if ancestor.file_name().is_some_and(|name| name == ".git") || is_git_dir(ancestor) {
            // Inside a git directory, or a bare repository: git decides.
            return None;
        }
        let dot_git = ancestor.join(".git");
        let Ok(metadata) = std::fs::metadata(&dot_git) else {
            continue;
        };
        if metadata.dev() != device {
            return None;
        }
        let git_dir = if metadata.is_dir() {
            dot_git
        } else {
            let text = std::fs::read_to_string(&dot_git).ok()?;
            let target = Path::new(text.strip_prefix("gitdir: ")?.trim_end());
            ancestor.join(target)
        };
        if !is_git_dir(&git_dir) {
            return None;
        }
        let common_dir = match std::fs::read_to_string(git_dir.join("commondir")) {
            Ok(text) => git_dir.join(text.trim_end()),
            Err(_) => git_dir.clone(),
        };
        let config = std::fs::read_to_string(common_dir.join("config"))
            .unwrap_or_default()
            .to_ascii_lowercase();
        // `core.worktree`, `extensions.worktreeConfig` (per-worktree
        // settings), reftable refs, SHA-256 or relative worktree paths.
        if [
            "worktree",
            "refstorage",
            "objectformat",
            "relativeworktrees",
        ]
        .iter()
        .any(|key| config.contains(key))
        {
            return None;
        }
        return Some(Layout {
            root: ancestor.to_path_buf(),
            git_dir,
            common_dir,
        });
    }
    None
}

/// Whether `dir` is itself a git directory (git's `is_git_directory`, in
/// short: a `HEAD` file beside `objects` and `refs`, or a linked
/// worktree's directory with its `commondir`).
fn is_git_dir(dir: &Path) -> bool {
    dir.join("HEAD").is_file()
        && (dir.join("commondir").is_file()
            || (dir.join("objects").is_dir() && dir.join("refs").is_dir()))
}

/// The repository's worktrees, the main one first and the linked ones by
/// path, as `git worktree list --porcelain` lists them; `None` when a file
/// is not as expected (then `git` is asked).
pub(crate) fn worktrees(layout: &Layout) -> Option<Vec<ListedWorktree>> {
    let common = &layout.common_dir;
    let main_path = std::fs::canonicalize(common).ok()?;
    let main_path = main_path.to_str()?.strip_suffix("/.git")?.to_owned();
    let mut all = vec![listed(common, common, main_path, false, false)?];

    let mut linked = Vec::new();
    let entries = match std::fs::read_dir(common.join("worktrees")) {
        Ok(entries) => entries.collect::<Result<Vec<_>, _>>().ok()?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(_) => return None,
    };
    for entry in entries {
        let dir = entry.path();
        if !dir.is_dir() {
            continue;
        }
        // git leaves out a worktree whose `gitdir` file is missing or empty.
        let Ok(text) = std::fs::read_to_string(dir.join("gitdir")) else {
            continue;
        };
        let dot_git = text.trim_end();
        if dot_git.is_empty() {
            continue;
        }
        if !dot_git.starts_with('/') {
            return None;
        }
        let path = dot_git.strip_suffix("/.git").unwrap_or(dot_git).to_owned();
        let locked = dir.join("locked").exists();
        let prunable = !locked && !Path::new(dot_git).exists();
        linked.push(listed(common, &dir, path, locked, prunable)?);
    }
    linked.sort_by(|a, b| a.path.cmp(&b.path));
    all.extend(linked);
    Some(all)
}

/// `worktrees` as `git worktree list --porcelain` prints them.
pub(crate) fn porcelain(worktrees: &[ListedWorktree]) -> String {
    let mut out = String::new();
    for worktree in worktrees {
        out.push_str(&format!(
            "worktree {}\nHEAD {}\n",
            worktree.path, worktree.head
        ));
        match &worktree.branch {
            Some(branch) => out.push_str(&format!("branch {branch}\n")),
            None => out.push_str("detached\n"),
        }
        if worktree.locked {
            out.push_str("locked\n");
        }
        if worktree.prunable {
            out.push_str("prunable\n");
        }
        out.push('\n');
    }
    out
}

/// One worktree whose own git directory (holding its `HEAD`) is `git_dir`.
fn listed(
    common: &Path,
    git_dir: &Path,
    path: String,
    locked: bool,
    prunable: bool,
) -> Option<ListedWorktree> {
    let head = std::fs::read_to_string(git_dir.join("HEAD")).ok()?;
    let head = head.trim_end();
    let (branch, head) = match head.strip_prefix("ref: ") {
        Some(name) => (Some(name.to_owned()), resolve(common, name, 0)?),
        None if is_oid(head) => (None, head.to_owned()),
        None => return None,
    };
    Some(ListedWorktree {
        path,
        head,
        branch,
        locked,
        prunable,
    })
}

/// The object name the ref `name` points at (a loose ref first, then
/// `packed-refs`), or the null name for a branch with no commit yet;
/// `None` when something is not as expected.
fn resolve(common: &Path, name: &str, depth: u8) -> Option<String> {
    if depth > 4 || !name.starts_with("refs/") || name.split('/').any(|part| part == "..") {
        return None;
    }
    match std::fs::read_to_string(common.join(name)) {
        Ok(text) => {
            let text = text.trim_end();
            return match text.strip_prefix("ref: ") {
                Some(target) => resolve(common, target, depth + 1),
                None if is_oid(text) => Some(text.to_owned()),
                None => None,
            };
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        // A directory where a file would be, or an unreadable file.
        Err(_) => return None,
    }
    let packed = match std::fs::read_to_string(common.join("packed-refs")) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(_) => return None,
    };
    let found = packed.lines().find_map(|line| {
        let (oid, refname) = line.split_once(' ')?;
        (refname == name && is_oid(oid)).then(|| oid.to_owned())
    });
    Some(found.unwrap_or_else(|| NULL_OID.to_owned()))
}

/// Whether `text` is a full SHA-1 object name in lower-case hex.
fn is_oid(text: &str) -> bool {
    text.len() == NULL_OID.len()
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) -> String {
        let output = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .output()
            .unwrap();
        assert!(output.status.success(), "git {args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap()
    }

    /// What the files say, against what `git` says, from `dir`.
    fn assert_agrees_with_git(dir: &Path) {
        let layout = layout(dir).expect("a plain layout");
        let told = git(dir, &["rev-parse", "--absolute-git-dir", "--show-toplevel"]);
        let read = format!("{}\n{}\n", layout.git_dir.display(), layout.root.display());
        assert_eq!(read, told, "from {}", dir.display());
        let listed = worktrees(&layout).expect("worktrees read");
        let told = git(dir, &["worktree", "list", "--porcelain"]);
        // git says why a worktree is locked or prunable; the snapshot keeps
        // only whether.
        let told: String = told
            .lines()
            .map(|line| match line.split_once(' ') {
                Some((key @ ("locked" | "prunable"), _)) => format!("{key}\n"),
                _ => format!("{line}\n"),
            })
            .collect();
        assert_eq!(porcelain(&listed), told, "from {}", dir.display());
    }

    #[test]
    fn files_say_what_git_says() {
        let temp = tempfile::tempdir().unwrap();
        let top = std::fs::canonicalize(temp.path()).unwrap();
        let main = top.join("main");
        std::fs::create_dir(&main).unwrap();
        git(&main, &["init", "-q", "-b", "main"]);
        // Before the first commit: the null object name.
        assert_agrees_with_git(&main);
        git(&main, &["commit", "-q", "--allow-empty", "-m", "one"]);
        std::fs::create_dir_all(main.join("src/deep")).unwrap();
        assert_agrees_with_git(&main.join("src/deep"));
        git(&main, &["worktree", "add", "-q", "../zz", "-b", "zz"]);
        git(&main, &["worktree", "add", "-q", "../aa", "-b", "aa"]);
        git(&main, &["worktree", "add", "-q", "--detach", "../mm"]);
        git(&main, &["worktree", "add", "-q", "../gone", "-b", "gone"]);
        git(&main, &["worktree", "lock", "../mm", "--reason", "busy"]);
        std::fs::remove_dir_all(top.join("gone")).unwrap();
        assert_agrees_with_git(&main);
        assert_agrees_with_git(&top.join("aa"));
        assert_agrees_with_git(&top.join("mm"));
        // Packed refs, and a branch moved on in another worktree.
        git(&main, &["pack-refs", "--all"]);
        git(
            &top.join("zz"),
            &["commit", "-q", "--allow-empty", "-m", "two"],
        );
        assert_agrees_with_git(&main);
        assert_agrees_with_git(&top.join("zz"));
    }

    #[test]
    fn other_layouts_are_left_to_git() {
        let temp = tempfile::tempdir().unwrap();
        let bare = temp.path().join("bare.git");
        std::fs::create_dir(&bare).unwrap();
        git(&bare, &["init", "-q", "--bare"]);
        assert_eq!(layout(&bare), None);
        assert_eq!(layout(&bare.join("refs")), None);
        let plain = temp.path().join("plain");
        std::fs::create_dir(&plain).unwrap();
        git(&plain, &["init", "-q"]);
        assert!(layout(&plain).is_some());
        assert_eq!(layout(&plain.join(".git")), None);
        git(&plain, &["config", "core.worktree", "/elsewhere"]);
        assert_eq!(layout(&plain), None);
    }

    #[test]
    fn oids_are_forty_lower_case_hex_digits() {
        assert!(is_oid("e9a6c5590bd72f8411506732619fd8fe67569633"));
        assert!(!is_oid("E9A6C5590BD72F8411506732619FD8FE67569633"));
        assert!(!is_oid("e9a6c559"));
        assert!(!is_oid("ref: refs/heads/main"));
    }
}
