//! Webhook delivery against a loopback HTTP server started by each test:
//! what is sent (method, path, headers, body), what each answer makes of the
//! message, and that a server that never answers does not hold a run past
//! its deadline.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use retort_notify::{
    DeliveryLog, Event, EventKind, MemoryLog, Notifier, NotifyConfig, Priority, Status, Target,
};

/// A request as the server read it.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the server does with a request.
#[derive(Clone, Copy)]
enum Reply {
    Status(u16),
    /// Reads the request and never answers.
    Silence,
}

/// A loopback HTTP/1.1 server answering each request with the next scripted
/// reply (the last one repeats), recording what it was sent.
struct Server {
    port: u16,
    requests: Receiver<Request>,
}

impl Server {
    fn start(replies: &[Reply]) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (sender, requests) = mpsc::channel();
        let replies = Arc::new(Mutex::new(replies.to_vec()));
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let sender = sender.clone();
                let replies = Arc::clone(&replies);
                thread::spawn(move || serve(stream, &sender, &replies));
            }
        });
        Server { port, requests }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Every request received so far.
    fn received(&self) -> Vec<Request> {
        self.requests.try_iter().collect()
    }
}

fn serve(stream: TcpStream, sender: &mpsc::Sender<Request>, replies: &Mutex<Vec<Reply>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let target = parts.next().unwrap_or_default().to_owned();
        let mut headers = Vec::new();
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).unwrap();
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap();
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, v)| v.parse().unwrap());
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let request = Request {
            method,
            target,
            headers,
            body: String::from_utf8(body).unwrap(),
        };
        let reply = {
            let mut replies = replies.lock().unwrap();
            if replies.len() > 1 {
                replies.remove(0)
            } else {
                replies[0]
            }
        };
        let _ = sender.send(request);
        match reply {
            Reply::Silence => {
                thread::sleep(Duration::from_secs(60));
                return;
            }
            Reply::Status(code) => {
                let body = format!("{{\"status\": {code}}}");
                let _ = write!(
                    stream,
                    "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
            }
        }
    }
}

fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap() + chrono::Duration::minutes(minutes)
}

fn escalation() -> Event {
    Event {
        formula: "run-supervisor".into(),
        kind: EventKind::Escalate,
        fingerprint: "report".into(),
        priority: None,
        title: "Cannot free disk space on /data".into(),
        body: "docker prune needs approval\nsee the journal".into(),
        run_id: "20250301-120000".into(),
        at: at(0),
    }
}

/// A webhook target from a `[[notify]]` table, its variables from `env`.
fn target(table: &str, env: &[(&str, &str)]) -> Target {
    #[derive(serde::Deserialize)]
    struct File {
        notify: Vec<NotifyConfig>,
    }
    let file: File = toml::from_str(&format!("[[notify]]\nkind = \"webhook\"\n{table}")).unwrap();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    file.notify[0]
        .resolve(|name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
        .unwrap()
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

#[test]
fn an_escalation_is_posted_as_json_with_the_configured_headers() {
    let server = Server::start(&[Reply::Status(204)]);
    let hook = target(
        &format!(
            "url = \"{}\"\nheaders_env = {{ \"X-Api-Key\" = \"HOOK_KEY\" }}",
            server.url("/hooks/retort?team=ops")
        ),
        &[("HOOK_KEY", "k3y-s3cr3t")],
    );
    let mut notifier = Notifier::new(vec![hook]);
    let mut log = MemoryLog::new();
    let report = notifier
        .notify(&mut log, "run-supervisor", &[escalation()], at(0), soon())
        .unwrap();

    assert_eq!(report.delivered().count(), 1, "{report:#?}");
    let requests = server.received();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.target, "/hooks/retort?team=ops");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("x-api-key"), Some("k3y-s3cr3t"));
    assert!(
        request
            .header("user-agent")
            .is_some_and(|ua| ua.starts_with("retort-notify/"))
    );
    let body: serde_json::Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(body["formula"], "run-supervisor");
    assert_eq!(body["kind"], "escalate");
    assert_eq!(body["fingerprint"], "report");
    assert_eq!(body["priority"], serde_json::Value::Null);
    assert_eq!(body["title"], "Cannot free disk space on /data");
    assert_eq!(body["body"], "docker prune needs approval\nsee the journal");
    assert_eq!(body["run_id"], "20250301-120000");
    assert_eq!(body["at"], "2025-03-01T12:00:00Z");
    assert_eq!(
        body["text"],
        "Escalation in run-supervisor: Cannot free disk space on /data\n\n\
         docker prune needs approval\nsee the journal\n\n\
         run 20250301-120000 · report · 2025-03-01T12:00:00Z"
    );

    let records = log.records("run-supervisor").unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].status, Status::Delivered);
    assert!(!format!("{records:?}").contains("k3y-s3cr3t"));
}

