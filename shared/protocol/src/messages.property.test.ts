// Property tests of every message schema the package exports, found by
// walking the exports (a new message is covered without touching this file).
// Heads are generated from each TypeBox schema, then mutated: wrong types,
// unknown and missing fields, bad hex, huge numbers and arrays, truncated and
// bit-flipped frames, lying head lengths. A receiver's decode must either
// return a head its schema accepts or throw a ProtocolError with an input
// code: never another exception, never a half-checked head.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import * as protocol from './index.js';
import {
  MAX_HEAD_BYTES,
  ProtocolError,
  RemoteError,
  decodeFrame,
  decodeReply,
  decodeRequest,
  encodeErrorReply,
  encodeFrame,
  encodeReply,
  encodeRequest,
} from './index.js';
import type { MessageDef } from './index.js';

if (process.env['NESTLAB_FUZZ_RUNS'] === undefined) {
  fc.configureGlobal({ ...fc.readConfigureGlobal(), numRuns: 300, includeErrorInReport: true });
}

const isDef = (v: unknown): v is MessageDef =>
  typeof v === 'object' &&
  v !== null &&
  typeof (v as MessageDef).verb === 'string' &&
  typeof (v as MessageDef).request?.check === 'function';

/** Every MessageDef exported, including those grouped in objects (Ping, FaultControl). */
function allDefs(): MessageDef[] {
  const out = new Set<MessageDef>();
  const visit = (v: unknown, depth: number) => {
    if (isDef(v)) out.add(v);
    else if (depth < 3 && typeof v === 'object' && v !== null && !('type' in v || 'anyOf' in v)) {
      for (const x of Object.values(v)) visit(x, depth + 1);
    }
  };
  for (const v of Object.values(protocol)) visit(v, 0);
  return [...out].sort((a, b) => a.name.localeCompare(b.name));
}
const DEFS = allDefs();

type Schema = Record<string, unknown> & {
  type?: string;
  const?: unknown;
  anyOf?: Schema[];
  properties?: Record<string, Schema>;
  required?: string[];
  patternProperties?: Record<string, Schema>;
  items?: Schema;
};

const arbCache = new WeakMap<Schema, fc.Arbitrary<unknown>>();
/** Values a schema accepts; built once per schema (regex arbitraries are costly to build). */
function arbOf(s: Schema): fc.Arbitrary<unknown> {
  let a = arbCache.get(s);
  if (a === undefined) arbCache.set(s, (a = buildArb(s)));
  return a;
}

