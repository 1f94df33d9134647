//! The CI collector: the pipelines of one Woodpecker repository over the
//! last hours (default 24), with counts of those stuck running or pending.
//!
//! `GET /api/repos/REPO_ID/pipelines?page=N&perPage=50`, newest first, page
//! after page until a pipeline older than the window appears (at most 10
//! pages). Pipeline times are unix seconds: `created`, `started` and
//! `finished` (Woodpecker 2.x) or `created_at`, `started_at` and
//! `finished_at` (3.x); 0 means "not yet". The token, from the configured
//! environment variable, is sent as `Authorization: Bearer …` and never
//! printed.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::CiConfig;
use crate::files::age_seconds;
use crate::http::Client;
use crate::markdown::span;
use crate::snapshot::{CollectorStatus, impl_section, plural};

/// Pipelines asked for per page (Woodpecker's maximum).
const PER_PAGE: usize = 50;
/// Most pages read.
const MAX_PAGES: u32 = 10;

/// One Woodpecker repository's recent pipelines.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
pub struct CiSection {
    /// How the collector fared: `unavailable` when the server cannot be
    /// reached or rejects the token, or is not configured.
    pub status: CollectorStatus,
    /// Human-readable explanation when `status` is not `Ok` (`null` when absent).
    pub reason: Option<String>,
    /// How long the collector took, in milliseconds.
    pub duration_ms: u64,
    /// The Woodpecker server's base URL, as configured.
    pub url: String,
    /// The repository's Woodpecker id.
    pub repo_id: u64,
    /// How far back pipelines are listed, in seconds (`[preflight.ci] window`, default 24 h).
    pub window_seconds: u64,
    /// The pipelines created within the window, by number, newest first.
    pub pipelines: Vec<Pipeline>,
    /// How many pipelines of the window are in each status (`success`,
    /// `failure`, `running`, `pending`, …).
    pub status_counts: BTreeMap<String, u64>,
    /// A running pipeline is stuck after this many seconds (`running_over`, default 20 min).
    pub running_limit_seconds: u64,
    /// A pending pipeline is stuck after this many seconds (`pending_over`, default 30 min).
    pub pending_limit_seconds: u64,
    /// How many pipelines have been running longer than `running_limit_seconds`.
    pub running_too_long: u64,
    /// How many pipelines have been pending longer than `pending_limit_seconds`.
    pub pending_too_long: u64,
}

impl_section!(CiSection);

/// One pipeline.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
pub struct Pipeline {
    /// Its number in the repository.
    pub number: u64,
    /// Woodpecker's status: `pending`, `running`, `success`, `failure`,
    /// `killed`, `error`, `blocked`, `declined`, `skipped`, `canceled`, `created`.
    pub status: String,
    /// What started it: `push`, `pull_request`, `tag`, `cron`, `manual`, ….
    pub event: String,
    /// Its branch.
    pub branch: String,
    /// When it was created, UTC.
    pub created: DateTime<Utc>,
    /// When it started running, UTC; `null` before.
    pub started: Option<DateTime<Utc>>,
    /// When it finished, UTC; `null` before.
    pub finished: Option<DateTime<Utc>>,
    /// How long it ran (finished − started), or has been running so far;
    /// `null` when it has not started.
    pub duration_seconds: Option<u64>,
    /// How long it has been waiting to start, for a pending pipeline; `null` otherwise.
    pub pending_seconds: Option<u64>,
    /// Whether it is running or pending past its limit.
    pub stuck: bool,
}

/// The fields of the API's `Pipeline` that are read.
#[derive(Deserialize)]
struct ApiPipeline {
    number: u64,
    #[serde(default)]
    status: String,
    #[serde(default)]
    event: String,
    #[serde(default)]
    branch: String,
    #[serde(default, alias = "created_at")]
    created: i64,
    #[serde(default, alias = "started_at")]
    started: i64,
    #[serde(default, alias = "finished_at")]
    finished: i64,
}

pub(crate) async fn collect(config: CiConfig, limit: Duration, now: DateTime<Utc>) -> CiSection {
    let mut section = CiSection {
        url: config.url.clone(),
        repo_id: config.repo_id,
        window_seconds: config.window.as_secs(),
        running_limit_seconds: config.running_over.as_secs(),
        pending_limit_seconds: config.pending_over.as_secs(),
        ..CiSection::default()
    };
    let client = match Client::new(
        &config.url,
        config.token_env.as_deref(),
        "Bearer",
        limit * 9 / 10,
    ) {
        Ok(client) => client,
        Err(failure) => {
            section.status = failure.status;
            section.reason = Some(failure.reason);
            return section;
        }
    };
    let since = now.timestamp() - i64::try_from(config.window.as_secs()).unwrap_or(i64::MAX);
    let mut api: Vec<ApiPipeline> = Vec::new();
    for page in 1..=MAX_PAGES {
        let answer = client
            .get::<Vec<ApiPipeline>>(format!(
                "/api/repos/{}/pipelines?page={page}&perPage={PER_PAGE}",
                config.repo_id
            ))
            .await;
        let body = match answer {
            Ok(answer) => answer.body,
            Err(failure) => {
                section.status = failure.status;
                section.reason = Some(failure.reason);
                return section;
            }
        };
        let full = body.len() >= PER_PAGE;
        let older = body.iter().any(|p| p.created < since);
        api.extend(body);
        if !full || older {
            break;
        }
    }
    for p in api.into_iter().filter(|p| p.created >= since) {
        let time = |secs: i64| {
            (secs > 0)
                .then(|| DateTime::from_timestamp(secs, 0))
                .flatten()
        };
        let created = time(p.created).unwrap_or_default();
        let started = time(p.started);
        let finished = time(p.finished);
        let duration_seconds = match (started, finished) {
            (Some(s), Some(f)) => Some(age_seconds(f, s)),
            (Some(s), None) => Some(age_seconds(now, s)),
            _ => None,
        };
        let pending_seconds = (p.status == "pending").then(|| age_seconds(now, created));
        let running_stuck = p.status == "running"
            && duration_seconds.is_some_and(|d| d > section.running_limit_seconds);
        let pending_stuck = pending_seconds.is_some_and(|w| w > section.pending_limit_seconds);
        section.running_too_long += u64::from(running_stuck);
        section.pending_too_long += u64::from(pending_stuck);
        *section.status_counts.entry(p.status.clone()).or_default() += 1;
        section.pipelines.push(Pipeline {
            number: p.number,
            status: p.status,
            event: p.event,
            branch: p.branch,
            created,
            started,
            finished,
            duration_seconds,
            pending_seconds,
            stuck: running_stuck || pending_stuck,
        });
    }
    section
        .pipelines
        .sort_by_key(|p| std::cmp::Reverse(p.number));
    section.status = CollectorStatus::Ok;
    section
}

impl CiSection {
    /// `12 pipelines in 24h (1 running over 20m, 0 pending over 30m)` (for the journal).
    pub(crate) fn summary(&self) -> String {
        let window = span(self.window_seconds);
        let mut line = format!(
            "{} in {window}",
            plural(self.pipelines.len(), "pipeline", "pipelines")
        );
        if self.running_too_long + self.pending_too_long > 0 {
            line.push_str(&format!(
                " ({} running over {}, {} pending over {})",
                self.running_too_long,
                span(self.running_limit_seconds),
                self.pending_too_long,
                span(self.pending_limit_seconds),
            ));
        }
        line
    }
}
