# s3-gallery: one image, zero configuration (embedded S3-compatible store + SQLite under /data).
# scripts/container-smoke.sh repeats these steps outside Docker; keep the two in step.

FROM node:24-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 compiles from source when no prebuilt binary matches.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
COPY packages/s3-store/package.json ./packages/s3-store/package.json
COPY packages/s3-store/bin ./packages/s3-store/bin
RUN npm ci
COPY tsconfig.base.json tsconfig.json tsconfig.build.json ./
COPY packages/s3-store/tsconfig.json ./packages/s3-store/tsconfig.json
COPY packages/s3-store/src ./packages/s3-store/src
COPY src ./src
COPY public ./public
RUN npm run build && npm prune --omit=dev

FROM node:24-bookworm-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATA_DIR=/data \
    MALLOC_ARENA_MAX=2
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/packages/s3-store/package.json ./packages/s3-store/package.json
COPY --from=build /app/packages/s3-store/bin ./packages/s3-store/bin
COPY --from=build /app/packages/s3-store/dist ./packages/s3-store/dist
COPY --from=build /app/public ./public
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME /data
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# The server's allocations are short-lived page renders. 4 MB semi-spaces instead of V8's 16, and no
# pretenuring (which, once it guesses that renders live long, puts every one straight in the old
# generation) keep it under 150 MB under load, and faster. Garbage collection on the main thread
# alone: its helper threads only competed with libvips for the cores (docs/benchmarks.md).
# Keep in step with "start" in package.json (scripts/container-smoke.sh checks).
CMD ["node", "--max-semi-space-size=4", "--no-allocation-site-pretenuring", "--single-threaded-gc", "dist/server.js"]
