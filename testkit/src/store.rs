//! The object store: objects by resource, a cluster-wide resourceVersion counter, and a bounded
//! history of changes that watches replay from and are fed by.

use crate::registry::GroupResource;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::Arc;
use tokio::sync::broadcast;

/// Changes kept for watches that resume from an older resourceVersion; older ones get 410 Gone.
pub const HISTORY: usize = 20_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as watches see it.
#[derive(Clone, Debug)]
pub struct Event {
    pub rv: u64,
    pub kind: EventType,
    pub resource: GroupResource,
    pub namespace: String,
    /// The object as stored: shared with the store (and every watch), never copied.
    pub object: Arc<Value>,
}

pub type ObjectKey = (String, String);

/// Receives every change after a watch started.
pub type EventReceiver = broadcast::Receiver<Arc<Event>>;

pub struct Store {
    rv: u64,
    objects: BTreeMap<GroupResource, BTreeMap<ObjectKey, Arc<Value>>>,
    history: VecDeque<Arc<Event>>,
    /// Changes with a resourceVersion above this are all in `history`.
    compacted_through: u64,
    tx: broadcast::Sender<Arc<Event>>,
    uid_counter: u64,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

impl Store {
    pub fn new() -> Store {
        let (tx, _) = broadcast::channel(65_536);
        Store { rv: 1, objects: BTreeMap::new(), history: VecDeque::new(), compacted_through: 1, tx, uid_counter: 0 }
    }

    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// The oldest resourceVersion a watch may still start from.
    pub fn oldest_watchable(&self) -> u64 {
        self.compacted_through
    }

    pub fn get(&self, resource: &GroupResource, namespace: &str, name: &str) -> Option<&Value> {
        self.objects.get(resource)?.get(&(namespace.to_string(), name.to_string())).map(|o| &**o)
    }

    /// Objects of a resource, in one namespace or all, ordered by namespace then name. One
    /// namespace is a range of the map: its cost does not grow with the other namespaces.
    pub fn list<'a>(
        &'a self,
        resource: &GroupResource,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        let start = match namespace {
            Some(ns) => Bound::Included((ns.to_string(), String::new())),
            None => Bound::Unbounded,
        };
        self.objects
            .get(resource)
            .into_iter()
            .flat_map(move |m| m.range((start.clone(), Bound::Unbounded)))
            .take_while(move |((ns, _), _)| namespace.is_none_or(|n| n == ns))
            .map(|(_, v)| &**v)
    }

    /// How many objects of a resource are stored.
    pub fn count(&self, resource: &GroupResource) -> usize {
        self.objects.get(resource).map_or(0, BTreeMap::len)
    }

    pub fn resources(&self) -> impl Iterator<Item = &GroupResource> {
        self.objects.keys()
    }

    pub fn next_uid(&mut self) -> String {
        self.uid_counter += 1;
        let n = self.uid_counter;
        format!("{:08x}-0000-4000-8000-{:012x}", (n >> 16) as u32 ^ 0x7e57_0000, n)
    }

