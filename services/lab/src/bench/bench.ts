// `nestlab bench`: raw NATS and the stack, in one run, on one nats-server.
// Order: baseline, an untraced fleet (memory, then every scenario and
// depth), a traced fleet exporting to an in-process console, baseline again;
// the baseline figure is the median of both, so drift on a shared machine
// lands on both sides of the ratios.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, platform, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { startNatsServer, type NatsServerHandle } from '@nestlab/nats-runner';
import { buildConsole } from '../console/app.js';
import { startFleet, type Fleet } from '../fleet/fleet.js';
import { labSeat } from '../fleet/lab-seat.js';
import { findScenario } from '../scenarios/builtin.js';
import { measureBaseline } from './baseline.js';
import { measureMemory } from './memory.js';
import { profileNodeArgs, readProfiles, type ServiceProfile } from './profile.js';
import {
  besideRawCpu,
  median,
  type Baseline,
  type BenchMemory,
  type BenchReport,
  type BenchRun,
} from './report.js';
import { medianEach, type CpuSeat } from './cpu.js';
import { measure, prepare, type ServiceSeat } from './stack-runs.js';
import { runStacks, type StacksPlan } from './stacks.js';
import type { StacksReport } from './stacks-report.js';
import { judgeTargets } from './targets.js';

export interface BenchPlan {
  scenarios: string[];
  depths: number[];
  /** I/Os per measured repetition at each depth. */
  ios: Record<number, number>;
  reps: number;
  /** The depth of the one run per scenario with verification on. */
  verifyDepth: number;
  traced: boolean[];
  baseline: { requests: number; roundTrips: number; reps: number };
  /** How long each scenario runs unmeasured first, at every depth. */
  warmUpMs: number;
  memory: { guestBytes: number; touchBytes: number };
  /** K stacks on the one nats-server at once (`--stacks`). */
  stacks?: StacksPlan;
  /** Run the untraced fleet under V8's profiler, writing .cpuprofile files here. */
  profileDir?: string;
}

const GIB = 2 ** 30;

export const FULL_PLAN: BenchPlan = {
  scenarios: ['xen-pv-dom0-dma-api', 'viommu-access-platform'],
  depths: [1, 8, 32],
  ios: { 1: 500, 8: 2000, 32: 4000 },
  reps: 3,
  verifyDepth: 32,
  traced: [false, true],
  baseline: { requests: 20_000, roundTrips: 2000, reps: 3 },
  warmUpMs: 5000,
  memory: { guestBytes: 4 * GIB, touchBytes: 64 * 2 ** 20 },
};

/** The same measurements, smaller: CI proves the bench works in well under 2 minutes. */
export const QUICK_PLAN: BenchPlan = {
  ...FULL_PLAN,
  ios: { 1: 60, 8: 240, 32: 480 },
  baseline: { requests: 3000, roundTrips: 500, reps: 3 },
  warmUpMs: 1000,
};

