//! The admission webhook's TLS Secret and its ValidatingWebhookConfiguration.
//!
//! The webhook judges pods and every kind with a pod template at CREATE and UPDATE (so a
//! compliant pod template is required before pods are made). It never sees the system
//! namespaces, its own, namespaces labelled `devops.stochastic.io/ignore: "true"`
//! (`namespaceSelector`) nor the platform's `kube-*`, `*-system` and `openshift-*`
//! namespaces (`matchConditions`), has no side effects, and the
//! API server waits at most `spec.webhook.timeoutSeconds` for it, then applies
//! `spec.webhook.failurePolicy` (Ignore by default: an outage of kube-devops never blocks the
//! cluster).

use super::labels::{cluster_meta, namespaced_meta};
use super::services::dns_names;
use super::{Component, NAMESPACE, WEBHOOK_NAME, WEBHOOK_TLS_SECRET, WebhookTls};
use crate::api::KubeDevopsInstallSpec;
use crate::api::install::FailurePolicy;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MatchCondition, RuleWithOperations, ServiceReference, ValidatingWebhook, ValidatingWebhookConfiguration,
    WebhookClientConfig,
};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use std::collections::BTreeMap;

/// The annotation on the TLS Secret saying when its certificates expire (RFC 3339).
pub const NOT_AFTER_ANNOTATION: &str = "devops.stochastic.io/tls-not-after";

/// Namespaces the webhook never judges: the cluster's own, the named system namespaces of the
/// governance engine (it would allow them anyway, so sending them only adds latency and an
/// outage risk), and kube-devops itself (its pods must start even when the webhook is down).
/// The engine's `kube-*` / `*-system` patterns cannot be expressed in a label selector.
pub const EXCLUDED_NAMESPACES: [&str; 9] = [
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "cert-manager",
    "istio-system",
    "monitoring",
    "observability",
    "argocd",
    NAMESPACE,
];

/// The name of the webhook's Service and ValidatingWebhookConfiguration.
pub fn webhook_service_name() -> String {
    Component::Webhook.object_name()
}

/// The DNS names the serving certificate must cover: every name of the webhook Service.
pub fn certificate_dns_names() -> Vec<String> {
    certificate_dns_names_in(NAMESPACE)
}

/// [`certificate_dns_names`] of an installation in `namespace` (see [`super::relocate`]).
pub fn certificate_dns_names_in(namespace: &str) -> Vec<String> {
    let mut names = dns_names(&webhook_service_name(), namespace);
    // The API server calls `<service>.<namespace>.svc`: make it the subject's CN.
    names.rotate_left(2);
    names
}

/// A new CA and serving certificate for the webhook Service.
pub fn generate_tls() -> anyhow::Result<WebhookTls> {
    generate_tls_in(NAMESPACE)
}

/// [`generate_tls`] for an installation in `namespace`.
pub fn generate_tls_in(namespace: &str) -> anyhow::Result<WebhookTls> {
    WebhookTls::generate(&certificate_dns_names_in(namespace))
}

/// The `kubernetes.io/tls` Secret mounted at `/tls` in the webhook pods.
pub fn tls_secret(tls: &WebhookTls) -> Secret {
    let mut metadata = namespaced_meta(WEBHOOK_TLS_SECRET, Component::Webhook.name());
    metadata.annotations = Some(BTreeMap::from([(NOT_AFTER_ANNOTATION.to_string(), tls.not_after.clone())]));
    let bytes = |s: &str| ByteString(s.as_bytes().to_vec());
    Secret {
        metadata,
        type_: Some("kubernetes.io/tls".into()),
        data: Some(BTreeMap::from([
            ("ca.crt".to_string(), bytes(&tls.ca_crt)),
            ("tls.crt".to_string(), bytes(&tls.tls_crt)),
            ("tls.key".to_string(), bytes(&tls.tls_key)),
        ])),
        ..Default::default()
    }
}

