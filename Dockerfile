# syntax=docker/dockerfile:1

# One build stage compiles both commands; two small final stages each ship
# one static binary on distroless, as the non-root user 65532:
#
#   docker build --target bridge -t notified-bridge .          # the default (last) stage
#   docker build --target worker -t notified-example-worker .
#
# docker-compose.yml builds both targets; they share the build stage's cache.

FROM golang:1.26-bookworm AS build
WORKDIR /src
# Dependencies first: this layer is reused until go.mod or go.sum changes.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/notified-bridge ./cmd/notified-bridge && \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/example-worker ./cmd/example-worker

# The example worker: a River worker process running the handlers of
# package example (send_welcome_email, write_audit, call_webhook).
FROM gcr.io/distroless/static-debian12:nonroot AS worker
COPY --from=build /out/example-worker /example-worker
USER 65532:65532
ENTRYPOINT ["/example-worker"]

# The bridge. Commands: setup (one-shot), run, healthcheck, and the rest of
# the CLI; see `docker run --rm notified-bridge --help`.
FROM gcr.io/distroless/static-debian12:nonroot AS bridge
COPY --from=build /out/notified-bridge /notified-bridge
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/notified-bridge"]
CMD ["run"]
