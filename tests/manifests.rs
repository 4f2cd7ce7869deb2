//! `kube-devops deploy generate-*` as a user runs it: what it prints, that it is valid for
//! Kubernetes 1.30 and 1.37, that the webhook's TLS setup works, and that the options and an
//! install file change what they should.

mod common;

use common::tools::{documents, id, kube_devops, normalise, render, validate_all};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509, X509StoreContext};
use serde_json::Value;
use std::collections::BTreeMap;

fn generate(args: &[&str]) -> Vec<Value> {
    documents(&render(&[&["deploy"], args].concat()))
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind}/{name}"))
}

fn kinds(objects: &[Value]) -> Vec<String> {
    objects
        .iter()
        .map(|o| format!("{}/{}", o["kind"].as_str().unwrap(), o["metadata"]["name"].as_str().unwrap()))
        .collect()
}

fn decode(secret: &Value, key: &str) -> Vec<u8> {
    use openssl::base64::decode_block;
    decode_block(secret["data"][key].as_str().unwrap()).unwrap()
}

/// What a cluster with the Prometheus Operator's CRDs serves (`--api-versions`).
const MONITORING: &str = "--api-versions=monitoring.coreos.com/v1";

#[test]
fn generate_all_prints_every_object_of_an_installation_in_apply_order() {
    let objects = generate(&["generate-all", MONITORING]);
    assert_eq!(
        kinds(&objects),
        [
            "Namespace/kube-devops",
            "ServiceAccount/kube-devops",
            "ClusterRole/kube-devops",
            "ClusterRoleBinding/kube-devops",
            "Role/kube-devops",
            "RoleBinding/kube-devops",
            "Secret/kube-devops-webhook-tls",
            "ConfigMap/kube-devops-grafana-dashboard",
            "Service/kube-devops-watch",
            "Service/kube-devops-reconcile",
            "Service/kube-devops-webhook",
            "Deployment/kube-devops-watch",
            "Deployment/kube-devops-reconcile",
            "Deployment/kube-devops-webhook",
            "PodDisruptionBudget/kube-devops-watch",
            "PodDisruptionBudget/kube-devops-reconcile",
            "PodDisruptionBudget/kube-devops-webhook",
            "NetworkPolicy/kube-devops-watch",
            "NetworkPolicy/kube-devops-reconcile",
            "NetworkPolicy/kube-devops-webhook",
            "ServiceMonitor/kube-devops-watch",
            "ServiceMonitor/kube-devops-reconcile",
            "ServiceMonitor/kube-devops-webhook",
            "ValidatingWebhookConfiguration/kube-devops-webhook",
        ]
    );
    for object in &objects {
        let labels = &object["metadata"]["labels"];
        assert_eq!(labels["app.kubernetes.io/name"], "kube-devops", "{}", id(object));
        for label in ["component", "instance", "version", "managed-by"] {
            assert!(labels[format!("app.kubernetes.io/{label}")].is_string(), "{} has no {label} label", id(object));
        }
        if object["kind"] != "Namespace"
            && object["kind"] != "ClusterRole"
            && object["kind"] != "ClusterRoleBinding"
            && object["kind"] != "ValidatingWebhookConfiguration"
        {
            assert_eq!(object["metadata"]["namespace"], "kube-devops", "{}", id(object));
        }
    }
}

#[test]
fn generate_all_is_valid_for_kubernetes_1_30_and_1_37() {
    validate_all(&generate(&["generate-all", MONITORING]));
    validate_all(&generate(&["generate-all", "-f", "examples/install.yaml"]));
}

