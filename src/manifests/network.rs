//! NetworkPolicies: each component's pods accept connections only on the port they serve
//! (probes, `/metrics`, the webhook's `/validate`) and open connections only to the API
//! server and to DNS.
//!
//! Who connects in cannot be named portably: the API server calls the webhook from the
//! control plane (no pod selector matches it) and Prometheus scrapes from a namespace that
//! differs per cluster, so ingress is limited by port, not by peer. The API server's address
//! is the install's `networkPolicy.apiServerCIDRs` (any address by default) on
//! `networkPolicy.apiServerPorts` (443 and 6443: the Service and the usual direct port).

use super::labels::{namespaced_meta, selector};
use super::{Component, enabled_components};
use crate::api::KubeDevopsInstallSpec;
use crate::api::install::NetworkPolicySpec;
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec as PolicySpec,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Whether `text` is an IPv4 or IPv6 CIDR (`address/prefix`).
pub fn is_cidr(text: &str) -> bool {
    let Some((address, prefix)) = text.split_once('/') else { return false };
    match (address.parse::<std::net::IpAddr>(), prefix.parse::<u8>()) {
        (Ok(std::net::IpAddr::V4(_)), Ok(p)) => p <= 32,
        (Ok(std::net::IpAddr::V6(_)), Ok(p)) => p <= 128,
        _ => false,
    }
}

fn port(number: i32, protocol: &str) -> NetworkPolicyPort {
    NetworkPolicyPort { port: Some(IntOrString::Int(number)), protocol: Some(protocol.into()), ..Default::default() }
}

/// The policy of the pods labelled as `component`, serving on `serving_port`, and sending
/// traces to `otlp_port` (any address: the collector's is not known, only its URL).
pub fn network_policy(
    name: &str,
    component: &str,
    serving_port: i32,
    settings: &NetworkPolicySpec,
    otlp_port: Option<u16>,
) -> NetworkPolicy {
    let api_server = NetworkPolicyEgressRule {
        to: Some(
            settings
                .api_server_cidrs
                .iter()
                .map(|cidr| NetworkPolicyPeer {
                    ip_block: Some(IPBlock { cidr: cidr.clone(), except: None }),
                    ..Default::default()
                })
                .collect(),
        ),
        ports: Some(settings.api_server_ports.iter().map(|p| port(*p, "TCP")).collect()),
    };
    // Any resolver: CoreDNS pods, a node-local cache, OpenShift's DNS (5353 behind its Service).
    let dns = NetworkPolicyEgressRule {
        to: None,
        ports: Some(vec![port(53, "UDP"), port(53, "TCP"), port(5353, "UDP"), port(5353, "TCP")]),
    };
    NetworkPolicy {
        metadata: namespaced_meta(name, component),
        spec: Some(PolicySpec {
            pod_selector: Some(selector(component)),
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            ingress: Some(vec![NetworkPolicyIngressRule { from: None, ports: Some(vec![port(serving_port, "TCP")]) }]),
            egress: Some(
                [api_server, dns]
                    .into_iter()
                    .chain(
                        otlp_port
                            .map(|p| NetworkPolicyEgressRule { to: None, ports: Some(vec![port(p.into(), "TCP")]) }),
                    )
                    .collect(),
            ),
        }),
    }
}

/// The policies of the enabled components; none when `spec.networkPolicy.enabled` is false.
pub fn network_policies(spec: &KubeDevopsInstallSpec) -> Vec<NetworkPolicy> {
    if !spec.network_policy.enabled {
        return Vec::new();
    }
    enabled_components(spec)
        .into_iter()
        .map(|c: Component| {
            network_policy(
                &c.object_name(),
                c.name(),
                c.container_port(),
                &spec.network_policy,
                spec.tracing.otlp_port(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_component_serves_only_its_port_and_reaches_only_the_api_server_and_dns() {
        let spec = KubeDevopsInstallSpec::default();
        let policies = network_policies(&spec);
        assert_eq!(policies.len(), 3);
        let webhook = policies.iter().find(|p| p.metadata.name.as_deref() == Some("kube-devops-webhook")).unwrap();
        let rules = webhook.spec.clone().unwrap();
        assert_eq!(rules.policy_types, Some(vec!["Ingress".to_string(), "Egress".to_string()]));
        assert_eq!(rules.pod_selector, Some(selector("webhook")));
        let ingress = &rules.ingress.unwrap()[0];
        assert_eq!(ingress.ports, Some(vec![port(8443, "TCP")]));
        let egress = rules.egress.unwrap();
        assert_eq!(egress[0].ports, Some(vec![port(443, "TCP"), port(6443, "TCP")]));
        let cidrs: Vec<String> = egress[0].to.iter().flatten().map(|p| p.ip_block.clone().unwrap().cidr).collect();
        assert_eq!(cidrs, ["0.0.0.0/0", "::/0"]);
        assert!(egress[1].ports.as_ref().unwrap().contains(&port(53, "UDP")));
        assert_eq!(egress.len(), 2, "nothing else");
    }

    #[test]
    fn an_otlp_endpoint_opens_its_port_to_every_component() {
        let mut spec = KubeDevopsInstallSpec::default();
        spec.tracing.otlp_endpoint = Some("http://otel-collector.observability:4318".into());
        for policy in network_policies(&spec) {
            let egress = policy.spec.unwrap().egress.unwrap();
            assert_eq!(egress.len(), 3);
            assert_eq!(egress[2], NetworkPolicyEgressRule { to: None, ports: Some(vec![port(4318, "TCP")]) });
        }
        // Without a port, the scheme's.
        spec.tracing.otlp_endpoint = Some("https://traces.example.com/otlp".into());
        assert_eq!(spec.tracing.otlp_port(), Some(443));
        spec.tracing.otlp_endpoint = Some("http://collector".into());
        assert_eq!(spec.tracing.otlp_port(), Some(80));
    }

    #[test]
    fn cidrs_are_checked() {
        for good in ["10.0.0.0/8", "0.0.0.0/0", "::/0", "fd00::1/128"] {
            assert!(is_cidr(good), "{good}");
        }
        for bad in ["10.0.0.0", "10.0.0.0/33", "example.com/8", "::/129", ""] {
            assert!(!is_cidr(bad), "{bad}");
        }
    }

    #[test]
    fn the_api_server_address_can_be_narrowed_and_policies_switched_off() {
        let mut spec = KubeDevopsInstallSpec::default();
        spec.network_policy.api_server_cidrs = vec!["10.0.0.1/32".into()];
        spec.watch.enabled = false;
        let policies = network_policies(&spec);
        assert_eq!(policies.len(), 2);
        let egress = policies[0].spec.clone().unwrap().egress.unwrap();
        assert_eq!(egress[0].to.as_ref().unwrap()[0].ip_block.as_ref().unwrap().cidr, "10.0.0.1/32");
        spec.network_policy.enabled = false;
        assert!(network_policies(&spec).is_empty());
    }
}
