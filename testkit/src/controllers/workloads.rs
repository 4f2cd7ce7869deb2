//! Deployments -> ReplicaSets -> Pods, with rolling updates and the status fields kubectl and
//! `kubectl rollout status` read.

use crate::cluster::{Cluster, DeleteOptions, PendingWrite, WriteOptions, now_rfc3339};
use crate::registry::ResourceType;
use crate::selectors::LabelSelector;
use crate::server::State;
use crate::status::ApiError;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const MANAGER: &str = "kube-controller-manager";

fn rt(cluster: &Cluster, group: &str, resource: &str) -> ResourceType {
    let version = "v1";
    cluster.registry.find(group, version, resource).cloned().expect("built-in type")
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

fn owned_by<'a>(objects: impl Iterator<Item = &'a Value>, uid: &str) -> Vec<Value> {
    objects
        .filter(|o| {
            o["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid && r["controller"] == Value::Bool(true)))
        })
        .filter(|o| o["metadata"]["deletionTimestamp"].is_null())
        .cloned()
        .collect()
}

fn owner_ref(owner: &Value) -> Value {
    json!({"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
        "controller": true, "blockOwnerDeletion": true})
}

/// A short stable hash of a pod template (the `pod-template-hash` label).
fn template_hash(template: &Value) -> String {
    let text = template.to_string();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..10).map(|i| ALPHABET[((h >> (i * 6)) % ALPHABET.len() as u64) as usize] as char).collect()
}

/// `maxSurge`/`maxUnavailable` as a count of `replicas` (percentages round up / down).
fn resolve(value: &Value, replicas: i64, round_up: bool) -> i64 {
    match value {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) => {
            let pct: f64 = s.trim_end_matches('%').parse().unwrap_or(25.0);
            let x = pct * replicas as f64 / 100.0;
            (if round_up { x.ceil() } else { x.floor() }) as i64
        }
        _ => {
            let x = 0.25 * replicas as f64;
            (if round_up { x.ceil() } else { x.floor() }) as i64
        }
    }
}

fn set_replicas(cluster: &mut Cluster, rs_type: &ResourceType, rs: &Value, replicas: i64) {
    if rs["spec"]["replicas"].as_i64() == Some(replicas) {
        return;
    }
    let mut new = rs.clone();
    new["spec"]["replicas"] = json!(replicas);
    let generation = rs["metadata"]["generation"].as_i64().unwrap_or(1);
    new["metadata"]["generation"] = json!(generation + 1);
    cluster.store.put(&rs_type.key(), new);
}

fn put_status(cluster: &mut Cluster, rt: &ResourceType, object: &Value, status: Value) {
    let mut merged = object["status"].clone();
    if !merged.is_object() {
        merged = json!({});
    }
    for (k, v) in status.as_object().unwrap() {
        if v.is_null() {
            merged.as_object_mut().unwrap().remove(k);
        } else {
            merged[k] = v.clone();
        }
    }
    if merged != object["status"] {
        let mut new = object.clone();
        new["status"] = merged;
        cluster.store.put(&rt.key(), new);
    }
}

/// The identity the ReplicaSet controller's writes go to admission webhooks with.
fn controller_user() -> crate::rbac::UserInfo {
    crate::rbac::UserInfo::service_account("kube-system", "replicaset-controller")
}

/// How long a ReplicaSet whose pod was refused waits before trying again.
const CREATE_BACKOFF: Duration = Duration::from_secs(1);

/// One pass. Pods a ReplicaSet creates go through admission webhooks like any write (outside
/// the store lock); a refused pod is retried after a back-off, as the real controller does.
pub fn pass(state: &State, runtime: &tokio::runtime::Runtime, backoff: &mut HashMap<String, Instant>) {
    let pending = {
        let mut cluster = state.cluster.lock().unwrap();
        deployments(&mut cluster);
        backoff.retain(|_, until| Instant::now() < *until);
        replica_sets(&mut cluster, backoff)
    };
    for (rs, write) in pending {
        if backoff.contains_key(rs["metadata"]["uid"].as_str().unwrap_or_default()) {
            continue;
        }
        let reviewed = runtime.block_on(crate::admission::review(state, &write, &controller_user()));
        let mut cluster = state.cluster.lock().unwrap();
        if let Err(e) = reviewed.and_then(|_| cluster.commit(write)) {
            failed_create(&mut cluster, backoff, &rs, &e);
        }
    }
}

