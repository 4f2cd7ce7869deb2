//! Protobuf request bodies (`application/vnd.kubernetes.protobuf`), which kubectl's `create`
//! generators send (`kubectl create namespace|configmap|secret|deployment|...`): the
//! `runtime.Unknown` envelope (magic `k8s\0`) is decoded with the k8s-pb crate's generated
//! types, then turned into the JSON form the rest of the server works with.
//!
//! Only the kinds the generators create are decoded, and of them the fields the generators
//! set and their neighbours; a body with a field this module does not turn into JSON is refused
//! (415, naming the type) rather than stored without it. Answers are JSON, which kubectl
//! accepts.

use crate::status::ApiError;
use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::batch::v1 as batch;
use k8s_pb::api::core::v1 as core;
use k8s_pb::api::policy::v1 as policy;
use k8s_pb::api::rbac::v1 as rbac;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The magic prefix of a protobuf-encoded Kubernetes object.
pub const MAGIC: &[u8] = b"k8s\0";

type Result<T> = std::result::Result<T, ApiError>;

/// Decodes a protobuf body (with its magic prefix) into the object's JSON form.
pub fn decode(body: &[u8]) -> Result<Value> {
    let envelope = body.strip_prefix(MAGIC).ok_or_else(|| bad("the body does not start with k8s\\0"))?;
    let unknown = k8s_pb::apimachinery::pkg::runtime::Unknown::decode(envelope).map_err(|e| bad(&e.to_string()))?;
    let type_meta = unknown.type_meta.unwrap_or_default();
    let api_version = type_meta.api_version.unwrap_or_default();
    let kind = type_meta.kind.unwrap_or_default();
    let raw = unknown.raw.unwrap_or_default();
    fn parse<T: Message + Default>(raw: &[u8]) -> Result<T> {
        T::decode(raw).map_err(|e| bad(&e.to_string()))
    }
    let mut object = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Namespace") => namespace(parse(&raw)?)?,
        ("v1", "ConfigMap") => config_map(parse(&raw)?)?,
        ("v1", "Secret") => secret(parse(&raw)?)?,
        ("v1", "ServiceAccount") => service_account(parse(&raw)?)?,
        ("v1", "Service") => service(parse(&raw)?)?,
        ("apps/v1", "Deployment") => deployment(parse(&raw)?)?,
        ("batch/v1", "Job") => job(parse(&raw)?)?,
        ("batch/v1", "CronJob") => cron_job(parse(&raw)?)?,
        ("rbac.authorization.k8s.io/v1", "Role") => role(parse(&raw)?)?,
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => cluster_role(parse(&raw)?)?,
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => role_binding(parse(&raw)?)?,
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => cluster_role_binding(parse(&raw)?)?,
        ("policy/v1", "PodDisruptionBudget") => pod_disruption_budget(parse(&raw)?)?,
        _ => {
            return Err(unsupported(&format!(
                "the testkit API server does not decode protobuf {kind} ({api_version}): send JSON (kubectl create -f)"
            )));
        }
    };
    object["apiVersion"] = json!(api_version);
    object["kind"] = json!(kind);
    Ok(object)
}

fn bad(why: &str) -> ApiError {
    ApiError::bad_request(format!("cannot decode the protobuf body: {why}"))
}

fn unsupported(message: &str) -> ApiError {
    ApiError::new(415, "UnsupportedMediaType", message)
}

/// What is left of a message once every field this module knows was taken out of it: a field
/// still set is one that would be lost, so the body is refused. Zero values do not count: Go
/// encodes its non-pointer fields (`selfLink: ""`, `generation: 0`) whether set or not.
fn done<T: Message + Default + PartialEq + std::fmt::Debug>(what: &str, rest: T) -> Result<()> {
    if rest == T::default() || all_zero(&rest.encode_to_vec()) {
        return Ok(());
    }
    Err(unsupported(&format!(
        "the testkit API server cannot decode every field of this protobuf {what} ({rest:?}): send JSON (kubectl create -f)"
    )))
}