    /// Stores `object` (new or replaced), stamping the next resourceVersion; returns it as
    /// stored (shared: most callers drop it, and a copy of every write would cost as much as
    /// the write).
    pub fn put(&mut self, resource: &GroupResource, object: Value) -> Arc<Value> {
        let (namespace, name) = key_of(&object);
        let existed = self.get(resource, &namespace, &name).is_some();
        let rv = self.bump();
        let mut object = object;
        object["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        let shared = Arc::new(object);
        self.objects.entry(resource.clone()).or_default().insert((namespace.clone(), name), shared.clone());
        let kind = if existed { EventType::Modified } else { EventType::Added };
        self.record(Event { rv, kind, resource: resource.clone(), namespace, object: shared.clone() });
        shared
    }

    /// Removes an object; the DELETED event carries it with a new resourceVersion.
    pub fn remove(&mut self, resource: &GroupResource, namespace: &str, name: &str) -> Option<Value> {
        let object = self.objects.get_mut(resource)?.remove(&(namespace.to_string(), name.to_string()))?;
        let mut object = Arc::unwrap_or_clone(object);
        let rv = self.bump();
        object["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        let shared = Arc::new(object);
        self.record(Event {
            rv,
            kind: EventType::Deleted,
            resource: resource.clone(),
            namespace: namespace.to_string(),
            object: shared.clone(),
        });
        Some(Arc::unwrap_or_clone(shared))
    }

    /// Changes after `rv` still in history (None when `rv` is too old: 410 Gone), and a
    /// receiver for every later change. Taken together under the store lock, so nothing is
    /// missed or repeated.
    pub fn watch_from(&self, rv: u64) -> Option<(Vec<Arc<Event>>, EventReceiver)> {
        if rv < self.compacted_through {
            return None;
        }
        Some((self.changes_since(rv)?, self.tx.subscribe()))
    }

    /// The changes after `rv`, oldest first (None when `rv` is older than the history): what
    /// the controllers and the kubelet read to learn which objects changed since their last
    /// look. History is ordered by resourceVersion, so finding the start is a binary search.
    pub fn changes_since(&self, rv: u64) -> Option<Vec<Arc<Event>>> {
        if rv < self.compacted_through {
            return None;
        }
        let start = self.history.partition_point(|e| e.rv <= rv);
        Some(self.history.range(start..).cloned().collect())
    }

    /// Drops all history (every watch must relist): for tests of 410 handling.
    pub fn compact(&mut self) {
        self.history.clear();
        self.compacted_through = self.rv;
    }

    fn bump(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn record(&mut self, event: Event) {
        let event = Arc::new(event);
        if self.history.len() == HISTORY
            && let Some(old) = self.history.pop_front()
        {
            self.compacted_through = old.rv;
        }
        self.history.push_back(event.clone());
        let _ = self.tx.send(event);
    }
}

/// `(namespace, name)` of an object ("" namespace for cluster-scoped ones).
pub fn key_of(object: &Value) -> ObjectKey {
    let meta = &object["metadata"];
    (meta["namespace"].as_str().unwrap_or_default().to_string(), meta["name"].as_str().unwrap_or_default().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pods() -> GroupResource {
        GroupResource { group: String::new(), resource: "pods".into() }
    }

    fn pod(ns: &str, name: &str) -> Value {
        json!({"metadata": {"namespace": ns, "name": name}})
    }

    #[test]
    fn a_namespace_lists_only_its_own_objects_even_beside_a_longer_name() {
        let mut store = Store::new();
        for (ns, name) in [("a", "x"), ("ab", "y"), ("a", "z"), ("b", "w"), ("", "cluster")] {
            store.put(&pods(), pod(ns, name));
        }
        let names = |ns| -> Vec<String> {
            store.list(&pods(), ns).map(|o| o["metadata"]["name"].as_str().unwrap().to_string()).collect()
        };
        assert_eq!(names(Some("a")), ["x", "z"]);
        assert_eq!(names(Some("ab")), ["y"]);
        assert_eq!(names(Some("c")), Vec::<String>::new());
        assert_eq!(names(None), ["cluster", "x", "z", "y", "w"]);
        assert_eq!(store.count(&pods()), 5);
    }

    #[test]
    fn changes_since_a_version_are_the_later_ones_until_compacted() {
        let mut store = Store::new();
        store.put(&pods(), pod("a", "one"));
        let seen = store.resource_version();
        store.put(&pods(), pod("a", "two"));
        store.remove(&pods(), "a", "one");
        let kinds: Vec<(EventType, String)> = store
            .changes_since(seen)
            .unwrap()
            .iter()
            .map(|e| (e.kind, e.object["metadata"]["name"].as_str().unwrap().to_string()))
            .collect();
        assert_eq!(kinds, [(EventType::Added, "two".into()), (EventType::Deleted, "one".into())]);
        assert!(store.changes_since(store.resource_version()).unwrap().is_empty());
        store.compact();
        assert!(store.changes_since(seen).is_none(), "too old: the reader must look at everything again");
    }

    #[test]
    fn the_stored_object_and_its_event_are_one_value() {
        let mut store = Store::new();
        store.put(&pods(), pod("a", "one"));
        let event = store.changes_since(1).unwrap().pop().unwrap();
        assert!(std::ptr::eq(&*event.object, store.get(&pods(), "a", "one").unwrap()), "shared, not copied");
    }
}
