// Puts a translation's addresses on the active span (ARCHITECTURE §7).
import { trace } from '@opentelemetry/api';
import type { TranslationStep } from '@nestlab/addr';
import { ATTR, LAYER_ATTR } from '@nestlab/telemetry';

export function recordStep(step: TranslationStep): void {
  const span = trace.getActiveSpan();
  if (!span) return;
  span.setAttribute(LAYER_ATTR[step.fromLayer], step.from);
  if (step.to !== null) span.setAttribute(LAYER_ATTR[step.toLayer], step.to);
  span.setAttribute(ATTR.translationBy, step.by);
  span.setAttribute(ATTR.translationFn, step.fn);
}