/// Whether encoded protobuf fields hold nothing but zero values (0, "", empty messages, or
/// messages of zero values).
fn all_zero(mut bytes: &[u8]) -> bool {
    use prost::encoding::{WireType, decode_key, decode_varint};
    while !bytes.is_empty() {
        let Ok((_, wire_type)) = decode_key(&mut bytes) else { return false };
        let zero = match wire_type {
            WireType::Varint => decode_varint(&mut bytes).is_ok_and(|v| v == 0),
            WireType::LengthDelimited => {
                let Ok(len) = decode_varint(&mut bytes) else { return false };
                let Some((payload, rest)) = bytes.split_at_checked(len as usize) else { return false };
                bytes = rest;
                all_zero(payload)
            }
            WireType::ThirtyTwoBit => bytes.split_at_checked(4).is_some_and(|(v, rest)| {
                let zero = v.iter().all(|b| *b == 0);
                bytes = rest;
                zero
            }),
            WireType::SixtyFourBit => bytes.split_at_checked(8).is_some_and(|(v, rest)| {
                let zero = v.iter().all(|b| *b == 0);
                bytes = rest;
                zero
            }),
            _ => false,
        };
        if !zero {
            return false;
        }
    }
    true
}

/// A JSON object built field by field; unset and empty fields are left out, as the real
/// server's JSON leaves them out.
#[derive(Default)]
struct Obj(Map<String, Value>);

impl Obj {
    fn put(mut self, key: &str, value: impl Into<Value>) -> Obj {
        let value = value.into();
        // Go's omitempty: "" is unset.
        let empty = match &value {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            _ => false,
        };
        if !empty {
            self.0.insert(key.into(), value);
        }
        self
    }

    /// Sets a field even when it is empty (`selector: {}` and `resources: {}` mean something).
    fn keep(mut self, key: &str, value: Option<Value>) -> Obj {
        if let Some(value) = value {
            self.0.insert(key.into(), value);
        }
        self
    }

    fn strings(self, key: &str, list: Vec<String>) -> Obj {
        self.put(key, list)
    }

    fn map(self, key: &str, map: BTreeMap<String, String>) -> Obj {
        self.put(key, Value::Object(map.into_iter().map(|(k, v)| (k, Value::String(v))).collect()))
    }

    fn build(self) -> Value {
        Value::Object(self.0)
    }
}

fn opt<T>(value: Option<T>, f: impl FnOnce(T) -> Result<Value>) -> Result<Value> {
    value.map(f).transpose().map(Option::unwrap_or_default)
}

fn list<T>(items: Vec<T>, f: impl Fn(T) -> Result<Value>) -> Result<Value> {
    items.into_iter().map(f).collect::<Result<Vec<Value>>>().map(Value::Array)
}

fn object_meta(mut m: meta::ObjectMeta) -> Result<Value> {
    let out = Obj::default()
        .put("name", m.name.take())
        .put("generateName", m.generate_name.take())
        .put("namespace", m.namespace.take())
        .put("resourceVersion", m.resource_version.take())
        .map("labels", std::mem::take(&mut m.labels))
        .map("annotations", std::mem::take(&mut m.annotations))
        .strings("finalizers", std::mem::take(&mut m.finalizers))
        .put("ownerReferences", list(std::mem::take(&mut m.owner_references), owner_reference)?);
    // Set by the server on create (kubectl sends the zero time).
    m.creation_timestamp.take();
    done("ObjectMeta", m)?;
    Ok(out.build())
}

fn owner_reference(mut r: meta::OwnerReference) -> Result<Value> {
    let out = Obj::default()
        .put("apiVersion", r.api_version.take())
        .put("kind", r.kind.take())
        .put("name", r.name.take())
        .put("uid", r.uid.take())
        .put("controller", r.controller.take())
        .put("blockOwnerDeletion", r.block_owner_deletion.take());
    done("OwnerReference", r)?;
    Ok(out.build())
}