function machine(): Record<string, unknown> {
  const v = spawnSync(process.env['NATS_SERVER_BIN'] ?? 'nats-server', ['--version'], {
    encoding: 'utf8',
  });
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryBytes: totalmem(),
    platform: `${platform()} ${release()}`,
    node: process.version,
    natsServer: v.status === 0 ? v.stdout.trim() : 'unknown',
    loadAverageAtStart: loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

export async function runBench(
  plan: BenchPlan,
  progress: (line: string) => void,
): Promise<BenchReport> {
  const scratch = mkdtempSync(join(tmpdir(), 'nestlab-bench-'));
  const info = machine();
  let nats: NatsServerHandle | null = null;
  try {
    nats = await startNatsServer();
    const natsUrl = nats.url;
    const deep = Math.max(...plan.depths);
    const base = (label: string) => {
      progress(`baseline (${label}): raw NATS between two processes`);
      const natsPid = nats?.process.pid;
      return measureBaseline({ natsUrl, concurrency: deep, ...plan.baseline, natsPid, progress });
    };
    const before = await base('first');
    const runs: BenchRun[] = [];
    let profile: Record<string, ServiceProfile> | null = null;
    let memory: BenchMemory = {
      guestBytes: plan.memory.guestBytes,
      touchedBytes: 0,
      l0RssBytes: null,
    };
    for (const traced of plan.traced) {
      const stack = traced ? 'bt' : 'bu';
      const consoleApp = traced ? buildConsole() : null;
      const consoleUrl = consoleApp
        ? await consoleApp.listen({ host: '127.0.0.1', port: 0 })
        : null;
      let fleet: Fleet | null = null;
      let s: Awaited<ReturnType<typeof labSeat>> | null = null;
      try {
        progress(`starting the ${traced ? 'traced' : 'untraced'} fleet`);
        const profiling = !traced && plan.profileDir !== undefined;
        fleet = await startFleet({
          natsUrl,
          stack,
          adminBasePort: 0,
          ...(profiling ? { nodeArgs: profileNodeArgs(plan.profileDir!) } : {}),
          logDir: join(scratch, `${stack}-logs`),
          env: {
            NESTLAB_DATA_DIR: join(scratch, `${stack}-data`),
            LOG_LEVEL: 'warn',
            ...(consoleUrl ? { OTEL_EXPORTER_OTLP_ENDPOINT: consoleUrl } : {}),
          },
        });
        s = await labSeat(natsUrl, stack);
        const services: ServiceSeat[] = fleet.services.map((p) => ({
          name: p.service.name,
          adminUrl: p.adminUrl,
        }));
        const processes: CpuSeat[] = [
          ...fleet.services.map((p) => ({ name: p.service.name, pid: p.process.pid })),
          { name: 'nats-server', pid: nats.process.pid },
        ];
        if (!traced) {
          const l0 = fleet.services.find((p) => p.service.name === 'l0-hypervisor');
          progress('memory: a 4 GiB guest, 64 MiB touched');
          memory = await measureMemory(s.bus, {
            ...plan.memory,
            l0Pid: l0?.process.pid,
            l0AdminUrl: l0?.adminUrl ?? '',
          });
        }
        for (const id of plan.scenarios) {
          const scenario = findScenario(id);
          if (!scenario) throw new Error(`unknown scenario ${id}`);
          await prepare(s.bus, scenario, plan.depths, plan.warmUpMs, progress);
          for (const iodepth of plan.depths) {
            const p = { iodepth, verify: false, ios: plan.ios[iodepth] ?? 500, reps: plan.reps };
            runs.push(await measure(s.bus, services, processes, id, traced, p, progress));
          }
          if (!traced) {
            const d = plan.verifyDepth;
            const p = { iodepth: d, verify: true, ios: plan.ios[d] ?? 500, reps: plan.reps };
            runs.push(await measure(s.bus, services, processes, id, traced, p, progress));
          }
        }
      } finally {
        await s?.close();
        const pids = new Map(fleet?.services.map((p) => [p.process.pid ?? -1, p.service.name]));
        await fleet?.stop();
        await consoleApp?.close();
        // Each service wrote its profile as it stopped.
        if (!traced && plan.profileDir !== undefined) profile = readProfiles(plan.profileDir, pids);
      }
    }
    let stacks: StacksReport | undefined;
    if (plan.stacks) {
      const shared = { url: natsUrl, pid: nats.process.pid };
      stacks = await runStacks(shared, plan.stacks, join(scratch, 'stacks'), progress);
    }
    const after = await base('again');
    const rawCpu = [before, after].flatMap((b) => b.cpuUsPerRoundTrip ?? []);
    const seqCpu = [before, after].flatMap((b) => b.cpuUsPerSequentialRoundTrip ?? []);
    const baseline: Baseline = {
      reqRep4kPerSec: Math.round(median([before.reqRep4kPerSec, after.reqRep4kPerSec])),
      rttP50Us: Math.round(median([before.rttP50Us, after.rttP50Us])),
      reqRep4kConcurrency: deep,
      cpuUsPerRoundTrip: rawCpu.length > 0 ? Math.round(median(rawCpu)) : null,
      cpuUsPerRoundTripByProcess: medianEach(
        [before, after].flatMap((b) =>
          b.cpuUsPerRoundTripByProcess ? [b.cpuUsPerRoundTripByProcess] : [],
        ),
      ),
      cpuUsPerSequentialRoundTrip: seqCpu.length > 0 ? Math.round(median(seqCpu)) : null,
    };
    info['loadAverageAtEnd'] = loadavg().map((x) => Math.round(x * 100) / 100);
    info['baselineRuns'] = [before, after];
    return {
      baseline,
      runs: runs.map((r) => besideRawCpu(r, baseline)),
      memory,
      machine: info,
      targets: judgeTargets(baseline, runs, memory, deep, stacks),
      ...(stacks ? { stacks } : {}),
      ...(profile ? { profile: { dir: plan.profileDir!, services: profile } } : {}),
    };
  } finally {
    await nats?.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
}
