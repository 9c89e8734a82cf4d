import { ATTR } from '@nestlab/telemetry';
import type { StoredSpan } from './trace-store.js';

/** OTLP/JSON (what the OTLP/HTTP exporter of the Node SDK sends), the parts the console reads. */
interface AnyValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
}
interface KeyValue {
  key: string;
  value?: AnyValue;
}
interface OtlpSpan {
  traceId?: string;
  spanId?: string;
  parentSpanId?: string;
  name?: string;
  kind?: number;
  startTimeUnixNano?: string | number;
  endTimeUnixNano?: string | number;
  attributes?: KeyValue[];
  status?: { code?: number; message?: string };
  links?: { traceId?: string; spanId?: string }[];
}
interface OtlpRequest {
  resourceSpans?: {
    resource?: { attributes?: KeyValue[] };
    scopeSpans?: { spans?: OtlpSpan[] }[];
  }[];
}

export class OtlpError extends Error {
  override readonly name = 'OtlpError';
  readonly code = 'OTLP_INVALID';
  readonly statusCode = 400;
}

const HEX_ID = /^[0-9a-f]+$/i;

function value(v: AnyValue | undefined): string | number | boolean | undefined {
  if (!v) return undefined;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  return undefined;
}

function attrs(list: KeyValue[] | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const kv of list ?? []) {
    const v = value(kv.value);
    if (typeof kv.key === 'string' && v !== undefined) out[kv.key] = v;
  }
  return out;
}

const micros = (nanos: string | number | undefined) =>
  nanos === undefined ? 0 : Number(BigInt(nanos) / 1000n);

/** Decodes an OTLP/JSON export request; spans without valid ids are refused as a whole request. */
export function decodeOtlp(body: unknown): StoredSpan[] {
  if (typeof body !== 'object' || body === null)
    throw new OtlpError('body is not an OTLP JSON object');
  const req = body as OtlpRequest;
  if (!Array.isArray(req.resourceSpans)) throw new OtlpError('resourceSpans is missing');
  const out: StoredSpan[] = [];
  for (const rs of req.resourceSpans) {
    const resource = attrs(rs.resource?.attributes);
    const service = String(resource['service.name'] ?? 'unknown');
    const resourceStack = resource[ATTR.stack];
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        if (!s.traceId || !s.spanId || !HEX_ID.test(s.traceId) || !HEX_ID.test(s.spanId)) {
          throw new OtlpError('a span has no hex traceId/spanId');
        }
        let start: number;
        let end: number;
        try {
          start = micros(s.startTimeUnixNano);
          end = micros(s.endTimeUnixNano);
        } catch {
          throw new OtlpError('a span has a non-integer timestamp');
        }
        const attributes = attrs(s.attributes);
        // A span's own `nestlab.stack` wins over its process's (the SDK's resource).
        const stack = attributes[ATTR.stack] ?? resourceStack;
        out.push({
          traceId: s.traceId.toLowerCase(),
          spanId: s.spanId.toLowerCase(),
          parentSpanId: s.parentSpanId ? s.parentSpanId.toLowerCase() : null,
          service,
          ...(stack === undefined ? {} : { stack: String(stack) }),
          name: String(s.name ?? ''),
          kind: Number(s.kind ?? 0),
          startUs: start,
          endUs: end,
          attributes,
          status: {
            code: Number(s.status?.code ?? 0),
            ...(s.status?.message ? { message: s.status.message } : {}),
          },
          links: (s.links ?? [])
            .filter((l) => l.traceId && l.spanId)
            .map((l) => ({ traceId: String(l.traceId), spanId: String(l.spanId) })),
        });
      }
    }
  }
  return out;
}