fn label_selector(mut s: meta::LabelSelector) -> Result<Value> {
    let expressions = list(std::mem::take(&mut s.match_expressions), |mut e| {
        let out = Obj::default()
            .put("key", e.key.take())
            .put("operator", e.operator.take())
            .strings("values", std::mem::take(&mut e.values));
        done("LabelSelectorRequirement", e)?;
        Ok(out.build())
    })?;
    let out =
        Obj::default().map("matchLabels", std::mem::take(&mut s.match_labels)).put("matchExpressions", expressions);
    done("LabelSelector", s)?;
    Ok(out.build())
}

fn selector(s: Option<meta::LabelSelector>) -> Result<Option<Value>> {
    s.map(label_selector).transpose()
}

fn int_or_string(v: IntOrString) -> Value {
    match (v.r#type, v.int_val, v.str_val) {
        (Some(1), _, Some(s)) => json!(s),
        (_, Some(i), _) => json!(i),
        (_, None, Some(s)) => json!(s),
        _ => json!(0),
    }
}

fn namespace(mut n: core::Namespace) -> Result<Value> {
    let spec = n.spec.take().unwrap_or_default();
    let out = Obj::default()
        .put("metadata", opt(n.metadata.take(), object_meta)?)
        .put("spec", Obj::default().strings("finalizers", spec.finalizers).build());
    n.status.take();
    done("Namespace", n)?;
    Ok(out.build())
}

