//! The API semantics the project relies on, driven through kube-rs and real kubectl.

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::watcher;
use serde_json::json;
use std::time::Duration;
use testkit::harness::TestCluster;
use testkit::observe::Fault;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}})).unwrap()
}

async fn eventually<F: Fn() -> Fut, Fut: std::future::Future<Output = bool>>(what: &str, f: F) {
    for _ in 0..100 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn a_stale_update_is_a_409_conflict() {
    let cluster = TestCluster::start();
    let api: Api<ConfigMap> = Api::namespaced(cluster.client().await, cluster.namespace());
    let created = api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let mut first = created.clone();
    first.data = Some([("k".to_string(), "1".to_string())].into());
    let updated = api.replace("a", &PostParams::default(), &first).await.unwrap();
    assert_ne!(updated.metadata.resource_version, created.metadata.resource_version);
    let mut stale = created.clone();
    stale.data = Some([("k".to_string(), "2".to_string())].into());
    match api.replace("a", &PostParams::default(), &stale).await {
        Err(kube::Error::Api(e)) => {
            assert_eq!(e.code, 409);
            assert_eq!(e.reason, "Conflict");
        }
        other => panic!("expected 409, got {other:?}"),
    }
}

#[tokio::test]
async fn resource_versions_are_cluster_wide_and_metadata_is_set() {
    let cluster = TestCluster::start();
    let client = cluster.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), cluster.namespace());
    let a = cms.create(&PostParams::default(), &cm("a")).await.unwrap();
    let ns: Api<Namespace> = Api::all(client);
    let n = ns
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": format!("{}-shop", cluster.namespace())}})).unwrap(),
        )
        .await
        .unwrap();
    let rv = |o: &Option<String>| o.as_ref().unwrap().parse::<u64>().unwrap();
    assert!(rv(&n.metadata.resource_version) > rv(&a.metadata.resource_version));
    assert!(a.metadata.uid.is_some() && a.metadata.creation_timestamp.is_some());
    assert_ne!(a.metadata.uid, n.metadata.uid);
}

