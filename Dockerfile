# syntax=docker/dockerfile:1
# kube-devops: one image, one binary; every component is a subcommand:
#   docker run IMAGE watch | reconcile | webhook serve --tls-cert ... --tls-key ... | operator
# Build: docker build -t ghcr.io/stochastic/kube-devops:v$(cargo pkgid | cut -d'#' -f2) .

# The builder: the full Rust image carries what the openssl crate builds against
# (libssl-dev, pkg-config). Debian trixie, as the runtime below, so glibc and libssl match.
FROM rust:1.95-trixie AS builder
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --package kube-devops --bin kube-devops \
    && install -D -m 0755 target/release/kube-devops /out/kube-devops

# The runtime: minimal Debian with CA certificates and the OpenSSL library, non-root.
FROM debian:trixie-slim
# Package versions are not pinned: Debian stable only ships security and bug fixes, and
# its archive drops superseded versions, so pins would break rebuilds (the base tag pins
# the release). Listed in security/accepted-findings.md.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3t64 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 1000 kube-devops \
    && useradd --system --uid 1000 --gid 1000 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin kube-devops
COPY --from=builder /out/kube-devops /usr/local/bin/kube-devops
USER 1000:1000
# watch, reconcile (HTTP) and webhook (HTTPS); the operator uses 8081.
EXPOSE 8080 9090 8443
ENTRYPOINT ["/usr/local/bin/kube-devops"]
CMD ["--help"]