/** The subset of JSON Schema TypeBox emits here. */
function buildArb(s: Schema): fc.Arbitrary<unknown> {
  if ('const' in s) return fc.constant(s.const);
  if (s.anyOf) return fc.oneof(...s.anyOf.map(arbOf));
  const n = (k: string) => (typeof s[k] === 'number' ? (s[k] as number) : undefined);
  switch (s.type) {
    case 'object': {
      if (s.patternProperties) {
        const [pattern, valueSchema] = Object.entries(s.patternProperties)[0] ?? ['', {}];
        const key = pattern ? fc.stringMatching(new RegExp(pattern)) : fc.string({ maxLength: 8 });
        return fc.dictionary(key, arbOf(valueSchema), { maxKeys: 3 });
      }
      const props = Object.fromEntries(
        Object.entries(s.properties ?? {}).map(([k, v]) => [k, arbOf(v)]),
      );
      return fc.record(props, { requiredKeys: s.required ?? [] });
    }
    case 'array':
      return fc.array(arbOf(s.items ?? {}), {
        minLength: n('minItems') ?? 0,
        maxLength: Math.max(n('minItems') ?? 0, Math.min(n('maxItems') ?? 4, 4)),
      });
    case 'string':
      return typeof s['pattern'] === 'string'
        ? fc.stringMatching(new RegExp(s['pattern']))
        : fc.string({
            minLength: n('minLength') ?? 0,
            maxLength: Math.min(n('maxLength') ?? 16, 16),
          });
    case 'integer': {
      const step = n('multipleOf') ?? 1;
      const min = Math.ceil((n('minimum') ?? -1e6) / step);
      const max = Math.floor((n('maximum') ?? 1e6) / step);
      return fc
        .integer({ min: Math.max(min, -(2 ** 31)), max: Math.min(max, 2 ** 31 - 1) })
        .map((v) => v * step);
    }
    case 'number':
      return fc.double({ min: n('minimum') ?? -1e6, max: n('maximum') ?? 1e6, noNaN: true });
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
}

/** The largest `key` (maxItems, maxLength) in any schema of the protocol. */
function largest(key: 'maxItems' | 'maxLength'): number {
  let max = 0;
  const visit = (v: unknown) => {
    if (typeof v !== 'object' || v === null) return;
    const n = (v as Record<string, unknown>)[key];
    if (typeof n === 'number') max = Math.max(max, n);
    for (const x of Object.values(v)) visit(x);
  };
  for (const d of DEFS) visit([d.request.schema, d.reply?.schema]);
  return max;
}
/**
 * One more element than any maxItems allows (65,536 frame numbers today) and
 * one more character than any maxLength: refused for their size alone, and
 * no bigger, since every case that draws one pays to encode, parse and check
 * it. Frozen: shared by every case, never edited in place.
 */
const HUGE_ARRAY = Object.freeze(new Array<number>(largest('maxItems') + 1).fill(0));
const HUGE_STRING = 'f'.repeat(largest('maxLength') + 1);
/** A head holding this is over MAX_HEAD_BYTES: refused as BAD_FRAME before it is parsed. */
const OVERSIZED_STRING = 'f'.repeat(MAX_HEAD_BYTES);
/** A hostile replacement for one value: wrong type, bad hex, out of range, huge. */
const hostileValue = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      null,
      true,
      -1,
      1.5,
      2 ** 53,
      -(2 ** 63),
      Number.MAX_VALUE,
      '',
      '0x',
    ),
  },
  {
    weight: 3,
    arbitrary: fc.constantFrom('0xzz', '0x1' + '0'.repeat(16), [], {}, [null], { a: 1 }),
  },
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  // Longer than any maxItems or maxLength in the schemas.
  { weight: 1, arbitrary: fc.constantFrom(HUGE_ARRAY, HUGE_STRING) },
);

type Edit = { path: number; kind: 'replace' | 'delete' | 'add'; value: unknown; key: string };
const editWith = (value: fc.Arbitrary<unknown>): fc.Arbitrary<Edit> =>
  fc.record({
    path: fc.nat(),
    kind: fc.constantFrom('replace', 'replace', 'delete', 'add'),
    value,
    key: fc.oneof(
      fc.constantFrom('__proto__', 'constructor', 'extra'),
      fc.string({ maxLength: 6 }),
    ),
  });
const editArb = editWith(hostileValue);
/** Also makes heads over MAX_HEAD_BYTES, for the property that checks the refusal order. */
const editOrOversize = editWith(
  fc.oneof(
    { weight: 100, arbitrary: hostileValue },
    { weight: 1, arbitrary: fc.constant(OVERSIZED_STRING) },
  ),
);

/** A hostile value to insert: a copy, so edits never reach another case's values; the frozen huge one as it is. */
const fresh = (v: unknown): unknown => (Object.isFrozen(v) ? v : structuredClone(v));

/** Applies edits in turn to a copy of `head` (the copy is made once: heads may hold huge values). */
function applyEdits(head: unknown, edits: readonly Edit[]): unknown {
  return edits.reduce((h, e) => editInPlace(h, e), structuredClone(head) as unknown);
}

