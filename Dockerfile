# ATenSpace Serve: the Fastify server, the native LibTorch addon and the Python exporter.
#
# CPU (default):
#   docker build -t atenspace-serve .
# CUDA (what docker-compose.yml's `gpu` profile passes); TORCH_INDEX_URL must be a CUDA variant
# that PyTorch publishes for TORCH_VERSION, and the nvidia/cuda images of a matching CUDA:
#   docker build -t atenspace-serve:cuda \
#     --build-arg BUILD_IMAGE=nvidia/cuda:12.8.1-devel-ubuntu24.04 \
#     --build-arg BASE_IMAGE=nvidia/cuda:12.8.1-runtime-ubuntu24.04 \
#     --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 .
#
# The addon is linked with an rpath to the torch/lib directory it was built against, so torch
# lives in a virtual environment at the same path, /opt/venv, in both stages; the runtime stage
# copies it whole (it also runs the exporter when the model volume is empty).

# Where node, npm and the Node headers come from (copied into the other stages).
ARG NODE_IMAGE=node:20-bookworm-slim
# Base of the build stage: CUDA builds need the CUDA headers (an nvidia/cuda devel image).
ARG BUILD_IMAGE=debian:bookworm-slim
# Base of the runtime stage: same distribution as BUILD_IMAGE (the venv links its python3).
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${NODE_IMAGE} AS node

# ---------------------------------------------------------------------------------------------
FROM ${BUILD_IMAGE} AS build
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates g++ make python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/include/node /usr/local/include/node
COPY --from=node /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx

ENV VIRTUAL_ENV=/opt/venv
ENV PATH=/opt/venv/bin:$PATH
RUN python3 -m venv /opt/venv \
 && pip install --no-cache-dir --index-url "$TORCH_INDEX_URL" "torch==$TORCH_VERSION"

WORKDIR /app
# The exporter's other packages (transformers, tokenizers, ...), without pytest.
COPY exporter/requirements.txt exporter/requirements.txt
RUN grep -v -E '^(torch|pytest)([<>=! ]|$)' exporter/requirements.txt >/tmp/requirements.txt \
 && pip install --no-cache-dir -r /tmp/requirements.txt

COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

COPY tsconfig.json tsconfig.build.json ./
COPY native native
COPY scripts scripts
COPY src src
RUN npm run build:native \
 && npm run build:ts \
 && npm prune --omit=dev --no-audit --no-fund

# ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS runtime
ENV DEBIAN_FRONTEND=noninteractive
# jemalloc: with glibc's malloc, LibTorch's freed activations stay in the heap and RSS creeps up
# under varied shapes (bench/RESULTS.md, Soak: +7.2% over 100k requests; +3.6% with jemalloc).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates python3 util-linux libjemalloc2 \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s "$(dpkg -L libjemalloc2 | grep 'libjemalloc\.so\.2$' | head -n 1)" /usr/local/lib/libjemalloc.so.2 \
 && useradd --uid 10001 --user-group --home-dir /app/data --no-create-home --shell /usr/sbin/nologin atenspace
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=build /opt/venv /opt/venv
ENV VIRTUAL_ENV=/opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY --from=build /app/native/build/Release/atenspace.node native/build/Release/atenspace.node
COPY exporter exporter
# the gRPC service definition, read at start-up
COPY proto proto
COPY docker/entrypoint.sh docker/entrypoint.sh
RUN mkdir -p models data \
 && chown atenspace:atenspace models data \
 && chmod 755 docker/entrypoint.sh

USER atenspace
ENV NODE_ENV=production
ENV LD_PRELOAD=/usr/local/lib/libjemalloc.so.2
ENV HF_HOME=/app/data/huggingface
ENV MODEL_REPOSITORY=/app/models
ENV DATA_DIR=/app/data
ENV HOST=0.0.0.0
ENV PORT=8080
ENV GRPC_PORT=8081
EXPOSE 8080 8081
VOLUME ["/app/models", "/app/data"]
HEALTHCHECK --interval=10s --timeout=5s --start-period=180s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/health/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["/app/docker/entrypoint.sh"]
