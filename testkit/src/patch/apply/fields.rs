//! Field paths and sets: the `FieldsV1` encoding and the `metadata.managedFields` entries that hold them.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::remove_key;

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Pe {
    /// A field of an object.
    Field(String),
    /// An item of a list with keys: the canonical JSON object of its key fields.
    Key(String),
    /// An item of a set list: its canonical JSON.
    Value(String),
    /// An item by position (only read from managed fields written elsewhere).
    Index(usize),
}

pub(super) type Path = Vec<Pe>;
pub(super) type FieldSet = BTreeSet<Path>;

impl Pe {
    fn encode(&self) -> String {
        match self {
            Pe::Field(f) => format!("f:{f}"),
            Pe::Key(k) => format!("k:{k}"),
            Pe::Value(v) => format!("v:{v}"),
            Pe::Index(i) => format!("i:{i}"),
        }
    }

    fn decode(s: &str) -> Option<Pe> {
        if let Some(f) = s.strip_prefix("f:") {
            Some(Pe::Field(f.to_owned()))
        } else if let Some(k) = s.strip_prefix("k:") {
            match serde_json::from_str::<Value>(k).ok()? {
                v @ Value::Object(_) => Some(Pe::Key(canonical(&v))),
                _ => None,
            }
        } else if let Some(v) = s.strip_prefix("v:") {
            Some(Pe::Value(canonical(&serde_json::from_str(v).ok()?)))
        } else {
            s.strip_prefix("i:")?.parse().ok().map(Pe::Index)
        }
    }
}

