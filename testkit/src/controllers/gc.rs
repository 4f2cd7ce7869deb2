//! Garbage collection by ownerReferences (background, foreground and orphan propagation) and
//! namespace deletion. Owners are resolved as kube-controller-manager resolves them: by
//! apiVersion/kind, namespace and name, then uid.

use crate::cluster::{Cluster, DeleteOptions};
use crate::registry::ResourceType;
use crate::server::State;
use serde_json::Value;
use std::collections::HashSet;

/// Whether a change can give the collector work: a deletion, an object being deleted or with
/// owners, a namespace. A pass over a large store is skipped for the rest (a bare pod created
/// or its status written).
pub fn concerns(event: &crate::store::Event) -> bool {
    let meta = &event.object["metadata"];
    event.kind == crate::store::EventType::Deleted
        || event.resource.resource == "namespaces"
        || !meta["deletionTimestamp"].is_null()
        || meta["ownerReferences"].as_array().is_some_and(|r| !r.is_empty())
}

/// One pass over the store.
pub fn pass(state: &State) {
    let mut cluster = state.cluster.lock().unwrap();
    // Orphaning first: dependents of an owner deleted with propagationPolicy=Orphan are kept.
    finish_foreground_and_orphan(&mut cluster);
    collect_orphans(&mut cluster);
    finish_namespaces(&mut cluster);
}

/// Every stored object the collector acts on, with its type: those with owners, and those
/// being deleted (owners waiting for their dependents). The rest is not copied.
fn all_objects(cluster: &Cluster) -> Vec<(ResourceType, Value)> {
    let types: Vec<ResourceType> = cluster.registry.all().to_vec();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for rt in types {
        if !seen.insert(rt.key()) {
            continue;
        }
        for o in cluster.store.list(&rt.key(), None) {
            let meta = &o["metadata"];
            if meta["ownerReferences"].as_array().is_some_and(|r| !r.is_empty()) || !meta["deletionTimestamp"].is_null()
            {
                out.push((rt.clone(), o.clone()));
            }
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
    owner_refs(o).iter().filter_map(|r| r["uid"].as_str().map(String::from)).collect()
}

fn owner_refs(o: &Value) -> Vec<Value> {
    o["metadata"]["ownerReferences"].as_array().cloned().unwrap_or_default()
}

/// What an owner reference points at, found as the real garbage collector finds it: the kind
/// through discovery, then the object by name (in the dependent's namespace when the kind is
/// namespaced), then the uid compared.
enum Owner {
    /// The owner exists; `true` when it is being deleted in the foreground.
    Live { foreground: bool },
    /// No object of that kind, name (and namespace) with that uid: the owner is gone. A
    /// namespaced owner in another namespace is gone too (cross-namespace references are
    /// invalid).
    Dangling,
    /// The kind is not served, or a cluster-scoped dependent names a namespaced kind: the
    /// collector cannot tell, so it leaves the dependent alone.
    Unresolvable,
}

fn resolve_owner(cluster: &Cluster, dependent_rt: &ResourceType, dependent: &Value, reference: &Value) -> Owner {
    let api_version = reference["apiVersion"].as_str().unwrap_or_default();
    let kind = reference["kind"].as_str().unwrap_or_default();
    let Some(owner_rt) = cluster.registry.find_kind(api_version, kind) else { return Owner::Unresolvable };
    let namespace = if owner_rt.namespaced {
        if !dependent_rt.namespaced {
            return Owner::Unresolvable;
        }
        dependent["metadata"]["namespace"].as_str().unwrap_or_default()
    } else {
        ""
    };
    let name = reference["name"].as_str().unwrap_or_default();
    match cluster.store.get(&owner_rt.key(), namespace, name) {
        Some(owner) if owner["metadata"]["uid"] == reference["uid"] => Owner::Live {
            foreground: has_finalizer(owner, "foregroundDeletion") && !owner["metadata"]["deletionTimestamp"].is_null(),
        },
        _ => Owner::Dangling,
    }
}

/// Deletes objects none of whose owners is left, and strips the references to gone owners (and
/// to owners deleted in the foreground) from objects that still have a live owner.
fn collect_orphans(cluster: &mut Cluster) {
    let objects = all_objects(cluster);
    let mut doomed = Vec::new();
    let mut stripped = Vec::new();
    for (rt, o) in &objects {
        let refs = owner_refs(o);
        if refs.is_empty() || !o["metadata"]["deletionTimestamp"].is_null() {
            continue;
        }
        let owners: Vec<Owner> = refs.iter().map(|r| resolve_owner(cluster, rt, o, r)).collect();
        if owners.iter().any(|owner| matches!(owner, Owner::Unresolvable)) {
            continue;
        }
        let solid = owners.iter().any(|owner| matches!(owner, Owner::Live { foreground: false }));
        if !solid {
            // Under an owner deleted in the foreground, a dependent that has dependents of its
            // own is deleted in the foreground too, so the wait reaches down the chain.
            let waiting = owners.iter().any(|owner| matches!(owner, Owner::Live { foreground: true }));
            let has_dependents = objects.iter().any(|(_, d)| owner_uids(d).iter().any(|u| u == uid(o)));
            let propagation = (waiting && has_dependents).then(|| "Foreground".to_string());
            doomed.push((rt.clone(), key(o), DeleteOptions { propagation, ..Default::default() }));
            continue;
        }
        let keep: Vec<Value> = refs
            .iter()
            .zip(&owners)
            .filter(|(_, owner)| matches!(owner, Owner::Live { foreground: false }))
            .map(|(r, _)| r.clone())
            .collect();
        if keep.len() != refs.len() {
            let mut new = o.clone();
            new["metadata"]["ownerReferences"] = Value::Array(keep);
            stripped.push((rt.clone(), new));
        }
    }
    for (rt, new) in stripped {
        cluster.store.put(&rt.key(), new);
    }
    for (rt, (ns, name), options) in doomed {
        let _ = cluster.delete(&rt, &ns, &name, &options);
    }
}

/// Whether `dependent` holds up the foreground deletion of `owner_uid` (`blockOwnerDeletion`).
fn blocks_deletion_of(dependent: &Value, owner_uid: &str) -> bool {
    owner_refs(dependent).iter().any(|r| r["uid"] == owner_uid && r["blockOwnerDeletion"] == Value::Bool(true))
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
        } else if has_finalizer(owner, "foregroundDeletion")
            && !dependents.iter().any(|(_, d)| blocks_deletion_of(d, &owner_uid))
        {
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
        let contents = namespace_contents(cluster, &name);
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

/// Every object stored in a namespace, with its type.
fn namespace_contents(cluster: &Cluster, namespace: &str) -> Vec<(ResourceType, Value)> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for rt in cluster.registry.all().iter().filter(|rt| rt.namespaced) {
        if seen.insert(rt.key()) {
            out.extend(cluster.store.list(&rt.key(), Some(namespace)).map(|o| (rt.clone(), o.clone())));
        }
    }
    out
}
