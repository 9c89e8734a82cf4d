import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Journal, type JournalLog } from '@nestlab/service-kit';
import { asRecord } from './xen-journal.js';

type Rec = { n: number };
const guard = (v: unknown): Rec | undefined =>
  typeof v === 'object' && v !== null && Number.isInteger((v as Rec).n) ? (v as Rec) : undefined;

const quiet = () => {
  const warnings: string[] = [];
  const log: JournalLog = { warn: (_o, m) => warnings.push(m), error: (_o, m) => warnings.push(m) };
  return { log, warnings };
};

describe('Journal', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nestlab-journal-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads back what was appended, in order', () => {
    const path = join(dir, 'a.journal');
    const { journal, records } = Journal.open(path, guard, quiet().log);
    assert.deepEqual(records, []);
    for (let n = 0; n < 3; n++) journal.append({ n });
    journal.close();
    assert.deepEqual(Journal.open(path, guard, quiet().log).records, [
      { n: 0 },
      { n: 1 },
      { n: 2 },
    ]);
  });

  it('writes the records of a turn together: at flush(), else at the end of the turn', async () => {
    const path = join(dir, 'turn.journal');
    const { journal } = Journal.open(path, guard, quiet().log);
    const onDisk = () => readFileSync(path, 'utf8');
    journal.append({ n: 1 });
    journal.append({ n: 2 });
    assert.equal(onDisk(), '', 'not yet: the turn may add more');
    journal.flush();
    assert.equal(onDisk(), '{"n":1}\n{"n":2}\n', 'flush() (a message about to leave) writes them');
    journal.append({ n: 3 });
    await new Promise((r) => setImmediate(r));
    assert.equal(onDisk(), '{"n":1}\n{"n":2}\n{"n":3}\n', 'the end of the turn writes the rest');
    journal.append({ n: 4 });
    journal.close();
    assert.deepEqual(
      Journal.open(path, guard, quiet().log).records.at(-1),
      { n: 4 },
      'and close()',
    );
  });

  it('ignores a torn tail with a warning, cuts it off, and appends cleanly after it', () => {
    const path = join(dir, 'b.journal');
    writeFileSync(path, '{"n":1}\n{"n":2}\n{"n":');
    const q = quiet();
    const { journal, records } = Journal.open(path, guard, q.log);
    assert.deepEqual(records, [{ n: 1 }, { n: 2 }]);
    assert.equal(q.warnings.length, 1);
    journal.append({ n: 3 });
    journal.close();
    assert.equal(readFileSync(path, 'utf8'), '{"n":1}\n{"n":2}\n{"n":3}\n');
  });

  it('stops at the first line that is not a record (garbage, or the wrong shape)', () => {
    const path = join(dir, 'c.journal');
    writeFileSync(path, '{"n":1}\n\u0000\u0001garbage\n{"n":3}\n');
    assert.deepEqual(Journal.open(path, guard, quiet().log).records, [{ n: 1 }]);
    writeFileSync(path, '{"n":1}\n{"n":"two"}\n');
    assert.deepEqual(Journal.open(path, guard, quiet().log).records, [{ n: 1 }]);
  });

  it('rewrites atomically: the file holds exactly the new records, no tmp left', () => {
    const path = join(dir, 'd.journal');
    const { journal } = Journal.open<Rec>(path, guard, quiet().log);
    journal.append({ n: 1 });
    journal.rewrite([{ n: 9 }]);
    journal.append({ n: 10 });
    journal.close();
    assert.equal(readFileSync(path, 'utf8'), '{"n":9}\n{"n":10}\n');
    assert.throws(() => readFileSync(`${path}.tmp`), /ENOENT/);
  });

  it('keeps serving when the data dir cannot be written', () => {
    const file = join(dir, 'not-a-dir');
    appendFileSync(file, 'x');
    const q = quiet();
    const { journal } = Journal.open<Rec>(join(file, 'e.journal'), guard, q.log);
    journal.append({ n: 1 });
    assert.ok(q.warnings.some((w) => /will not survive/.test(w)));
  });
});

describe('xen journal records', () => {
  it('accepts the shapes it writes and refuses others', () => {
    assert.ok(asRecord({ t: 'bind', domain: 0, bdf: '0000:00:04.0', vector: 1 }));
    assert.ok(asRecord({ t: 'move', domain: 0, pfn: 1, from: 2, to: 3 }));
    assert.equal(asRecord({ t: 'move', domain: 0, pfn: 1, from: -2, to: 3 }), undefined);
    assert.equal(asRecord({ t: 'bind', domain: 0, bdf: 7, vector: 1 }), undefined);
    assert.equal(asRecord({ t: 'nope' }), undefined);
    assert.equal(asRecord({ t: 'toString' }), undefined);
    assert.equal(asRecord(null), undefined);
  });
});
