// Applying one fault step of an experiment to a running fleet.
import { FaultControl, type FaultRule } from '@nestlab/protocol';
import type { Bus } from '@nestlab/service-kit';
import type { Fleet } from '../fleet/fleet.js';
import type { FaultStep } from './file-schema.js';
import { ExperimentError } from './stack.js';

export const TOKENS = ['l0', 'xen', 'dom0', 'iommu'] as const;
export type Token = (typeof TOKENS)[number];

/** What the runner did, in words that do not depend on timing (same seed → same list). */
export interface InjectedStep {
  readonly step: number;
  readonly at: { readonly completed: number };
  readonly what: string;
  /** False when the run ended before the step's logical point. */
  readonly applied: boolean;
}

export function describeStep(s: FaultStep): string {
  if ('crash' in s) return `crash ${s.crash} (SIGKILL, down ${s.downMs ?? 0} ms, restart)`;
  if ('transport' in s)
    return `transport ${s.transport.map((r) => `${r.id}:${r.action}`).join(',')} on ${(s.services ?? TOKENS).join(',')}`;
  const d = s.domain;
  const extra = [
    d.count === undefined ? '' : ` count ${d.count}`,
    d.after === undefined ? '' : ` after ${d.after}`,
    d.delayMs === undefined ? '' : ` delay ${d.delayMs} ms`,
  ].join('');
  return `domain ${d.service} ${d.kind}${extra}`;
}

export interface StepContext {
  readonly bus: Bus;
  readonly fleet: Fleet;
  readonly seed: number;
  /** Transport rules in force per service (a step adds to them). */
  readonly rules: Map<Token, FaultRule[]>;
  /** Called right after a service is killed, before it is back. */
  onKilled(target: Token | 'nats'): void;
}

/** Applies a step; resolves once it is in effect (a crashed service is back and ready). */
export async function applyStep(ctx: StepContext, s: FaultStep): Promise<{ armed?: number }> {
  if ('crash' in s) {
    const down = s.downMs ?? 0;
    if (s.crash === 'nats') {
      if (!ctx.fleet.nats)
        throw new ExperimentError('STEP_FAILED', 'this fleet does not own its nats-server');
      ctx.onKilled('nats');
      await ctx.fleet.nats.restart(down);
      return {};
    }
    await ctx.fleet.kill(s.crash);
    ctx.onKilled(s.crash);
    if (down > 0) await new Promise((r) => setTimeout(r, down));
    await ctx.fleet.respawn(s.crash);
    return {};
  }
  if ('transport' in s) {
    for (const svc of s.services ?? TOKENS) {
      const ids = new Set(s.transport.map((r) => r.id));
      const rules = [...(ctx.rules.get(svc) ?? []).filter((r) => !ids.has(r.id)), ...s.transport];
      ctx.rules.set(svc, rules);
      await ctx.bus.request(FaultControl[svc].set, { seed: ctx.seed, rules });
    }
    return {};
  }
  const { service, ...req } = s.domain;
  const reply = await ctx.bus.request(FaultControl[service].inject, req, { timeoutMs: 10_000 });
  return { armed: reply.head.armed };
}
