import type { RunReport } from '@nestlab/formats';
import type { RealConfig } from './configs.js';
import type { RealReport } from './real-report.js';

/** The fields of the lab's run report (`nestlab run --json`) the comparison reads. */
export interface EmulatedView {
  scenario: RunReport['scenario'];
  /** A RunReport's outcome; any string, so a hand-made view needs no cast. */
  outcome: string;
  ios: Pick<RunReport['ios'], 'submitted' | 'completed'>;
  features: Pick<RunReport['features'], 'negotiated'>;
  driver: Pick<RunReport['driver'], 'ok'>;
  dma: Pick<RunReport['dma'], 'translated' | 'faulted' | 'misdirected'>;
  firstMisdirected: Pick<NonNullable<RunReport['firstMisdirected']>, 'owner'> | null;
}

export interface Difference {
  field: string;
  real: string;
  emulated: string;
}

export interface ComparedRow extends Difference {
  /** 'agree' | 'differ' | 'not compared: <why>' */
  verdict: string;
}

export interface Comparison {
  scenario: string;
  real: RealReport;
  emulated: EmulatedView;
  agree: boolean;
  differences: Difference[];
  rows: ComparedRow[];
}

const bit = (hex: string | null, n: number): string =>
  hex === null ? 'none' : (BigInt(hex) >> BigInt(n)) & 1n ? 'yes' : 'no';

function ioResult(submitted: number, completed: number): string {
  if (submitted === 0) return 'none submitted';
  if (completed === submitted) return 'all completed';
  return completed === 0 ? 'none completed' : 'some completed';
}

const some = (n: number | null): string => (n === null ? 'unknown' : n > 0 ? 'yes' : 'none');
/** Whose frame a misdirected access hit, in the classes the real run can tell apart. */
const ownerClass = (owner: string | undefined): string =>
  owner === undefined ? '-' : owner.startsWith('dom0') ? 'dom0' : 'not dom0';

/** Field by field: the real run next to the emulation, and which differences count. */
export function compare(cfg: RealConfig, real: RealReport, emu: EmulatedView): Comparison {
  const rows: ComparedRow[] = [];
  const add = (field: string, r: string, e: string, skip?: string) => {
    const why = skip ?? cfg.notCompared[field];
    const verdict = why ? `not compared: ${why}` : r === e ? 'agree' : 'differ';
    rows.push({ field, real: r, emulated: e, verdict });
  };
  add('outcome', real.outcome ?? 'no result', emu.outcome);
  add(
    'ios',
    ioResult(real.ios.submitted, real.ios.completed),
    ioResult(emu.ios.submitted, emu.ios.completed),
  );
  add('driver.ok', String(real.driver.ok), String(emu.driver.ok));
  add(
    'features.version1',
    bit(real.features.negotiated, 32),
    emu.driver.ok ? bit(emu.features.negotiated, 32) : 'none',
  );
  add(
    'features.accessPlatform',
    bit(real.features.negotiated, 33),
    emu.driver.ok ? bit(emu.features.negotiated, 33) : 'none',
  );
  const noCount = 'QEMU counts vIOMMU translations only when a vIOMMU is present';
  add(
    'dma.translated',
    some(real.dma.translated),
    some(emu.dma.translated),
    real.dma.translated === null ? noCount : undefined,
  );
  add(
    'dma.faulted',
    some(real.dma.faulted),
    some(emu.dma.faulted),
    real.dma.faulted === null ? noCount : undefined,
  );
  add('dma.misdirected', real.firstMisdirected ? 'yes' : 'none', some(emu.dma.misdirected));
  if (real.firstMisdirected || emu.firstMisdirected) {
    add(
      'misdirected.owner',
      ownerClass(real.firstMisdirected?.owner),
      ownerClass(emu.firstMisdirected?.owner),
    );
  }
  const differences = rows
    .filter((r) => r.verdict === 'differ')
    .map(({ field, real: r, emulated: e }) => ({ field, real: r, emulated: e }));
  return {
    scenario: cfg.scenario,
    real,
    emulated: emu,
    agree: differences.length === 0,
    differences,
    rows,
  };
}

/** The side-by-side table; reasons for uncompared fields follow as notes. */
export function formatComparison(c: Comparison): string {
  const notes: string[] = [];
  const body = c.rows.map((r): string[] => {
    let mark = r.verdict === 'agree' ? 'ok' : 'DIFFERS';
    if (r.verdict.startsWith('not compared: ')) {
      notes.push(`[${notes.length + 1}] ${r.field}: ${r.verdict.slice('not compared: '.length)}`);
      mark = `not compared [${notes.length}]`;
    }
    return [r.field, r.real, r.emulated, mark];
  });
  const all = [['field', 'real (QEMU + Linux)', 'nestlab', ''], ...body];
  const w = [0, 1, 2].map((i) => Math.max(...all.map((row) => row[i]?.length ?? 0)));
  const lines = all.map((row) =>
    row
      .map((cell, i) => (i < 3 ? cell.padEnd(w[i] ?? 0) : cell))
      .join('  ')
      .trimEnd(),
  );
  const verdict = c.agree ? 'real and emulated agree' : `${c.differences.length} difference(s)`;
  return [`${c.scenario}: ${c.real.stack}`, ...lines, ...notes, verdict, ''].join('\n');
}
