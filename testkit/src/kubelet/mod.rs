//! A kubelet stand-in. Pods are scheduled onto one node and get their own loopback address
//! (127.0.0.2 onwards). Containers whose image matches a registered image rule run as real processes
//! (the project's own binary): env with the downward API, a kubeconfig for the pod's service
//! account, Secret/ConfigMap volumes materialised as files, liveness and readiness probes over
//! HTTP(S), restarts counted, and SIGTERM then SIGKILL after the grace period on deletion.
//! Other images give a pod that is Running and Ready without a process, or one that stays
//! Pending when annotated `testkit.stochastic.io/stay-pending: "true"`.

mod probes;
mod process;

use crate::cluster::now_rfc3339;
use crate::registry::GroupResource;
use crate::server::State;
use crate::store::EventType;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use probes::probe;
use process::{Write, kill, materialise_volumes, spawn, start_pod, terminate};

/// The node every pod runs on.
pub const NODE_NAME: &str = "testkit-node";
/// Annotation that keeps a pod Pending (unschedulable), for tests of pending pods.
pub const STAY_PENDING: &str = "testkit.stochastic.io/stay-pending";
/// Annotation that tells the kubelet to leave a pod alone: the test writes its status itself.
pub const UNMANAGED: &str = "testkit.stochastic.io/unmanaged";

/// The refresh delay of Secret and ConfigMap volumes a server starts with: short, so that test
/// suites stay fast (`TestCluster::set_volume_refresh_delay` and `testkit --volume-refresh-delay`
/// set a realistic one).
pub const TEST_VOLUME_REFRESH_DELAY: Duration = Duration::from_secs(1);

/// How often Secret and ConfigMap volumes of running pods are compared with the API server
/// (a change is written once it is `State::volume_refresh_delay` old).
const VOLUME_CHECK: Duration = Duration::from_millis(500);

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
    /// The pod's namespace and name.
    key: (String, String),
    dir: PathBuf,
    /// When Secret and ConfigMap volumes were last compared with the API server.
    volumes_refreshed: Instant,
    /// Volume files whose content changed in the API server: the new content and since when.
    volume_changes: HashMap<PathBuf, (Vec<u8>, Instant)>,
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

/// What the kubelet thread keeps between looks at the store.
#[derive(Default)]
struct Node {
    /// The pods it runs, by uid.
    runtimes: HashMap<String, PodRuntime>,
    /// The uids of the pods it must look at without a change: running processes (probes,
    /// restarts, volumes) and terminating pods. Kept apart so a tick does not walk every pod.
    attention: HashSet<String>,
    /// The resourceVersion of its last look: the next look reads only the changes since.
    seen: Option<u64>,
    addresses: Addresses,
}