#[test]
fn the_partial_commands_print_their_part() {
    let rbac = kinds(&generate(&["generate-rbac"]));
    assert_eq!(
        rbac,
        [
            "ServiceAccount/kube-devops",
            "ClusterRole/kube-devops",
            "ClusterRoleBinding/kube-devops",
            "Role/kube-devops",
            "RoleBinding/kube-devops"
        ]
    );
    let deployments = kinds(&generate(&["generate-deployments"]));
    assert_eq!(
        deployments,
        ["Deployment/kube-devops-watch", "Deployment/kube-devops-reconcile", "Deployment/kube-devops-webhook"]
    );
    let observability = generate(&["generate-observability", MONITORING]);
    assert_eq!(observability.len(), 7);
    assert!(
        observability.iter().all(|o| ["Service", "ServiceMonitor", "ConfigMap"].contains(&o["kind"].as_str().unwrap()))
    );
    let webhook = kinds(&generate(&["generate-webhook"]));
    assert_eq!(webhook, ["Secret/kube-devops-webhook-tls", "ValidatingWebhookConfiguration/kube-devops-webhook"]);
}

/// ServiceMonitors are automatic by default: these commands cannot see the cluster, so they
/// render them only when told that it serves their API, and say so on stderr otherwise.
#[test]
fn service_monitors_are_rendered_for_a_cluster_that_serves_them_and_the_output_says_when_not() {
    let monitors = |objects: Vec<Value>| objects.iter().filter(|o| o["kind"] == "ServiceMonitor").count();
    let out = kube_devops(&["deploy", "generate-all"]);
    assert!(out.status.success());
    assert_eq!(monitors(documents(&String::from_utf8(out.stdout).unwrap())), 0);
    let note = String::from_utf8(out.stderr).unwrap();
    assert!(
        note.contains("no ServiceMonitors rendered") && note.contains("--api-versions monitoring.coreos.com/v1"),
        "{note}"
    );
    assert_eq!(monitors(generate(&["generate-all", "-a", "apps/v1,monitoring.coreos.com/v1/ServiceMonitor"])), 3);
    let dir = tempfile::tempdir().unwrap();
    for (enabled, without, with) in [("true", 3, 3), ("false", 0, 0)] {
        let file = dir.path().join(format!("{enabled}.yaml"));
        let install = format!(
            "apiVersion: devops.stochastic.io/v1alpha1\nkind: KubeDevopsInstall\nmetadata: {{name: default}}\n\
             spec:\n  serviceMonitor: {{enabled: {enabled}}}\n"
        );
        std::fs::write(&file, install).unwrap();
        let file = file.to_str().unwrap();
        let out = kube_devops(&["deploy", "generate-all", "-f", file]);
        assert!(out.stderr.is_empty(), "an explicit setting needs no note: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(monitors(documents(&String::from_utf8(out.stdout).unwrap())), without, "enabled: {enabled}");
        assert_eq!(monitors(generate(&["generate-all", "-f", file, MONITORING])), with, "enabled: {enabled}");
    }
}

/// `--keep-tls` changes an installation without rotating the webhook's certificate: every
/// object of generate-all but the two that carry key material.
#[test]
fn keep_tls_renders_everything_but_the_key_material() {
    let kept = documents(&render(&["deploy", "generate-all", "--keep-tls", "--replicas", "3"]));
    let all = documents(&render(&["deploy", "generate-all", "--replicas", "3"]));
    let without_tls: Vec<Value> =
        all.into_iter().filter(|o| o["kind"] != "ValidatingWebhookConfiguration" && o["kind"] != "Secret").collect();
    assert_eq!(kinds(&kept), kinds(&without_tls));
    assert_eq!(kept, without_tls);
    assert!(kept.iter().all(|o| !o.to_string().contains("BEGIN")), "no key material");
}

#[test]
fn output_is_deterministic_apart_from_key_material() {
    let first = render(&["deploy", "generate-all"]);
    let second = render(&["deploy", "generate-all"]);
    assert_ne!(first, second, "every rendering has its own key material");
    let (first, second) = (normalise(documents(&first)), normalise(documents(&second)));
    assert_eq!(first, second, "{}", common::tools::difference(&first, &second));
}

#[test]
fn the_webhook_serves_a_certificate_the_api_server_trusts_for_its_service_name() {
    let objects = generate(&["generate-all"]);
    let secret = find(&objects, "Secret", "kube-devops-webhook-tls");
    let vwc = find(&objects, "ValidatingWebhookConfiguration", "kube-devops-webhook");
    let ca_bundle =
        openssl::base64::decode_block(vwc["webhooks"][0]["clientConfig"]["caBundle"].as_str().unwrap()).unwrap();
    assert_eq!(ca_bundle, decode(secret, "ca.crt"), "the caBundle is the Secret's CA");
    let ca = X509::from_pem(&ca_bundle).unwrap();
    let cert = X509::from_pem(&decode(secret, "tls.crt")).unwrap();
    let mut store = X509StoreBuilder::new().unwrap();
    store.add_cert(ca).unwrap();
    let store = store.build();
    let mut ctx = X509StoreContext::new().unwrap();
    assert!(ctx.init(&store, &cert, &Stack::new().unwrap(), |c| c.verify_cert()).unwrap(), "{:?}", ctx.error());
    let sans: Vec<String> =
        cert.subject_alt_names().unwrap().iter().filter_map(|n| n.dnsname().map(String::from)).collect();
    let service = &vwc["webhooks"][0]["clientConfig"]["service"];
    let host = format!("{}.{}.svc", service["name"].as_str().unwrap(), service["namespace"].as_str().unwrap());
    assert!(sans.contains(&host), "{host} not in {sans:?}");
    assert!(sans.contains(&format!("{host}.cluster.local")));
    let key = openssl::pkey::PKey::private_key_from_pem(&decode(secret, "tls.key")).unwrap();
    assert!(cert.public_key().unwrap().public_eq(&key), "tls.key belongs to tls.crt");
    // The Service routes the VWC's port to the container the Deployment mounts the Secret in.
    let svc = find(&objects, "Service", "kube-devops-webhook");
    assert_eq!(svc["spec"]["ports"][0]["port"], service["port"]);
    let pod = &find(&objects, "Deployment", "kube-devops-webhook")["spec"]["template"]["spec"];
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], pod["containers"][0]["ports"][0]["name"]);
    assert!(pod["volumes"].as_array().unwrap().iter().any(|v| v["secret"]["secretName"] == "kube-devops-webhook-tls"));
}

