# The sensor's image: the static binary alone. make docker (stamps the version), or
# docker build --build-arg VERSION=$(git describe --tags --always) --build-arg REVISION=$(git rev-parse HEAD) -t minerguard .
# Without a daemon, `make image` builds the same content into an OCI tarball (deploy/image/build.sh).
FROM golang:1.26 AS build
ARG VERSION=dev
ARG REVISION=unknown
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w \
      -X github.com/minerguard/minerguard/internal/version.version=${VERSION} \
      -X github.com/minerguard/minerguard/internal/version.revision=${REVISION}" \
      -o /minerguard ./cmd/minerguard

FROM scratch
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title=minerguard \
      org.opencontainers.image.version=${VERSION} \
      org.opencontainers.image.revision=${REVISION} \
      org.opencontainers.image.source=https://github.com/minerguard/minerguard
COPY --from=build /minerguard /minerguard
# Root: the DaemonSet's added capabilities are effective only for uid 0 (no ambient capabilities).
USER 0:0
ENTRYPOINT ["/minerguard"]
