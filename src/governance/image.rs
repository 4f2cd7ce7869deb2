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
