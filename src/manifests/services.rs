//! The components' Services: the metrics endpoint of each (what the ServiceMonitors scrape),
//! and for the webhook also the admission endpoint the API server calls.

use super::Component;
use super::deployments::pod_selector;
use super::labels::namespaced_meta;
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The ClusterIP Service of one component.
pub fn service(component: Component) -> Service {
    Service {
        metadata: namespaced_meta(&component.object_name(), component.name()),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(pod_selector(component)),
            ports: Some(vec![ServicePort {
                name: Some(component.service_port_name().into()),
                port: component.service_port(),
                target_port: Some(IntOrString::String(component.port_name().into())),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The DNS names a client inside the cluster can reach a Service by; the webhook's serving
/// certificate covers all of them.
pub fn dns_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        service.to_string(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_route_to_the_named_container_port_of_one_component() {
        for (component, port, name) in [
            (Component::Watch, 8080, "metrics"),
            (Component::Reconcile, 9090, "metrics"),
            (Component::Webhook, 443, "https"),
        ] {
            let spec = service(component).spec.unwrap();
            let p = &spec.ports.unwrap()[0];
            assert_eq!((p.port, p.name.as_deref()), (port, Some(name)));
            assert_eq!(p.target_port, Some(IntOrString::String(component.port_name().into())));
            assert_eq!(spec.selector.unwrap()["app.kubernetes.io/component"], component.name());
        }
    }
}