#[test]
fn a_body_template_and_a_content_type_header_replace_the_defaults() {
    let server = Server::start(&[Reply::Status(200)]);
    let hook = target(
        &format!(
            "url = \"{}\"\nbody = '''{{\"content\": {{{{ message | json }}}}, \"p\": {{{{ event.priority | json }}}}}}'''\n\
             headers_env = {{ \"Content-Type\" = \"TYPE\" }}",
            server.url("/discord")
        ),
        &[("TYPE", "application/vnd.chat+json")],
    );
    let mut finding = escalation();
    finding.kind = EventKind::Finding;
    finding.priority = Some(Priority::P1);
    finding.body = String::new();
    let mut notifier = Notifier::new(vec![hook]);
    let report = notifier
        .notify(
            &mut MemoryLog::new(),
            "run-supervisor",
            &[finding],
            at(0),
            soon(),
        )
        .unwrap();
    assert_eq!(report.delivered().count(), 1, "{report:#?}");
    let request = server.received().remove(0);
    assert_eq!(
        request.header("content-type"),
        Some("application/vnd.chat+json")
    );
    let body: serde_json::Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "content": "P1 finding in run-supervisor: Cannot free disk space on /data\n\n\
                        run 20250301-120000 · report · 2025-03-01T12:00:00Z",
            "p": "P1"
        })
    );
}

#[test]
fn a_server_error_leaves_the_message_pending_until_the_next_run_delivers_it() {
    let server = Server::start(&[Reply::Status(500), Reply::Status(200)]);
    let hook = target(
        &format!(
            "url = \"{}\"",
            server
                .url("/services/T0/B0/p4th-s3cr3t")
                .replace("http://", "http://bot:pw-s3cr3t@")
        ),
        &[],
    );
    let origin = server.url("");
    let mut notifier = Notifier::new(vec![hook]);
    let mut log = MemoryLog::new();

    let first = notifier
        .notify(&mut log, "run-supervisor", &[escalation()], at(0), soon())
        .unwrap();
    let pending: Vec<_> = first.pending().collect();
    assert_eq!(pending.len(), 1, "{first:#?}");
    let error = pending[0].last_error.clone().unwrap();
    assert_eq!(
        error,
        format!("webhook {origin}: HTTP 500 Internal Server Error")
    );

    // The next run escalates again: the pending message is retried, and no
    // second message is made.
    let second = notifier
        .notify(&mut log, "run-supervisor", &[escalation()], at(20), soon())
        .unwrap();
    assert_eq!(second.delivered().count(), 1, "{second:#?}");
    assert_eq!(second.attempts.len(), 1);
    let requests = server.received();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].body, requests[1].body, "the same message");

    // A third run within `repeat`: nothing is sent.
    let third = notifier
        .notify(&mut log, "run-supervisor", &[escalation()], at(40), soon())
        .unwrap();
    assert!(third.attempts.is_empty());
    assert_eq!(server.received().len(), 0);

    let saved = format!("{:?}{first:?}{second:?}", log.all().collect::<Vec<_>>());
    assert!(!saved.contains("s3cr3t"), "{saved}");
}

#[test]
fn a_client_error_is_refused_for_good() {
    let server = Server::start(&[Reply::Status(404)]);
    let hook = target(&format!("url = \"{}\"", server.url("/gone")), &[]);
    let mut notifier = Notifier::new(vec![hook]);
    let mut log = MemoryLog::new();
    let first = notifier
        .notify(&mut log, "run-supervisor", &[escalation()], at(0), soon())
        .unwrap();
    let failed: Vec<_> = first.failed().collect();
    assert_eq!(failed.len(), 1, "{first:#?}");
    assert_eq!(
        failed[0].last_error.as_deref(),
        Some(
            format!(
                "webhook {}: HTTP 404 Not Found; check `url`",
                server.url("")
            )
            .as_str()
        )
    );
    let next = notifier
        .notify(&mut log, "run-supervisor", &[], at(20), soon())
        .unwrap();
    assert!(next.attempts.is_empty(), "not retried");
    assert_eq!(server.received().len(), 1);
}

#[test]
fn a_server_that_never_answers_holds_delivery_no_longer_than_the_deadline() {
    let silent = Server::start(&[Reply::Silence]);
    let other = Server::start(&[Reply::Status(200)]);
    let targets = vec![
        target(&format!("url = \"{}\"", silent.url("/a")), &[]),
        target(&format!("url = \"{}\"", other.url("/b")), &[]),
    ];
    let mut notifier = Notifier::new(targets);
    let mut log = MemoryLog::new();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(1);
    let report = notifier
        .notify(&mut log, "run-supervisor", &[escalation()], at(0), deadline)
        .unwrap();
    let took = started.elapsed();

    // A bound on correctness, not a speed target: the request timeout is 10 s,
    // the deadline 1 s.
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let errors: Vec<String> = report
        .pending()
        .map(|r| r.last_error.clone().unwrap())
        .collect();
    assert_eq!(
        errors,
        [
            format!("webhook {}: no answer within 1.0 s", silent.url("")),
            format!(
                "webhook {}: not tried, the run's notification time is up",
                other.url("")
            ),
        ]
    );
    assert_eq!(silent.received().len(), 1);
    assert_eq!(other.received().len(), 0);

    // The next run, the silent target removed from the formula: the other
    // target gets its message.
    let mut notifier = Notifier::new(vec![target(&format!("url = \"{}\"", other.url("/b")), &[])]);
    let next = notifier
        .notify(&mut log, "run-supervisor", &[], at(20), soon())
        .unwrap();
    let delivered: Vec<_> = next.delivered().map(|r| r.target.clone()).collect();
    assert_eq!(delivered.len(), 1, "{next:#?}");
    assert_eq!(other.received().len(), 1);
}
