# One image for both roles: APP_ROLE=api or APP_ROLE=worker.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# The workspaces' manifests, so one install covers the client and the console too.
COPY clients/typescript/package.json clients/typescript/package.json
COPY console/package.json console/package.json
RUN npm install --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src src
# The provider emulators: compiled into the image, loaded only when PROVIDERS_MODE=sandbox (the compose default).
COPY sandbox sandbox
COPY migrations migrations
COPY scripts scripts
COPY bench bench
# The web console (/console): its forms are read from the OpenAPI document at build time.
COPY openapi.json ./
COPY console console
RUN node scripts/build-console.js --force --strict
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg tini && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY --from=build /app/console/dist console/dist
USER node
EXPOSE 3000
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/src/main.js"]
