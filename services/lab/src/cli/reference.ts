import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import {
  SETUP_SCRIPT,
  SUPPORTED_IDS,
  UNSUPPORTED_IDS,
  compare,
  formatComparison,
  isUnsupported,
  loadSetup,
  realConfig,
  runReal,
  type Comparison,
  type RealConfig,
} from '@nestlab/reference';
import { runScenario } from '../run/orchestrator.js';
import type { RunReport } from '../run/report.js';
import { catalogue } from '../scenarios/builtin.js';
import { referenceOnNestlab } from './reference-nestlab.js';
import { sessionFromFlags, withFleet } from './session.js';
import { EXIT, UsageError, intOption } from './usage.js';

export const REFERENCE_HELP = `nestlab reference <scenario… | --all> [--json] [--verbose] [--seed S] [--nats-url URL] [--stack ID] [--private]
nestlab reference --setup
nestlab reference --device nestlab kvm-guest-baseline|viommu-access-platform|xen-pv-dom0-dma-api|xen-pv-dom0-legacy [--json] [--verbose] [--console URL]

Runs the scenario on the real stack — QEMU 7.2 (TCG) emulating the virtio-blk
device, Xen 4.17 with a Debian Linux 6.1 PV dom0, or a plain 6.1 guest, with a
vIOMMU where the scenario has one — and the same scenario on nestlab, then
prints the real run's report and a side-by-side table. Exit 0 only when every
compared field agrees.

  --setup     install the Debian packages (apt) and build the guest module into
              the cache ($NESTLAB_REFERENCE_DIR, default ./.nestlab/reference);
              nothing is installed by any other command
  --all       every scenario the real stack can run (${SUPPORTED_IDS.length}; about 6 minutes)
  --json      {"scenarios":[{"scenario","real","emulated","agree","differences"}]}
  --verbose   stream the guest console to stderr
  --seed S    seed of the emulated run (default 1)
  --device nestlab
              boot the scenario's guest (plain Linux, or Xen + PV dom0) with its
              virtio-blk disk served by nestlab's device model over vhost-user
              (QEMU vhost-user-blk-pci); the stock driver writes 4 MiB with
              O_DIRECT and reads it back: exit 0 when the checksums, the disk
              image and the DMA log agree (every access direct, or translated
              through the IOTLB behind the vIOMMU). xen-pv-dom0-legacy runs the
              reference module writing virt_to_phys(): exit 0 when the guest
              hangs and nestlab's device read avail.idx at the pseudo-physical
              number, used as a machine address (the report names it). The run
              is saved in the run store ($NESTLAB_RUNS, default ./.nestlab/runs/real-guest)
              and shown on the console's scenarios page (Real-guest runs)
  --console URL
              with --device nestlab: send the back-end's spans to this lab console;
              default OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT when set, else the console
              of the running \`nestlab up\`

Not runnable here: ${UNSUPPORTED_IDS.join(', ')}.`;

export async function reference(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      setup: { type: 'boolean' },
      all: { type: 'boolean' },
      json: { type: 'boolean' },
      verbose: { type: 'boolean' },
      seed: { type: 'string' },
      'nats-url': { type: 'string' },
      stack: { type: 'string' },
      private: { type: 'boolean' },
      device: { type: 'string' },
      console: { type: 'string' },
    },
    strict: true,
    allowPositionals: true,
  });
  if (values.setup) {
    if (positionals.length || values.all) throw new UsageError('--setup takes no scenario');
    return spawnSync('bash', [SETUP_SCRIPT], { stdio: 'inherit' }).status === 0
      ? EXIT.ok
      : EXIT.notAsExpected;
  }
  if (values.console !== undefined && values.device === undefined)
    throw new UsageError('--console goes with --device nestlab (the emulated runs use the fleet)');
  if (values.device !== undefined) {
    if (values.device !== 'nestlab') throw new UsageError('--device takes only `nestlab`');
    return referenceOnNestlab(positionals, {
      json: values.json ?? false,
      verbose: values.verbose ?? false,
      ...(values.console === undefined ? {} : { console: values.console }),
    });
  }
  if (values.all ? positionals.length > 0 : positionals.length === 0) {
    throw new UsageError('reference takes scenario ids or --all (see `nestlab help reference`)');
  }
  const seed = intOption('seed', values.seed, 1, 0, 0xffffffff);
  const cat = catalogue();
  const progress = (line: string) => process.stderr.write(`nestlab: ${line}\n`);
  // --all: a real configuration whose emulated scenario this build lacks is skipped, saying so.
  const ids = values.all
    ? SUPPORTED_IDS.filter((id) => {
        const known = cat.find(id) !== undefined;
        if (!known) progress(`skipping ${id}: this build has no emulated scenario for it`);
        return known;
      })
    : positionals;
  const configs = ids.map((id): RealConfig => {
    const c = realConfig(id);
    if (!c)
      throw new UsageError(
        `unknown scenario ${JSON.stringify(id)}; the real stack runs: ${SUPPORTED_IDS.join(', ')}`,
      );
    if (isUnsupported(c))
      throw new UsageError(`${id} cannot run on the real stack here: ${c.unsupported}`);
    return c;
  });
  const setup = loadSetup(); // one clear line when --setup was never run
  const emulated: RunReport[] = await withFleet(sessionFromFlags(values, progress), async (bus) => {
    const out: RunReport[] = [];
    for (const c of configs) {
      const scenario = cat.find(c.scenario);
      if (!scenario) throw new UsageError(`no emulated scenario ${c.scenario}`);
      progress(`emulating ${c.scenario}`);
      out.push(await runScenario(bus, scenario, { seed }));
    }
    return out;
  });
  const results: Comparison[] = [];
  for (const [i, c] of configs.entries()) {
    progress(`[${i + 1}/${configs.length}] real run of ${c.scenario}`);
    const real = await runReal(c, {
      setup,
      progress,
      ...(values.verbose ? { onConsole: (l: string) => process.stderr.write(`  | ${l}\n`) } : {}),
    });
    const emu = emulated[i];
    if (!emu) throw new Error(`no emulated report for ${c.scenario}`);
    const result = compare(c, real, emu);
    results.push(result);
    if (!values.json) process.stdout.write(`${formatComparison(result)}\n${real.explanation}\n\n`);
  }
  if (values.json) {
    const body = results.map(({ scenario, real, emulated: e, agree, differences }) => ({
      scenario,
      real,
      emulated: e,
      agree,
      differences,
    }));
    process.stdout.write(
      `${JSON.stringify(body.length > 1 || values.all ? { scenarios: body } : body[0], null, 2)}\n`,
    );
  } else if (results.length > 1) {
    const agreed = results.filter((r) => r.agree).length;
    process.stdout.write(`${agreed}/${results.length} scenarios agree with the real stack\n`);
  }
  return results.every((r) => r.agree) ? EXIT.ok : EXIT.notAsExpected;
}