/// A path in the notation of the real conflict messages.
pub(super) fn path_string(path: &[Pe]) -> String {
    let mut s = String::new();
    for pe in path {
        match pe {
            Pe::Field(f) => {
                s.push('.');
                s.push_str(f);
            }
            Pe::Key(k) => {
                let fields = match serde_json::from_str::<Value>(k) {
                    Ok(Value::Object(m)) => m.iter().map(|(k, v)| format!("{k}={}", canonical(v))).collect::<Vec<_>>(),
                    _ => vec![k.clone()],
                };
                s.push_str(&format!("[{}]", fields.join(",")));
            }
            Pe::Value(v) => s.push_str(&format!("[={v}]")),
            Pe::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// JSON with object keys sorted, whatever serde_json's map order.
pub(super) fn canonical(v: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                let mut fields: Vec<(&String, &Value)> = m.iter().collect();
                fields.sort_by(|a, b| a.0.cmp(b.0));
                out.push('{');
                for (i, (k, v)) in fields.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    write(v, out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }
    let mut out = String::new();
    write(v, &mut out);
    out
}

/// The `fieldsV1` encoding of a field set.
pub(super) fn encode_set(set: &FieldSet) -> Value {
    #[derive(Default)]
    struct Node {
        member: bool,
        children: BTreeMap<Pe, Node>,
    }
    fn to_json(node: &Node) -> Value {
        let mut m = Map::new();
        if node.member && !node.children.is_empty() {
            m.insert(".".to_owned(), Value::Object(Map::new()));
        }
        for (pe, child) in &node.children {
            m.insert(pe.encode(), to_json(child));
        }
        Value::Object(m)
    }
    let mut root = Node::default();
    for path in set {
        let mut node = &mut root;
        for pe in path {
            node = node.children.entry(pe.clone()).or_default();
        }
        node.member = true;
    }
    to_json(&root)
}

/// Decode `fieldsV1`; `None` if it is malformed.
pub(super) fn decode_set(v: &Value) -> Option<FieldSet> {
    fn walk(v: &Value, path: &mut Path, set: &mut FieldSet) -> Option<()> {
        let m = v.as_object()?;
        if m.is_empty() && !path.is_empty() {
            set.insert(path.clone());
        }
        for (k, child) in m {
            if k == "." {
                if !path.is_empty() {
                    set.insert(path.clone());
                }
                continue;
            }
            path.push(Pe::decode(k)?);
            walk(child, path, set)?;
            path.pop();
        }
        Some(())
    }
    let mut set = FieldSet::new();
    walk(v, &mut Vec::new(), &mut set)?;
    Some(set)
}

/// One `metadata.managedFields` entry.
pub(super) struct Entry {
    pub(super) manager: String,
    operation: String,
    subresource: String,
    pub(super) api_version: String,
    pub(super) time: Option<String>,
    pub(super) set: FieldSet,
    /// The entry as read; written back as is unless `dirty`.
    raw: Option<Value>,
    pub(super) dirty: bool,
    /// Not `FieldsV1` or undecodable: kept as is, owns nothing.
    opaque: bool,
}

impl Entry {
    pub(super) fn new(
        manager: &str,
        operation: &str,
        subresource: &str,
        api_version: String,
        now: &str,
        set: FieldSet,
    ) -> Entry {
        Entry {
            manager: manager.to_owned(),
            operation: operation.to_owned(),
            subresource: subresource.to_owned(),
            api_version,
            time: Some(now.to_owned()),
            set,
            raw: None,
            dirty: true,
            opaque: false,
        }
    }

    pub(super) fn remove_all(&mut self, paths: &FieldSet) {
        if self.set.iter().any(|p| paths.contains(p)) {
            self.set.retain(|p| !paths.contains(p));
            self.dirty = true;
        }
    }

    fn to_json(&self) -> Value {
        if let (false, Some(raw)) = (self.dirty, &self.raw) {
            return raw.clone();
        }
        // The field order of the Go type.
        let mut m = Map::new();
        m.insert("manager".into(), self.manager.clone().into());
        m.insert("operation".into(), self.operation.clone().into());
        m.insert("apiVersion".into(), self.api_version.clone().into());
        if let Some(t) = &self.time {
            m.insert("time".into(), t.clone().into());
        }
        m.insert("fieldsType".into(), "FieldsV1".into());
        m.insert("fieldsV1".into(), encode_set(&self.set));
        if !self.subresource.is_empty() {
            m.insert("subresource".into(), self.subresource.clone().into());
        }
        Value::Object(m)
    }
}

pub(super) fn managed_fields(object: &Value) -> Option<&Value> {
    object.get("metadata")?.get("managedFields")
}

pub(super) fn read_entries(list: Option<&Value>) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::new();
    for raw in list.and_then(Value::as_array).into_iter().flatten() {
        let text = |f: &str| raw.get(f).and_then(Value::as_str).unwrap_or_default().to_owned();
        let manager = text("manager");
        let fields = raw.get("fieldsV1");
        if manager.is_empty() && fields.is_none() {
            continue;
        }
        let set = match (raw.get("fieldsType").and_then(Value::as_str), fields) {
            (Some("FieldsV1") | None, Some(f)) => decode_set(f),
            (Some("FieldsV1") | None, None) => Some(FieldSet::new()),
            _ => None,
        };
        let entry = Entry {
            manager,
            operation: text("operation"),
            subresource: text("subresource"),
            api_version: text("apiVersion"),
            time: raw.get("time").and_then(Value::as_str).map(str::to_owned),
            opaque: set.is_none(),
            set: set.unwrap_or_default(),
            raw: Some(raw.clone()),
            dirty: false,
        };
        // Two entries for one (manager, operation, subresource): fold them into the first.
        match entries.iter_mut().find(|e| {
            !e.opaque
                && !entry.opaque
                && e.manager == entry.manager
                && e.operation == entry.operation
                && e.subresource == entry.subresource
        }) {
            Some(e) => {
                e.set.extend(entry.set);
                e.dirty = true;
            }
            None => entries.push(entry),
        }
    }
    entries
}

pub(super) fn position(entries: &[Entry], manager: &str, operation: &str, subresource: &str) -> Option<usize> {
    entries
        .iter()
        .position(|e| !e.opaque && e.manager == manager && e.operation == operation && e.subresource == subresource)
}

/// Write `entries` (without the empty ones) to `metadata.managedFields`, in the real server's
/// order: `Apply` before `Update`, then by time, manager, apiVersion and subresource.
pub(super) fn store_entries(object: &mut Value, mut entries: Vec<Entry>) {
    let Value::Object(root) = object else { return };
    entries.retain(|e| e.opaque || !e.set.is_empty());
    entries.sort_by(|a, b| {
        (&a.operation, &a.time, &a.manager, &a.api_version, &a.subresource).cmp(&(
            &b.operation,
            &b.time,
            &b.manager,
            &b.api_version,
            &b.subresource,
        ))
    });
    if entries.is_empty() {
        if let Some(Value::Object(md)) = root.get_mut("metadata") {
            remove_key(md, "managedFields");
        }
        return;
    }
    let list = Value::Array(entries.iter().map(Entry::to_json).collect());
    let md = root.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    if !md.is_object() {
        *md = Value::Object(Map::new());
    }
    if let Value::Object(md) = md {
        md.insert("managedFields".into(), list);
    }
}
