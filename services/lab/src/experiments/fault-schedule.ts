// Fault scheduling: applies an experiment's steps at their logical points
// (a count of completed I/Os), records what was applied and when, and tells
// the main job when dom0 itself was killed under it.
import type { Fleet } from '../fleet/fleet.js';
import type { ExperimentFile } from './file-schema.js';
import type { TimedFault } from './history.js';
import type { Observed } from './observe.js';
import { completedNow } from './progress.js';
import {
  applyStep,
  describeStep,
  type InjectedStep,
  type StepContext,
  type Token,
} from './steps.js';

const POLL_MS = 5;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class FaultSchedule {
  readonly injected: InjectedStep[] = [];
  readonly timeline: TimedFault[] = [];
  /** Services killed (and restarted) by a step. */
  readonly restarted = new Set<Token | 'nats'>();
  /** Resolves when a step kills dom0: the main job then never answers. */
  readonly dom0Died: Promise<'crashed'>;
  readonly ctx: StepContext;
  private next = 0;
  /** The completed count (past the job's base) of the last reading of dom0's progress. */
  private lastSeen: number | null = null;

  constructor(
    private readonly e: ExperimentFile,
    bus: StepContext['bus'],
    fleet: Fleet,
    seed: number,
    /** Where step outcomes are noted, shared with the rest of the run. */
    private readonly observed: Observed[],
    /** Ms since the run began: the time line's clock. */
    private readonly now: () => number,
    private readonly progress: (line: string) => void,
  ) {
    let died: () => void = () => undefined;
    this.dom0Died = new Promise<'crashed'>((r) => (died = () => r('crashed')));
    this.ctx = {
      bus,
      fleet,
      seed,
      rules: new Map(),
      onKilled: (t) => {
        this.restarted.add(t);
        if (t === 'dom0') died();
      },
    };
  }

  /** Steps at the start are in force before the first I/O: their effect is the same on every run. */
  async applyInitial(): Promise<void> {
    const steps = this.e.faults;
    while (this.next < steps.length && steps[this.next]!.at.completed === 0)
      await this.apply(this.next++);
  }

  /**
   * Applies each remaining step once dom0 has completed its count of I/Os
   * past `base`, until `over()` says the job ended or dom0 was killed.
   */
  async follow(dom0Url: string, base: number, over: () => boolean): Promise<void> {
    const steps = this.e.faults;
    while (this.next < steps.length && !over() && !this.restarted.has('dom0')) {
      const c = await completedNow(dom0Url);
      if (c !== null) this.lastSeen = c - base;
      if (c !== null && c - base >= steps[this.next]!.at.completed) await this.apply(this.next++);
      else await sleep(POLL_MS);
    }
  }

  /**
   * The steps the run ended before: listed as not applied. Returns why, when
   * the workload itself outran them (no dom0 kill ended it): dom0's progress
   * is read by polling its admin port, and a loaded machine can delay the
   * readings past the whole rest of a short workload. The run then tested
   * nothing of those steps: inconclusive, not a verdict.
   */
  markRestNotApplied(): string | null {
    const steps = this.e.faults;
    const missed = steps.length - this.next;
    const why =
      missed > 0 && !this.restarted.has('dom0')
        ? `${missed} step(s) never applied (the first at ${steps[this.next]!.at.completed} completed): ` +
          `the workload ended first (last progress read: ${this.lastSeen ?? 'none'} completed)`
        : null;
    for (let k = this.next; k < steps.length; k++)
      this.injected.push({
        step: k,
        at: steps[k]!.at,
        what: describeStep(steps[k]!),
        applied: false,
      });
    return why;
  }

  private async apply(k: number): Promise<void> {
    const s = this.e.faults[k]!;
    const what = describeStep(s);
    this.progress(`${this.e.id}: step ${k} at ${s.at.completed} completed: ${what}`);
    const atMs = this.now();
    let r: { armed?: number };
    try {
      r = await applyStep(this.ctx, s);
    } catch (err) {
      // A step the stack refused is a result to report, not a reason to abandon the run.
      const e = err as Error & { code?: string };
      this.injected.push({ step: k, at: s.at, what, applied: false });
      this.observed.push({
        kind: 'note',
        text: `step ${k} failed: ${e.code ?? e.name}: ${e.message}`,
      });
      return;
    }
    const doneMs = this.now();
    this.injected.push({ step: k, at: s.at, what, applied: true });
    if ('crash' in s)
      this.observed.push({
        kind: 'restart',
        service: s.crash,
        step: k,
        downMs: s.downMs ?? 0,
        backAfterMs: doneMs - atMs,
      });
    if (r.armed !== undefined)
      this.observed.push({ kind: 'note', text: `step ${k}: armed ${r.armed}` });
    if (!('transport' in s))
      this.timeline.push({
        step: k,
        what,
        atMs,
        doneMs,
        volatileLoss: 'crash' in s && s.crash === 'l0',
      });
  }
}
