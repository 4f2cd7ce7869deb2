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
    if image.contains('@') {
        return ImageVersion::Digest;
    }
    let last_component = image.rsplit('/').next().unwrap_or(image);
    match last_component.rsplit_once(':') {
        Some((_, "latest")) => ImageVersion::Latest,
        Some((_, tag)) if !tag.is_empty() => ImageVersion::Tag(tag),
        _ => ImageVersion::Untagged,
    }
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
}
