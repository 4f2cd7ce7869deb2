//! Server-side apply and field ownership (`metadata.managedFields`), after the real
//! implementation (structured-merge-diff as used by the API server's field manager).
//!
//! - [`apply`] merges an apply configuration into the live object for a field manager: fields in
//!   the configuration are set; fields the manager applied last time and no longer applies are
//!   removed unless another manager owns them too; changing a field that another manager owns is
//!   a conflict unless `force`, which moves the ownership.
//! - [`record_update`] records the fields a create/update/patch changed as owned by its manager
//!   (operation `Update`) and takes them away from every other manager, without conflicts.
//!
//! Field sets use the real `FieldsV1` encoding: `f:<field>`, `k:{"name":"web"}` for items of
//! lists with keys, `v:"value"` for items of set lists, `.` for a node that is owned itself and
//! also has owned children. List types come from a [`ListKeys`] (built-in tables or a CRD schema);
//! every map is granular (an object is never owned as a whole unless it is empty).
//!
//! Not tracked (like the real `stripMeta`): `apiVersion`, `kind`, `metadata` itself and
//! `metadata.{name, namespace, uid, resourceVersion, generation, creationTimestamp, selfLink,
//! managedFields, deletionTimestamp, deletionGracePeriodSeconds}`. Labels, annotations,
//! finalizers and owner references are tracked. `status` is tracked like any other field: the
//! caller passes only what the request may write (and a subresource name to keep the entries of
//! `/status` writes apart, see [`apply_subresource`] / [`record_update_subresource`]).
//!
//! A missing `protocol` in an item of a list keyed by `protocol` (container and Service ports)
//! takes the schema default `TCP`, as it does on the real server.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use serde_json::{Map, Value};

use super::ListKeys;

const APPLY: &str = "Apply";
const UPDATE: &str = "Update";

/// Why an apply request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// Fields the configuration changes are owned by other managers (HTTP 409). Each conflict is
    /// `(manager, field path)`, the path in the real notation
    /// (`.spec.template.spec.containers[name="web"].image`).
    #[error("{}", conflict_message(.conflicts))]
    Conflict { conflicts: Vec<(String, String)> },
    /// The configuration cannot be applied (HTTP 400/422).
    #[error("{0}")]
    Invalid(String),
}

/// Server-side apply of `config` by `manager` (a request to the main resource).
///
/// Returns the new object, with `metadata.managedFields` updated. `live` is `None` on create.
/// `now` is the RFC 3339 time stamped on the manager's entry, but only when its field set or
/// the object changed: applying the same configuration again returns an identical object.
/// `metadata.resourceVersion`, `uid`, `generation`, `creationTimestamp` and other fields only the
/// server sets are ignored in `config` (check a `resourceVersion` precondition before calling).
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
    keys: &dyn ListKeys,
    now: &str,
) -> Result<Value, ApplyError> {
    apply_subresource(live, config, manager, "", force, keys, now)
}

/// [`apply`] through a subresource (`"status"`; `""` for the main resource): the manager's entry
/// carries `subresource` and is distinct from its entry for the main resource.
pub fn apply_subresource(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    subresource: &str,
    force: bool,
    keys: &dyn ListKeys,
    now: &str,
) -> Result<Value, ApplyError> {
    if manager.is_empty() {
        return Err(ApplyError::Invalid("PATCH, application/apply-patch+yaml: fieldManager is required".into()));
    }
    let Value::Object(cfg) = config else {
        return Err(ApplyError::Invalid("apply configuration must be a JSON object".into()));
    };
    if cfg.get("metadata").and_then(|m| m.get("managedFields")).is_some_and(|f| !f.is_null()) {
        return Err(ApplyError::Invalid("metadata.managedFields must be nil".into()));
    }
    let live = match live {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => return Err(ApplyError::Invalid("the live object is not a JSON object".into())),
    };
    if let (Some(a), Some(b)) = (live.get("kind").and_then(Value::as_str), cfg.get("kind").and_then(Value::as_str))
        && a != b
    {
        return Err(ApplyError::Invalid(format!(
            "kind {b:?} of the configuration does not match the object's kind {a:?}"
        )));
    }
    let mut cfg = cfg.clone();
    if let Some(Value::Object(md)) = cfg.get_mut("metadata") {
        md.retain(|k, _| !SERVER_METADATA.contains(&k.as_str()));
    }
    let cfg = Value::Object(cfg);
    let api_version = str_field(&cfg, "apiVersion").or_else(|| str_field(&live, "apiVersion")).unwrap_or_default();

    let config_nodes = Walker { keys, strict: true }.nodes(&cfg).map_err(ApplyError::Invalid)?;
    let config_set = members(&config_nodes);

    let mut entries = read_entries(managed_fields(&live));
    let me = position(&entries, manager, APPLY, subresource);
    let last_set = me.map(|i| entries[i].set.clone()).unwrap_or_default();
    let mut owned: FieldSet = config_set.clone();
    for (i, e) in entries.iter().enumerate() {
        if Some(i) != me {
            owned.extend(e.set.iter().cloned());
        }
    }

    let mut merged = merge_value(&live, &cfg, &mut Vec::new(), keys);
    for path in last_set.difference(&owned) {
        remove_path(&mut merged, path, keys, &owned);
    }

    let lenient = Walker { keys, strict: false };
    let diff = Diff::new(&lenient.nodes_lenient(&live), &lenient.nodes_lenient(&merged));
    // A field set to null by the configuration is removed, and changed as far as others go.
    let changed: FieldSet =
        diff.added.iter().chain(&diff.modified).chain(diff.removed.intersection(&config_set)).cloned().collect();

    let mut conflicts: BTreeSet<(String, Path)> = BTreeSet::new();
    for (i, e) in entries.iter().enumerate() {
        if Some(i) != me {
            conflicts.extend(e.set.intersection(&changed).map(|p| (e.manager.clone(), p.clone())));
        }
    }
    if !conflicts.is_empty() && !force {
        let conflicts = conflicts.into_iter().map(|(m, p)| (m, path_string(&p))).collect();
        return Err(ApplyError::Conflict { conflicts });
    }
    for (i, e) in entries.iter_mut().enumerate() {
        if Some(i) != me {
            e.remove_all(&changed);
            e.remove_all(&diff.removed);
        }
    }
    match me {
        Some(i) => {
            let e = &mut entries[i];
            if e.set != config_set || !diff.is_empty() || e.api_version != api_version {
                e.set = config_set;
                e.api_version = api_version;
                e.time = Some(now.to_owned());
                e.dirty = true;
            }
        }
        None => entries.push(Entry::new(manager, APPLY, subresource, api_version, now, config_set)),
    }
    store_entries(&mut merged, entries);
    Ok(merged)
}

