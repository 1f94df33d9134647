//! Secrets out of everything retort writes or sends.
//!
//! A [`Redactor`] knows the secret values of this process's environment
//! (variables whose names contain `TOKEN`, `SECRET`, `PASSWORD`, `PASSWD`
//! or `KEY`, in any case, plus names a formula lists in `[secrets] env`) and
//! replaces each occurrence of one with [`REDACTED`]; it also replaces the
//! user information of URLs (`https://user:pass@host` →
//! `https://[redacted]@host`). Prompts, the snapshot, captured panes, agent
//! output, reasons, the journal, `run.json` and the history pass through it.

use std::borrow::Cow;
use std::sync::LazyLock;

use aho_corasick::AhoCorasick;
use regex::Regex;

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Parts of environment variable names that mark their values secret
/// (matched case-insensitively).
pub const SECRET_NAME_PARTS: &[&str] = &["TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY"];

/// Values shorter than this are not treated as secrets (a `KEY=1` flag
/// would otherwise blank every `1`): 6 characters.
pub const MIN_SECRET_LEN: usize = 6;

/// `scheme://userinfo@`: the userinfo is what goes.
static URL_USERINFO: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/?#@\s\x22'<>]+)@").ok()
});

/// Replaces known secret values and URL user information in text.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
    matcher: Option<AhoCorasick>,
}

impl Redactor {
    /// A redactor for `secrets` (values; those shorter than
    /// [`MIN_SECRET_LEN`] are ignored, duplicates kept once).
    pub fn new<I: IntoIterator<Item = String>>(secrets: I) -> Redactor {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .filter(|s| s.chars().count() >= MIN_SECRET_LEN)
            .collect();
        // Longest first, so that a secret containing another goes whole.
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        let matcher = if secrets.is_empty() {
            None
        } else {
            AhoCorasick::builder()
                .match_kind(aho_corasick::MatchKind::LeftmostLongest)
                .build(&secrets)
                .ok()
        };
        Redactor { secrets, matcher }
    }

    /// A redactor for this process's environment: the values of variables
    /// whose names contain one of [`SECRET_NAME_PARTS`], or are listed in
    /// `also` (exact names).
    pub fn from_env(also: &[String]) -> Redactor {
        Redactor::new(
            std::env::vars_os()
                .filter_map(|(name, value)| {
                    Some((name.into_string().ok()?, value.into_string().ok()?))
                })
                .filter(|(name, _)| is_secret_name(name) || also.iter().any(|a| a == name))
                .map(|(_, value)| value),
        )
    }

    /// How many secret values it knows.
    pub fn len(&self) -> usize {
        self.secrets.len()
    }

    /// Whether it knows no secret value (it still redacts URL userinfo).
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// `text` with every known secret and every URL's userinfo replaced by
    /// [`REDACTED`]; borrowed when nothing was.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out: Cow<'a, str> = Cow::Borrowed(text);
        if let Some(matcher) = &self.matcher
            && matcher.is_match(text)
        {
            let replacements = vec![REDACTED; self.secrets.len()];
            out = Cow::Owned(matcher.replace_all(text, &replacements));
        }
        if let Some(userinfo) = URL_USERINFO.as_ref()
            && userinfo.is_match(&out)
        {
            let replaced = userinfo
                .replace_all(&out, format!("${{scheme}}{REDACTED}@").as_str())
                .into_owned();
            out = Cow::Owned(replaced);
        }
        out
    }

    /// Redacts every string (keys too) inside a JSON value, in place.
    pub fn redact_json(&self, value: &mut serde_json::Value) {
        use serde_json::Value;
        match value {
            Value::String(text) => {
                if let Cow::Owned(redacted) = self.redact(text) {
                    *text = redacted;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.redact_json(item)),
            Value::Object(map) => {
                let entries: Vec<(String, Value)> = std::mem::take(map).into_iter().collect();
                for (key, mut item) in entries {
                    self.redact_json(&mut item);
                    map.insert(self.redact(&key).into_owned(), item);
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
}

/// Whether an environment variable of this name holds a secret: its name
/// contains one of [`SECRET_NAME_PARTS`], in any case.
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_NAME_PARTS.iter().any(|part| upper.contains(part))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_secrets_and_url_userinfo_are_redacted() {
        let redactor = Redactor::new(["ghp_abcdef123456".to_string(), "short".to_string()]);
        assert_eq!(redactor.len(), 1, "too short to be taken for a secret");
        let text = "token ghp_abcdef123456 at https://bot:hunter22@forge.local/api and short";
        assert_eq!(
            redactor.redact(text),
            "token [redacted] at https://[redacted]@forge.local/api and short"
        );
        assert!(matches!(redactor.redact("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn the_longest_secret_goes_whole() {
        let redactor = Redactor::new(["abcdefgh".to_string(), "abcdefgh-ijkl".to_string()]);
        assert_eq!(
            redactor.redact("x abcdefgh-ijkl y abcdefgh"),
            "x [redacted] y [redacted]"
        );
    }

    #[test]
    fn json_strings_and_keys_are_redacted() {
        let redactor = Redactor::new(["s3cr3t-value".to_string()]);
        let mut value = serde_json::json!({
            "a": ["s3cr3t-value", 1, {"s3cr3t-value": "http://u:p@h/"}],
        });
        redactor.redact_json(&mut value);
        assert_eq!(
            value,
            serde_json::json!({"a": ["[redacted]", 1, {"[redacted]": "http://[redacted]@h/"}]})
        );
    }

    #[test]
    fn secret_names() {
        for name in [
            "GITHUB_TOKEN",
            "api_key",
            "DB_PASSWORD",
            "MY_SECRET_X",
            "SSH_PASSWD",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in ["PATH", "HOME", "TERM", "RETORT_RUN_DIR"] {
            assert!(!is_secret_name(name), "{name}");
        }
    }
}
