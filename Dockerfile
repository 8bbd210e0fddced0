# One image for both roles: APP_ROLE=api or APP_ROLE=worker. Node 26, the Active LTS line (engines still allows
# 20.19+: the suite passes on both); Debian bookworm, whose ffmpeg the local video provider's tests run against.
# Bump the two FROM lines together; test/deploy-files.spec.ts checks they match and carry a version.
FROM node:26.10.0-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# The workspaces' manifests, so one install covers the client and the console too.
COPY clients/typescript/package.json clients/typescript/package.json
COPY console/package.json console/package.json
RUN npm install --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json nest-cli.json ./
COPY src src
# The provider emulators: compiled into the image, loaded only when PROVIDERS_MODE=sandbox (the compose default).
COPY sandbox sandbox
COPY migrations migrations
# token.ts and health-check.ts compile to dist/scripts; build-console.js builds the console below. The benchmarks
# (bench/) are neither copied nor in the build context (.dockerignore), so no dist/bench reaches the image.
COPY scripts scripts
# The web console (/console): its forms are read from the OpenAPI document at build time.
COPY openapi.json ./
COPY console console
RUN node scripts/build-console.js --force --strict
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM node:26.10.0-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg tini && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
# Local outputs (STORAGE_DIR) and the result cache's disk layer (CACHE_DIR) default to ./data/…: made here and owned
# by the user the process runs as, so a volume mounted on them starts out writable by it too.
RUN mkdir -p /app/data/outputs /app/data/cache && chown -R node:node /app/data
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY --from=build /app/console/dist console/dist
# `npm run token -- --sub alice` works here too; `node dist/scripts/token.js --sub alice` is the same without npm.
COPY --from=build /app/scripts/token.js scripts/token.js
USER node
EXPOSE 3000
# /health/ready on PORT, in either role; the start period covers migrations at boot.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 CMD ["node", "dist/scripts/health-check.js"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/src/main.js"]
