//! Pod Security admission, as the real built-in plugin does it: a namespace's
//! `pod-security.kubernetes.io/{enforce,audit,warn}` labels pick a level (`privileged`,
//! `baseline`, `restricted`); a pod that fails the enforced level is refused with the real
//! "violates PodSecurity" message, one that fails the warn level gets a warning, one that fails
//! the audit level an audit annotation. Pod templates of workloads (Deployments, ReplicaSets,
//! StatefulSets, DaemonSets, Jobs, CronJobs) get warnings and audit annotations, never a
//! refusal: their pods are refused when the controller creates them.
//!
//! The checks are those of the Pod Security Standards at their latest version, in the real
//! order (baseline checks by name, then restricted ones) with the real wording.

use crate::cluster::{Operation, PendingWrite};
use crate::status::ApiError;
use serde_json::Value;
use std::collections::BTreeSet;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

/// A level and the version label beside it (`latest` unless set), as messages name them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LevelVersion {
    pub level: Level,
    pub version: String,
}

impl std::fmt::Display for LevelVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let level = match self.level {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        };
        write!(f, "{level}:{}", self.version)
    }
}

/// The three modes of a namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub enforce: LevelVersion,
    pub audit: LevelVersion,
    pub warn: LevelVersion,
}

const PREFIX: &str = "pod-security.kubernetes.io/";

/// The policy of a namespace with these labels. An unknown level falls back to `restricted`,
/// the most restrictive, as the real plugin does with a label it cannot parse.
pub fn policy(labels: &Value) -> Policy {
    let mode = |mode: &str| {
        let level = match labels[format!("{PREFIX}{mode}")].as_str() {
            None | Some("privileged") => Level::Privileged,
            Some("baseline") => Level::Baseline,
            Some(_) => Level::Restricted,
        };
        let version = labels[format!("{PREFIX}{mode}-version")].as_str().unwrap_or("latest").to_string();
        LevelVersion { level, version }
    };
    Policy { enforce: mode("enforce"), audit: mode("audit"), warn: mode("warn") }
}

/// Resources whose objects carry a pod template, and where it is.
fn template_path(group: &str, resource: &str) -> Option<&'static [&'static str]> {
    match (group, resource) {
        ("apps", "deployments" | "replicasets" | "statefulsets" | "daemonsets") | ("batch", "jobs") => {
            Some(&["spec", "template"])
        }
        ("batch", "cronjobs") => Some(&["spec", "jobTemplate", "spec", "template"]),
        _ => None,
    }
}

/// One audit annotation, as the real server adds it to the request's audit event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditAnnotation {
    pub resource: String,
    pub namespace: String,
    pub name: String,
    pub key: String,
    pub value: String,
}

/// What admission decided for an allowed write: warnings for the client, annotations for the audit log.
#[derive(Default)]
pub struct Verdict {
    pub warnings: Vec<String>,
    pub audit: Vec<AuditAnnotation>,
}

