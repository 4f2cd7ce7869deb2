//! Pod Security admission through kubectl: the namespace's labels enforce, warn and audit.

use testkit::harness::TestCluster;

fn kubectl_apply(cluster: &TestCluster, yaml: &str) -> std::process::Output {
    cluster.kubectl_as(cluster.kubeconfig(), &["apply", "-f", "-"], Some(yaml))
}

const PLAIN_POD: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\nspec:\n  containers: [{name: web, image: nginx}]\n";

const HARDENED_POD: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: hardened, namespace: shop}\nspec:
  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: web
    image: nginx
    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}\n";

fn namespace(labels: &str) -> String {
    format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n  labels: {{{labels}}}\n")
}

#[tokio::test]
async fn an_enforcing_namespace_refuses_a_non_compliant_pod_with_the_real_message() {
    let cluster = TestCluster::stand_in();
    assert!(kubectl_apply(&cluster, &namespace("pod-security.kubernetes.io/enforce: restricted")).status.success());
    let out = kubectl_apply(&cluster, PLAIN_POD);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "pods \"web\" is forbidden: violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false \
             (container \"web\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities \
             (container \"web\" must set securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod or \
             container \"web\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container \"web\" must \
             set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
        ),
        "{stderr}"
    );
    let out = kubectl_apply(&cluster, HARDENED_POD);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // A Deployment is admitted (with a warning when `warn` is set): its pods are refused when
    // the ReplicaSet creates them, which `kubectl describe` shows as an event.
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx}]}\n";
    assert!(kubectl_apply(&cluster, deployment).status.success());
    let describe = testkit_wait(|| {
        let out = cluster.kubectl(&["describe", "replicaset", "-n", "shop"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains("FailedCreate").then_some(text)
    });
    assert!(describe.contains("violates PodSecurity \"restricted:latest\""), "{describe}");
    let pods = cluster.kubectl(&["get", "pods", "-n", "shop", "-o", "name"]);
    assert_eq!(String::from_utf8_lossy(&pods.stdout).trim(), "pod/hardened");
}

#[tokio::test]
async fn warn_and_audit_labels_admit_the_pod_and_report_it() {
    let cluster = TestCluster::stand_in();
    let labels = "pod-security.kubernetes.io/enforce: baseline, pod-security.kubernetes.io/warn: restricted, \
                  pod-security.kubernetes.io/warn-version: v1.33, pod-security.kubernetes.io/audit: restricted";
    assert!(kubectl_apply(&cluster, &namespace(labels)).status.success());
    let out = kubectl_apply(&cluster, PLAIN_POD);
    assert!(out.status.success(), "baseline allows it: {}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Warning: would violate PodSecurity \"restricted:v1.33\": allowPrivilegeEscalation != false"),
        "{stderr}"
    );
    let audit = cluster.state().cluster.lock().unwrap().audit.clone();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].key, "pod-security.kubernetes.io/audit-violations");
    assert!(
        audit[0].value.starts_with("would violate PodSecurity \"restricted:latest\": allowPrivilegeEscalation"),
        "{audit:?}"
    );
    // Baseline refuses what it forbids.
    let host = PLAIN_POD
        .replace("name: web, namespace", "name: host, namespace")
        .replace("spec:\n", "spec:\n  hostNetwork: true\n");
    let out = kubectl_apply(&cluster, &host);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("violates PodSecurity \"baseline:latest\": host namespaces (hostNetwork=true)"),
        "{stderr}"
    );
}

fn testkit_wait<T>(mut check: impl FnMut() -> Option<T>) -> T {
    for _ in 0..100 {
        if let Some(v) = check() {
            return v;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("timed out");
}
