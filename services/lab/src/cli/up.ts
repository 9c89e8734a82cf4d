import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { startLab } from '../fleet/lab.js';
import { announceFleet, withdrawFleet } from '../fleet/registry.js';
import { onTeardown } from '../fleet/teardown.js';
import { intOption } from './usage.js';

export const UP_HELP = `nestlab up [--nats-url URL] [--nats-port P] [--admin-port P] [--stack ID] [--log-dir DIR] [--json]

Starts a real nats-server (unless --nats-url is given) and the four services
(iommu, l0-hypervisor, xen, dom0-kernel) as local processes, waits until each
reports ready, prints where their admin endpoints are, and runs until Ctrl-C
(or SIGTERM, SIGHUP), then shuts everything down cleanly. Every process it
started also exits by itself if \`up\` is killed outright (SIGKILL).

  --nats-url URL    use a running NATS instead of starting nats-server
  --nats-port P     port for the started nats-server (default 4222, or a free one if taken)
  --admin-port P    first admin port; services take P..P+3 (default 7701)
  --stack ID        subject token for this stack (default s1)
  --log-dir DIR     where service logs go (default .nestlab/logs)
  --console-port P  the lab console (web UI + OTLP/HTTP trace receiver), default 7700
  --json            print the endpoints as one JSON line`;

export async function up(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'nats-url': { type: 'string' },
      'nats-port': { type: 'string' },
      'admin-port': { type: 'string' },
      stack: { type: 'string' },
      'log-dir': { type: 'string' },
      'console-port': { type: 'string' },
      json: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  });
  const logDir = resolve(values['log-dir'] ?? '.nestlab/logs');
  const consolePort = intOption('console-port', values['console-port'], 7700, 0, 65535);
  const lab = await startLab({
    consolePort,
    logDir,
    natsPort: intOption('nats-port', values['nats-port'], 4222, 1, 65535),
    adminBasePort: intOption('admin-port', values['admin-port'], 7701, 0, 65532),
    ...(values['nats-url'] ? { natsUrl: values['nats-url'] } : {}),
    ...(values.stack ? { stack: values.stack } : {}),
    onProgress: (line) => process.stderr.write(`nestlab: ${line}\n`),
    auth: true,
  });
  const { fleet, consoleUrl } = lab;
  announceFleet({
    natsUrl: fleet.natsUrl,
    stack: fleet.stack,
    consoleUrl,
    pid: process.pid,
    ...(fleet.labAuth ? { labAuth: fleet.labAuth } : {}),
  });
  const endpoints = Object.fromEntries(fleet.services.map((s) => [s.service.name, s.adminUrl]));
  if (values.json) {
    process.stdout.write(
      `${JSON.stringify({ nats: fleet.natsUrl, stack: fleet.stack, console: consoleUrl, admin: endpoints, logDir })}\n`,
    );
  } else {
    process.stdout.write(
      `nestlab fleet is up (stack ${fleet.stack})\n  nats           ${fleet.natsUrl}\n`,
    );
    for (const s of fleet.services)
      process.stdout.write(
        `  ${s.service.name.padEnd(14)} ${s.adminUrl}  (/healthz /readyz /metrics /state)\n`,
      );
    process.stdout.write(`  logs           ${logDir}\nPress Ctrl-C to stop.\n`);
  }
  let stopping: Promise<number> | undefined;
  /** Stops the lab once, says how each service ended, and gives the exit code. */
  const shutdown = (why: string | { name: string; how: number | string }) =>
    (stopping ??= (async () => {
      if (typeof why !== 'string')
        process.stderr.write(`nestlab: ${why.name} exited (${why.how}); stopping the fleet\n`);
      withdrawFleet();
      const exits = await lab.stop();
      const clean = Object.values(exits).every((how) => how === 0);
      process.stderr.write(
        `nestlab: stopped (${Object.entries(exits)
          .map(([n, how]) => `${n} ${how}`)
          .join(', ')})\n`,
      );
      return typeof why === 'string' && clean ? 0 : 1;
    })());
  // A stop signal (SIGINT, SIGTERM, SIGHUP) runs this through the CLI's handler.
  onTeardown(() => shutdown('signal'));
  const crashed = await Promise.race(
    fleet.services.map((s) => s.exited.then((how) => ({ name: s.service.name, how }))),
  );
  return shutdown(crashed);
}