/// Evaluates a pod or pod-controller write in a namespace labelled `ns_labels`.
pub fn admit(pending: &PendingWrite, ns_labels: &Value) -> Result<Verdict, ApiError> {
    let rt = &pending.rt;
    let is_pod = rt.group.is_empty() && rt.resource == "pods";
    let template = template_path(&rt.group, &rt.resource);
    if pending.subresource.is_some() || pending.operation == Operation::Delete || (!is_pod && template.is_none()) {
        return Ok(Verdict::default());
    }
    if is_pod
        && let Some(old) = &pending.old
        && !significant_pod_update(&old["spec"], &pending.new["spec"])
    {
        return Ok(Verdict::default());
    }
    let policy = policy(ns_labels);
    let (meta, spec) = match template {
        None => (&pending.new["metadata"], &pending.new["spec"]),
        Some(path) => {
            let template = path.iter().fold(&pending.new, |v, k| &v[*k]);
            if template.is_null() {
                return Ok(Verdict::default());
            }
            (&template["metadata"], &template["spec"])
        }
    };
    let name = pending.new["metadata"]["name"].as_str().unwrap_or_default();
    if is_pod {
        let violations = check(policy.enforce.level, meta, spec);
        if !violations.is_empty() {
            let resource =
                if rt.group.is_empty() { rt.resource.clone() } else { format!("{}.{}", rt.resource, rt.group) };
            return Err(ApiError::forbidden(format!(
                "{resource} \"{name}\" is forbidden: violates PodSecurity \"{}\": {}",
                policy.enforce,
                detail(&violations)
            ))
            .with_details(serde_json::json!({"name": name, "kind": rt.resource})));
        }
    }
    let mut verdict = Verdict::default();
    let audit = check(policy.audit.level, meta, spec);
    if !audit.is_empty() {
        verdict.audit.push(AuditAnnotation {
            resource: rt.resource.clone(),
            namespace: pending.new["metadata"]["namespace"].as_str().unwrap_or_default().to_string(),
            name: name.to_string(),
            key: "pod-security.kubernetes.io/audit-violations".into(),
            value: format!("would violate PodSecurity \"{}\": {}", policy.audit, detail(&audit)),
        });
    }
    let warn = check(policy.warn.level, meta, spec);
    if !warn.is_empty() {
        verdict.warnings.push(format!("would violate PodSecurity \"{}\": {}", policy.warn, detail(&warn)));
    }
    Ok(verdict)
}

/// Only a change of a container image (or of the number of containers) is evaluated again on a
/// pod update: nothing else in a pod's spec that the standards look at can change.
fn significant_pod_update(old: &Value, new: &Value) -> bool {
    let images = |spec: &Value, list: &str| -> Vec<Value> {
        spec[list].as_array().into_iter().flatten().map(|c| c["image"].clone()).collect()
    };
    ["containers", "initContainers", "ephemeralContainers"].iter().any(|list| images(old, list) != images(new, list))
}

/// `reason (detail), reason (detail)`, as the real message lists them.
pub fn detail(violations: &[(String, String)]) -> String {
    let parts: Vec<String> = violations
        .iter()
        .map(|(reason, detail)| if detail.is_empty() { reason.clone() } else { format!("{reason} ({detail})") })
        .collect();
    parts.join(", ")
}

fn join_quote(items: &[String]) -> String {
    items.iter().map(|i| format!("\"{i}\"")).collect::<Vec<_>>().join(", ")
}

fn plural<'a>(singular: &'a str, plural: &'a str, n: usize) -> &'a str {
    if n == 1 { singular } else { plural }
}

/// `container "a"` / `containers "a", "b"`.
fn containers_phrase(names: &[String]) -> String {
    format!("{} {}", plural("container", "containers", names.len()), join_quote(names))
}

/// Every container of a pod spec: init containers, containers, ephemeral containers.
fn containers(spec: &Value) -> Vec<&Value> {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|list| spec[*list].as_array().into_iter().flatten())
        .collect()
}

fn name(c: &Value) -> String {
    c["name"].as_str().unwrap_or_default().to_string()
}

/// The violations of `level` by a pod (metadata and spec), in the order the real plugin reports them.
pub fn check(level: Level, meta: &Value, spec: &Value) -> Vec<(String, String)> {
    if level == Level::Privileged {
        return Vec::new();
    }
    let restricted = level == Level::Restricted;
    // Pods in a user namespace (hostUsers: false) are exempt from some restricted checks.
    let user_namespace = spec["hostUsers"] == Value::Bool(false);
    let mut checks: Vec<Option<(String, String)>> = vec![
        app_armor(meta, spec),
        if restricted { None } else { capabilities_baseline(spec) },
        host_namespaces(spec),
        if restricted { None } else { host_path_volumes(spec) },
        host_ports(spec),
        probe_hosts(spec),
        privileged(spec),
        if restricted || user_namespace { None } else { proc_mount(spec) },
        se_linux(spec),
        if restricted { None } else { seccomp(spec, false) },
        sysctls(spec),
        windows_host_process(spec),
    ];
    if restricted {
        checks.extend([
            allow_privilege_escalation(spec),
            capabilities_restricted(spec),
            proc_mount(spec),
            restricted_volumes(spec),
            if user_namespace { None } else { run_as_non_root(spec) },
            if user_namespace { None } else { run_as_user(spec) },
            seccomp(spec, true),
        ]);
    }
    checks.into_iter().flatten().collect()
}

