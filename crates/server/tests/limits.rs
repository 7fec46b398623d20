//! The limits of `pseudoform_server::serve` on a real listener: panics
//! answer 500 and the server lives, a slow or idle client is dropped while
//! others are served, the connection cap holds, and the release profile
//! unwinds.

#![cfg(test)]

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use pseudoform_server::{harden, serve, Limits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn internal() -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, "internal").into_response()
}

#[allow(clippy::panic)]
async fn panics() -> &'static str {
    panic!("a bug in a handler")
}

#[allow(clippy::panic)]
async fn panics_in_blocking() -> &'static str {
    tokio::task::spawn_blocking(|| -> &'static str { panic!("a bug in blocking work") })
        .await
        .unwrap()
}

async fn echo(body: String) -> String {
    body
}

/// A server with `limits` on a free port; its address.
async fn start(limits: Limits) -> std::net::SocketAddr {
    let router = Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route("/panic", get(panics))
        .route("/panic-blocking", get(panics_in_blocking))
        .route("/echo", post(echo));
    let router = harden(router, &limits, internal);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { serve(listener, router, &limits, std::future::pending()).await });
    address
}

/// Sends `request` on a new connection and reads the answer until the
/// server closes it (bounded).
async fn exchange(address: std::net::SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .ok();
    String::from_utf8_lossy(&answer).into_owned()
}

fn get_request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
}

#[tokio::test]
async fn a_panicking_request_answers_500_and_the_server_lives() {
    let address = start(Limits::default()).await;
    for path in ["/panic", "/panic-blocking", "/panic"] {
        let answer = exchange(address, &get_request(path)).await;
        assert!(answer.starts_with("HTTP/1.1 500"), "{path}: {answer}");
        assert!(
            answer.ends_with("internal"),
            "{path}: the server's own body"
        );
        assert!(
            !answer.contains("a bug"),
            "the panic message stays in the log"
        );
    }
    let answer = exchange(address, &get_request("/ok")).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn slow_and_idle_clients_are_dropped_while_others_are_served() {
    let limits = Limits {
        header_timeout_seconds: 1,
        body_timeout_seconds: 1,
        ..Limits::default()
    };
    let address = start(limits).await;
    // Half-sent headers, a stalled body, a connection that says nothing.
    let mut half_headers = TcpStream::connect(address).await.unwrap();
    half_headers
        .write_all(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Le")
        .await
        .unwrap();
    let mut stalled_body = TcpStream::connect(address).await.unwrap();
    stalled_body
        .write_all(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n0123456789")
        .await
        .unwrap();
    let mut idle = TcpStream::connect(address).await.unwrap();
    // Meanwhile others are served.
    for _ in 0..5 {
        let answer = exchange(address, &get_request("/ok")).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    // Each slow connection is closed by the server (bounded wait: a
    // connection the server never closes fails the test).
    for (name, stream) in [
        ("half-sent headers", &mut half_headers),
        ("stalled body", &mut stalled_body),
        ("idle", &mut idle),
    ] {
        let mut rest = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "{name}: the server closed the connection");
        let text = String::from_utf8_lossy(&rest);
        assert!(
            !text.starts_with("HTTP/1.1 2"),
            "{name}: not served: {text}"
        );
    }
    let answer = exchange(address, &get_request("/ok")).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn connections_past_the_cap_wait_until_one_closes() {
    let limits = Limits {
        max_connections: 2,
        ..Limits::default()
    };
    let address = start(limits).await;
    let first = TcpStream::connect(address).await.unwrap();
    let second = TcpStream::connect(address).await.unwrap();
    // Both are accepted (served) before the third: prove it with a request
    // on one of them later. The third waits.
    let mut third = TcpStream::connect(address).await.unwrap();
    third
        .write_all(get_request("/ok").as_bytes())
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(500), third.read(&mut buf)).await;
    assert!(
        early.is_err(),
        "a third connection is not served while two are open"
    );
    drop(first);
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), third.read_to_end(&mut answer))
        .await
        .expect("served once a connection closed")
        .unwrap();
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    drop(second);
}

#[test]
fn zero_limits_are_refused() {
    assert!(Limits::default().validate().is_ok());
    let zero = Limits {
        max_connections: 0,
        ..Limits::default()
    };
    assert!(zero.validate().is_err());
    let zero = Limits {
        header_timeout_seconds: 0,
        ..Limits::default()
    };
    assert_eq!(
        zero.validate().unwrap_err().to_string(),
        "limits.header_timeout_seconds must be positive"
    );
}

/// The servers are built with the release profile: it must unwind (so a
/// panic is a 500, not the end of the process); only the browser module's
/// own profile aborts.
#[test]
fn the_release_profile_unwinds_and_only_the_wasm_profile_aborts() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml")).unwrap();
    let manifest: toml::Value = toml::from_str(&text).unwrap();
    let profile = &manifest["profile"];
    assert_eq!(profile["release"]["panic"].as_str(), Some("unwind"));
    assert_eq!(profile["wasm"]["inherits"].as_str(), Some("release"));
    assert_eq!(profile["wasm"]["panic"].as_str(), Some("abort"));
}