/// A pod the ReplicaSet could not create: a `FailedCreate` Warning event on the ReplicaSet
/// (what `kubectl describe rs` shows), and a back-off before the next try.
fn failed_create(cluster: &mut Cluster, backoff: &mut HashMap<String, Instant>, rs: &Value, error: &ApiError) {
    let message = format!("Error creating: {}", error.message);
    super::record_event(cluster, rs, "Warning", "FailedCreate", &message, "replicaset-controller");
    backoff.insert(rs["metadata"]["uid"].as_str().unwrap_or_default().to_string(), Instant::now() + CREATE_BACKOFF);
}

fn deployments(cluster: &mut Cluster) {
    let deploy_type = rt(cluster, "apps", "deployments");
    let rs_type = rt(cluster, "apps", "replicasets");
    let pod_type = rt(cluster, "", "pods");
    let deploys: Vec<Value> = cluster
        .store
        .list(&deploy_type.key(), None)
        .filter(|d| d["metadata"]["deletionTimestamp"].is_null())
        .cloned()
        .collect();
    for d in deploys {
        let ns = d["metadata"]["namespace"].as_str().unwrap_or_default().to_string();
        let name = d["metadata"]["name"].as_str().unwrap_or_default().to_string();
        let uid = d["metadata"]["uid"].as_str().unwrap_or_default().to_string();
        let desired = d["spec"]["replicas"].as_i64().unwrap_or(1);
        let hash = template_hash(&d["spec"]["template"]);
        let mut rses = owned_by(cluster.store.list(&rs_type.key(), Some(&ns)), &uid);
        let new_rs = rses.iter().position(|r| r["metadata"]["labels"]["pod-template-hash"] == hash.as_str());
        let new_rs = match new_rs {
            Some(i) => rses.remove(i),
            None => {
                let mut template = d["spec"]["template"].clone();
                template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
                let mut selector = d["spec"]["selector"].clone();
                selector["matchLabels"]["pod-template-hash"] = json!(hash);
                let revision = rses.len() + 1;
                let rs = json!({
                    "apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "metadata": {"name": format!("{name}-{hash}"), "namespace": ns, "labels": template["metadata"]["labels"],
                        "annotations": {"deployment.kubernetes.io/revision": revision.to_string(), "deployment.kubernetes.io/desired-replicas": desired.to_string()},
                        "ownerReferences": [owner_ref(&d)]},
                    "spec": {"replicas": 0, "selector": selector, "template": template},
                });
                let opts = WriteOptions { field_manager: Some(MANAGER.into()), ..Default::default() };
                match cluster.prepare_create(&rs_type, &ns, rs, &opts).and_then(|p| cluster.commit(p)) {
                    Ok(created) => created,
                    Err(_) => continue,
                }
            }
        };
        let pods: Vec<Value> = cluster.store.list(&pod_type.key(), Some(&ns)).cloned().collect();
        let ready_of = |rs: &Value| {
            owned_by(pods.iter(), rs["metadata"]["uid"].as_str().unwrap_or_default())
                .iter()
                .filter(|p| is_ready(p))
                .count() as i64
        };
        let old_total: i64 = rses.iter().map(|r| r["spec"]["replicas"].as_i64().unwrap_or(0)).sum();
        let recreate = d["spec"]["strategy"]["type"] == "Recreate";
        let rolling = &d["spec"]["strategy"]["rollingUpdate"];
        let surge = if recreate { 0 } else { resolve(&rolling["maxSurge"], desired, true) };
        let mut max_unavailable = if recreate { desired } else { resolve(&rolling["maxUnavailable"], desired, false) };
        if surge == 0 && max_unavailable == 0 {
            max_unavailable = 1;
        }
        let current_new = new_rs["spec"]["replicas"].as_i64().unwrap_or(0);
        let new_target = if recreate {
            let old_pods = rses
                .iter()
                .map(|r| owned_by(pods.iter(), r["metadata"]["uid"].as_str().unwrap_or_default()).len())
                .sum::<usize>();
            if old_total == 0 && old_pods == 0 { desired } else { current_new }
        } else if current_new > desired {
            desired
        } else {
            current_new.max((desired + surge - old_total).min(desired))
        };
        set_replicas(cluster, &rs_type, &new_rs, new_target);
        let new_ready = ready_of(&new_rs);
        let mut old_replicas: Vec<i64> = rses.iter().map(|r| r["spec"]["replicas"].as_i64().unwrap_or(0)).collect();
        // As the real controller: replicas of old sets that are not available go first, as far
        // as the surge allows (else a rollout from a set whose pods never came up, e.g. refused
        // by admission, would wait for them forever).
        if !recreate {
            let min_available = desired - max_unavailable;
            let mut scale_down = new_target + old_total - min_available - (new_target - new_ready);
            for (old, replicas) in rses.iter().zip(old_replicas.iter_mut()) {
                let unhealthy = (*replicas - ready_of(old)).max(0).min(scale_down.max(0));
                *replicas -= unhealthy;
                scale_down -= unhealthy;
            }
        }
        // Then old replica sets go down as far as availability allows.
        let available: i64 = new_ready + rses.iter().map(ready_of).sum::<i64>();
        let mut can_remove = (available - (desired - max_unavailable)).max(0);
        if recreate {
            can_remove = old_total;
        }
        for (old, replicas) in rses.iter().zip(old_replicas.iter_mut()) {
            // Once the new set is fully available the old ones go regardless.
            let remove = if new_ready >= desired { *replicas } else { (*replicas).min(can_remove) };
            if remove > 0 {
                *replicas -= remove;
                can_remove -= remove;
            }
            set_replicas(cluster, &rs_type, old, *replicas);
        }
        // Status.
        let all_rs: Vec<&Value> = std::iter::once(&new_rs).chain(rses.iter()).collect();
        let total_pods: i64 = all_rs
            .iter()
            .map(|r| owned_by(pods.iter(), r["metadata"]["uid"].as_str().unwrap_or_default()).len() as i64)
            .sum();
        let updated = owned_by(pods.iter(), new_rs["metadata"]["uid"].as_str().unwrap_or_default()).len() as i64;
        let ready: i64 = all_rs.iter().map(|r| ready_of(r)).sum();
        let complete = updated == desired && new_ready == desired && total_pods == desired;
        let now = now_rfc3339();
        let condition = |t: &str, ok: bool, reason: &str, message: String| json!({"type": t, "status": if ok { "True" } else { "False" }, "reason": reason, "message": message, "lastUpdateTime": now, "lastTransitionTime": now});
        let available_ok = ready >= desired - max_unavailable;
        let mut conditions = vec![
            condition(
                "Available",
                available_ok,
                if available_ok { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" },
                format!("Deployment {} minimum availability.", if available_ok { "has" } else { "does not have" }),
            ),
            condition(
                "Progressing",
                true,
                if complete { "NewReplicaSetAvailable" } else { "ReplicaSetUpdated" },
                format!(
                    "ReplicaSet \"{}\" {}.",
                    new_rs["metadata"]["name"].as_str().unwrap_or_default(),
                    if complete { "has successfully progressed" } else { "is progressing" }
                ),
            ),
        ];
        // Keep transition times when the condition did not change, so status stays quiet.
        for c in conditions.iter_mut() {
            if let Some(old) =
                d["status"]["conditions"].as_array().and_then(|cs| cs.iter().find(|o| o["type"] == c["type"]))
                && old["status"] == c["status"]
                && old["reason"] == c["reason"]
            {
                *c = old.clone();
            }
        }
        let status = json!({
            "observedGeneration": d["metadata"]["generation"], "replicas": total_pods, "updatedReplicas": updated,
            "readyReplicas": ready, "availableReplicas": ready, "unavailableReplicas": (desired - ready).max(0), "conditions": conditions,
        });
        let status = strip_zero(
            status,
            &["readyReplicas", "availableReplicas", "unavailableReplicas", "updatedReplicas", "replicas"],
        );
        put_status(cluster, &deploy_type, &d, status);
    }
}

