# Container image targets; the Makefile includes this file. See container/README.md.
#   make image          build localhost/pagescribe:<version> (Docker if its daemon answers, else buildah)
#   make image-test     run it as SageMaker does with the tiny model at /opt/ml/model; check it from outside
#   make image-push REPOSITORY=pagescribe [REGION=eu-west-1] [TAG=<version>] [CREATE=1]
#   make image-tools    install buildah, podman, runc and debootstrap (Debian, as root)
#   make image-clean    remove the image, its cached build steps and the debootstrap base
IMAGE_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -n 1)
IMAGE ?= localhost/pagescribe:$(IMAGE_VERSION)
STORAGE_DRIVER ?= vfs
REPOSITORY ?= pagescribe
TAG ?= $(IMAGE_VERSION)
export STORAGE_DRIVER

.PHONY: image image-test image-push image-tools image-clean

image:
	container/scripts/build.sh $(IMAGE)

image-test: setup
	PYTHON=$(abspath $(BIN))/python container/scripts/image-test.sh $(IMAGE)

image-push: setup
	$(BIN)/pagescribe image push --image $(IMAGE) --repository $(REPOSITORY) --tag $(TAG) \
		$(if $(REGION),--region $(REGION)) $(if $(filter 1,$(CREATE)),--create)

image-tools:
	@missing=""; for t in buildah podman runc debootstrap; do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then apt-get update && apt-get install -y $$missing; \
	else echo "buildah, podman, runc and debootstrap are installed"; fi

image-clean:
	-buildah --storage-driver $(STORAGE_DRIVER) rmi $(IMAGE) localhost/pagescribe-base:bookworm
	-buildah --storage-driver $(STORAGE_DRIVER) rmi --prune