#[tokio::test]
async fn a_watch_survives_a_dropped_stream_without_missing_an_event() {
    let cluster = TestCluster::start();
    if !cluster.has_hooks("drop_watches") {
        return;
    }
    let api: Api<ConfigMap> = Api::namespaced(cluster.client().await, cluster.namespace());
    let mut events = watcher(api.clone(), watcher::Config::default()).boxed();
    let mut seen = std::collections::BTreeSet::new();
    let writer = api.clone();
    let cluster_ref = &cluster;
    let produce = async move {
        for i in 0..20 {
            writer.create(&PostParams::default(), &cm(&format!("cm-{i}"))).await.unwrap();
            if i % 5 == 4 {
                cluster_ref.drop_watches();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let consume = async {
        while seen.len() < 20 {
            match tokio::time::timeout(Duration::from_secs(20), events.next()).await {
                Ok(Some(Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)))) => {
                    seen.insert(o.metadata.name.unwrap());
                }
                Ok(Some(_)) => {}
                Ok(None) => panic!("watcher ended"),
                Err(_) => panic!("saw only {seen:?}"),
            }
        }
    };
    tokio::join!(produce, consume);
    assert_eq!(seen.len(), 20);
    let watches = cluster.requests().iter().filter(|r| r.verb == "watch").count();
    assert!(watches >= 4, "the watch was resumed after each drop ({watches} watch requests)");
}

#[tokio::test]
async fn a_watch_from_a_compacted_version_gets_410_gone() {
    let cluster = TestCluster::start();
    if !cluster.has_hooks("compact") {
        return;
    }
    let api: Api<ConfigMap> = Api::namespaced(cluster.client().await, cluster.namespace());
    let a = api.create(&PostParams::default(), &cm("a")).await.unwrap();
    api.create(&PostParams::default(), &cm("b")).await.unwrap();
    cluster.compact();
    let rv = a.metadata.resource_version.unwrap();
    let mut stream = api.watch(&WatchParams::default(), &rv).await.unwrap().boxed();
    match stream.next().await {
        Some(Ok(WatchEvent::Error(e))) => assert_eq!(e.code, 410),
        other => panic!("expected a 410 error event, got {other:?}"),
    }
}

#[tokio::test]
async fn lists_page_and_select() {
    let cluster = TestCluster::start();
    let api: Api<ConfigMap> = Api::namespaced(cluster.client().await, cluster.namespace());
    for i in 0..7 {
        let mut c = cm(&format!("cm-{i}"));
        c.metadata.labels = Some([("parity".to_string(), if i % 2 == 0 { "even" } else { "odd" }.to_string())].into());
        api.create(&PostParams::default(), &c).await.unwrap();
    }
    let mut names = Vec::new();
    let mut params = ListParams::default().limit(3);
    let mut pages = 0;
    loop {
        let page = api.list(&params).await.unwrap();
        pages += 1;
        names.extend(page.items.into_iter().map(|c| c.metadata.name.unwrap()));
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = ListParams::default().limit(3).continue_token(&token),
            _ => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names, (0..7).map(|i| format!("cm-{i}")).collect::<Vec<_>>());
    let odd = api.list(&ListParams::default().labels("parity=odd")).await.unwrap();
    assert_eq!(odd.items.len(), 3);
    let one = api.list(&ListParams::default().fields("metadata.name=cm-4")).await.unwrap();
    assert_eq!(one.items.len(), 1);
}

#[tokio::test]
async fn finalizers_hold_deletion_until_they_are_removed() {
    let cluster = TestCluster::start();
    let api: Api<ConfigMap> = Api::namespaced(cluster.client().await, cluster.namespace());
    let mut c = cm("held");
    c.metadata.finalizers = Some(vec!["example.com/hold".into(), "example.com/other".into()]);
    api.create(&PostParams::default(), &c).await.unwrap();
    api.delete("held", &DeleteParams::default()).await.unwrap();
    let held = api.get("held").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    // Removing one finalizer with a JSON patch keeps the other (and the object).
    let patch = json!([{"op": "remove", "path": "/metadata/finalizers/0"}]);
    api.patch("held", &PatchParams::default(), &Patch::<()>::Json(serde_json::from_value(patch).unwrap()))
        .await
        .unwrap();
    assert_eq!(api.get("held").await.unwrap().metadata.finalizers.unwrap(), ["example.com/other"]);
    api.patch("held", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}}))).await.unwrap();
    assert!(api.get_opt("held").await.unwrap().is_none());
}

/// kube-runtime's finalizer helper adds the first finalizer with `test` for null, then `add`:
/// a `test` for null passes on a missing path, as on the real API server; other values fail.
#[tokio::test]
async fn a_json_patch_test_for_null_passes_on_a_missing_path() {
    let cluster = TestCluster::start();
    let api: Api<ConfigMap> = Api::namespaced(cluster.client().await, cluster.namespace());
    api.create(&PostParams::default(), &cm("plain")).await.unwrap();
    let json_patch = |ops: serde_json::Value| Patch::<()>::Json(serde_json::from_value(ops).unwrap());
    let add = json!([{"op": "test", "path": "/metadata/finalizers", "value": null},
                     {"op": "add", "path": "/metadata/finalizers", "value": ["example.com/hold"]}]);
    api.patch("plain", &PatchParams::default(), &json_patch(add.clone())).await.unwrap();
    assert_eq!(api.get("plain").await.unwrap().metadata.finalizers.unwrap(), ["example.com/hold"]);
    // Now the list exists: the same test fails, as it should.
    match api.patch("plain", &PatchParams::default(), &json_patch(add)).await {
        Err(kube::Error::Api(e)) => assert_eq!(e.code, 422),
        other => panic!("expected 422, got {other:?}"),
    }
    let wrong = json!([{"op": "test", "path": "/metadata/nothing", "value": "x"}]);
    assert!(api.patch("plain", &PatchParams::default(), &json_patch(wrong)).await.is_err());
    api.patch("plain", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}})))
        .await
        .unwrap();
}

