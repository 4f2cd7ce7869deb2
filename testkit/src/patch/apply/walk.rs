//! Walking objects into the nodes that field sets can own, and diffing two versions of an object.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Value};

use super::ListKeys;
use super::fields::{FieldSet, Path, Pe, canonical, path_string};

/// Metadata fields only the server sets: not tracked, and ignored in apply configurations.
pub(super) const SERVER_METADATA: &[&str] = &[
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "selfLink",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// Paths (with everything under them) that are not tracked.
fn is_untracked(path: &[Pe]) -> bool {
    match path {
        [Pe::Field(f)] => f == "apiVersion" || f == "kind",
        [Pe::Field(m), Pe::Field(f), ..] if m == "metadata" => {
            f == "name" || f == "namespace" || SERVER_METADATA.contains(&f.as_str())
        }
        _ => false,
    }
}

/// A node of an object, as far as ownership goes.
#[derive(Debug, Clone, Copy)]
pub(super) enum Node<'a> {
    /// A value owned as a whole: a scalar, `null`, an empty object, an atomic list, a set item.
    Leaf(&'a Value),
    /// An item of a list with keys (owned itself, and has fields).
    Item,
    /// A non-empty object (owned only when an update creates it).
    Map,
}

pub(super) type Nodes<'a> = BTreeMap<Path, Node<'a>>;

/// The owned paths of a configuration.
pub(super) fn members(nodes: &Nodes<'_>) -> FieldSet {
    nodes.iter().filter(|(_, n)| !matches!(n, Node::Map)).map(|(p, _)| p.clone()).collect()
}

pub(super) struct Walker<'k> {
    pub(super) keys: &'k dyn ListKeys,
    /// Reject list items without keys, duplicate keys and non-scalar set items (configurations);
    /// otherwise such a list is treated as atomic (live objects).
    pub(super) strict: bool,
}

impl Walker<'_> {
    pub(super) fn nodes<'a>(&self, root: &'a Value) -> Result<Nodes<'a>, String> {
        let mut out = Nodes::new();
        if let Value::Object(m) = root {
            self.fields(m, &mut Vec::new(), &mut Vec::new(), &mut out)?;
        }
        Ok(out)
    }

    pub(super) fn nodes_lenient<'a>(&self, root: &'a Value) -> Nodes<'a> {
        self.nodes(root).unwrap_or_default()
    }

    fn fields<'a>(
        &self,
        m: &'a Map<String, Value>,
        path: &mut Path,
        names: &mut Vec<String>,
        out: &mut Nodes<'a>,
    ) -> Result<(), String> {
        for (k, v) in m {
            path.push(Pe::Field(k.clone()));
            if !is_untracked(path) {
                names.push(k.clone());
                self.value(v, path, names, out)?;
                names.pop();
            }
            path.pop();
        }
        Ok(())
    }

    fn value<'a>(
        &self,
        v: &'a Value,
        path: &mut Path,
        names: &mut Vec<String>,
        out: &mut Nodes<'a>,
    ) -> Result<(), String> {
        let tracked = !(path.len() == 1 && path[0] == Pe::Field("metadata".into()));
        match v {
            Value::Object(m) if m.is_empty() => {
                if tracked {
                    out.insert(path.clone(), Node::Leaf(v));
                }
            }
            Value::Object(m) => {
                if tracked {
                    out.insert(path.clone(), Node::Map);
                }
                self.fields(m, path, names, out)?;
            }
            Value::Array(items) => self.list(v, items, path, names, out)?,
            scalar => {
                out.insert(path.clone(), Node::Leaf(scalar));
            }
        }
        Ok(())
    }

    fn list<'a>(
        &self,
        whole: &'a Value,
        items: &'a [Value],
        path: &mut Path,
        names: &mut Vec<String>,
        out: &mut Nodes<'a>,
    ) -> Result<(), String> {
        let kind = list_kind(self.keys, names);
        let pes: Vec<Pe> = match &kind {
            ListKind::Keyed(keys) => {
                let mut pes = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match item_key(item, keys) {
                        Ok(pe) => pes.push(pe),
                        Err(e) if self.strict => return Err(format!("{}: element {i}: {e}", path_string(path))),
                        Err(_) => {
                            out.insert(path.clone(), Node::Leaf(whole));
                            return Ok(());
                        }
                    }
                }
                pes
            }
            ListKind::Set => {
                let mut pes = Vec::with_capacity(items.len());
                for item in items {
                    if item.is_object() || item.is_array() {
                        if self.strict {
                            return Err(format!(
                                "{}: items of a set list must be scalars, got {item}",
                                path_string(path)
                            ));
                        }
                        out.insert(path.clone(), Node::Leaf(whole));
                        return Ok(());
                    }
                    pes.push(Pe::Value(canonical(item)));
                }
                pes
            }
            ListKind::Atomic => {
                out.insert(path.clone(), Node::Leaf(whole));
                return Ok(());
            }
        };
        let mut seen = HashSet::new();
        for (item, pe) in items.iter().zip(pes) {
            if !seen.insert(pe.clone()) {
                if self.strict {
                    return Err(format!("{}: duplicate entries for key {}", path_string(path), path_string(&[pe])));
                }
                // A duplicate in a live object: only the first one is tracked.
                continue;
            }
            path.push(pe);
            match item {
                Value::Object(m) => {
                    out.insert(path.clone(), Node::Item);
                    self.fields(m, path, names, out)?;
                }
                scalar => {
                    out.insert(path.clone(), Node::Leaf(scalar));
                }
            }
            path.pop();
        }
        Ok(())
    }
}

