//! Checked-in generated files must be exactly what the code generates.
//! Regenerate with: KUBE_DEVOPS_REGENERATE=1 cargo test --test generated

use std::path::Path;

#[test]
fn checked_in_artefacts_match_the_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let regenerate = std::env::var_os("KUBE_DEVOPS_REGENERATE").is_some();
    let mut drifted = Vec::new();
    for (path, contents) in kube_devops::artefacts::all().expect("artefacts render") {
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