#[tokio::test]
async fn owned_objects_are_garbage_collected_even_across_scopes() {
    let cluster = TestCluster::start();
    let client = cluster.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), cluster.namespace());
    let owner = cms.create(&PostParams::default(), &cm("owner")).await.unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), cluster.namespace());
    let owned = |name: &str, kind: &str, api_version: &str, owner_name: &str, uid: &str| -> Secret {
        serde_json::from_value(json!({"metadata": {"name": name, "ownerReferences": [
            {"apiVersion": api_version, "kind": kind, "name": owner_name, "uid": uid}]}}))
        .unwrap()
    };
    secrets
        .create(
            &PostParams::default(),
            &owned("dependent", "ConfigMap", "v1", "owner", owner.metadata.uid.as_deref().unwrap()),
        )
        .await
        .unwrap();
    // A cluster-scoped owner of a namespaced object.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let owner_ns = format!("{}-owner", cluster.namespace());
    let ns_owner = namespaces
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": owner_ns}})).unwrap())
        .await
        .unwrap();
    secrets
        .create(
            &PostParams::default(),
            &owned("cluster-owned", "Namespace", "v1", &owner_ns, ns_owner.metadata.uid.as_deref().unwrap()),
        )
        .await
        .unwrap();

    cms.delete("owner", &DeleteParams::default()).await.unwrap();
    eventually("the dependent to be collected", || async { secrets.get_opt("dependent").await.unwrap().is_none() })
        .await;
    assert!(secrets.get_opt("cluster-owned").await.unwrap().is_some());
    namespaces.delete(&owner_ns, &DeleteParams::default()).await.unwrap();
    eventually("the object owned by a namespace to be collected", || async {
        secrets.get_opt("cluster-owned").await.unwrap().is_none()
    })
    .await;
}

#[tokio::test]
async fn deleting_a_namespace_deletes_what_is_in_it() {
    let cluster = TestCluster::start();
    let client = cluster.client().await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let doomed = format!("{}-doomed", cluster.namespace());
    namespaces
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": doomed}})).unwrap())
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &doomed);
    cms.create(&PostParams::default(), &cm("a")).await.unwrap();
    namespaces.delete(&doomed, &DeleteParams::default()).await.unwrap();
    // While terminating, nothing new may be created in it.
    if let Err(kube::Error::Api(e)) = cms.create(&PostParams::default(), &cm("b")).await {
        assert!(e.code == 403 || e.code == 404, "{e:?}");
    }
    eventually("the namespace to go", || async { namespaces.get_opt(&doomed).await.unwrap().is_none() }).await;
    let in_ns = Api::<ConfigMap>::all(client).list(&ListParams::default()).await.unwrap();
    assert!(in_ns.items.iter().all(|c| c.metadata.namespace.as_deref() != Some(doomed.as_str())));
}

