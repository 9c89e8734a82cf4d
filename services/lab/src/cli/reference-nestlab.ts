// `nestlab reference --device nestlab <scenario>`: the scenario's real guest
// (plain Linux, or Xen + Linux dom0) on QEMU with its virtio-blk disk served by
// nestlab's own device model over vhost-user; see @nestlab/reference's
// vhost-user-run.ts for what each row runs and shows.
import {
  VHOST_USER_IDS,
  formatVhostUserReport,
  loadSetup,
  runVhostUser,
  vhostUserRow,
} from '@nestlab/reference';
import { EXIT, UsageError } from './usage.js';

export async function referenceOnNestlab(
  ids: readonly string[],
  opts: { json: boolean; verbose: boolean },
): Promise<number> {
  if (ids.length !== 1) throw new UsageError('--device nestlab takes one scenario');
  const id = ids[0] ?? '';
  if (!vhostUserRow(id))
    throw new UsageError(
      `--device nestlab runs ${VHOST_USER_IDS.join(', ')}; ${JSON.stringify(id)} is not one`,
    );
  const progress = (line: string) => process.stderr.write(`nestlab: ${line}\n`);
  const r = await runVhostUser({
    setup: loadSetup(),
    scenario: id,
    progress,
    ...(opts.verbose ? { onConsole: (l: string) => process.stderr.write(`  | ${l}\n`) } : {}),
  });
  process.stdout.write(opts.json ? `${JSON.stringify(r, null, 2)}\n` : formatVhostUserReport(r));
  // Exit 0 when the row shows what the real stack shows (for the legacy row: the hang).
  return r.outcome === r.expected ? EXIT.ok : EXIT.notAsExpected;
}
