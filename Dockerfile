# Images for the api, the worker and the migration runner, for amd64 and arm64:
#
#   docker buildx build --platform linux/amd64,linux/arm64 --target api -t booking-api .
#   docker buildx build --platform linux/amd64,linux/arm64 --target worker -t booking-worker .
#   docker buildx build --platform linux/amd64,linux/arm64 --target migration -t booking-migration .
#
# The build stage always runs natively on $BUILDPLATFORM and cross-compiles for
# $TARGETPLATFORM with tonistiigi/xx (clang + the target's libc), so no rustc runs
# under emulation. Dependencies and build output live in BuildKit cache mounts, so
# a source change does not rebuild the dependency graph.

ARG RUST_VERSION=1.95

FROM --platform=$BUILDPLATFORM tonistiigi/xx:1.6.1 AS xx

FROM --platform=$BUILDPLATFORM rust:${RUST_VERSION}-slim-bookworm AS build
# xx is a set of scripts meant to be copied in whole (its documented use).
# hadolint ignore=DL3067
COPY --from=xx / /
# clang + lld cross-compile and link; `file` is what xx-verify checks binaries with.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends clang lld file \
 && rm -rf /var/lib/apt/lists/*
ARG TARGETPLATFORM
# The target's C runtime (headers, libgcc), for the C in ring and the bundled
# SQLite: xx's meta-package, which resolves to the right packages per target.
# hadolint ignore=DL3008
RUN xx-apt-get update \
 && xx-apt-get install -y --no-install-recommends xx-c-essentials \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,id=target-${TARGETPLATFORM},sharing=locked \
    xx-cargo build --release --locked --bins \
 && mkdir -p /out/data \
 && for bin in api worker migration; do \
      cp "target/$(xx-cargo --print-target-triple)/release/${bin}" /out/ \
      && xx-verify "/out/${bin}"; \
    done

# glibc, libgcc and CA certificates; no shell, no package manager, uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
# Writable home for embedded mode (`docker run` with no configuration).
COPY --from=build --chown=65532:65532 /out/data /data
WORKDIR /data
USER 65532:65532

FROM runtime AS migration
COPY --from=build /out/migration /usr/local/bin/migration
ENTRYPOINT ["/usr/local/bin/migration"]
CMD ["up"]

FROM runtime AS worker
COPY --from=build /out/worker /usr/local/bin/worker
ENV METRICS_ADDR=0.0.0.0:9100
EXPOSE 9100
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/worker", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/worker"]

# Last, so a plain `docker build .` gives the api.
FROM runtime AS api
COPY --from=build /out/api /usr/local/bin/api
ENV ROCKET_ADDRESS=0.0.0.0 \
    ROCKET_PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["/usr/local/bin/api", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/api"]