#[test]
fn every_selector_matches_exactly_its_components_pods() {
    let objects = generate(&["generate-all"]);
    let pods: BTreeMap<String, &Value> = objects
        .iter()
        .filter(|o| o["kind"] == "Deployment")
        .map(|d| (d["metadata"]["name"].as_str().unwrap().to_string(), &d["spec"]["template"]["metadata"]["labels"]))
        .collect();
    let matches = |selector: &Value, labels: &Value| selector.as_object().unwrap().iter().all(|(k, v)| &labels[k] == v);
    for object in &objects {
        let selector = match object["kind"].as_str().unwrap() {
            "Service" => &object["spec"]["selector"],
            "PodDisruptionBudget" | "Deployment" => &object["spec"]["selector"]["matchLabels"],
            _ => continue,
        };
        let selected: Vec<_> =
            pods.iter().filter(|(_, labels)| matches(selector, labels)).map(|(name, _)| name).collect();
        assert_eq!(selected, [object["metadata"]["name"].as_str().unwrap()], "{}", id(object));
    }
}

#[test]
fn an_install_file_and_the_options_change_what_is_rendered() {
    let objects = generate(&["generate-all", "-f", "examples/install.yaml"]);
    let webhook = find(&objects, "Deployment", "kube-devops-webhook");
    assert_eq!(webhook["spec"]["replicas"], 3, "spec.webhook.replicas of the file");
    let reconcile = find(&objects, "Deployment", "kube-devops-reconcile");
    assert_eq!(reconcile["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"], "256Mi");
    assert_eq!(reconcile["spec"]["template"]["spec"]["nodeSelector"]["kubernetes.io/os"], "linux");
    assert_eq!(reconcile["spec"]["template"]["spec"]["tolerations"][0]["key"], "node-role.kubernetes.io/control-plane");

    let objects = generate(&["generate-deployments", "--replicas", "4", "--image", "registry.local:5000/kd:v9"]);
    for d in &objects {
        assert_eq!(d["spec"]["replicas"], 4);
        assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["image"], "registry.local:5000/kd:v9");
    }
    // The file's own webhook replicas win over --replicas (which sets spec.replicas).
    let objects = generate(&["generate-deployments", "-f", "examples/install.yaml", "--replicas", "5"]);
    let replicas: Vec<_> = objects.iter().map(|d| d["spec"]["replicas"].as_i64().unwrap()).collect();
    assert_eq!(replicas, [5, 5, 3]);
}