#[tokio::test]
async fn invalid_built_in_objects_get_422_and_unknown_fields_are_refused_when_strict() {
    let cluster = TestCluster::start();
    let bad = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: other}}\n    spec:\n      containers: [{name: web, image: 'nginx:1.27'}]\n";
    let out = cluster.kubectl_as(cluster.kubeconfig(), &["apply", "-f", "-"], Some(bad));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is invalid") && err.contains("selector` does not match template `labels"), "{err}");
    let unknown = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\nbogus: 1\n";
    let out = cluster.kubectl_as(cluster.kubeconfig(), &["apply", "-f", "-"], Some(unknown));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown field \"bogus\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let client = cluster.client().await;
    let api: Api<ConfigMap> = Api::namespaced(client, cluster.namespace());
    match api
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "Bad_Name"}})).unwrap())
        .await
    {
        Err(kube::Error::Api(e)) => assert_eq!((e.code, e.reason.as_str()), (422, "Invalid")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn faults_are_injected_and_every_request_is_logged() {
    let cluster = TestCluster::start();
    if !cluster.has_hooks("fault injection and request log") {
        return;
    }
    let api: Api<ConfigMap> = Api::namespaced(cluster.client().await, cluster.namespace());
    // 500, not 503: kube-rs retries 429/503/504 by itself.
    cluster.inject(Fault::error(Some("create"), Some("configmaps"), 500).every(2));
    let results: Vec<bool> = {
        let mut r = Vec::new();
        for i in 0..4 {
            r.push(api.create(&PostParams::default(), &cm(&format!("c{i}"))).await.is_ok());
        }
        r
    };
    assert_eq!(results, [true, false, true, false]);
    let creates: Vec<u16> = cluster
        .requests()
        .iter()
        .filter(|r| r.verb == "create" && r.resource == "configmaps")
        .map(|r| r.code)
        .collect();
    assert_eq!(creates, [201, 500, 201, 500]);
    assert!(cluster.requests().iter().all(|r| r.user == "admin"));
}

/// A fault can target one client among several of the same user by its User-Agent (one
/// replica of a component), and every logged request carries its arrival time.
#[tokio::test]
async fn a_fault_can_target_one_user_agent_and_requests_are_timed() {
    let cluster = TestCluster::start();
    if !cluster.has_hooks("fault injection and request log") {
        return;
    }
    let with_agent = |agent: &'static str| {
        let kubeconfig = cluster.kubeconfig().to_path_buf();
        async move {
            let text = std::fs::read_to_string(kubeconfig).unwrap();
            let kc = kube::config::Kubeconfig::from_yaml(&text).unwrap();
            let mut config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
            config.headers.push((http::header::USER_AGENT, http::HeaderValue::from_static(agent)));
            Api::<ConfigMap>::namespaced(kube::Client::try_from(config).unwrap(), "default")
        }
    };
    let (first, second) = (with_agent("component/replica-1").await, with_agent("component/replica-2").await);
    cluster.inject(Fault::error(Some("create"), Some("configmaps"), 500).from_user_agent("replica-1"));
    let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    assert!(first.create(&PostParams::default(), &cm("one")).await.is_err());
    assert!(second.create(&PostParams::default(), &cm("two")).await.is_ok());
    let creates: Vec<(String, u16, u64)> = cluster
        .requests()
        .into_iter()
        .filter(|r| r.verb == "create")
        .map(|r| (r.user_agent, r.code, r.received_ms))
        .collect();
    assert_eq!(creates.len(), 2);
    assert_eq!((creates[0].0.as_str(), creates[0].1), ("component/replica-1", 500));
    assert_eq!((creates[1].0.as_str(), creates[1].1), ("component/replica-2", 201));
    assert!(creates[0].2 >= started && creates[1].2 >= creates[0].2, "{creates:?}");
}

#[tokio::test]
async fn deletecollection_deletes_what_the_selector_matches() {
    let cluster = TestCluster::start();
    let api: Api<ConfigMap> = Api::namespaced(cluster.client().await, cluster.namespace());
    for (name, tier) in [("a", "web"), ("b", "web"), ("c", "db")] {
        let mut c = cm(name);
        c.metadata.labels = Some([("tier".to_string(), tier.to_string())].into());
        api.create(&PostParams::default(), &c).await.unwrap();
    }
    api.delete_collection(&DeleteParams::default(), &ListParams::default().labels("tier=web")).await.unwrap();
    let left: Vec<String> = api
        .list(&ListParams::default().labels("tier"))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|c| c.metadata.name.unwrap())
        .collect();
    assert_eq!(left, ["c"]);
}

