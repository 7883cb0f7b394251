# syntax=docker/dockerfile:1
#
# One image for the orgsync binaries: producer, worker, fakeorg and demo (the
# development-only bench command is left out). The compose file picks the
# binary with `command:`.
#
#   docker build -t orgsync .
#   docker run --rm orgsync worker run -h
#
# Stage 1 builds static binaries; stage 2 is distroless (no shell, no package
# manager, runs as uid 65532 "nonroot", CA certificates and tzdata included).

FROM golang:1.26 AS build
WORKDIR /src
# Dependencies first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# -o DIR/ writes one binary each.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/bin/ ./cmd/producer ./cmd/worker ./cmd/fakeorg ./cmd/demo \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/bin/ /usr/local/bin/
# The data directory (worker ID maps, producer checkpoint). A named volume
# mounted here starts with this ownership, so the nonroot user can write it.
# No VOLUME line: compose mounts named volumes where they are needed, and a
# VOLUME would leave an anonymous volume behind every fakeorg or one-off container.
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
WORKDIR /data
ENV ORGSYNC_DATA_DIR=/data
# 9090: -metrics-addr (/metrics, /healthz, /readyz); 8090: producer serve; 8081: fakeorg.
EXPOSE 9090 8090 8081
CMD ["worker", "run"]