#[test]
fn one_replica_gets_no_disruption_budget_that_would_block_drains() {
    let objects = generate(&["generate-all", "--replicas", "1"]);
    assert!(!objects.iter().any(|o| o["kind"] == "PodDisruptionBudget"));
}

#[test]
fn disabled_parts_are_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("install.yaml");
    std::fs::write(
        &file,
        "apiVersion: devops.stochastic.io/v1alpha1\nkind: KubeDevopsInstall\nmetadata: {name: default}\nspec:\n  \
         webhook: {enabled: false}\n  serviceMonitor: {enabled: false}\n  grafanaDashboard: {enabled: false}\n  pdb: {enabled: false}\n",
    )
    .unwrap();
    let objects = generate(&["generate-all", "-f", file.to_str().unwrap()]);
    let kinds: Vec<_> = objects.iter().map(|o| o["kind"].as_str().unwrap()).collect();
    for absent in ["Secret", "ValidatingWebhookConfiguration", "ServiceMonitor", "ConfigMap", "PodDisruptionBudget"] {
        assert!(!kinds.contains(&absent), "{absent} rendered: {kinds:?}");
    }
    assert!(!objects.iter().any(|o| o["metadata"]["name"] == "kube-devops-webhook"));
    assert_eq!(kinds.iter().filter(|k| **k == "Deployment").count(), 2);
}