fn config_map(mut c: core::ConfigMap) -> Result<Value> {
    let binary: BTreeMap<String, String> =
        std::mem::take(&mut c.binary_data).into_iter().map(|(k, v)| (k, base64(&v))).collect();
    let out = Obj::default()
        .put("metadata", opt(c.metadata.take(), object_meta)?)
        .map("data", std::mem::take(&mut c.data))
        .map("binaryData", binary)
        .put("immutable", c.immutable.take());
    done("ConfigMap", c)?;
    Ok(out.build())
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn secret(mut s: core::Secret) -> Result<Value> {
    let data: BTreeMap<String, String> =
        std::mem::take(&mut s.data).into_iter().map(|(k, v)| (k, base64(&v))).collect();
    let out = Obj::default()
        .put("metadata", opt(s.metadata.take(), object_meta)?)
        .map("data", data)
        .map("stringData", std::mem::take(&mut s.string_data))
        .put("type", s.r#type.take())
        .put("immutable", s.immutable.take());
    done("Secret", s)?;
    Ok(out.build())
}

fn local_reference(mut r: core::LocalObjectReference) -> Result<Value> {
    let out = Obj::default().put("name", r.name.take());
    done("LocalObjectReference", r)?;
    Ok(out.build())
}

fn service_account(mut a: core::ServiceAccount) -> Result<Value> {
    let secrets = list(std::mem::take(&mut a.secrets), |mut r| {
        let out = Obj::default().put("name", r.name.take()).put("namespace", r.namespace.take());
        done("ObjectReference", r)?;
        Ok(out.build())
    })?;
    let out = Obj::default()
        .put("metadata", opt(a.metadata.take(), object_meta)?)
        .put("secrets", secrets)
        .put("imagePullSecrets", list(std::mem::take(&mut a.image_pull_secrets), local_reference)?)
        .put("automountServiceAccountToken", a.automount_service_account_token.take());
    done("ServiceAccount", a)?;
    Ok(out.build())
}

fn service(mut s: core::Service) -> Result<Value> {
    let mut spec = s.spec.take().unwrap_or_default();
    let ports = list(std::mem::take(&mut spec.ports), |mut p| {
        let out = Obj::default()
            .put("name", p.name.take())
            .put("protocol", p.protocol.take())
            .put("appProtocol", p.app_protocol.take())
            .put("port", p.port.take())
            .put("targetPort", p.target_port.take().map(int_or_string))
            .put("nodePort", p.node_port.take().filter(|p| *p != 0));
        done("ServicePort", p)?;
        Ok(out.build())
    })?;
    let spec_json = Obj::default()
        .put("ports", ports)
        .map("selector", std::mem::take(&mut spec.selector))
        .put("clusterIP", spec.cluster_ip.take())
        .strings("clusterIPs", std::mem::take(&mut spec.cluster_ips))
        .put("type", spec.r#type.take())
        .put("externalName", spec.external_name.take())
        .strings("externalIPs", std::mem::take(&mut spec.external_ips))
        .put("sessionAffinity", spec.session_affinity.take());
    done("ServiceSpec", spec)?;
    let out = Obj::default().put("metadata", opt(s.metadata.take(), object_meta)?).put("spec", spec_json.build());
    s.status.take();
    done("Service", s)?;
    Ok(out.build())
}

fn container(mut c: core::Container) -> Result<Value> {
    let ports = list(std::mem::take(&mut c.ports), |mut p| {
        let out = Obj::default()
            .put("name", p.name.take())
            .put("containerPort", p.container_port.take())
            .put("hostPort", p.host_port.take().filter(|p| *p != 0))
            .put("protocol", p.protocol.take());
        done("ContainerPort", p)?;
        Ok(out.build())
    })?;
    let env = list(std::mem::take(&mut c.env), |mut e| {
        let out = Obj::default().put("name", e.name.take()).put("value", e.value.take());
        done("EnvVar", e)?;
        Ok(out.build())
    })?;
    let resources = c.resources.take().map(|mut r| {
        let quantities = |m: BTreeMap<String, k8s_pb::apimachinery::pkg::api::resource::Quantity>| {
            m.into_iter().map(|(k, q)| (k, q.string.unwrap_or_default())).collect::<BTreeMap<_, _>>()
        };
        let out = Obj::default()
            .map("limits", quantities(std::mem::take(&mut r.limits)))
            .map("requests", quantities(std::mem::take(&mut r.requests)));
        done("ResourceRequirements", r).map(|_| out.build())
    });
    let out = Obj::default()
        .put("name", c.name.take())
        .put("image", c.image.take())
        .strings("command", std::mem::take(&mut c.command))
        .strings("args", std::mem::take(&mut c.args))
        .put("workingDir", c.working_dir.take())
        .put("ports", ports)
        .put("env", env)
        // kubectl sends `resources: {}`; the server keeps it.
        .keep("resources", Some(resources.transpose()?.unwrap_or_else(|| json!({}))))
        .put("imagePullPolicy", c.image_pull_policy.take());
    done("Container", c)?;
    Ok(out.build())
}

fn pod_template(mut t: core::PodTemplateSpec) -> Result<Value> {
    let mut spec = t.spec.take().unwrap_or_default();
    let spec_json = Obj::default()
        .put("containers", list(std::mem::take(&mut spec.containers), container)?)
        .put("initContainers", list(std::mem::take(&mut spec.init_containers), container)?)
        .put("restartPolicy", spec.restart_policy.take())
        .put("terminationGracePeriodSeconds", spec.termination_grace_period_seconds.take())
        .put("activeDeadlineSeconds", spec.active_deadline_seconds.take())
        .put("dnsPolicy", spec.dns_policy.take())
        .map("nodeSelector", std::mem::take(&mut spec.node_selector))
        .put("serviceAccountName", spec.service_account_name.take())
        .put("imagePullSecrets", list(std::mem::take(&mut spec.image_pull_secrets), local_reference)?);
    done("PodSpec", spec)?;
    let out =
        Obj::default().put("metadata", opt(t.metadata.take(), object_meta)?).keep("spec", Some(spec_json.build()));
    done("PodTemplateSpec", t)?;
    Ok(out.build())
}

fn deployment(mut d: apps::Deployment) -> Result<Value> {
    let mut spec = d.spec.take().unwrap_or_default();
    let strategy = spec.strategy.take().map(|mut s| {
        let rolling = s.rolling_update.take().map(|mut r| {
            let out = Obj::default()
                .put("maxUnavailable", r.max_unavailable.take().map(int_or_string))
                .put("maxSurge", r.max_surge.take().map(int_or_string));
            done("RollingUpdateDeployment", r).map(|_| out.build())
        });
        let out = Obj::default().put("type", s.r#type.take());
        let out = match rolling.transpose() {
            Ok(r) => out.put("rollingUpdate", r),
            Err(e) => return Err(e),
        };
        done("DeploymentStrategy", s).map(|_| out.build())
    });
    let spec_json = Obj::default()
        .put("replicas", spec.replicas.take())
        .keep("selector", selector(spec.selector.take())?)
        .put("template", opt(spec.template.take(), pod_template)?)
        .put("strategy", strategy.transpose()?)
        .put("minReadySeconds", spec.min_ready_seconds.take())
        .put("revisionHistoryLimit", spec.revision_history_limit.take())
        .put("paused", spec.paused.take())
        .put("progressDeadlineSeconds", spec.progress_deadline_seconds.take());
    done("DeploymentSpec", spec)?;
    let out = Obj::default().put("metadata", opt(d.metadata.take(), object_meta)?).put("spec", spec_json.build());
    d.status.take();
    done("Deployment", d)?;
    Ok(out.build())
}

fn job_spec(mut spec: batch::JobSpec) -> Result<Value> {
    let out = Obj::default()
        .put("parallelism", spec.parallelism.take())
        .put("completions", spec.completions.take())
        .put("activeDeadlineSeconds", spec.active_deadline_seconds.take())
        .put("backoffLimit", spec.backoff_limit.take())
        .keep("selector", selector(spec.selector.take())?)
        .put("manualSelector", spec.manual_selector.take())
        .put("template", opt(spec.template.take(), pod_template)?)
        .put("ttlSecondsAfterFinished", spec.ttl_seconds_after_finished.take())
        .put("completionMode", spec.completion_mode.take())
        .put("suspend", spec.suspend.take());
    done("JobSpec", spec)?;
    Ok(out.build())
}

fn job(mut j: batch::Job) -> Result<Value> {
    let out =
        Obj::default().put("metadata", opt(j.metadata.take(), object_meta)?).put("spec", opt(j.spec.take(), job_spec)?);
    j.status.take();
    done("Job", j)?;
    Ok(out.build())
}

fn cron_job(mut c: batch::CronJob) -> Result<Value> {
    let mut spec = c.spec.take().unwrap_or_default();
    let template = spec.job_template.take().map(|mut t| {
        let out = Obj::default()
            .put("metadata", opt(t.metadata.take(), object_meta)?)
            .put("spec", opt(t.spec.take(), job_spec)?);
        done("JobTemplateSpec", t).map(|_| out.build())
    });
    let spec_json = Obj::default()
        .put("schedule", spec.schedule.take())
        .put("timeZone", spec.time_zone.take())
        .put("startingDeadlineSeconds", spec.starting_deadline_seconds.take())
        .put("concurrencyPolicy", spec.concurrency_policy.take())
        .put("suspend", spec.suspend.take())
        .put("jobTemplate", template.transpose()?)
        .put("successfulJobsHistoryLimit", spec.successful_jobs_history_limit.take())
        .put("failedJobsHistoryLimit", spec.failed_jobs_history_limit.take());
    done("CronJobSpec", spec)?;
    let out = Obj::default().put("metadata", opt(c.metadata.take(), object_meta)?).put("spec", spec_json.build());
    c.status.take();
    done("CronJob", c)?;
    Ok(out.build())
}

fn policy_rule(mut r: rbac::PolicyRule) -> Result<Value> {
    let out = Obj::default()
        .strings("apiGroups", std::mem::take(&mut r.api_groups))
        .strings("resources", std::mem::take(&mut r.resources))
        .strings("resourceNames", std::mem::take(&mut r.resource_names))
        .strings("nonResourceURLs", std::mem::take(&mut r.non_resource_ur_ls))
        .put("verbs", std::mem::take(&mut r.verbs));
    done("PolicyRule", r)?;
    Ok(out.build())
}

fn role(mut r: rbac::Role) -> Result<Value> {
    let out = Obj::default()
        .put("metadata", opt(r.metadata.take(), object_meta)?)
        .put("rules", list(std::mem::take(&mut r.rules), policy_rule)?);
    done("Role", r)?;
    Ok(out.build())
}

fn cluster_role(mut r: rbac::ClusterRole) -> Result<Value> {
    let aggregation = r.aggregation_rule.take().map(|mut a| {
        let selectors = list(std::mem::take(&mut a.cluster_role_selectors), label_selector);
        done("AggregationRule", a).and(selectors).map(|s| Obj::default().put("clusterRoleSelectors", s).build())
    });
    let out = Obj::default()
        .put("metadata", opt(r.metadata.take(), object_meta)?)
        .put("rules", list(std::mem::take(&mut r.rules), policy_rule)?)
        .put("aggregationRule", aggregation.transpose()?);
    done("ClusterRole", r)?;
    Ok(out.build())
}

fn subjects_and_ref(subjects: Vec<rbac::Subject>, role_ref: Option<rbac::RoleRef>) -> Result<(Value, Value)> {
    let subjects = list(subjects, |mut s| {
        let out = Obj::default()
            .put("kind", s.kind.take())
            .put("apiGroup", s.api_group.take())
            .put("name", s.name.take())
            .put("namespace", s.namespace.take());
        done("Subject", s)?;
        Ok(out.build())
    })?;
    let role_ref = opt(role_ref, |mut r| {
        let out =
            Obj::default().put("apiGroup", r.api_group.take()).put("kind", r.kind.take()).put("name", r.name.take());
        done("RoleRef", r)?;
        Ok(out.build())
    })?;
    Ok((subjects, role_ref))
}

fn role_binding(mut b: rbac::RoleBinding) -> Result<Value> {
    let (subjects, role_ref) = subjects_and_ref(std::mem::take(&mut b.subjects), b.role_ref.take())?;
    let out = Obj::default()
        .put("metadata", opt(b.metadata.take(), object_meta)?)
        .put("subjects", subjects)
        .put("roleRef", role_ref);
    done("RoleBinding", b)?;
    Ok(out.build())
}

fn cluster_role_binding(mut b: rbac::ClusterRoleBinding) -> Result<Value> {
    let (subjects, role_ref) = subjects_and_ref(std::mem::take(&mut b.subjects), b.role_ref.take())?;
    let out = Obj::default()
        .put("metadata", opt(b.metadata.take(), object_meta)?)
        .put("subjects", subjects)
        .put("roleRef", role_ref);
    done("ClusterRoleBinding", b)?;
    Ok(out.build())
}

fn pod_disruption_budget(mut p: policy::PodDisruptionBudget) -> Result<Value> {
    let mut spec = p.spec.take().unwrap_or_default();
    let spec_json = Obj::default()
        .put("minAvailable", spec.min_available.take().map(int_or_string))
        .put("maxUnavailable", spec.max_unavailable.take().map(int_or_string))
        .keep("selector", selector(spec.selector.take())?)
        .put("unhealthyPodEvictionPolicy", spec.unhealthy_pod_eviction_policy.take());
    done("PodDisruptionBudgetSpec", spec)?;
    let out = Obj::default().put("metadata", opt(p.metadata.take(), object_meta)?).put("spec", spec_json.build());
    p.status.take();
    done("PodDisruptionBudget", p)?;
    Ok(out.build())
}

#[cfg(test)]
mod tests;
