//! Names: file-safe names for files and tmux sessions.

/// `name` with every character outside `[A-Za-z0-9_-]` replaced by `_`,
/// for file and tmux session names (tmux forbids `.` and `:` in them).
pub fn file_safe(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.is_empty() {
        "_".to_string()
    } else {
        safe
    }
}
