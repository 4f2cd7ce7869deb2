//! The bootstrap operator (`kube-devops operator`): reconciles the cluster-scoped
//! KubeDevopsInstall `default` into the whole installation, built by [`crate::manifests`] and
//! written with server-side apply, and reports how it is doing in the install's status.
//!
//! This module is the pure part: what to apply ([`desired`]), what to delete when a part is
//! switched off ([`obsolete`]), whether the webhook's certificate can be kept
//! ([`reusable_tls`]), and the status ([`status`]). [`controller`] is the shell.

pub mod apply;
pub mod controller;

use crate::api::install::{ComponentStatus, ComponentsStatus, IntegrationState, IntegrationStatus};
use crate::api::{KubeDevopsInstall, KubeDevopsInstallSpec, KubeDevopsInstallStatus};
use crate::manifests::relocate::relocate;
use crate::manifests::{self, ClusterApis, Component, Object, WebhookTls, webhook};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Resource;
use openssl::pkey::PKey;
use openssl::x509::X509;

/// The field manager of everything the operator applies.
pub const FIELD_MANAGER: &str = "kube-devops-operator";
/// The Lease the operator's replicas elect their leader with.
pub const LEASE_NAME: &str = "kube-devops-operator";
/// A kept certificate must stay valid at least this long (then a new one is minted).
const RENEW_BEFORE: SignedDuration = SignedDuration::from_hours(30 * 24);

/// Names an object to delete.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    pub fn of(object: &Object) -> ObjectRef {
        ObjectRef {
            api_version: object.api_version(),
            kind: object.kind(),
            namespace: object.namespace().map(String::from),
            name: object.name().to_string(),
        }
    }
}

/// The installation `install` describes on a cluster serving `apis`. Every object but the
/// namespace is owned by the install, so deleting it removes the installation (garbage
/// collection); the namespace is left alone, since it also holds the operator and whatever
/// else its users put there.
pub fn desired(install: &KubeDevopsInstall, tls: &WebhookTls, apis: ClusterApis, namespace: &str) -> Vec<Object> {
    let owner = install.controller_owner_ref(&());
    let mut objects = relocate(manifests::all(&manifests::resolve(&install.spec, apis), tls), namespace);
    for object in objects.iter_mut().filter(|o| !matches!(o, Object::Namespace(_))) {
        object.meta_mut().owner_references = owner.clone().map(|o| vec![o]);
    }
    objects
}

/// Objects an installation can have that `spec` leaves out on a cluster serving `apis` (a
/// component, the ServiceMonitors, the dashboard, PodDisruptionBudgets switched off or not
/// needed): what to delete. Nothing of an API the cluster does not serve can exist.
pub fn obsolete(spec: &KubeDevopsInstallSpec, apis: ClusterApis, namespace: &str) -> Vec<ObjectRef> {
    let mut everything = spec.clone();
    for component in [&mut everything.watch.enabled, &mut everything.reconcile.enabled, &mut everything.webhook.enabled]
    {
        *component = true;
    }
    everything.service_monitor.enabled = Some(apis.service_monitors);
    everything.grafana_dashboard.enabled = true;
    everything.pdb.enabled = true;
    everything.network_policy.enabled = true;
    everything.dashboard.enabled = true;
    // PodDisruptionBudgets exist only above minAvailable replicas.
    everything.replicas = everything.pdb.min_available + 1;
    (everything.watch.replicas, everything.reconcile.replicas, everything.webhook.replicas) = (None, None, None);
    let placeholder = WebhookTls::placeholder();
    let refs = |objects: Vec<Object>| relocate(objects, namespace).iter().map(ObjectRef::of).collect::<Vec<_>>();
    let wanted = refs(manifests::all(&manifests::resolve(spec, apis), &placeholder));
    refs(manifests::all(&everything, &placeholder)).into_iter().filter(|o| !wanted.contains(o)).collect()
}

