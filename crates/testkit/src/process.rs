//! A server binary as a real process on 127.0.0.1: started with its
//! arguments, its address read from its log (`address=…`), stopped with
//! SIGKILL (`kill -9`) as an operator's crash would.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `line` without ANSI colour sequences (`ESC [ … m`), which the log has
/// when the `ansi` feature of tracing-subscriber is on.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A running server process.
#[derive(Debug)]
pub struct Process {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Process {
    /// Starts `binary` with `args` and waits (at most 60 s) until it logs
    /// the address it listens on and `GET /health` answers 200.
    pub async fn start(binary: &str, args: &[&str]) -> Process {
        let mut child = Command::new(binary)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // The first lines of the log, for the message when the process ends
        // before it listens (a refused configuration, a taken port).
        let early = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let seen = std::sync::Arc::clone(&early);
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let line = strip_ansi(&line);
                if !sent {
                    if let Ok(mut lines) = seen.lock() {
                        if lines.len() < 40 {
                            lines.push(line.clone());
                        }
                    }
                    if let Some(at) = line.find("address=") {
                        let address: String = line[at + 8..]
                            .chars()
                            .take_while(|c| !c.is_whitespace())
                            .collect();
                        let _ = tx.send(address);
                        sent = true;
                    }
                }
            }
        });
        let mut process = Process {
            child,
            base: String::new(),
        };
        let address = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(60)))
            .await
            .unwrap()
            .unwrap_or_else(|_| {
                let status = process.child.try_wait().ok().flatten();
                let log = early.lock().map(|l| l.join("\n")).unwrap_or_default();
                panic!("{binary} did not log its address (exit: {status:?}); its log:\n{log}")
            });
        process.base = format!("http://{address}");
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            let health = client.get(format!("{}/health", process.base)).send().await;
            if health.is_ok_and(|r| r.status() == 200) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{binary} is not healthy"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        process
    }

    /// `kill -9`, and waits for the process to end.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}
