#!/usr/bin/env bash
# The container test, as CI can run it on a Debian 12 machine without a registry or a GPU:
#   1. installs podman, runc and debootstrap (apt) and the host's test set-up (scripts/setup.sh --test);
#   2. builds the API image through Dockerfile.base (scripts/container-build.sh --local: a debootstrap'd Debian base,
#      the project's Node 24, the CPU builder); images stay cached in podman's store between runs;
#   3. starts the S3 test server on loopback (or uses the one named by S3_TEST_DIR / S3_TEST_ENDPOINT);
#   4. runs the image with host networking on a free loopback port, configured for that S3 server, locked down as
#      deploy/kubernetes runs it (read-only root file system, /tmp writable, no capabilities); checks its
#      HEALTHCHECK, tini as PID 1 and that the service does not run as root;
#   5. runs test/container/ and test/integration/knn-faithful.test.ts against it (KNN_SERVICE_URL);
#   6. stops it with SIGTERM (it must drain and exit 0) and removes it, also when anything fails.
# Prints a timing table at the end. Arguments are passed to vitest instead of the default test files.
# Environment: CONTAINER_TEST_SKIP_SETUP=1 (skip scripts/setup.sh --test), KNN_CONTAINER_CACHE (see
# container-build.sh), IMAGE (default localhost/knn-remote-index-builder:test).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[container-test] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (podman as root needs no user namespaces here)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/docker/containers.conf}"
export IMAGE=${IMAGE:-localhost/knn-remote-index-builder:test}
timings=()
phase_start=$SECONDS
phase() { timings+=("$(printf '%-28s %4d s' "$1" $((SECONDS - phase_start)))"); phase_start=$SECONDS; }

container=""
s3_dir=""
work=$(mktemp -d "${TMPDIR:-/tmp}/knn-container-test.XXXXXX")
cleanup() {
  local rc=$?
  if [ -n "$container" ]; then
    if [ "$rc" != 0 ]; then
      log "container logs (last 40 lines):"
      podman logs --tail 40 "$container" >&2 2>&1 || true
    fi
    podman rm -f -t 5 "$container" >/dev/null 2>>"$work/podman.err" || log "could not remove container $container"
  fi
  [ -n "$s3_dir" ] && bash scripts/s3-test-server.sh stop "$s3_dir" >/dev/null 2>&1
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. tools
missing=()
for p in podman runc debootstrap; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
    { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
fi
[ "${CONTAINER_TEST_SKIP_SETUP:-0}" = 1 ] || bash scripts/setup.sh --test
# The tests below run on the project's Node 24, as the image does.
# shellcheck source=scripts/node-env.sh
. scripts/node-env.sh
phase "tools and host set-up"

# --- 2. images
bash scripts/container-build.sh --local >"$work/build.log" 2>&1 ||
  { tail -n 60 "$work/build.log" >&2; die "image build failed"; }
grep -E '^\[container-build\]|GPU builder|runtime packages' "$work/build.log" >&2 || true
phase "image builds"

# --- 3. S3 test server
if [ -n "${S3_TEST_ENDPOINT:-}" ]; then
  S3_ENDPOINT_URL=$S3_TEST_ENDPOINT
  AWS_ACCESS_KEY_ID=${S3_TEST_ACCESS_KEY:-knn-test-access-key}
  AWS_SECRET_ACCESS_KEY=${S3_TEST_SECRET_KEY:-knn-test-secret-key}
elif [ -n "${S3_TEST_DIR:-}" ]; then
  # shellcheck disable=SC1091
  . "$S3_TEST_DIR/env"
else
  eval "$(bash scripts/s3-test-server.sh start)"
  s3_dir=$S3_TEST_DIR
fi
phase "S3 test server"

# --- 4. the service in its container
port=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
# Podman logs harmless errors about systemd timers for the image's HEALTHCHECK (no systemd here): kept in a file.
# Locked down as deploy/kubernetes runs it: read-only root file system with /tmp writable, no capabilities, no
# privilege escalation.
container=$(podman run -d --name "knn-container-test-$$" --network host \
  --ulimit nofile=20000:20000 --ulimit nproc=4096:4096 \
  --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges \
  -e HOST=127.0.0.1 -e PORT="$port" -e LOG_LEVEL=info \
  -e S3_ENDPOINT_URL="$S3_ENDPOINT_URL" -e AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" \
  -e AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" -e AWS_DEFAULT_REGION=us-east-1 \
  "$IMAGE" 2>>"$work/podman.err") || { cat "$work/podman.err" >&2; die "podman run failed"; }
url="http://127.0.0.1:$port"
deadline=$((SECONDS + 60))
until node -e 'fetch(process.argv[1]).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))' "$url/_heart_beat"; do
  [ "$(podman inspect -f '{{.State.Running}}' "$container")" = true ] || die "the container exited"
  [ $SECONDS -lt $deadline ] || die "no heart beat from $url within 60 s"
  sleep 0.2
done
podman healthcheck run "$container" 2>>"$work/podman.err" || die "the image's HEALTHCHECK fails"
uid=$(podman exec "$container" id -u 2>>"$work/podman.err") || die "podman exec id -u failed"
[ "$uid" != 0 ] || die "the service runs as root in the image (Dockerfile.api USER)"
# tini as PID 1 (Dockerfile.api ENTRYPOINT): it reaps orphaned build workers and signals node alone.
[ "$(podman exec "$container" cat /proc/1/comm 2>>"$work/podman.err")" = tini ] || die "PID 1 in the image is not tini"
log "service up at $url (container ${container:0:12}, $IMAGE, uid $uid); health check: healthy"
phase "container start"

# --- 5. tests against it
tests=("$@")
if [ ${#tests[@]} -eq 0 ]; then
  tests=(test/container/)
  [ -f test/integration/knn-faithful.test.ts ] && tests+=(test/integration/knn-faithful.test.ts)
fi
KNN_SERVICE_URL=$url S3_TEST_ENDPOINT=$S3_ENDPOINT_URL S3_TEST_ACCESS_KEY=$AWS_ACCESS_KEY_ID \
  S3_TEST_SECRET_KEY=$AWS_SECRET_ACCESS_KEY npx vitest run "${tests[@]}"
phase "tests against the container"

# --- 6. graceful stop: SIGTERM, drain, exit 0
podman stop -t 30 "$container" >/dev/null 2>>"$work/podman.err"
code=$(podman inspect -f '{{.State.ExitCode}}' "$container")
[ "$code" = 0 ] || die "the service exited $code after SIGTERM (expected 0)"
podman logs "$container" 2>&1 | grep -q '"msg":"shut down"' || die "no 'shut down' in the service's log after SIGTERM"
log "SIGTERM: drained and exited 0"
phase "stop"

printf '\n[container-test] timings\n' >&2
printf '  %s\n' "${timings[@]}" >&2
