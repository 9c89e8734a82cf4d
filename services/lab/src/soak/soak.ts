// A soak: a private fleet (a NATS user per service) runs every runnable
// scenario in turn until the time is up, while the RSS of each service
// process is sampled from /proc. Memory is flat when a service's RSS at the
// end is within 10 % of its RSS right after warm-up; an I/O is lost when a
// write the driver saw complete did not read back (in a scenario expected to
// work), unended when it neither completed nor failed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isCodedError } from '@nestlab/protocol';
import { startFleet } from '../fleet/fleet.js';
import { labSeat } from '../fleet/lab-seat.js';
import { runScenario } from '../run/orchestrator.js';
import { catalogue } from '../scenarios/builtin.js';
import type { Scenario } from '../scenarios/scenario.js';
import { RssSampler } from './rss.js';

export interface SoakOptions {
  minutes: number;
  /** Seed of the first run; each run adds its index, so P2M layouts vary (default 1). */
  seed?: number;
  /** I/Os per scenario run (default: each scenario's own). */
  ios?: number;
  /** Warm-up: at least this long and one full rotation of the scenarios (default 20 %, at most 5 min). */
  warmupMinutes?: number;
  sampleEveryMs?: number;
  progress?: (line: string) => void;
}

export interface ServiceMemory {
  rssAfterWarmupBytes: number | null;
  rssEndBytes: number | null;
  rssPeakBytes: number | null;
  /** End RSS over after-warm-up RSS, minus one, in percent. */
  growthPct: number | null;
  flat: boolean;
}

export interface SoakReport {
  minutes: number;
  ios: { done: number; failed: number; lost: number; unended: number };
  services: Record<string, ServiceMemory>;
  runs: {
    total: number;
    asExpected: number;
    byScenario: Record<string, { runs: number; asExpected: number }>;
  };
  /** Errors of I/Os and of whole runs, by code. */
  errors: Record<string, number>;
  warmupSeconds: number;
  elapsedSeconds: number;
  /** A service exited during the soak (name and how), else null. */
  crashed: { service: string; how: number | string } | null;
  flat: boolean;
  pass: boolean;
}

/** End RSS may exceed the after-warm-up RSS by this fraction and still be flat. */
export const FLAT_TOLERANCE = 0.1;
/** Samples in each median (after warm-up, at the end). */
const WINDOW = 5;

export async function runSoak(opts: SoakOptions): Promise<SoakReport> {
  const progress = opts.progress ?? (() => undefined);
  const durationMs = opts.minutes * 60_000;
  const warmupMs = (opts.warmupMinutes ?? Math.min(5, opts.minutes * 0.2)) * 60_000;
  const every = opts.sampleEveryMs ?? 2000;
  const cat = catalogue();
  const scenarios = cat.files
    .filter((f) => cat.whyNot(f.id) === null)
    .map((f) => cat.find(f.id))
    .filter((s): s is Scenario => s !== undefined);

  const scratch = mkdtempSync(join(tmpdir(), 'nestlab-soak-'));
  progress(`starting a private fleet (logs in ${join(scratch, 'logs')})`);
  const fleet = await startFleet({
    stack: 'soak',
    natsPort: 0,
    adminBasePort: 0,
    auth: true,
    logDir: join(scratch, 'logs'),
    env: { NESTLAB_DATA_DIR: join(scratch, 'data'), LOG_LEVEL: 'warn' },
  });
  const seat = await labSeat(fleet.natsUrl, fleet.stack, fleet.labAuth);
  const pids = new Map(fleet.services.map((s) => [s.service.name, s.process.pid ?? -1]));
  const sampler = new RssSampler(pids);
  const timer = setInterval(() => sampler.sample(), every);
  let crashed: SoakReport['crashed'] = null;
  let stopping = false;
  for (const s of fleet.services) {
    void s.exited.then((how) => {
      if (!stopping) crashed ??= { service: s.service.name, how };
    });
  }

  const ios = { done: 0, failed: 0, lost: 0, unended: 0 };
  const errors: Record<string, number> = {};
  const byScenario: SoakReport['runs']['byScenario'] = {};
  const started = Date.now();
  let warmupEnd: number | null = null;
  let run = 0;
  try {
    sampler.sample();
    // At least one pass over the scenarios, however short the soak.
    while ((Date.now() - started < durationMs || run < scenarios.length) && crashed === null) {
      const s = scenarios[run % scenarios.length];
      if (!s) break;
      const tally = (byScenario[s.id] ??= { runs: 0, asExpected: 0 });
      tally.runs++;
      try {
        const r = await runScenario(seat.bus, s, {
          seed: (opts.seed ?? 1) + run,
          ...(opts.ios ? { ios: opts.ios } : {}),
        });
        if (r.pass) tally.asExpected++;
        ios.done += r.ios.completed;
        ios.failed += r.ios.failed;
        ios.unended += Math.max(0, r.ios.submitted - r.ios.completed - r.ios.failed);
        if (s.expected === 'ok') ios.lost += r.ios.corrupted;
        for (const [code, n] of Object.entries(r.errors)) errors[code] = (errors[code] ?? 0) + n;
      } catch (err) {
        // The run itself broke (a request timed out): its I/Os have no known end.
        const code = isCodedError(err) ? err.code : 'INTERNAL';
        errors[code] = (errors[code] ?? 0) + 1;
        ios.unended += opts.ios ?? s.workload.ios;
        progress(`${s.id}: ${code}: ${(err as Error).message}`);
      }
      run++;
      if (warmupEnd === null && run >= scenarios.length && Date.now() - started >= warmupMs) {
        warmupEnd = Date.now();
        sampler.sample();
        progress(`warm-up done after ${Math.round((warmupEnd - started) / 1000)} s`);
      }
      if (run % scenarios.length === 0) progress(`${run} runs, ${ios.done} I/Os done`);
    }
    sampler.sample();
  } finally {
    clearInterval(timer);
    stopping = true;
    await seat.close();
    await fleet.stop();
    rmSync(scratch, { recursive: true, force: true });
  }

  const end = Date.now();
  const afterWarmup = warmupEnd ?? end;
  const services: Record<string, ServiceMemory> = {};
  for (const name of sampler.names()) {
    const warm =
      sampler.medianBetween(name, afterWarmup, afterWarmup + WINDOW * every) ??
      sampler.medianOfLast(name, WINDOW);
    const last = sampler.medianOfLast(name, WINDOW);
    const growthPct = warm && last ? Math.round((last / warm - 1) * 1000) / 10 : null;
    services[name] = {
      rssAfterWarmupBytes: warm,
      rssEndBytes: last,
      rssPeakBytes: sampler.peak(name),
      growthPct,
      flat: growthPct !== null && growthPct <= FLAT_TOLERANCE * 100,
    };
  }
  const total = Object.values(byScenario).reduce((n, s) => n + s.runs, 0);
  const asExpected = Object.values(byScenario).reduce((n, s) => n + s.asExpected, 0);
  const flat = Object.values(services).every((s) => s.flat);
  return {
    minutes: opts.minutes,
    ios,
    services,
    runs: { total, asExpected, byScenario },
    errors,
    warmupSeconds: Math.round((afterWarmup - started) / 1000),
    elapsedSeconds: Math.round((end - started) / 1000),
    crashed,
    flat,
    pass:
      flat &&
      crashed === null &&
      ios.lost === 0 &&
      ios.unended === 0 &&
      total > 0 &&
      asExpected === total,
  };
}
