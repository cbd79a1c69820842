#!/usr/bin/env bash
# Builds the sensor's container image without a container daemon, into an OCI image-layout
# tarball: a static binary (CGO off) as the only layer on an empty base, entrypoint, user and
# OCI labels set with crane (go-containerregistry, built from Go modules by
# deploy/tools/build.sh) against a registry it serves on loopback for the duration of the build.
# The content is the Dockerfile's (FROM scratch). README "Container image" tells how to push it.
# usage: deploy/image/build.sh OUT.tar [TAG]
set -euo pipefail
out=${1:?usage: $0 OUT.tar [TAG]}
tag=${2:-dev}
here=$(cd "$(dirname "$0")/../.." && pwd)
crane=$("$here/deploy/tools/build.sh" crane)
work=$(mktemp -d)
reg_pid=""
cleanup() { [ -z "$reg_pid" ] || kill "$reg_pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

mkdir -p "$work/root"
rev=$(git -C "$here" rev-parse HEAD 2>/dev/null || echo unknown)
# Stamped like make build / make docker: `minerguard version` names the tag and commit.
v=github.com/minerguard/minerguard/internal/version
(cd "$here" && CGO_ENABLED=0 GOOS=linux go build -trimpath \
  -ldflags "-s -w -X $v.version=$tag -X $v.revision=$rev" -o "$work/root/minerguard" ./cmd/minerguard)
# Reproducible layer: fixed owner and time, so the same source gives the same digest.
tar --create --file "$work/layer.tar" --directory "$work/root" --owner=0 --group=0 --numeric-owner \
  --mtime=@0 --sort=name --mode=0755 minerguard

# An in-memory registry on loopback: crane mutates images by reference, not in files.
"$crane" registry serve --address 127.0.0.1:0 >"$work/registry.log" 2>&1 &
reg_pid=$!
port=""
for _ in $(seq 50); do
  port=$(sed -n 's/.*serving on port \([0-9]*\).*/\1/p' "$work/registry.log" | head -1)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { cat "$work/registry.log" >&2; echo "crane registry did not start" >&2; exit 1; }
ref=127.0.0.1:$port/minerguard
"$crane" append --insecure --oci-empty-base -f "$work/layer.tar" -t "$ref:layer" >/dev/null
# Root (uid 0) because the capabilities the DaemonSet adds are only effective for root: Kubernetes
# grants no ambient capabilities to other users. The DaemonSet still drops all others.
"$crane" mutate --insecure "$ref:layer" -t "$ref:$tag" \
  --entrypoint /minerguard --user 0:0 --set-platform linux/$(go env GOARCH) \
  -l org.opencontainers.image.title=minerguard \
  -l org.opencontainers.image.source=https://github.com/minerguard/minerguard \
  -l org.opencontainers.image.revision="$rev" \
  -l org.opencontainers.image.version="$tag" >/dev/null
"$crane" pull --insecure --format oci "$ref:$tag" "$work/oci"
tar --create --file "$out" --directory "$work/oci" --owner=0 --group=0 --numeric-owner --mtime=@0 --sort=name .
echo "$out: $("$crane" digest --insecure "$ref:$tag")"
