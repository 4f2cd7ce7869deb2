//! The `testkit` binary as a person runs it: `--run-image` makes pods real processes, a deleted
//! pod's process gets its SIGTERM, and SIGTERM stops the whole cluster while it is busy.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn kubectl(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(testkit::harness::kubectl_binary())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn wait_until<T>(what: &str, seconds: u64, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

struct Server {
    child: Child,
    kubeconfig: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path) -> Server {
    start_with(dir, &[])
}

fn start_with(dir: &Path, extra: &[&str]) -> Server {
    let kubeconfig = dir.join("kc");
    let mut child = Command::new(env!("CARGO_BIN_EXE_testkit"))
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--run-image", "example/python-http=/usr/bin/python3", "--volume-refresh-delay", "1"])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.starts_with("testkit API server at https://127.0.0.1:"), "{line}");
    // Keep reading what it prints, as a terminal would.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    Server { child, kubeconfig }
}

const DEPLOYMENT: &str = r#"{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "http"},
  "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "http"}}, "template": {"metadata": {"labels": {"app": "http"}},
    "spec": {"containers": [{"name": "http", "image": "example/python-http:1",
      "args": ["-m", "http.server", "--bind", "$(POD_IP)", "8080"],
      "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
      "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}]}}}}"#;

fn pod_ips(kubeconfig: &Path) -> Vec<String> {
    let out = kubectl(kubeconfig, &["get", "pods", "-l", "app=http", "-o", "jsonpath={.items[*].status.podIP}"], None);
    String::from_utf8_lossy(&out.stdout).split_whitespace().map(String::from).collect()
}

fn serving(ip: &str) -> bool {
    std::net::TcpStream::connect_timeout(&format!("{ip}:8080").parse().unwrap(), Duration::from_millis(500)).is_ok()
}

#[test]
fn sigterm_stops_a_busy_cluster_and_the_processes_it_runs() {
    let dir = tempfile_dir();
    let mut server = start(&dir);
    let out = kubectl(&server.kubeconfig, &["apply", "-f", "-"], Some(DEPLOYMENT));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = kubectl(&server.kubeconfig, &["rollout", "status", "deployment/http", "--timeout=60s"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ips = pod_ips(&server.kubeconfig);
    assert_eq!(ips.len(), 2);
    assert!(ips.iter().all(|ip| serving(ip)));

    // A deleted pod's process gets SIGTERM (python's server stops at once), long before its
    // 30 s grace period would end in SIGKILL.
    let name = kubectl(
        &server.kubeconfig,
        &["get", "pods", "-l", "app=http", "-o", "jsonpath={.items[0].metadata.name}"],
        None,
    );
    let name = String::from_utf8_lossy(&name.stdout).into_owned();
    let victim = kubectl(&server.kubeconfig, &["get", "pod", &name, "-o", "jsonpath={.status.podIP}"], None);
    let victim = String::from_utf8_lossy(&victim.stdout).into_owned();
    let out = kubectl(&server.kubeconfig, &["delete", "pod", &name, "--timeout=20s"], None);
    assert!(out.status.success(), "the pod went within 20 s: {}", String::from_utf8_lossy(&out.stderr));
    assert!(!serving(&victim));

    // Busy: a watch streams, the kubelet probes its processes. SIGTERM stops it all.
    let mut watch = Command::new(testkit::harness::kubectl_binary())
        .arg("--kubeconfig")
        .arg(&server.kubeconfig)
        .args(["get", "pods", "-A", "-w"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ips = wait_until("two serving pods again", 30, || {
        let ips = pod_ips(&server.kubeconfig);
        (ips.len() == 2 && ips.iter().all(|ip| serving(ip))).then_some(ips)
    });
    unsafe {
        libc::kill(server.child.id() as i32, libc::SIGTERM);
    }
    let status = wait_until("testkit to exit after SIGTERM", 20, || server.child.try_wait().unwrap());
    assert!(status.success(), "{status:?}");
    assert!(ips.iter().all(|ip| !serving(ip)), "no process is left behind");
    let _ = watch.kill();
    let _ = watch.wait();
}

#[test]
fn faults_given_on_the_command_line_reach_kubectl() {
    let dir = tempfile_dir();
    let server = start_with(
        &dir,
        &[
            "--fault",
            "verb=list resource=pods status=503",
            "--latency",
            "150ms",
            "--drop-watches-every",
            "1s",
            "--compact-every",
            "1s",
        ],
    );
    let started = std::time::Instant::now();
    let out = kubectl(&server.kubeconfig, &["get", "namespaces", "-o", "name"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(started.elapsed() >= std::time::Duration::from_millis(150), "every request is delayed");
    let out = kubectl(&server.kubeconfig, &["get", "pods", "-A"], None);
    assert!(!out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ServiceUnavailable") || stderr.contains("503"), "{stderr}");
    // A watch from before a compaction is told it is too old (410 Gone).
    kubectl(&server.kubeconfig, &["create", "namespace", "churn"], None);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let rv = 1;
    let url = format!("/api/v1/namespaces?watch=1&resourceVersion={rv}&timeoutSeconds=1");
    let out = kubectl(&server.kubeconfig, &["get", "--raw", &url], None);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("410") || text.contains("Expired") || text.contains("too old"), "{text}");

    // A misspelt fault is refused before the server starts.
    let out = Command::new(env!("CARGO_BIN_EXE_testkit"))
        .args(["--kubeconfig", dir.join("other").to_str().unwrap(), "--fault", "verb=get colour=red"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown key \"colour\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A folder of this test's own: tests run in parallel, each with its server and kubeconfig.
fn tempfile_dir() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("testkit-binary-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
