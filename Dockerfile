# syntax=docker/dockerfile:1
#
# The s2s defence proxy.
#   CPU:  docker build -t s2s:0.1.0 .
#   CUDA: docker build --build-arg VARIANT=cuda -t s2s:0.1.0-cuda .
# See docs/deployment.md. The build runs the README's own setup command (npm ci, which compiles the
# TypeScript once through the "prepare" script), drops dev dependencies and the ONNX Runtime binaries of
# other platforms; the runtime image runs no command at build time at all.

ARG VARIANT=cpu
ARG NODE_IMAGE=node:22-bookworm-slim
# onnxruntime-node 1.2x+ is built against CUDA 12 and cuDNN 9; the "cudnn-runtime" tags carry both.
ARG CUDA_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04

# onnxruntime-node bundles its CPU binaries. Its CUDA provider is too large for npm: package.json's
# allowScripts keeps npm from running the package's download script, and `npm run install:cuda` runs it
# explicitly with ONNXRUNTIME_NODE_INSTALL=cuda12 (it fetches the provider from NuGet).
FROM ${NODE_IMAGE} AS install-cpu
ENV ONNXRUNTIME_NODE_INSTALL=skip

FROM ${NODE_IMAGE} AS install-cuda
ENV ONNXRUNTIME_NODE_INSTALL=cuda12

FROM install-${VARIANT} AS build
WORKDIR /app
# npm ci runs the package's prepare script (tsc, the one compilation), so the sources must be here before it.
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN --mount=type=cache,target=/root/.npm npm ci
# (npm 10 in the Node image ignores allowScripts and has already run the download during npm ci: not twice.)
RUN if [ "$ONNXRUNTIME_NODE_INSTALL" = cuda12 ] && [ ! -e node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so ]; then npm run install:cuda; fi
RUN npm prune --omit=dev
# Only this platform's ONNX Runtime libraries (the package ships macOS, Windows and both Linux arches: ~290 MB).
RUN arch=$(node -p process.arch) && cd node_modules/onnxruntime-node/bin/napi-v6 \
    && find . -mindepth 1 -maxdepth 1 -type d ! -name linux -exec rm -rf {} + \
    && find linux -mindepth 1 -maxdepth 1 -type d ! -name "$arch" -exec rm -rf {} + \
    && rm -f /app/dist/.tsbuildinfo

FROM ${NODE_IMAGE} AS runtime-cpu
ENV S2S_PROVIDER=cpu

# Node comes from the official Node image, so both variants run the same Node build;
# the CUDA base provides the CUDA 12 and cuDNN libraries the CUDA provider loads.
FROM ${CUDA_IMAGE} AS runtime-cuda
COPY --from=install-cuda /usr/local/bin/node /usr/local/bin/node
ENV S2S_PROVIDER=auto

FROM runtime-${VARIANT} AS runtime
WORKDIR /app
# HOME=/tmp: the only writable place once the root filesystem is read-only (Kubernetes mounts an emptyDir there).
# S2S_MODELS_DIR points at the baked-in default model set; mount another set anywhere and point this at it.
# S2S_GRPC_PORT: the Open Inference Protocol over gRPC (docs/grpc.md) beside HTTP; an empty value turns it off.
# S2S_HEALTH_PORT: probes and /metrics on a listener of their own, answered under a flood on PORT; empty: off.
ENV NODE_ENV=production \
    HOME=/tmp \
    HOST=0.0.0.0 \
    PORT=8080 \
    S2S_GRPC_PORT=8081 \
    S2S_HEALTH_PORT=8082 \
    S2S_MODELS_DIR=/app/models
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY openapi.yaml ./openapi.yaml
# The gRPC server loads its service definition from here at start (relative to the package root).
COPY proto ./proto
COPY models ./models
# Numeric, so Kubernetes can verify runAsNonRoot; the files above stay root-owned and read-only to it.
USER 10001:10001
EXPOSE 8080 8081 8082
# Slim images have no curl; Node 22's fetch does the same job. The health listener when on, else the traffic port.
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.S2S_HEALTH_PORT || process.env.PORT || 8080) + '/v2/health/live').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# The service drains on SIGTERM: readiness turns 503, in-flight requests finish, then it exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["serve"]
