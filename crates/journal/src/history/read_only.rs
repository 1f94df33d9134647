//! Reading the history without writing a byte: an `immutable` URI, or a
//! private copy of a database that has a WAL (see
//! [`super::History::open_read_only`]).

use std::path::{Path, PathBuf};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_encode};

use super::{HISTORY_FILE, HistoryError};

/// `PATH` with `suffix` appended to its file name: `history.sqlite-wal`.
pub(super) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Copies the database and its WAL into a new temporary directory.
pub(super) fn private_copy(path: &Path, wal: &Path) -> Result<tempfile::TempDir, HistoryError> {
    let io = |source| HistoryError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = tempfile::Builder::new()
        .prefix("retort-history-")
        .tempdir()
        .map_err(io)?;
    let copy = dir.path().join(HISTORY_FILE);
    std::fs::copy(path, &copy).map_err(io)?;
    std::fs::copy(wal, sibling(&copy, "-wal")).map_err(io)?;
    Ok(dir)
}

/// `file:PATH?immutable=1`, with the path percent-encoded where URIs need it.
pub(super) fn immutable_uri(path: &Path) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let encoded = percent_encode(absolute.as_os_str().as_encoded_bytes(), URI_PATH);
    format!("file:{encoded}?immutable=1")
}

/// What a path keeps as it is in a `file:` URI: RFC 3986's unreserved
/// characters and `/`; every other byte is percent-encoded.
const URI_PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn immutable_uris_escape_what_uris_reserve() {
        let uri = immutable_uri(Path::new("/tmp/a b/h#1.sqlite"));
        assert_eq!(uri, "file:/tmp/a%20b/h%231.sqlite?immutable=1");
        let uri = immutable_uri(Path::new("/tmp/é?%/x~y_z-1.sqlite"));
        assert_eq!(uri, "file:/tmp/%C3%A9%3F%25/x~y_z-1.sqlite?immutable=1");
    }
}