fn rule(groups: &[&str], resources: &[&str], operations: &[&str]) -> RuleWithOperations {
    let strings = |s: &[&str]| Some(s.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    RuleWithOperations {
        api_groups: strings(groups),
        api_versions: strings(&["v1"]),
        resources: strings(resources),
        operations: strings(operations),
        scope: Some("Namespaced".into()),
    }
}

/// The rules: pods at CREATE and UPDATE (`kubectl set image pod/...` changes an image), their
/// ephemeral containers (`kubectl debug`: allowed with a warning), and every kind that
/// carries a pod template at CREATE and UPDATE. ReplicaSets are judged too (a bare one is as
/// good as a bare pod); those the Deployment controller makes are allowed by identity.
pub fn rules() -> Vec<RuleWithOperations> {
    vec![
        rule(&[""], &["pods"], &["CREATE", "UPDATE"]),
        rule(&[""], &["pods/ephemeralcontainers"], &["UPDATE"]),
        rule(&[""], &["replicationcontrollers"], &["CREATE", "UPDATE"]),
        rule(&["apps"], &["deployments", "replicasets", "statefulsets", "daemonsets"], &["CREATE", "UPDATE"]),
        rule(&["batch"], &["jobs", "cronjobs"], &["CREATE", "UPDATE"]),
    ]
}

/// The label that keeps a namespace away from the webhook (`devops.stochastic.io/ignore:
/// "true"`).
pub const IGNORE_LABEL: &str = "devops.stochastic.io/ignore";

/// Namespaces the webhook never sees: the named ones ([`EXCLUDED_NAMESPACES`]) and those
/// labelled [`IGNORE_LABEL`]`: "true"`.
pub fn namespace_selector() -> LabelSelector {
    let requirement = |key: &str, values: Vec<String>| LabelSelectorRequirement {
        key: key.into(),
        operator: "NotIn".into(),
        values: Some(values),
    };
    LabelSelector {
        match_expressions: Some(vec![
            requirement("kubernetes.io/metadata.name", EXCLUDED_NAMESPACES.iter().map(|s| s.to_string()).collect()),
            requirement(IGNORE_LABEL, vec!["true".into()]),
        ]),
        ..Default::default()
    }
}

/// The CEL condition (`matchConditions`, Kubernetes 1.30+) that keeps the namespaces no label
/// selector can name away from the webhook: `kube-*`, `*-system` and `openshift-*` hold the
/// cluster's own workloads (CNI, CSI, the platform), which an outage of the webhook with
/// `failurePolicy: Fail` must never stop.
pub const PLATFORM_NAMESPACES_CONDITION: &str = "!request.namespace.startsWith('kube-') && \
     !request.namespace.endsWith('-system') && !request.namespace.startsWith('openshift-') && \
     request.namespace != 'openshift'";

fn match_conditions() -> Vec<MatchCondition> {
    vec![MatchCondition { name: "not-a-platform-namespace".into(), expression: PLATFORM_NAMESPACES_CONDITION.into() }]
}

/// The ValidatingWebhookConfiguration `kube-devops-webhook`, trusting `tls`'s CA.
pub fn validating_webhook_configuration(
    spec: &KubeDevopsInstallSpec,
    tls: &WebhookTls,
) -> ValidatingWebhookConfiguration {
    let failure_policy = match spec.webhook.failure_policy {
        FailurePolicy::Ignore => "Ignore",
        FailurePolicy::Fail => "Fail",
    };
    let webhook = ValidatingWebhook {
        name: WEBHOOK_NAME.into(),
        admission_review_versions: vec!["v1".into()],
        client_config: WebhookClientConfig {
            service: Some(ServiceReference {
                name: webhook_service_name(),
                namespace: NAMESPACE.into(),
                path: Some("/validate".into()),
                port: Some(Component::Webhook.service_port()),
            }),
            ca_bundle: Some(ByteString(tls.ca_crt.as_bytes().to_vec())),
            ..Default::default()
        },
        rules: Some(rules()),
        namespace_selector: Some(namespace_selector()),
        match_conditions: Some(match_conditions()),
        failure_policy: Some(failure_policy.into()),
        match_policy: Some("Equivalent".into()),
        side_effects: "None".into(),
        timeout_seconds: Some(spec.webhook.timeout_seconds),
        ..Default::default()
    };
    ValidatingWebhookConfiguration {
        metadata: cluster_meta(&webhook_service_name(), Component::Webhook.name()),
        webhooks: Some(vec![webhook]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_tls() -> WebhookTls {
        WebhookTls { ca_crt: "CA".into(), tls_crt: "CRT".into(), tls_key: "KEY".into(), not_after: "T".into() }
    }

    #[test]
    fn the_webhook_judges_pod_creation_outside_system_namespaces_and_its_own() {
        let mut spec = KubeDevopsInstallSpec::default();
        spec.webhook.failure_policy = FailurePolicy::Fail;
        spec.webhook.timeout_seconds = 7;
        let vwc = validating_webhook_configuration(&spec, &fake_tls());
        let hook = &vwc.webhooks.unwrap()[0];
        assert_eq!(hook.name, "validate.devops.stochastic.io");
        assert_eq!(hook.side_effects, "None");
        assert_eq!((hook.failure_policy.as_deref(), hook.timeout_seconds), (Some("Fail"), Some(7)));
        let pods = &hook.rules.as_ref().unwrap()[0];
        assert_eq!(pods.resources, Some(vec!["pods".to_string()]));
        assert_eq!(pods.operations, Some(vec!["CREATE".to_string(), "UPDATE".to_string()]), "set image is judged");
        let resources: Vec<String> = hook.rules.iter().flatten().flat_map(|r| r.resources.clone().unwrap()).collect();
        for kind in ["pods/ephemeralcontainers", "replicasets", "deployments", "cronjobs", "replicationcontrollers"] {
            assert!(resources.contains(&kind.to_string()), "{kind}");
        }
        let expressions = hook.namespace_selector.clone().unwrap().match_expressions.unwrap();
        assert_eq!(
            (expressions[1].key.as_str(), expressions[1].operator.as_str(), expressions[1].values.clone()),
            (IGNORE_LABEL, "NotIn", Some(vec!["true".to_string()]))
        );
        let excluded = expressions[0].clone();
        assert_eq!(excluded.operator, "NotIn");
        for ns in
            ["kube-system", "kube-public", "kube-node-lease", "kube-devops", "cert-manager", "monitoring", "argocd"]
        {
            assert!(excluded.values.as_ref().unwrap().contains(&ns.to_string()), "{ns}");
        }
        let service = hook.client_config.service.clone().unwrap();
        assert_eq!((service.name.as_str(), service.namespace.as_str()), ("kube-devops-webhook", "kube-devops"));
        assert_eq!((service.path.as_deref(), service.port), (Some("/validate"), Some(443)));
        assert_eq!(hook.client_config.ca_bundle, Some(ByteString(b"CA".to_vec())));
    }

    /// The matchConditions expression as the API server evaluates it (CEL, `request` bound to
    /// the AdmissionRequest).
    fn sent_to_the_webhook(namespace: &str) -> bool {
        use kube_cel::cel::{Context, Program, Value};
        let program = Program::compile(PLATFORM_NAMESPACES_CONDITION).unwrap();
        let mut context = Context::default();
        context.add_variable("request", serde_json::json!({"namespace": namespace, "operation": "CREATE"})).unwrap();
        match program.execute(&context).unwrap() {
            Value::Bool(b) => b,
            other => panic!("not a boolean: {other:?}"),
        }
    }

    #[test]
    fn platform_namespaces_never_reach_the_webhook() {
        for platform in
            ["kube-flannel", "calico-system", "tigera-system", "openshift-ingress", "openshift", "kube-devops"]
        {
            assert!(!sent_to_the_webhook(platform), "{platform}");
        }
        for user in ["shop", "payments", "systems", "my-openshift", "default"] {
            assert!(sent_to_the_webhook(user), "{user}");
        }
        let vwc = validating_webhook_configuration(&KubeDevopsInstallSpec::default(), &fake_tls());
        let conditions = vwc.webhooks.unwrap()[0].match_conditions.clone().unwrap();
        assert_eq!(conditions[0].expression, PLATFORM_NAMESPACES_CONDITION);
    }

    #[test]
    fn the_default_policy_fails_open() {
        let vwc = validating_webhook_configuration(&KubeDevopsInstallSpec::default(), &fake_tls());
        let hook = &vwc.webhooks.unwrap()[0];
        assert_eq!((hook.failure_policy.as_deref(), hook.timeout_seconds), (Some("Ignore"), Some(3)));
    }

    #[test]
    fn the_secret_holds_the_pem_files_the_webhook_and_prometheus_read() {
        let secret = tls_secret(&fake_tls());
        assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
        let data = secret.data.unwrap();
        let keys: Vec<_> = data.keys().map(String::as_str).collect();
        assert_eq!(keys, ["ca.crt", "tls.crt", "tls.key"]);
        assert_eq!(data["tls.key"], ByteString(b"KEY".to_vec()));
        assert_eq!(secret.metadata.annotations.unwrap()[NOT_AFTER_ANNOTATION], "T");
        assert_eq!(certificate_dns_names()[0], "kube-devops-webhook.kube-devops.svc");
        assert_eq!(certificate_dns_names().len(), 4);
    }
}
