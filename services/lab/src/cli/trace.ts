import { parseArgs } from 'node:util';
import type { StoredSpan } from '../console/trace-store.js';
import { runningFleet } from '../fleet/registry.js';
import { EXIT, UsageError } from './usage.js';

export const TRACE_HELP = `nestlab trace <traceId> [--json] [--console URL]

Prints the spans of one trace from the lab console's store (the console of the
running \`nestlab up\`, or --console URL): service, name, timing, attributes.`;

export async function traceCmd(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { json: { type: 'boolean' }, console: { type: 'string' } },
    strict: true,
    allowPositionals: true,
  });
  const id = positionals[0];
  if (positionals.length !== 1 || !id || !/^[0-9a-f]{32}$/i.test(id)) {
    throw new UsageError('trace takes one trace id (32 hex digits)');
  }
  const consoleUrl = values.console ?? runningFleet()?.consoleUrl;
  if (!consoleUrl)
    throw new UsageError('no running fleet found: start `nestlab up` or pass --console URL');
  const res = await fetch(`${consoleUrl}/api/traces/${id}`).catch((err: Error) => {
    throw new Error(`cannot reach the console at ${consoleUrl}: ${err.message}`);
  });
  const body = (await res.json()) as { spans?: StoredSpan[]; message?: string };
  if (!res.ok || !body.spans) {
    process.stderr.write(`nestlab: ${body.message ?? `console answered ${res.status}`}\n`);
    return EXIT.notAsExpected;
  }
  const t0 = Math.min(...body.spans.map((s) => s.startUs));
  const spans = body.spans.map((s) => ({
    service: s.service,
    name: s.name,
    spanId: s.spanId,
    parentSpanId: s.parentSpanId,
    startUs: s.startUs - t0,
    durationUs: s.endUs - s.startUs,
    attributes: s.attributes,
  }));
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ traceId: id.toLowerCase(), spans }, null, 2)}\n`);
  } else {
    for (const s of spans) {
      const addrs = Object.entries(s.attributes)
        .filter(
          ([k]) =>
            k.startsWith('nestlab.addr.') ||
            k === 'nestlab.dma.verdict' ||
            k === 'nestlab.translation.by',
        )
        .map(([k, v]) => `${k.replace('nestlab.', '')}=${String(v)}`)
        .join(' ');
      process.stdout.write(
        `${String(s.startUs).padStart(8)}µs ${String(s.durationUs).padStart(7)}µs  ${s.service.padEnd(14)} ${s.name}  ${addrs}\n`,
      );
    }
  }
  return EXIT.ok;
}
