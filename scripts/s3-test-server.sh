#!/usr/bin/env bash
# A throw-away S3 server for tests, benches and local trials: Ceph RGW on a one-node cluster (one mon, one OSD on a
# sparse file), everything in one temporary folder, listening on 127.0.0.1 only, on free ports.
#
#   scripts/s3-test-server.sh start [DIR]   start a fresh cluster (in DIR, or a new folder under $TMPDIR); prints
#                                           shell assignments: S3_TEST_DIR, S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
#                                           AWS_SECRET_ACCESS_KEY, S3_TEST_KMS_KEYS (also written to DIR/env)
#   scripts/s3-test-server.sh stop DIR      stop its daemons (SIGTERM, then SIGKILL after 3 s) and delete DIR
#   scripts/s3-test-server.sh status DIR    exit 0 when its gateway answers
#
# Example: eval "$(scripts/s3-test-server.sh start)"; ...; scripts/s3-test-server.sh stop "$S3_TEST_DIR"
# Environment: S3_TEST_ACCESS_KEY / S3_TEST_SECRET_KEY (the test user's keys; fixed defaults: this server is
# a loopback toy), S3_TEST_KEEP=1 (stop keeps DIR, e.g. to read the daemons' logs in DIR/log).
# Needs Debian's radosgw, ceph-mon and ceph-osd (scripts/setup.sh --test).
set -euo pipefail

