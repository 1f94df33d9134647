//! The Docker collector: containers with their state, health, restart
//! count, CPU and memory, from the `docker` CLI's JSON output.
//!
//! Three CLI calls, never a shell: `docker container ls --all --quiet
//! --no-trunc` for the ids, then concurrently `docker container inspect ID…`
//! (name, image, state, health, restart count, as JSON) and, unless
//! `stats = false`, `docker container stats --no-stream --no-trunc --format
//! '{{json .}}' ID…` (CPU and memory; samples for about two seconds). The CLI
//! honours `DOCKER_HOST`, contexts and TLS settings as it would for the
//! operator.
//!
//! A missing daemon is `unavailable`, not an error. When the CLI would talk
//! to a local socket (no `--host`, `DOCKER_HOST`, `DOCKER_CONTEXT` or current
//! context in `~/.docker/config.json`, or a `unix://` host) and nothing
//! exists at that path, the collector says so without starting the CLI at all.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::{Deserialize, Serialize};

use crate::config::DockerConfig;
use crate::snapshot::{CollectorStatus, Section, impl_section, plural};

/// The socket the Docker CLI uses when nothing else is configured.
const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// Containers of one Docker daemon.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
pub struct DockerSection {
    /// How the collector fared.
    pub status: CollectorStatus,
    /// Human-readable explanation when `status` is not `Ok` (`null` when absent).
    pub reason: Option<String>,
    /// How long the collector took, in milliseconds.
    pub duration_ms: u64,
    /// Every container, running or not, by name.
    pub containers: Vec<Container>,
}

impl_section!(DockerSection);

/// One container.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
pub struct Container {
    /// The first 12 hex digits of its id.
    pub id: String,
    /// Its name, without Docker's leading `/`.
    pub name: String,
    /// The image it was created from, as given (`Config.Image`, e.g. `nginx:1.27`).
    pub image: String,
    /// `created`, `running`, `paused`, `restarting`, `removing`, `exited` or
    /// `dead` (`State.Status`).
    pub state: String,
    /// `starting`, `healthy` or `unhealthy` (`State.Health.Status`); `null`
    /// when the container has no health check.
    pub health: Option<String>,
    /// How often Docker restarted it (`RestartCount`).
    pub restart_count: u64,
    /// CPU use in percent of one CPU (`docker stats`' `CPUPerc`; may exceed
    /// 100 on several CPUs). `null` when not running or stats are off.
    pub cpu_percent: Option<f64>,
    /// Memory use in MiB (`docker stats`' `MemUsage`, left of the `/`).
    /// `null` when not running or stats are off.
    pub memory_mb: Option<u64>,
}

pub(crate) async fn collect(config: DockerConfig) -> DockerSection {
    if let Some(reason) = missing_cli(&config.command) {
        return DockerSection::failed(CollectorStatus::Unavailable, reason);
    }
    let socket = local_socket(config.host.as_deref());
    if let Some(socket) = socket.filter(|s| !s.exists()) {
        return DockerSection::failed(
            CollectorStatus::Unavailable,
            format!(
                "no Docker daemon: nothing at {} (is dockerd running?)",
                socket.display()
            ),
        );
    }

    let ids = match docker(
        &config,
        &["container", "ls", "--all", "--quiet", "--no-trunc"],
    )
    .await
    {
        Ok(out) => out
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>(),
        Err(failure) => return failure.into_section(),
    };
    if ids.is_empty() {
        return DockerSection {
            status: CollectorStatus::Ok,
            ..DockerSection::default()
        };
    }

    let mut inspect_args = vec!["container", "inspect"];
    inspect_args.extend(ids.iter().map(String::as_str));
    let mut stats_args = vec![
        "container",
        "stats",
        "--no-stream",
        "--no-trunc",
        "--format",
        "{{json .}}",
    ];
    stats_args.extend(ids.iter().map(String::as_str));
    let inspect = docker(&config, &inspect_args);
    let stats = async {
        if config.stats {
            Some(docker(&config, &stats_args).await)
        } else {
            None
        }
    };
    let (inspect, stats) = tokio::join!(inspect, stats);

    let mut problems = Vec::new();
    let mut containers = match inspect.map(|out| parse_inspect(&out)) {
        Ok(Ok(containers)) => containers,
        Ok(Err(err)) => {
            return DockerSection::failed(
                CollectorStatus::Error,
                format!("unexpected `docker container inspect` output: {err}"),
            );
        }
        // A container removed between the two calls makes inspect fail: report the rest.
        Err(failure) => return failure.into_section(),
    };
    match stats {
        Some(Ok(out)) => {
            let (figures, skipped) = parse_stats(&out);
            if let Some(first) = skipped.first() {
                problems.push(format!(
                    "skipped {} unparsable `docker stats` lines; first: {first}",
                    skipped.len()
                ));
            }
            for container in &mut containers {
                if let Some((cpu, mem)) = figures.get(&container.id)
                    && container.state == "running"
                {
                    container.cpu_percent = *cpu;
                    container.memory_mb = *mem;
                }
            }
        }
        Some(Err(failure)) => problems.push(format!("docker stats: {}", failure.reason)),
        None => {}
    }
    containers.sort_by(|a, b| a.name.cmp(&b.name));
    let (status, reason) = crate::snapshot::status_from(problems);
    DockerSection {
        status,
        reason,
        duration_ms: 0,
        containers,
    }
}

