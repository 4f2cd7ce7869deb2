//! The checks of the Pod Security Standards, each as the real plugin words its violation.

use serde_json::Value;
use std::collections::BTreeSet;

pub(super) fn join_quote(items: &[String]) -> String {
    items.iter().map(|i| format!("\"{i}\"")).collect::<Vec<_>>().join(", ")
}

pub(super) fn plural<'a>(singular: &'a str, plural: &'a str, n: usize) -> &'a str {
    if n == 1 { singular } else { plural }
}

/// `container "a"` / `containers "a", "b"`.
pub(super) fn containers_phrase(names: &[String]) -> String {
    format!("{} {}", plural("container", "containers", names.len()), join_quote(names))
}

/// Every container of a pod spec: init containers, containers, ephemeral containers.
pub(super) fn containers(spec: &Value) -> Vec<&Value> {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|list| spec[*list].as_array().into_iter().flatten())
        .collect()
}

pub(super) fn name(c: &Value) -> String {
    c["name"].as_str().unwrap_or_default().to_string()
}

pub(super) fn violation(reason: &str, detail: String) -> Option<(String, String)> {
    Some((reason.to_string(), detail))
}

pub(super) fn windows(spec: &Value) -> bool {
    spec["os"]["name"] == "windows"
}

pub(super) fn app_armor(meta: &Value, spec: &Value) -> Option<(String, String)> {
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

pub(super) fn capabilities_baseline(spec: &Value) -> Option<(String, String)> {
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

pub(super) fn host_namespaces(spec: &Value) -> Option<(String, String)> {
    let set: Vec<&str> =
        [("hostNetwork", "hostNetwork=true"), ("hostPID", "hostPID=true"), ("hostIPC", "hostIPC=true")]
            .into_iter()
            .filter(|(field, _)| spec[*field] == Value::Bool(true))
            .map(|(_, text)| text)
            .collect();
    (!set.is_empty()).then(|| ("host namespaces".to_string(), set.join(", ")))
}

pub(super) fn volumes(spec: &Value) -> Vec<&Value> {
    spec["volumes"].as_array().into_iter().flatten().collect()
}

pub(super) fn host_path_volumes(spec: &Value) -> Option<(String, String)> {
    let names: Vec<String> = volumes(spec).into_iter().filter(|v| v["hostPath"].is_object()).map(name).collect();
    (!names.is_empty()).then(|| {
        ("hostPath volumes".to_string(), format!("{} {}", plural("volume", "volumes", names.len()), join_quote(&names)))
    })
}

pub(super) fn host_ports(spec: &Value) -> Option<(String, String)> {
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

pub(super) fn probe_hosts(spec: &Value) -> Option<(String, String)> {
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

pub(super) fn privileged(spec: &Value) -> Option<(String, String)> {
    let bad: Vec<String> = containers(spec)
        .into_iter()
        .filter(|c| c["securityContext"]["privileged"] == Value::Bool(true))
        .map(name)
        .collect();
    (!bad.is_empty()).then(|| {
        ("privileged".to_string(), format!("{} must not set securityContext.privileged=true", containers_phrase(&bad)))
    })
}

pub(super) fn proc_mount(spec: &Value) -> Option<(String, String)> {
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

pub(super) fn se_linux(spec: &Value) -> Option<(String, String)> {
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
pub(super) fn seccomp(spec: &Value, restricted: bool) -> Option<(String, String)> {
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

pub(super) fn sysctls(spec: &Value) -> Option<(String, String)> {
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

pub(super) fn windows_host_process(spec: &Value) -> Option<(String, String)> {
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

pub(super) fn allow_privilege_escalation(spec: &Value) -> Option<(String, String)> {
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

pub(super) fn capabilities_restricted(spec: &Value) -> Option<(String, String)> {
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

pub(super) fn restricted_volumes(spec: &Value) -> Option<(String, String)> {
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

pub(super) fn run_as_non_root(spec: &Value) -> Option<(String, String)> {
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

pub(super) fn run_as_user(spec: &Value) -> Option<(String, String)> {
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