/// The integrations' part of the status: whether the ServiceMonitors are installed, and why
/// not.
pub fn integrations(spec: &KubeDevopsInstallSpec, apis: ClusterApis) -> Vec<IntegrationStatus> {
    let api = ClusterApis::SERVICE_MONITOR_API;
    let (state, message) = match (spec.service_monitor.enabled, apis.service_monitors) {
        (Some(false), _) => (IntegrationState::Disabled, "spec.serviceMonitor.enabled is false".to_string()),
        (_, true) => (IntegrationState::Active, format!("the cluster serves {api} ServiceMonitor")),
        (None, false) => (
            IntegrationState::Skipped,
            format!(
                "the cluster does not serve {api} ServiceMonitor (the Prometheus Operator's CRDs are not \
                 installed): they are created when it does"
            ),
        ),
        (Some(true), false) => (
            IntegrationState::Missing,
            format!(
                "spec.serviceMonitor.enabled is true, but the cluster does not serve {api} ServiceMonitor: \
                 install the Prometheus Operator's CRDs, or unset it to create them only when they are there"
            ),
        ),
    };
    vec![IntegrationStatus { name: "serviceMonitors".into(), state, message }, policy_reports(spec, apis)]
}

/// Whether the reconcile operator can keep PolicyReports: switched on, and the cluster serves
/// their API. On without the API is Missing: the install is Degraded (see [`missing_apis`]).
fn policy_reports(spec: &KubeDevopsInstallSpec, apis: ClusterApis) -> IntegrationStatus {
    let api = ClusterApis::POLICY_REPORT_API;
    let (state, message) = match (spec.policy_reports.enabled, apis.policy_reports) {
        (false, _) => (IntegrationState::Disabled, "spec.policyReports.enabled is false".to_string()),
        (true, true) => (
            IntegrationState::Active,
            format!("the reconcile operator keeps a {api} PolicyReport in each namespace with DevOpsPolicies"),
        ),
        (true, false) => (IntegrationState::Missing, missing_policy_reports_message()),
    };
    IntegrationStatus { name: "policyReports".into(), state, message }
}

fn missing_policy_reports_message() -> String {
    format!(
        "spec.policyReports.enabled is true, but the cluster does not serve {} PolicyReport: install its CRD \
         (Kyverno and Policy Reporter ship it); reports are written as soon as it is there",
        ClusterApis::POLICY_REPORT_API
    )
}

/// What the spec asks for that the cluster's APIs cannot give, besides objects that fail to
/// apply: problems that degrade the install until a CRD appears.
pub fn missing_apis(spec: &KubeDevopsInstallSpec, apis: ClusterApis) -> Vec<String> {
    let mut missing = Vec::new();
    if spec.policy_reports.enabled && !apis.policy_reports {
        missing.push(missing_policy_reports_message());
    }
    missing
}

/// The certificate in the webhook's Secret, when it can stay: CA, certificate and key all
/// there, the certificate signed by the CA, matching the key, naming every DNS name of the
/// webhook Service, and valid for at least 30 more days at `now`.
pub fn reusable_tls(secret: &Secret, now: Timestamp, namespace: &str) -> Option<WebhookTls> {
    let data = secret.data.as_ref()?;
    let text = |key: &str| String::from_utf8(data.get(key)?.0.clone()).ok();
    let (ca_crt, tls_crt, tls_key) = (text("ca.crt")?, text("tls.crt")?, text("tls.key")?);
    let ca = X509::from_pem(ca_crt.as_bytes()).ok()?;
    let cert = X509::from_pem(tls_crt.as_bytes()).ok()?;
    let key = PKey::private_key_from_pem(tls_key.as_bytes()).ok()?;
    let ca_key = ca.public_key().ok()?;
    let signed_by_ca = cert.verify(&ca_key).ok()?;
    if !signed_by_ca || !cert.public_key().ok()?.public_eq(&key) {
        return None;
    }
    let names: Vec<String> = cert.subject_alt_names()?.iter().filter_map(|n| n.dnsname().map(String::from)).collect();
    if !webhook::certificate_dns_names_in(namespace).iter().all(|n| names.contains(n)) {
        return None;
    }
    let renew_by = openssl::asn1::Asn1Time::from_unix((now + RENEW_BEFORE).as_second() as _).ok()?;
    if cert.not_after() < renew_by || ca.not_after() < renew_by {
        return None;
    }
    let not_after = secret.metadata.annotations.as_ref()?.get(webhook::NOT_AFTER_ANNOTATION)?.clone();
    Some(WebhookTls { ca_crt, tls_crt, tls_key, not_after })
}