pub(super) enum ListKind {
    Keyed(Vec<String>),
    Set,
    Atomic,
}

pub(super) fn list_kind(keys: &dyn ListKeys, names: &[String]) -> ListKind {
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    match keys.keys(&names) {
        Some(k) if !k.is_empty() => ListKind::Keyed(k),
        _ if keys.is_set(&names) => ListKind::Set,
        _ => ListKind::Atomic,
    }
}

/// Schema defaults of key fields (the only one among the built-in kinds: ports' `protocol`).
fn key_default(key: &str) -> Option<Value> {
    (key == "protocol").then(|| Value::String("TCP".into()))
}

/// The path element of an item of a list with `keys`.
pub(super) fn item_key(item: &Value, keys: &[String]) -> Result<Pe, String> {
    let Value::Object(m) = item else {
        return Err(format!("expected an object in a list with keys {keys:?}, got {item}"));
    };
    let mut key = Map::new();
    for k in keys {
        let value = match m.get(k) {
            Some(v) if !v.is_null() => v.clone(),
            _ => key_default(k).ok_or_else(|| {
                format!("associative list with keys has an element that omits key field {k:?} (and doesn't have default value)")
            })?,
        };
        key.insert(k.clone(), value);
    }
    Ok(Pe::Key(canonical(&Value::Object(key))))
}

/// How two versions of an object differ (paths of [`Nodes`]).
pub(super) struct Diff {
    pub(super) added: FieldSet,
    pub(super) modified: FieldSet,
    pub(super) removed: FieldSet,
}

impl Diff {
    pub(super) fn new(old: &Nodes<'_>, new: &Nodes<'_>) -> Diff {
        let mut diff = Diff { added: FieldSet::new(), modified: FieldSet::new(), removed: FieldSet::new() };
        for (path, n) in new {
            match (old.get(path), n) {
                (None, _) => {
                    diff.added.insert(path.clone());
                }
                (Some(Node::Leaf(a)), Node::Leaf(b)) if a == b => {}
                (Some(Node::Item), Node::Item) | (Some(Node::Map), Node::Map) => {}
                // An empty object that gets fields, or loses its last one, is not itself
                // modified: only the fields are added or removed (structured-merge-diff
                // treats an object as a leaf only while it is empty on both sides). So a
                // manager that created `resources: {}` does not conflict with one that sets
                // `resources.limits`.
                (Some(Node::Leaf(Value::Object(m))), Node::Map) if m.is_empty() => {}
                (Some(Node::Map), Node::Leaf(Value::Object(m))) if m.is_empty() => {}
                (Some(_), _) => {
                    diff.modified.insert(path.clone());
                }
            }
        }
        diff.removed = old.keys().filter(|p| !new.contains_key(*p)).cloned().collect();
        diff
    }

    pub(super) fn is_empty(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }
}
