# syntax=docker/dockerfile:1
# acronis-reports as a container image: the static (musl) binary on Alpine, run as a non-root
# user, with the binary as the entrypoint:
#
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD:/work" -w /work \
#     -e ACRONIS_BASE_URL -e ACRONIS_CLIENT_ID -e ACRONIS_CLIENT_SECRET \
#     ghcr.io/OWNER/acronis-reports:0.1.0 run billing.yml
#
# Why Alpine, not scratch or distroless: GitLab CI's Docker executor runs a job's `script:` with a
# shell inside the job's image, so the image that examples/gitlab-ci.yml uses must have `sh` (and
# the merge job's awk). Alpine brings those and the CA certificates (HTTPS to the data center) in
# about 8 MB; the binary needs nothing else from it.
#
# Where the binary comes from (build argument BINARY):
# - source (the default, `docker build .`): compiled here with the crate's rust-version, for the
#   architecture of the build;
# - prebuilt (release.yml): dist/docker/<amd64|arm64>/acronis-reports, the release's own musl
#   binaries (the bytes of the release archives), so that the multi-arch image needs no emulation:
#   nothing runs for a foreign architecture while the image is built.
ARG BINARY=source
ARG ALPINE=alpine:3.22
ARG RUST=rust:1.90-alpine3.22

FROM ${RUST} AS binary-source
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY crates ./crates
COPY benches ./benches
RUN cargo build --release --locked \
    && install -D -m 0755 target/release/acronis-reports /out/acronis-reports

FROM scratch AS binary-prebuilt
ARG TARGETARCH
COPY dist/docker/${TARGETARCH}/acronis-reports /out/acronis-reports

FROM binary-${BINARY} AS binary

FROM ${ALPINE}
COPY --from=binary --chmod=0755 /out/acronis-reports /usr/local/bin/acronis-reports
# nobody:nogroup. Files written to a mounted folder belong to this user unless `--user` says
# otherwise (as in the example above).
USER 65534:65534
ENTRYPOINT ["acronis-reports"]
CMD ["--help"]
