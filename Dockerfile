# vmconvoy's images for docker-compose.yml. `docker build .` builds the last stage, the worker (also the CLI:
# `docker compose run --rm cli ...`); `--target ec2-sim` builds the EC2 simulator for trials.
#
# Node 22 LTS, pinned by digest: the image index docker-library recorded for node:22-bookworm-slim
# (Node 22.23.2) on 2026-09-19 (github.com/docker-library/repo-info, repos/node/remote). Bump the tag and
# the digest together; the digest is what is pulled.
FROM node:22.23.2-bookworm-slim@sha256:48e4b67d85f87bd551df43704e24d252f56cc5f8e9718841aace50f19948f0f9 AS runtime
ENV NODE_ENV=production
WORKDIR /app
# qemu-img converts VMDK/VHDX images before upload; wget is the compose health check's client.
RUN apt-get update && apt-get install -y --no-install-recommends qemu-utils wget && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# Production dependencies only: no test runner helpers (@temporalio/testing), linters or type checkers.
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
# What a worker and the CLI run; nothing else (see .dockerignore for what never enters the build).
COPY tsconfig.json ./
COPY bin ./bin
COPY common ./common
COPY activities ./activities
COPY workflows ./workflows
COPY worker ./worker
COPY client ./client
ENTRYPOINT []

# The EC2 VM-Import simulator, for trials only (compose's ec2-sim service): the runtime plus sim/.
FROM runtime AS ec2-sim
# The tools the simulator's judge reads guest disks with (sim/judge/tools.ts): debugfs, ntfs-3g, hivexget.
RUN apt-get update && apt-get install -y --no-install-recommends e2fsprogs ntfs-3g libhivex-bin && rm -rf /var/lib/apt/lists/*
COPY sim ./sim
# Where compose keeps its state: a volume mounted here starts with this owner, so the simulator can write.
RUN mkdir /state && chown node:node /state
USER node
CMD ["node", "bin/vmconvoy.js", "sim", "--host", "0.0.0.0", "--port", "4566"]

# The worker, the image that runs against real AWS: no simulator code in it.
FROM runtime AS worker
USER node
CMD ["node", "bin/vmconvoy.js", "worker"]
