//! Builders of the objects unit tests evaluate, in one place: what a test pod looks like is
//! decided here, not in every module's tests.

use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

/// A pod under construction, in the namespace `shop` unless told otherwise.
#[derive(Clone, Debug)]
pub struct TestPod(pub Value);

/// Probes and resources that satisfy every check.
pub fn compliant(name: &str, image: &str) -> Value {
    json!({"name": name, "image": image,
        "livenessProbe": {"tcpSocket": {"port": 80}}, "readinessProbe": {"tcpSocket": {"port": 80}},
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}}})
}

impl TestPod {
    pub fn new(name: &str) -> TestPod {
        TestPod(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "shop"},
            "spec": {"containers": []}}))
    }

    pub fn in_namespace(mut self, namespace: &str) -> TestPod {
        self.0["metadata"]["namespace"] = json!(namespace);
        self
    }

    /// Adds a container with nothing but its name and image.
    pub fn container(self, name: &str, image: &str) -> TestPod {
        self.with_container(json!({"name": name, "image": image}))
    }

    /// Adds a container with probes and resources (see [`compliant`]).
    pub fn compliant_container(self, name: &str, image: &str) -> TestPod {
        self.with_container(compliant(name, image))
    }

    pub fn with_container(mut self, container: Value) -> TestPod {
        self.0["spec"]["containers"].as_array_mut().expect("containers").push(container);
        self
    }

    /// Gives the last container a readiness probe.
    pub fn ready_probe(mut self) -> TestPod {
        let containers = self.0["spec"]["containers"].as_array_mut().expect("containers");
        containers.last_mut().expect("a container")["readinessProbe"] = json!({"tcpSocket": {"port": 80}});
        self
    }

    /// Names a controlling owner of `kind` (what controllers, and forgers, write).
    pub fn owned_by(mut self, kind: &str) -> TestPod {
        self.0["metadata"]["ownerReferences"] =
            json!([{"apiVersion": "apps/v1", "kind": kind, "name": "web-1", "uid": "u", "controller": true}]);
        self
    }

    /// Sets any field (a JSON pointer below the pod, e.g. `/status`).
    pub fn set(mut self, pointer: &str, value: Value) -> TestPod {
        let mut target = &mut self.0;
        for part in pointer.trim_start_matches('/').split('/') {
            target = &mut target[part];
        }
        *target = value;
        self
    }

    pub fn json(self) -> Value {
        self.0
    }

    pub fn build(self) -> Pod {
        pod(self.0)
    }
}

/// A Pod from its JSON form (the test's own literal).
pub fn pod(value: Value) -> Pod {
    serde_json::from_value(value).expect("a test pod is a valid Pod")
}

/// A testkit API server with the CRDs of kube-devops applied.
pub fn cluster_with_crds() -> testkit::harness::TestCluster {
    let cluster = testkit::harness::TestCluster::stand_in();
    let crds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    let out = cluster.kubectl(&["apply", "-f", crds.to_str().expect("a UTF-8 path")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    cluster
}
