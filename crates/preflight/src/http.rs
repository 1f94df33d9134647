//! A small JSON-over-HTTP client for the forge and CI collectors, on `ureq`
//! (rustls for TLS, the system's proxy variables honoured), each request
//! bounded by a timeout and run on its own detached thread.
//!
//! Failures are classified the way an operator thinks of them: a server
//! that cannot be reached (connection refused, unknown host) or that rejects
//! the token (401, 403) is `unavailable`; any other failure (another error
//! status, a timeout, a body that is not the documented JSON) is `error`.
//! Tokens are sent in the `Authorization` header and never appear in a
//! reason, URL or snapshot.

use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::snapshot::CollectorStatus;

/// Largest response body read: 8 MiB.
const MAX_BODY_BYTES: u64 = 8 << 20;

/// A failed request, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub status: CollectorStatus,
    pub reason: String,
}

/// A client for one server.
#[derive(Clone)]
pub(crate) struct Client {
    agent: ureq::Agent,
    base: String,
    authorization: Option<String>,
    token_env: Option<String>,
    limit: Duration,
}

/// A successful answer: the parsed body and the `X-Total-Count` header.
pub(crate) struct Answer<T> {
    pub body: T,
    pub total_count: Option<u64>,
}

impl Client {
    /// A client for `base` (trailing `/` ignored), each request bounded by
    /// `limit`. With `token_env`, the token is read from that variable now
    /// and sent as `Authorization: SCHEME TOKEN`.
    ///
    /// # Errors
    /// `Unavailable` when the variable is unset or empty.
    pub fn new(
        base: &str,
        token_env: Option<&str>,
        scheme: &str,
        limit: Duration,
    ) -> Result<Client, Failure> {
        let authorization = match token_env {
            Some(name) => match std::env::var(name) {
                Ok(token) if !token.trim().is_empty() => Some(format!("{scheme} {}", token.trim())),
                _ => {
                    return Err(Failure {
                        status: CollectorStatus::Unavailable,
                        reason: format!("no token: the environment variable {name} is not set"),
                    });
                }
            },
            None => None,
        };
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(limit))
            .http_status_as_error(false)
            .user_agent(concat!("retort-preflight/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Client {
            agent: ureq::Agent::new_with_config(config),
            base: base.trim_end_matches('/').to_owned(),
            authorization,
            token_env: token_env.map(str::to_owned),
            limit,
        })
    }

    /// `GET BASE PATH` on a detached thread, parsing the body as JSON `T`.
    pub async fn get<T: DeserializeOwned + Send + 'static>(
        &self,
        path: String,
    ) -> Result<Answer<T>, Failure> {
        let client = self.clone();
        crate::off_thread("http", move || client.get_blocking(&path))
            .await
            .unwrap_or_else(|reason| {
                Err(Failure {
                    status: CollectorStatus::Error,
                    reason,
                })
            })
    }

    fn get_blocking<T: DeserializeOwned>(&self, path: &str) -> Result<Answer<T>, Failure> {
        let url = format!("{}{path}", self.base);
        let mut request = self.agent.get(&url).header("Accept", "application/json");
        if let Some(authorization) = &self.authorization {
            request = request.header("Authorization", authorization);
        }
        let mut response = request
            .call()
            .map_err(|err| self.transport_failure(&url, err))?;
        let status = response.status();
        if !status.is_success() {
            let code = status.as_u16();
            let canonical = status.canonical_reason().unwrap_or("");
            let rejected = matches!(code, 401 | 403);
            let hint = match (rejected, &self.token_env) {
                (true, Some(name)) => format!("; check the token in {name}"),
                (true, None) => "; configure token_env".to_owned(),
                _ => String::new(),
            };
            return Err(Failure {
                status: if rejected {
                    CollectorStatus::Unavailable
                } else {
                    CollectorStatus::Error
                },
                reason: format!("GET {url} answered {code} {canonical}{hint}"),
            });
        }
        let total_count = response
            .headers()
            .get("x-total-count")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY_BYTES)
            .read_to_string()
            .map_err(|err| self.transport_failure(&url, err))?;
        let body = serde_json::from_str(&text).map_err(|err| Failure {
            status: CollectorStatus::Error,
            reason: format!("GET {url} answered something other than the documented JSON: {err}"),
        })?;
        Ok(Answer { body, total_count })
    }

    fn transport_failure(&self, url: &str, err: ureq::Error) -> Failure {
        match err {
            ureq::Error::Timeout(_) => Failure {
                status: CollectorStatus::Error,
                reason: format!(
                    "GET {url} timed out after {}",
                    humantime::format_duration(self.limit)
                ),
            },
            ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => Failure {
                status: CollectorStatus::Unavailable,
                reason: format!("cannot reach {url}: {err}"),
            },
            ureq::Error::Io(io)
                if matches!(
                    io.kind(),
                    std::io::ErrorKind::ConnectionRefused
                        | std::io::ErrorKind::NotFound
                        | std::io::ErrorKind::HostUnreachable
                        | std::io::ErrorKind::NetworkUnreachable
                        | std::io::ErrorKind::AddrNotAvailable
                ) =>
            {
                Failure {
                    status: CollectorStatus::Unavailable,
                    reason: format!("cannot reach {url}: {io}"),
                }
            }
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => Failure {
                status: CollectorStatus::Error,
                reason: format!(
                    "GET {url} timed out after {}",
                    humantime::format_duration(self.limit)
                ),
            },
            ureq::Error::BodyExceedsLimit(limit) => Failure {
                status: CollectorStatus::Error,
                reason: format!("GET {url} answered more than {limit} bytes"),
            },
            other => Failure {
                status: CollectorStatus::Error,
                reason: format!("GET {url} failed: {other}"),
            },
        }
    }
}

/// `text` percent-encoded for a URL query value or path segment (RFC 3986
/// unreserved characters kept).
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
    use super::encode;

    #[test]
    fn encodes_query_values() {
        assert_eq!(encode("in-progress"), "in-progress");
        assert_eq!(encode("kind/bug fix&x"), "kind%2Fbug%20fix%26x");
        assert_eq!(encode("é"), "%C3%A9");
    }
}
