# syntax=docker/dockerfile:1
#
# One image, both binaries: /usr/local/bin/events-service (the default
# entrypoint) and /usr/local/bin/events-gateway (the gateway Deployment sets
# `command:` to it). Both are built from the same sources, link the same
# libraries and are released together, so one image keeps them in lockstep
# (a gateway never talks to a service built from another commit) and halves
# what is built, scanned and pulled; the two still run as separate
# Deployments (see k8s/README.md). The service's MongoDB engine is a module,
# /usr/local/lib/events/events-store-mongo.so, loaded only for a mongodb://
# store (storage/CMakeLists.txt).
#
#   docker build -t events:dev .
#   docker network create events
#   docker run -d --name events-service --network events \
#     -v "$PWD/var/credentials:/etc/events/credentials:ro" \
#     -e EVENTS_CREDENTIALS=/etc/events/credentials events:dev
#   docker run -d --name events-gateway --network events -p 8080:8080 \
#     --entrypoint /usr/local/bin/events-gateway -e EVENTS_GRPC_TARGET=events-service:50051 events:dev

# ---- build: the same CMake build as `scripts/build.sh release` (RelWithDebInfo,
# no sanitizers), without the tests and the Go-built FerretDB test server.
FROM debian:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config \
      libgrpc-dev protobuf-compiler libprotobuf-dev protobuf-c-compiler libprotobuf-c-dev \
      libmicrohttpd-dev libgnutls28-dev libcurl4-openssl-dev libjansson-dev libmongoc-dev libbson-dev libsqlite3-dev libssl-dev \
      python3-venv \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY proto proto
COPY storage storage
COPY common common
COPY services services
COPY gateway gateway
# The google/api and google/rpc protos, from PyPI by name (proto/requirements.txt).
RUN python3 -m venv .pyenv \
 && .pyenv/bin/pip install -q --disable-pip-version-check --no-deps --target googleapis -r proto/requirements.txt
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEVENTS_WERROR=ON -DEVENTS_TESTS=OFF -DEVENTS_SANITIZE=OFF \
      -DGOOGLEAPIS_PROTO_DIR="$PWD/googleapis" \
 && cmake --build build \
 && strip --strip-debug build/bin/events-service build/bin/events-gateway \
      build/lib/events/events-store-mongo.so

# ---- runtime: only the shared libraries the binaries link (checked against
# `readelf -d` + `dpkg -S` by tests/k8s) and CA certificates for TLS to MongoDB.
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libgrpc29 libprotobuf-c1 libmicrohttpd12 libgnutls30 libcurl4 libjansson4 \
      libmongoc-1.0-0 libbson-1.0-0 libsqlite3-0 libssl3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 events \
 && useradd --uid 10001 --gid 10001 --home-dir /var/lib/events --no-create-home \
      --shell /usr/sbin/nologin events \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/events
COPY --from=build /src/build/bin/events-service /src/build/bin/events-gateway /usr/local/bin/
COPY --from=build /src/build/lib/events/events-store-mongo.so /usr/local/lib/events/
# Defaults for a container: listen on all interfaces, embedded SQLite under the
# user's own directory. Kubernetes overrides them from its ConfigMaps/Secrets.
ENV EVENTS_GRPC_ADDR=0.0.0.0:50051 \
    EVENTS_HTTP_ADDR=0.0.0.0:8080 \
    EVENTS_STORE=sqlite:/var/lib/events/events.db
WORKDIR /var/lib/events
# Numeric, so the kubelet can verify runAsNonRoot.
USER 10001:10001
# 50051 gRPC (service), 9464 service /metrics, 8080 HTTP (gateway).
EXPOSE 50051 9464 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/events-service"]