/// `new` with the CA of the `previous` Secret added to its CA bundle while that CA is still
/// valid (see [`WebhookTls::with_previous_ca`]).
pub fn with_previous_ca(new: WebhookTls, previous: Option<&Secret>, now: Timestamp) -> WebhookTls {
    let previous_ca = previous.and_then(|s| s.data.as_ref()?.get("ca.crt")).map(|pem| pem.0.as_slice());
    new.with_previous_ca(previous_ca, now)
}

/// The install's status: replicas of each enabled component, the version they all run, and
/// the conditions
/// Available (every enabled component has all its replicas ready), Progressing (a component
/// is still rolling out) and Degraded (`problem`: the last reconcile could not apply
/// everything). A condition keeps its lastTransitionTime while its status stays.
pub fn status(
    install: &KubeDevopsInstall,
    deployments: &[Deployment],
    problem: Option<&str>,
    apis: ClusterApis,
    now: Timestamp,
) -> KubeDevopsInstallStatus {
    let generation = install.metadata.generation;
    let mut components = ComponentsStatus::default();
    let (mut not_ready, mut rolling) = (Vec::new(), Vec::new());
    let wanted_image = install.spec.image.reference();
    for component in manifests::enabled_components(&install.spec) {
        let desired = manifests::settings(&install.spec, component).replicas;
        let deployment = deployments.iter().find(|d| d.metadata.name.as_deref() == Some(&component.object_name()));
        let state = deployment.and_then(|d| d.status.as_ref());
        let ready = state.and_then(|s| s.ready_replicas).unwrap_or(0);
        let updated = state.and_then(|s| s.updated_replicas).unwrap_or(0);
        // Pods of the old ReplicaSet still around (a rollout surges, then scales the old down).
        let total = state.and_then(|s| s.replicas).unwrap_or(0);
        let observed = state.and_then(|s| s.observed_generation) >= deployment.and_then(|d| d.metadata.generation);
        if ready < desired {
            not_ready.push(format!("{} {ready}/{desired} ready", component.name()));
        }
        // Until the operator's change of the image is applied, the Deployment is not up to date
        // however settled it looks.
        let image = deployment.and_then(|d| d.spec.as_ref()?.template.spec.as_ref()?.containers.first()?.image.clone());
        let current = image.as_deref() == Some(wanted_image.as_str());
        if deployment.is_none() || !current || !observed || updated < desired || ready < desired || total > desired {
            rolling.push(component.name());
        }
        let slot = match component {
            Component::Watch => &mut components.watch,
            Component::Reconcile => &mut components.reconcile,
            Component::Webhook => &mut components.webhook,
        };
        *slot = Some(ComponentStatus { desired_replicas: desired, ready_replicas: ready });
    }
    let old = install.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
    let condition = |kind: &str, on: bool, reason: &str, message: String| {
        crate::api::condition::condition(old, kind, on, reason, message, generation, now)
    };
    let conditions = vec![
        if not_ready.is_empty() {
            condition("Available", true, "ReplicasReady", "every enabled component has its replicas ready".into())
        } else {
            condition("Available", false, "ReplicasNotReady", not_ready.join(", "))
        },
        if rolling.is_empty() {
            condition("Progressing", false, "Reconciled", "every component is up to date".into())
        } else {
            condition("Progressing", true, "RollingOut", format!("rolling out: {}", rolling.join(", ")))
        },
        match problem {
            Some(problem) => condition("Degraded", true, "ApplyFailed", problem.into()),
            None => condition("Degraded", false, "AsExpected", "every object is applied".into()),
        },
    ];
    KubeDevopsInstallStatus {
        conditions,
        observed_generation: generation,
        // The version every component runs: the new one once the last rollout has finished,
        // until then the one before.
        version: match rolling.is_empty() {
            true => Some(install.spec.image.version()),
            false => install.status.as_ref().and_then(|s| s.version.clone()),
        },
        components,
        integrations: integrations(&install.spec, apis),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::INSTALL_NAME;
    use crate::api::install::ImageSpec;
    use crate::manifests::NAMESPACE;
    use k8s_openapi::ByteString;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
    use serde_json::json;

    fn install(spec: serde_json::Value) -> KubeDevopsInstall {
        let mut install: KubeDevopsInstall = serde_json::from_value(json!({
            "apiVersion": "devops.stochastic.io/v1alpha1", "kind": "KubeDevopsInstall",
            "metadata": {"name": INSTALL_NAME, "uid": "u-1", "generation": 3}, "spec": spec}))
        .unwrap();
        install.metadata.generation = Some(3);
        install
    }

    fn deployment(name: &str, replicas: i32, ready: i32) -> Deployment {
        running(name, replicas, ready, &ImageSpec::default().reference())
    }

    /// A Deployment of `image` whose rollout has finished, with `ready` replicas ready.
    fn running(name: &str, replicas: i32, ready: i32, image: &str) -> Deployment {
        serde_json::from_value(json!({"metadata": {"name": name, "generation": 1},
            "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "c", "image": image}]}}},
            "status": {"observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas, "readyReplicas": ready}}))
        .unwrap()
    }

    #[test]
    fn everything_but_the_namespace_is_owned_by_the_install() {
        let tls = webhook::generate_tls().unwrap();
        let objects = desired(&install(json!({})), &tls, SERVED, NAMESPACE);
        assert!(objects.iter().any(|o| o.kind() == "ValidatingWebhookConfiguration"));
        assert!(objects.iter().any(|o| o.kind() == "ServiceMonitor"));
        for object in &objects {
            let owners = object.meta().owner_references.clone().unwrap_or_default();
            if object.kind() == "Namespace" {
                assert!(owners.is_empty());
            } else {
                assert_eq!(owners.len(), 1, "{}", object.id());
                assert_eq!((owners[0].kind.as_str(), owners[0].uid.as_str()), ("KubeDevopsInstall", "u-1"));
                assert_eq!(owners[0].controller, Some(true));
            }
        }
    }

    const SERVED: ClusterApis = ClusterApis { service_monitors: true, policy_reports: true, assigns_ids: false };
    const NOT_SERVED: ClusterApis = ClusterApis { service_monitors: false, policy_reports: false, assigns_ids: false };

    #[test]
    fn switching_parts_off_makes_their_objects_obsolete() {
        let dashboard = |spec| -> Vec<String> {
            obsolete(&install(spec).spec, SERVED, NAMESPACE).iter().map(|o| format!("{}/{}", o.kind, o.name)).collect()
        };
        // The default installation has everything but the web dashboard.
        assert_eq!(
            dashboard(json!({})),
            [
                "ServiceAccount/kube-devops-dashboard",
                "ClusterRole/kube-devops-dashboard",
                "ClusterRoleBinding/kube-devops-dashboard",
                "Service/kube-devops-dashboard",
                "Deployment/kube-devops-dashboard",
                "NetworkPolicy/kube-devops-dashboard"
            ]
        );
        assert_eq!(dashboard(json!({"dashboard": {"enabled": true}})), Vec::<String>::new());
        let off = install(json!({"watch": {"enabled": false}, "grafanaDashboard": {"enabled": false}, "dashboard": {"enabled": true}})).spec;
        let names: Vec<String> =
            obsolete(&off, SERVED, NAMESPACE).iter().map(|o| format!("{}/{}", o.kind, o.name)).collect();
        assert_eq!(
            names,
            [
                "ConfigMap/kube-devops-grafana-dashboard",
                "Service/kube-devops-watch",
                "Deployment/kube-devops-watch",
                "PodDisruptionBudget/kube-devops-watch",
                "NetworkPolicy/kube-devops-watch",
                "ServiceMonitor/kube-devops-watch"
            ]
        );
        let policies_off = obsolete(&install(json!({"networkPolicy": {"enabled": false}})).spec, SERVED, NAMESPACE);
        assert_eq!(policies_off.iter().filter(|o| o.kind == "NetworkPolicy").count(), 4, "the dashboard's too");
        let webhook_off = obsolete(&install(json!({"webhook": {"enabled": false}})).spec, SERVED, NAMESPACE);
        assert!(webhook_off.iter().any(|o| o.kind == "ValidatingWebhookConfiguration"));
        assert!(webhook_off.iter().any(|o| o.kind == "Secret"));
        let single = obsolete(&install(json!({"replicas": 1})).spec, SERVED, NAMESPACE);
        assert_eq!(single.iter().filter(|o| o.kind == "PodDisruptionBudget").count(), 3, "one replica: no PDB");
        // ServiceMonitors switched off go; where the cluster has none, there is nothing to delete.
        let monitors_off = obsolete(&install(json!({"serviceMonitor": {"enabled": false}})).spec, SERVED, NAMESPACE);
        assert_eq!(monitors_off.iter().filter(|o| o.kind == "ServiceMonitor").count(), 3);
        let everything = json!({"serviceMonitor": {"enabled": false}, "dashboard": {"enabled": true}});
        assert_eq!(obsolete(&install(everything).spec, NOT_SERVED, NAMESPACE), []);
        assert_eq!(obsolete(&install(json!({"dashboard": {"enabled": true}})).spec, NOT_SERVED, NAMESPACE), []);
    }

    #[test]
    fn service_monitors_are_installed_when_served_unless_switched_off_and_the_status_says_why() {
        let tls = WebhookTls::placeholder();
        let monitors = |spec, apis| {
            desired(&install(spec), &tls, apis, NAMESPACE).iter().filter(|o| o.kind() == "ServiceMonitor").count()
        };
        let state = |spec, apis| integrations(&install(spec).spec, apis)[0].state;
        let automatic = json!({});
        assert_eq!(
            (monitors(automatic.clone(), SERVED), state(automatic.clone(), SERVED)),
            (3, IntegrationState::Active)
        );
        assert_eq!(
            (monitors(automatic.clone(), NOT_SERVED), state(automatic, NOT_SERVED)),
            (0, IntegrationState::Skipped)
        );
        let always = json!({"serviceMonitor": {"enabled": true}});
        assert_eq!((monitors(always.clone(), NOT_SERVED), state(always, NOT_SERVED)), (3, IntegrationState::Missing));
        let never = json!({"serviceMonitor": {"enabled": false}});
        assert_eq!((monitors(never.clone(), SERVED), state(never, SERVED)), (0, IntegrationState::Disabled));
        let skipped = &integrations(&install(json!({})).spec, NOT_SERVED)[0];
        assert_eq!(skipped.name, "serviceMonitors");
        assert!(skipped.message.contains("monitoring.coreos.com/v1"), "{}", skipped.message);
    }

    #[test]
    fn policy_reports_are_off_by_default_and_missing_without_their_crd() {
        let report = |spec, apis| {
            let spec = install(spec).spec;
            (integrations(&spec, apis)[1].state, missing_apis(&spec, apis).len())
        };
        assert_eq!(report(json!({}), SERVED), (IntegrationState::Disabled, 0));
        let on = json!({"policyReports": {"enabled": true}});
        assert_eq!(report(on.clone(), SERVED), (IntegrationState::Active, 0));
        assert_eq!(report(on.clone(), NOT_SERVED), (IntegrationState::Missing, 1));
        let message = &missing_apis(&install(on).spec, NOT_SERVED)[0];
        assert!(message.contains("wgpolicyk8s.io/v1alpha2"), "{message}");
        // The reconcile operator is told to write them.
        let args = |spec| -> Vec<String> {
            desired(&install(spec), &WebhookTls::placeholder(), SERVED, NAMESPACE)
                .iter()
                .filter_map(|o| match o {
                    Object::Deployment(d) if d.metadata.name.as_deref() == Some("kube-devops-reconcile") => {
                        d.spec.as_ref()?.template.spec.as_ref()?.containers[0].args.clone()
                    }
                    _ => None,
                })
                .flatten()
                .collect()
        };
        assert!(args(json!({"policyReports": {"enabled": true}})).contains(&"--policy-reports".to_string()));
        assert!(!args(json!({})).contains(&"--policy-reports".to_string()));
    }

    fn secret(tls: &WebhookTls) -> Secret {
        webhook::tls_secret(tls)
    }

    #[test]
    fn a_valid_certificate_is_kept_and_anything_else_replaced() {
        let tls = webhook::generate_tls().unwrap();
        let now = Timestamp::now();
        assert_eq!(reusable_tls(&secret(&tls), now, NAMESPACE), Some(tls.clone()));
        // Within 30 days of expiry (certificates last 365 days).
        assert_eq!(reusable_tls(&secret(&tls), now + SignedDuration::from_hours(340 * 24), NAMESPACE), None);
        // Another CA, another key, a certificate for other names, missing keys.
        let other = webhook::generate_tls().unwrap();
        let mixed = WebhookTls { ca_crt: other.ca_crt.clone(), ..tls.clone() };
        assert_eq!(reusable_tls(&secret(&mixed), now, NAMESPACE), None);
        let wrong_key = WebhookTls { tls_key: other.tls_key.clone(), ..tls.clone() };
        assert_eq!(reusable_tls(&secret(&wrong_key), now, NAMESPACE), None);
        let elsewhere = WebhookTls::generate(&["other.default.svc".into()]).unwrap();
        assert_eq!(reusable_tls(&secret(&elsewhere), now, NAMESPACE), None);
        let mut partial = secret(&tls);
        partial.data.as_mut().unwrap().remove("tls.key");
        assert_eq!(reusable_tls(&partial, now, NAMESPACE), None);
        let mut garbage = secret(&tls);
        garbage.data.as_mut().unwrap().insert("tls.crt".into(), ByteString(b"not PEM".to_vec()));
        assert_eq!(reusable_tls(&garbage, now, NAMESPACE), None);
    }

    #[test]
    fn a_renewal_keeps_trusting_the_previous_ca_until_it_expires() {
        let now = Timestamp::now();
        let old = webhook::generate_tls().unwrap();
        let new = webhook::generate_tls().unwrap();
        let bundle = with_previous_ca(new.clone(), Some(&secret(&old)), now);
        let cas = X509::stack_from_pem(bundle.ca_crt.as_bytes()).unwrap();
        assert_eq!(cas.len(), 2);
        assert_eq!(cas[0].to_pem().unwrap(), new.ca_crt.as_bytes(), "the new CA first");
        assert_eq!(cas[1].to_pem().unwrap(), old.ca_crt.as_bytes());
        // The bundle is still a usable certificate set, and the next renewal drops the oldest.
        assert_eq!(reusable_tls(&secret(&bundle), now, NAMESPACE), Some(bundle.clone()));
        let next = with_previous_ca(webhook::generate_tls().unwrap(), Some(&secret(&bundle)), now);
        assert_eq!(X509::stack_from_pem(next.ca_crt.as_bytes()).unwrap().len(), 2);
        // An expired previous CA, or none, adds nothing.
        let later = now + SignedDuration::from_hours(400 * 24);
        assert_eq!(with_previous_ca(new.clone(), Some(&secret(&old)), later), new);
        assert_eq!(with_previous_ca(new.clone(), None, now), new);
    }

    fn condition<'a>(status: &'a KubeDevopsInstallStatus, kind: &str) -> &'a Condition {
        status.conditions.iter().find(|c| c.type_ == kind).unwrap()
    }

    #[test]
    fn the_status_says_what_is_ready_rolling_and_broken() {
        let mut kdi = install(json!({"reconcile": {"enabled": false}}));
        let now = Timestamp::now();
        let rolling = [deployment("kube-devops-watch", 2, 2), deployment("kube-devops-webhook", 2, 1)];
        let status = status(&kdi, &rolling, None, SERVED, now);
        assert_eq!(status.components.webhook, Some(ComponentStatus { desired_replicas: 2, ready_replicas: 1 }));
        assert_eq!(status.components.reconcile, None);
        assert_eq!(status.observed_generation, Some(3));
        let available = condition(&status, "Available");
        assert_eq!((available.status.as_str(), available.message.as_str()), ("False", "webhook 1/2 ready"));
        assert_eq!(condition(&status, "Progressing").status, "True");
        assert_eq!(condition(&status, "Degraded").status, "False");

        kdi.status = Some(status);
        let later = now + SignedDuration::from_secs(60);
        let ready = [deployment("kube-devops-watch", 2, 2), deployment("kube-devops-webhook", 2, 2)];
        let status = super::status(&kdi, &ready, Some("ServiceMonitor/kube-devops-watch: 404"), SERVED, later);
        assert_eq!(condition(&status, "Available").status, "True");
        assert_eq!(condition(&status, "Available").last_transition_time, Time(later), "it changed");
        assert_eq!(condition(&status, "Progressing").status, "False");
        let degraded = condition(&status, "Degraded");
        assert_eq!((degraded.status.as_str(), degraded.reason.as_str()), ("True", "ApplyFailed"));
        kdi.status = Some(status);
        let status = super::status(&kdi, &ready, None, SERVED, later + SignedDuration::from_secs(60));
        assert_eq!(condition(&status, "Available").last_transition_time, Time(later), "unchanged: kept");
        // A surge: the new pods are ready, an old one is still there.
        let mut surging = deployment("kube-devops-webhook", 2, 3);
        surging.status.as_mut().unwrap().replicas = Some(3);
        let status = super::status(&kdi, &[ready[0].clone(), surging], None, SERVED, later);
        assert_eq!(condition(&status, "Progressing").message, "rolling out: webhook");
        // A missing Deployment is neither ready nor up to date.
        let status = super::status(&kdi, &ready[..1], None, SERVED, later);
        assert_eq!(condition(&status, "Available").message, "webhook 0/2 ready");
    }

    #[test]
    fn the_version_is_the_new_one_only_once_every_component_runs_it() {
        let mut kdi = install(json!({}));
        let old = ImageSpec::default().reference();
        let names = ["kube-devops-watch", "kube-devops-reconcile", "kube-devops-webhook"];
        let on = |images: [&str; 3]| names.iter().zip(images).map(|(n, i)| running(n, 2, 2, i)).collect::<Vec<_>>();
        let now = Timestamp::now();
        kdi.status = Some(status(&kdi, &on([&old, &old, &old]), None, SERVED, now));
        assert_eq!(kdi.status.as_ref().unwrap().version.as_deref(), Some(env!("CARGO_PKG_VERSION")));
        // The install asks for v9.0.0: two components run it, the webhook not yet.
        kdi.spec.image.tag = Some("v9.0.0".into());
        let new = kdi.spec.image.reference();
        let halfway = status(&kdi, &on([&new, &new, &old]), None, SERVED, now);
        assert_eq!(halfway.version.as_deref(), Some(env!("CARGO_PKG_VERSION")), "still the old one");
        assert_eq!(condition(&halfway, "Progressing").message, "rolling out: webhook");
        let done = status(&kdi, &on([&new, &new, &new]), None, SERVED, now);
        assert_eq!(done.version.as_deref(), Some("9.0.0"));
        kdi.spec.image.tag = Some("main-4f2a".into());
        assert_eq!(kdi.spec.image.version(), "main-4f2a", "a tag that is no version is shown as it is");
    }
}
