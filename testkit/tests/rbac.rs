//! Authentication and RBAC as a service account experiences them.

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use testkit::harness::TestCluster;

fn role(verbs: &[&str]) -> Role {
    serde_json::from_value(json!({"metadata": {"name": "reader", "namespace": "default"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": verbs}]}))
    .unwrap()
}

#[tokio::test]
async fn a_service_account_is_refused_what_its_role_lacks_until_the_role_grants_it() {
    let cluster = TestCluster::stand_in();
    let admin = cluster.client().await;
    let roles: Api<Role> = Api::namespaced(admin.clone(), "default");
    roles.create(&PostParams::default(), &role(&["get"])).await.unwrap();
    let binding: RoleBinding = serde_json::from_value(json!({"metadata": {"name": "reader", "namespace": "default"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "app", "namespace": "default"}]}))
    .unwrap();
    Api::<RoleBinding>::namespaced(admin.clone(), "default").create(&PostParams::default(), &binding).await.unwrap();

    let sa = cluster.client_for(&cluster.service_account_kubeconfig("default", "app")).await;
    let cms: Api<ConfigMap> = Api::namespaced(sa, "default");
    match cms.list(&ListParams::default()).await {
        Err(kube::Error::Api(e)) => {
            assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
            assert!(e.message.contains("User \"system:serviceaccount:default:app\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"default\""), "{}", e.message);
        }
        other => panic!("expected 403, got {other:?}"),
    }
    let mut granted = roles.get("reader").await.unwrap();
    granted.rules = role(&["get", "list"]).rules;
    roles.replace("reader", &PostParams::default(), &granted).await.unwrap();
    assert!(cms.list(&ListParams::default()).await.is_ok());
    let denied: Vec<_> = cluster.requests().into_iter().filter(|r| r.code == 403).collect();
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0].user, "system:serviceaccount:default:app");
}

#[tokio::test]
async fn kubectl_shows_the_denial_and_unknown_tokens_are_401() {
    let cluster = TestCluster::stand_in();
    let kubeconfig = cluster.service_account_kubeconfig("default", "nobody");
    let out = cluster.kubectl_as(&kubeconfig, &["get", "configmaps"], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is forbidden: User \"system:serviceaccount:default:nobody\" cannot list resource \"configmaps\""),
        "{err}"
    );
    let bad = std::fs::read_to_string(&kubeconfig).unwrap().replace("token: ", "token: x");
    let bad_path = kubeconfig.with_extension("bad");
    std::fs::write(&bad_path, bad).unwrap();
    let out = cluster.kubectl_as(&bad_path, &["get", "configmaps"], None);
    assert!(String::from_utf8_lossy(&out.stderr).contains("Unauthorized"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn granting_more_than_one_holds_is_refused() {
    let cluster = TestCluster::stand_in();
    let admin = cluster.client().await;
    // The service account may manage roles but holds no configmap permissions itself.
    let manage: Role = serde_json::from_value(json!({"metadata": {"name": "role-admin", "namespace": "default"},
        "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["create", "get"]}]}))
    .unwrap();
    Api::<Role>::namespaced(admin.clone(), "default").create(&PostParams::default(), &manage).await.unwrap();
    let binding: RoleBinding =
        serde_json::from_value(json!({"metadata": {"name": "role-admin", "namespace": "default"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "role-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "ops", "namespace": "default"}]}))
        .unwrap();
    Api::<RoleBinding>::namespaced(admin, "default").create(&PostParams::default(), &binding).await.unwrap();
    let ops = cluster.client_for(&cluster.service_account_kubeconfig("default", "ops")).await;
    match Api::<Role>::namespaced(ops, "default").create(&PostParams::default(), &role(&["get"])).await {
        Err(kube::Error::Api(e)) => {
            assert_eq!(e.code, 403);
            assert!(e.message.contains("attempting to grant RBAC permissions not currently held"), "{}", e.message);
        }
        other => panic!("expected an escalation refusal, got {other:?}"),
    }
}

/// Server-side apply authorizes a create with the object's name (the URL carries it), so
/// `create` limited by `resourceNames` lets an installer create exactly its own objects,
/// while a POST (no name in the URL) and an apply of another name are refused.
#[tokio::test]
async fn an_apply_that_creates_needs_create_which_resource_names_can_limit() {
    use kube::api::{Patch, PatchParams};
    let cluster = TestCluster::stand_in();
    let admin = cluster.client().await;
    let named: Role = serde_json::from_value(json!({"metadata": {"name": "installer", "namespace": "default"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["mine"],
                   "verbs": ["get", "create", "patch"]}]}))
    .unwrap();
    Api::<Role>::namespaced(admin.clone(), "default").create(&PostParams::default(), &named).await.unwrap();
    let binding: RoleBinding =
        serde_json::from_value(json!({"metadata": {"name": "installer", "namespace": "default"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "installer"},
        "subjects": [{"kind": "ServiceAccount", "name": "installer", "namespace": "default"}]}))
        .unwrap();
    Api::<RoleBinding>::namespaced(admin.clone(), "default").create(&PostParams::default(), &binding).await.unwrap();
    let sa = cluster.client_for(&cluster.service_account_kubeconfig("default", "installer")).await;
    let cms: Api<ConfigMap> = Api::namespaced(sa, "default");
    let apply = PatchParams::apply("installer");
    let cm =
        |name: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "1"}});

    cms.patch("mine", &apply, &Patch::Apply(cm("mine"))).await.expect("apply creates the named object");
    cms.patch(
        "mine",
        &apply,
        &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "mine"}, "data": {"a": "2"}})),
    )
    .await
    .expect("apply updates it");
    let refused = |r: Result<ConfigMap, kube::Error>| match r {
        Err(kube::Error::Api(e)) => e,
        other => panic!("expected 403, got {other:?}"),
    };
    let other = refused(cms.patch("other", &apply, &Patch::Apply(cm("other"))).await);
    assert_eq!(other.code, 403);
    assert!(other.message.contains("configmaps \"other\" is forbidden"), "{}", other.message);
    let posted: ConfigMap = serde_json::from_value(cm("mine2")).unwrap();
    assert_eq!(refused(cms.create(&PostParams::default(), &posted).await).code, 403);

    // With patch alone (no create), an apply may change the object but not create one.
    let mut patch_only = named.clone();
    patch_only.rules.as_mut().unwrap()[0].verbs = vec!["get".into(), "patch".into()];
    patch_only.rules.as_mut().unwrap()[0].resource_names = Some(vec!["mine".into(), "new".into()]);
    Api::<Role>::namespaced(admin.clone(), "default")
        .patch("installer", &PatchParams::default(), &Patch::Merge(json!({"rules": patch_only.rules})))
        .await
        .unwrap();
    let e = refused(cms.patch("new", &apply, &Patch::Apply(cm("new"))).await);
    assert!(e.message.contains("cannot create resource \"configmaps\""), "{}", e.message);
    cms.patch("mine", &apply, &Patch::Apply(cm("mine"))).await.expect("patching an existing object needs no create");
    assert!(Api::<ConfigMap>::namespaced(admin, "default").get_opt("new").await.unwrap().is_none());
}

/// As the real RBAC storage: an update that changes only ownerReferences and finalizers (what
/// an owner or the garbage collector writes) is no escalation, whatever the role grants.
#[tokio::test]
async fn owner_references_and_finalizers_of_a_role_can_change_without_holding_what_it_grants() {
    let cluster = TestCluster::stand_in();
    let admin = cluster.client().await;
    let roles = Api::<Role>::namespaced(admin.clone(), "default");
    roles.create(&PostParams::default(), &role(&["get", "list"])).await.unwrap();
    let manage: Role = serde_json::from_value(json!({"metadata": {"name": "role-patcher", "namespace": "default"},
        "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["get", "patch"]}]}))
    .unwrap();
    roles.create(&PostParams::default(), &manage).await.unwrap();
    let binding: RoleBinding =
        serde_json::from_value(json!({"metadata": {"name": "role-patcher", "namespace": "default"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "role-patcher"},
        "subjects": [{"kind": "ServiceAccount", "name": "owner", "namespace": "default"}]}))
        .unwrap();
    Api::<RoleBinding>::namespaced(admin, "default").create(&PostParams::default(), &binding).await.unwrap();
    let owner = Api::<Role>::namespaced(
        cluster.client_for(&cluster.service_account_kubeconfig("default", "owner")).await,
        "default",
    );
    let app: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "app"}})).unwrap();
    let app = Api::<ConfigMap>::namespaced(cluster.client().await, "default")
        .create(&PostParams::default(), &app)
        .await
        .unwrap();
    let gc_fields = json!({"metadata": {"finalizers": ["example.com/keep"],
        "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "app", "uid": app.metadata.uid}]}});
    let patched =
        owner.patch("reader", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(gc_fields)).await.unwrap();
    assert_eq!(patched.metadata.finalizers, Some(vec!["example.com/keep".to_string()]));
    let label = json!({"metadata": {"labels": {"team": "a"}}});
    match owner.patch("reader", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(label)).await {
        Err(kube::Error::Api(e)) => {
            assert!(e.message.contains("attempting to grant RBAC permissions not currently held"), "{}", e.message)
        }
        other => panic!("any other change is checked: {other:?}"),
    }
}