/// Record a non-apply write (create, update, patch) by `manager` (a request to the main
/// resource): the fields that `new` adds or changes compared with `old` (`None` on create) become
/// owned by `manager` with operation `Update` and are taken away from every other manager;
/// removed fields are no longer owned by anyone. Sets `new`'s `metadata.managedFields`.
///
/// Like the real server: `managedFields` sent in `new` replace the live ones (absent or `[]` keeps
/// the live ones, `[{}]` strips them all), and a write that changes nothing leaves
/// `managedFields` untouched.
pub fn record_update(old: Option<&Value>, new: &mut Value, manager: &str, keys: &dyn ListKeys, now: &str) {
    record_update_subresource(old, new, manager, "", keys, now);
}

/// [`record_update`] through a subresource (`"status"`; `""` for the main resource). Managed
/// fields sent with a subresource write are ignored.
pub fn record_update_subresource(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: &str,
    keys: &dyn ListKeys,
    now: &str,
) {
    if !new.is_object() {
        return;
    }
    let empty = Value::Object(Map::new());
    let old = match old {
        Some(v @ Value::Object(_)) => v,
        _ => &empty,
    };
    let sent = match managed_fields(new) {
        Some(Value::Array(list)) if !list.is_empty() && subresource.is_empty() => Some(list.clone()),
        _ => None,
    };
    let mut entries = match sent {
        Some(list) => {
            let entries = read_entries(Some(&Value::Array(list)));
            if entries.is_empty() {
                // `[{}]`: the client strips managedFields.
                store_entries(new, entries);
                return;
            }
            entries
        }
        None => read_entries(managed_fields(old)),
    };

    let walker = Walker { keys, strict: false };
    let diff = Diff::new(&walker.nodes_lenient(old), &walker.nodes_lenient(new));
    let touched: FieldSet = diff.added.union(&diff.modified).cloned().collect();
    let api_version = str_field(new, "apiVersion").unwrap_or_default();
    let me = position(&entries, manager, UPDATE, subresource);
    for (i, e) in entries.iter_mut().enumerate() {
        if Some(i) != me {
            e.remove_all(&touched);
            e.remove_all(&diff.removed);
        }
    }
    if !diff.is_empty() {
        match me {
            Some(i) => {
                let e = &mut entries[i];
                e.set = e.set.difference(&diff.removed).cloned().collect();
                e.set.extend(touched);
                e.api_version = api_version;
                e.time = Some(now.to_owned());
                e.dirty = true;
            }
            None => entries.push(Entry::new(manager, UPDATE, subresource, api_version, now, touched)),
        }
    }
    store_entries(new, entries);
}

/// The fields `manager` owns in `object` (over all its entries), in the notation of conflicts
/// (`.spec.replicas`, `.spec.template.spec.containers[name="web"]`), sorted.
pub fn owned_fields(object: &Value, manager: &str) -> Vec<String> {
    let set: FieldSet =
        read_entries(managed_fields(object)).into_iter().filter(|e| e.manager == manager).flat_map(|e| e.set).collect();
    set.iter().map(|p| path_string(p)).collect()
}

// ---------------------------------------------------------------------------------------------
// Paths and field sets

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Pe {
    /// A field of an object.
    Field(String),
    /// An item of a list with keys: the canonical JSON object of its key fields.
    Key(String),
    /// An item of a set list: its canonical JSON.
    Value(String),
    /// An item by position (only read from managed fields written elsewhere).
    Index(usize),
}

