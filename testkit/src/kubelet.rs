//! A kubelet stand-in. Pods are scheduled onto one node and get their own loopback address
//! (127.0.0.x). Containers whose image matches a registered image rule run as real processes
//! (the project's own binary): env with the downward API, a kubeconfig for the pod's service
//! account, Secret/ConfigMap volumes materialised as files, liveness and readiness probes over
//! HTTP(S), restarts counted, and SIGTERM then SIGKILL after the grace period on deletion.
//! Other images give a pod that is Running and Ready without a process, or one that stays
//! Pending when annotated `testkit.stochastic.io/stay-pending: "true"`.

use crate::cluster::now_rfc3339;
use crate::rbac::UserInfo;
use crate::registry::GroupResource;
use crate::server::State;
use base64::Engine;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The node every pod runs on.
pub const NODE_NAME: &str = "testkit-node";
/// Annotation that keeps a pod Pending (unschedulable), for tests of pending pods.
pub const STAY_PENDING: &str = "testkit.stochastic.io/stay-pending";
/// Annotation that tells the kubelet to leave a pod alone: the test writes its status itself.
pub const UNMANAGED: &str = "testkit.stochastic.io/unmanaged";

/// How often Secret and ConfigMap volumes of running pods are brought up to date.
const VOLUME_REFRESH: Duration = Duration::from_secs(1);

/// Pods whose container image starts with `image_prefix` run `program` as a real process.
#[derive(Clone, Debug)]
pub struct ImageRule {
    pub image_prefix: String,
    pub program: PathBuf,
}

fn pods() -> GroupResource {
    GroupResource { group: String::new(), resource: "pods".into() }
}

struct ContainerProcess {
    name: String,
    /// No image rule: a container that is simply running and ready, without a process.
    simulated: bool,
    child: Option<Child>,
    restarts: i64,
    ready: bool,
    started_at: String,
    started: Instant,
    next_probe: Instant,
    liveness_failures: u32,
    readiness_failures: u32,
    last_exit: Option<(i32, String)>,
    restart_after: Option<Instant>,
}

struct PodRuntime {
    dir: PathBuf,
    /// When Secret and ConfigMap volumes were last refreshed.
    volumes_refreshed: Instant,
    ip: String,
    processes: Vec<ContainerProcess>,
    terminating_since: Option<Instant>,
    sigterm_sent: bool,
}

/// The kubelet thread; stops (and kills every process it started) when dropped.
pub struct Kubelet {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Kubelet {
    pub fn start(state: Arc<State>, root: PathBuf) -> Kubelet {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("testkit-kubelet".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("kubelet runtime");
                let mut pods: HashMap<String, PodRuntime> = HashMap::new();
                while !flag.load(Ordering::Relaxed) {
                    sync(&state, &root, &mut pods, &rt);
                    std::thread::sleep(Duration::from_millis(100));
                }
                for (_, pod) in pods.iter_mut() {
                    for p in &mut pod.processes {
                        if let Some(c) = &mut p.child {
                            kill(c, libc::SIGKILL);
                            let _ = c.wait();
                        }
                    }
                }
            })
            .expect("kubelet thread");
        Kubelet { stop, thread: Some(thread) }
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn kill(child: &Child, signal: i32) {
    // The container runs in its own process group: signal all of it.
    unsafe {
        libc::kill(-(child.id() as i32), signal);
    }
}

fn rule_for<'a>(rules: &'a [ImageRule], image: &str) -> Option<&'a ImageRule> {
    rules.iter().find(|r| image.starts_with(&r.image_prefix))
}

