//! [`Object`]: any object kube-devops ships, typed, so a list of different kinds can be
//! printed as one YAML stream or applied one by one.

use super::monitoring::ServiceMonitor;
use crate::api::{DevOpsPolicy, KubeDevopsInstall};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::Serialize;

macro_rules! objects {
    ($($variant:ident),* $(,)?) => {
        /// One Kubernetes object of any kind kube-devops ships. Serializes as the object itself
        /// (with `apiVersion` and `kind`).
        #[derive(Clone, Debug, PartialEq, Serialize)]
        #[serde(untagged)]
        pub enum Object {
            $($variant(Box<$variant>),)*
        }

        impl Object {
            /// The object's `kind`.
            pub fn kind(&self) -> String {
                match self {
                    $(Object::$variant(_) => <$variant as Resource>::kind(&()).into_owned(),)*
                }
            }

            /// The object's `apiVersion`.
            pub fn api_version(&self) -> String {
                match self {
                    $(Object::$variant(_) => <$variant as Resource>::api_version(&()).into_owned(),)*
                }
            }

            /// The object's metadata.
            pub fn meta(&self) -> &ObjectMeta {
                match self {
                    $(Object::$variant(o) => o.meta(),)*
                }
            }

            /// The object's metadata, to change (owner references, labels).
            pub fn meta_mut(&mut self) -> &mut ObjectMeta {
                match self {
                    $(Object::$variant(o) => o.meta_mut(),)*
                }
            }
        }

        $(
            impl From<$variant> for Object {
                fn from(object: $variant) -> Object {
                    Object::$variant(Box::new(object))
                }
            }
        )*
    };
}

objects!(
    Namespace,
    ServiceAccount,
    ClusterRole,
    ClusterRoleBinding,
    Role,
    RoleBinding,
    Secret,
    ConfigMap,
    Service,
    Deployment,
    PodDisruptionBudget,
    NetworkPolicy,
    ServiceMonitor,
    ValidatingWebhookConfiguration,
    CustomResourceDefinition,
    KubeDevopsInstall,
    DevOpsPolicy,
);

impl Object {
    /// The object's name.
    pub fn name(&self) -> &str {
        self.meta().name.as_deref().unwrap_or_default()
    }

    /// The object's namespace; `None` for cluster-scoped objects.
    pub fn namespace(&self) -> Option<&str> {
        self.meta().namespace.as_deref()
    }

    /// `Kind/name`, for messages.
    pub fn id(&self) -> String {
        format!("{}/{}", self.kind(), self.name())
    }
}

/// `(group, resource)` of each kind an installation consists of, as RBAC names them.
pub fn group_resource(kind: &str) -> (&'static str, &'static str) {
    match kind {
        "Namespace" => ("", "namespaces"),
        "ServiceAccount" => ("", "serviceaccounts"),
        "Secret" => ("", "secrets"),
        "ConfigMap" => ("", "configmaps"),
        "Service" => ("", "services"),
        "ClusterRole" => ("rbac.authorization.k8s.io", "clusterroles"),
        "ClusterRoleBinding" => ("rbac.authorization.k8s.io", "clusterrolebindings"),
        "Role" => ("rbac.authorization.k8s.io", "roles"),
        "RoleBinding" => ("rbac.authorization.k8s.io", "rolebindings"),
        "Deployment" => ("apps", "deployments"),
        "PodDisruptionBudget" => ("policy", "poddisruptionbudgets"),
        "NetworkPolicy" => ("networking.k8s.io", "networkpolicies"),
        "ServiceMonitor" => ("monitoring.coreos.com", "servicemonitors"),
        "ValidatingWebhookConfiguration" => ("admissionregistration.k8s.io", "validatingwebhookconfigurations"),
        other => panic!("kube-devops installs no {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_serialize_with_api_version_and_kind() {
        let ns =
            Namespace { metadata: ObjectMeta { name: Some("x".into()), ..Default::default() }, ..Default::default() };
        let object = Object::from(ns);
        assert_eq!(object.kind(), "Namespace");
        assert_eq!(object.api_version(), "v1");
        assert_eq!(object.id(), "Namespace/x");
        assert_eq!(object.namespace(), None);
        let json = serde_json::to_value(&object).unwrap();
        assert_eq!(json["apiVersion"], "v1");
        assert_eq!(json["kind"], "Namespace");
        assert_eq!(json["metadata"]["name"], "x");
    }
}
