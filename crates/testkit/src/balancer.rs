//! HAProxy (Debian's `haproxy`, which `./build.sh setup` installs) in
//! front of TTP replicas on loopback, configured as docs/operations.md
//! advises: round robin, health checks on `/ready`, and the retries that
//! hide a replica's crash from clients. Each answer names its replica in
//! `X-Replica`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free port on 127.0.0.1 (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// HAProxy in front of the replicas' ports, in the foreground.
#[derive(Debug)]
pub struct Balancer {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Balancer {
    /// Writes `haproxy.cfg` into `dir` for the replicas on `replicas`, checks
    /// it and starts HAProxy in the foreground on `port`.
    pub fn start(dir: &Path, port: u16, replicas: &[u16]) -> Balancer {
        assert!(
            Path::new("/usr/sbin/haproxy").exists(),
            "HAProxy is missing: ./build.sh setup installs it (Debian package haproxy)"
        );
        let servers: String = replicas
            .iter()
            .enumerate()
            .map(|(i, p)| format!("    server r{i} 127.0.0.1:{p} check\n"))
            .collect();
        let config = format!(
            "global\n    maxconn 2000\n    tune.bufsize 65536\n\
             defaults\n    mode http\n    timeout connect 1s\n    timeout client 30s\n    timeout server 30s\n\
             \x20   retries 3\n    option redispatch 1\n    retry-on conn-failure empty-response response-timeout 503\n\
             \x20   option http-buffer-request\n\
             frontend ttp\n    bind 127.0.0.1:{port}\n    default_backend replicas\n\
             backend replicas\n    balance roundrobin\n    option httpchk GET /ready\n    http-check expect status 200\n\
             \x20   default-server inter 200ms fall 1 rise 2\n    http-response set-header X-Replica %s\n{servers}"
        );
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, config).unwrap();
        let check = Command::new("/usr/sbin/haproxy")
            .arg("-c")
            .arg("-f")
            .arg(&path)
            .output()
            .unwrap();
        assert!(check.status.success(), "{check:?}");
        let child = Command::new("/usr/sbin/haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Balancer {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Balancer {
    /// HAProxy's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the balancer answers `/ready` from each of `replicas` replicas.
pub async fn until_all_up(client: &reqwest::Client, base: &str, replicas: usize) {
    let started = Instant::now();
    let mut seen = std::collections::HashSet::new();
    while seen.len() < replicas {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "only {seen:?} up"
        );
        if let Ok(r) = client.get(format!("{base}/ready")).send().await {
            if r.status() == 200 {
                if let Some(name) = r.headers().get("x-replica") {
                    seen.insert(name.to_str().unwrap().to_owned());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