impl Kubelet {
    pub fn start(state: Arc<State>, root: PathBuf) -> Kubelet {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("testkit-kubelet".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("kubelet runtime");
                let mut node = Node { addresses: Addresses::for_next_node(), ..Node::default() };
                while !flag.load(Ordering::Relaxed) {
                    sync(&state, &root, &mut node, &rt);
                    std::thread::sleep(Duration::from_millis(100));
                }
                for (_, pod) in node.runtimes.iter_mut() {
                    stop_processes(pod);
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

fn stop_processes(pod: &mut PodRuntime) {
    for p in &mut pod.processes {
        if let Some(c) = &mut p.child {
            kill(c, libc::SIGKILL);
            let _ = c.wait();
        }
    }
}

/// Loopback addresses for pods, 127.0.0.2 onwards (127.0.0.1 is the node; addresses ending in
/// .0 and .255 are skipped): the whole of 127/8 is local on Linux, so 50,000 pods each get one.
#[derive(Default)]
struct Addresses {
    used: HashSet<u32>,
    next: u32,
}

/// Kubelets started by this process so far: each starts handing out addresses in a /16 of its
/// own, so clusters that run side by side (tests in parallel) never give two pods the same
/// address (a server listening on `$POD_IP:port` would find it taken).
static NODES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl Addresses {
    const FIRST: u32 = u32::from_be_bytes([127, 0, 0, 2]);
    const LAST: u32 = u32::from_be_bytes([127, 255, 255, 254]);

    /// The addresses of the next kubelet of this process: from 127.N.0.1 for the Nth, and from
    /// a block that differs between processes too (by process id), for test binaries run at once.
    fn for_next_node() -> Addresses {
        let node = NODES.fetch_add(1, Ordering::Relaxed);
        // The first keeps 127.0.x.x (what a single cluster always used); the others 1-254.
        let block = if node == 0 { 0 } else { 1 + (std::process::id() % 16 * 16 + node - 1) % 254 };
        Addresses { next: block << 16, ..Addresses::default() }
    }

    fn mark(&mut self, ip: &str) {
        if let Ok(ip) = ip.parse::<Ipv4Addr>() {
            self.used.insert(u32::from(ip));
        }
    }

    fn release(&mut self, ip: &str) {
        if let Ok(ip) = ip.parse::<Ipv4Addr>() {
            self.used.remove(&u32::from(ip));
        }
    }

    /// A free address; taken until released.
    fn allocate(&mut self) -> Option<String> {
        let span = Self::LAST - Self::FIRST + 1;
        for step in 0..span {
            let candidate = Self::FIRST + (self.next + step) % span;
            let last_byte = candidate & 0xff;
            if last_byte == 0 || last_byte == 255 || self.used.contains(&candidate) {
                continue;
            }
            self.used.insert(candidate);
            self.next = (candidate - Self::FIRST + 1) % span;
            return Some(Ipv4Addr::from(candidate).to_string());
        }
        None
    }
}

/// The folder of a pod's files under the kubelet's root.
pub fn pod_dir(root: &Path, pod: &Value) -> PathBuf {
    let (ns, name) = crate::store::key_of(pod);
    let uid: String = pod["metadata"]["uid"].as_str().unwrap_or_default().chars().take(8).collect();
    root.join(format!("{ns}_{name}_{uid}"))
}

/// What a container of a pod has written to stdout and stderr (`kubectl logs`).
pub fn container_log(root: &Path, pod: &Value, container: &str) -> PathBuf {
    pod_dir(root, pod).join(format!("{container}.log"))
}

fn rule_for<'a>(rules: &'a [ImageRule], image: &str) -> Option<&'a ImageRule> {
    rules.iter().find(|r| image.starts_with(&r.image_prefix))
}

/// One look at the store. Only pods that changed since the last look are visited, plus those
/// that need the kubelet without a change (running processes: probes, restarts and volumes;
/// terminating pods), so a still cluster of 50,000 pods costs nothing. The first look, and a
/// look after the history was compacted, visits every pod.
fn sync(state: &Arc<State>, root: &Path, node: &mut Node, rt: &tokio::runtime::Runtime) {
    let rules = state.images.lock().unwrap().clone();
    let mut visit: BTreeSet<(String, String)> = BTreeSet::new();
    let mut gone: Vec<(String, String)> = Vec::new();
    {
        let cluster = state.cluster.lock().unwrap();
        let store = &cluster.store;
        match node.seen.and_then(|rv| store.changes_since(rv)) {
            Some(changes) => {
                for event in changes.iter().filter(|e| e.resource == pods()) {
                    let meta = &event.object["metadata"];
                    if event.kind == EventType::Deleted {
                        let ip = event.object["status"]["podIP"].as_str().unwrap_or_default().to_string();
                        gone.push((meta["uid"].as_str().unwrap_or_default().to_string(), ip));
                    } else {
                        visit.insert(crate::store::key_of(&event.object));
                    }
                }
            }
            None => {
                let mut live = HashSet::new();
                for pod in store.list(&pods(), None) {
                    visit.insert(crate::store::key_of(pod));
                    live.insert(pod["metadata"]["uid"].as_str().unwrap_or_default().to_string());
                    if let Some(ip) = pod["status"]["podIP"].as_str() {
                        node.addresses.mark(ip);
                    }
                }
                gone.extend(
                    node.runtimes.keys().filter(|uid| !live.contains(*uid)).map(|uid| (uid.clone(), String::new())),
                );
            }
        }
        node.seen = Some(store.resource_version());
    }
    // Pods removed from the store (forced deletion, or gone after termination): stop what they
    // ran and free their address.
    for (uid, ip) in gone {
        node.attention.remove(&uid);
        if let Some(mut runtime) = node.runtimes.remove(&uid) {
            stop_processes(&mut runtime);
            node.addresses.release(&runtime.ip);
        } else if !ip.is_empty() {
            node.addresses.release(&ip);
        }
    }
    visit.extend(node.attention.iter().filter_map(|uid| node.runtimes.get(uid)).map(|r| r.key.clone()));
    for (ns, name) in visit {
        let pod = state.cluster.lock().unwrap().store.get(&pods(), &ns, &name).cloned();
        if let Some(pod) = pod {
            visit_pod(state, root, node, rt, &rules, pod);
        }
    }
}

fn visit_pod(
    state: &Arc<State>,
    root: &Path,
    node: &mut Node,
    rt: &tokio::runtime::Runtime,
    rules: &[ImageRule],
    pod: Value,
) {
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
        return;
    }
    if pod["spec"]["nodeName"].is_null() && !deleting {
        schedule(state, &pod, &mut node.addresses);
        return;
    }
    if !node.runtimes.contains_key(&uid) && !deleting && pod["spec"]["nodeName"] == NODE_NAME {
        let ip = pod["status"]["podIP"].as_str().unwrap_or("127.0.0.1").to_string();
        let runtime = start_pod(state, root, &pod, &ip, rules);
        if runtime.processes.iter().any(|p| !p.simulated) {
            node.attention.insert(uid.clone());
        }
        node.runtimes.insert(uid.clone(), runtime);
    }
    if deleting {
        node.attention.insert(uid.clone());
        let finished = match node.runtimes.get_mut(&uid) {
            Some(runtime) => terminate(runtime, &pod),
            None => true,
        };
        if finished {
            node.attention.remove(&uid);
            if let Some(runtime) = node.runtimes.remove(&uid) {
                node.addresses.release(&runtime.ip);
            }
            let mut cluster = state.cluster.lock().unwrap();
            let pod_type = cluster.registry.find("", "v1", "pods").cloned().unwrap();
            let has_finalizers = pod["metadata"]["finalizers"].as_array().is_some_and(|f| !f.is_empty());
            if !has_finalizers {
                cluster.remove(&pod_type, &ns, &name);
            }
        }
        return;
    }
    let Some(runtime) = node.runtimes.get_mut(&uid) else { return };
    if runtime.processes.iter().any(|p| !p.simulated) && runtime.volumes_refreshed.elapsed() >= VOLUME_CHECK {
        let delay = *state.volume_refresh_delay.lock().unwrap();
        materialise_volumes(state, &pod, &runtime.dir, Write::Delayed { delay, seen: &mut runtime.volume_changes });
        runtime.volumes_refreshed = Instant::now();
    }
    supervise(state, &pod, runtime, rules, rt);
    write_status(state, &pod, runtime);
}

/// Binds the pod to the node and gives it a free loopback address.
fn schedule(state: &Arc<State>, pod: &Value, addresses: &mut Addresses) {
    let Some(ip) = addresses.allocate() else { return };
    let mut cluster = state.cluster.lock().unwrap();
    let mut new = pod.clone();
    new["spec"]["nodeName"] = json!(NODE_NAME);
    new["status"] = json!({
        "phase": "Pending", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}],
        "startTime": now_rfc3339(), "qosClass": pod["status"]["qosClass"].as_str().unwrap_or("BestEffort"),
        "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": now_rfc3339()}],
    });
    cluster.store.put(&pods(), new);
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

#[cfg(test)]
mod tests {
    use super::Addresses;

    #[test]
    fn addresses_are_distinct_skip_the_node_and_the_ends_of_each_block_and_are_reused() {
        let mut addresses = Addresses::default();
        let taken: Vec<String> = (0..600).map(|_| addresses.allocate().unwrap()).collect();
        assert_eq!(taken[0], "127.0.0.2");
        assert_eq!(taken[252], "127.0.0.254");
        assert_eq!(taken[253], "127.0.1.1", ".255 and .0 are skipped");
        let distinct: std::collections::HashSet<&String> = taken.iter().collect();
        assert_eq!(distinct.len(), 600);
        let (first, second) = (Addresses::for_next_node(), Addresses::for_next_node());
        assert_ne!(first.next >> 16, second.next >> 16, "two nodes of a process hand out different blocks");
        addresses.release("127.0.0.7");
        addresses.mark("127.0.2.90");
        let next: Vec<String> = (0..200).map(|_| addresses.allocate().unwrap()).collect();
        assert!(!next.contains(&"127.0.2.90".to_string()), "a marked address is in use");
        assert!(!next.iter().any(|ip| taken.contains(ip)), "nothing in use is handed out twice");
    }
}
