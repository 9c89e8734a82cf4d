// Property test of scenario files at the edge: every shipped scenario,
// mutated line by line (deleted, duplicated, truncated, values replaced by
// hostile YAML, bytes inserted), is either a valid scenario that the runner
// can turn into a run, or refused with a ScenarioFileError naming the file
// and, where one exists, a line of the text; never another exception.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { notRunnable, toScenario } from './from-file.js';
import { BUILTIN_DIR, ScenarioFileError, parseScenarioText } from './load.js';

if (process.env['NESTLAB_FUZZ_RUNS'] === undefined) {
  fc.configureGlobal({ ...fc.readConfigureGlobal(), numRuns: 300, includeErrorInReport: true });
}

const IDS = [
  'kvm-guest-baseline',
  'xen-pv-dom0-legacy',
  'xen-pv-dom0-dma-api',
  'viommu-access-platform',
  'viommu-legacy-bypass',
  'old-driver-rejects-feature',
  'physical-virtio-card',
  'ppc64-virtio-bypass',
];
const TEXTS = new Map(IDS.map((id) => [id, readFileSync(join(BUILTIN_DIR, `${id}.yaml`), 'utf8')]));

// Aliases (`*`, `&`) have their own tests below; random ones would mostly be unset anchors.
const noAlias = (t: string) => !/[*&]/.test(t);
const hostileYaml = fc.oneof(
  fc.constantFrom('', '~', '[]', '{}', '-1', '1e999', '0x10', '"\\u0000"', '!!binary AAAA'),
  fc.constantFrom(
    'yes',
    'no',
    'ok',
    'VERSION_2',
    '9999GiB',
    '{ present: maybe }',
    '[VERSION_1, 33]',
  ),
  fc.string({ maxLength: 12 }).filter(noAlias),
  fc.constant('x'.repeat(10_000)),
);
const edit = fc.oneof(
  fc.record({ kind: fc.constant('delete' as const), line: fc.nat() }),
  fc.record({ kind: fc.constant('duplicate' as const), line: fc.nat() }),
  fc.record({ kind: fc.constant('value' as const), line: fc.nat(), value: hostileYaml }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.string({ maxLength: 8 }).filter(noAlias),
  }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
);
type Edit = typeof edit extends fc.Arbitrary<infer T> ? T : never;

function apply(text: string, e: Edit): string {
  const lines = text.split('\n');
  switch (e.kind) {
    case 'delete':
      lines.splice(e.line % lines.length, 1);
      return lines.join('\n');
    case 'duplicate': {
      const i = e.line % lines.length;
      lines.splice(i, 0, lines[i] ?? '');
      return lines.join('\n');
    }
    case 'value': {
      const i = e.line % lines.length;
      lines[i] = (lines[i] ?? '').replace(/:\s.*$/, `: ${e.value}`);
      return lines.join('\n');
    }
    case 'insert': {
      const at = e.at % (text.length + 1);
      return text.slice(0, at) + e.bytes + text.slice(at);
    }
    case 'truncate':
      return text.slice(0, e.at % (text.length + 1));
  }
}

describe('scenario files (fast-check)', () => {
  it('a mutated scenario is runnable or refused with its file, line and reason', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...IDS),
        fc.array(edit, { minLength: 1, maxLength: 3 }),
        (id, edits) => {
          const text = edits.reduce(apply, TEXTS.get(id) ?? '');
          let parsed;
          try {
            parsed = parseScenarioText(text, `${id}.yaml`);
          } catch (err) {
            assert.ok(err instanceof ScenarioFileError, `threw ${String(err)}`);
            assert.ok(err.message.startsWith(`${id}.yaml`), err.message);
            assert.equal(err.message.split('\n').length, 1, 'one line');
            const lines = text.split('\n').length;
            assert.ok(
              err.line === null || (err.line >= 1 && err.line <= lines + 1),
              `line ${err.line}`,
            );
            return;
          }
          // Accepted: the runner must be able to use it (or say why not).
          const why = notRunnable(parsed);
          if (why === null) {
            const s = toScenario(parsed);
            assert.ok(s.workload.ios >= 1 && s.stack.machineBytes > 0, JSON.stringify(s.workload));
          } else assert.equal(typeof why, 'string');
        },
      ),
    );
  });

  const aliases: [string, string][] = [
    ['an alias to an anchor never set', 'id: *nowhere\n'],
    [
      'an anchor that contains its own alias',
      (TEXTS.get('physical-virtio-card') ?? '').replace(/offer: .*/, 'offer: &a [*a]'),
    ],
  ];
  for (const [what, text] of aliases) {
    it(`${what} is refused as invalid YAML`, () => {
      assert.throws(() => parseScenarioText(text, 'alias.yaml'), ScenarioFileError);
    });
  }
});
