//! The pod cache of the watch controller and the reconcile operator: every pod of the cluster
//! as a [`PodRecord`] (identity, owners and what the engine reads, a few hundred bytes),
//! deserialised straight from the API server's JSON, never as a full `Pod`.
//!
//! [`PodCache::apply`] folds kube-runtime watcher events in, and remembers which namespaces
//! changed so scoring touches only those. A relist (after a `410 Gone` or a dropped watch)
//! updates the one cache in place: pods it lists again are marked with the new generation,
//! and those it did not list are removed when it completes, so old and new caches are never
//! held side by side.

use crate::governance::PodFacts;
use crate::governance::facts::PodRecord;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::runtime::watcher::Event;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// Lets kube-rs list and watch pods as [`PodRecord`]s.
impl kube::Resource for PodRecord {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "Pod".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "pods".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.meta
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.meta
    }
}

/// One cached pod.
#[derive(Clone, Debug, PartialEq)]
pub struct CachedPod {
    pub name: Box<str>,
    /// The workload that controls the pod (a ReplicaSet, a Job, ...), if any.
    pub controller: Option<OwnerReference>,
    pub facts: PodFacts,
    /// The relist that last saw it.
    generation: u64,
}

/// Every pod of the cluster, by namespace.
#[derive(Debug, Default)]
pub struct PodCache {
    /// uid -> namespace, to find a pod again on update or delete.
    namespace_of: HashMap<Box<str>, Arc<str>>,
    /// namespace -> uid -> pod.
    namespaces: BTreeMap<Arc<str>, HashMap<Box<str>, CachedPod>>,
    /// Namespaces whose pods changed since [`PodCache::take_changed`].
    changed: BTreeSet<Arc<str>>,
    generation: u64,
    /// Whether the first full list has been seen (and no relist is under way).
    synced: bool,
}

impl PodCache {
    /// Folds one watcher event in. Returns whether it was a change (not a relist's replay).
    pub fn apply(&mut self, event: Event<PodRecord>) -> bool {
        match event {
            Event::Init => {
                self.generation += 1;
                self.synced = false;
                false
            }
            Event::InitApply(pod) => {
                self.upsert(pod);
                false
            }
            Event::InitDone => {
                self.drop_unlisted();
                self.synced = true;
                false
            }
            Event::Apply(pod) => {
                self.upsert(pod);
                true
            }
            Event::Delete(pod) => {
                if let Some(uid) = pod.meta.uid.as_deref() {
                    self.remove(uid);
                }
                true
            }
        }
    }

    fn upsert(&mut self, record: PodRecord) {
        let PodRecord { meta, facts } = record;
        let (Some(uid), Some(name)) = (meta.uid, meta.name) else { return };
        let namespace = meta.namespace.unwrap_or_else(|| "default".into());
        let namespace = match self.namespaces.get_key_value(namespace.as_str()) {
            Some((interned, _)) => interned.clone(),
            None => Arc::from(namespace),
        };
        let controller = meta.owner_references.into_iter().flatten().find(|o| o.controller == Some(true));
        let uid: Box<str> = uid.into();
        let pod = CachedPod { name: name.into(), controller, facts, generation: self.generation };
        if let Some(previous) = self.namespace_of.insert(uid.clone(), namespace.clone())
            && previous != namespace
        {
            // A uid never changes namespace; be safe all the same.
            self.namespaces.get_mut(&previous).map(|pods| pods.remove(&uid));
            self.changed.insert(previous);
        }
        let pods = self.namespaces.entry(namespace.clone()).or_default();
        let unchanged = pods.get(&uid).is_some_and(|old| old.facts == pod.facts && old.controller == pod.controller);
        pods.insert(uid, pod);
        if !unchanged {
            self.changed.insert(namespace);
        }
    }

    fn remove(&mut self, uid: &str) {
        let Some(namespace) = self.namespace_of.remove(uid) else { return };
        if let Some(pods) = self.namespaces.get_mut(&namespace) {
            pods.remove(uid);
            if pods.is_empty() {
                self.namespaces.remove(&namespace);
            }
        }
        self.changed.insert(namespace);
    }

    /// After a relist: the pods it did not list are gone.
    fn drop_unlisted(&mut self) {
        let generation = self.generation;
        let gone: Vec<Box<str>> = self
            .namespaces
            .values()
            .flat_map(|pods| pods.iter().filter(|(_, p)| p.generation != generation).map(|(uid, _)| uid.clone()))
            .collect();
        for uid in gone {
            self.remove(&uid);
        }
    }

