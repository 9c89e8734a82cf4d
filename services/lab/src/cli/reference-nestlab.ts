// `nestlab reference --device nestlab <scenario>`: the scenario's real guest
// (plain Linux, or Xen + Linux dom0) on QEMU with its virtio-blk disk served by
// nestlab's own device model over vhost-user; see @nestlab/reference's
// vhost-user-run.ts for what each row runs and shows. The run is saved in the
// run store and the back-end's spans go where the services' would, so the
// console shows both.
import {
  VHOST_USER_IDS,
  formatVhostUserReport,
  loadSetup,
  runVhostUser,
  vhostUserRow,
} from '@nestlab/reference';
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
  const row = vhostUserRow(id);
  if (!row)
    throw new UsageError(
      `--device nestlab runs ${VHOST_USER_IDS.join(', ')}; ${JSON.stringify(id)} is not one`,
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
    scenario: id,
    progress,
    backendEnv: otlp.env,
    ...(opts.verbose ? { onConsole: (l: string) => process.stderr.write(`  | ${l}\n`) } : {}),
  });
  saveRealGuestRun(realGuestRun(id, row.viommu, r, otlp.endpoint));
  process.stdout.write(opts.json ? `${JSON.stringify(r, null, 2)}\n` : formatVhostUserReport(r));
  const firstTrace = r.dma.traceIds[0];
  if (!opts.json && otlp.consoleUrl)
    process.stdout.write(
      `  console: ${otlp.consoleUrl}/#real-guest` +
        (firstTrace ? `, first trace ${otlp.consoleUrl}/trace/${firstTrace}` : '') +
        '\n',
    );
  // Exit 0 when the row shows what the real stack shows (for the legacy row: the hang).
  return r.outcome === r.expected ? EXIT.ok : EXIT.notAsExpected;
}
