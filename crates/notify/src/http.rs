//! One HTTP exchange under a deadline, on `ureq` (rustls for TLS, the
//! system's proxy variables honoured), with failures classified as
//! retryable or not and described without any secret: a URL is shown as
//! its origin only, and no request header is ever shown.

use std::time::{Duration, Instant};

use ureq::http;

use crate::dedup::Outcome;
use crate::secret::url_origin;

/// The longest a single request may take, connect to last byte: 10 s.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest a connection may take to open: 5 s.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Less time than this left before the deadline and no request is started:
/// 50 ms.
const LEAST_BUDGET: Duration = Duration::from_millis(50);

/// Largest response body read: 64 KiB (Matrix and webhook answers are small).
const MAX_RESPONSE_BYTES: u64 = 64 * 1024;

/// An HTTP client shared by a notifier's deliveries.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    agent: ureq::Agent,
}

/// An answer: its status code and body (lossily UTF-8).
pub(crate) struct Answer {
    pub status: u16,
    pub body: String,
}

impl Http {
    /// A client that returns error statuses as answers and follows no
    /// redirect (a moved webhook is a configuration to fix, and a redirect
    /// must not carry a token elsewhere).
    pub fn new() -> Http {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .user_agent(concat!("retort-notify/", env!("CARGO_PKG_VERSION")))
            .build();
        Http {
            agent: ureq::Agent::new_with_config(config),
        }
    }

    /// Sends `request` (to `url`, which it was built from), bounded by
    /// [`REQUEST_TIMEOUT`] and by `deadline`, whichever comes first.
    ///
    /// # Errors
    /// [`Outcome::Retry`] when the deadline leaves no time, on a timeout or
    /// a connection that cannot be made; [`Outcome::Refused`] for a URL that
    /// is not one.
    pub fn exchange<S: ureq::AsSendBody>(
        &self,
        what: &str,
        url: &str,
        request: Result<http::Request<S>, http::Error>,
        deadline: Instant,
    ) -> Result<Answer, Outcome> {
        let origin = url_origin(url);
        let request = request.map_err(|_| Outcome::Refused {
            reason: format!("{what} {origin}: not a valid URL"),
        })?;
        let left = deadline.saturating_duration_since(Instant::now());
        if left < LEAST_BUDGET {
            return Err(Outcome::Retry {
                reason: format!("{what} {origin}: not tried, the run's notification time is up"),
            });
        }
        let budget = left.min(REQUEST_TIMEOUT);
        let request = self
            .agent
            .configure_request(request)
            .timeout_global(Some(budget))
            .timeout_connect(Some(budget.min(CONNECT_TIMEOUT)))
            .build();
        let mut response = self
            .agent
            .run(request)
            .map_err(|err| transport(what, &origin, budget, err))?;
        let status = response.status().as_u16();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_vec()
            .unwrap_or_default();
        Ok(Answer {
            status,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }
}

/// A transport failure, described without the URL's path or any header.
fn transport(what: &str, origin: &str, budget: Duration, err: ureq::Error) -> Outcome {
    let timed_out = || Outcome::Retry {
        reason: format!(
            "{what} {origin}: no answer within {:.1} s",
            budget.as_secs_f64()
        ),
    };
    match err {
        ureq::Error::Timeout(_) => timed_out(),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => timed_out(),
        ureq::Error::Io(io) => Outcome::Retry {
            reason: format!("{what} {origin}: {io}"),
        },
        ureq::Error::HostNotFound => Outcome::Retry {
            reason: format!("{what} {origin}: host not found"),
        },
        ureq::Error::ConnectionFailed => Outcome::Retry {
            reason: format!("{what} {origin}: connection failed"),
        },
        ureq::Error::BadUri(_) | ureq::Error::Http(_) => Outcome::Refused {
            reason: format!("{what} {origin}: not a valid URL"),
        },
        ureq::Error::Tls(text) => Outcome::Retry {
            reason: format!("{what} {origin}: TLS: {text}"),
        },
        ureq::Error::Rustls(tls) => Outcome::Retry {
            reason: format!("{what} {origin}: TLS: {tls}"),
        },
        ureq::Error::Protocol(protocol) => Outcome::Retry {
            reason: format!("{what} {origin}: HTTP protocol error: {protocol}"),
        },
        _ => Outcome::Retry {
            reason: format!("{what} {origin}: the request failed"),
        },
    }
}

/// Whether an HTTP status is worth retrying: 408, 429 and 5xx.
pub(crate) fn retryable(status: u16) -> bool {
    matches!(status, 408 | 429) || status >= 500
}

/// The usual phrase of `status` (`Not Found`), or empty.
pub(crate) fn phrase(status: u16) -> &'static str {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

/// `url`'s path segment `text` percent-encoded (RFC 3986 unreserved
/// characters kept): `#ops:example.org` → `%23ops%3Aexample.org`.
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_room_ids_and_aliases() {
        assert_eq!(encode("#ops:example.org"), "%23ops%3Aexample.org");
        assert_eq!(encode("!AbC:localhost"), "%21AbC%3Alocalhost");
    }

    #[test]
    fn retries_what_may_pass() {
        assert!(retryable(429) && retryable(500) && retryable(503) && retryable(408));
        assert!(!retryable(400) && !retryable(401) && !retryable(404) && !retryable(301));
    }
}
