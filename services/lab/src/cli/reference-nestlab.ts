// `nestlab reference --device nestlab <scenario>`: the scenario's plain Linux
// guest on QEMU with its virtio-blk disk served by nestlab's own device model
// over vhost-user (behind QEMU's vIOMMU when the scenario has one), the stock
// driver writing and reading back 4 MiB.
import { isUnsupported, loadSetup, realConfig, runVhostUser } from '@nestlab/reference';
import { EXIT, UsageError } from './usage.js';

export async function referenceOnNestlab(
  ids: readonly string[],
  opts: { json: boolean; verbose: boolean },
): Promise<number> {
  if (ids.length !== 1) throw new UsageError('--device nestlab takes one scenario');
  const id = ids[0] ?? '';
  const c = realConfig(id);
  if (!c || isUnsupported(c) || c.xen)
    throw new UsageError(
      `--device nestlab runs a plain guest: kvm-guest-baseline, or viommu-access-platform behind QEMU's vIOMMU; ${JSON.stringify(id)} is not one (the Xen rows are not done yet)`,
    );
  const progress = (line: string) => process.stderr.write(`nestlab: ${line}\n`);
  const r = await runVhostUser({
    setup: loadSetup(),
    viommu: c.viommu,
    progress,
    ...(opts.verbose ? { onConsole: (l: string) => process.stderr.write(`  | ${l}\n`) } : {}),
  });
  if (opts.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
  else {
    const g = r.guest;
    const verdicts = Object.entries(r.dma.byVerdict)
      .map(([v, n]) => `${v} ${n}`)
      .join(', ');
    process.stdout.write(
      [
        `${id} on nestlab's device (vhost-user): ${r.outcome}`,
        `  guest:   wrote 4 MiB ${g.wrote ? 'ok' : 'FAILED'}, read back ${g.read ? 'ok' : 'FAILED'}; md5 written ${g.sumPattern ?? '-'}, read ${g.sumBack ?? '-'}`,
        `  nestlab: disk image md5 ${r.imageSum ?? '-'} (expected ${r.expectedSum})`,
        `  DMA log: ${r.dma.records} accesses (${verdicts || 'none'}); buffers read ${r.dma.bufferBytesRead} B, written ${r.dma.bufferBytesWritten} B`,
        ...r.errors.map((e) => `  error:   ${e}`),
      ].join('\n') + '\n',
    );
  }
  return r.outcome === 'ok' ? EXIT.ok : EXIT.notAsExpected;
}
