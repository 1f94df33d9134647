//! The scripted server over real loopback HTTP, without the CLI.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use retort_testkit::{Answer, ModelServer, Reply, Rule, Scenario, Usage, When};
use serde_json::{Value, json};

/// Sends one request on `stream` and reads the response: status, headers, body.
fn exchange(
    stream: &mut TcpStream,
    method: &str,
    path: &str,
    body: &Value,
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    write!(stream, "{method} {path} HTTP/1.1\r\nhost: x\r\nx-api-key: secret\r\ncontent-length: {}\r\n\r\n{body}", body.len()).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let Some((name, value)) = line.trim_end().split_once(": ") else {
            break;
        };
        headers.push((name.to_owned(), value.to_owned()));
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .unwrap()
        .1
        .parse()
        .unwrap();
    let mut body = vec![0; if method == "HEAD" { 0 } else { length }];
    reader.read_exact(&mut body).unwrap();
    (status, headers, body)
}

fn request(prompt: Value, tools: bool, stream: bool) -> Value {
    let tools = if tools {
        json!([{"name": "Bash"}])
    } else {
        json!([])
    };
    json!({"model": "m", "stream": stream, "tools": tools, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "first"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
        {"role": "user", "content": prompt},
        {"role": "system", "content": "trailing system entry"},
    ]})
}

#[test]
fn one_keep_alive_connection_gets_rules_in_order_budgets_and_endpoints() {
    let server = ModelServer::start(
        Scenario::new()
            .rule(Rule::new(When::prompt_contains("Step 2"), Reply::rate_limited(7)).times(1))
            .rule(
                Rule::new(When::prompt_contains("Step 2"), Reply::text("second try"))
                    .usage(Usage::new(5, 6)),
            )
            .when(When::SideRequest, Reply::text("title")),
    )
    .unwrap();
    let mut stream = TcpStream::connect(server.addr()).unwrap();

    let (status, headers, _) = exchange(&mut stream, "HEAD", "/", &Value::Null);
    assert_eq!(status, 200);
    assert!(headers.contains(&("connection".to_owned(), "keep-alive".to_owned())));

    let (status, headers, body) = exchange(
        &mut stream,
        "POST",
        "/v1/messages?beta=true",
        &request(json!("do Step 2"), true, false),
    );
    assert_eq!(status, 429);
    assert!(headers.contains(&("retry-after".to_owned(), "7".to_owned())));
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["error"]["type"],
        "rate_limit_error"
    );

    let (status, _, body) = exchange(
        &mut stream,
        "POST",
        "/v1/messages",
        &request(json!([{"type": "text", "text": "do Step 2"}]), true, false),
    );
    assert_eq!(status, 200);
    let message: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(message["content"][0]["text"], "second try");
    assert_eq!(message["usage"]["input_tokens"], 5);

    // A side request quoting the prompt does not trigger the prompt's rules.
    let (_, headers, body) = exchange(
        &mut stream,
        "POST",
        "/v1/messages?beta=true",
        &request(json!("<session>Step 2</session>"), false, true),
    );
    assert!(headers.contains(&("content-type".to_owned(), "text/event-stream".to_owned())));
    let text: String = String::from_utf8(body)
        .unwrap()
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .map(|data| serde_json::from_str::<Value>(data).unwrap())
        .filter_map(|event| event["delta"]["text"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(text, "title");

    let (status, _, _) = exchange(&mut stream, "GET", "/v1/models", &Value::Null);
    assert_eq!(status, 404);

    let requests = server.requests();
    let answers: Vec<&Answer> = requests.iter().map(|r| &r.answer).collect();
    assert_eq!(
        answers,
        [
            &Answer::Endpoint(200),
            &Answer::Rule(0),
            &Answer::Rule(1),
            &Answer::Rule(2),
            &Answer::Endpoint(404)
        ]
    );
    assert_eq!(requests[1].header("x-api-key"), Some("<redacted>"));
    assert_eq!(requests[2].messages().last_user_text(), "do Step 2");
    assert_eq!(
        requests[2].messages().roles(),
        ["user", "assistant", "user", "system"]
    );
}
