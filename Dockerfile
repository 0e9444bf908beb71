# The vmconvoy worker (and CLI, and EC2 simulator) image used by docker-compose.yml.
FROM node:20-bookworm-slim
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends qemu-utils wget && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY activities ./activities
COPY bin ./bin
COPY client ./client
COPY sim ./sim
COPY worker ./worker
COPY workflows ./workflows
COPY dev ./dev
COPY tsconfig.json ./
USER node
ENTRYPOINT []
CMD ["node", "bin/vmconvoy.js", "worker"]