/// The API omits zero counts; so do we, so that `kubectl get -o yaml` looks familiar.
fn strip_zero(mut status: Value, fields: &[&str]) -> Value {
    for f in fields {
        if status[*f] == json!(0) {
            status[*f] = Value::Null;
        }
    }
    status
}

/// Scales pods down directly; returns the pod creations to admit and commit, with their ReplicaSet.
fn replica_sets(cluster: &mut Cluster, backoff: &mut HashMap<String, Instant>) -> Vec<(Value, PendingWrite)> {
    let mut creations = Vec::new();
    let rs_type = rt(cluster, "apps", "replicasets");
    let pod_type = rt(cluster, "", "pods");
    let rses: Vec<Value> = cluster
        .store
        .list(&rs_type.key(), None)
        .filter(|r| r["metadata"]["deletionTimestamp"].is_null())
        .cloned()
        .collect();
    for rs in rses {
        let ns = rs["metadata"]["namespace"].as_str().unwrap_or_default().to_string();
        let uid = rs["metadata"]["uid"].as_str().unwrap_or_default().to_string();
        let desired = rs["spec"]["replicas"].as_i64().unwrap_or(1);
        let mut pods = owned_by(cluster.store.list(&pod_type.key(), Some(&ns)), &uid);
        let selector = LabelSelector::from_object(&rs["spec"]["selector"]);
        pods.retain(|p| selector.matches(&p["metadata"]["labels"]));
        let have = pods.len() as i64;
        if have < desired && !backoff.contains_key(&uid) {
            for _ in have..desired {
                let template = &rs["spec"]["template"];
                let pod = json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"generateName": format!("{}-", rs["metadata"]["name"].as_str().unwrap_or_default()), "namespace": ns,
                        "labels": template["metadata"]["labels"], "annotations": template["metadata"]["annotations"], "ownerReferences": [owner_ref(&rs)]},
                    "spec": template["spec"],
                });
                let opts = WriteOptions { field_manager: Some(MANAGER.into()), ..Default::default() };
                match cluster.prepare_create(&pod_type, &ns, pod, &opts) {
                    Ok(write) => creations.push((rs.clone(), write)),
                    Err(e) => {
                        failed_create(cluster, backoff, &rs, &e);
                        break;
                    }
                }
            }
        } else if have > desired {
            // Remove not-ready pods first, then the newest.
            pods.sort_by_key(|p| {
                (
                    is_ready(p),
                    std::cmp::Reverse(p["metadata"]["creationTimestamp"].as_str().unwrap_or_default().to_string()),
                )
            });
            for p in pods.iter().take((have - desired) as usize) {
                let name = p["metadata"]["name"].as_str().unwrap_or_default();
                let _ = cluster.delete(&pod_type, &ns, name, &DeleteOptions::default());
            }
        }
        let pods = owned_by(cluster.store.list(&pod_type.key(), Some(&ns)), &uid);
        let ready = pods.iter().filter(|p| is_ready(p)).count() as i64;
        let status = json!({"replicas": pods.len(), "fullyLabeledReplicas": pods.len(), "readyReplicas": ready, "availableReplicas": ready, "observedGeneration": rs["metadata"]["generation"]});
        let status = strip_zero(status, &["readyReplicas", "availableReplicas", "fullyLabeledReplicas"]);
        put_status(cluster, &rs_type, &rs, status);
    }
    creations
}