fn violation(reason: &str, detail: String) -> Option<(String, String)> {
    Some((reason.to_string(), detail))
}

fn windows(spec: &Value) -> bool {
    spec["os"]["name"] == "windows"
}

fn app_armor(meta: &Value, spec: &Value) -> Option<(String, String)> {
    let allowed = |t: &Value| t == "RuntimeDefault" || t == "Localhost";
    let mut setters = Vec::new();
    let mut values = BTreeSet::new();
    let pod = &spec["securityContext"]["appArmorProfile"];
    if pod.is_object() && !allowed(&pod["type"]) {
        setters.push("pod".to_string());
        values.insert(pod["type"].as_str().unwrap_or_default().to_string());
    }
    let bad: Vec<String> = containers(spec)
        .into_iter()
        .filter(|c| {
            let p = &c["securityContext"]["appArmorProfile"];
            let bad = p.is_object() && !allowed(&p["type"]);
            if bad {
                values.insert(p["type"].as_str().unwrap_or_default().to_string());
            }
            bad
        })
        .map(name)
        .collect();
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    let mut values: Vec<String> = values.into_iter().collect();
    let mut annotations: Vec<String> = meta["annotations"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| {
            let v = v.as_str().unwrap_or_default();
            k.starts_with("container.apparmor.security.beta.kubernetes.io/")
                && !(v.is_empty() || v == "runtime/default" || v.starts_with("localhost/"))
        })
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if !annotations.is_empty() {
        annotations.sort();
        setters.push(plural("annotation", "annotations", annotations.len()).to_string());
        values.extend(annotations);
    }
    if setters.is_empty() {
        return None;
    }
    violation(
        plural("forbidden AppArmor profile", "forbidden AppArmor profiles", values.len()),
        format!("{} must not set AppArmor profile type to {}", setters.join(" and "), join_quote(&values)),
    )
}

fn capabilities_baseline(spec: &Value) -> Option<(String, String)> {
    const ALLOWED: [&str; 13] = [
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    ];
    let mut added = BTreeSet::new();
    let mut bad = Vec::new();
    for c in containers(spec) {
        let forbidden: Vec<String> = c["securityContext"]["capabilities"]["add"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|cap| !ALLOWED.contains(cap))
            .map(String::from)
            .collect();
        if !forbidden.is_empty() {
            bad.push(name(c));
            added.extend(forbidden);
        }
    }
    if bad.is_empty() {
        return None;
    }
    let added: Vec<String> = added.into_iter().collect();
    violation(
        "non-default capabilities",
        format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&bad),
            join_quote(&added)
        ),
    )
}

fn host_namespaces(spec: &Value) -> Option<(String, String)> {
    let set: Vec<&str> =
        [("hostNetwork", "hostNetwork=true"), ("hostPID", "hostPID=true"), ("hostIPC", "hostIPC=true")]
            .into_iter()
            .filter(|(field, _)| spec[*field] == Value::Bool(true))
            .map(|(_, text)| text)
            .collect();
    (!set.is_empty()).then(|| ("host namespaces".to_string(), set.join(", ")))
}

fn volumes(spec: &Value) -> Vec<&Value> {
    spec["volumes"].as_array().into_iter().flatten().collect()
}

fn host_path_volumes(spec: &Value) -> Option<(String, String)> {
    let names: Vec<String> = volumes(spec).into_iter().filter(|v| v["hostPath"].is_object()).map(name).collect();
    (!names.is_empty()).then(|| {
        ("hostPath volumes".to_string(), format!("{} {}", plural("volume", "volumes", names.len()), join_quote(&names)))
    })
}

