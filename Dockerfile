# The natter image: one static binary, every role (`natter serve`, `natter
# nats`, `natter gateway`, ...), on distroless/static as a non-root user.
#   docker build -t natter:dev .
#   docker run -d -p 8080:8080 -v natter-data:/data -e NATTER_JWT_SECRET="$(openssl rand -base64 48)" natter:dev
# deploy/compose, deploy/kubernetes and docs/operations.md ("Container
# image") use it; deploy/deploy_test.go runs this file's go build and checks
# the result is static.

# The builder's Go is go.mod's toolchain line, so the image is built with
# the same standard library as CI.
FROM golang:1.26.10-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN go build -trimpath -ldflags="-s -w" -o /out/natter ./cmd/natter
# /data belongs to the runtime user, so a fresh named volume (which copies
# the image's ownership) is writable without a root init step.
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/natter /usr/local/bin/natter
COPY --from=build --chown=65532:65532 /out/data /data
# 65532 is distroless's "nonroot"; numeric, so Kubernetes' runAsNonRoot
# can verify it.
USER 65532:65532
WORKDIR /data
VOLUME /data
# 8080 WebSocket and /healthz, 9090 --metrics (/metrics, /readyz), 4222
# NATS clients, 6222 NATS routes, 8222 a natter nats node's /healthz,
# /readyz and /metrics.
EXPOSE 8080 9090 4222 6222 8222
# No ENTRYPOINT: the manifests give the whole command line, starting with
# natter (found on the PATH in /usr/local/bin).
CMD ["natter", "serve", "--data=/data", "--http=0.0.0.0:8080", "--metrics=0.0.0.0:9090"]