    /// Whether a complete list has been seen and no relist is under way.
    pub fn synced(&self) -> bool {
        self.synced
    }

    /// The namespaces whose pods changed since the last call (and forgets them).
    pub fn take_changed(&mut self) -> BTreeSet<Arc<str>> {
        std::mem::take(&mut self.changed)
    }

    /// The pods of `namespace`.
    pub fn pods(&self, namespace: &str) -> impl Iterator<Item = &CachedPod> {
        self.namespaces.get(namespace).into_iter().flat_map(|pods| pods.values())
    }

    /// Every namespace that has pods.
    pub fn namespaces(&self) -> impl Iterator<Item = &Arc<str>> {
        self.namespaces.keys()
    }

    /// How many pods are cached.
    pub fn len(&self) -> usize {
        self.namespace_of.len()
    }

    pub fn is_empty(&self) -> bool {
        self.namespace_of.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::TestPod;
    use serde_json::json;

    fn record(namespace: &str, name: &str, image: &str) -> PodRecord {
        let pod = TestPod::new(name).in_namespace(namespace).container("app", image).json();
        let mut pod = pod;
        pod["metadata"]["uid"] = json!(format!("{namespace}/{name}"));
        serde_json::from_value(pod).unwrap()
    }

    fn names(cache: &PodCache, namespace: &str) -> Vec<String> {
        let mut names: Vec<String> = cache.pods(namespace).map(|p| p.name.to_string()).collect();
        names.sort();
        names
    }

    #[test]
    fn events_keep_the_cache_current_and_say_which_namespaces_changed() {
        let mut cache = PodCache::default();
        cache.apply(Event::Init);
        cache.apply(Event::InitApply(record("shop", "web", "nginx:1")));
        cache.apply(Event::InitApply(record("blog", "ghost", "ghost:5")));
        assert!(!cache.synced());
        cache.apply(Event::InitDone);
        assert!(cache.synced());
        assert_eq!(cache.len(), 2);
        let changed: Vec<String> = cache.take_changed().iter().map(|n| n.to_string()).collect();
        assert_eq!(changed, ["blog", "shop"]);

        assert!(cache.apply(Event::Apply(record("shop", "api", "api:2"))));
        // The same pod again (a status heartbeat, a label): no change to score.
        cache.apply(Event::Apply(record("blog", "ghost", "ghost:5")));
        let changed: Vec<String> = cache.take_changed().iter().map(|n| n.to_string()).collect();
        assert_eq!(changed, ["shop"]);
        assert_eq!(names(&cache, "shop"), ["api", "web"]);

        cache.apply(Event::Delete(record("shop", "web", "nginx:1")));
        assert_eq!(names(&cache, "shop"), ["api"]);
        assert_eq!(cache.take_changed().len(), 1);
    }

    #[test]
    fn a_relist_updates_in_place_and_drops_what_it_no_longer_lists() {
        let mut cache = PodCache::default();
        for event in [
            Event::Init,
            Event::InitApply(record("shop", "web", "nginx:1")),
            Event::InitApply(record("shop", "old", "x:1")),
            Event::InitDone,
        ] {
            cache.apply(event);
        }
        cache.take_changed();
        // The watch was lost (410 Gone): a relist replays what exists now.
        cache.apply(Event::Init);
        assert!(!cache.synced());
        cache.apply(Event::InitApply(record("shop", "web", "nginx:2")));
        assert_eq!(cache.len(), 2, "one cache, updated in place");
        cache.apply(Event::InitDone);
        assert_eq!(names(&cache, "shop"), ["web"]);
        assert!(cache.pods("shop").all(|p| &*p.facts.containers[0].image == "nginx:2"));
        assert_eq!(cache.take_changed().len(), 1);
    }

    #[test]
    fn the_controller_of_a_pod_is_kept() {
        let mut pod = TestPod::new("web-1").container("app", "nginx:1").owned_by("ReplicaSet").json();
        pod["metadata"]["uid"] = json!("u-1");
        let mut cache = PodCache::default();
        cache.apply(Event::Apply(serde_json::from_value(pod).unwrap()));
        let cached = cache.pods("shop").next().unwrap();
        assert_eq!(cached.controller.as_ref().map(|o| o.kind.as_str()), Some("ReplicaSet"));
    }
}
