# TF Serving's healthcheck. docker-compose.yml runs it in the tfserving container (mounted
# with the configs at /config; the image has bash and coreutils but no curl, ps or pgrep):
#
#   bash /config/healthcheck.sh MODEL...
#
# Healthy (exit 0) when
#   1. every MODEL answers AVAILABLE under its `stable` label on the REST status API
#      (127.0.0.1:$TFSERVING_REST_PORT, default 8501), and
#   2. with TFSERVING_REQUIRE_GPU=1 (docker-compose.yml; the CPU override sets 0), the
#      tensorflow_model_server process holds an NVIDIA GPU device node (/dev/nvidia0,
#      /dev/nvidia1, ...) open. The CUDA driver opens it when TensorFlow sets up its GPU
#      device, at the first model load. With no usable GPU (no device passed in, a driver
#      too old for the image's CUDA) TensorFlow logs a warning and quietly runs every
#      model on the CPU; this check makes that an unhealthy container instead, so the
#      services that depend on it do not start and `docker compose up` says so.
# What it does not prove: that every op of a graph runs on the GPU (TF Serving's log
# line "Created device .../device:GPU:0" and the host's `nvidia-smi` show the memory).
# Otherwise it prints why and exits 1; `docker inspect tfserving` shows the message.
# PROC_ROOT (default /proc) lets the tests point the GPU check at a made-up process table.
set -u
port=${TFSERVING_REST_PORT:-8501}
proc=${PROC_ROOT:-/proc}

for model in "$@"; do
  if ! exec 3<>"/dev/tcp/127.0.0.1/$port"; then
    echo "tfserving: nothing answers on 127.0.0.1:$port"
    exit 1
  fi
  printf 'GET /v1/models/%s/labels/stable HTTP/1.0\r\n\r\n' "$model" >&3
  if ! grep -q AVAILABLE <&3; then
    echo "tfserving: model $model is not AVAILABLE under the label stable"
    exit 1
  fi
  exec 3<&-
done

if [ "${TFSERVING_REQUIRE_GPU:-0}" = 1 ]; then
  found_server=
  for dir in "$proc"/[0-9]*; do
    argv0=
    IFS= read -r -d '' argv0 < "$dir/cmdline" 2>/dev/null
    [ "${argv0##*/}" = tensorflow_model_server ] || continue
    found_server=${dir##*/}
    for fd in "$dir"/fd/*; do
      target=$(readlink "$fd" 2>/dev/null) || continue
      case "$target" in
        /dev/nvidia[0-9]*)
          echo "tfserving: GPU in use (tensorflow_model_server, pid $found_server, holds $target)"
          exit 0
          ;;
      esac
    done
  done
  if [ -z "$found_server" ]; then
    echo "tfserving: no tensorflow_model_server process found"
  else
    echo "tfserving: NO GPU: tensorflow_model_server (pid $found_server) holds no" \
      "/dev/nvidia<N> open, so TensorFlow runs on the CPU. Check the driver against the" \
      "image's CUDA (docs/deployment.md); TFSERVING_REQUIRE_GPU=0 runs it anyway."
  fi
  exit 1
fi
exit 0
