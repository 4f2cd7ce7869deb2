//! Container processes: starting a pod's containers (env, volumes, kubeconfig), signals and termination.

use super::{ContainerProcess, ImageRule, NODE_NAME, PodRuntime, rule_for};
use crate::cluster::now_rfc3339;
use crate::rbac::UserInfo;
use crate::registry::GroupResource;
use crate::server::State;
use base64::Engine;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(super) fn kill(child: &Child, signal: i32) {
    // The container runs in its own process group: signal all of it.
    unsafe {
        libc::kill(-(child.id() as i32), signal);
    }
}

pub(super) fn start_pod(state: &Arc<State>, root: &Path, pod: &Value, ip: &str, rules: &[ImageRule]) -> PodRuntime {
    let (ns, _) = crate::store::key_of(pod);
    let dir = super::pod_dir(root, pod);
    let _ = std::fs::create_dir_all(&dir);
    let mut processes = Vec::new();
    let needs_process = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| rule_for(rules, c["image"].as_str().unwrap_or_default()).is_some());
    let volumes = if needs_process { materialise_volumes(state, pod, &dir, Write::Now) } else { BTreeMap::new() };
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
        key: crate::store::key_of(pod),
        dir,
        volumes_refreshed: Instant::now(),
        volume_changes: HashMap::new(),
        ip: ip.to_string(),
        processes,
        terminating_since: None,
        sigterm_sent: false,
    }
}

/// When a file of a Secret or ConfigMap volume is written: at once when the pod starts; on a
/// refresh, once its new content has been in the API server for the refresh delay.
pub(super) enum Write<'a> {
    Now,
    Delayed { delay: Duration, seen: &'a mut HashMap<PathBuf, (Vec<u8>, Instant)> },
}

/// Writes Secret and ConfigMap volumes as files; returns volume name -> folder.
pub(super) fn materialise_volumes(
    state: &Arc<State>,
    pod: &Value,
    dir: &Path,
    mut write: Write<'_>,
) -> BTreeMap<String, PathBuf> {
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
            if std::fs::read(&path).ok().as_deref() == Some(bytes.as_slice()) {
                if let Write::Delayed { seen, .. } = &mut write {
                    seen.remove(&path);
                }
                continue;
            }
            if let Write::Delayed { delay, seen } = &mut write {
                // A real kubelet sees a change after its sync period and Secret cache TTL (up to
                // a minute or two): here, exactly `delay` after the content was first seen.
                match seen.get(&path) {
                    Some((pending, since)) if *pending == bytes && since.elapsed() >= *delay => {
                        seen.remove(&path);
                    }
                    Some((pending, _)) if *pending == bytes => continue,
                    _ => {
                        seen.insert(path.clone(), (bytes, Instant::now()));
                        continue;
                    }
                }
            }
            let tmp = vdir.join(format!(".{key}.tmp"));
            if std::fs::write(&tmp, &bytes).is_ok() {
                let _ = std::fs::rename(&tmp, &path);
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
pub(super) fn spawn(
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
    let log = std::fs::File::create(dir.join(format!("{cname}.log"))).ok()?; // see super::container_log
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
            // The `testkit` binary blocks SIGINT and SIGTERM in its threads (it takes them with
            // sigwait); a container must get them.
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
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

/// SIGTERM, then SIGKILL after the grace period; true once every process is gone.
pub(super) fn terminate(runtime: &mut PodRuntime, pod: &Value) -> bool {
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
