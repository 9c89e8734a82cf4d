import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  BUILTIN_DIR,
  ScenarioFileError,
  loadAllScenarios,
  loadScenarioFile,
  parseScenarioText,
} from './load.js';
import { notRunnable, toScenario } from './from-file.js';

const SEED_IDS = [
  'kvm-guest-baseline',
  'old-driver-rejects-feature',
  'physical-virtio-card',
  'ppc64-virtio-bypass',
  'viommu-access-platform',
  'viommu-legacy-bypass',
  'xen-pv-dom0-dma-api',
  'xen-pv-dom0-legacy',
];
/** Issue 16's rows, one file each beside the seed's. */
const ISSUE_16_IDS = [
  'bit25-card-old-driver',
  'bit25-physical-card',
  'bit25-qemu-device-under-xen',
  'physical-card-rings-in-bar',
  'physical-card-rings-in-bar-access-platform',
  'x86-virtio-exemption-misplaced',
  'xen-pv-dom0-half-fix',
  'xen-pv-dom0-mmio-dma-api',
  'xen-pv-dom0-mmio-legacy',
];
const legacyText = readFileSync(join(BUILTIN_DIR, 'xen-pv-dom0-legacy.yaml'), 'utf8');

const fails = (text: string, match: { line?: number; field?: string; reason: RegExp }) =>
  assert.throws(
    () => parseScenarioText(text, 'x.yaml'),
    (err: ScenarioFileError) => {
      assert.ok(err instanceof ScenarioFileError);
      if (match.line !== undefined) assert.equal(err.line, match.line, err.message);
      if (match.field !== undefined) assert.equal(err.field, match.field, err.message);
      assert.match(err.reason, match.reason);
      return true;
    },
  );

describe('scenario files', () => {
  it('ships the eight seed scenarios and the issue-16 rows, all valid and runnable', () => {
    const all = loadAllScenarios([BUILTIN_DIR]);
    assert.deepEqual(all.map((s) => s.id).sort(), [...SEED_IDS, ...ISSUE_16_IDS].sort());
    for (const f of all) assert.equal(notRunnable(f), null, f.id);
  });

  it('maps the IOMMU setup to how the device is attached', () => {
    const byId = new Map(loadAllScenarios([BUILTIN_DIR]).map((f) => [f.id, toScenario(f)]));
    assert.equal(byId.get('xen-pv-dom0-legacy')?.device.iommu, 'none');
    assert.equal(byId.get('physical-virtio-card')?.device.iommu, 'physical');
    assert.equal(byId.get('ppc64-virtio-bypass')?.device.iommu, 'virtio-exempt');
    assert.equal(byId.get('viommu-legacy-bypass')?.device.iommu, 'virtio');
    const misplaced = byId.get('x86-virtio-exemption-misplaced');
    assert.equal(misplaced?.device.iommu, 'virtio-translated-bus', 'bus 0000:00 is not exempt');
    assert.deepEqual(misplaced?.iommu.virtioExemptBuses, ['0000:01']);
    assert.equal(byId.get('bit25-physical-card')?.device.offer.includes(25), true);
    assert.equal(byId.get('bit25-physical-card')?.driver.wanted.includes(25), true);
    assert.equal(byId.get('viommu-access-platform')?.device.offer.includes(33), true);
  });

  it('names the line and field of an unknown field', () => {
    fails(legacyText.replace('transport: pci', 'transport: pci\nflavour: spicy'), {
      field: 'flavour',
      reason: /unknown field/,
    });
  });

  it('names the line and field of a wrong type', () => {
    const text = legacyText.replace('workload: { ios: 16,', 'workload: { ios: "many",');
    const line = text.split('\n').findIndex((l) => l.startsWith('workload:')) + 1;
    fails(text, { line, field: 'workload.ios', reason: /number|integer/i });
  });

  it('refuses a collection as a mapping key, and keeps every error on one line', () => {
    // `? {...}` makes the mapping below it a key (a fuzz seed found it in `quote:`).
    const text = legacyText.replace('transport: pci', 'transport: pci\n? { a: 1,\n  b: 2 }\n: x');
    const line = text.split('\n').findIndex((l) => l.startsWith('? {')) + 1;
    fails(text, { line, reason: /a mapping key must be a name/ });
    const quoted = legacyText.replace('transport: pci', 'transport: pci\n"two\\nlines": 1');
    assert.throws(
      () => parseScenarioText(quoted, 'q.yaml'),
      (err: Error) =>
        err.message.split('\n').length === 1 && /"two\\nlines": unknown field/.test(err.message),
    );
  });

  it('lists the allowed values of an enum', () => {
    fails(legacyText.replace('expected: misdirected-dma', 'expected: fine'), {
      line: 3,
      field: 'expected',
      reason: /must be one of ok, misdirected-dma/,
    });
  });

  it('rejects broken YAML, non-mappings and unknown feature names', () => {
    fails('id: [unclosed', { reason: /not valid YAML/ });
    fails('- a\n- b\n', { reason: /YAML mapping/ });
    fails(legacyText.replace('offer: [VERSION_1,', 'offer: [VERSION_2,'), {
      field: 'device.offer.0',
      reason: /must be one of/,
    });
  });

  it('requires the file name to match the id and ids to be unique', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nestlab-scen-'));
    try {
      writeFileSync(join(dir, 'other.yaml'), legacyText);
      assert.throws(
        () => loadScenarioFile(join(dir, 'other.yaml')),
        /is xen-pv-dom0-legacy but the file is named other.yaml/,
      );
      rmSync(join(dir, 'other.yaml'));
      writeFileSync(join(dir, 'xen-pv-dom0-legacy.yaml'), legacyText);
      assert.throws(() => loadAllScenarios([BUILTIN_DIR, dir]), /already defined/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('accepts rows of the matrix the runner cannot run yet, and says why', () => {
    const grant = parseScenarioText(
      legacyText
        .replace('id: xen-pv-dom0-legacy', 'id: grant-dma-xen')
        .replace('dma: legacy', 'dma: grant'),
      'grant-dma-xen.yaml',
    );
    assert.match(notRunnable(grant) ?? '', /grant-based DMA/);
  });

  it('runs a virtio-mmio row (the transport is emulated)', () => {
    const mmio = parseScenarioText(
      legacyText
        .replace('id: xen-pv-dom0-legacy', 'id: virtio-mmio-xen')
        .replace('transport: pci', 'transport: mmio'),
      'virtio-mmio-xen.yaml',
    );
    assert.equal(notRunnable(mmio), null);
    assert.equal(toScenario(mmio).mmioVersion, 2, 'version 2 unless the file says 1');
    const legacy = parseScenarioText(
      legacyText
        .replace('id: xen-pv-dom0-legacy', 'id: virtio-mmio-v1')
        .replace('transport: pci', 'transport: mmio\nmmioVersion: 1'),
      'virtio-mmio-v1.yaml',
    );
    assert.equal(toScenario(legacy).mmioVersion, 1);
  });

  it('refuses mmioVersion on a PCI device, naming the field', () => {
    fails(legacyText.replace('transport: pci', 'transport: pci\nmmioVersion: 1'), {
      field: 'mmioVersion',
      reason: /applies only to a virtio-mmio device/,
    });
  });
});
