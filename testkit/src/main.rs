//! `testkit --kubeconfig PATH [--port N] [--run-image IMAGE=PATH]... [--volume-refresh-delay SECONDS]`:
//! runs the stand-in API server, its controllers and kubelet until SIGINT or SIGTERM. SIGUSR1
//! compacts the change history and ends every watch (clients relist).

use std::io::Write;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::path::PathBuf;
use std::time::Duration;

const USAGE: &str =
    "usage: testkit --kubeconfig PATH [--port N] [--run-image IMAGE=PATH]... [--volume-refresh-delay SECONDS]
               [--fault SPEC]... [--latency DURATION] [--drop-watches-every DURATION] [--compact-every DURATION]

  --kubeconfig PATH             where to write the admin kubeconfig (required)
  --port N                      the HTTPS port on 127.0.0.1 (default: a free one)
  --run-image IMAGE=PATH        pods whose image starts with IMAGE run the program PATH as a
                                real process (repeatable)
  --volume-refresh-delay SECS   how long a changed Secret or ConfigMap takes to reach the files
                                of running pods (default 60, as a real kubelet)
  --fault SPEC                  inject errors or delays into matching requests (repeatable), e.g.
                                'verb=update resource=leases status=500 every=3'; keys: verb,
                                resource, agent (part of the User-Agent), status, every, latency,
                                times
  --latency DURATION            delay every request (e.g. 200ms, or 100ms..300ms)
  --drop-watches-every DURATION end every open watch this often (clients resume)
  --compact-every DURATION      forget the change history this often (resumes get 410 Gone)

then: kubectl --kubeconfig PATH get pods -A";

/// A real kubelet's sync period and Secret cache add up to about a minute.
const DEFAULT_VOLUME_REFRESH: Duration = Duration::from_secs(60);

struct Options {
    kubeconfig: PathBuf,
    port: u16,
    images: Vec<(String, PathBuf)>,
    volume_refresh: Duration,
    faults: Vec<testkit::observe::Fault>,
    drop_watches_every: Option<Duration>,
    compact_every: Option<Duration>,
}

fn parse(mut args: impl Iterator<Item = String>) -> anyhow::Result<Option<Options>> {
    let (mut kubeconfig, mut port, mut images, mut volume_refresh) = (None, 0u16, Vec::new(), DEFAULT_VOLUME_REFRESH);
    let (mut faults, mut drop_watches_every, mut compact_every) = (Vec::new(), None, None);
    let duration = |flag: &str, text: String| -> anyhow::Result<Duration> {
        testkit::observe::parse_duration(&text)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| anyhow::anyhow!("{flag}: {text:?} is not a positive duration (e.g. 200ms, 10s)"))
    };
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| anyhow::anyhow!("{name} needs a value (see --help)"));
        match arg.as_str() {
            "--kubeconfig" => kubeconfig = Some(PathBuf::from(value("--kubeconfig")?)),
            "--port" => port = value("--port")?.parse().map_err(|e| anyhow::anyhow!("--port: {e}"))?,
            "--run-image" => {
                let rule = value("--run-image")?;
                let (image, path) = rule
                    .split_once('=')
                    .filter(|(image, path)| !image.is_empty() && !path.is_empty())
                    .ok_or_else(|| anyhow::anyhow!("--run-image wants IMAGE=PATH, got {rule:?}"))?;
                let path = std::fs::canonicalize(path).map_err(|e| anyhow::anyhow!("--run-image {path}: {e}"))?;
                images.push((image.to_string(), path));
            }
            "--volume-refresh-delay" => {
                let secs: f64 = value("--volume-refresh-delay")?
                    .parse()
                    .map_err(|e| anyhow::anyhow!("--volume-refresh-delay: {e}"))?;
                volume_refresh =
                    Duration::try_from_secs_f64(secs).map_err(|e| anyhow::anyhow!("--volume-refresh-delay: {e}"))?;
            }
            "--fault" => faults
                .push(testkit::observe::Fault::parse(&value("--fault")?).map_err(|e| anyhow::anyhow!("--fault: {e}"))?),
            "--latency" => {
                let text = value("--latency")?;
                faults.push(
                    testkit::observe::Fault::parse(&format!("latency={text}"))
                        .map_err(|e| anyhow::anyhow!("--latency: {e}"))?,
                )
            }
            "--drop-watches-every" => drop_watches_every = Some(duration(&arg, value("--drop-watches-every")?)?),
            "--compact-every" => compact_every = Some(duration(&arg, value("--compact-every")?)?),
            "-h" | "--help" => return Ok(None),
            other => anyhow::bail!("unknown argument {other:?} (see --help)"),
        }
    }
    let kubeconfig = kubeconfig.ok_or_else(|| anyhow::anyhow!("--kubeconfig PATH is required (see --help)"))?;
    Ok(Some(Options { kubeconfig, port, images, volume_refresh, faults, drop_watches_every, compact_every }))
}

fn main() -> anyhow::Result<()> {
    // Blocked before any thread starts, so every thread inherits the mask and the signals are
    // only ever taken by `sigwait` below, however busy the server is.
    let signals = block_signals(&[libc::SIGINT, libc::SIGTERM, libc::SIGUSR1]);
    let Some(options) = parse(std::env::args().skip(1))? else {
        println!("{USAGE}");
        return Ok(());
    };
    let server = testkit::server::start(options.port, Some(&options.kubeconfig))?;
    for (image, program) in options.images {
        server.state.images.lock().unwrap().push(testkit::kubelet::ImageRule { image_prefix: image, program });
    }
    *server.state.volume_refresh_delay.lock().unwrap() = options.volume_refresh;
    server.state.faults.lock().unwrap().extend(options.faults);
    // Background churn, as a busy or restarting API server gives it: the threads end with the
    // process.
    if let Some(every) = options.drop_watches_every {
        let state = server.state.clone();
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(every);
                state.drop_watches();
            }
        });
    }
    if let Some(every) = options.compact_every {
        let state = server.state.clone();
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(every);
                state.cluster.lock().unwrap().store.compact();
            }
        });
    }
    println!("testkit API server at {}; admin kubeconfig {}", server.address(), options.kubeconfig.display());
    let signal = loop {
        match wait(&signals) {
            // SIGUSR1: forget the change history and end every watch, so that clients resume,
            // get 410 Gone and list again (what `scripts/bench-scale.sh` measures a relist with).
            libc::SIGUSR1 => {
                server.state.cluster.lock().unwrap().store.compact();
                server.state.drop_watches();
                let _ = writeln!(std::io::stdout(), "SIGUSR1: history compacted, watches dropped");
            }
            signal => break signal,
        }
    };
    // Not println!: a closed stdout (`testkit ... | head -1`) must not stop the shutdown.
    let _ = writeln!(std::io::stdout(), "stopping ({})", if signal == libc::SIGTERM { "SIGTERM" } else { "SIGINT" });
    // A second signal, or a shutdown that takes too long, ends the process at once (the
    // processes the kubelet started die with it: they carry PR_SET_PDEATHSIG).
    std::thread::spawn(move || {
        let _ = wait(&signals);
        std::process::exit(130);
    });
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(10));
        eprintln!("testkit: shutdown took more than 10 s, exiting");
        std::process::exit(1);
    });
    drop(server);
    Ok(())
}

fn block_signals(signals: &[i32]) -> libc::sigset_t {
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in signals {
            libc::sigaddset(&mut set, *s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait(set: &libc::sigset_t) -> i32 {
    let mut signal = 0;
    unsafe {
        libc::sigwait(set, &mut signal);
    }
    signal
}