/** Applies an edit to one of the head's objects or arrays (chosen by `path`), in place. */
function editInPlace(copy: unknown, e: Edit): unknown {
  const holders: (Record<string, unknown> | unknown[])[] = [];
  const collect = (v: unknown) => {
    if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
      holders.push(v as Record<string, unknown>);
      for (const x of Object.values(v)) collect(x);
    }
  };
  collect(copy);
  const target = holders[e.path % Math.max(holders.length, 1)];
  if (target === undefined) return fresh(e.value);
  // On the wire an array has only its elements, so edits to one touch only
  // elements: a named key would not travel (and `length` cannot be redefined,
  // a `constructor` key breaks the array's own splice). Adding appends,
  // deleting drops one, replacing overwrites one (appends to an empty array).
  if (Array.isArray(target)) {
    const at = target.length > 0 ? e.path % target.length : -1;
    if (e.kind === 'delete') {
      if (at >= 0) target.splice(at, 1);
    } else if (e.kind === 'replace' && at >= 0) target[at] = fresh(e.value);
    else target.push(fresh(e.value));
    return copy;
  }
  const keys = Object.keys(target);
  const key = keys.length > 0 && e.kind !== 'add' ? (keys[e.path % keys.length] ?? e.key) : e.key;
  if (e.kind === 'delete') delete (target as Record<string, unknown>)[key];
  // An own data property, even for `__proto__` (an assignment would set the prototype instead).
  else if (Object.getOwnPropertyDescriptor(target, key)?.configurable !== false)
    Object.defineProperty(target, key, {
      value: fresh(e.value),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  return copy;
}

const bytesEdit = fc.oneof(
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('flip' as const),
    at: fc.nat(),
    mask: fc.integer({ min: 1, max: 255 }),
  }),
  fc.record({
    kind: fc.constant('headLen' as const),
    value: fc.oneof(fc.nat(), fc.constantFrom(0xffff_ffff, MAX_HEAD_BYTES + 1)),
  }),
  fc.record({
    kind: fc.constant('append' as const),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }),
  }),
);
type BytesEdit = typeof bytesEdit extends fc.Arbitrary<infer T> ? T : never;

function editBytes(frame: Uint8Array, e: BytesEdit): Uint8Array {
  const out = Uint8Array.from(frame);
  switch (e.kind) {
    case 'truncate':
      return out.subarray(0, e.at % (out.length + 1));
    case 'flip':
      out[e.at % out.length] = (out[e.at % out.length] ?? 0) ^ e.mask;
      return out;
    case 'headLen':
      if (out.length >= 4) new DataView(out.buffer).setUint32(0, e.value >>> 0, true);
      return out;
    case 'append':
      return Uint8Array.from([...out, ...e.bytes]);
  }
}

const INPUT_CODES = ['BAD_FRAME', 'BAD_JSON', 'SCHEMA_INVALID'];

/**
 * What decodeRequest must make of a well-formed frame holding `head`, in its
 * documented order (codec.ts): the frame first (a head over MAX_HEAD_BYTES is
 * BAD_FRAME before it is parsed), then the schema.
 */
function expectedRefusal(def: MessageDef, head: unknown): 'accepted' | string {
  const json = JSON.stringify(head);
  if (Buffer.byteLength(json, 'utf8') > MAX_HEAD_BYTES) return 'BAD_FRAME';
  return def.request.check(JSON.parse(json) as unknown) ? 'accepted' : 'SCHEMA_INVALID';
}

/** Keys that would reach a prototype if a receiver assigned them rather than parsed them. */
const PROTO_KEYS = ['__proto__', 'constructor', 'prototype'] as const;