fn host_ports(spec: &Value) -> Option<(String, String)> {
    let mut ports = BTreeSet::new();
    let mut bad = Vec::new();
    for c in containers(spec) {
        let used: Vec<String> = c["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["hostPort"].as_i64().filter(|p| *p != 0))
            .map(|p| p.to_string())
            .collect();
        if !used.is_empty() {
            bad.push(name(c));
            ports.extend(used);
        }
    }
    if bad.is_empty() {
        return None;
    }
    let ports: Vec<String> = ports.into_iter().collect();
    violation(
        "hostPort",
        format!(
            "{} {} {} {}",
            containers_phrase(&bad),
            plural("uses", "use", bad.len()),
            plural("hostPort", "hostPorts", ports.len()),
            ports.join(", ")
        ),
    )
}

fn probe_hosts(spec: &Value) -> Option<(String, String)> {
    let mut hosts = BTreeSet::new();
    let mut bad = BTreeSet::new();
    for c in containers(spec) {
        let handlers = [
            &c["livenessProbe"],
            &c["readinessProbe"],
            &c["startupProbe"],
            &c["lifecycle"]["postStart"],
            &c["lifecycle"]["preStop"],
        ];
        for handler in handlers {
            for action in ["httpGet", "tcpSocket"] {
                if let Some(host) = handler[action]["host"].as_str().filter(|h| !h.is_empty()) {
                    bad.insert(name(c));
                    hosts.insert(host.to_string());
                }
            }
        }
    }
    if bad.is_empty() {
        return None;
    }
    let (bad, hosts): (Vec<String>, Vec<String>) = (bad.into_iter().collect(), hosts.into_iter().collect());
    violation(
        "probe or lifecycle host",
        format!(
            "{} {} {} {}",
            containers_phrase(&bad),
            plural("uses", "use", bad.len()),
            plural("probe or lifecycle host", "probe or lifecycle hosts", hosts.len()),
            join_quote(&hosts)
        ),
    )
}

fn privileged(spec: &Value) -> Option<(String, String)> {
    let bad: Vec<String> = containers(spec)
        .into_iter()
        .filter(|c| c["securityContext"]["privileged"] == Value::Bool(true))
        .map(name)
        .collect();
    (!bad.is_empty()).then(|| {
        ("privileged".to_string(), format!("{} must not set securityContext.privileged=true", containers_phrase(&bad)))
    })
}

fn proc_mount(spec: &Value) -> Option<(String, String)> {
    let mut types = BTreeSet::new();
    let mut bad = Vec::new();
    for c in containers(spec) {
        if let Some(t) = c["securityContext"]["procMount"].as_str().filter(|t| *t != "Default") {
            bad.push(name(c));
            types.insert(t.to_string());
        }
    }
    if bad.is_empty() {
        return None;
    }
    let types: Vec<String> = types.into_iter().collect();
    violation(
        "procMount",
        format!("{} must not set securityContext.procMount to {}", containers_phrase(&bad), join_quote(&types)),
    )
}

fn se_linux(spec: &Value) -> Option<(String, String)> {
    const TYPES: [&str; 5] = ["", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"];
    let mut bad_types = BTreeSet::new();
    let (mut user, mut role) = (false, false);
    let mut valid = |options: &Value| {
        let mut ok = true;
        let t = options["type"].as_str().unwrap_or_default();
        if !TYPES.contains(&t) {
            ok = false;
            bad_types.insert(t.to_string());
        }
        if options["user"].as_str().is_some_and(|u| !u.is_empty()) {
            ok = false;
            user = true;
        }
        if options["role"].as_str().is_some_and(|r| !r.is_empty()) {
            ok = false;
            role = true;
        }
        ok
    };
    let mut setters = Vec::new();
    let pod = &spec["securityContext"]["seLinuxOptions"];
    if pod.is_object() && !valid(pod) {
        setters.push("pod".to_string());
    }
    let bad: Vec<String> = containers(spec)
        .into_iter()
        .filter(|c| {
            let o = &c["securityContext"]["seLinuxOptions"];
            o.is_object() && !valid(o)
        })
        .map(name)
        .collect();
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    if setters.is_empty() {
        return None;
    }
    let mut data = Vec::new();
    if !bad_types.is_empty() {
        let types: Vec<String> = bad_types.into_iter().collect();
        data.push(format!("{} {}", plural("type", "types", types.len()), join_quote(&types)));
    }
    if user {
        data.push("user may not be set".to_string());
    }
    if role {
        data.push("role may not be set".to_string());
    }
    violation(
        "seLinuxOptions",
        format!("{} set forbidden securityContext.seLinuxOptions: {}", setters.join(" and "), data.join("; ")),
    )
}

/// The baseline check forbids `Unconfined`; the restricted one also requires a profile.
fn seccomp(spec: &Value, restricted: bool) -> Option<(String, String)> {
    if restricted && windows(spec) {
        return None;
    }
    let valid = |t: &Value| t == "RuntimeDefault" || t == "Localhost";
    let mut setters = Vec::new();
    let mut values = BTreeSet::new();
    let pod = &spec["securityContext"]["seccompProfile"];
    let mut pod_set = false;
    if pod.is_object() {
        if valid(&pod["type"]) {
            pod_set = true;
        } else {
            setters.push("pod".to_string());
            values.insert(pod["type"].as_str().unwrap_or_default().to_string());
        }
    }
    let (mut explicit, mut implicit) = (Vec::new(), Vec::new());
    for c in containers(spec) {
        let p = &c["securityContext"]["seccompProfile"];
        if p.is_object() {
            if !valid(&p["type"]) {
                explicit.push(name(c));
                values.insert(p["type"].as_str().unwrap_or_default().to_string());
            }
        } else if !pod_set {
            implicit.push(name(c));
        }
    }
    if !explicit.is_empty() {
        setters.push(containers_phrase(&explicit));
    }
    if !setters.is_empty() {
        let values: Vec<String> = values.into_iter().collect();
        return violation(
            "seccompProfile",
            format!(
                "{} must not set securityContext.seccompProfile.type to {}",
                setters.join(" and "),
                join_quote(&values)
            ),
        );
    }
    if restricted && !implicit.is_empty() {
        return violation(
            "seccompProfile",
            format!(
                "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
                containers_phrase(&implicit)
            ),
        );
    }
    None
}

fn sysctls(spec: &Value) -> Option<(String, String)> {
    const ALLOWED: [&str; 14] = [
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
        "net.ipv4.tcp_rmem",
        "net.ipv4.tcp_wmem",
        "net.ipv4.tcp_slow_start_after_idle",
        "net.ipv4.tcp_notsent_lowat",
    ];
    let forbidden: Vec<&str> = spec["securityContext"]["sysctls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["name"].as_str())
        .filter(|n| !ALLOWED.contains(n))
        .collect();
    (!forbidden.is_empty()).then(|| ("forbidden sysctls".to_string(), forbidden.join(", ")))
}

fn windows_host_process(spec: &Value) -> Option<(String, String)> {
    let host_process = |sc: &Value| sc["windowsOptions"]["hostProcess"] == Value::Bool(true);
    let mut setters = Vec::new();
    if host_process(&spec["securityContext"]) {
        setters.push("pod".to_string());
    }
    let bad: Vec<String> =
        containers(spec).into_iter().filter(|c| host_process(&c["securityContext"])).map(name).collect();
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    (!setters.is_empty()).then(|| {
        (
            "hostProcess".to_string(),
            format!("{} must not set securityContext.windowsOptions.hostProcess=true", setters.join(" and ")),
        )
    })
}

fn allow_privilege_escalation(spec: &Value) -> Option<(String, String)> {
    if windows(spec) {
        return None;
    }
    let bad: Vec<String> = containers(spec)
        .into_iter()
        .filter(|c| c["securityContext"]["allowPrivilegeEscalation"] != Value::Bool(false))
        .map(name)
        .collect();
    (!bad.is_empty()).then(|| {
        (
            "allowPrivilegeEscalation != false".to_string(),
            format!("{} must set securityContext.allowPrivilegeEscalation=false", containers_phrase(&bad)),
        )
    })
}

fn capabilities_restricted(spec: &Value) -> Option<(String, String)> {
    if windows(spec) {
        return None;
    }
    let (mut missing_drop, mut adding) = (Vec::new(), Vec::new());
    let mut forbidden = BTreeSet::new();
    for c in containers(spec) {
        let caps = &c["securityContext"]["capabilities"];
        if !caps.is_object() {
            missing_drop.push(name(c));
            continue;
        }
        let listed = |field: &str| -> Vec<String> {
            caps[field].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(String::from)).collect()
        };
        if !listed("drop").iter().any(|d| d == "ALL") {
            missing_drop.push(name(c));
        }
        let added: Vec<String> = listed("add").into_iter().filter(|a| a != "NET_BIND_SERVICE").collect();
        if !added.is_empty() {
            adding.push(name(c));
            forbidden.extend(added);
        }
    }
    let mut details = Vec::new();
    if !missing_drop.is_empty() {
        details
            .push(format!("{} must set securityContext.capabilities.drop=[\"ALL\"]", containers_phrase(&missing_drop)));
    }
    if !adding.is_empty() {
        let forbidden: Vec<String> = forbidden.into_iter().collect();
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&adding),
            join_quote(&forbidden)
        ));
    }
    (!details.is_empty()).then(|| ("unrestricted capabilities".to_string(), details.join("; ")))
}