#[test]
fn bad_input_is_an_error_with_exit_code_2() {
    for (args, message) in [
        (vec!["deploy", "generate-all", "-f", "no-such-file.yaml"], "no-such-file.yaml"),
        (vec!["deploy", "generate-all", "-f", "examples/policies/baseline.yaml"], "KubeDevopsInstall"),
        (vec!["deploy", "generate-all", "--image", "kd@sha256:0123"], "digest"),
    ] {
        let out = kube_devops(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "nothing half-rendered on stdout");
    }
    // clap rejects out-of-range replicas before anything runs.
    let out = kube_devops(&["deploy", "generate-all", "--replicas", "11"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn an_invalid_install_file_reports_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("install.yaml");
    std::fs::write(
        &file,
        "apiVersion: devops.stochastic.io/v1alpha1\nkind: KubeDevopsInstall\nmetadata: {name: default}\nspec:\n  replicas: 20\n  webhook: {timeoutSeconds: 60}\n",
    )
    .unwrap();
    let out = kube_devops(&["deploy", "generate-all", "-f", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("spec.replicas") && stderr.contains("spec.webhook.timeoutSeconds"), "{stderr}");
}

/// A renewal from the CLI given the current Secret keeps trusting its CA: the new caBundle and
/// the Secret's `ca.crt` hold the new CA first and the previous one after it, so the API server
/// reaches pods that still serve the old certificate until the kubelet updates their files.
#[test]
fn generate_webhook_with_the_previous_secret_keeps_trusting_its_ca() {
    let first = generate(&["generate-webhook"]);
    let old_secret = find(&first, "Secret", "kube-devops-webhook-tls").clone();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret.yaml");
    std::fs::write(&file, serde_json::to_string(&old_secret).unwrap()).unwrap();
    let renewed = generate(&["generate-webhook", "--previous-ca", file.to_str().unwrap()]);
    let secret = find(&renewed, "Secret", "kube-devops-webhook-tls");
    let bundle = decode(secret, "ca.crt");
    let cas = X509::stack_from_pem(&bundle).unwrap();
    assert_eq!(cas.len(), 2, "the new CA and the previous one");
    let old_ca = X509::from_pem(&decode(&old_secret, "ca.crt")).unwrap();
    assert_eq!(cas[1].to_pem().unwrap(), old_ca.to_pem().unwrap());
    let cert = X509::from_pem(&decode(secret, "tls.crt")).unwrap();
    assert!(cert.verify(&cas[0].public_key().unwrap()).unwrap(), "signed by the new CA");
    let vwc = find(&renewed, "ValidatingWebhookConfiguration", "kube-devops-webhook");
    let ca_bundle = openssl::base64::decode_block(vwc["webhooks"][0]["clientConfig"]["caBundle"].as_str().unwrap());
    assert_eq!(ca_bundle.unwrap(), bundle);
    // The next renewal keeps only the newest previous CA.
    std::fs::write(&file, serde_json::to_string(secret).unwrap()).unwrap();
    let again = generate(&["generate-webhook", "--previous-ca", file.to_str().unwrap()]);
    let cas = X509::stack_from_pem(&decode(find(&again, "Secret", "kube-devops-webhook-tls"), "ca.crt")).unwrap();
    assert_eq!(cas.len(), 2);
    let out = kube_devops(&["deploy", "generate-all", "--keep-tls", "--previous-ca", file.to_str().unwrap()]);
    assert!(!out.status.success(), "keeping the certificate and renewing it contradict each other");
}

/// kube-devops' own pods pass every check of its catalogue but the two they cannot: they talk
/// to the API server (a service account token) and their pull policy is the install's choice.
/// (Audited under another namespace name: `kube-devops` is a system namespace, never judged.)
#[test]
fn the_components_pass_the_whole_catalogue_but_what_they_need() {
    let manifests = render(&["deploy", "generate-all"]).replace("namespace: kube-devops\n", "namespace: audit-self\n");
    let dir = tempfile::tempdir().unwrap();
    let objects = dir.path().join("objects.yaml");
    std::fs::write(&objects, manifests).unwrap();
    let catalogue: Value = serde_json::from_str(&render(&["policy", "checks", "-o", "json"])).unwrap();
    // Every check on, by its own setting (a path under spec).
    let mut spec = serde_json::json!({"maxRestartCount": 3, "forbidPendingDuration": 300});
    for check in catalogue.as_array().unwrap() {
        let path: Vec<&str> = check["setting"].as_str().unwrap().split('.').collect();
        if matches!(path[..], ["maxRestartCount"] | ["forbidPendingDuration"]) {
            continue;
        }
        let value = match path[..] {
            ["reliability", "allowedRegistries"] => serde_json::json!(["ghcr.io/stochastic"]),
            _ => serde_json::json!(true),
        };
        match path[..] {
            [field] => spec[field] = value,
            [group, field] => spec[group][field] = value,
            _ => panic!("{path:?}"),
        }
    }
    let policy = serde_json::json!({"apiVersion": "devops.stochastic.io/v1", "kind": "DevOpsPolicy",
        "metadata": {"name": "everything", "namespace": "audit-self"}, "spec": spec});
    let policy_file = dir.path().join("policy.yaml");
    std::fs::write(&policy_file, policy.to_string()).unwrap();
    let out =
        kube_devops(&["audit", objects.to_str().unwrap(), "--policy", policy_file.to_str().unwrap(), "-o", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["checks"].as_array().unwrap().len(), catalogue.as_array().unwrap().len(), "every check on");
    let namespace = &report["namespaces"][0];
    assert_eq!(namespace["subjects"], 3, "the three components");
    let mut found: Vec<&str> = namespace["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["violations"].as_array().unwrap())
        .map(|v| v["check"].as_str().unwrap())
        .collect();
    found.sort();
    found.dedup();
    assert_eq!(found, ["pull_policy_not_always", "service_account_token_mounted"]);
}
