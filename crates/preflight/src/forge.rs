//! The forge collector: open pull requests and issue counts per label of
//! one Forgejo or Gitea repository, through its REST API (v1).
//!
//! Requests, all concurrent, each bounded by the collector's timeout:
//! `GET /api/v1/repos/OWNER/NAME/pulls?state=open&sort=recentupdate&limit=50`
//! and, for each configured label, `GET /api/v1/repos/OWNER/NAME/issues?
//! state=open&type=issues&labels=LABEL&limit=50`. Totals come from the
//! `X-Total-Count` header both servers send (else the length of the page).
//! The token, from the configured environment variable, is sent as
//! `Authorization: token …` and never printed.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::ForgeConfig;
use crate::files::age_seconds;
use crate::http::{Client, Failure, encode};
use crate::snapshot::{CollectorStatus, impl_section, plural};

/// Items asked for per request (Forgejo's and Gitea's default maximum).
const PAGE: u32 = 50;

/// One Forgejo or Gitea repository.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
pub struct ForgeSection {
    /// How the collector fared: `unavailable` when the forge cannot be
    /// reached or rejects the token, or is not configured.
    pub status: CollectorStatus,
    /// Human-readable explanation when `status` is not `Ok` (`null` when absent).
    pub reason: Option<String>,
    /// How long the collector took, in milliseconds.
    pub duration_ms: u64,
    /// The forge's base URL, as configured.
    pub url: String,
    /// The repository, `owner/name`.
    pub repo: String,
    /// How many pull requests are open (`X-Total-Count`).
    pub open_pull_requests: u64,
    /// The open pull requests, most recently updated first (at most 50).
    pub pull_requests: Vec<PullRequest>,
    /// Open issues per configured label, in configuration order.
    pub labels: Vec<LabelCount>,
    /// The label whose issues are listed in `blocked`.
    pub blocked_label: String,
    /// The open issues carrying `blocked_label`, most recently updated first (at most 50).
    pub blocked: Vec<ForgeIssue>,
}

impl_section!(ForgeSection);

/// One open pull request.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
pub struct PullRequest {
    /// Its number in the repository.
    pub number: u64,
    /// Its title (at most 200 characters).
    pub title: String,
    /// The branch it merges from (`head.ref`).
    pub head_branch: String,
    /// Who opened it (`user.login`).
    pub author: String,
    /// Whether it is a draft (work in progress).
    pub draft: bool,
    /// When it was last updated, UTC.
    pub updated_at: Option<DateTime<Utc>>,
    /// Seconds since then, at `collected_at`.
    pub idle_seconds: Option<u64>,
    /// Its web page.
    pub url: String,
}

/// Open issues carrying one label.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
pub struct LabelCount {
    /// The label's name.
    pub name: String,
    /// How many open issues (not pull requests) carry it.
    pub open_issues: u64,
}

/// One open issue.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
pub struct ForgeIssue {
    /// Its number in the repository.
    pub number: u64,
    /// Its title (at most 200 characters).
    pub title: String,
    /// When it was last updated, UTC.
    pub updated_at: Option<DateTime<Utc>>,
    /// Seconds since then, at `collected_at`.
    pub idle_seconds: Option<u64>,
    /// Its web page.
    pub url: String,
}

/// The fields of the API's `PullRequest` that are read.
#[derive(Deserialize)]
struct ApiPull {
    number: u64,
    #[serde(default)]
    title: String,
    #[serde(default)]
    head: Option<ApiBranch>,
    #[serde(default)]
    user: Option<ApiUser>,
    #[serde(default)]
    draft: bool,
    #[serde(default)]
    updated_at: Option<DateTime<Utc>>,
    #[serde(default)]
    html_url: String,
}

#[derive(Deserialize)]
struct ApiBranch {
    #[serde(rename = "ref", default)]
    name: String,
}

#[derive(Deserialize)]
struct ApiUser {
    #[serde(default)]
    login: String,
}

/// The fields of the API's `Issue` that are read.
#[derive(Deserialize)]
struct ApiIssue {
    number: u64,
    #[serde(default)]
    title: String,
    #[serde(default)]
    updated_at: Option<DateTime<Utc>>,
    #[serde(default)]
    html_url: String,
}