/// A failed CLI call, classified.
struct Failure {
    status: CollectorStatus,
    reason: String,
}

impl Failure {
    fn into_section(self) -> DockerSection {
        DockerSection::failed(self.status, self.reason)
    }
}

/// Runs `docker [--host H] ARGS` and returns its standard output.
async fn docker(config: &DockerConfig, args: &[&str]) -> Result<String, Failure> {
    let mut command = tokio::process::Command::new(&config.command);
    if let Some(host) = &config.host {
        command.arg("--host").arg(host);
    }
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = match command.output().await {
        Ok(output) => output,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err(Failure {
                status: CollectorStatus::Unavailable,
                reason: format!(
                    "Docker is not installed (`{}` not found)",
                    config.command.display()
                ),
            });
        }
        Err(err) => {
            return Err(Failure {
                status: CollectorStatus::Error,
                reason: format!("could not run {}: {err}", config.command.display()),
            });
        }
    };
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stderr = stderr.trim();
    // "permission denied while trying to connect to the Docker daemon socket …"
    let denied = stderr.contains("permission denied");
    let no_daemon = !denied
        && (stderr.contains("Cannot connect to the Docker daemon")
            || stderr.contains("Is the docker daemon running")
            || stderr.contains("connect: no such file or directory")
            || stderr.contains("connect: connection refused"));
    Err(if no_daemon {
        Failure {
            status: CollectorStatus::Unavailable,
            reason: format!("no Docker daemon: {}", first_line(stderr)),
        }
    } else if denied {
        Failure {
            status: CollectorStatus::Unavailable,
            reason: format!(
                "not allowed to use the Docker daemon: {}",
                first_line(stderr)
            ),
        }
    } else {
        Failure {
            status: CollectorStatus::Error,
            reason: format!(
                "`docker {}` failed ({}): {}",
                args.first().copied().unwrap_or_default(),
                output.status,
                first_line(stderr)
            ),
        }
    })
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

/// Why the CLI cannot be run: `command` is a path to no file, or a bare
/// name not found on `PATH`.
fn missing_cli(command: &Path) -> Option<String> {
    if command.components().count() != 1 {
        return (!command.is_file()).then(|| {
            format!(
                "Docker is not installed (`{}` not found)",
                command.display()
            )
        });
    }
    let path = std::env::var_os("PATH")?;
    let found = std::env::split_paths(&path).any(|dir| {
        let candidate = dir.join(command);
        std::fs::metadata(&candidate).is_ok_and(|m| m.is_file())
    });
    (!found).then(|| {
        format!(
            "Docker is not installed (`{}` not found on PATH)",
            command.display()
        )
    })
}

