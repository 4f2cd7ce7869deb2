//! Checked-in generated files must be exactly what the code generates.
//! Regenerate with: KUBE_DEVOPS_REGENERATE=1 cargo test --test generated

use std::path::{Path, PathBuf};

/// Every file under `dir`, relative to `root`, with `/` separators.
fn files_under(root: &Path, dir: &Path, out: &mut Vec<String>) {
    // A generated folder that does not exist yet holds no stale file (regeneration creates it).
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries {
        let path: PathBuf = entry.unwrap().path();
        if path.is_dir() {
            files_under(root, &path, out);
        } else {
            out.push(path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/"));
        }
    }
}

#[test]
fn checked_in_artefacts_match_the_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let regenerate = std::env::var_os("KUBE_DEVOPS_REGENERATE").is_some();
    let mut drifted = Vec::new();
    let artefacts = kube_devops::artefacts::all().expect("artefacts render");
    // A file left behind in a generated folder (a renamed CRD, a removed sample) is drift too.
    let mut present = Vec::new();
    for dir in kube_devops::artefacts::GENERATED_DIRS {
        files_under(root, &root.join(dir), &mut present);
    }
    for stale in present.iter().filter(|p| !artefacts.iter().any(|(path, _)| path == *p)) {
        if regenerate {
            std::fs::remove_file(root.join(stale)).unwrap();
        } else {
            drifted.push(format!("{stale} (not generated)"));
        }
    }
    for (path, contents) in artefacts {
        let full = root.join(&path);
        if regenerate {
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(&full, &contents).unwrap();
        } else if std::fs::read_to_string(&full).ok().as_deref() != Some(contents.as_str()) {
            drifted.push(path);
        }
    }
    assert!(
        drifted.is_empty(),
        "generated files differ from the code: {drifted:?}\nregenerate with: KUBE_DEVOPS_REGENERATE=1 cargo test --test generated"
    );
}

#[test]
fn crd_generate_writes_the_checked_in_files() {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_kube-devops"))
        .args(["crd", "generate", "--out-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut written: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    written.sort();
    assert_eq!(written, ["devopspolicies.yaml", "kubedevopsinstalls.yaml", "policyauditresults.yaml"]);
    for name in written {
        let generated = std::fs::read_to_string(dir.path().join(&name)).unwrap();
        let checked_in = std::fs::read_to_string(root.join("crds").join(&name)).unwrap();
        assert_eq!(generated, checked_in, "{name:?}");
    }
}
