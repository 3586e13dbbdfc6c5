#!/usr/bin/env bash
# Pin every base and service image to a digest: `make pin-images` (needs Docker with buildx
# and access to the registries), then review and commit the diff.
#
# A tag can be moved by its publisher; a digest cannot. This script finds each image
# reference the deployment files use (TF Serving, Python, Prometheus, blackbox_exporter),
# asks the registry for the digest the tag points at now
# (`docker buildx imagetools inspect`: the multi-platform index, so every platform stays
# pinned), and writes it next to the tag as `name:tag@sha256:...`, which Docker pulls by
# digest while the tag stays readable. Run again to move to what the tags point at today.
#
#   deploy/pin-images.sh           resolve and write the digests
#   deploy/pin-images.sh --check   list references without a digest; exit 1 if any
#
# Files: docker-compose*.yml, .env.example, .env (when present: it overrides the compose
# defaults) and the services' image template (ARG PYTHON_IMAGE). PIN_ROOT points it at another
# checkout (the tests run it on a copy, with a stand-in `docker`).
set -euo pipefail

root=${PIN_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"
files=()
for f in docker-compose.yml docker-compose.cpu.yml docker-compose.monitoring.yml .env.example .env \
  deploy/docker/service.Dockerfile; do
  [ -f "$f" ] && files+=("$f")
done
# name:tag of the images we pull (ours, talkative/*, are built here, not pulled)
ref_re='(tensorflow/serving|python|prom/prometheus|prom/blackbox-exporter):[A-Za-z0-9][A-Za-z0-9._-]*'
mapfile -t refs < <(grep -ohE "$ref_re" "${files[@]}" | sort -u)
if [ "${#refs[@]}" -eq 0 ]; then
  echo "pin-images: no image reference found under $root" >&2
  exit 1
fi

if [ "${1:-}" = "--check" ]; then
  unpinned=0
  for ref in "${refs[@]}"; do
    if grep -qE "(^|:-|[^A-Za-z0-9._/-])${ref//./\\.}([^@A-Za-z0-9._-]|$)" "${files[@]}"; then
      echo "not pinned: $ref"
      unpinned=1
    fi
  done
  [ "$unpinned" = 0 ] && echo "every image reference carries a digest"
  exit "$unpinned"
fi

command -v docker >/dev/null || { echo "pin-images: needs docker (with buildx)" >&2; exit 1; }
for ref in "${refs[@]}"; do
  manifest=$(docker buildx imagetools inspect "$ref" --format '{{json .Manifest}}')
  digest=$(printf '%s' "$manifest" | grep -oE '"digest": *"sha256:[0-9a-f]{64}"' | head -n 1 |
    grep -oE 'sha256:[0-9a-f]{64}')
  if [ -z "$digest" ]; then
    echo "pin-images: no digest for $ref in: $manifest" >&2
    exit 1
  fi
  escaped=${ref//./\\.}
  sed -i -E "s#(^|:-|[^A-Za-z0-9._/-])${escaped}(@sha256:[0-9a-f]{64})?([^A-Za-z0-9._-]|\$)#\1${ref}@${digest}\3#g" \
    "${files[@]}"
  echo "$ref -> $digest"
done
echo "pinned ${#refs[@]} images in: ${files[*]}"