type Path = Vec<Pe>;
type FieldSet = BTreeSet<Path>;

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
fn path_string(path: &[Pe]) -> String {
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
fn canonical(v: &Value) -> String {
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
fn encode_set(set: &FieldSet) -> Value {
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
fn decode_set(v: &Value) -> Option<FieldSet> {
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

// ---------------------------------------------------------------------------------------------
// Walking objects

/// Metadata fields only the server sets: not tracked, and ignored in apply configurations.
const SERVER_METADATA: &[&str] = &[
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
enum Node<'a> {
    /// A value owned as a whole: a scalar, `null`, an empty object, an atomic list, a set item.
    Leaf(&'a Value),
    /// An item of a list with keys (owned itself, and has fields).
    Item,
    /// A non-empty object (owned only when an update creates it).
    Map,
}

type Nodes<'a> = BTreeMap<Path, Node<'a>>;

/// The owned paths of a configuration.
fn members(nodes: &Nodes<'_>) -> FieldSet {
    nodes.iter().filter(|(_, n)| !matches!(n, Node::Map)).map(|(p, _)| p.clone()).collect()
}

struct Walker<'k> {
    keys: &'k dyn ListKeys,
    /// Reject list items without keys, duplicate keys and non-scalar set items (configurations);
    /// otherwise such a list is treated as atomic (live objects).
    strict: bool,
}

impl Walker<'_> {
    fn nodes<'a>(&self, root: &'a Value) -> Result<Nodes<'a>, String> {
        let mut out = Nodes::new();
        if let Value::Object(m) = root {
            self.fields(m, &mut Vec::new(), &mut Vec::new(), &mut out)?;
        }
        Ok(out)
    }

    fn nodes_lenient<'a>(&self, root: &'a Value) -> Nodes<'a> {
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

enum ListKind {
    Keyed(Vec<String>),
    Set,
    Atomic,
}

fn list_kind(keys: &dyn ListKeys, names: &[String]) -> ListKind {
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
fn item_key(item: &Value, keys: &[String]) -> Result<Pe, String> {
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
struct Diff {
    added: FieldSet,
    modified: FieldSet,
    removed: FieldSet,
}

impl Diff {
    fn new(old: &Nodes<'_>, new: &Nodes<'_>) -> Diff {
        let mut diff = Diff { added: FieldSet::new(), modified: FieldSet::new(), removed: FieldSet::new() };
        for (path, n) in new {
            match (old.get(path), n) {
                (None, _) => {
                    diff.added.insert(path.clone());
                }
                (Some(Node::Leaf(a)), Node::Leaf(b)) if a == b => {}
                (Some(Node::Item), Node::Item) | (Some(Node::Map), Node::Map) => {}
                (Some(_), _) => {
                    diff.modified.insert(path.clone());
                }
            }
        }
        diff.removed = old.keys().filter(|p| !new.contains_key(*p)).cloned().collect();
        diff
    }

    fn is_empty(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }
}

// ---------------------------------------------------------------------------------------------
// Merging and pruning

/// Merge an apply configuration value into a live value (`Null` when absent).
fn merge_value(live: &Value, cfg: &Value, names: &mut Vec<String>, keys: &dyn ListKeys) -> Value {
    match (live, cfg) {
        (Value::Object(l), Value::Object(c)) => Value::Object(merge_fields(l.clone(), c, names, keys)),
        (_, Value::Object(c)) => Value::Object(merge_fields(Map::new(), c, names, keys)),
        (Value::Array(l), Value::Array(c)) => Value::Array(merge_lists(l, c, names, keys)),
        (_, Value::Array(c)) => Value::Array(merge_lists(&[], c, names, keys)),
        (_, scalar) => scalar.clone(),
    }
}

fn merge_fields(
    mut out: Map<String, Value>,
    cfg: &Map<String, Value>,
    names: &mut Vec<String>,
    keys: &dyn ListKeys,
) -> Map<String, Value> {
    for (k, c) in cfg {
        if c.is_null() {
            remove_key(&mut out, k);
            continue;
        }
        names.push(k.clone());
        match out.get_mut(k) {
            Some(slot) => *slot = merge_value(slot, c, names, keys),
            None => {
                let v = merge_value(&Value::Null, c, names, keys);
                out.insert(k.clone(), v);
            }
        }
        names.pop();
    }
    out
}

fn merge_lists(live: &[Value], cfg: &[Value], names: &mut Vec<String>, keys: &dyn ListKeys) -> Vec<Value> {
    match list_kind(keys, names) {
        ListKind::Keyed(k) => {
            let lkeys: Vec<Option<Pe>> = live.iter().map(|i| item_key(i, &k).ok()).collect();
            let ckeys: Vec<Option<Pe>> = cfg.iter().map(|i| item_key(i, &k).ok()).collect();
            let picks = merge_order(&lkeys, &ckeys);
            picks
                .into_iter()
                .map(|pick| match pick {
                    Pick::Live(l) => live[l].clone(),
                    Pick::Config(l, c) => merge_value(l.map_or(&Value::Null, |l| &live[l]), &cfg[c], names, keys),
                })
                .collect()
        }
        ListKind::Set => {
            let lkeys: Vec<Option<Pe>> = live.iter().map(|i| Some(Pe::Value(canonical(i)))).collect();
            let ckeys: Vec<Option<Pe>> = cfg.iter().map(|i| Some(Pe::Value(canonical(i)))).collect();
            let picks = merge_order(&lkeys, &ckeys);
            picks
                .into_iter()
                .map(|pick| match pick {
                    Pick::Live(l) => live[l].clone(),
                    Pick::Config(_, c) => cfg[c].clone(),
                })
                .collect()
        }
        ListKind::Atomic => cfg.to_vec(),
    }
}

/// One item of a merged list.
enum Pick {
    /// A live item the configuration does not have.
    Live(usize),
    /// A configuration item, merged into this live item if there is one.
    Config(Option<usize>, usize),
}

/// The order of a merged list (structured-merge-diff's): live-only items stay where they are,
/// items of the configuration come in its order, shared items where the configuration puts them.
fn merge_order(live: &[Option<Pe>], cfg: &[Option<Pe>]) -> Vec<Pick> {
    let in_cfg: HashSet<&Pe> = cfg.iter().flatten().collect();
    let mut live_first: HashMap<&Pe, usize> = HashMap::new();
    for (i, k) in live.iter().enumerate() {
        if let Some(k) = k {
            live_first.entry(k).or_insert(i);
        }
    }
    let mut shared: VecDeque<&Pe> = cfg.iter().flatten().filter(|k| live_first.contains_key(k)).collect();
    let mut next_shared = shared.pop_front();
    let mut done: HashSet<&Pe> = HashSet::new();
    let mut out = Vec::with_capacity(live.len().max(cfg.len()));
    let (mut li, mut ci) = (0, 0);
    while li < live.len() || ci < cfg.len() {
        if li < live.len() && ci < cfg.len() {
            if let (Some(l), Some(c)) = (&live[li], &cfg[ci])
                && l == c
            {
                out.push(Pick::Config(Some(li), ci));
                done.insert(c);
                li += 1;
                ci += 1;
                next_shared = shared.pop_front();
                continue;
            }
            if let Some(l) = &live[li]
                && in_cfg.contains(l)
                && next_shared.is_some_and(|n| n != l)
            {
                // A shared item the configuration wants later: take it when the configuration does.
                li += 1;
                continue;
            }
        }
        if li < live.len() {
            match &live[li] {
                Some(l) if in_cfg.contains(l) => {
                    if done.contains(l) {
                        li += 1;
                        continue;
                    }
                }
                _ => {
                    out.push(Pick::Live(li));
                    li += 1;
                    continue;
                }
            }
        }
        if ci < cfg.len() {
            let c = cfg[ci].as_ref();
            out.push(Pick::Config(c.and_then(|c| live_first.get(c).copied()), ci));
            if let Some(c) = c {
                done.insert(c);
                if next_shared == Some(c) {
                    next_shared = shared.pop_front();
                }
            }
            ci += 1;
        } else {
            // Unreachable: a live item in the configuration that is not merged yet means the
            // configuration still has items. Skip it rather than loop.
            li += 1;
        }
    }
    out
}

/// Remove `path` from `root`, then the objects and lists this leaves empty unless someone owns
/// them (`owned`).
fn remove_path(root: &mut Value, path: &[Pe], keys: &dyn ListKeys, owned: &FieldSet) {
    fn remove(
        v: &mut Value,
        path: &[Pe],
        prefix: &mut Path,
        names: &mut Vec<String>,
        keys: &dyn ListKeys,
        owned: &FieldSet,
    ) -> bool {
        let Some((first, rest)) = path.split_first() else { return false };
        match (v, first) {
            (Value::Object(m), Pe::Field(f)) => {
                if rest.is_empty() {
                    let found = m.contains_key(f);
                    remove_key(m, f);
                    return found;
                }
                let Some(child) = m.get_mut(f) else { return false };
                prefix.push(first.clone());
                names.push(f.clone());
                let removed = remove(child, rest, prefix, names, keys, owned);
                let empty = match child {
                    Value::Object(c) => c.is_empty(),
                    Value::Array(c) => c.is_empty(),
                    _ => false,
                };
                let keep = owned.contains(prefix.as_slice());
                names.pop();
                prefix.pop();
                if removed && empty && !keep {
                    remove_key(m, f);
                }
                removed
            }
            (Value::Array(items), pe) => {
                let kind = list_kind(keys, names);
                let found = items.iter().enumerate().position(|(i, item)| match (pe, &kind) {
                    (Pe::Key(_), ListKind::Keyed(k)) => item_key(item, k).ok().as_ref() == Some(pe),
                    (Pe::Value(c), _) => canonical(item) == *c,
                    (Pe::Index(n), _) => i == *n,
                    _ => false,
                });
                let Some(i) = found else { return false };
                if rest.is_empty() {
                    items.remove(i);
                    return true;
                }
                prefix.push(first.clone());
                let removed = remove(&mut items[i], rest, prefix, names, keys, owned);
                prefix.pop();
                removed
            }
            _ => false,
        }
    }
    remove(root, path, &mut Vec::new(), &mut Vec::new(), keys, owned);
}

/// Remove `key` keeping the order of the other keys (with serde_json's `preserve_order`, `remove`
/// swaps the last key into its place).
fn remove_key(map: &mut Map<String, Value>, key: &str) {
    map.retain(|k, _| k != key);
}

fn str_field(v: &Value, field: &str) -> Option<String> {
    v.get(field).and_then(Value::as_str).map(str::to_owned)
}

// ---------------------------------------------------------------------------------------------
// managedFields entries

/// One `metadata.managedFields` entry.
struct Entry {
    manager: String,
    operation: String,
    subresource: String,
    api_version: String,
    time: Option<String>,
    set: FieldSet,
    /// The entry as read; written back as is unless `dirty`.
    raw: Option<Value>,
    dirty: bool,
    /// Not `FieldsV1` or undecodable: kept as is, owns nothing.
    opaque: bool,
}

impl Entry {
    fn new(manager: &str, operation: &str, subresource: &str, api_version: String, now: &str, set: FieldSet) -> Entry {
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

    fn remove_all(&mut self, paths: &FieldSet) {
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

fn managed_fields(object: &Value) -> Option<&Value> {
    object.get("metadata")?.get("managedFields")
}

fn read_entries(list: Option<&Value>) -> Vec<Entry> {
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

fn position(entries: &[Entry], manager: &str, operation: &str, subresource: &str) -> Option<usize> {
    entries
        .iter()
        .position(|e| !e.opaque && e.manager == manager && e.operation == operation && e.subresource == subresource)
}

/// Write `entries` (without the empty ones) to `metadata.managedFields`, in the real server's
/// order: `Apply` before `Update`, then by time, manager, apiVersion and subresource.
fn store_entries(object: &mut Value, mut entries: Vec<Entry>) {
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

fn conflict_message(conflicts: &[(String, String)]) -> String {
    if let [(manager, path)] = conflicts {
        return format!("Apply failed with 1 conflict: conflict with \"{manager}\": {path}");
    }
    let mut by_manager: Vec<(&str, Vec<&str>)> = Vec::new();
    for (manager, path) in conflicts {
        match by_manager.iter_mut().find(|(m, _)| m == manager) {
            Some((_, paths)) => paths.push(path),
            None => by_manager.push((manager, vec![path])),
        }
    }
    let groups: Vec<String> = by_manager
        .into_iter()
        .map(|(manager, paths)| {
            let paths: Vec<String> = paths.iter().map(|p| format!("- {p}")).collect();
            format!("conflicts with \"{manager}\":\n{}", paths.join("\n"))
        })
        .collect();
    format!("Apply failed with {} conflicts: {}", conflicts.len(), groups.join("\n"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::patch::builtin_keys::BuiltinListKeys;

    const T1: &str = "2025-01-01T00:00:01Z";
    const T2: &str = "2025-01-01T00:00:02Z";
    const T3: &str = "2025-01-01T00:00:03Z";
    const T4: &str = "2025-01-01T00:00:04Z";

    fn keys() -> BuiltinListKeys {
        BuiltinListKeys::new("Deployment")
    }

    fn deployment(replicas: Value, containers: Value) -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers}}
            }
        })
    }

    fn web(image: &str) -> Value {
        json!([{"name": "web", "image": image, "ports": [{"containerPort": 80}]}])
    }

    /// A config that only touches some fields (like a second controller's).
    fn partial(spec: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"}, "spec": spec})
    }

    fn containers(spec: Value) -> Value {
        partial(json!({"template": {"spec": {"containers": spec}}}))
    }

    fn ok(live: Option<&Value>, config: &Value, manager: &str, now: &str) -> Value {
        apply(live, config, manager, false, &keys(), now).unwrap()
    }

    fn conflicts(live: &Value, config: &Value, manager: &str) -> Vec<(String, String)> {
        match apply(Some(live), config, manager, false, &keys(), T4) {
            Err(ApplyError::Conflict { conflicts }) => conflicts,
            other => panic!("expected a conflict, got {other:?}"),
        }
    }

    fn entry<'a>(obj: &'a Value, manager: &str, operation: &str) -> Option<&'a Value> {
        obj["metadata"]["managedFields"]
            .as_array()?
            .iter()
            .find(|e| e["manager"] == manager && e["operation"] == operation)
    }

    fn without_managed_fields(obj: &Value) -> Value {
        let mut obj = obj.clone();
        obj["metadata"].as_object_mut().unwrap().remove("managedFields");
        obj
    }

    fn owns(obj: &Value, manager: &str, path: &str) -> bool {
        owned_fields(obj, manager).iter().any(|p| p == path)
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())).collect()
    }

    #[test]
    fn create_via_apply_records_fields_v1() {
        let config = deployment(json!(3), web("nginx:1"));
        let out = ok(None, &config, "op", T1);
        assert_eq!(without_managed_fields(&out), config);
        assert_eq!(
            out["metadata"]["managedFields"],
            json!([{
                "manager": "op",
                "operation": "Apply",
                "apiVersion": "apps/v1",
                "time": T1,
                "fieldsType": "FieldsV1",
                "fieldsV1": {
                    "f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {
                        "f:replicas": {},
                        "f:selector": {"f:matchLabels": {"f:app": {}}},
                        "f:template": {
                            "f:metadata": {"f:labels": {"f:app": {}}},
                            "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {
                                ".": {},
                                "f:image": {},
                                "f:name": {},
                                "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}
                            }}}
                        }
                    }
                }
            }])
        );
        assert!(owns(&out, "op", ".spec.template.spec.containers[name=\"web\"].image"));
        assert!(owns(
            &out,
            "op",
            ".spec.template.spec.containers[name=\"web\"].ports[containerPort=80,protocol=\"TCP\"]"
        ));
    }

    #[test]
    fn reapplying_the_same_config_is_byte_identical() {
        let config = deployment(json!(3), web("nginx:1"));
        let first = ok(None, &config, "op", T1);
        let second = ok(Some(&first), &config, "op", T2);
        assert_eq!(serde_json::to_string(&first).unwrap(), serde_json::to_string(&second).unwrap());
        assert_eq!(entry(&second, "op", "Apply").unwrap()["time"], T1);
        // Also when another manager changed something else in between.
        let mut edited = second.clone();
        edited["spec"]["paused"] = json!(true);
        record_update(Some(&second), &mut edited, "kubectl-edit", &keys(), T2);
        let third = ok(Some(&edited), &config, "op", T3);
        assert_eq!(serde_json::to_string(&third).unwrap(), serde_json::to_string(&edited).unwrap());
    }

    #[test]
    fn changing_a_value_bumps_the_time() {
        let first = ok(None, &deployment(json!(3), web("nginx:1")), "op", T1);
        let second = ok(Some(&first), &deployment(json!(4), web("nginx:1")), "op", T2);
        assert_eq!(second["spec"]["replicas"], 4);
        assert_eq!(entry(&second, "op", "Apply").unwrap()["time"], T2);
        assert_eq!(
            entry(&second, "op", "Apply").unwrap()["fieldsV1"],
            entry(&first, "op", "Apply").unwrap()["fieldsV1"]
        );
    }

    #[test]
    fn fields_dropped_from_the_config_are_removed() {
        let first = ok(None, &deployment(json!(3), web("nginx:1")), "op", T1);
        let mut config = deployment(json!(3), json!([{"name": "web", "image": "nginx:1"}]));
        config["spec"].as_object_mut().unwrap().remove("replicas");
        config["metadata"].as_object_mut().unwrap().remove("labels");
        let out = ok(Some(&first), &config, "op", T2);
        assert!(out["spec"].get("replicas").is_none());
        // The emptied labels map goes too; the name (not tracked) stays.
        assert!(out["metadata"].get("labels").is_none());
        assert_eq!(out["metadata"]["name"], "web");
        // The container keeps its name and image, loses its ports (and the emptied list).
        assert_eq!(out["spec"]["template"]["spec"]["containers"], json!([{"name": "web", "image": "nginx:1"}]));
        assert!(!owns(&out, "op", ".spec.replicas"));
        assert_eq!(entry(&out, "op", "Apply").unwrap()["time"], T2);
        // Dropping a whole container.
        let out = ok(Some(&out), &deployment(json!(1), json!([{"name": "other", "image": "x"}])), "op", T3);
        assert_eq!(out["spec"]["template"]["spec"]["containers"], json!([{"name": "other", "image": "x"}]));
    }

    #[test]
    fn two_managers_share_a_field_with_the_same_value() {
        let live = ok(None, &deployment(json!(3), web("nginx:1")), "op", T1);
        let live = ok(Some(&live), &partial(json!({"replicas": 3})), "autoscaler", T2);
        assert!(owns(&live, "op", ".spec.replicas"));
        assert!(owns(&live, "autoscaler", ".spec.replicas"));
        assert_eq!(owned_fields(&live, "autoscaler"), [".spec.replicas"]);
        // op stops applying replicas: still owned by the autoscaler, so it stays.
        let mut config = deployment(json!(3), web("nginx:1"));
        config["spec"].as_object_mut().unwrap().remove("replicas");
        let live = ok(Some(&live), &config, "op", T3);
        assert_eq!(live["spec"]["replicas"], 3);
        assert!(!owns(&live, "op", ".spec.replicas"));
        // The last owner stops applying it: removed. (`spec: {}` would own the empty `.spec`.)
        let mut empty = partial(json!({}));
        empty.as_object_mut().unwrap().remove("spec");
        let live = ok(Some(&live), &empty, "autoscaler", T4);
        assert!(live["spec"].get("replicas").is_none());
        assert!(entry(&live, "autoscaler", "Apply").is_none());
        let owned_empty = ok(Some(&live), &partial(json!({})), "autoscaler", T4);
        assert_eq!(owned_fields(&owned_empty, "autoscaler"), [".spec"]);
    }

    #[test]
    fn different_value_is_a_conflict() {
        let live = ok(None, &deployment(json!(3), web("nginx:1")), "op", T1);
        let err = apply(Some(&live), &partial(json!({"replicas": 5})), "autoscaler", false, &keys(), T2).unwrap_err();
        assert_eq!(err, ApplyError::Conflict { conflicts: pairs(&[("op", ".spec.replicas")]) });
        assert_eq!(err.to_string(), "Apply failed with 1 conflict: conflict with \"op\": .spec.replicas");
    }

    #[test]
    fn force_takes_ownership() {
        let live = ok(None, &deployment(json!(3), web("nginx:1")), "op", T1);
        let live = apply(Some(&live), &partial(json!({"replicas": 5})), "autoscaler", true, &keys(), T2).unwrap();
        assert_eq!(live["spec"]["replicas"], 5);
        assert!(owns(&live, "autoscaler", ".spec.replicas"));
        assert!(!owns(&live, "op", ".spec.replicas"));
        // op's entry lost a field but keeps its time.
        assert_eq!(entry(&live, "op", "Apply").unwrap()["time"], T1);
        // Now op conflicts with the autoscaler.
        let got = conflicts(&live, &deployment(json!(3), web("nginx:1")), "op");
        assert_eq!(got, pairs(&[("autoscaler", ".spec.replicas")]));
        // op re-applying without replicas does not remove the autoscaler's field.
        let mut config = deployment(json!(3), web("nginx:1"));
        config["spec"].as_object_mut().unwrap().remove("replicas");
        let live = ok(Some(&live), &config, "op", T3);
        assert_eq!(live["spec"]["replicas"], 5);
    }

    #[test]
    fn containers_merge_by_name_between_managers() {
        let live = ok(None, &deployment(json!(1), web("nginx:1")), "op", T1);
        let sidecar = containers(json!([{"name": "sidecar", "image": "envoy:1"}]));
        let live = ok(Some(&live), &sidecar, "injector", T2);
        let names: Vec<&str> = live["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["web", "sidecar"]);
        assert_eq!(
            owned_fields(&live, "injector"),
            [
                ".spec.template.spec.containers[name=\"sidecar\"]",
                ".spec.template.spec.containers[name=\"sidecar\"].image",
                ".spec.template.spec.containers[name=\"sidecar\"].name",
            ]
        );
        assert!(!owns(&live, "op", ".spec.template.spec.containers[name=\"sidecar\"]"));
        // Each re-applies its own container: nothing changes.
        let again = ok(Some(&live), &deployment(json!(1), web("nginx:1")), "op", T3);
        assert_eq!(again, live);
        let again = ok(Some(&again), &sidecar, "injector", T3);
        assert_eq!(again, live);
        // op updates its container without conflicts.
        let live = ok(Some(&live), &deployment(json!(1), web("nginx:2")), "op", T3);
        assert_eq!(live["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:2");
        assert_eq!(live["spec"]["template"]["spec"]["containers"][1]["image"], "envoy:1");
        // The injector touching op's container conflicts on that field only.
        let got = conflicts(&live, &containers(json!([{"name": "web", "image": "evil"}])), "injector");
        assert_eq!(got, pairs(&[("op", ".spec.template.spec.containers[name=\"web\"].image")]));
        // op dropping its container leaves the injector's.
        let live = ok(Some(&live), &deployment(json!(1), json!([])), "op", T4);
        assert_eq!(live["spec"]["template"]["spec"]["containers"], json!([{"name": "sidecar", "image": "envoy:1"}]));
    }

    #[test]
    fn config_order_wins_for_shared_items_and_live_only_items_stay_in_place() {
        let live = ok(None, &containers(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}])), "one", T1);
        let live = ok(Some(&live), &containers(json!([{"name": "d"}, {"name": "b"}])), "two", T2);
        let names: Vec<&str> = live["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a", "d", "b", "c"]);
    }

    #[test]
    fn record_update_then_apply_conflicts_with_the_updater() {
        let mut created = deployment(json!(3), web("nginx:1"));
        record_update(None, &mut created, "kubectl-create", &keys(), T1);
        assert_eq!(
            entry(&created, "kubectl-create", "Update").unwrap(),
            &json!({
                "manager": "kubectl-create",
                "operation": "Update",
                "apiVersion": "apps/v1",
                "time": T1,
                "fieldsType": "FieldsV1",
                "fieldsV1": {
                    "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                    "f:spec": {
                        ".": {},
                        "f:replicas": {},
                        "f:selector": {".": {}, "f:matchLabels": {".": {}, "f:app": {}}},
                        "f:template": {
                            ".": {},
                            "f:metadata": {".": {}, "f:labels": {".": {}, "f:app": {}}},
                            "f:spec": {".": {}, "f:containers": {"k:{\"name\":\"web\"}": {
                                ".": {},
                                "f:image": {},
                                "f:name": {},
                                "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}
                            }}}
                        }
                    }
                }
            })
        );
        let got = conflicts(&created, &deployment(json!(5), web("nginx:2")), "op");
        assert_eq!(
            got,
            pairs(&[
                ("kubectl-create", ".spec.replicas"),
                ("kubectl-create", ".spec.template.spec.containers[name=\"web\"].image"),
            ])
        );
        let err = apply(Some(&created), &deployment(json!(5), web("nginx:2")), "op", false, &keys(), T2).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 2 conflicts: conflicts with \"kubectl-create\":\n- .spec.replicas\n- \
             .spec.template.spec.containers[name=\"web\"].image"
        );
        // The same values: shared, no conflict, nothing changes but the managed fields.
        let shared = ok(Some(&created), &deployment(json!(3), web("nginx:1")), "op", T2);
        assert_eq!(without_managed_fields(&shared), without_managed_fields(&created));
        assert!(owns(&shared, "op", ".spec.replicas"));
        assert!(owns(&shared, "kubectl-create", ".spec.replicas"));
        // Apply entries come first.
        let managers: Vec<&str> = shared["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["manager"].as_str().unwrap())
            .collect();
        assert_eq!(managers, ["op", "kubectl-create"]);
        // Forcing moves both fields.
        let forced = apply(Some(&created), &deployment(json!(5), web("nginx:2")), "op", true, &keys(), T2).unwrap();
        assert!(!owns(&forced, "kubectl-create", ".spec.replicas"));
        assert!(owns(&forced, "kubectl-create", ".spec.selector.matchLabels.app"));
        assert_eq!(forced["spec"]["replicas"], 5);
    }

    #[test]
    fn record_update_takes_fields_from_appliers() {
        let live = ok(None, &deployment(json!(3), web("nginx:1")), "op", T1);
        let mut edited = live.clone();
        edited["spec"]["replicas"] = json!(7);
        record_update(Some(&live), &mut edited, "kubectl-edit", &keys(), T2);
        assert_eq!(owned_fields(&edited, "kubectl-edit"), [".spec.replicas"]);
        assert!(!owns(&edited, "op", ".spec.replicas"));
        assert_eq!(entry(&edited, "op", "Apply").unwrap()["time"], T1);
        assert_eq!(entry(&edited, "kubectl-edit", "Update").unwrap()["time"], T2);
        // The applier now conflicts with the editor, and wins with force.
        let got = conflicts(&edited, &deployment(json!(3), web("nginx:1")), "op");
        assert_eq!(got, pairs(&[("kubectl-edit", ".spec.replicas")]));
        let forced = apply(Some(&edited), &deployment(json!(3), web("nginx:1")), "op", true, &keys(), T3).unwrap();
        assert_eq!(forced["spec"]["replicas"], 3);
        assert!(entry(&forced, "kubectl-edit", "Update").is_none(), "an entry left without fields is dropped");
    }

    #[test]
    fn record_update_removal_and_noop() {
        let live = ok(None, &deployment(json!(3), web("nginx:1")), "op", T1);
        // A no-op update leaves everything as it was.
        let mut same = live.clone();
        record_update(Some(&live), &mut same, "kubectl-edit", &keys(), T2);
        assert_eq!(serde_json::to_string(&same).unwrap(), serde_json::to_string(&live).unwrap());
        // Removing a label through an update: nobody owns it any more.
        let mut edited = live.clone();
        edited["metadata"]["labels"].as_object_mut().unwrap().remove("app");
        record_update(Some(&live), &mut edited, "kubectl-edit", &keys(), T2);
        assert!(!owns(&edited, "op", ".metadata.labels.app"));
        // `labels: {}` is new, so kubectl-edit owns the empty map.
        assert_eq!(owned_fields(&edited, "kubectl-edit"), [".metadata.labels"]);
        // A second update by the same manager extends its entry.
        let mut again = edited.clone();
        again["metadata"]["annotations"] = json!({"note": "x"});
        record_update(Some(&edited), &mut again, "kubectl-edit", &keys(), T3);
        assert_eq!(
            owned_fields(&again, "kubectl-edit"),
            [".metadata.annotations", ".metadata.annotations.note", ".metadata.labels"]
        );
        assert_eq!(entry(&again, "kubectl-edit", "Update").unwrap()["time"], T3);
    }

    #[test]
    fn prune_keeps_what_an_updater_took_over() {
        let mut config = deployment(json!(3), web("nginx:1"));
        config["metadata"]["annotations"] = json!({"a": "1"});
        let live = ok(None, &config, "op", T1);
        let mut edited = live.clone();
        edited["metadata"]["annotations"]["a"] = json!("2");
        record_update(Some(&live), &mut edited, "kubectl-annotate", &keys(), T2);
        config["metadata"].as_object_mut().unwrap().remove("annotations");
        let out = ok(Some(&edited), &config, "op", T3);
        assert_eq!(out["metadata"]["annotations"], json!({"a": "2"}));
    }

    #[test]
    fn set_lists_own_values() {
        let live = ok(
            None,
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": ["a"]}}),
            "op",
            T1,
        );
        let other = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": ["b"]}});
        let live = apply(Some(&live), &other, "ctrl", false, &BuiltinListKeys::new("ConfigMap"), T2).unwrap();
        assert_eq!(live["metadata"]["finalizers"], json!(["a", "b"]));
        assert_eq!(
            entry(&live, "ctrl", "Apply").unwrap()["fieldsV1"],
            json!({"f:metadata": {"f:finalizers": {"v:\"b\"": {}}}})
        );
        let none = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        let live = apply(Some(&live), &none, "op", false, &BuiltinListKeys::new("ConfigMap"), T3).unwrap();
        assert_eq!(live["metadata"]["finalizers"], json!(["b"]));
        assert!(entry(&live, "op", "Apply").is_none());
        let live = apply(Some(&live), &none, "ctrl", false, &BuiltinListKeys::new("ConfigMap"), T4).unwrap();
        assert!(live["metadata"].get("finalizers").is_none());
        assert!(live["metadata"].get("managedFields").is_none());
    }

    #[test]
    fn atomic_lists_are_owned_whole() {
        let tolerations =
            |key: &str| partial(json!({"template": {"spec": {"tolerations": [{"key": key, "operator": "Exists"}]}}}));
        let live = ok(None, &tolerations("a"), "op", T1);
        assert_eq!(
            entry(&live, "op", "Apply").unwrap()["fieldsV1"],
            json!({"f:spec": {"f:template": {"f:spec": {"f:tolerations": {}}}}})
        );
        let got = conflicts(&live, &tolerations("b"), "other");
        assert_eq!(got, pairs(&[("op", ".spec.template.spec.tolerations")]));
        let live = ok(Some(&live), &tolerations("b"), "op", T2);
        assert_eq!(live["spec"]["template"]["spec"]["tolerations"], json!([{"key": "b", "operator": "Exists"}]));
    }

    #[test]
    fn null_in_config_removes_and_owns_the_field() {
        let live = ok(None, &deployment(json!(3), web("nginx:1")), "op", T1);
        let got = conflicts(&live, &partial(json!({"replicas": null})), "other");
        assert_eq!(got, pairs(&[("op", ".spec.replicas")]));
        let out = apply(Some(&live), &partial(json!({"replicas": null})), "other", true, &keys(), T2).unwrap();
        assert!(out["spec"].get("replicas").is_none());
        assert_eq!(owned_fields(&out, "other"), [".spec.replicas"]);
        // Re-applying is a no-op.
        let again = apply(Some(&out), &partial(json!({"replicas": null})), "other", false, &keys(), T3).unwrap();
        assert_eq!(again, out);
    }

    #[test]
    fn server_set_metadata_is_ignored() {
        let mut live = ok(None, &deployment(json!(3), web("nginx:1")), "op", T1);
        live["metadata"]["resourceVersion"] = json!("7");
        live["metadata"]["uid"] = json!("u-1");
        live["metadata"]["generation"] = json!(1);
        let mut config = deployment(json!(3), web("nginx:1"));
        config["metadata"]["resourceVersion"] = json!("1");
        config["metadata"]["uid"] = json!("other");
        config["metadata"]["creationTimestamp"] = json!(null);
        let out = ok(Some(&live), &config, "op", T2);
        assert_eq!(serde_json::to_string(&out).unwrap(), serde_json::to_string(&live).unwrap());
        let owned = owned_fields(&out, "op");
        assert!(owned.iter().all(|p| !p.starts_with(".metadata.name") && !p.starts_with(".apiVersion")), "{owned:?}");
        // Updates do not track them either.
        let mut bumped = live.clone();
        bumped["metadata"]["resourceVersion"] = json!("8");
        bumped["metadata"]["generation"] = json!(2);
        record_update(Some(&live), &mut bumped, "ctrl", &keys(), T2);
        assert!(entry(&bumped, "ctrl", "Update").is_none());
    }

    #[test]
    fn ports_without_protocol_match_defaulted_live_ports() {
        let mut live = deployment(
            json!(1),
            json!([{"name": "web", "image": "a", "ports": [{"containerPort": 80, "protocol": "TCP"}]}]),
        );
        record_update(None, &mut live, "kubectl-create", &keys(), T1);
        let out = ok(Some(&live), &deployment(json!(1), web("a")), "op", T2);
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["ports"],
            json!([{"containerPort": 80, "protocol": "TCP"}])
        );
        let udp = json!([{"name": "web", "image": "a", "ports": [{"containerPort": 80}, {"containerPort": 80, "protocol": "UDP"}]}]);
        let out = ok(Some(&out), &deployment(json!(1), udp), "op", T3);
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["ports"],
            json!([{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 80, "protocol": "UDP"}])
        );
    }

    #[test]
    fn invalid_configs() {
        let invalid = |live: Option<&Value>, config: Value, manager: &str| match apply(
            live,
            &config,
            manager,
            false,
            &keys(),
            T1,
        ) {
            Err(ApplyError::Invalid(msg)) => msg,
            other => panic!("expected invalid, got {other:?}"),
        };
        let msg = invalid(None, containers(json!([{"image": "x"}])), "op");
        assert!(msg.contains("omits key field \"name\""), "{msg}");
        assert!(msg.starts_with(".spec.template.spec.containers: element 0"), "{msg}");
        let msg = invalid(None, containers(json!([{"name": "a"}, {"name": "a"}])), "op");
        assert!(msg.contains("duplicate entries for key [name=\"a\"]"), "{msg}");
        let msg = invalid(None, json!({"metadata": {"finalizers": [{"a": 1}]}}), "op");
        assert!(msg.contains("must be scalars"), "{msg}");
        let msg = invalid(None, json!({"metadata": {"finalizers": ["a", "a"]}}), "op");
        assert!(msg.contains("duplicate entries"), "{msg}");
        let msg = invalid(None, json!({"metadata": {"managedFields": []}}), "op");
        assert_eq!(msg, "metadata.managedFields must be nil");
        let msg = invalid(None, deployment(json!(1), web("a")), "");
        assert!(msg.contains("fieldManager is required"), "{msg}");
        let msg = invalid(None, json!([1]), "op");
        assert!(msg.contains("must be a JSON object"), "{msg}");
        let live = ok(None, &deployment(json!(1), web("a")), "op", T1);
        let msg = invalid(Some(&live), json!({"kind": "StatefulSet"}), "op");
        assert!(msg.contains("does not match"), "{msg}");
    }

    #[test]
    fn multiple_conflicting_managers() {
        let live = ok(None, &partial(json!({"replicas": 1})), "a", T1);
        let live = ok(Some(&live), &partial(json!({"paused": false})), "b", T2);
        let got = conflicts(&live, &partial(json!({"replicas": 2, "paused": true})), "c");
        assert_eq!(got, pairs(&[("a", ".spec.replicas"), ("b", ".spec.paused")]));
        let err = ApplyError::Conflict { conflicts: got };
        assert_eq!(
            err.to_string(),
            "Apply failed with 2 conflicts: conflicts with \"a\":\n- .spec.replicas\nconflicts with \"b\":\n- .spec.paused"
        );
    }

    #[test]
    fn subresource_entries_are_separate() {
        let live = ok(None, &deployment(json!(1), web("a")), "op", T1);
        let status = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "status": {"replicas": 1}});
        let out = apply_subresource(Some(&live), &status, "op", "status", false, &keys(), T2).unwrap();
        let entries = out["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(entries.len(), 2);
        let status_entry = entries.iter().find(|e| e["subresource"] == "status").unwrap();
        assert_eq!(status_entry["fieldsV1"], json!({"f:status": {"f:replicas": {}}}));
        assert_eq!(status_entry["time"], T2);
        // The main-resource entry is untouched and its fields are not pruned.
        assert_eq!(entries.iter().find(|e| e.get("subresource").is_none()).unwrap()["time"], T1);
        assert_eq!(out["spec"]["replicas"], 1);
        // An update through /status.
        let mut written = out.clone();
        written["status"]["replicas"] = json!(2);
        record_update_subresource(Some(&out), &mut written, "kube-controller-manager", "status", &keys(), T3);
        let e = entry(&written, "kube-controller-manager", "Update").unwrap();
        assert_eq!(e["subresource"], "status");
        assert!(!owns(&written, "op", ".status.replicas"));
    }

    #[test]
    fn managed_fields_sent_with_an_update() {
        let live = ok(None, &deployment(json!(1), web("a")), "op", T1);
        // `[{}]` strips them.
        let mut stripped = live.clone();
        stripped["metadata"]["managedFields"] = json!([{}]);
        record_update(Some(&live), &mut stripped, "kubectl", &keys(), T2);
        assert!(stripped["metadata"].get("managedFields").is_none());
        // `[]` keeps the live ones.
        let mut kept = live.clone();
        kept["metadata"]["managedFields"] = json!([]);
        record_update(Some(&live), &mut kept, "kubectl", &keys(), T2);
        assert_eq!(kept, live);
        // Without managed fields in the stored object, an apply starts from scratch.
        let fresh = ok(Some(&stripped), &partial(json!({"replicas": 9})), "other", T3);
        assert_eq!(fresh["spec"]["replicas"], 9);
    }

    #[test]
    fn fields_v1_round_trip() {
        let fields = json!({
            "f:metadata": {"f:finalizers": {".": {}, "v:\"example.com/x\"": {}}, "f:labels": {".": {}, "f:app": {}}},
            "f:spec": {
                "f:ports": {".": {}, "k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}, "f:protocol": {}, "f:targetPort": {}}},
                "f:items": {"i:0": {}},
                "f:selector": {}
            }
        });
        let set = decode_set(&fields).unwrap();
        assert_eq!(encode_set(&set), fields);
        assert!(set.contains(&vec![Pe::Field("metadata".into()), Pe::Field("finalizers".into())]));
        assert_eq!(
            set.iter().map(|p| path_string(p)).filter(|p| p.starts_with(".spec.ports")).collect::<Vec<_>>(),
            [
                ".spec.ports",
                ".spec.ports[port=80,protocol=\"TCP\"]",
                ".spec.ports[port=80,protocol=\"TCP\"].port",
                ".spec.ports[port=80,protocol=\"TCP\"].protocol",
                ".spec.ports[port=80,protocol=\"TCP\"].targetPort",
            ]
        );
        // Key objects are canonical whatever their field order.
        let reordered = json!({"f:spec": {"f:ports": {"k:{\"protocol\":\"TCP\",\"port\":80}": {}}}});
        assert_eq!(
            encode_set(&decode_set(&reordered).unwrap()),
            json!({"f:spec": {"f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {}}}})
        );
        assert!(decode_set(&json!({"x:bad": {}})).is_none());
    }

    #[test]
    fn opaque_entries_are_kept() {
        let mut live = ok(None, &deployment(json!(1), web("a")), "op", T1);
        let odd =
            json!({"manager": "legacy", "operation": "Update", "fieldsType": "FieldsV2", "fieldsV1": {"weird": 1}});
        live["metadata"]["managedFields"].as_array_mut().unwrap().push(odd.clone());
        let out = ok(Some(&live), &deployment(json!(2), web("a")), "op", T2);
        assert!(out["metadata"]["managedFields"].as_array().unwrap().contains(&odd));
    }

    /// A custom resource: list keys from its schema.
    struct WidgetKeys;
    impl ListKeys for WidgetKeys {
        fn keys(&self, path: &[&str]) -> Option<Vec<String>> {
            (path == ["spec", "endpoints"]).then(|| vec!["host".to_owned(), "port".to_owned()])
        }
        fn is_set(&self, path: &[&str]) -> bool {
            path == ["spec", "tags"]
        }
    }

    #[test]
    fn custom_resource_with_schema_keys() {
        let widget = |endpoints: Value, tags: Value| json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"endpoints": endpoints, "tags": tags}});
        let live = apply(
            None,
            &widget(json!([{"host": "a", "port": 1, "weight": 1}]), json!(["x"])),
            "op",
            false,
            &WidgetKeys,
            T1,
        )
        .unwrap();
        assert_eq!(
            entry(&live, "op", "Apply").unwrap()["fieldsV1"],
            json!({"f:spec": {
                "f:endpoints": {"k:{\"host\":\"a\",\"port\":1}": {".": {}, "f:host": {}, "f:port": {}, "f:weight": {}}},
                "f:tags": {"v:\"x\"": {}}
            }})
        );
        let live = apply(
            Some(&live),
            &widget(json!([{"host": "a", "port": 2}]), json!(["y"])),
            "other",
            false,
            &WidgetKeys,
            T2,
        )
        .unwrap();
        assert_eq!(live["spec"]["endpoints"], json!([{"host": "a", "port": 1, "weight": 1}, {"host": "a", "port": 2}]));
        assert_eq!(live["spec"]["tags"], json!(["x", "y"]));
        let err = apply(
            Some(&live),
            &widget(json!([{"host": "a", "port": 1, "weight": 5}]), json!([])),
            "other",
            false,
            &WidgetKeys,
            T3,
        )
        .unwrap_err();
        assert_eq!(
            err,
            ApplyError::Conflict { conflicts: pairs(&[("op", ".spec.endpoints[host=\"a\",port=1].weight")]) }
        );
    }
}
