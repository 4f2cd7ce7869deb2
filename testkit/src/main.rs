//! `testkit --kubeconfig PATH [--port N]`: runs the stand-in API server until interrupted.

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut kubeconfig, mut port) = (None, 0u16);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--kubeconfig" => kubeconfig = args.next().map(std::path::PathBuf::from),
            "--port" => port = args.next().and_then(|p| p.parse().ok()).unwrap_or(0),
            "-h" | "--help" => {
                println!("usage: testkit --kubeconfig PATH [--port N]\nthen: kubectl --kubeconfig PATH get pods -A");
                return Ok(());
            }
            other => anyhow::bail!("unknown argument {other:?} (see --help)"),
        }
    }
    let kubeconfig = kubeconfig.ok_or_else(|| anyhow::anyhow!("--kubeconfig PATH is required"))?;
    let server = testkit::server::start(port, Some(&kubeconfig))?;
    println!("testkit API server at {}; admin kubeconfig {}", server.address(), kubeconfig.display());
    let (tx, rx) = std::sync::mpsc::channel();
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let tx = tx.clone();
        std::thread::spawn(move || wait_signal(signal, tx));
    }
    let _ = rx.recv();
    println!("stopping");
    drop(server);
    Ok(())
}

fn wait_signal(signal: i32, tx: std::sync::mpsc::Sender<()>) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut s = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(signal)).unwrap();
        s.recv().await;
    });
    let _ = tx.send(());
}