fn restricted_volumes(spec: &Value) -> Option<(String, String)> {
    const ALLOWED: [&str; 9] = [
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "image",
        "persistentVolumeClaim",
        "projected",
        "secret",
    ];
    let mut bad = Vec::new();
    let mut types = BTreeSet::new();
    for v in volumes(spec) {
        let sources: Vec<&String> =
            v.as_object().into_iter().flatten().map(|(k, _)| k).filter(|k| *k != "name").collect();
        if sources.iter().any(|s| ALLOWED.contains(&s.as_str())) {
            continue;
        }
        bad.push(name(v));
        types.insert(sources.first().map(|s| s.to_string()).unwrap_or_else(|| "unknown".into()));
    }
    if bad.is_empty() {
        return None;
    }
    let types: Vec<String> = types.into_iter().collect();
    violation(
        "restricted volume types",
        format!(
            "{} {} {} {} {}",
            plural("volume", "volumes", bad.len()),
            join_quote(&bad),
            plural("uses", "use", bad.len()),
            plural("restricted volume type", "restricted volume types", types.len()),
            join_quote(&types)
        ),
    )
}

fn run_as_non_root(spec: &Value) -> Option<(String, String)> {
    let mut setters = Vec::new();
    let pod = &spec["securityContext"]["runAsNonRoot"];
    let pod_non_root = *pod == Value::Bool(true);
    if *pod == Value::Bool(false) {
        setters.push("pod".to_string());
    }
    let (mut explicit, mut implicit) = (Vec::new(), Vec::new());
    for c in containers(spec) {
        match &c["securityContext"]["runAsNonRoot"] {
            Value::Bool(false) => explicit.push(name(c)),
            Value::Bool(true) => {}
            _ if !pod_non_root => implicit.push(name(c)),
            _ => {}
        }
    }
    if !explicit.is_empty() {
        setters.push(containers_phrase(&explicit));
    }
    if !setters.is_empty() {
        return violation(
            "runAsNonRoot != true",
            format!("{} must not set securityContext.runAsNonRoot=false", setters.join(" and ")),
        );
    }
    (!implicit.is_empty()).then(|| {
        (
            "runAsNonRoot != true".to_string(),
            format!("pod or {} must set securityContext.runAsNonRoot=true", containers_phrase(&implicit)),
        )
    })
}

fn run_as_user(spec: &Value) -> Option<(String, String)> {
    let mut setters = Vec::new();
    if spec["securityContext"]["runAsUser"].as_i64() == Some(0) {
        setters.push("pod".to_string());
    }
    let bad: Vec<String> = containers(spec)
        .into_iter()
        .filter(|c| c["securityContext"]["runAsUser"].as_i64() == Some(0))
        .map(name)
        .collect();
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    (!setters.is_empty())
        .then(|| ("runAsUser=0".to_string(), format!("{} must not set runAsUser=0", setters.join(" and "))))
}

#[cfg(test)]
mod tests;
