//! The repository stands alone: a plain `git clone` passes its own test command, so no source,
//! test, script or document reads or links a path outside it, and every relative link in the
//! documentation names a file that exists. (CI runs the test command in a copy of the
//! repository with nothing beside it; this test names the offending line.)

use std::path::{Component, Path, PathBuf};

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Folders that are not part of the repository's content (build output, local tools).
const SKIPPED: &[&str] = &[".git", "target", ".venv", "node_modules"];

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            if !SKIPPED.contains(&name.as_str()) {
                files(&path, out);
            }
        } else {
            out.push(path);
        }
    }
}

/// Every text file of the repository with its path relative to the root.
fn text_files() -> Vec<(String, PathBuf, String)> {
    let root = repo_root();
    let mut paths = Vec::new();
    files(root, &mut paths);
    paths
        .into_iter()
        .filter_map(|path| {
            let text = std::fs::read_to_string(&path).ok()?;
            let relative = path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
            Some((relative, path, text))
        })
        .collect()
}

/// `path` joined to `base` with `.` and `..` resolved lexically; None when it climbs above
/// the filesystem root.
fn resolve(base: &Path, path: &str) -> Option<PathBuf> {
    let mut resolved = PathBuf::new();
    for part in base.join(path).components() {
        match part {
            Component::ParentDir => {
                if !resolved.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            other => resolved.push(other),
        }
    }
    Some(resolved)
}

fn inside_repository(file: &Path, target: &str) -> bool {
    let root = repo_root();
    resolve(file.parent().unwrap(), target).is_some_and(|p| p.starts_with(root))
}

/// Relative link targets of a Markdown text: `[text](target)`, without anchors and titles.
fn markdown_links(text: &str) -> Vec<String> {
    let mut links = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("](") {
        rest = &rest[start + 2..];
        let Some(end) = rest.find(')') else { break };
        let target = rest[..end].split_whitespace().next().unwrap_or("").split('#').next().unwrap_or("");
        let external = target.contains("://") || target.starts_with("mailto:");
        if !target.is_empty() && !external {
            links.push(target.to_string());
        }
        rest = &rest[end..];
    }
    links
}

#[test]
fn nothing_reads_or_links_a_folder_beside_the_repository() {
    let mut problems = Vec::new();
    for (relative, path, text) in text_files() {
        if relative == "tests/repository.rs" {
            continue;
        }
        for (number, line) in text.lines().enumerate() {
            // The reference folder beside the development checkout is not part of a clone.
            if line.contains("../shared") {
                problems.push(format!("{relative}:{}: names ../shared: {}", number + 1, line.trim()));
            }
        }
        if relative.ends_with(".md") {
            for target in markdown_links(&text) {
                if !inside_repository(&path, &target) {
                    problems.push(format!("{relative}: links outside the repository: {target}"));
                } else if !resolve(path.parent().unwrap(), &target).unwrap().exists() {
                    problems.push(format!("{relative}: links a file that does not exist: {target}"));
                }
            }
        }
        if relative.ends_with(".rs") {
            // Paths the tests open relative to the repository root, and files compiled in.
            for (call, base) in [("repo_path(\"", repo_root().join("x")), ("include_str!(\"", path.clone())] {
                for piece in text.split(call).skip(1) {
                    let literal = piece.split('"').next().unwrap_or("");
                    if !inside_repository(&base, literal) {
                        problems.push(format!("{relative}: {call}{literal}\" is outside the repository"));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "the repository must stand alone:\n{}", problems.join("\n"));
}

#[test]
fn the_checks_find_what_they_look_for() {
    let root = repo_root();
    let readme = root.join("README.md");
    assert_eq!(
        markdown_links("see [the design](../shared/DESIGN.md#why) and [x](https://k8s.io)"),
        ["../shared/DESIGN.md"]
    );
    assert!(!inside_repository(&readme, "../shared/DESIGN.md"));
    assert!(inside_repository(&readme, "tests/schemas/README.md"));
    assert!(!inside_repository(&root.join("tests/x.rs"), "../../y"));
    assert!(inside_repository(&root.join("tests/common/tools.rs"), "../schemas/servicemonitor.schema.json"));
}
