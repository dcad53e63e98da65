# syntax=docker/dockerfile:1
#
# Courier image: the five binaries (api, worker, gateway, pusher, courier) in /usr/local/bin.
#   docker build -t courier .
#   docker run --rm courier courier migrate            (needs DATABASE_URL, JWT_SECRET, ...)
# Migrations are compiled into the binaries (sqlx::migrate!), so the image carries no SQL files.

ARG RUST_IMAGE=rust:1-bookworm

# ---------------------------------------------------------------------------------------------
FROM ${RUST_IMAGE} AS builder
WORKDIR /build
# SQLX_OFFLINE: sqlx's query macros check the statements against the committed offline
# data (.sqlx/), not a database (there is none at build time).
ENV CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0 \
    SQLX_OFFLINE=true

# 1. Dependencies only, cached until Cargo.toml or Cargo.lock change: the real manifest with
#    stub sources for the library and the five [[bin]] targets it declares, and the
#    patched crates the manifest's [patch.crates-io] points at (patches/README.md).
COPY Cargo.toml Cargo.lock ./
COPY patches ./patches
RUN mkdir -p src bin \
 && echo '// dependency-caching stub' > src/lib.rs \
 && for b in api worker gateway pusher courier; do echo 'fn main() {}' > "bin/$b.rs"; done \
 && cargo build --release --locked --bins \
 && rm -rf src bin \
           target/release/api target/release/worker target/release/gateway target/release/pusher \
           target/release/courier target/release/deps/api-* target/release/deps/worker-* \
           target/release/deps/gateway-* target/release/deps/pusher-* \
           target/release/deps/courier-* target/release/deps/libcourier-* \
           target/release/.fingerprint/courier-* target/release/.fingerprint/api-* \
           target/release/.fingerprint/worker-* target/release/.fingerprint/gateway-* \
           target/release/.fingerprint/pusher-*

# 2. The crate itself: library (src/), thin mains (bin/), the migrations that
#    sqlx::migrate!("./migrations") embeds at compile time, the offline data of the
#    query macros (.sqlx/), and the AsyncAPI document that GET /asyncapi.json serves
#    (include_str!).
COPY src ./src
COPY .sqlx ./.sqlx
COPY bin ./bin
COPY migrations ./migrations
COPY docs/asyncapi.json ./docs/asyncapi.json
RUN touch src/lib.rs bin/*.rs \
 && cargo build --release --locked --bins \
 && mkdir -p /out \
 && cp target/release/api target/release/worker target/release/gateway target/release/pusher \
       target/release/courier /out/

# ---------------------------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime

# ca-certificates for TLS to managed services; curl for the container health checks
# (curl -fsS http://127.0.0.1:$PORT/readyz).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 courier \
 && useradd --system --uid 10001 --gid courier --home-dir /nonexistent --no-create-home \
            --shell /usr/sbin/nologin courier \
 && mkdir -p /app

COPY --from=builder /out/api /out/worker /out/gateway /out/pusher /out/courier /usr/local/bin/

# An empty working directory: Courier loads ./.env when present, and none is shipped
# (.dockerignore keeps .env out of the build context). Configure through the environment.
WORKDIR /app
ENV HOST=0.0.0.0 \
    RUST_LOG=info
# 3000 api / all-in-one (PORT), 3001 gateway (GATEWAY_PORT), 3002 worker probes (WORKER_PORT),
# 3004 pusher probes (PUSHER_PORT)
EXPOSE 3000 3001 3002 3004
USER 10001:10001
STOPSIGNAL SIGTERM
CMD ["courier"]
