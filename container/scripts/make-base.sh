#!/usr/bin/env bash
# Make a local base image from Debian packages with debootstrap, for builds where no registry can be pulled from.
#
# The image stands in for the public python:3.11-slim base: Debian 12 with Python 3.11, venv, CA certificates and
# the OpenMP runtime. The Dockerfile installs the rest with apt-get, so it builds the same on either base.
#
#   container/scripts/make-base.sh [IMAGE_NAME]      (root; needs debootstrap and buildah)
#
# Environment: SUITE (bookworm), MIRROR (http://deb.debian.org/debian), WORK_DIR (/var/tmp/pagescribe-image),
# STORAGE_DRIVER (vfs: works without overlay support, e.g. inside another container).
set -euo pipefail

image=${1:-localhost/pagescribe-base:bookworm}
suite=${SUITE:-bookworm}
mirror=${MIRROR:-http://deb.debian.org/debian}
work_dir=${WORK_DIR:-/var/tmp/pagescribe-image}
storage_driver=${STORAGE_DRIVER:-vfs}
buildah() { command buildah --storage-driver "$storage_driver" "$@"; }

if buildah inspect --type image "$image" >/dev/null 2>&1; then
    echo "base image $image already exists (buildah rmi $image to make it again)"
    exit 0
fi
for tool in debootstrap buildah; do
    type -P "$tool" >/dev/null || { echo "make-base.sh needs $tool (apt-get install $tool)" >&2; exit 1; }
done

rootfs="$work_dir/rootfs-$suite"
rm -rf "$rootfs"
mkdir -p "$work_dir"
echo "debootstrap $suite into $rootfs"
# minbase: dpkg, apt and essentials only; python3-venv brings ensurepip so `python3 -m venv` works as on python:slim
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,libgomp1 \
    "$suite" "$rootfs" "$mirror"
# what a Docker base image leaves out: package lists, caches and logs are rebuilt by each `apt-get update`
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
    "$rootfs"/var/log/*.log "$rootfs"/tmp/*

container=$(buildah from scratch)
trap 'buildah rm "$container" >/dev/null 2>&1 || true' EXIT
# `buildah add` copies the tree with owners and modes as they are; no mount namespace is needed
buildah add --quiet "$container" "$rootfs" /
buildah config --env LANG=C.UTF-8 --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd /bin/bash --label org.opencontainers.image.description="Debian $suite minbase + python3 (debootstrap)" \
    "$container"
buildah commit --quiet --rm "$container" "$image" >/dev/null
trap - EXIT
rm -rf "$rootfs"
echo "base image $image: $(buildah inspect --type image --format '{{.FromImageID}}' "$image" | cut -c1-12)"