fn sync(state: &Arc<State>, root: &Path, runtimes: &mut HashMap<String, PodRuntime>, rt: &tokio::runtime::Runtime) {
    let rules = state.images.lock().unwrap().clone();
    let all: Vec<Value> = state.cluster.lock().unwrap().store.list(&pods(), None).cloned().collect();
    let live_uids: Vec<String> =
        all.iter().map(|p| p["metadata"]["uid"].as_str().unwrap_or_default().to_string()).collect();
    // Pods removed from the store (forced deletion): stop what they ran.
    runtimes.retain(|uid, pod| {
        if live_uids.contains(uid) {
            return true;
        }
        for p in &mut pod.processes {
            if let Some(c) = &mut p.child {
                kill(c, libc::SIGKILL);
                let _ = c.wait();
            }
        }
        false
    });
    for pod in all {
        let uid = pod["metadata"]["uid"].as_str().unwrap_or_default().to_string();
        let (ns, name) = crate::store::key_of(&pod);
        let deleting = !pod["metadata"]["deletionTimestamp"].is_null();
        let annotations = &pod["metadata"]["annotations"];
        if annotations[UNMANAGED] == "true" || (annotations[STAY_PENDING] == "true" && !deleting) {
            if deleting && annotations[UNMANAGED] == "true" {
                let mut cluster = state.cluster.lock().unwrap();
                let pod_type = cluster.registry.find("", "v1", "pods").cloned().unwrap();
                cluster.remove(&pod_type, &ns, &name);
            }
            continue;
        }
        if pod["spec"]["nodeName"].is_null() && !deleting {
            schedule(state, &pod, runtimes);
            continue;
        }
        if !runtimes.contains_key(&uid) && !deleting && pod["spec"]["nodeName"] == NODE_NAME {
            let ip = pod["status"]["podIP"].as_str().unwrap_or("127.0.0.1").to_string();
            let runtime = start_pod(state, root, &pod, &ip, &rules);
            runtimes.insert(uid.clone(), runtime);
        }
        if deleting {
            let finished = match runtimes.get_mut(&uid) {
                Some(runtime) => terminate(runtime, &pod),
                None => true,
            };
            if finished {
                runtimes.remove(&uid);
                let mut cluster = state.cluster.lock().unwrap();
                let pod_type = cluster.registry.find("", "v1", "pods").cloned().unwrap();
                let has_finalizers = pod["metadata"]["finalizers"].as_array().is_some_and(|f| !f.is_empty());
                if !has_finalizers {
                    cluster.remove(&pod_type, &ns, &name);
                }
            }
            continue;
        }
        let Some(runtime) = runtimes.get_mut(&uid) else { continue };
        if runtime.processes.iter().any(|p| !p.simulated) && runtime.volumes_refreshed.elapsed() >= VOLUME_REFRESH {
            materialise_volumes(state, &pod, &runtime.dir);
            runtime.volumes_refreshed = Instant::now();
        }
        supervise(state, &pod, runtime, &rules, rt);
        write_status(state, &pod, runtime);
    }
}

/// Binds the pod to the node and gives it a free loopback address.
fn schedule(state: &Arc<State>, pod: &Value, runtimes: &HashMap<String, PodRuntime>) {
    let mut cluster = state.cluster.lock().unwrap();
    let used: Vec<String> = cluster
        .store
        .list(&pods(), None)
        .filter_map(|p| p["status"]["podIP"].as_str().map(String::from))
        .chain(runtimes.values().map(|r| r.ip.clone()))
        .collect();
    let Some(ip) = (2..255).map(|i| format!("127.0.0.{i}")).find(|ip| !used.contains(ip)) else { return };
    let mut new = pod.clone();
    new["spec"]["nodeName"] = json!(NODE_NAME);
    new["status"] = json!({
        "phase": "Pending", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}],
        "startTime": now_rfc3339(), "qosClass": pod["status"]["qosClass"].as_str().unwrap_or("BestEffort"),
        "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": now_rfc3339()}],
    });
    cluster.store.put(&pods(), new);
}

fn start_pod(state: &Arc<State>, root: &Path, pod: &Value, ip: &str, rules: &[ImageRule]) -> PodRuntime {
    let (ns, name) = crate::store::key_of(pod);
    let dir = root.join(format!(
        "{ns}_{name}_{}",
        &pod["metadata"]["uid"].as_str().unwrap_or_default()
            [..8.min(pod["metadata"]["uid"].as_str().unwrap_or_default().len())]
    ));
    let _ = std::fs::create_dir_all(&dir);
    let mut processes = Vec::new();
    let needs_process = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| rule_for(rules, c["image"].as_str().unwrap_or_default()).is_some());
    let volumes = if needs_process { materialise_volumes(state, pod, &dir) } else { BTreeMap::new() };
    let kubeconfig = needs_process.then(|| {
        let sa = pod["spec"]["serviceAccountName"].as_str().unwrap_or("default");
        let token = state.issue_token(UserInfo::service_account(&ns, sa));
        let path = dir.join("kubeconfig");
        let _ = std::fs::write(&path, state.kubeconfig(&token, &format!("system:serviceaccount:{ns}:{sa}")));
        path
    });
    for c in pod["spec"]["containers"].as_array().into_iter().flatten() {
        let cname = c["name"].as_str().unwrap_or_default().to_string();
        let now = Instant::now();
        let mut process = ContainerProcess {
            name: cname,
            simulated: false,
            child: None,
            restarts: 0,
            ready: false,
            started_at: now_rfc3339(),
            started: now,
            next_probe: now,
            liveness_failures: 0,
            readiness_failures: 0,
            last_exit: None,
            restart_after: None,
        };
        if let Some(rule) = rule_for(rules, c["image"].as_str().unwrap_or_default()) {
            process.child = spawn(state, pod, c, rule, ip, &dir, &volumes, kubeconfig.as_deref());
        } else {
            process.simulated = true;
            process.ready = true;
        }
        processes.push(process);
    }
    PodRuntime {
        dir,
        volumes_refreshed: Instant::now(),
        ip: ip.to_string(),
        processes,
        terminating_since: None,
        sigterm_sent: false,
    }
}

