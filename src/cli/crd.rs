//! `crd generate`.

use super::exit;
use crate::api::crds;
use anyhow::Context;
use std::path::Path;

pub fn generate(out_dir: Option<&Path>) -> anyhow::Result<u8> {
    match out_dir {
        None => {
            let all: Vec<_> = crds().into_iter().map(|(_, crd)| crd).collect();
            crate::yaml::print(&crate::yaml::to_yaml_stream(&all)?);
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            for (file, crd) in crds() {
                let path = dir.join(file);
                std::fs::write(&path, crate::api::crd_file(&crd)?)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                eprintln!("wrote {}", path.display());
            }
        }
    }
    Ok(exit::OK)
}
