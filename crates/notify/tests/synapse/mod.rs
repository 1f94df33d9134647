//! A real Synapse homeserver for the Matrix tests: one per test binary,
//! started on first use, on 127.0.0.1 and a free port, SQLite, no
//! federation, no stats reporting, rate limits raised.
//!
//! Synapse comes from `install.sh` beside this file (a virtual environment
//! with `matrix-synapse` from PyPI); a test fails with a clear message when
//! it is missing. Synapse runs under a small `sh` guard that reads its
//! standard input from this process: when this process ends, however it
//! ends, the pipe closes, and the guard stops Synapse and removes its
//! directory. Dropping a [`Synapse`] does the same at once.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long Synapse may take to answer `/versions` after start: 120 s (it
/// took about 5 s on the project's 2-core machine).
const START_LIMIT: Duration = Duration::from_secs(120);

/// A running Synapse.
pub struct Synapse {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// How long it took to answer its first request.
    pub started_in: Duration,
    dir: PathBuf,
    venv: PathBuf,
    guard: Option<Child>,
    guard_stdin: Option<ChildStdin>,
    users: Vec<User>,
}

/// A registered user and its access token.
pub struct User {
    pub user_id: String,
    pub token: String,
}

impl Synapse {
    /// The Synapse shared by this test binary's tests.
    pub fn shared() -> &'static Synapse {
        static SHARED: OnceLock<Synapse> = OnceLock::new();
        SHARED.get_or_init(|| Synapse::start().unwrap_or_else(|reason| panic!("{reason}")))
    }

    fn start() -> Result<Synapse, String> {
        let venv = venv();
        let python = venv.join("bin/python");
        if !python.exists() || !venv.join("bin/register_new_matrix_user").exists() {
            return Err(format!(
                "Synapse is not installed in {}: run crates/notify/tests/synapse/install.sh \
                 (it creates that virtual environment and installs matrix-synapse from PyPI; \
                 .ci/run does it)",
                venv.display()
            ));
        }
        let dir = tempfile::Builder::new()
            .prefix("retort-synapse-")
            .tempdir()
            .map_err(|e| format!("no temporary directory: {e}"))?
            .keep();
        let port = free_port();
        let config = dir.join("homeserver.yaml");
        std::fs::write(&config, homeserver_yaml(&dir, port)).unwrap();
        let key = Command::new(venv.join("bin/generate_signing_key"))
            .arg("-o")
            .arg(dir.join("signing.key"))
            .output()
            .map_err(|e| format!("generate_signing_key: {e}"))?;
        if !key.status.success() {
            return Err(format!(
                "generate_signing_key failed: {}",
                String::from_utf8_lossy(&key.stderr)
            ));
        }
        let log = std::fs::File::create(dir.join("synapse.log")).unwrap();
        let started = Instant::now();
        let mut guard = Command::new("sh")
            .arg("-c")
            .arg(
                r#""$0" -m synapse.app.homeserver -c "$1" & pid=$!
                   read _ignored
                   kill "$pid" 2>/dev/null; wait "$pid"; rm -rf "$2""#,
            )
            .arg(&python)
            .arg(&config)
            .arg(&dir)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start Synapse: {e}"))?;
        let guard_stdin = guard.stdin.take();
        let mut synapse = Synapse {
            base: format!("http://127.0.0.1:{port}"),
            started_in: Duration::ZERO,
            dir,
            venv,
            guard: Some(guard),
            guard_stdin,
            users: Vec::new(),
        };
        let agent = agent();
        loop {
            let versions = agent
                .get(format!("{}/_matrix/client/versions", synapse.base))
                .call();
            if versions.is_ok_and(|r| r.status() == 200) {
                break;
            }
            let exited = synapse
                .guard
                .as_mut()
                .and_then(|g| g.try_wait().ok().flatten());
            if exited.is_some() || started.elapsed() > START_LIMIT {
                return Err(format!(
                    "Synapse did not start within {START_LIMIT:?}; the end of its log:\n{}",
                    synapse.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        synapse.started_in = started.elapsed();
        eprintln!(
            "synapse: answering at {} after {:.1} s",
            synapse.base,
            synapse.started_in.as_secs_f64()
        );
        // Registering takes a Python start each (about 1.5 s): two users,
        // once, shared by the tests, which make their own rooms.
        let registering = Instant::now();
        synapse.users = vec![synapse.register("retort"), synapse.register("stranger")];
        eprintln!(
            "synapse: two users registered in {:.1} s",
            registering.elapsed().as_secs_f64()
        );
        Ok(synapse)
    }

    /// `@retort:localhost`, who creates the tests' rooms and posts to them.
    pub fn user(&self) -> &User {
        &self.users[0]
    }

    /// `@stranger:localhost`, who joins no room.
    pub fn stranger(&self) -> &User {
        &self.users[1]
    }

    /// Registers `name` (a fresh local part) with `register_new_matrix_user`
    /// and the shared secret in the config file (no secret on its command
    /// line), and logs it in.
    fn register(&self, name: &str) -> User {
        let password = format!("pw-{name}-{}", std::process::id());
        let password_file = self.dir.join(format!("{name}.password"));
        std::fs::write(&password_file, &password).unwrap();
        let output = Command::new(self.venv.join("bin/register_new_matrix_user"))
            .arg("-c")
            .arg(self.dir.join("homeserver.yaml"))
            .args(["-u", name, "--no-admin", "--password-file"])
            .arg(&password_file)
            .arg(&self.base)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "register_new_matrix_user {name}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let login = self.call(
            "POST",
            "/_matrix/client/v3/login",
            None,
            Some(serde_json::json!({
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": name},
                "password": password,
            })),
        );
        User {
            user_id: login["user_id"].as_str().unwrap().to_owned(),
            token: login["access_token"].as_str().unwrap().to_owned(),
        }
    }

    /// Creates a room with the alias `#ALIAS:localhost` as `user`; its id.
    pub fn create_room(&self, user: &User, alias: &str) -> String {
        let room = self.call(
            "POST",
            "/_matrix/client/v3/createRoom",
            Some(&user.token),
            Some(serde_json::json!({"room_alias_name": alias, "name": alias, "preset": "private_chat"})),
        );
        room["room_id"].as_str().unwrap().to_owned()
    }

    /// The `m.room.message` events of `room_id`, oldest first, as `user`
    /// reads them through `/messages`.
    pub fn messages(&self, user: &User, room_id: &str) -> Vec<serde_json::Value> {
        let page = self.call(
            "GET",
            &format!(
                "/_matrix/client/v3/rooms/{}/messages?dir=b&limit=100",
                room_id.replace('!', "%21").replace(':', "%3A")
            ),
            Some(&user.token),
            None,
        );
        let mut events: Vec<serde_json::Value> = page["chunk"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "m.room.message")
            .cloned()
            .collect();
        events.reverse();
        events
    }

    /// A client-server API call that must succeed; its JSON answer.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        let url = format!("{}{path}", self.base);
        let mut request = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let request = request
            .header("Content-Type", "application/json")
            .body(body.map(|b| b.to_string()).unwrap_or_default())
            .unwrap();
        let mut response = agent().run(request).unwrap();
        let status = response.status();
        let text = response.body_mut().read_to_string().unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap()
    }

    fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(self.dir.join("synapse.log")) {
            let _ = file.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Synapse {
    fn drop(&mut self) {
        // Closing the guard's standard input makes it stop Synapse and
        // remove its directory.
        drop(self.guard_stdin.take());
        if let Some(mut guard) = self.guard.take() {
            let _ = guard.wait();
        }
    }
}

/// A fresh name in this process: `NAME` and a number (`ops0`, `ops1`, …).
pub fn unique(name: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("{name}{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The virtual environment `install.sh` creates.
fn venv() -> PathBuf {
    if let Some(dir) = std::env::var_os("RETORT_SYNAPSE_VENV") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir).join("synapse-venv");
    }
    // The workspace's target directory: this file is also used by the
    // `retort` package's end-to-end tests, at the workspace root.
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .map(|dir| dir.join("target/synapse-venv"))
        .find(|venv| venv.exists())
        .unwrap_or_else(|| manifest.join("../../target/synapse-venv"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent()
}

/// The homeserver's configuration: throwaway secrets, generated per start.
fn homeserver_yaml(dir: &Path, port: u16) -> String {
    let dir = dir.display();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let secret = |what: &str| format!("{what}-{}-{port}-{nanos}", std::process::id());
    let limit = "{per_second: 1000, burst_count: 1000}";
    format!(
        r#"server_name: "localhost"
public_baseurl: "http://127.0.0.1:{port}/"
pid_file: "{dir}/homeserver.pid"
listeners:
  - port: {port}
    bind_addresses: ["127.0.0.1"]
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]
        compress: false
database:
  name: sqlite3
  args:
    database: "{dir}/homeserver.db"
media_store_path: "{dir}/media"
signing_key_path: "{dir}/signing.key"
trusted_key_servers: []
suppress_key_server_warning: true
federation_domain_whitelist: []
report_stats: false
enable_metrics: false
url_preview_enabled: false
registration_shared_secret: "{registration}"
macaroon_secret_key: "{macaroon}"
form_secret: "{form}"
rc_message: {limit}
rc_registration: {limit}
rc_room_creation: {limit}
rc_login:
  address: {limit}
  account: {limit}
  failed_attempts: {limit}
rc_joins:
  local: {limit}
  remote: {limit}
"#,
        registration = secret("registration"),
        macaroon = secret("macaroon"),
        form = secret("form"),
    )
}