/// Writes Secret and ConfigMap volumes as files; returns volume name -> folder.
fn materialise_volumes(state: &Arc<State>, pod: &Value, dir: &Path) -> BTreeMap<String, PathBuf> {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let cluster = state.cluster.lock().unwrap();
    let mut out = BTreeMap::new();
    for v in pod["spec"]["volumes"].as_array().into_iter().flatten() {
        let vname = v["name"].as_str().unwrap_or_default();
        let vdir = dir.join("volumes").join(vname);
        let _ = std::fs::create_dir_all(&vdir);
        let files: Vec<(String, Vec<u8>)> = if let Some(secret) = v["secret"]["secretName"].as_str() {
            let gr = GroupResource { group: String::new(), resource: "secrets".into() };
            cluster
                .store
                .get(&gr, ns, secret)
                .and_then(|s| s["data"].as_object().cloned())
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| {
                    (
                        k,
                        base64::engine::general_purpose::STANDARD
                            .decode(v.as_str().unwrap_or_default())
                            .unwrap_or_default(),
                    )
                })
                .collect()
        } else if let Some(cm) = v["configMap"]["name"].as_str() {
            let gr = GroupResource { group: String::new(), resource: "configmaps".into() };
            cluster
                .store
                .get(&gr, ns, cm)
                .and_then(|c| c["data"].as_object().cloned())
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.as_str().unwrap_or_default().as_bytes().to_vec()))
                .collect()
        } else {
            Vec::new()
        };
        for (key, bytes) in files {
            // Only changed files are rewritten (atomically), as the kubelet updates a mounted
            // Secret or ConfigMap in place when it changes.
            let path = vdir.join(&key);
            if std::fs::read(&path).ok().as_deref() != Some(bytes.as_slice()) {
                let tmp = vdir.join(format!(".{key}.tmp"));
                if std::fs::write(&tmp, &bytes).is_ok() {
                    let _ = std::fs::rename(&tmp, &path);
                }
            }
        }
        out.insert(vname.to_string(), vdir);
    }
    out
}

