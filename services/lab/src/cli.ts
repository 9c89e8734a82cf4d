#!/usr/bin/env node
import { bench, BENCH_HELP } from './cli/bench.js';
import { consoleCmd, CONSOLE_HELP } from './cli/console-cmd.js';
import { experiment, EXPERIMENT_HELP } from './cli/experiment.js';
import { experiments, EXPERIMENTS_HELP } from './cli/experiments.js';
import { explain, EXPLAIN_HELP } from './cli/explain.js';
import { faults, FAULTS_HELP } from './cli/faults.js';
import { matrix, MATRIX_HELP } from './cli/matrix.js';
import { natsConfig, NATS_CONFIG_HELP } from './cli/nats-config.js';
import { reference, REFERENCE_HELP } from './cli/reference.js';
import { run, RUN_HELP } from './cli/run.js';
import { scenarios, SCENARIOS_HELP } from './cli/scenarios.js';
import { soak, SOAK_HELP } from './cli/soak.js';
import { sweep, SWEEP_HELP } from './cli/sweep.js';
import { traceCmd, TRACE_HELP } from './cli/trace.js';
import { up, UP_HELP } from './cli/up.js';
import { EXIT, UsageError } from './cli/usage.js';
import { versionLine } from './cli/version.js';
import { worker, WORKER_HELP } from './cli/worker.js';
import { exitOnStopSignals, stopSignalled } from './fleet/teardown.js';

const HELP = `nestlab — the DMA path of a nested virtualization stack, hop by hop

Usage: nestlab <command> [options]

Commands:
  up        start nats-server and the four services locally, until Ctrl-C
  scenarios list the scenarios (id, expected outcome, title)
  run       run one scenario's workload and judge every DMA access
  matrix    run every scenario and check each against its expected outcome
  explain   a scenario's reasoning and its last run's first bad access, layer by layer
  trace     the spans of one I/O's trace from the console
  console   run only the console against a fleet elsewhere (containers)
  faults    list, add or clear transport faults, inject domain faults, on the running fleet
  experiments list the failure-injection experiments
  experiment  run one experiment (faults at logical points) and judge its history
  reference run a scenario on the real stack (QEMU + Xen + Linux) next to nestlab's run
  bench     measure messages per I/O, latency, IOPS and memory as ratios against baselines
  soak      run I/O and transport faults for a long time; watch memory and lost I/Os
  worker    host K stacks here and run sweep items for them from a NATS cluster
  sweep     run a scenario or experiment over many seeds on the cluster's workers
  nats-config  write a NATS cluster's node configs with per-stack credentials
  help      this text, or \`nestlab help <command>\`

Run \`nestlab help <command>\` for a command's options; \`nestlab --version\` prints
the version and the Node.js it runs on.`;

const COMMANDS: Record<string, { run: (argv: string[]) => Promise<number>; help: string }> = {
  up: { run: up, help: UP_HELP },
  run: { run, help: RUN_HELP },
  scenarios: { run: scenarios, help: SCENARIOS_HELP },
  matrix: { run: matrix, help: MATRIX_HELP },
  explain: { run: explain, help: EXPLAIN_HELP },
  trace: { run: traceCmd, help: TRACE_HELP },
  console: { run: consoleCmd, help: CONSOLE_HELP },
  faults: { run: faults, help: FAULTS_HELP },
  experiments: { run: experiments, help: EXPERIMENTS_HELP },
  experiment: { run: experiment, help: EXPERIMENT_HELP },
  reference: { run: reference, help: REFERENCE_HELP },
  bench: { run: bench, help: BENCH_HELP },
  soak: { run: soak, help: SOAK_HELP },
  worker: { run: worker, help: WORKER_HELP },
  sweep: { run: sweep, help: SWEEP_HELP },
  'nats-config': { run: natsConfig, help: NATS_CONFIG_HELP },
};

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === '--version' || cmd === '-v') {
    process.stdout.write(`${versionLine()}\n`);
    return EXIT.ok;
  }
  if (cmd === undefined || cmd === 'help' || cmd === '--help' || cmd === '-h') {
    const topic = rest[0];
    if (topic && COMMANDS[topic]) process.stdout.write(`${COMMANDS[topic].help}\n`);
    else if (topic) throw new UsageError(`unknown command ${JSON.stringify(topic)}`);
    else process.stdout.write(`${HELP}\n`);
    return EXIT.ok;
  }
  const command = COMMANDS[cmd];
  if (!command)
    throw new UsageError(`unknown command ${JSON.stringify(cmd)} (try \`nestlab help\`)`);
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${command.help}\n`);
    return EXIT.ok;
  }
  return command.run(rest);
}

// SIGINT, SIGTERM and SIGHUP stop every fleet this process started, then exit.
exitOnStopSignals((line) => process.stderr.write(`nestlab: ${line}\n`));

main(process.argv.slice(2)).then(
  (code) => {
    // Stopped by a signal: its handler exits (128 + signal) once the fleet is down.
    if (!stopSignalled()) process.exit(code);
  },
  (err: unknown) => {
    if (stopSignalled()) return;
    const e = err as Error & { code?: string };
    if (
      err instanceof UsageError ||
      e.code === 'SCENARIO_INVALID' ||
      e.code === 'EXPERIMENT_INVALID' ||
      e.code?.startsWith('ERR_PARSE_ARGS')
    ) {
      // Parser messages can carry a long multi-line dump of the input; the first line says it.
      process.stderr.write(`nestlab: ${e.message.split('\n')[0]}\n`);
      process.exit(EXIT.usage);
    }
    process.stderr.write(`nestlab: ${e.message}\n`);
    process.exit(EXIT.notAsExpected);
  },
);