log() { printf '[s3-test-server] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

ACCESS_KEY="${S3_TEST_ACCESS_KEY:-knn-test-access-key}"
SECRET_KEY="${S3_TEST_SECRET_KEY:-knn-test-secret-key}"
DAEMONS=(client.rgw osd.0 mon.a) # stop order: gateway first, monitor last
RGW_POOLS=(.rgw.root default.rgw.control default.rgw.meta default.rgw.log default.rgw.buckets.index
  default.rgw.buckets.data default.rgw.buckets.non-ec)
KMS_KEYS='knn-test-key-1 knn-test-key-2' # SSE-KMS key ids the gateway knows (random keys per cluster)

# Prints a TCP port that is free on 127.0.0.1 right now (the kernel picks it; a daemon binds it moments later).
free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# Succeeds when the gateway at $1 answers an anonymous ListBuckets with HTTP 200.
gateway_up() {
  node -e 'fetch(process.argv[1]).then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))' "$1"
}

write_conf() {
  local dir=$1 mon_port=$2 rgw_port=$3 fsid=$4 kms_keys="" name
  for name in $KMS_KEYS; do kms_keys+="$name=$(head -c 32 /dev/urandom | base64) "; done
  cat >"$dir/ceph.conf" <<EOF
[global]
fsid = $fsid
mon_host = v2:127.0.0.1:$mon_port
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
# No cephx: a loopback cluster for tests. Clients must then ask for crc mode, or they retry forever with -13.
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
ms_mon_client_mode = crc
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
run_dir = $dir/run
admin_socket = $dir/run/\$name.asok
pid_file = $dir/run/\$name.pid
log_file = $dir/log/\$name.log
mon_cluster_log_file = $dir/log/cluster.log
mon_data = $dir/mon/\$name
osd_data = $dir/osd/\$name
# BlueStore on a sparse file: only what is written uses disk, and deleted data is really freed.
osd_objectstore = bluestore
bluestore_block_create = true
bluestore_block_size = 21474836480
# Small caches: CI machines have 2 cores and little memory to spare next to the tests.
osd_memory_target = 939524096
bluestore_cache_autotune = false
bluestore_cache_size = 268435456
mon_osd_full_ratio = 0.97
mon_osd_nearfull_ratio = 0.95
mon_osd_backfillfull_ratio = 0.96

[client.rgw]
rgw_frontends = beast endpoint=127.0.0.1:$rgw_port
rgw_data = $dir/rgw
rgw_gc_obj_min_wait = 0
rgw_gc_processor_period = 10
rgw_thread_pool_size = 64
# SSE-KMS with RGW's built-in test key store (keys named in KMS_KEYS), over plain HTTP on loopback.
rgw_crypt_s3_kms_backend = testing
rgw_crypt_s3_kms_encryption_keys = $kms_keys
rgw_crypt_require_ssl = false
EOF
}

start() {
  local dir=${1:-}
  for bin in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph node; do
    command -v "$bin" >/dev/null || die "$bin not found: run scripts/setup.sh --test (Debian radosgw ceph-mon ceph-osd)"
  done
  if [ -z "$dir" ]; then dir=$(mktemp -d "${TMPDIR:-/tmp}/knn-s3.XXXXXX"); else mkdir -p "$dir"; fi
  dir=$(cd "$dir" && pwd)
  [ -e "$dir/ceph.conf" ] && die "$dir already holds a cluster: stop it first, or pass another folder"
  mkdir -p "$dir/run" "$dir/log" "$dir/mon/mon.a" "$dir/osd/osd.0" "$dir/rgw"

  local mon_port rgw_port fsid osd_uuid conf="$dir/ceph.conf"
  mon_port=$(free_port)
  rgw_port=$(free_port)
  while [ "$rgw_port" = "$mon_port" ]; do rgw_port=$(free_port); done
  fsid=$(cat /proc/sys/kernel/random/uuid)
  write_conf "$dir" "$mon_port" "$rgw_port" "$fsid"
  # Any failure below stops what was started, so a failed start leaves no daemons behind.
  trap 'log "start failed; logs in $dir/log"; S3_TEST_KEEP=1 stop "$dir"' ERR

  log "starting ceph-mon on 127.0.0.1:$mon_port ($dir)"
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$dir/monmap" >/dev/null
  ceph-mon -c "$conf" -i a --mkfs --monmap "$dir/monmap" >"$dir/log/mkfs.log" 2>&1
  ceph-mon -c "$conf" -i a

  log "starting ceph-osd"
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  local osd_id
  osd_id=$(ceph -c "$conf" --connect-timeout 30 osd new "$osd_uuid" 2>>"$dir/log/mkfs.log")
  [ "$osd_id" = 0 ] || die "expected osd id 0, got '$osd_id'"
  # RGW would create its pools one by one at start, each waiting for its placement groups; created here, in
  # parallel and while the OSD is being made, they cost almost nothing (saves ~6 s of the cold start).
  local pool
  for pool in "${RGW_POOLS[@]}"; do
    { ceph -c "$conf" osd pool create "$pool" 8 8 --autoscale-mode=off &&
      ceph -c "$conf" osd pool application enable "$pool" rgw; } >>"$dir/log/mkfs.log" 2>&1 &
  done
  ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$osd_uuid" >>"$dir/log/mkfs.log" 2>&1
  ceph-osd -c "$conf" -i 0 2>>"$dir/log/mkfs.log"
  wait # for the pools

  log "starting radosgw on 127.0.0.1:$rgw_port"
  radosgw -c "$conf" -n client.rgw 2>>"$dir/log/mkfs.log"
  local endpoint="http://127.0.0.1:$rgw_port" deadline=$((SECONDS + 120))
  until gateway_up "$endpoint"; do
    [ $SECONDS -lt $deadline ] || die "radosgw did not answer on $endpoint within 120 s"
    daemon_alive "$dir" client.rgw || die "radosgw exited; see $dir/log/client.rgw.log"
    sleep 0.3
  done
  radosgw-admin -c "$conf" user create --uid knn-test --display-name 'knn tests' \
    --access-key "$ACCESS_KEY" --secret-key "$SECRET_KEY" >/dev/null 2>>"$dir/log/mkfs.log"
  trap - ERR

  {
    echo "S3_TEST_DIR=$dir"
    echo "S3_ENDPOINT_URL=$endpoint"
    echo "AWS_ACCESS_KEY_ID=$ACCESS_KEY"
    echo "AWS_SECRET_ACCESS_KEY=$SECRET_KEY"
    echo "S3_TEST_KMS_KEYS='$KMS_KEYS'"
  } >"$dir/env"
  log "ready: $endpoint (stop with: $0 stop $dir)"
  sed 's/^/export /' "$dir/env"
}

daemon_pid() { cat "$1/run/$2.pid" 2>/dev/null || true; }

# True while the daemon runs: its pid file names a live process started with this cluster's ceph.conf (so a
# recycled pid of some other process is never signalled).
daemon_alive() {
  local pid
  pid=$(daemon_pid "$1" "$2")
  [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$1/ceph.conf"
}

stop() {
  local dir=${1:-}
  [ -n "$dir" ] || die "usage: $0 stop DIR"
  [ -d "$dir" ] || { log "$dir does not exist: nothing to stop"; return 0; }
  [ -f "$dir/ceph.conf" ] || die "$dir is not a test cluster folder (no ceph.conf): refusing to touch it"
  dir=$(cd "$dir" && pwd)
  local name pids=() pid
  for name in "${DAEMONS[@]}"; do
    daemon_alive "$dir" "$name" && pids+=("$(daemon_pid "$dir" "$name")")
  done
  [ ${#pids[@]} -gt 0 ] && kill -TERM "${pids[@]}" 2>/dev/null
  # Throw-away data: a daemon still shutting down after 3 s is killed rather than waited for.
  wait_gone 30 "${pids[@]}" || { kill -KILL "${pids[@]}" 2>/dev/null; wait_gone 50 "${pids[@]}"; } || true
  if [ "${S3_TEST_KEEP:-0}" = 1 ]; then log "stopped; kept $dir"; else rm -rf "$dir"; fi
}

# Waits up to $1 tenths of a second for the processes after it to exit; fails if one is still there.
wait_gone() {
  local tenths=$1 pid
  shift
  for _ in $(seq "$tenths"); do
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && break; pid=; done
    [ -z "${pid:-}" ] && return 0
    sleep 0.1
  done
  return 1
}

status() {
  local dir=${1:-}
  [ -f "$dir/env" ] || { log "no running test server in '${dir}'"; return 1; }
  local endpoint
  endpoint=$(sed -n 's/^S3_ENDPOINT_URL=//p' "$dir/env")
  gateway_up "$endpoint" || { log "$endpoint does not answer"; return 1; }
  echo "$endpoint"
}

cmd=${1:-}
shift || true
case "$cmd" in
  start) start "$@" ;;
  stop) stop "$@" ;;
  status) status "$@" ;;
  *) die "usage: $0 start [DIR] | stop DIR | status DIR" ;;
esac