/// Kubernetes `$(VAR)` expansion in args.
fn expand(text: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = text.to_string();
    for (k, v) in env {
        out = out.replace(&format!("$({k})"), v);
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn spawn(
    state: &Arc<State>,
    pod: &Value,
    container: &Value,
    rule: &ImageRule,
    ip: &str,
    dir: &Path,
    volumes: &BTreeMap<String, PathBuf>,
    kubeconfig: Option<&Path>,
) -> Option<Child> {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    // Mount paths map to the materialised folders; paths in args and env are rewritten.
    let mounts: Vec<(String, PathBuf)> = container["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| Some((m["mountPath"].as_str()?.to_string(), volumes.get(m["name"].as_str()?)?.clone())))
        .collect();
    let rewrite = |s: &str| {
        let mut s = s.to_string();
        for (mount, host) in &mounts {
            if s.starts_with(mount.as_str()) {
                s = format!("{}{}", host.display(), &s[mount.len()..]);
            }
        }
        s
    };
    let mut env = BTreeMap::new();
    {
        let cluster = state.cluster.lock().unwrap();
        for e in container["env"].as_array().into_iter().flatten() {
            let key = e["name"].as_str().unwrap_or_default().to_string();
            let value = if let Some(v) = e["value"].as_str() {
                Some(expand(v, &env))
            } else if let Some(field) = e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                match field {
                    "metadata.name" => pod["metadata"]["name"].as_str().map(String::from),
                    "metadata.namespace" => Some(ns.to_string()),
                    "metadata.uid" => pod["metadata"]["uid"].as_str().map(String::from),
                    "status.podIP" => Some(ip.to_string()),
                    "status.hostIP" => Some("127.0.0.1".into()),
                    "spec.nodeName" => Some(NODE_NAME.into()),
                    "spec.serviceAccountName" => {
                        Some(pod["spec"]["serviceAccountName"].as_str().unwrap_or("default").to_string())
                    }
                    _ => None,
                }
            } else if let Some(r) = e["valueFrom"]["secretKeyRef"].as_object() {
                let gr = GroupResource { group: String::new(), resource: "secrets".into() };
                cluster
                    .store
                    .get(&gr, ns, r["name"].as_str().unwrap_or_default())
                    .and_then(|s| s["data"][r["key"].as_str().unwrap_or_default()].as_str().map(String::from))
                    .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
            } else if let Some(r) = e["valueFrom"]["configMapKeyRef"].as_object() {
                let gr = GroupResource { group: String::new(), resource: "configmaps".into() };
                cluster
                    .store
                    .get(&gr, ns, r["name"].as_str().unwrap_or_default())
                    .and_then(|c| c["data"][r["key"].as_str().unwrap_or_default()].as_str().map(String::from))
            } else {
                None
            };
            if let Some(v) = value {
                env.insert(key, rewrite(&v));
            }
        }
    }
    let command: Vec<String> =
        container["command"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(String::from)).collect();
    let mut args: Vec<String> = command.into_iter().skip(1).collect();
    args.extend(
        container["args"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(|a| rewrite(&expand(a, &env)))),
    );
    let cname = container["name"].as_str().unwrap_or_default();
    let log = std::fs::File::create(dir.join(format!("{cname}.log"))).ok()?;
    let mut cmd = Command::new(&rule.program);
    cmd.args(&args).env_clear().current_dir(dir).stdin(Stdio::null()).stdout(log.try_clone().ok()?).stderr(log);
    for key in ["PATH", "RUST_LOG", "RUST_BACKTRACE", "LLVM_PROFILE_FILE"] {
        if let Ok(v) = std::env::var(key) {
            cmd.env(key, v);
        }
    }
    cmd.env("HOME", dir).env("HOSTNAME", pod["metadata"]["name"].as_str().unwrap_or_default());
    if let Some(k) = kubeconfig {
        cmd.env("KUBECONFIG", k);
    }
    cmd.envs(&env);
    use std::os::unix::process::CommandExt;
    unsafe {
        cmd.pre_exec(|| {
            // Own process group (signalled as a whole), and killed if the test process dies.
            libc::setpgid(0, 0);
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    match cmd.spawn() {
        Ok(child) => Some(child),
        Err(e) => {
            eprintln!("testkit kubelet: cannot start {}: {e}", rule.program.display());
            None
        }
    }
}

/// Restarts exited containers and runs probes.
fn supervise(
    state: &Arc<State>,
    pod: &Value,
    runtime: &mut PodRuntime,
    rules: &[ImageRule],
    rt: &tokio::runtime::Runtime,
) {
    let restart_policy = pod["spec"]["restartPolicy"].as_str().unwrap_or("Always").to_string();
    let containers: Vec<Value> = pod["spec"]["containers"].as_array().cloned().unwrap_or_default();
    let ip = runtime.ip.clone();
    for (process, spec) in runtime.processes.iter_mut().zip(&containers) {
        let Some(rule) = rule_for(rules, spec["image"].as_str().unwrap_or_default()) else { continue };
        if let Some(child) = &mut process.child
            && let Ok(Some(status)) = child.try_wait()
        {
            let code = status.code().unwrap_or(137);
            process.last_exit = Some((code, now_rfc3339()));
            process.child = None;
            process.ready = false;
            let restart = match restart_policy.as_str() {
                "Never" => false,
                "OnFailure" => code != 0,
                _ => true,
            };
            if restart {
                let backoff = Duration::from_millis(500 * (1u64 << process.restarts.min(4)));
                process.restart_after = Some(Instant::now() + backoff);
            }
        }
        if process.child.is_none()
            && let Some(at) = process.restart_after
            && Instant::now() >= at
        {
            process.restart_after = None;
            process.restarts += 1;
            let volumes: BTreeMap<String, PathBuf> = pod["spec"]["volumes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v["name"].as_str().map(|n| (n.to_string(), runtime.dir.join("volumes").join(n))))
                .collect();
            let kubeconfig = runtime.dir.join("kubeconfig");
            process.child = spawn(
                state,
                pod,
                spec,
                rule,
                &ip,
                &runtime.dir,
                &volumes,
                kubeconfig.exists().then_some(kubeconfig.as_path()),
            );
            process.started = Instant::now();
            process.started_at = now_rfc3339();
            process.next_probe = Instant::now();
            process.liveness_failures = 0;
        }
        if process.child.is_none() || Instant::now() < process.next_probe {
            continue;
        }
        let elapsed = process.started.elapsed();
        let period = |probe: &Value| Duration::from_secs(probe["periodSeconds"].as_u64().unwrap_or(10).max(1));
        let delay = |probe: &Value| Duration::from_secs(probe["initialDelaySeconds"].as_u64().unwrap_or(0));
        let readiness = &spec["readinessProbe"];
        let liveness = &spec["livenessProbe"];
        let mut next = Duration::from_secs(1);
        if readiness.is_object() {
            if elapsed >= delay(readiness) {
                if rt.block_on(probe(readiness, &ip, spec)) {
                    process.ready = true;
                    process.readiness_failures = 0;
                } else {
                    process.readiness_failures += 1;
                    if process.readiness_failures >= readiness["failureThreshold"].as_u64().unwrap_or(3) as u32
                        || !process.ready
                    {
                        process.ready = false;
                    }
                }
                next = next.min(period(readiness));
            }
        } else {
            process.ready = true;
        }
        if liveness.is_object() && elapsed >= delay(liveness) {
            if rt.block_on(probe(liveness, &ip, spec)) {
                process.liveness_failures = 0;
            } else {
                process.liveness_failures += 1;
                if process.liveness_failures >= liveness["failureThreshold"].as_u64().unwrap_or(3) as u32 {
                    // Liveness failed: the container is killed and restarted.
                    if let Some(c) = &mut process.child {
                        kill(c, libc::SIGKILL);
                    }
                }
            }
            next = next.min(period(liveness));
        }
        process.next_probe =
            Instant::now() + if readiness.is_object() && !process.ready { Duration::from_millis(250) } else { next };
    }
}

/// One HTTP(S) GET probe (or a TCP connect); success is a 2xx/3xx answer within the timeout.
async fn probe(probe: &Value, ip: &str, container: &Value) -> bool {
    let timeout = Duration::from_secs(probe["timeoutSeconds"].as_u64().unwrap_or(1).max(1));
    let resolve_port = |port: &Value| -> Option<u16> {
        match port {
            Value::Number(n) => n.as_u64().map(|p| p as u16),
            Value::String(name) => {
                container["ports"].as_array()?.iter().find(|p| p["name"] == name.as_str())?["containerPort"]
                    .as_u64()
                    .map(|p| p as u16)
            }
            _ => None,
        }
    };
    if let Some(tcp) = probe["tcpSocket"].as_object() {
        let Some(port) = resolve_port(&tcp["port"]) else { return false };
        return tokio::time::timeout(timeout, tokio::net::TcpStream::connect((ip, port)))
            .await
            .is_ok_and(|r| r.is_ok());
    }
    let http = &probe["httpGet"];
    let Some(port) = resolve_port(&http["port"]) else { return false };
    let path = http["path"].as_str().unwrap_or("/").to_string();
    let https = http["scheme"] == "HTTPS";
    tokio::time::timeout(timeout, http_get(ip, port, &path, https))
        .await
        .is_ok_and(|r| r.is_ok_and(|code| (200..400).contains(&code)))
}

async fn http_get(ip: &str, port: u16, path: &str, https: bool) -> Result<u16, String> {
    use http_body_util::{BodyExt, Empty};
    let tcp = tokio::net::TcpStream::connect((ip, port)).await.map_err(|e| e.to_string())?;
    let request = hyper::Request::get(path)
        .header("host", format!("{ip}:{port}"))
        .header("user-agent", "kube-probe/1.33")
        .body(Empty::<bytes::Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = if https {
        // The kubelet does not verify probe certificates.
        let mut connector =
            openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls_client()).map_err(|e| e.to_string())?;
        connector.set_verify(openssl::ssl::SslVerifyMode::NONE);
        let ssl = connector
            .build()
            .configure()
            .and_then(|mut c| {
                c.set_verify_hostname(false);
                c.into_ssl(ip)
            })
            .map_err(|e| e.to_string())?;
        let mut tls =
            hyper_openssl::SslStream::new(ssl, hyper_util::rt::TokioIo::new(tcp)).map_err(|e| e.to_string())?;
        std::pin::Pin::new(&mut tls).connect().await.map_err(|e| e.to_string())?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(tls).await.map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        sender.send_request(request).await.map_err(|e| e.to_string())?
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        sender.send_request(request).await.map_err(|e| e.to_string())?
    };
    let code = response.status().as_u16();
    let _ = response.into_body().collect().await;
    Ok(code)
}

/// SIGTERM, then SIGKILL after the grace period; true once every process is gone.
fn terminate(runtime: &mut PodRuntime, pod: &Value) -> bool {
    let grace = Duration::from_secs(pod["metadata"]["deletionGracePeriodSeconds"].as_u64().unwrap_or(30));
    let since = *runtime.terminating_since.get_or_insert_with(Instant::now);
    if !runtime.sigterm_sent {
        runtime.sigterm_sent = true;
        for p in &runtime.processes {
            if let Some(c) = &p.child {
                kill(c, libc::SIGTERM);
            }
        }
    }
    let overdue = since.elapsed() >= grace;
    let mut all_gone = true;
    for p in &mut runtime.processes {
        if let Some(c) = &mut p.child {
            match c.try_wait() {
                Ok(Some(_)) => p.child = None,
                _ if overdue => {
                    kill(c, libc::SIGKILL);
                    let _ = c.wait();
                    p.child = None;
                }
                _ => all_gone = false,
            }
        }
    }
    all_gone
}

fn write_status(state: &Arc<State>, pod: &Value, runtime: &PodRuntime) {
    let containers: Vec<Value> = pod["spec"]["containers"].as_array().cloned().unwrap_or_default();
    let mut statuses = Vec::new();
    let mut all_ready = true;
    let mut all_running = true;
    for (p, spec) in runtime.processes.iter().zip(&containers) {
        let running = p.simulated || p.child.is_some();
        all_ready &= p.ready && running;
        all_running &= running;
        let state = if running {
            json!({"running": {"startedAt": p.started_at}})
        } else if p.restart_after.is_some() {
            json!({"waiting": {"reason": if p.restarts >= 2 { "CrashLoopBackOff" } else { "ContainerCreating" }}})
        } else {
            let (code, at) = p.last_exit.clone().unwrap_or((0, now_rfc3339()));
            json!({"terminated": {"exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" }, "finishedAt": at}})
        };
        let mut status = json!({"name": p.name, "image": spec["image"], "imageID": "", "ready": p.ready && running, "started": running,
            "restartCount": p.restarts, "state": state, "containerID": format!("testkit://{}", p.name)});
        if let Some((code, at)) = &p.last_exit {
            status["lastState"] = json!({"terminated": {"exitCode": code, "reason": if *code == 0 { "Completed" } else { "Error" }, "finishedAt": at}});
        }
        statuses.push(status);
    }
    let phase = if all_running {
        "Running"
    } else if statuses.iter().all(|s| s["state"]["terminated"]["exitCode"] == 0)
        && pod["spec"]["restartPolicy"] != "Always"
        && !pod["spec"]["restartPolicy"].is_null()
    {
        "Succeeded"
    } else if pod["spec"]["restartPolicy"] == "Never" {
        "Failed"
    } else {
        "Running"
    };
    let mut cluster = state.cluster.lock().unwrap();
    let Some(current) = cluster
        .store
        .get(
            &pods(),
            pod["metadata"]["namespace"].as_str().unwrap_or_default(),
            pod["metadata"]["name"].as_str().unwrap_or_default(),
        )
        .cloned()
    else {
        return;
    };
    let old = &current["status"];
    let condition = |t: &str, ok: bool| {
        let status = if ok { "True" } else { "False" };
        match old["conditions"].as_array().and_then(|cs| cs.iter().find(|c| c["type"] == t)) {
            Some(c) if c["status"] == status => c.clone(),
            _ => json!({"type": t, "status": status, "lastTransitionTime": now_rfc3339()}),
        }
    };
    let mut new_status = old.clone();
    new_status["phase"] = json!(phase);
    new_status["conditions"] = json!([
        condition("PodReadyToStartContainers", true),
        condition("Initialized", true),
        condition("Ready", all_ready),
        condition("ContainersReady", all_ready),
        condition("PodScheduled", true)
    ]);
    new_status["containerStatuses"] = Value::Array(statuses);
    if new_status != *old {
        let mut new = current.clone();
        new["status"] = new_status;
        cluster.store.put(&pods(), new);
    }
}
