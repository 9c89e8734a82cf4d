// Puts a translation's addresses on the active span (ARCHITECTURE §7: one
// attribute per address layer, plus who translated and with which function).
import { trace, type AttributeValue } from '@opentelemetry/api';
import { ATTR, LAYER_ATTR } from './attributes.js';

/** The parts of @nestlab/addr's TranslationStep a span records. */
export interface RecordedStep {
  readonly from: string;
  readonly to: string | null;
  readonly fromLayer: keyof typeof LAYER_ATTR;
  readonly toLayer: keyof typeof LAYER_ATTR;
  readonly by: string;
  readonly fn: string;
}

export function recordStep(step: RecordedStep, extra: Record<string, AttributeValue> = {}): void {
  const span = trace.getActiveSpan();
  if (!span) return;
  span.setAttribute(LAYER_ATTR[step.fromLayer], step.from);
  if (step.to !== null) span.setAttribute(LAYER_ATTR[step.toLayer], step.to);
  span.setAttribute(ATTR.translationBy, step.by);
  span.setAttribute(ATTR.translationFn, step.fn);
  span.setAttributes(extra);
}