/// The Unix socket the CLI will connect to, when that can be known without
/// running it: the `unix://` host given, else with no `DOCKER_HOST`,
/// `DOCKER_CONTEXT` or current context, the default socket.
fn local_socket(host: Option<&str>) -> Option<PathBuf> {
    let env_host = std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty());
    match host.map(str::to_owned).or(env_host) {
        Some(host) => host.strip_prefix("unix://").map(PathBuf::from),
        None => {
            let context = std::env::var("DOCKER_CONTEXT")
                .ok()
                .filter(|c| !c.is_empty());
            if context.is_some_and(|c| c != "default") || has_current_context() {
                None
            } else {
                Some(PathBuf::from(DEFAULT_SOCKET))
            }
        }
    }
}

/// Whether the CLI's `config.json` names a current context other than `default`.
fn has_current_context() -> bool {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker")));
    let Some(dir) = dir else {
        return false;
    };
    let Ok(text) = std::fs::read_to_string(dir.join("config.json")) else {
        return false;
    };
    #[derive(Deserialize)]
    struct CliConfig {
        #[serde(rename = "currentContext", default)]
        current_context: Option<String>,
    }
    match serde_json::from_str::<CliConfig>(&text) {
        Ok(config) => config
            .current_context
            .is_some_and(|c| !c.is_empty() && c != "default"),
        // Unreadable config: let the CLI decide.
        Err(_) => true,
    }
}

/// The parts of `docker container inspect`'s JSON that are reported.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Inspected {
    id: String,
    name: String,
    #[serde(default)]
    restart_count: u64,
    state: InspectedState,
    config: InspectedConfig,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectedState {
    status: String,
    #[serde(default)]
    health: Option<InspectedHealth>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectedHealth {
    status: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectedConfig {
    image: String,
}

/// Parses `docker container inspect`'s JSON array.
fn parse_inspect(json: &str) -> Result<Vec<Container>, serde_json::Error> {
    let inspected: Vec<Inspected> = serde_json::from_str(json)?;
    Ok(inspected
        .into_iter()
        .map(|c| Container {
            id: c.id.chars().take(12).collect(),
            name: c.name.trim_start_matches('/').to_owned(),
            image: c.config.image,
            state: c.state.status,
            health: c
                .state
                .health
                .map(|h| h.status)
                .filter(|s| !s.is_empty() && s != "none"),
            restart_count: c.restart_count,
            cpu_percent: None,
            memory_mb: None,
        })
        .collect())
}

/// One line of `docker stats --format '{{json .}}'`.
#[derive(Deserialize)]
struct StatsLine {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "CPUPerc")]
    cpu: String,
    #[serde(rename = "MemUsage")]
    mem: String,
}

/// CPU percent and memory MiB per short id, and messages for skipped lines.
type Figures = HashMap<String, (Option<f64>, Option<u64>)>;

fn parse_stats(out: &str) -> (Figures, Vec<String>) {
    let mut figures = HashMap::new();
    let mut skipped = Vec::new();
    for line in out.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match serde_json::from_str::<StatsLine>(line) {
            Ok(stats) => {
                let cpu = stats.cpu.trim().trim_end_matches('%').parse::<f64>().ok();
                let mem = stats
                    .mem
                    .split('/')
                    .next()
                    .and_then(|used| parse_size(used.trim()))
                    .map(|bytes| bytes / (1 << 20));
                figures.insert(stats.id.chars().take(12).collect(), (cpu, mem));
            }
            Err(err) => skipped.push(format!("{err} in {line:?}")),
        }
    }
    (figures, skipped)
}

/// Bytes in a size as Docker prints it: `512B`, `1.5KiB`, `12.3MiB`, `2GiB`,
/// or decimal `kB`/`MB`/`GB`/`TB`.
fn parse_size(text: &str) -> Option<u64> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor: f64 = match unit.trim() {
        "B" | "" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "TiB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        _ => return None,
    };
    let bytes = number * factor;
    // Float-to-int `as` saturates; sizes are far below u64::MAX.
    (bytes.is_finite() && bytes >= 0.0).then_some(bytes as u64)
}

