# onereward-serve container image (multi-stage).
#
# GPU image: the build uses the libtorch bundled with the PyTorch of a CUDA devel image;
# the runtime stage is a CUDA base image of the same Ubuntu release plus that libtorch.
#   docker build \
#     --build-arg BASE_IMAGE=pytorch/pytorch:2.7.1-cuda12.6-cudnn9-devel \
#     --build-arg RUNTIME_IMAGE=nvidia/cuda:12.6.3-base-ubuntu22.04 \
#     -t REGISTRY/onereward-serve:VERSION-cuda .
# CPU image: Debian 12 for both stages; the build runs scripts/setup.sh (Debian's libtorch).
#   docker build -t onereward-serve:VERSION-cpu .
#   scripts/build-image.sh does the same without a Docker engine (buildah + debootstrap).
#
# The runtime stage holds the server, the shared libraries it links (as packages, or
# copied from the build stage when no package owns them), the entrypoint and an embedded
# tiny random pipeline for smoke tests (/opt/onereward/models/tiny). Real weights come
# from a volume mounted at /models (deploy/README.md gives the layout).
ARG BASE_IMAGE=debian:12
ARG RUNTIME_IMAGE=debian:12

# ---------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS build
ARG JOBS=2
ARG CMAKE_BUILD_TYPE=RelWithDebInfo
ENV DEBIAN_FRONTEND=noninteractive \
    CCACHE_DIR=/root/.ccache

WORKDIR /src
# Dependencies first, so that source edits do not reinstall them.
COPY scripts/setup.sh scripts/setup.sh
COPY deploy/image/build-deps.sh deploy/image/build-deps.sh
RUN deploy/image/build-deps.sh > /tmp/cmake-args.txt && cat /tmp/cmake-args.txt

COPY . .
RUN --mount=type=cache,target=/root/.ccache \
    JOBS="${JOBS}" CMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE}" \
    deploy/image/build.sh /src /build /stage /tmp/cmake-args.txt

# ---------------------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE} AS runtime
ARG ONEREWARD_UID=10001

COPY --from=build /stage/ /
RUN /opt/onereward/install-runtime.sh "${ONEREWARD_UID}"

LABEL org.opencontainers.image.title="onereward-serve" \
      org.opencontainers.image.description="gRPC image-fill service: FLUX.1-Fill-dev with OneReward"

ENV PATH=/opt/onereward/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/tmp
# gRPC (onereward.v1.ImageFill, grpc.health.v1.Health, reflection) and Prometheus /metrics.
EXPOSE 50051 9090
VOLUME ["/models"]
WORKDIR /tmp
USER ${ONEREWARD_UID}:${ONEREWARD_UID}
ENTRYPOINT ["/opt/onereward/bin/onereward-entrypoint"]
CMD []