/** What a receiver may do with bytes: accept a head the schema accepts, or refuse with an input code. */
function receive(def: MessageDef, bytes: Uint8Array): 'accepted' | string {
  let r: ReturnType<typeof decodeRequest>;
  try {
    r = decodeRequest(def, bytes);
  } catch (err) {
    assert.ok(err instanceof ProtocolError, `${def.name}: threw ${String(err)}`);
    assert.ok(INPUT_CODES.includes(err.code) && err.kind === 'input', `${err.code}/${err.kind}`);
    return err.code;
  }
  assert.ok(def.request.check(r.head), `${def.name}: accepted a head its schema refuses`);
  if (typeof r.head === 'object' && r.head !== null && !Array.isArray(r.head))
    assert.equal(Object.getPrototypeOf(r.head), Object.prototype, `${def.name}: head's prototype`);
  assert.equal(({} as Record<string, unknown>)['polluted'], undefined, 'Object.prototype polluted');
  if (def.data === 'none') assert.equal(r.data.length, 0);
  if (def.data === 'required') assert.ok(r.data.length > 0);
  return 'accepted';
}

const dataFor = (def: MessageDef) =>
  def.data === 'none'
    ? fc.constant(new Uint8Array(0))
    : fc.uint8Array({ minLength: def.data === 'required' ? 1 : 0, maxLength: 64 });
const BY_NAME = new Map(DEFS.map((d) => [d.name, d]));
const defOf = (name: string) => BY_NAME.get(name) as MessageDef;
/** Names, so a counterexample prints the message's name rather than its compiled schema. */
const nameArb = fc.constantFrom(...BY_NAME.keys());
const validMessage = nameArb.chain((name) =>
  fc.tuple(fc.constant(name), arbOf(defOf(name).request.schema as Schema), dataFor(defOf(name))),
);