impl DockerSection {
    /// `3 containers, 2 running, 1 unhealthy` (for the journal).
    pub(crate) fn summary(&self) -> String {
        let running = self
            .containers
            .iter()
            .filter(|c| c.state == "running")
            .count();
        let unhealthy = self
            .containers
            .iter()
            .filter(|c| c.health.as_deref() == Some("unhealthy"))
            .count();
        let mut line = format!(
            "{}, {running} running",
            plural(self.containers.len(), "container", "containers")
        );
        if unhealthy > 0 {
            line.push_str(&format!(", {unhealthy} unhealthy"));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Shapes as documented for `docker container inspect` (Engine API
    // ContainerInspectResponse) and `docker stats --format '{{json .}}'`.
    const INSPECT: &str = r#"[
      {"Id": "4f66ad9a0b2e8f3c9a1d7e6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d",
       "Name": "/web", "RestartCount": 3,
       "State": {"Status": "running", "Running": true,
                 "Health": {"Status": "unhealthy", "FailingStreak": 4, "Log": []}},
       "Config": {"Image": "nginx:1.27", "Env": []}},
      {"Id": "9c8d7e6f5a4b3c2d1e0f9a8b7c6d4f66ad9a0b2e8f3c9a1d7e6b5c4d3e2f1a0b",
       "Name": "/batch", "RestartCount": 0,
       "State": {"Status": "exited", "Running": false, "ExitCode": 1},
       "Config": {"Image": "busybox"}}
    ]"#;

    const STATS: &str = concat!(
        r#"{"BlockIO":"0B / 0B","CPUPerc":"12.50%","Container":"4f66","ID":"4f66ad9a0b2e8f3c9a1d7e6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d","MemPerc":"1.2%","MemUsage":"95.5MiB / 7.6GiB","Name":"web","NetIO":"1kB / 0B","PIDs":"5"}"#,
        "\n",
        r#"{"BlockIO":"0B / 0B","CPUPerc":"--","Container":"9c8d","ID":"9c8d7e6f5a4b3c2d1e0f9a8b7c6d4f66ad9a0b2e8f3c9a1d7e6b5c4d3e2f1a0b","MemPerc":"--","MemUsage":"-- / --","Name":"batch","NetIO":"--","PIDs":"--"}"#,
        "\nnot json\n"
    );

    #[test]
    fn parses_inspect_output() {
        let containers = parse_inspect(INSPECT).unwrap();
        assert_eq!(containers[0].id, "4f66ad9a0b2e");
        assert_eq!(containers[0].name, "web");
        assert_eq!(containers[0].image, "nginx:1.27");
        assert_eq!(containers[0].state, "running");
        assert_eq!(containers[0].health.as_deref(), Some("unhealthy"));
        assert_eq!(containers[0].restart_count, 3);
        assert_eq!(containers[1].health, None);
        assert!(parse_inspect("{").is_err());
    }

    #[test]
    fn parses_stats_output() {
        let (figures, skipped) = parse_stats(STATS);
        assert_eq!(figures["4f66ad9a0b2e"], (Some(12.5), Some(95)));
        assert_eq!(figures["9c8d7e6f5a4b"], (None, None));
        assert_eq!(skipped.len(), 1);
    }

    #[test]
    fn parses_docker_sizes() {
        assert_eq!(parse_size("512B"), Some(512));
        assert_eq!(parse_size("1.5KiB"), Some(1536));
        assert_eq!(parse_size("2GiB"), Some(2 << 30));
        assert_eq!(parse_size("3MB"), Some(3_000_000));
        assert_eq!(parse_size("--"), None);
        assert_eq!(parse_size("5 parsecs"), None);
    }

    #[test]
    fn knows_the_socket_only_for_unix_hosts() {
        assert_eq!(
            local_socket(Some("unix:///run/d.sock")),
            Some(PathBuf::from("/run/d.sock"))
        );
        assert_eq!(local_socket(Some("tcp://10.0.0.1:2376")), None);
    }
}
