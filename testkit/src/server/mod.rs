//! The HTTPS server: state shared by every request, start-up, and the kubeconfig it writes.

mod discovery;
pub(crate) mod handlers;
mod scale;
mod table;
mod watch;

use crate::cluster::Cluster;
use crate::observe::{Fault, RequestRecord};
use crate::rbac::UserInfo;
use crate::tls;
use actix_web::{App, HttpServer, web};
use openssl::ssl::{SslAcceptor, SslMethod};
use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Everything the server knows; shared by requests, controllers and the test harness.
pub struct State {
    pub cluster: Mutex<Cluster>,
    pub tokens: Mutex<HashMap<String, UserInfo>>,
    pub log: Mutex<Vec<RequestRecord>>,
    pub faults: Mutex<Vec<Fault>>,
    /// Bumped to end every open watch stream (clients must resume).
    pub watch_epoch: tokio::sync::watch::Sender<u64>,
    /// Images run as real processes by the kubelet.
    pub images: Mutex<Vec<crate::kubelet::ImageRule>>,
    /// How long a changed Secret or ConfigMap takes to reach the files of running pods.
    pub volume_refresh_delay: Mutex<std::time::Duration>,
    /// Where the kubelet keeps each pod's files (volumes, container logs).
    pub pods_dir: std::sync::OnceLock<PathBuf>,
    pub address: String,
    pub ca_pem: String,
    pub admin_token: String,
}

impl State {
    /// Ends every open watch; clients see the stream close and resume from their last version.
    pub fn drop_watches(&self) {
        self.watch_epoch.send_modify(|e| *e += 1);
    }

    /// Registers a bearer token for a user (or service account) and returns it.
    pub fn issue_token(&self, user: UserInfo) -> String {
        let token = tls::random_token();
        self.tokens.lock().unwrap().insert(token.clone(), user);
        token
    }

    /// A kubeconfig for `token`.
    pub fn kubeconfig(&self, token: &str, user_name: &str) -> String {
        let ca = base64_encode(self.ca_pem.as_bytes());
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: testkit\n  cluster:\n    server: {}\n    certificate-authority-data: {ca}\nusers:\n- name: {user_name}\n  user:\n    token: {token}\ncontexts:\n- name: testkit\n  context:\n    cluster: testkit\n    user: {user_name}\n    namespace: default\ncurrent-context: testkit\n",
            self.address
        )
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A running server; dropping it stops the server.
pub struct RunningServer {
    pub state: Arc<State>,
    controllers: Option<crate::controllers::Controllers>,
    kubelet: Option<crate::kubelet::Kubelet>,
    pub admin_kubeconfig: PathBuf,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RunningServer {
    pub fn address(&self) -> &str {
        &self.state.address
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.kubelet.take();
        self.controllers.take();
        let handle = self.handle.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(handle.stop(false));
        })
        .join();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The admin user: in `system:masters`, allowed everything, as in a real cluster.
pub fn admin_user() -> UserInfo {
    UserInfo { name: "admin".into(), groups: vec!["system:masters".into(), "system:authenticated".into()] }
}

/// Starts a server on a free loopback port (or `port`) and writes the admin kubeconfig to
/// `kubeconfig` (or a file in a temporary folder).
pub fn start(port: u16, kubeconfig: Option<&Path>) -> anyhow::Result<RunningServer> {
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    let address = format!("https://127.0.0.1:{}", listener.local_addr()?.port());
    let (ca, ca_cert, ca_key) = tls::ca("testkit-ca")?;
    let serving = tls::serving(&ca_cert, &ca_key, &["localhost", "kubernetes.default.svc"], &["127.0.0.1"])?;
    let (epoch_tx, _) = tokio::sync::watch::channel(0u64);
    let admin_token = tls::random_token();
    let state = Arc::new(State {
        cluster: Mutex::new(Cluster::new()),
        tokens: Mutex::new(HashMap::from([(admin_token.clone(), admin_user())])),
        log: Mutex::new(Vec::new()),
        faults: Mutex::new(Vec::new()),
        watch_epoch: epoch_tx,
        images: Mutex::new(Vec::new()),
        volume_refresh_delay: Mutex::new(crate::kubelet::TEST_VOLUME_REFRESH_DELAY),
        pods_dir: std::sync::OnceLock::new(),
        address,
        ca_pem: ca.cert_pem.clone(),
        admin_token: admin_token.clone(),
    });
    let path = match kubeconfig {
        Some(p) => p.to_path_buf(),
        None => std::env::temp_dir().join(format!("testkit-{}-{}.kubeconfig", std::process::id(), tls::random_token())),
    };
    std::fs::write(&path, state.kubeconfig(&admin_token, "admin"))?;

    let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls())?;
    let key = openssl::pkey::PKey::private_key_from_pem(serving.key_pem.as_bytes())?;
    let cert = openssl::x509::X509::from_pem(serving.cert_pem.as_bytes())?;
    acceptor.set_private_key(&key)?;
    acceptor.set_certificate(&cert)?;

    let (tx, rx) = std::sync::mpsc::channel();
    let app_state = state.clone();
    let thread = std::thread::Builder::new().name("testkit-apiserver".into()).spawn(move || {
        let system = actix_web::rt::System::new();
        system.block_on(async move {
            let data = web::Data::from(app_state);
            let server = HttpServer::new(move || {
                App::new()
                    .app_data(data.clone())
                    .app_data(web::PayloadConfig::new(16 * 1024 * 1024))
                    .default_service(web::to(handlers::dispatch))
            })
            .workers(2)
            .shutdown_timeout(1)
            .disable_signals()
            .listen_openssl(listener, acceptor);
            match server {
                Ok(server) => {
                    let server = server.run();
                    let _ = tx.send(Ok(server.handle()));
                    let _ = server.await;
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        });
    })?;
    let handle = rx.recv()??;
    let controllers = Some(crate::controllers::Controllers::start(state.clone()));
    let pods_dir = path.with_extension("pods");
    let _ = state.pods_dir.set(pods_dir.clone());
    let kubelet = Some(crate::kubelet::Kubelet::start(state.clone(), pods_dir));
    Ok(RunningServer { state, controllers, kubelet, admin_kubeconfig: path, handle, thread: Some(thread) })
}
