//! The API semantics on top of the store: create, update, patch, delete with validation,
//! generation, status subresources, finalizers, namespaces and CRDs. Writes are prepared,
//! (admitted by webhooks outside the lock,) then committed with an optimistic check.

mod delete;
mod patch;

use crate::registry::{GroupResource, Registry, ResourceType};
use crate::status::ApiError;
use crate::store::Store;
use crate::validation::{self, FieldValidation};
use serde_json::{Value, json};

/// How a write was requested.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    pub field_manager: Option<String>,
    pub field_validation: FieldValidation,
    pub dry_run: bool,
    pub force: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
        }
    }
}

/// A validated write waiting for admission and commit.
#[derive(Clone, Debug)]
pub struct PendingWrite {
    pub rt: ResourceType,
    pub operation: Operation,
    pub subresource: Option<String>,
    pub old: Option<Value>,
    pub new: Value,
    pub warnings: Vec<String>,
    pub dry_run: bool,
}

/// Patch content types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_content_type(ct: &str) -> Option<PatchType> {
        match ct.split(';').next().unwrap_or_default().trim() {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(PatchType::Apply),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub propagation: Option<String>,
    pub grace_period_seconds: Option<i64>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub dry_run: bool,
}

pub struct Cluster {
    pub store: Store,
    pub registry: Registry,
    name_counter: u64,
    /// The RBAC objects decoded, with the fingerprint of the store contents they came from:
    /// every request is authorised, so they are decoded again only after an RBAC change.
    pub(crate) rbac_cache:
        std::sync::Mutex<Option<(crate::authz::Fingerprint, std::sync::Arc<crate::rbac::RbacSnapshot>)>>,
    /// How long a pod that stopped being a ready endpoint (not ready, or terminating) is still
    /// routed to: what kube-proxy and the API server's endpoint informers take to catch up.
    pub endpoint_propagation: std::time::Duration,
    /// Audit annotations of admitted requests (Pod Security `audit` violations), newest last.
    pub audit: Vec<crate::podsecurity::AuditAnnotation>,
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster::new()
    }
}

