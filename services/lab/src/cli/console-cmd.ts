import { parseArgs } from 'node:util';
import { buildConsole } from '../console/app.js';
import { labBus } from './lab-bus.js';
import { intOption } from './usage.js';

export const CONSOLE_HELP = `nestlab console [--nats-url URL] [--stack ID] [--host H] [--port P] [--scenario ID --every SECONDS]

Runs only the lab console (web UI, OTLP/HTTP trace receiver, scenario runner)
against a fleet that runs elsewhere (e.g. in containers). With --scenario it
runs that scenario at start and then every --every seconds, so dashboards
always have data. Environment: NATS_URL, NESTLAB_STACK, NESTLAB_SCENARIO,
NESTLAB_SCENARIO_EVERY, NATS_USER/NATS_PASS.`;

export async function consoleCmd(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'nats-url': { type: 'string' },
      stack: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      scenario: { type: 'string' },
      every: { type: 'string' },
    },
    strict: true,
  });
  const env = process.env;
  const natsUrl = values['nats-url'] ?? env['NATS_URL'] ?? 'nats://127.0.0.1:4222';
  const stack = values.stack ?? env['NESTLAB_STACK'] ?? 's1';
  const port = intOption('port', values.port ?? env['CONSOLE_PORT'], 7700, 0, 65535);
  const host = values.host ?? env['CONSOLE_HOST'] ?? '127.0.0.1';
  const scenario = values.scenario ?? env['NESTLAB_SCENARIO'];
  const every = intOption('every', values.every ?? env['NESTLAB_SCENARIO_EVERY'], 60, 5, 86_400);

  const app = buildConsole();
  const url = await app.listen({ host, port });
  process.stderr.write(`nestlab: console at ${url} (nats ${natsUrl}, stack ${stack})\n`);
  const { bus, close } = await labBus(natsUrl, stack);
  app.attachBus(bus);

  let timer: NodeJS.Timeout | undefined;
  if (scenario) {
    const runOnce = async () => {
      const res = await app.inject({
        method: 'POST',
        url: `/api/scenarios/${scenario}/run`,
        payload: {},
      });
      const body = res.json() as { outcome?: string; pass?: boolean; message?: string };
      process.stderr.write(
        `nestlab: ${scenario}: ${body.outcome ?? body.message} ${body.pass === undefined ? '' : body.pass ? 'PASS' : 'FAIL'}\n`,
      );
    };
    const loop = () => {
      void runOnce().finally(() => (timer = setTimeout(loop, every * 1000)));
    };
    loop();
  }
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  clearTimeout(timer);
  await close();
  await app.close();
  return 0;
}
