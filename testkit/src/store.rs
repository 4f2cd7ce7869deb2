//! The object store: objects by resource, a cluster-wide resourceVersion counter, and a bounded
//! history of changes that watches replay from and are fed by.

use crate::registry::GroupResource;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
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
    pub object: Value,
}

pub type ObjectKey = (String, String);

/// Receives every change after a watch started.
pub type EventReceiver = broadcast::Receiver<Arc<Event>>;

pub struct Store {
    rv: u64,
    objects: BTreeMap<GroupResource, BTreeMap<ObjectKey, Value>>,
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
        self.objects.get(resource)?.get(&(namespace.to_string(), name.to_string()))
    }

    /// Objects of a resource, in one namespace or all, ordered by namespace then name.
    pub fn list<'a>(
        &'a self,
        resource: &GroupResource,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects
            .get(resource)
            .into_iter()
            .flat_map(|m| m.iter())
            .filter(move |((ns, _), _)| namespace.is_none_or(|n| n == ns))
            .map(|(_, v)| v)
    }

    pub fn resources(&self) -> impl Iterator<Item = &GroupResource> {
        self.objects.keys()
    }

    pub fn next_uid(&mut self) -> String {
        self.uid_counter += 1;
        let n = self.uid_counter;
        format!("{:08x}-0000-4000-8000-{:012x}", (n >> 16) as u32 ^ 0x7e57_0000, n)
    }

    /// Stores `object` (new or replaced), stamping the next resourceVersion; returns it.
    pub fn put(&mut self, resource: &GroupResource, object: Value) -> Value {
        let (namespace, name) = key_of(&object);
        let existed = self.get(resource, &namespace, &name).is_some();
        let rv = self.bump();
        let mut object = object;
        object["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        self.objects.entry(resource.clone()).or_default().insert((namespace.clone(), name), object.clone());
        let kind = if existed { EventType::Modified } else { EventType::Added };
        self.record(Event { rv, kind, resource: resource.clone(), namespace, object: object.clone() });
        object
    }

    /// Removes an object; the DELETED event carries it with a new resourceVersion.
    pub fn remove(&mut self, resource: &GroupResource, namespace: &str, name: &str) -> Option<Value> {
        let mut object = self.objects.get_mut(resource)?.remove(&(namespace.to_string(), name.to_string()))?;
        let rv = self.bump();
        object["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        self.record(Event {
            rv,
            kind: EventType::Deleted,
            resource: resource.clone(),
            namespace: namespace.to_string(),
            object: object.clone(),
        });
        Some(object)
    }

    /// Changes after `rv` still in history (None when `rv` is too old: 410 Gone), and a
    /// receiver for every later change. Taken together under the store lock, so nothing is
    /// missed or repeated.
    pub fn watch_from(&self, rv: u64) -> Option<(Vec<Arc<Event>>, EventReceiver)> {
        if rv < self.compacted_through {
            return None;
        }
        let replay = self.history.iter().filter(|e| e.rv > rv).cloned().collect();
        Some((replay, self.tx.subscribe()))
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
