//! Garbage collection by ownerReferences (background, foreground and orphan propagation) and
//! namespace deletion.

use crate::cluster::{Cluster, DeleteOptions};
use crate::registry::ResourceType;
use crate::server::State;
use serde_json::Value;
use std::collections::HashSet;

/// One pass over the store.
pub fn pass(state: &State) {
    let mut cluster = state.cluster.lock().unwrap();
    // Orphaning first: dependents of an owner deleted with propagationPolicy=Orphan are kept.
    finish_foreground_and_orphan(&mut cluster);
    collect_orphans(&mut cluster);
    finish_namespaces(&mut cluster);
}

/// Every stored object with its type.
fn all_objects(cluster: &Cluster) -> Vec<(ResourceType, Value)> {
    let types: Vec<ResourceType> = cluster.registry.all().to_vec();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for rt in types {
        if !seen.insert(rt.key()) {
            continue;
        }
        for o in cluster.store.list(&rt.key(), None) {
            out.push((rt.clone(), o.clone()));
        }
    }
    out
}

fn uid(o: &Value) -> &str {
    o["metadata"]["uid"].as_str().unwrap_or_default()
}

fn key(o: &Value) -> (String, String) {
    crate::store::key_of(o)
}

fn owner_uids(o: &Value) -> Vec<String> {
    o["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["uid"].as_str().map(String::from))
        .collect()
}

/// Deletes objects all of whose owners are gone.
fn collect_orphans(cluster: &mut Cluster) {
    let objects = all_objects(cluster);
    // Every owner that still exists counts, also one waiting for its finalizers: its dependents
    // go when it is gone (or first, when it is deleted in the foreground).
    let live: HashSet<&str> = objects.iter().map(|(_, o)| uid(o)).collect();
    let mut doomed = Vec::new();
    for (rt, o) in &objects {
        let owners = owner_uids(o);
        if owners.is_empty() || !o["metadata"]["deletionTimestamp"].is_null() {
            continue;
        }
        // Dependents of an owner being deleted in the foreground go first.
        let owner_in_foreground = objects.iter().any(|(_, owner)| {
            owners.iter().any(|u| u == uid(owner))
                && has_finalizer(owner, "foregroundDeletion")
                && !owner["metadata"]["deletionTimestamp"].is_null()
        });
        if owners.iter().all(|u| !live.contains(u.as_str())) || owner_in_foreground {
            doomed.push((rt.clone(), key(o)));
        }
    }
    for (rt, (ns, name)) in doomed {
        let _ = cluster.delete(&rt, &ns, &name, &DeleteOptions::default());
    }
}

fn has_finalizer(o: &Value, f: &str) -> bool {
    o["metadata"]["finalizers"].as_array().is_some_and(|fs| fs.iter().any(|x| x == f))
}

/// Removes `finalizer`; an object being deleted with no finalizers left is removed.
pub fn remove_finalizer(cluster: &mut Cluster, rt: &ResourceType, o: &Value, finalizer: &str) {
    let mut new = o.clone();
    if let Some(fs) = new["metadata"]["finalizers"].as_array_mut() {
        fs.retain(|f| f != finalizer);
    }
    let (ns, name) = key(o);
    if new["metadata"]["finalizers"].as_array().is_some_and(Vec::is_empty) {
        new["metadata"].as_object_mut().unwrap().remove("finalizers");
        if !new["metadata"]["deletionTimestamp"].is_null() {
            cluster.remove(rt, &ns, &name);
            return;
        }
    }
    cluster.store.put(&rt.key(), new);
}

fn finish_foreground_and_orphan(cluster: &mut Cluster) {
    let objects = all_objects(cluster);
    for (rt, owner) in &objects {
        if owner["metadata"]["deletionTimestamp"].is_null() {
            continue;
        }
        let owner_uid = uid(owner).to_string();
        let dependents: Vec<&(ResourceType, Value)> =
            objects.iter().filter(|(_, o)| owner_uids(o).contains(&owner_uid)).collect();
        if has_finalizer(owner, "orphan") {
            for (drt, d) in &dependents {
                let mut new = d.clone();
                if let Some(refs) = new["metadata"]["ownerReferences"].as_array_mut() {
                    refs.retain(|r| r["uid"] != owner_uid.as_str());
                }
                cluster.store.put(&drt.key(), new);
            }
            let current = cluster.store.get(&rt.key(), &key(owner).0, &key(owner).1).cloned();
            if let Some(current) = current {
                remove_finalizer(cluster, rt, &current, "orphan");
            }
        } else if has_finalizer(owner, "foregroundDeletion") && dependents.is_empty() {
            remove_finalizer(cluster, rt, owner, "foregroundDeletion");
        }
    }
}

/// A namespace being deleted empties itself, then goes.
fn finish_namespaces(cluster: &mut Cluster) {
    let ns_type = cluster.registry.find("", "v1", "namespaces").cloned().expect("namespaces");
    let terminating: Vec<Value> = cluster
        .store
        .list(&ns_type.key(), None)
        .filter(|n| !n["metadata"]["deletionTimestamp"].is_null())
        .cloned()
        .collect();
    for ns in terminating {
        let name = ns["metadata"]["name"].as_str().unwrap_or_default().to_string();
        let contents: Vec<(ResourceType, Value)> = all_objects(cluster)
            .into_iter()
            .filter(|(rt, o)| rt.namespaced && o["metadata"]["namespace"] == name.as_str())
            .collect();
        if contents.is_empty() {
            cluster.remove(&ns_type, "", &name);
            continue;
        }
        for (rt, o) in contents {
            if o["metadata"]["deletionTimestamp"].is_null() {
                let (ns, n) = key(&o);
                let _ = cluster.delete(&rt, &ns, &n, &DeleteOptions::default());
            }
        }
    }
}