#[tokio::test]
async fn an_owner_waiting_for_its_finalizer_keeps_its_dependents_and_orphan_keeps_them_for_good() {
    let cluster = TestCluster::start();
    let client = cluster.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), cluster.namespace());
    let secrets: Api<Secret> = Api::namespaced(client, cluster.namespace());
    let dependent = |name: &str, owner: &ConfigMap| -> Secret {
        serde_json::from_value(
            json!({"metadata": {"name": name, "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap",
            "name": owner.metadata.name, "uid": owner.metadata.uid}]}}),
        )
        .unwrap()
    };
    let mut held = cm("held");
    held.metadata.finalizers = Some(vec!["example.com/wait".into()]);
    let held = cms.create(&PostParams::default(), &held).await.unwrap();
    secrets.create(&PostParams::default(), &dependent("of-held", &held)).await.unwrap();
    cms.delete("held", &DeleteParams::default()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(secrets.get_opt("of-held").await.unwrap().is_some(), "kept while the owner still exists");
    cms.patch("held", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}}))).await.unwrap();
    eventually("the dependent to go with its owner", || async { secrets.get_opt("of-held").await.unwrap().is_none() })
        .await;

    let parent = cms.create(&PostParams::default(), &cm("parent")).await.unwrap();
    secrets.create(&PostParams::default(), &dependent("orphan", &parent)).await.unwrap();
    cms.delete("parent", &DeleteParams::orphan()).await.unwrap();
    eventually("the parent to go", || async { cms.get_opt("parent").await.unwrap().is_none() }).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let orphan = secrets.get("orphan").await.expect("an orphaned dependent stays");
    assert!(orphan.metadata.owner_references.unwrap_or_default().is_empty());
}

#[tokio::test]
async fn pods_need_their_service_account_and_namespaces_get_a_default_one() {
    let cluster = TestCluster::start();
    let client = cluster.client().await;
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), cluster.namespace());
    let pod = |sa: &str| -> k8s_openapi::api::core::v1::Pod {
        serde_json::from_value(json!({"metadata": {"name": format!("p-{sa}")}, "spec": {"serviceAccountName": sa,
            "containers": [{"name": "c", "image": "nginx:1.27"}]}}))
        .unwrap()
    };
    match pods.create(&PostParams::default(), &pod("missing")).await {
        Err(kube::Error::Api(e)) => {
            assert_eq!(e.code, 403);
            assert!(e.message.contains("error looking up service account"), "{}", e.message);
        }
        other => panic!("{other:?}"),
    }
    assert!(pods.create(&PostParams::default(), &pod("default")).await.is_ok());
}

#[tokio::test]
async fn malformed_requests_are_refused_without_harming_the_server() {
    let cluster = TestCluster::start();
    let api: Api<ConfigMap> = Api::namespaced(cluster.client().await, cluster.namespace());
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let bad = api.patch("a", &PatchParams::default(), &Patch::Merge(json!({"metadata": 5}))).await;
    assert!(matches!(bad, Err(kube::Error::Api(e)) if e.code == 400));
    assert!(api.get("a").await.is_ok(), "the server still answers");
    // A subresource the kind does not have does not exist.
    let status = api.patch_status("a", &PatchParams::default(), &Patch::Merge(json!({"status": {}}))).await;
    assert!(matches!(status, Err(kube::Error::Api(e)) if e.code == 404));
}

/// NetworkPolicies are served (networking.k8s.io/v1) and validated like other built-in kinds.
#[tokio::test]
async fn network_policies_are_served_and_validated() {
    let cluster = TestCluster::start();
    let policy = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: web}\nspec:\n  \
                  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Ingress]\n  ingress: [{ports: [{port: 80}]}]\n";
    let out = cluster.kubectl_as(cluster.kubeconfig(), &["apply", "-f", "-"], Some(policy));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = cluster.kubectl(&["get", "netpol", "web", "-o", "jsonpath={.spec.ingress[0].ports[0].port}"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "80");
    let misspelt = policy.replace("podSelector", "podSelecter");
    let out = cluster.kubectl_as(cluster.kubeconfig(), &["apply", "-f", "-"], Some(&misspelt));
    assert!(!out.status.success(), "an unknown field is refused");
}
