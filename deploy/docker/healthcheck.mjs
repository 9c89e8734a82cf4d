// Container health without curl/wget: exit 0 when the service's readiness URL
// answers 2xx within 2 s. HEALTHCHECK_URL overrides (the console has /healthz
// on CONSOLE_PORT); services default to /readyz on their ADMIN_PORT.
/* global fetch, AbortSignal -- Node globals */
const url =
  process.env.HEALTHCHECK_URL ??
  (process.env.NESTLAB_SERVICE === 'lab'
    ? `http://127.0.0.1:${process.env.CONSOLE_PORT ?? '7700'}/healthz`
    : `http://127.0.0.1:${process.env.ADMIN_PORT ?? '7701'}/readyz`);

try {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  process.exit(res.ok ? 0 : 1);
} catch {
  process.exit(1);
}
