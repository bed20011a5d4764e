#!/usr/bin/env bash
# Build the serving image: with Docker when a Docker daemon answers, else with buildah (no daemon needed).
#
#   container/scripts/build.sh [IMAGE]        default IMAGE: localhost/pagescribe:<version from pyproject.toml>
#
# Environment:
#   BUILDER         auto (default) | docker | buildah
#   BASE_IMAGE      base of both stages. Docker: the Dockerfile's default (public python slim image).
#                   buildah: a Debian base made here with debootstrap (make-base.sh), since no registry can be
#                   pulled from offline; set BASE_IMAGE=docker.io/library/python:3.11-slim-bookworm where one can.
#   CA_BUNDLE       CA certificates for PyPI behind a TLS-inspecting proxy, passed as the build secret ca_bundle
#                   (default: $PIP_CERT, the bundle this machine's pip is told to use, when set)
#   STORAGE_DRIVER  buildah storage driver (default vfs: needs no overlay support, works inside containers)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -n 1)
image=${1:-localhost/pagescribe:$version}
revision=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ $revision != unknown && -n $(git status --porcelain -- src container pyproject.toml requirements.lock) ]]; then
    revision+="-dirty"
fi
source_url=$(git remote get-url origin 2>/dev/null || echo unknown)
ca_bundle=${CA_BUNDLE:-${PIP_CERT:-}}
storage_driver=${STORAGE_DRIVER:-vfs}

args=(--file container/Dockerfile --tag "$image"
      --build-arg "VERSION=$version" --build-arg "REVISION=$revision" --build-arg "SOURCE=$source_url")
[[ -n $ca_bundle && -s $ca_bundle ]] && args+=(--secret "id=ca_bundle,src=$ca_bundle")

builder=${BUILDER:-auto}
if [[ $builder == auto ]]; then
    if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
        builder=docker
    elif command -v buildah >/dev/null; then
        builder=buildah
    else
        echo "neither a running Docker daemon nor buildah found (make image-tools installs buildah)" >&2
        exit 1
    fi
fi

start=$SECONDS
case $builder in
    docker)
        [[ -n ${BASE_IMAGE:-} ]] && args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
        echo "docker buildx build -> $image"
        # SageMaker accepts only Docker v2 manifests: no provenance or SBOM attestations (they make an OCI image
        # index) and the docker exporter, whatever the daemon's image store keeps; amd64 whatever the host is.
        docker buildx build --platform linux/amd64 --provenance=false --sbom=false --output type=docker \
            "${args[@]}" .
        docker image inspect --format 'image size: {{.Size}} bytes' "$image"
        ;;
    buildah)
        base=${BASE_IMAGE:-localhost/pagescribe-base:bookworm}
        if [[ -z ${BASE_IMAGE:-} ]]; then
            STORAGE_DRIVER=$storage_driver "$repo/container/scripts/make-base.sh" "$base"
        fi
        echo "buildah bud (storage $storage_driver, chroot isolation) -> $image on $base"
        # --format docker: the OCI image format has no HEALTHCHECK; --layers: reuse unchanged steps next time
        buildah --storage-driver "$storage_driver" bud --isolation chroot --network host --layers \
            --format docker --build-arg "BASE_IMAGE=$base" "${args[@]}" .
        echo "image size: $(buildah --storage-driver "$storage_driver" images --noheading --format '{{.Size}}' "$image")"
        ;;
    *)
        echo "BUILDER must be auto, docker or buildah, not $builder" >&2
        exit 1
        ;;
esac
echo "built $image with $builder in $((SECONDS - start)) s"
