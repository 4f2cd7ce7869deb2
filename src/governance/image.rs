//! Container image references: is the image pinned, tagged, or implicitly `:latest`?

/// How an image reference names its version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageVersion<'a> {
    /// `name@sha256:...`: immutable, always passes.
    Digest,
    /// `name:tag` with a tag other than `latest`.
    Tag(&'a str),
    /// `name:latest`.
    Latest,
    /// No tag and no digest: the runtime pulls `:latest`.
    Untagged,
}

/// Parses the version part of an image reference. The tag is the part after the last `:` of the
/// last path component, so a registry port (`registry:5000/app`) is not mistaken for a tag.
pub fn image_version(image: &str) -> ImageVersion<'_> {
    // One backwards scan over the bytes: the last ':' before any '/' is the tag separator.
    let bytes = image.as_bytes();
    if bytes.contains(&b'@') {
        return ImageVersion::Digest;
    }
    for (i, &b) in bytes.iter().enumerate().rev() {
        match b {
            b'/' => break,
            b':' => {
                return match &image[i + 1..] {
                    "latest" => ImageVersion::Latest,
                    "" => ImageVersion::Untagged,
                    tag => ImageVersion::Tag(tag),
                };
            }
            _ => {}
        }
    }
    ImageVersion::Untagged
}

/// [`ImageVersion`] without the tag: what the checks ask of an image, kept with a
/// container's facts so it is parsed once per pod event, not once per check and evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImagePin {
    Digest,
    Tag,
    Latest,
    Untagged,
}

/// An image reference, parsed once: how it is pinned, and where its registry and repository
/// are in it (offsets into the reference, which the facts keep beside it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageParts {
    pub pin: ImagePin,
    /// Length of the registry named at the start; 0 when it names none (`docker.io`).
    registry_len: u32,
    /// The repository path, without tag or digest.
    repository: (u32, u32),
    /// Docker Hub's `library/` is implied (`nginx`).
    implicit_library: bool,
}

impl ImageParts {
    pub fn parse(image: &str) -> ImageParts {
        let pin = match image_version(image) {
            ImageVersion::Digest => ImagePin::Digest,
            ImageVersion::Tag(_) => ImagePin::Tag,
            ImageVersion::Latest => ImagePin::Latest,
            ImageVersion::Untagged => ImagePin::Untagged,
        };
        let name = image.split('@').next().unwrap_or(image);
        // The tag is after the last ':' of the last path component.
        let name = match (name.rfind(':'), name.rfind('/')) {
            (Some(colon), slash) if slash.is_none_or(|s| colon > s) => &name[..colon],
            _ => name,
        };
        let end = name.len() as u32;
        let (registry_len, start, implicit_library) = match name.split_once('/') {
            Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => {
                (first.len() as u32, first.len() as u32 + 1, false)
            }
            Some(_) => (0, 0, false),
            None => (0, 0, true),
        };
        ImageParts { pin, registry_len, repository: (start, end), implicit_library }
    }

    /// The registry `image` (the reference these parts were parsed from) pulls from.
    pub fn registry<'a>(&self, image: &'a str) -> &'a str {
        match self.registry_len {
            0 => "docker.io",
            len => image.get(..len as usize).unwrap_or_default(),
        }
    }

    fn repository<'a>(&self, image: &'a str) -> &'a str {
        image.get(self.repository.0 as usize..self.repository.1 as usize).unwrap_or_default()
    }

    /// Whether `image` comes from one of `allowed`: registry hosts (`ghcr.io`) or repository
    /// prefixes (`ghcr.io/acme`, matched at a path boundary, so `ghcr.io/acme` does not allow
    /// `ghcr.io/acme-evil`).
    pub fn allowed_in(&self, image: &str, allowed: &[String]) -> bool {
        let (registry, repository) = (self.registry(image), self.repository(image));
        let same_host = |host: &str| host == registry || (registry == "docker.io" && host == "index.docker.io");
        allowed.iter().any(|entry| {
            let entry = entry.trim_end_matches('/');
            match entry.split_once('/') {
                None => same_host(entry),
                Some((host, prefix)) => {
                    same_host(host) && {
                        let repository = match (self.implicit_library, prefix.strip_prefix("library")) {
                            (true, Some("")) => return true,
                            (true, Some(rest)) if rest.starts_with('/') => return under(repository, &rest[1..]),
                            (true, _) => return false,
                            (false, _) => repository,
                        };
                        under(repository, prefix)
                    }
                }
            }
        })
    }
}

fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_tags_digests_and_implicit_latest() {
        assert_eq!(image_version("nginx:1.27.3"), ImageVersion::Tag("1.27.3"));
        assert_eq!(image_version("nginx:latest"), ImageVersion::Latest);
        assert_eq!(image_version("nginx"), ImageVersion::Untagged);
        assert_eq!(image_version("registry.example.com:5000/billing"), ImageVersion::Untagged);
        assert_eq!(image_version("registry.example.com:5000/billing:v2"), ImageVersion::Tag("v2"));
        assert_eq!(image_version("registry.example.com:5000/team/app:latest"), ImageVersion::Latest);
        assert_eq!(
            image_version("ghcr.io/org/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
            ImageVersion::Digest
        );
        assert_eq!(image_version("app:latest@sha256:abc"), ImageVersion::Digest);
        assert_eq!(image_version("nginx:"), ImageVersion::Untagged);
        assert_eq!(image_version(""), ImageVersion::Untagged);
    }

    /// The registry, the repository and whether `library/` is implied, as parsed.
    fn registry_and_repository(image: &str) -> (&str, &str, bool) {
        let parts = ImageParts::parse(image);
        (parts.registry(image), parts.repository(image), parts.implicit_library)
    }

    #[test]
    fn registries_are_read_like_docker_does() {
        assert_eq!(registry_and_repository("nginx:1.27"), ("docker.io", "nginx", true));
        assert_eq!(registry_and_repository("bitnami/redis"), ("docker.io", "bitnami/redis", false));
        assert_eq!(registry_and_repository("ghcr.io/acme/app:v1"), ("ghcr.io", "acme/app", false));
        assert_eq!(registry_and_repository("registry:5000/tools"), ("registry:5000", "tools", false));
        assert_eq!(registry_and_repository("localhost/app@sha256:abc"), ("localhost", "app", false));
    }

    #[test]
    fn allowed_registries_match_hosts_and_path_prefixes() {
        let allowed = |image: &str, list: &[&str]| {
            ImageParts::parse(image).allowed_in(image, &list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        assert!(allowed("ghcr.io/acme/app:1", &["ghcr.io"]));
        assert!(allowed("ghcr.io/acme/app:1", &["quay.io", "ghcr.io/acme"]));
        assert!(allowed("ghcr.io/acme/app:1", &["ghcr.io/acme/app"]));
        assert!(!allowed("ghcr.io/acme-evil/app:1", &["ghcr.io/acme"]));
        assert!(!allowed("evil.io/ghcr.io/acme/app", &["ghcr.io"]));
        assert!(allowed("nginx:1.27", &["docker.io"]));
        assert!(allowed("nginx:1.27", &["docker.io/library"]));
        assert!(allowed("nginx:1.27", &["index.docker.io/library/nginx"]));
        assert!(!allowed("nginx:1.27", &["docker.io/bitnami"]));
        assert!(!allowed("bitnami/redis", &["docker.io/library"]));
        assert!(!allowed("nginx", &["ghcr.io"]));
        assert!(allowed("registry.example.com:5000/team/app:2", &["registry.example.com:5000/team/"]));
    }
}
