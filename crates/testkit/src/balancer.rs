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
    /// HAProxy's stats socket (`show stat`).
    socket: std::path::PathBuf,
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
        let socket = dir.join("haproxy.sock");
        let config = format!(
            "global\n    maxconn 2000\n    tune.bufsize 65536\n    stats socket {socket} mode 600 level operator\n\
             defaults\n    mode http\n    timeout connect 1s\n    timeout client 30s\n    timeout server 30s\n\
             \x20   retries 3\n    option redispatch 1\n    retry-on conn-failure empty-response\n\
             \x20   option http-buffer-request\n\
             frontend ttp\n    bind 127.0.0.1:{port}\n    default_backend replicas\n\
             backend replicas\n    balance roundrobin\n    option httpchk GET /ready\n    http-check expect status 200\n\
             \x20   default-server inter 200ms fall 1 rise 2\n    http-response set-header X-Replica %s\n{servers}",
            socket = socket.display()
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
            socket,
        }
    }
}

impl Balancer {
    /// The backend's `(wretr, wredis)` from `show stat` on the stats
    /// socket: the requests HAProxy resent to the same server, and those it
    /// redispatched to another — proof that a client saw no error because
    /// the balancer retried, not because nothing failed.
    pub fn retries(&self) -> (u64, u64) {
        use std::io::{Read, Write};
        let mut stream = std::os::unix::net::UnixStream::connect(&self.socket).unwrap();
        stream.write_all(b"show stat\n").unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        let mut lines = text.lines();
        let header: Vec<&str> = lines
            .next()
            .unwrap()
            .trim_start_matches("# ")
            .split(',')
            .collect();
        let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
        let (svname, wretr, wredis) = (column("svname"), column("wretr"), column("wredis"));
        let backend: Vec<&str> = lines
            .map(|l| l.split(',').collect::<Vec<_>>())
            .find(|row| row.get(svname) == Some(&"BACKEND"))
            .unwrap();
        let number = |i: usize| backend[i].parse::<u64>().unwrap_or(0);
        (number(wretr), number(wredis))
    }

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