describe(`message schemas (fast-check, ${DEFS.length} messages)`, () => {
  it('finds every message of the protocol', () => {
    assert.ok(DEFS.length >= 30, `${DEFS.length} messages`);
    for (const name of ['l0.mem.access', 'xen.irq.msi', 'iommu.translate', 'dom0.job.run']) {
      assert.ok(
        DEFS.some((d) => d.name === name),
        name,
      );
    }
  });

  it('a generated valid head round-trips through the frame and its schema', () => {
    fc.assert(
      fc.property(validMessage, ([name, head, data]) => {
        const def = defOf(name);
        assert.ok(def.request.check(head), `generator made an invalid ${def.name}`);
        const r = decodeRequest(def, encodeRequest(def, head as never, data));
        // fast-check builds objects without a prototype; compare what travels.
        assert.deepEqual(r.head, JSON.parse(JSON.stringify(head)));
        assert.deepEqual([...r.data], [...data]);
      }),
    );
  });

  it('mutated heads: accepted only when the schema accepts them, else SCHEMA_INVALID', () => {
    fc.assert(
      fc.property(
        validMessage,
        fc.array(editOrOversize, { minLength: 1, maxLength: 3 }),
        ([name, head, data], edits) => {
          const def = defOf(name);
          const bad = applyEdits(head, edits);
          assert.equal(receive(def, encodeFrame(bad, data)), expectedRefusal(def, bad));
        },
      ),
    );
  });

  it('an unknown field on any head is refused (a typo is an error, not a silent default)', () => {
    const key = fc.oneof(
      fc.constantFrom('__proto__', 'constructor', 'toString', 'extra'),
      fc.string(),
    );
    fc.assert(
      fc.property(validMessage, key, hostileValue, ([name, head, data], k, v) => {
        const def = defOf(name);
        fc.pre(!Object.keys((def.request.schema as Schema).properties ?? {}).includes(k));
        const bad = applyEdits(head, [{ path: 0, kind: 'add', key: k, value: v }]);
        assert.equal(receive(def, encodeFrame(bad, data)), 'SCHEMA_INVALID');
      }),
    );
  });

  it('a __proto__, constructor or prototype key in any object of a head or reply is refused', () => {
    const objectsOf = (v: unknown, out: Record<string, unknown>[] = []) => {
      if (typeof v === 'object' && v !== null) {
        if (!Array.isArray(v)) out.push(v as Record<string, unknown>);
        for (const x of Object.values(v)) objectsOf(x, out);
      }
      return out;
    };
    const steer = (value: unknown, at: number, key: string) => {
      const copy = structuredClone(value);
      const targets = objectsOf(copy);
      const target = targets[at % Math.max(targets.length, 1)];
      if (target === undefined) return null;
      Object.defineProperty(target, key, {
        value: { polluted: true },
        enumerable: true,
        writable: true,
        configurable: true,
      });
      return copy;
    };
    const replying = DEFS.filter((d) => d.reply !== null).map((d) => d.name);
    const replyArb = fc
      .constantFrom(...replying)
      .chain((name) => fc.tuple(fc.constant(name), arbOf(defOf(name).reply?.schema as Schema)));
    fc.assert(
      fc.property(
        validMessage,
        replyArb,
        fc.nat(),
        fc.constantFrom(...PROTO_KEYS),
        ([name, head, data], [replyName, body], at, key) => {
          const bad = steer(head, at, key);
          if (bad !== null)
            assert.equal(receive(defOf(name), encodeFrame(bad, data)), 'SCHEMA_INVALID');
          const badBody = steer(body, at, key);
          if (badBody !== null) {
            const def = defOf(replyName);
            assert.throws(
              () => decodeReply(def, 'nestlab.t.x.y.z', encodeReply(def, badBody as never)),
              (err: unknown) => err instanceof ProtocolError && err.code === 'SCHEMA_INVALID',
            );
          }
          assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
        },
      ),
    );
  });

  it('truncated, flipped and lying frames: a typed input error, never a crash', () => {
    fc.assert(
      fc.property(
        validMessage,
        fc.array(bytesEdit, { minLength: 1, maxLength: 3 }),
        ([name, head, data], edits) => {
          const def = defOf(name);
          const bytes = edits.reduce(
            (b, e) => editBytes(b, e),
            encodeRequest(def, head as never, data),
          );
          receive(def, bytes);
        },
      ),
    );
  });

  it('arbitrary bytes on any subject: a typed input error, never a crash', () => {
    fc.assert(
      fc.property(nameArb, fc.uint8Array({ maxLength: 256 }), (name, bytes) => {
        const def = defOf(name);
        receive(def, bytes);
        try {
          decodeFrame(bytes);
        } catch (err) {
          assert.ok(err instanceof ProtocolError && ['BAD_FRAME', 'BAD_JSON'].includes(err.code));
        }
      }),
    );
  });

  it('replies: a good one decodes, an error one is a RemoteError, anything else a ProtocolError', () => {
    const replying = DEFS.filter((d) => d.reply !== null).map((d) => d.name);
    const replyArb = fc
      .constantFrom(...replying)
      .chain((name) =>
        fc.tuple(
          fc.constant(name),
          arbOf(defOf(name).reply?.schema as Schema),
          fc.array(editArb, { maxLength: 2 }),
          fc.boolean(),
        ),
      );
    fc.assert(
      fc.property(replyArb, ([name, body, edits, asError]) => {
        const def = defOf(name);
        const bad = applyEdits(body, edits);
        const bytes = asError
          ? encodeErrorReply({
              code: 'IOMMU_FAULT_NOT_PRESENT',
              message: String(JSON.stringify(bad)).slice(0, 99),
              kind: 'guest',
            })
          : encodeReply(def, bad as never);
        let outcome: unknown;
        try {
          outcome = decodeReply(def, 'nestlab.t.x.y.z', bytes).head;
        } catch (err) {
          outcome = err;
        }
        if (asError)
          assert.ok(outcome instanceof RemoteError && outcome.code === 'IOMMU_FAULT_NOT_PRESENT');
        else if (outcome instanceof Error) {
          assert.ok(
            outcome instanceof ProtocolError && outcome.code === 'SCHEMA_INVALID',
            String(outcome),
          );
          assert.equal(def.reply?.check(JSON.parse(JSON.stringify(bad)) as unknown), false);
        } else assert.ok(def.reply?.check(outcome), `${def.name}: accepted a bad reply`);
      }),
    );
  });
});
