// `nestlab reference --device nestlab <scenario>`: the scenario's plain Linux
// guest on QEMU with its virtio-blk disk served by nestlab's own device model
// over vhost-user (behind QEMU's vIOMMU when the scenario has one), the stock
// driver writing and reading back 4 MiB. The run is saved in the run store
// and the back-end's spans go where the services' would, so the console
// shows both.
import { isUnsupported, loadSetup, realConfig, runVhostUser } from '@nestlab/reference';
import { runningFleet } from '../fleet/registry.js';
import { realGuestRun } from '../run/real-guest-run.js';
import { saveRealGuestRun } from '../run/store.js';
import { EXIT, UsageError } from './usage.js';

/** Where the back-end sends its spans, and the variables that tell it so. */
export interface BackendOtlp {
  /** The OTLP endpoint (null: none, the back-end records no spans). */
  endpoint: string | null;
  /** The lab console behind it, when it is one: trace links point there. */
  consoleUrl: string | null;
  /** Added to the back-end's environment (empty: it inherits the user's OTEL_* as is). */
  env: Record<string, string>;
}

/**
 * The same choice the services make, in order: --console URL; the user's
 * OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT (inherited); the console of the running
 * `nestlab up`; else none.
 */
export function backendOtlp(
  consoleFlag: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
  fleetConsole: () => string | null = () => runningFleet()?.consoleUrl ?? null,
): BackendOtlp {
  const viaConsole = (url: string): BackendOtlp => {
    const base = url.replace(/\/$/, '');
    return {
      endpoint: base,
      consoleUrl: base,
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: base,
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${base}/v1/traces`,
      },
    };
  };
  if (consoleFlag !== undefined) {
    if (!/^https?:\/\/[^\s/]+/.test(consoleFlag))
      throw new UsageError(
        `--console takes the console's URL (http://host:port), got ${JSON.stringify(consoleFlag)}`,
      );
    return viaConsole(consoleFlag);
  }
  const user = env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'] || env['OTEL_EXPORTER_OTLP_ENDPOINT'];
  if (user) return { endpoint: user, consoleUrl: null, env: {} };
  const fleet = fleetConsole();
  return fleet ? viaConsole(fleet) : { endpoint: null, consoleUrl: null, env: {} };
}

export async function referenceOnNestlab(
  ids: readonly string[],
  opts: { json: boolean; verbose: boolean; console?: string },
): Promise<number> {
  if (ids.length !== 1) throw new UsageError('--device nestlab takes one scenario');
  const id = ids[0] ?? '';
  const c = realConfig(id);
  if (!c || isUnsupported(c) || c.xen)
    throw new UsageError(
      `--device nestlab runs a plain guest: kvm-guest-baseline, or viommu-access-platform behind QEMU's vIOMMU; ${JSON.stringify(id)} is not one (the Xen rows are not done yet)`,
    );
  const otlp = backendOtlp(opts.console);
  const progress = (line: string) => process.stderr.write(`nestlab: ${line}\n`);
  progress(
    otlp.endpoint
      ? `the back-end's spans go to ${otlp.endpoint}`
      : 'no OTLP endpoint (no --console, OTEL_EXPORTER_OTLP_ENDPOINT or `nestlab up`): the run is saved without traces',
  );
  const r = await runVhostUser({
    setup: loadSetup(),
    viommu: c.viommu,
    progress,
    backendEnv: otlp.env,
    ...(opts.verbose ? { onConsole: (l: string) => process.stderr.write(`  | ${l}\n`) } : {}),
  });
  saveRealGuestRun(realGuestRun(id, c.viommu, r, otlp.endpoint));
  if (opts.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
  else {
    const g = r.guest;
    const verdicts = Object.entries(r.dma.byVerdict)
      .map(([v, n]) => `${v} ${n}`)
      .join(', ');
    const firstTrace = r.dma.traceIds[0];
    process.stdout.write(
      [
        `${id} on nestlab's device (vhost-user): ${r.outcome}`,
        `  guest:   wrote 4 MiB ${g.wrote ? 'ok' : 'FAILED'}, read back ${g.read ? 'ok' : 'FAILED'}; md5 written ${g.sumPattern ?? '-'}, read ${g.sumBack ?? '-'}`,
        `  nestlab: disk image md5 ${r.imageSum ?? '-'} (expected ${r.expectedSum})`,
        `  DMA log: ${r.dma.records} accesses (${verdicts || 'none'}); buffers read ${r.dma.bufferBytesRead} B, written ${r.dma.bufferBytesWritten} B`,
        ...(otlp.consoleUrl
          ? [
              `  console: ${otlp.consoleUrl}/#real-guest` +
                (firstTrace ? `, first trace ${otlp.consoleUrl}/trace/${firstTrace}` : ''),
            ]
          : []),
        ...r.errors.map((e) => `  error:   ${e}`),
      ].join('\n') + '\n',
    );
  }
  return r.outcome === 'ok' ? EXIT.ok : EXIT.notAsExpected;
}
