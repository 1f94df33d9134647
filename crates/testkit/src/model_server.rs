//! The scripted Messages API server: loopback only, one thread per
//! connection, stopped when dropped.
//!
//! Endpoints (as Claude Code 2.1.197 uses them; see the crate README):
//! - `POST /v1/messages` (any query, e.g. `?beta=true`): the [`Scenario`]'s
//!   reply, as SSE when the body says `stream: true`, else one JSON message.
//! - `POST /v1/messages/count_tokens`: `{"input_tokens": <body bytes / 4>}`.
//! - `HEAD /` (the CLI's start-up reachability probe) and `GET /`: 200, empty.
//! - anything else: 404 `not_found_error`.
//!
//! Every request is recorded ([`ModelServer::requests`]).

use std::io::{self, BufReader};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::http::{self, RawRequest};
use crate::request::{Answer, MessagesRequest, RecordedRequest};
use crate::scenario::{FALLBACK_TEXT, Reply, SIDE_FALLBACK_TEXT, Scenario};
use crate::wire::{self, ReplyIds, Response};

/// A running scripted model on `127.0.0.1:<free port>`; dropping it stops it.
pub struct ModelServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

struct Shared {
    scenario: Scenario,
    /// How many requests each rule has answered.
    used: Mutex<Vec<u32>>,
    requests: Mutex<Vec<RecordedRequest>>,
    replies: AtomicU64,
    stopping: AtomicBool,
}

impl ModelServer {
    /// Binds `127.0.0.1:0` and serves `scenario` on background threads.
    ///
    /// # Errors
    /// The bind's or the thread spawn's I/O error.
    pub fn start(scenario: Scenario) -> io::Result<ModelServer> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let rules = scenario.rules.len();
        let shared = Arc::new(Shared {
            scenario,
            used: Mutex::new(vec![0; rules]),
            requests: Mutex::new(Vec::new()),
            replies: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("model-server".to_owned())
                .spawn(move || accept(&listener, &shared))?
        };
        Ok(ModelServer {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// The bound address, `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL for `ANTHROPIC_BASE_URL`: `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// The `POST /v1/messages` requests received so far, in arrival order.
    pub fn message_requests(&self) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(RecordedRequest::is_messages)
            .collect()
    }

    /// Waits until `done` holds for the requests received, polling every
    /// 50 ms for at most `timeout`; returns the requests either way.
    pub fn wait_for(
        &self,
        timeout: Duration,
        done: impl Fn(&[RecordedRequest]) -> bool,
    ) -> Vec<RecordedRequest> {
        let deadline = Instant::now() + timeout;
        loop {
            let requests = self.requests();
            if done(&requests) || Instant::now() >= deadline {
                return requests;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ModelServer {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the blocking accept so the thread sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn accept(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let shared = Arc::clone(shared);
        let _ = thread::Builder::new()
            .name("model-connection".to_owned())
            .spawn(move || serve(stream, &shared));
    }
}

/// Serves one keep-alive connection until the client closes it, asks to, or
/// the server stops (checked at least every 200 ms while idle).
fn serve(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        let request = match http::read_request(&mut reader) {
            Ok(Some(request)) => request,
            Ok(None) => break,
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) && reader.buffer().is_empty() =>
            {
                continue;
            }
            Err(error) => {
                let response = wire::error(400, "invalid_request_error", &error.to_string());
                record(shared, None, Answer::Invalid(400));
                let _ = http::write_response(&mut writer, &response, false, true);
                break;
            }
        };
        let close = request.wants_close();
        let response = answer(shared, &request);
        if http::write_response(&mut writer, &response, request.method == "HEAD", close).is_err()
            || close
        {
            break;
        }
    }
    let _ = writer.shutdown(Shutdown::Both);
}

fn record(shared: &Shared, request: Option<(&RawRequest, Value)>, answer: Answer) {
    let recorded = match request {
        Some((raw, body)) => RecordedRequest {
            method: raw.method.clone(),
            path: raw.path.clone(),
            headers: raw
                .headers
                .iter()
                .map(|(name, value)| {
                    let value = if name == "x-api-key" || name == "authorization" {
                        "<redacted>".to_owned()
                    } else {
                        value.clone()
                    };
                    (name.clone(), value)
                })
                .collect(),
            body,
            answer,
        },
        None => RecordedRequest {
            method: String::new(),
            path: String::new(),
            headers: Vec::new(),
            body: Value::Null,
            answer,
        },
    };
    lock(&shared.requests).push(recorded);
}

fn answer(shared: &Shared, raw: &RawRequest) -> Response {
    let body: Value = serde_json::from_slice(&raw.body).unwrap_or(Value::Null);
    let route = raw.path.split('?').next().unwrap_or("");
    let (response, answer) = match (raw.method.as_str(), route) {
        ("POST", "/v1/messages") => {
            if body.is_object() {
                messages(shared, &body)
            } else {
                let response = wire::error(
                    400,
                    "invalid_request_error",
                    "the body is not a JSON object",
                );
                (response, Answer::Invalid(400))
            }
        }
        ("POST", "/v1/messages/count_tokens") => {
            let tokens = raw.body.len() / 4;
            (
                Response::json(200, &json!({"input_tokens": tokens})),
                Answer::Endpoint(200),
            )
        }
        ("HEAD" | "GET", "/") => {
            let mut response = Response::json(200, &Value::Null);
            response.body.clear();
            (response, Answer::Endpoint(200))
        }
        _ => {
            let message = format!("scripted-model has no {} {}", raw.method, route);
            (
                wire::error(404, "not_found_error", &message),
                Answer::Endpoint(404),
            )
        }
    };
    record(shared, Some((raw, body)), answer);
    response
}

/// Picks and renders the reply to a Messages request, waiting out the rule's
/// delay.
fn messages(shared: &Shared, body: &Value) -> (Response, Answer) {
    let request = MessagesRequest::new(body);
    let chosen = {
        let mut used = lock(&shared.used);
        let index = shared
            .scenario
            .rules
            .iter()
            .enumerate()
            .position(|(index, rule)| {
                rule.times.is_none_or(|times| used[index] < times) && rule.when.matches(&request)
            });
        if let Some(index) = index {
            used[index] += 1;
        }
        index
    };
    let n = shared.replies.fetch_add(1, Ordering::SeqCst) + 1;
    let ids = ReplyIds::numbered(n);
    let scenario = &shared.scenario;
    match chosen {
        Some(index) => {
            let rule = &scenario.rules[index];
            if rule.delay_ms > 0 {
                thread::sleep(Duration::from_millis(rule.delay_ms));
            }
            let usage = rule.usage.unwrap_or(scenario.usage);
            let response =
                wire::render(&rule.reply, request.model(), request.stream(), usage, &ids);
            (response, Answer::Rule(index))
        }
        None => {
            let text = if request.is_side() {
                SIDE_FALLBACK_TEXT
            } else {
                FALLBACK_TEXT
            };
            let response = wire::render(
                &Reply::text(text),
                request.model(),
                request.stream(),
                scenario.usage,
                &ids,
            );
            (response, Answer::Fallback)
        }
    }
}