pub(crate) async fn collect(config: ForgeConfig, limit: Duration) -> ForgeSection {
    let collected_at = Utc::now();
    let mut section = ForgeSection {
        url: config.url.clone(),
        repo: config.repo.clone(),
        blocked_label: config.blocked_label.clone(),
        ..ForgeSection::default()
    };
    let Some((owner, name)) = config.repo.split_once('/') else {
        section.status = CollectorStatus::Error;
        section.reason = Some(format!(
            "repo = \"{}\" is not of the form \"owner/name\"",
            config.repo
        ));
        return section;
    };
    // Requests end a little before the collector's own timeout, so the
    // reason can name the request that was slow.
    let client = match Client::new(
        &config.url,
        config.token_env.as_deref(),
        "token",
        limit * 9 / 10,
    ) {
        Ok(client) => client,
        Err(failure) => return fail(section, failure),
    };
    let base = format!("/api/v1/repos/{}/{}", encode(owner), encode(name));

    let mut labels: Vec<String> = config.labels.clone();
    if !labels.contains(&config.blocked_label) {
        labels.push(config.blocked_label.clone());
    }
    let pulls = client.get::<Vec<ApiPull>>(format!(
        "{base}/pulls?state=open&sort=recentupdate&limit={PAGE}&page=1"
    ));
    let issues = crate::join_all(
        labels
            .iter()
            .map(|label| {
                let client = client.clone();
                let path = format!(
                    "{base}/issues?state=open&type=issues&labels={}&limit={PAGE}&page=1",
                    encode(label)
                );
                async move { client.get::<Vec<ApiIssue>>(path).await }
            })
            .collect(),
    );
    let (pulls, issues) = tokio::join!(pulls, issues);

    let mut failures: Vec<Failure> = Vec::new();
    match pulls {
        Ok(answer) => {
            section.open_pull_requests = answer.total_count.unwrap_or(answer.body.len() as u64);
            section.pull_requests = answer
                .body
                .into_iter()
                .map(|p| PullRequest {
                    number: p.number,
                    title: crate::files::cap_chars(&p.title, 200),
                    head_branch: p.head.map(|h| h.name).unwrap_or_default(),
                    author: p.user.map(|u| u.login).unwrap_or_default(),
                    draft: p.draft,
                    idle_seconds: p.updated_at.map(|t| age_seconds(collected_at, t)),
                    updated_at: p.updated_at,
                    url: p.html_url,
                })
                .collect();
        }
        Err(failure) => failures.push(failure),
    }
    for (label, answer) in labels.iter().zip(issues) {
        let answer = answer.unwrap_or_else(|reason| {
            Err(Failure {
                status: CollectorStatus::Error,
                reason,
            })
        });
        match answer {
            Ok(answer) => {
                let open_issues = answer.total_count.unwrap_or(answer.body.len() as u64);
                if *label == config.blocked_label {
                    section.blocked = answer
                        .body
                        .into_iter()
                        .map(|i| ForgeIssue {
                            number: i.number,
                            title: crate::files::cap_chars(&i.title, 200),
                            idle_seconds: i.updated_at.map(|t| age_seconds(collected_at, t)),
                            updated_at: i.updated_at,
                            url: i.html_url,
                        })
                        .collect();
                }
                if config.labels.contains(label) {
                    section.labels.push(LabelCount {
                        name: label.clone(),
                        open_issues,
                    });
                }
            }
            Err(failure) => failures.push(failure),
        }
    }
    if failures.is_empty() {
        section.status = CollectorStatus::Ok;
        return section;
    }
    // One cause (an unreachable server, a bad token) usually fails every
    // request the same way: report it once.
    let mut reasons: Vec<String> = Vec::new();
    for failure in &failures {
        if !reasons.contains(&failure.reason) {
            reasons.push(failure.reason.clone());
        }
    }
    let all_unavailable = failures
        .iter()
        .all(|f| f.status == CollectorStatus::Unavailable);
    section.status = if all_unavailable {
        CollectorStatus::Unavailable
    } else {
        CollectorStatus::Error
    };
    section.reason = Some(summarise(&reasons));
    section
}

fn fail(mut section: ForgeSection, failure: Failure) -> ForgeSection {
    section.status = failure.status;
    section.reason = Some(failure.reason);
    section
}

/// The first reason, and how many other different ones there were.
pub(crate) fn summarise(reasons: &[String]) -> String {
    match reasons {
        [] => String::new(),
        [only] => only.clone(),
        [first, rest @ ..] => format!("{first} (and {} more failed requests)", rest.len()),
    }
}

impl ForgeSection {
    /// `4 open pull requests; backlog 12, in-progress 2, blocked 1` (for the journal).
    pub(crate) fn summary(&self) -> String {
        let counts: Vec<String> = self
            .labels
            .iter()
            .map(|l| format!("{} {}", l.name, l.open_issues))
            .collect();
        let open = usize::try_from(self.open_pull_requests).unwrap_or(usize::MAX);
        let mut line = plural(open, "open pull request", "open pull requests");
        if !counts.is_empty() {
            line.push_str(&format!("; issues: {}", counts.join(", ")));
        }
        line
    }
}
