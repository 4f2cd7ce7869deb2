//! What ships besides the binary: the `config/` kustomize tree (rendered with kubectl
//! kustomize), the Dockerfile (hadolint), and trivy and checkov scans of the rendered
//! manifests, the chart and the Dockerfile against `security/accepted-findings.md`.

mod common;

use common::tools::{copy_dir, documents, id, python_with, render, repo_path, run, tool, validate_all};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

fn kustomize(dir: &str) -> Option<Vec<Value>> {
    let kubectl = tool("kubectl")?;
    let (ok, text) = run(&kubectl, &["kustomize", repo_path(dir).to_str().unwrap()]);
    assert!(ok, "kubectl kustomize {dir} failed:\n{text}");
    Some(documents(&text))
}

#[test]
fn config_default_installs_the_crds_and_a_hardened_bootstrap_operator() {
    let Some(objects) = kustomize("config/default") else { return };
    let ids: BTreeSet<String> = objects.iter().map(id).collect();
    for expected in [
        "CustomResourceDefinition//devopspolicies.devops.stochastic.io",
        "CustomResourceDefinition//policyauditresults.devops.stochastic.io",
        "CustomResourceDefinition//kubedevopsinstalls.devops.stochastic.io",
        "Namespace//kube-devops",
        "ServiceAccount/kube-devops/kube-devops-operator",
        "ClusterRole//kube-devops-operator",
        "ClusterRoleBinding//kube-devops-operator",
        "Role/kube-devops/kube-devops-operator",
        "RoleBinding/kube-devops/kube-devops-operator",
        "Deployment/kube-devops/kube-devops-operator",
        "Service/kube-devops/kube-devops-operator-metrics",
        "NetworkPolicy/kube-devops/kube-devops-operator",
    ] {
        assert!(ids.contains(expected), "{expected} missing from {ids:?}");
    }
    assert_eq!(ids.len(), 12, "{ids:?}");
    let operator = objects.iter().find(|o| o["kind"] == "Deployment").unwrap();
    let pod = &operator["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "kube-devops-operator");
    assert_eq!(pod["containers"][0]["args"][0], "operator");
    assert_eq!(pod["containers"][0]["image"], format!("ghcr.io/stochastic/kube-devops:v{}", env!("CARGO_PKG_VERSION")));
    assert_eq!(pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"], true);
    let binding = objects.iter().find(|o| o["kind"] == "ClusterRoleBinding").unwrap();
    assert_eq!(binding["subjects"][0]["namespace"], "kube-devops");
    validate_all(&objects);
}

#[test]
fn config_samples_and_prometheus_are_valid_custom_resources() {
    let Some(samples) = kustomize("config/samples") else { return };
    let kinds: Vec<_> = samples.iter().map(|o| o["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["DevOpsPolicy", "KubeDevopsInstall"]);
    validate_all(&samples);
    let install = samples.iter().find(|o| o["kind"] == "KubeDevopsInstall").unwrap();
    assert_eq!(install["metadata"]["name"], "default", "the only name the CRD accepts");
    let Some(prometheus) = kustomize("config/prometheus") else { return };
    assert_eq!(prometheus.len(), 1);
    validate_all(&prometheus);
}

#[test]
fn the_service_monitor_check_catches_fields_prometheus_would_drop() {
    let objects = documents(&render(&["deploy", "generate-observability", "-a", "monitoring.coreos.com/v1"]));
    let mut monitor = objects.into_iter().find(|o| o["kind"] == "ServiceMonitor").unwrap();
    assert!(common::tools::service_monitor_errors(&monitor).is_empty());
    monitor["spec"]["endpoints"][0]["intervall"] = "15s".into();
    monitor["spec"]["endpoints"][0]["scheme"] = "tcp".into();
    assert_eq!(common::tools::service_monitor_errors(&monitor).len(), 2);
}

#[test]
fn the_dockerfile_is_hadolint_clean_and_builds_a_non_root_image_of_the_binary() {
    let dockerfile = std::fs::read_to_string(repo_path("Dockerfile")).unwrap();
    let from: Vec<_> = dockerfile.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(from.len(), 2, "a builder and a runtime stage");
    assert!(from[1].contains("debian:") && from[1].contains("-slim"), "{from:?}");
    for line in &from {
        let image = line.split_whitespace().nth(1).unwrap();
        assert!(image.contains(':') && !image.ends_with(":latest"), "unpinned base image {image}");
    }
    // The builder's Rust is at least the crate's rust-version.
    let rust = from[0].split(':').nth(1).unwrap().split('-').next().unwrap();
    let manifest = std::fs::read_to_string(repo_path("Cargo.toml")).unwrap();
    let msrv = manifest.lines().find_map(|l| l.strip_prefix("rust-version = ")).unwrap().trim_matches('"');
    let version = |v: &str| v.split('.').map(|n| n.parse::<u32>().unwrap()).collect::<Vec<_>>();
    assert!(version(rust) >= version(msrv), "builder Rust {rust} is older than rust-version {msrv}");
    // Instructions, without comments, split into the builder and the runtime stage.
    let instructions: Vec<&str> = dockerfile.lines().filter(|l| !l.trim_start().starts_with('#')).collect();
    let runtime_start = instructions.iter().rposition(|l| l.starts_with("FROM ")).unwrap();
    let runtime = instructions[runtime_start..].join("\n");
    for needed in [
        "USER 1000:1000",
        "EXPOSE 8080 9090 8443",
        "ENTRYPOINT [\"/usr/local/bin/kube-devops\"]",
        "COPY --from=builder /out/kube-devops /usr/local/bin/kube-devops",
    ] {
        assert!(runtime.lines().any(|l| l == needed), "the runtime stage lacks {needed}");
    }
    let install = runtime.split("apt-get install").nth(1).expect("the runtime stage installs packages");
    let packages: Vec<&str> = install.split("&&").next().unwrap().split_whitespace().collect();
    assert!(packages.contains(&"ca-certificates"), "{packages:?}");
    assert!(packages.iter().any(|p| p.starts_with("libssl3")), "the runtime needs libssl: {packages:?}");
    assert!(runtime.contains("useradd --system --uid 1000 --gid 1000"), "user kube-devops, UID 1000");
    assert!(runtime.contains("--shell /usr/sbin/nologin kube-devops"), "user kube-devops, UID 1000");
    let ignored = std::fs::read_to_string(repo_path(".dockerignore")).unwrap();
    for path in ["target", ".venv", ".git"] {
        assert!(ignored.lines().any(|l| l == path), ".dockerignore does not exclude {path}");
    }
    build_context_is_a_complete_workspace(&ignored);
    let Some(hadolint) = tool("hadolint") else { return };
    let (ok, text) = run(&hadolint, &["--no-color", repo_path("Dockerfile").to_str().unwrap()]);
    assert!(ok && text.trim().is_empty(), "hadolint:\n{text}");
}

/// Whether `.dockerignore` keeps `relative` (a path in the repository) out of the build
/// context. Covers the pattern forms the file uses: a path, `**/name` and a root-level
/// `*` glob.
fn docker_ignores(patterns: &str, relative: &str) -> bool {
    patterns.lines().map(str::trim).filter(|p| !p.is_empty() && !p.starts_with('#')).any(|pattern| {
        if let Some(name) = pattern.strip_prefix("**/") {
            relative.split('/').any(|part| part == name)
        } else if let Some(suffix) = pattern.strip_prefix('*') {
            !relative.contains('/') && relative.ends_with(suffix)
        } else {
            relative == pattern || relative.starts_with(&format!("{pattern}/"))
        }
    })
}

/// The files `docker build` sends (the repository minus `.dockerignore`) form a workspace
/// cargo can load with the locked dependencies: every member, target and the lock file are there.
fn build_context_is_a_complete_workspace(patterns: &str) {
    fn copy(root: &Path, dir: &Path, to: &Path, patterns: &str) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let relative = path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
            if docker_ignores(patterns, &relative) {
                continue;
            }
            if path.is_dir() {
                std::fs::create_dir_all(to.join(&relative)).unwrap();
                copy(root, &path, to, patterns);
            } else {
                std::fs::copy(&path, to.join(&relative)).unwrap();
            }
        }
    }
    assert!(docker_ignores(patterns, "testkit/target/debug") && !docker_ignores(patterns, "testkit/src/lib.rs"));
    let context = tempfile::tempdir().unwrap();
    copy(common::tools::repo_root(), common::tools::repo_root(), context.path(), patterns);
    // Only this platform's packages: a fresh machine has downloaded no others, and offline
    // metadata of every platform would need them all.
    let host = String::from_utf8(Command::new("rustc").arg("-vV").output().unwrap().stdout).unwrap();
    let host = host.lines().find_map(|l| l.strip_prefix("host: ")).unwrap().to_string();
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--locked", "--offline", "--format-version", "1", "--filter-platform", &host])
        .current_dir(context.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "cargo cannot load the build context: {}", String::from_utf8_lossy(&out.stderr));
    let metadata: Value = serde_json::from_slice(&out.stdout).unwrap();
    let members = metadata["workspace_members"].as_array().unwrap().len();
    assert_eq!(members, 2, "kube-devops and testkit");
    for package in metadata["packages"].as_array().unwrap().iter().filter(|p| p["source"].is_null()) {
        for target in package["targets"].as_array().unwrap() {
            let path = Path::new(target["src_path"].as_str().unwrap());
            assert!(path.exists(), "{} is missing from the build context", path.display());
        }
    }
}

/// One scanner finding: tool, check id, severity (`-` when the tool gives none) and where.
type Finding = (String, String, String, String);

/// `(tool, check) -> (severity, places)` from the table of security/accepted-findings.md.
fn accepted() -> BTreeMap<(String, String), (String, BTreeSet<String>)> {
    let text = std::fs::read_to_string(repo_path("security/accepted-findings.md")).unwrap();
    let mut rows = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("| trivy ") || l.starts_with("| checkov ")) {
        let cells: Vec<_> = line.split('|').map(str::trim).collect();
        let (tool, check, severity, places, why) = (cells[1], cells[2], cells[3], cells[4], cells[5]);
        assert!(why.len() > 20, "{check} has no reason");
        let places = places.split(',').map(|p| p.trim().to_string()).collect();
        let previous = rows.insert((tool.to_string(), check.to_string()), (severity.to_string(), places));
        assert!(previous.is_none(), "{tool} {check} is listed twice");
        if ["HIGH", "CRITICAL"].contains(&severity) {
            assert!(why.contains("**Inherent**"), "{check} is {severity} without being inherent");
        }
    }
    rows
}

fn place(target: &str) -> String {
    let file = Path::new(target).file_name().unwrap().to_str().unwrap();
    match file {
        _ if target.contains("chart/") => "helm",
        "deploy.yaml" => "deploy",
        "helm.yaml" => "helm",
        "config.yaml" => "config",
        "Dockerfile" => "Dockerfile",
        other => panic!("unexpected scan target {other}"),
    }
    .to_string()
}

/// Writes what the scanners read: the deploy output, the rendered config/ tree, the
/// Dockerfile, and the chart (for trivy, which renders it) or its rendering (for checkov).
fn scan_inputs(dir: &Path) -> Option<()> {
    std::fs::write(
        dir.join("deploy.yaml"),
        render(&["deploy", "generate-all", "--api-versions=monitoring.coreos.com/v1"]),
    )
    .unwrap();
    let mut config = String::new();
    for part in ["config/default", "config/prometheus", "config/samples"] {
        let kubectl = tool("kubectl")?;
        let (ok, text) = run(&kubectl, &["kustomize", repo_path(part).to_str().unwrap()]);
        assert!(ok, "{text}");
        config.push_str("---\n");
        config.push_str(&text);
    }
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    std::fs::copy(repo_path("Dockerfile"), dir.join("Dockerfile")).unwrap();
    Some(())
}

fn trivy(dir: &Path) -> Option<Vec<Finding>> {
    let trivy = tool("trivy")?;
    let chart = dir.join("chart");
    std::fs::create_dir_all(&chart).unwrap();
    copy_dir(&repo_path("helm/kube-devops"), &chart.join("kube-devops"));
    let cache = tempfile::tempdir().unwrap();
    let out = Command::new(trivy)
        .args(["config", "--skip-check-update", "--quiet", "--format", "json"])
        .arg(dir)
        .env("TRIVY_CACHE_DIR", cache.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "trivy: {}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut findings = Vec::new();
    let mut targets = BTreeSet::new();
    for result in report["Results"].as_array().into_iter().flatten() {
        let target = result["Target"].as_str().unwrap();
        targets.insert(place(target));
        for m in result["Misconfigurations"].as_array().into_iter().flatten() {
            let severity = m["Severity"].as_str().unwrap().to_string();
            findings.push(("trivy".into(), m["ID"].as_str().unwrap().into(), severity, place(target)));
        }
    }
    // A chart trivy cannot render is skipped silently: make sure it was scanned.
    assert!(targets.contains("helm"), "trivy did not render the chart: {targets:?}");
    Some(findings)
}

fn checkov(dir: &Path) -> Option<Vec<Finding>> {
    let checkov = tool("checkov")?;
    let helm = helm_rendering()?;
    std::fs::write(dir.join("helm.yaml"), helm).unwrap();
    let mut args =
        vec!["--framework", "kubernetes", "dockerfile", "--skip-download", "--compact", "--quiet", "-o", "json"];
    let files: Vec<String> = ["deploy.yaml", "helm.yaml", "config.yaml", "Dockerfile"]
        .iter()
        .map(|f| dir.join(f).to_string_lossy().into_owned())
        .collect();
    for file in &files {
        args.extend(["-f", file.as_str()]);
    }
    let out = Command::new(checkov).args(&args).output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("checkov: {e}\n{}", String::from_utf8_lossy(&out.stderr)));
    let reports = if report.is_array() { report.as_array().unwrap().clone() } else { vec![report] };
    let mut findings = Vec::new();
    let mut frameworks = BTreeSet::new();
    for r in &reports {
        frameworks.insert(r["check_type"].as_str().unwrap().to_string());
        assert_eq!(r["summary"]["parsing_errors"], 0, "{}", r["summary"]);
        for f in r["results"]["failed_checks"].as_array().into_iter().flatten() {
            let severity = f["severity"].as_str().unwrap_or("-").to_string();
            findings.push((
                "checkov".into(),
                f["check_id"].as_str().unwrap().into(),
                severity,
                place(f["file_path"].as_str().unwrap()),
            ));
        }
    }
    assert_eq!(frameworks, BTreeSet::from(["dockerfile".into(), "kubernetes".into()]), "checkov scanned both");
    Some(findings)
}

/// The chart rendered with default values by the Helm SDK.
fn helm_rendering() -> Option<String> {
    let python = python_with("helm_python")?;
    let script = "import sys, helm_python as h\nwith h.Chart.load(sys.argv[1]) as c:\n    \
                  out = c.render(name='kube-devops', namespace='kube-devops', is_install=True)\n\
                  print(''.join('---\\n' + out[k] for k in sorted(out) if not k.endswith('NOTES.txt')))";
    let out =
        Command::new(python).args(["-c", script, repo_path("helm/kube-devops").to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8(out.stdout).unwrap())
}

#[test]
fn scanners_find_nothing_high_or_critical_beyond_what_is_accepted_and_explained() {
    let dir = tempfile::tempdir().unwrap();
    if scan_inputs(dir.path()).is_none() {
        return;
    }
    let (Some(trivy), Some(checkov)) = (trivy(dir.path()), checkov(dir.path())) else { return };
    let findings: BTreeSet<Finding> = trivy.into_iter().chain(checkov).collect();
    let accepted = accepted();
    let mut unexplained = Vec::new();
    let mut seen: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for (tool, check, severity, place) in &findings {
        let key = (tool.clone(), check.clone());
        match accepted.get(&key) {
            Some((listed, places)) if listed == severity && places.contains(place) => {
                seen.entry(key).or_default().insert(place.clone());
            }
            _ => unexplained.push(format!("{tool} {check} ({severity}) in {place}")),
        }
        if ["HIGH", "CRITICAL"].contains(&severity.as_str()) {
            assert_eq!(place, "config", "{tool} {check} is {severity} in {place}: only the installer's RBAC may be");
        }
    }
    assert!(unexplained.is_empty(), "findings not in security/accepted-findings.md:\n  {}", unexplained.join("\n  "));
    let mut stale = Vec::new();
    for (key, (_, places)) in &accepted {
        let found = seen.get(key).cloned().unwrap_or_default();
        if &found != places {
            stale.push(format!("{} {}: listed for {places:?}, found in {found:?}", key.0, key.1));
        }
    }
    assert!(stale.is_empty(), "security/accepted-findings.md lists what no longer occurs:\n  {}", stale.join("\n  "));
}
