//! Keeping secrets out of output: [`Secret`] for tokens and header values,
//! [`redact_url`] for URLs shown in errors and logs.

use std::fmt;

/// A secret value (an access token, a header value): its `Debug` prints
/// `[redacted]`, it has no `Display`, and it is not `Serialize`, so it
/// cannot slip into an error, a log line or a saved record. Read it with
/// [`Secret::expose`] only where it is sent.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`, surrounding white space trimmed (a trailing newline from
    /// an env file is not part of a token).
    pub fn new(value: impl Into<String>) -> Secret {
        let value = value.into();
        Secret(value.trim().to_owned())
    }

    /// The value, for the one place it is sent (an HTTP header).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the value is empty (after trimming).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// `url` fit to show: its user information (`user:password@`) replaced by
/// `[redacted]@`. The path and query are kept; use [`url_origin`] where they
/// may hold a secret too (webhook URLs often do).
///
/// `https://bot:hunter2@hooks.example.org/x` → `https://[redacted]@hooks.example.org/x`.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some(parts) => parts,
        None => return url.to_owned(),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rfind('@') {
        Some(at) => format!("{scheme}://[redacted]@{}{tail}", &authority[at + 1..]),
        None => url.to_owned(),
    }
}

/// `url`'s scheme, host and port only, user information, path and query left
/// out: `https://hooks.example.org:8443`. What errors and target names show
/// of a webhook URL, whose path is often its secret.
pub fn url_origin(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some(parts) => parts,
        None => return "[invalid URL]".to_owned(),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = authority
        .rfind('@')
        .map_or(authority, |at| &authority[at + 1..]);
    format!("{scheme}://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_shows_in_debug_output() {
        let token = Secret::new(" syt_abc123\n");
        assert_eq!(token.expose(), "syt_abc123");
        assert_eq!(format!("{token:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(&token)), "Some([redacted])");
    }

    #[test]
    fn user_information_is_redacted() {
        assert_eq!(
            redact_url("https://bot:hunter2@hooks.example.org/x?y=1"),
            "https://[redacted]@hooks.example.org/x?y=1"
        );
        assert_eq!(
            redact_url("http://127.0.0.1:8008/path"),
            "http://127.0.0.1:8008/path"
        );
        assert_eq!(
            redact_url("http://a@b@host/"),
            "http://[redacted]@host/",
            "the last @ ends the user information"
        );
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn origins_leave_out_path_query_and_user_information() {
        assert_eq!(
            url_origin("https://u:p@hooks.example.org:8443/services/T0/B0/secret?x=1"),
            "https://hooks.example.org:8443"
        );
        assert_eq!(url_origin("http://127.0.0.1:9"), "http://127.0.0.1:9");
        assert_eq!(url_origin("nonsense"), "[invalid URL]");
    }
}