pub fn now_rfc3339() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl Cluster {
    pub fn new() -> Cluster {
        let mut cluster = Cluster {
            store: Store::new(),
            registry: Registry::new(&[]),
            name_counter: 0,
            rbac_cache: Default::default(),
            endpoint_propagation: crate::controllers::endpoints::DEFAULT_PROPAGATION,
            audit: Vec::new(),
        };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            cluster.bootstrap_namespace(ns);
        }
        cluster
    }

    fn bootstrap_namespace(&mut self, name: &str) {
        let rt = self.registry.find("", "v1", "namespaces").unwrap().clone();
        let object = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        let pending = self.prepare_create(&rt, "", object, &WriteOptions::default()).expect("bootstrap namespace");
        self.commit(pending).expect("bootstrap namespace");
    }

    pub fn get(&self, rt: &ResourceType, namespace: &str, name: &str) -> Result<Value, ApiError> {
        let ns = if rt.namespaced { namespace } else { "" };
        self.store
            .get(&rt.key(), ns, name)
            .map(|o| with_api_version(o, rt))
            .ok_or_else(|| ApiError::not_found(&qualified(rt), name))
    }

    pub fn namespace_state(&self, namespace: &str) -> Result<(), ApiError> {
        let ns = self.store.get(&GroupResource { group: String::new(), resource: "namespaces".into() }, "", namespace);
        match ns {
            None => Err(ApiError::not_found("namespaces", namespace)),
            Some(ns) if !ns["metadata"]["deletionTimestamp"].is_null() => Err(ApiError::forbidden(format!(
                "unable to create new content in namespace {namespace} because it is being terminated"
            ))
            .with_details(json!({"name": namespace, "kind": "namespaces"}))),
            Some(_) => Ok(()),
        }
    }

    pub fn prepare_create(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        mut object: Value,
        opts: &WriteOptions,
    ) -> Result<PendingWrite, ApiError> {
        if !object.is_object() {
            return Err(ApiError::bad_request("the body of the request is not a JSON object"));
        }
        object["apiVersion"] = Value::String(rt.api_version());
        object["kind"] = Value::String(rt.kind.clone());
        match &object["metadata"] {
            Value::Object(_) => {}
            Value::Null => object["metadata"] = json!({}),
            _ => return Err(ApiError::bad_request("metadata must be an object")),
        }
        // Status is not set on create for kinds with a status subresource.
        if rt.has_status
            && let Some(m) = object.as_object_mut()
        {
            m.remove("status");
        }
        let meta = &mut object["metadata"];
        if rt.namespaced {
            let body_ns = meta["namespace"].as_str().unwrap_or_default().to_string();
            if !body_ns.is_empty() && body_ns != namespace {
                return Err(ApiError::bad_request(format!(
                    "the namespace of the provided object ({body_ns}) does not match the namespace sent on the request ({namespace})"
                )));
            }
            meta["namespace"] = Value::String(namespace.to_string());
            self.namespace_state(namespace)?;
        } else if let Some(m) = meta.as_object_mut() {
            m.remove("namespace");
        }
        if meta["name"].as_str().is_none_or(str::is_empty)
            && let Some(prefix) = meta["generateName"].as_str()
        {
            self.name_counter += 1;
            meta["name"] = Value::String(format!("{prefix}{}", suffix(self.name_counter)));
        }
        let name = meta["name"].as_str().unwrap_or_default().to_string();
        if self.store.get(&rt.key(), if rt.namespaced { namespace } else { "" }, &name).is_some() {
            return Err(ApiError::already_exists(&qualified(rt), &name));
        }
        if rt.terminating {
            return Err(ApiError::new(
                405,
                "MethodNotAllowed",
                "create not allowed while custom resource definition is terminating",
            ));
        }
        for field in [
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ] {
            if let Some(m) = meta.as_object_mut() {
                m.remove(field);
            }
        }
        let (new, warnings) = validation::admit(rt, object, None, opts.field_validation)?;
        let mut new = crate::conversion::to_storage(rt, new);
        let uid = self.store.next_uid();
        let m = &mut new["metadata"];
        m["uid"] = Value::String(uid);
        m["creationTimestamp"] = Value::String(now_rfc3339());
        m["generation"] = json!(1);
        if rt.resource == "services" && new["spec"]["clusterIP"].is_null() && new["spec"]["type"] != "ExternalName" {
            let ip = crate::validation::defaults::cluster_ip(new["metadata"]["uid"].as_str().unwrap_or_default());
            new["spec"]["clusterIP"] = json!(ip);
            new["spec"]["clusterIPs"] = json!([ip]);
        }
        if rt.resource == "namespaces" {
            new["spec"] = json!({"finalizers": ["kubernetes"]});
            new["status"] = json!({"phase": "Active"});
            new["metadata"]["labels"]["kubernetes.io/metadata.name"] = Value::String(name.clone());
        }
        if rt.resource == "pods" {
            // ServiceAccount admission: the pod's account must exist.
            let account = new["spec"]["serviceAccountName"].as_str().unwrap_or("default").to_string();
            let sa = GroupResource { group: String::new(), resource: "serviceaccounts".into() };
            if self.store.get(&sa, namespace, &account).is_none() {
                return Err(ApiError::forbidden(format!(
                    "pods \"{name}\" is forbidden: error looking up service account {namespace}/{account}: serviceaccount \"{account}\" not found"
                )));
            }
            new["spec"]["serviceAccountName"] = json!(account);
            new["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
        }
        if let Some(manager) = &opts.field_manager {
            crate::patch::record_manager(None, &mut new, manager, rt, None, &now_rfc3339());
        }
        self.pod_security(PendingWrite {
            rt: rt.clone(),
            operation: Operation::Create,
            subresource: None,
            old: None,
            new,
            warnings,
            dry_run: opts.dry_run,
        })
    }

    /// Pod Security admission of a validated write: refused, or passed on with its warnings
    /// (and its audit annotations recorded).
    fn pod_security(&mut self, mut pending: PendingWrite) -> Result<PendingWrite, ApiError> {
        if !pending.rt.namespaced {
            return Ok(pending);
        }
        let namespace = pending.new["metadata"]["namespace"].as_str().unwrap_or_default();
        let ns = GroupResource { group: String::new(), resource: "namespaces".into() };
        let labels = self.store.get(&ns, "", namespace).map(|n| n["metadata"]["labels"].clone()).unwrap_or_default();
        let verdict = crate::podsecurity::admit(&pending, &labels)?;
        pending.warnings.extend(verdict.warnings);
        self.audit.extend(verdict.audit);
        let excess = self.audit.len().saturating_sub(1000);
        self.audit.drain(..excess);
        Ok(pending)
    }

    /// A full replacement (PUT), of the object or of its status.
    pub fn prepare_update(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        mut object: Value,
        subresource: Option<&str>,
        opts: &WriteOptions,
    ) -> Result<PendingWrite, ApiError> {
        let old = self.get(rt, namespace, name)?;
        if !object.is_object() || !(object["metadata"].is_object() || object["metadata"].is_null()) {
            return Err(ApiError::bad_request("the object and its metadata must be JSON objects"));
        }
        let body_name = object["metadata"]["name"].as_str().unwrap_or_default();
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        if rt.is_crd() && object["metadata"]["resourceVersion"].as_str().is_none_or(str::is_empty) {
            return Err(ApiError::invalid(
                &rt.kind,
                name,
                vec![("metadata.resourceVersion".into(), "Invalid value: 0x0: must be specified for an update".into())],
            ));
        }
        if let Some(rv) = object["metadata"]["resourceVersion"].as_str()
            && !rv.is_empty()
            && Some(rv) != old["metadata"]["resourceVersion"].as_str()
        {
            return Err(ApiError::conflict(
                &qualified(rt),
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        object["metadata"]["name"] = Value::String(name.to_string());
        self.prepare_replacement(rt, old, object, subresource, opts)
    }

    /// Builds the new object from `old` and a candidate, honouring status subresource rules,
    /// immutable metadata and generation.
    pub(super) fn prepare_replacement(
        &mut self,
        rt: &ResourceType,
        old: Value,
        mut candidate: Value,
        subresource: Option<&str>,
        opts: &WriteOptions,
    ) -> Result<PendingWrite, ApiError> {
        if !candidate.is_object() || !(candidate["metadata"].is_object() || candidate["metadata"].is_null()) {
            return Err(ApiError::bad_request("the object and its metadata must be JSON objects"));
        }
        candidate["apiVersion"] = Value::String(rt.api_version());
        candidate["kind"] = Value::String(rt.kind.clone());
        let mut new = match subresource {
            Some("status") => {
                let mut new = old.clone();
                new["status"] = candidate["status"].clone();
                if !candidate["metadata"]["managedFields"].is_null() {
                    new["metadata"]["managedFields"] = candidate["metadata"]["managedFields"].clone();
                }
                new
            }
            Some(other) if other != "scale" => {
                return Err(ApiError::new(404, "NotFound", format!("subresource {other} not supported for update")));
            }
            // `scale` writes come here as the whole object with its replicas changed.
            _ => {
                if rt.has_status {
                    match old.get("status") {
                        Some(s) => candidate["status"] = s.clone(),
                        None => {
                            if let Some(m) = candidate.as_object_mut() {
                                m.remove("status");
                            }
                        }
                    }
                }
                candidate
            }
        };
        // Immutable and server-owned metadata come from the stored object.
        for field in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "namespace",
            "name",
        ] {
            match old["metadata"].get(field) {
                Some(v) => new["metadata"][field] = v.clone(),
                None => {
                    if let Some(m) = new["metadata"].as_object_mut() {
                        m.remove(field);
                    }
                }
            }
        }
        let (mut new, warnings) = validation::admit(rt, new, Some(&old), opts.field_validation)?;
        if rt.resource == "namespaces" {
            new["spec"] = old["spec"].clone();
            if subresource.is_none() {
                new["status"] = old["status"].clone();
            }
        }
        if spec_changed(&old, &new) {
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
            new["metadata"]["generation"] = json!(generation + 1);
        }
        if let Some(manager) = &opts.field_manager {
            crate::patch::record_manager(Some(&old), &mut new, manager, rt, subresource, &now_rfc3339());
        } else if let Some(mf) = old["metadata"].get("managedFields")
            && new["metadata"]["managedFields"].is_null()
        {
            new["metadata"]["managedFields"] = mf.clone();
        }
        self.pod_security(PendingWrite {
            rt: rt.clone(),
            operation: Operation::Update,
            subresource: subresource.map(String::from),
            old: Some(crate::conversion::to_storage(rt, old)),
            new: crate::conversion::to_storage(rt, new),
            warnings,
            dry_run: opts.dry_run,
        })
    }

    /// A write through the `scale` subresource: `new` is `old` with its replicas changed.
    pub fn prepare_scale(
        &mut self,
        rt: &ResourceType,
        old: Value,
        new: Value,
        opts: &WriteOptions,
    ) -> Result<PendingWrite, ApiError> {
        self.prepare_replacement(rt, old, new, Some("scale"), opts)
    }

    /// Stores a prepared write (unless dry-run). Fails with 409 when the object changed since
    /// the write was prepared. An update that empties the finalizers of an object being deleted
    /// deletes it.
    pub fn commit(&mut self, pending: PendingWrite) -> Result<Value, ApiError> {
        let rt = &pending.rt;
        let (ns, name) = crate::store::key_of(&pending.new);
        let current = self.store.get(&rt.key(), &ns, &name);
        let current_rv = current.and_then(|c| c["metadata"]["resourceVersion"].as_str()).map(String::from);
        let expected_rv =
            pending.old.as_ref().and_then(|o| o["metadata"]["resourceVersion"].as_str()).map(String::from);
        if current_rv != expected_rv {
            return Err(if expected_rv.is_none() {
                ApiError::already_exists(&qualified(rt), &name)
            } else {
                ApiError::conflict(
                    &qualified(rt),
                    &name,
                    "the object has been modified; please apply your changes to the latest version and try again",
                )
            });
        }
        if pending.dry_run {
            return Ok(with_api_version(&pending.new, rt));
        }
        if let Some(old) = &pending.old {
            let mut a = old.clone();
            let mut b = pending.new.clone();
            a["metadata"]["resourceVersion"] = Value::Null;
            b["metadata"]["resourceVersion"] = Value::Null;
            if a == b {
                // No change: no write, no new resourceVersion, no event.
                return Ok(with_api_version(old, rt));
            }
        }
        let deleting = !pending.new["metadata"]["deletionTimestamp"].is_null();
        let no_finalizers = pending.new["metadata"]["finalizers"].as_array().is_none_or(Vec::is_empty);
        if deleting && no_finalizers && pending.operation == Operation::Update && rt.resource != "pods" {
            let removed = self.store.remove(&rt.key(), &ns, &name).expect("exists");
            self.after_delete(rt, &removed);
            return Ok(with_api_version(&removed, rt));
        }
        let created_namespace = rt.resource == "namespaces" && pending.old.is_none();
        let stored = self.store.put(&rt.key(), pending.new);
        if rt.resource == "customresourcedefinitions" {
            self.crd_changed();
        }
        if created_namespace {
            self.create_default_service_account(&name);
        }
        Ok(with_api_version(&stored, rt))
    }

    /// Every namespace gets a ServiceAccount `default`, as the real token controller ensures.
    fn create_default_service_account(&mut self, namespace: &str) {
        let sa = GroupResource { group: String::new(), resource: "serviceaccounts".into() };
        if self.store.get(&sa, namespace, "default").is_some() {
            return;
        }
        let uid = self.store.next_uid();
        let object = json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "default", "namespace": namespace, "uid": uid, "creationTimestamp": now_rfc3339()}});
        self.store.put(&sa, object);
    }

    /// Rebuilds the served types from the stored CRDs and marks new ones Established.
    pub fn crd_changed(&mut self) {
        let gr = GroupResource { group: "apiextensions.k8s.io".into(), resource: "customresourcedefinitions".into() };
        let crds: Vec<Value> = self.store.list(&gr, None).cloned().collect();
        self.registry = Registry::new(&crds);
        for crd in crds {
            let established = crd["status"]["conditions"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Established" && c["status"] == "True"));
            let accepted_same = crd["status"]["acceptedNames"] == crd["spec"]["names"];
            if established && accepted_same {
                continue;
            }
            let mut new = crd.clone();
            let now = now_rfc3339();
            new["status"] = json!({
                "acceptedNames": crd["spec"]["names"],
                "storedVersions": crd["spec"]["versions"].as_array().into_iter().flatten()
                    .filter(|v| v["storage"] == Value::Bool(true)).map(|v| v["name"].clone()).collect::<Vec<_>>(),
                "conditions": [
                    {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
                    {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now},
                ],
            });
            self.store.put(&gr, new);
        }
    }
}

/// `resource.group` as error messages name it (`deployments.apps`, `pods`).
pub fn qualified(rt: &ResourceType) -> String {
    if rt.group.is_empty() { rt.resource.clone() } else { format!("{}.{}", rt.resource, rt.group) }
}

/// A stored object as `rt` serves it.
fn with_api_version(object: &Value, rt: &ResourceType) -> Value {
    crate::conversion::from_storage(rt, object)
}

/// Whether anything but metadata and status changed (what bumps metadata.generation).
fn spec_changed(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("metadata");
            m.remove("status");
            m.remove("apiVersion");
            m.remove("kind");
        }
        v
    };
    strip(old) != strip(new)
}

/// Five lowercase alphanumerics for generateName, derived from a counter (deterministic).
fn suffix(n: u64) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
    (0..5)
        .map(|_| {
            let c = ALPHABET[(x % ALPHABET.len() as u64) as usize] as char;
            x /= ALPHABET.len() as u64;
            c
        })
        .collect()
}
