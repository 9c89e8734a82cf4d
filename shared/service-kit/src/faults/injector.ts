import type { FaultPlan, FaultRule, InjectedFault } from '@nestlab/protocol';
import { floatRng as prng, hash32 } from '../random.js';
import { subjectMatches } from './subject-match.js';

export type FaultDecision =
  | { action: 'drop' }
  | { action: 'delay'; ms: number }
  | { action: 'duplicate' }
  | { action: 'reorder' }
  | { action: 'corrupt'; positions: number[] };

interface RuleState {
  rule: FaultRule;
  random: () => number;
  seen: number;
  injected: number;
}

const MAX_LOG = 10_000;

/**
 * Decides, per received message, whether a transport fault hits it. Rules are
 * tried in order; the first that matches and fires wins. Each rule consumes
 * its own seeded random stream once per matching message, so decisions do
 * not depend on other rules or on timing.
 */
export class FaultInjector {
  private rules: RuleState[] = [];
  private plan: FaultPlan = { seed: 0, rules: [] };
  private readonly log: InjectedFault[] = [];
  private droppedLog = 0;

  set(plan: FaultPlan): void {
    this.plan = plan;
    this.rules = plan.rules.map((rule) => ({
      rule,
      random: prng((plan.seed ^ hash32(rule.id)) >>> 0),
      seen: 0,
      injected: 0,
    }));
    this.log.length = 0;
    this.droppedLog = 0;
  }

  get active(): boolean {
    return this.rules.length > 0;
  }

  decide(subject: string, payloadLength: number): FaultDecision | null {
    for (const st of this.rules) {
      const r = st.rule;
      if (!subjectMatches(r.subject, subject)) continue;
      const n = st.seen++;
      const roll = st.random();
      if (n < (r.after ?? 0)) continue;
      if (r.limit !== undefined && st.injected >= r.limit) continue;
      if (roll >= (r.probability ?? 1)) continue;
      st.injected++;
      if (this.log.length < MAX_LOG) this.log.push({ rule: r.id, action: r.action, subject, n });
      else this.droppedLog++;
      switch (r.action) {
        case 'drop':
        case 'duplicate':
        case 'reorder':
          return { action: r.action };
        case 'delay':
          return {
            action: 'delay',
            ms: (r.delayMs ?? 10) + Math.floor(st.random() * ((r.jitterMs ?? 0) + 1)),
          };
        case 'corrupt': {
          const positions: number[] = [];
          for (let i = 0; i < (r.bytes ?? 1) && payloadLength > 0; i++)
            positions.push(Math.floor(st.random() * payloadLength));
          return { action: 'corrupt', positions };
        }
        default:
          return null;
      }
    }
    return null;
  }

  snapshot(): { plan: FaultPlan; injected: InjectedFault[]; dropped: number } {
    return { plan: this.plan, injected: [...this.log], dropped: this.droppedLog };
  }
}
