//! Prometheus Operator ServiceMonitors (`monitoring.coreos.com/v1`), typed: only the fields
//! kube-devops sets, with the upstream names (tests check the objects against the upstream
//! CRD's schema). A `kube::Resource`, so the bootstrap operator can own and watch them.
//!
//! The webhook's metrics are scraped over HTTPS and verified against the webhook's own CA
//! (`ca.crt` of its TLS Secret) and Service name: no `insecureSkipVerify`.

use super::labels::{namespaced_meta, selector};
use super::{Component, NAMESPACE, WEBHOOK_TLS_SECRET, enabled_components};
use crate::api::KubeDevopsInstallSpec;
use k8s_openapi::api::core::v1::SecretKeySelector;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use serde::{Deserialize, Serialize};

/// What a ServiceMonitor scrapes.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "monitoring.coreos.com",
    version = "v1",
    kind = "ServiceMonitor",
    namespaced,
    schema = "disabled",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct MonitorSpec {
    /// The Services to scrape.
    pub selector: LabelSelector,
    /// The namespaces to look for them in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<NamespaceSelector>,
    /// The Service ports to scrape.
    pub endpoints: Vec<Endpoint>,
}

/// Namespaces a ServiceMonitor discovers Services in.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceSelector {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_names: Vec<String>,
}

/// One scraped Service port.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// The name of the Service port.
    pub port: String,
    pub path: String,
    /// `http` or `https`.
    pub scheme: String,
    /// Scrape interval (a Prometheus duration).
    pub interval: String,
    /// Keep the metrics' own labels where they clash with the target's: kube-devops labels
    /// scores with the `namespace` of the workload, which must not become
    /// `exported_namespace` (the dashboard filters and groups by `namespace`).
    #[serde(default)]
    pub honor_labels: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
}

/// How the scrape's TLS server certificate is verified.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsConfig {
    /// The CA that signed the server certificate.
    pub ca: SecretOrConfigMap,
    /// The name the server certificate must carry.
    pub server_name: String,
}

/// A key of a Secret (kube-devops never uses the ConfigMap alternative).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretOrConfigMap {
    pub secret: SecretKeySelector,
}

/// The ServiceMonitor of one component.
pub fn service_monitor(spec: &KubeDevopsInstallSpec, component: Component) -> ServiceMonitor {
    let name = component.object_name();
    let tls_config = (component == Component::Webhook).then(|| TlsConfig {
        ca: SecretOrConfigMap {
            secret: SecretKeySelector { name: WEBHOOK_TLS_SECRET.into(), key: "ca.crt".into(), optional: None },
        },
        server_name: format!("{name}.{NAMESPACE}.svc"),
    });
    let mut metadata = namespaced_meta(&name, component.name());
    metadata.labels.get_or_insert_default().extend(spec.service_monitor.labels.clone());
    ServiceMonitor {
        metadata,
        spec: MonitorSpec {
            selector: selector(component.name()),
            namespace_selector: Some(NamespaceSelector { match_names: vec![NAMESPACE.into()] }),
            endpoints: vec![Endpoint {
                port: component.service_port_name().into(),
                path: "/metrics".into(),
                scheme: component.scheme().to_lowercase(),
                interval: spec.service_monitor.interval.clone(),
                honor_labels: true,
                tls_config,
            }],
        },
    }
}

/// The ServiceMonitors of the enabled components when `spec.serviceMonitor.enabled` is true.
/// An automatic setting ([`super::resolve`] decides it for a cluster) renders none: whoever
/// cannot see the cluster cannot know that it serves ServiceMonitors.
pub fn service_monitors(spec: &KubeDevopsInstallSpec) -> Vec<ServiceMonitor> {
    if spec.service_monitor.enabled != Some(true) {
        return Vec::new();
    }
    enabled_components(spec).into_iter().map(|c| service_monitor(spec, c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_webhook_is_scraped_over_verified_https() {
        let sm = service_monitor(&KubeDevopsInstallSpec::default(), Component::Webhook);
        let json = serde_json::to_value(&sm).unwrap();
        assert_eq!(json["apiVersion"], "monitoring.coreos.com/v1");
        assert_eq!(json["kind"], "ServiceMonitor");
        let endpoint = &json["spec"]["endpoints"][0];
        assert_eq!(endpoint["scheme"], "https");
        assert_eq!(endpoint["port"], "https");
        assert_eq!(endpoint["tlsConfig"]["serverName"], "kube-devops-webhook.kube-devops.svc");
        assert_eq!(endpoint["tlsConfig"]["ca"]["secret"]["name"], "kube-devops-webhook-tls");
        assert!(endpoint["tlsConfig"].get("insecureSkipVerify").is_none());
    }

    #[test]
    fn monitors_scrape_the_service_port_every_interval() {
        let mut spec = KubeDevopsInstallSpec::default();
        spec.service_monitor.interval = "30s".into();
        let sm = service_monitor(&spec, Component::Watch);
        let endpoint = &sm.spec.endpoints[0];
        assert_eq!((endpoint.port.as_str(), endpoint.scheme.as_str()), ("metrics", "http"));
        assert_eq!(endpoint.interval, "30s");
        assert_eq!(sm.spec.selector.match_labels.unwrap()["app.kubernetes.io/component"], "watch");
        for unwanted in [Some(false), None] {
            spec.service_monitor.enabled = unwanted;
            assert!(service_monitors(&spec).is_empty(), "{unwanted:?}");
        }
        spec.service_monitor.enabled = Some(true);
        assert_eq!(service_monitors(&spec).len(), 3);
    }

    #[test]
    fn monitors_keep_the_metrics_namespace_label_and_carry_the_extra_labels() {
        let mut spec = KubeDevopsInstallSpec::default();
        spec.service_monitor.labels.insert("release".into(), "kube-prometheus-stack".into());
        for component in Component::ALL {
            let sm = service_monitor(&spec, component);
            assert!(sm.spec.endpoints[0].honor_labels, "{component:?}");
            let labels = sm.metadata.labels.unwrap();
            assert_eq!(labels["release"], "kube-prometheus-stack");
            assert_eq!(labels["app.kubernetes.io/name"], "kube-devops");
        }
    }
}
