//! An installation in a namespace other than `kube-devops`: the bootstrap operator installs the
//! components into the namespace it runs in, because that is where OLM grants its namespaced
//! permissions (the CSV's `permissions` become a Role in the namespace the operator is
//! installed in, whatever install mode). [`relocate`] moves the objects the other functions of
//! this module build for `kube-devops` there, with every reference to the namespace: the
//! bindings' ServiceAccount subjects, the webhook's Service reference and its own exclusion
//! from the webhook, the ServiceMonitors' namespace and TLS server name. The Namespace object
//! is left out: the namespace exists (the operator runs in it) and is the platform's to label.

use super::{NAMESPACE, Object};

/// `objects`, built for `kube-devops`, as they are in `namespace`.
pub fn relocate(objects: Vec<Object>, namespace: &str) -> Vec<Object> {
    if namespace == NAMESPACE {
        return objects;
    }
    let moved = |name: &mut String| {
        if name == NAMESPACE {
            *name = namespace.to_string();
        }
    };
    let mut relocated = Vec::with_capacity(objects.len());
    for mut object in objects {
        if let Some(ns) = object.meta_mut().namespace.as_mut() {
            moved(ns);
        }
        match &mut object {
            Object::Namespace(_) => continue,
            Object::ClusterRoleBinding(binding) => {
                binding.subjects.iter_mut().flatten().filter_map(|s| s.namespace.as_mut()).for_each(moved);
            }
            Object::RoleBinding(binding) => {
                binding.subjects.iter_mut().flatten().filter_map(|s| s.namespace.as_mut()).for_each(moved);
            }
            Object::ValidatingWebhookConfiguration(configuration) => {
                for webhook in configuration.webhooks.iter_mut().flatten() {
                    if let Some(service) = webhook.client_config.service.as_mut() {
                        moved(&mut service.namespace);
                    }
                    let selector = webhook.namespace_selector.iter_mut().flat_map(|s| s.match_expressions.iter_mut());
                    for requirement in selector.flatten() {
                        requirement.values.iter_mut().flatten().for_each(moved);
                    }
                }
            }
            Object::ServiceMonitor(monitor) => {
                monitor.spec.namespace_selector.iter_mut().for_each(|s| s.match_names.iter_mut().for_each(moved));
                for tls in monitor.spec.endpoints.iter_mut().filter_map(|e| e.tls_config.as_mut()) {
                    let suffix = format!(".{NAMESPACE}.svc");
                    if let Some(service) = tls.server_name.strip_suffix(&suffix) {
                        tls.server_name = format!("{service}.{namespace}.svc");
                    }
                }
            }
            _ => {}
        }
        relocated.push(object);
    }
    relocated
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::KubeDevopsInstallSpec;
    use crate::manifests::{WebhookTls, all, resolve};

    fn installation() -> Vec<Object> {
        let mut spec = KubeDevopsInstallSpec::default();
        spec.service_monitor.enabled = Some(true);
        let apis = crate::manifests::ClusterApis { service_monitors: true, policy_reports: false, assigns_ids: false };
        all(&resolve(&spec, apis), &WebhookTls::placeholder())
    }

    #[test]
    fn nothing_refers_to_kube_devops_as_a_namespace_once_relocated() {
        let objects = relocate(installation(), "team-a");
        assert!(objects.iter().all(|o| o.kind() != "Namespace"), "the namespace is not the installation's");
        let text = serde_json::to_string(&objects).unwrap();
        for reference in ["\"namespace\":\"kube-devops\"", ".kube-devops.svc", "\"matchNames\":[\"kube-devops\"]"] {
            assert!(!text.contains(reference), "{reference} left over");
        }
        for reference in ["\"namespace\":\"team-a\"", "kube-devops-webhook.team-a.svc", "\"matchNames\":[\"team-a\"]"] {
            assert!(text.contains(reference), "{reference} missing");
        }
        // Cluster-scoped objects keep their names (one installation per cluster).
        let webhook = objects.iter().find(|o| o.kind() == "ValidatingWebhookConfiguration").unwrap();
        assert_eq!((webhook.name(), webhook.namespace()), ("kube-devops-webhook", None));
        let Object::ValidatingWebhookConfiguration(configuration) = webhook else { unreachable!() };
        let excluded = &configuration.webhooks.as_ref().unwrap()[0].namespace_selector.as_ref().unwrap();
        let names = excluded.match_expressions.as_ref().unwrap()[0].values.clone().unwrap();
        assert!(names.contains(&"team-a".to_string()) && names.contains(&"kube-system".to_string()), "{names:?}");
    }

    #[test]
    fn the_default_namespace_changes_nothing() {
        assert_eq!(relocate(installation(), NAMESPACE), installation());
    }
}
