/**
 * The image's HEALTHCHECK (and Compose's): exits 0 when this container's process answers GET /health/ready with 200
 * (Postgres and Redis answer, and it is not shutting down), 1 otherwise. Both roles serve it on PORT. Node's own
 * fetch, because the slim base image has no curl.
 */
const WILDCARD = new Set(['', '0.0.0.0', '::', '[::]']);
const given = process.env.HOST ?? '';
const host = WILDCARD.has(given) ? '127.0.0.1' : given;
const port = process.env.PORT || '3000';
const url = `http://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}/health/ready`;

fetch(url, { signal: AbortSignal.timeout(4000) }).then(
  (res) => {
    if (!res.ok) process.stderr.write(`${url} answered ${res.status}\n`);
    process.exit(res.ok ? 0 : 1);
  },
  (err: Error) => {
    process.stderr.write(`${url}: ${err.message}\n`);
    process.exit(1);
  },
);
