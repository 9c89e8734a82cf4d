import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  SUPPORTED_IDS,
  UNSUPPORTED_IDS,
  isUnsupported,
  realConfig,
  type RealConfig,
} from './configs.js';
import { compare, formatComparison, type EmulatedView } from './compare.js';
import { dom0MachineRange, parseGuestLines, sysfsFeaturesToHex } from './console-parse.js';
import { qemuFeaturesToHex, qemuStatusToByte } from './qemu-features.js';
import { buildReport, type DeviceView, type RealReport } from './real-report.js';

const cfg = (id: string): RealConfig => {
  const c = realConfig(id);
  assert.ok(c && !('unsupported' in c), id);
  return c;
};

const device = (over: Partial<DeviceView> = {}): DeviceView => ({
  desc: null,
  avail: null,
  used: null,
  status: null,
  offered: null,
  negotiated: null,
  translated: null,
  faulted: null,
  availAtDevice: null,
  availAtDriver: null,
  ...over,
});

// Console of a real xen-pv-dom0-legacy run (Xen 4.17, Debian 6.1 PV dom0, QEMU 7.2 TCG).
const LEGACY_CONSOLE = [
  '(XEN)  Dom0 alloc.:   0000000070000000->0000000078000000 (229041 pages to be allocated)',
  'NESTLAB phase=init mode=module-pseudo kernel=6.1.0-56-amd64',
  'NESTLAB probe=0000:00:02.0 device=1af4:1001 mode=pseudo xen_pv=1',
  'NESTLAB ring.pseudo=0x6364000 ring.machine=0x76364000 ring.given=0x6364000 ring.bytes=10246 queue.size=256',
  'NESTLAB ring.given.owner=not-dom0 ring.given.owner_pfn=0xffffffffffffffff',
  'NESTLAB transport=legacy features.offered=0x71006ed4 features.negotiated=0x0 status=0x7',
  'NESTLAB io.timeout=0 type=out',
  'NESTLAB io=done submitted=4 completed=0 verified=0 corrupted=0 failed=4 last_status=255',
  'NESTLAB dmesg=[    9.311219] PCI-DMA: Using software bounce buffering for IO (SWIOTLB)',
  'NESTLAB phase=done',
];

// Console of a real xen-pv-dom0-half-fix run (same stack): the ring from the DMA API, buffers at virt_to_phys().
const HALF_FIX_CONSOLE = [
  '(XEN)  Dom0 alloc.:   0000000070000000->0000000078000000 (229041 pages to be allocated)',
  'NESTLAB phase=init mode=module-half-fix kernel=6.1.0-57-amd64',
  'NESTLAB probe=0000:00:02.0 device=1af4:1001 mode=half-fix xen_pv=1',
  'NESTLAB ring.pseudo=0x6360000 ring.machine=0x76360000 ring.given=0x76360000 ring.bytes=10246 queue.size=256',
  'NESTLAB ring.given.owner=dom0 ring.given.owner_pfn=0x6360',
  'NESTLAB transport=legacy features.offered=0x71006ed4 features.negotiated=0x0 status=0x7',
  'NESTLAB data.pseudo=0x65ea000 data.machine=0x765ea000 data.given=0x65ea000',
  'NESTLAB data.given.owner=not-dom0 status.given=0x656ea30 status.given.owner=not-dom0',
  'NESTLAB io=done submitted=4 completed=4 verified=0 corrupted=2 failed=0 last_status=255 status.unwritten=4',
  'NESTLAB phase=done',
];

const emulatedLegacy: EmulatedView = {
  scenario: 'xen-pv-dom0-legacy',
  outcome: 'misdirected-dma',
  ios: { submitted: 16, completed: 0 },
  features: { negotiated: '0x130000244' },
  driver: { ok: true },
  dma: { translated: 0, faulted: 0, misdirected: 1 },
  firstMisdirected: { owner: 'free' },
};

function real(id: string, lines: string[], dev: DeviceView = device()): RealReport {
  const c = cfg(id);
  const r = buildReport(c, parseGuestLines(lines), dev, dom0MachineRange(lines), []);
  return { ...r, bootMs: 1, elapsedMs: 2 };
}

describe('guest console parsing', () => {
  it('reads key=value facts, keeps dmesg text whole', () => {
    const f = parseGuestLines(['[   3.1] NESTLAB a=1 b.c=0x10', 'noise', 'NESTLAB dmesg=x y=z w']);
    assert.equal(f.get('a'), '1');
    assert.equal(f.get('b.c'), '0x10');
    assert.equal(f.get('dmesg'), 'x y=z w');
    assert.equal(f.has('y'), false);
  });

  it('decodes sysfs feature strings (bit 0 first) and QEMU feature names', () => {
    assert.equal(sysfsFeaturesToHex('0010000000000000000000000000000011'), '0x300000004');
    assert.equal(sysfsFeaturesToHex('01x'), null);
    assert.equal(
      qemuFeaturesToHex({
        transports: ['VIRTIO_F_VERSION_1: v1', 'VIRTIO_F_IOMMU_PLATFORM: iommu'],
        'dev-features': ['VIRTIO_BLK_F_SEG_MAX: seg'],
        'unknown-dev-features': 1,
      }),
      '0x300000005',
    );
    assert.equal(
      qemuStatusToByte({
        statuses: ['VIRTIO_CONFIG_S_ACKNOWLEDGE: a', 'VIRTIO_CONFIG_S_FAILED: f'],
      }),
      129,
    );
  });

  it("finds dom0's machine range in Xen's log", () => {
    assert.deepEqual(dom0MachineRange(LEGACY_CONSOLE), { start: '0x70000000', end: '0x78000000' });
  });
});

describe('real report', () => {
  it('classifies the legacy run as misdirected DMA and names the frames', () => {
    const r = real('xen-pv-dom0-legacy', LEGACY_CONSOLE, device({ desc: '0x6364000' }));
    assert.equal(r.outcome, 'misdirected-dma');
    assert.deepEqual(r.ios, { submitted: 4, completed: 0, verified: 0, corrupted: 0, failed: 4 });
    assert.equal(r.firstMisdirected?.machine, '0x6364000');
    assert.equal(r.firstMisdirected?.intendedMachine, '0x76364000');
    assert.match(r.firstMisdirected?.owner ?? '', /^not-dom0/);
  });

  it('the half fix: completions whose status never arrived are silent corruption, the buffer named', () => {
    const r = real('xen-pv-dom0-half-fix', HALF_FIX_CONSOLE, device({ desc: '0x76360000' }));
    assert.equal(r.outcome, 'silent-corruption');
    assert.deepEqual(r.ios, { submitted: 4, completed: 4, verified: 0, corrupted: 2, failed: 0 });
    assert.equal(r.data.statusUnwritten, 4);
    assert.equal(r.firstMisdirected?.what, 'buffer');
    assert.equal(r.firstMisdirected?.machine, '0x65ea000');
    assert.equal(r.firstMisdirected?.intendedMachine, '0x765ea000');
    assert.match(r.firstMisdirected?.owner ?? '', /^not-dom0/);
    assert.match(r.explanation, /4 status bytes never arrived, 2 reads came back wrong/);
  });

  it('a completion with its status written is not silent corruption', () => {
    const lines = HALF_FIX_CONSOLE.map((l) =>
      l.startsWith('NESTLAB io=done')
        ? 'NESTLAB io=done submitted=4 completed=4 verified=2 corrupted=0 failed=0 last_status=0 status.unwritten=0'
        : l.replace('data.given=0x65ea000', 'data.given=0x765ea000'),
    );
    const r = real('xen-pv-dom0-half-fix', lines);
    assert.equal(r.outcome, 'ok');
    assert.equal(r.firstMisdirected, null);
  });

  it('a refused FEATURES_OK is features-rejected with no I/O', () => {
    const r = real('old-driver-rejects-feature', [
      'NESTLAB transport=modern features.offered=0x330006e54 features.accepted=0x100000000 status=0x3',
      'NESTLAB driver=features-rejected features.negotiated=none status=0x83',
    ]);
    assert.equal(r.outcome, 'features-rejected');
    assert.equal(r.driver.ok, false);
    assert.equal(r.ios.submitted, 0);
  });

  it('a vIOMMU run that completes without a translation is an isolation bypass', () => {
    const lines = ['NESTLAB io=done submitted=32 written=16 read=16 verified=16 corrupted=0'];
    assert.equal(
      real('viommu-legacy-bypass', lines, device({ translated: 0, faulted: 0 })).outcome,
      'isolation-bypass',
    );
    assert.equal(
      real('viommu-access-platform', lines, device({ translated: 90, faulted: 0 })).outcome,
      'ok',
    );
  });

  it('faults with no completion are iommu-fault; a silent guest is no result', () => {
    const stuck = [
      'NESTLAB ring.pseudo=0x1000 ring.machine=0x1000 ring.given=0x1000',
      'NESTLAB io=done submitted=4 completed=0 verified=0 corrupted=0 failed=4',
    ];
    assert.equal(
      real('physical-virtio-card', stuck, device({ translated: 0, faulted: 3 })).outcome,
      'iommu-fault',
    );
    const silent = real('xen-pv-dom0-dma-api', ['NESTLAB phase=init']);
    assert.equal(silent.outcome, null);
    assert.ok(silent.errors.length > 0);
  });
});

describe('compare', () => {
  it('agrees field by field, skipping what the real stack differs in by design', () => {
    const c = compare(
      cfg('xen-pv-dom0-legacy'),
      real('xen-pv-dom0-legacy', LEGACY_CONSOLE),
      emulatedLegacy,
    );
    assert.equal(c.agree, true, JSON.stringify(c.differences));
    const v1 = c.rows.find((r) => r.field === 'features.version1');
    assert.match(v1?.verdict ?? '', /^not compared: /);
    assert.match(formatComparison(c), /misdirected-dma\s+misdirected-dma\s+ok/);
  });

  it('flags every disagreement', () => {
    const emu = {
      ...emulatedLegacy,
      outcome: 'ok',
      ios: { submitted: 16, completed: 16 },
      dma: { translated: 0, faulted: 0, misdirected: 0 },
      firstMisdirected: null,
    };
    const c = compare(cfg('xen-pv-dom0-legacy'), real('xen-pv-dom0-legacy', LEGACY_CONSOLE), emu);
    assert.equal(c.agree, false);
    assert.deepEqual(c.differences.map((d) => d.field).sort(), [
      'dma.misdirected',
      'ios',
      'misdirected.owner',
      'outcome',
    ]);
    assert.match(formatComparison(c), /4 difference\(s\)/);
  });

  it('compares whose frame was hit by class: dom0 or not', () => {
    const emu = { ...emulatedLegacy, firstMisdirected: { owner: 'dom0' } };
    const c = compare(cfg('xen-pv-dom0-legacy'), real('xen-pv-dom0-legacy', LEGACY_CONSOLE), emu);
    assert.deepEqual(c.differences, [
      { field: 'misdirected.owner', real: 'not dom0', emulated: 'dom0' },
    ]);
  });
});

describe('compare the half fix', () => {
  const emulatedHalfFix: EmulatedView = {
    scenario: 'xen-pv-dom0-half-fix',
    outcome: 'silent-corruption',
    ios: { submitted: 16, completed: 16 },
    features: { negotiated: '0x100000000' },
    driver: { ok: true },
    dma: { translated: 0, faulted: 0, misdirected: 16 },
    firstMisdirected: { owner: 'xen' },
  };
  const halfFix = () => real('xen-pv-dom0-half-fix', HALF_FIX_CONSOLE);

  it('agrees with an emulation that reports silent corruption into a frame dom0 does not own', () => {
    const c = compare(cfg('xen-pv-dom0-half-fix'), halfFix(), emulatedHalfFix);
    assert.equal(c.agree, true, JSON.stringify(c.differences));
    assert.match(formatComparison(c), /silent-corruption\s+silent-corruption\s+ok/);
    assert.match(formatComparison(c), /misdirected\.owner\s+not dom0\s+not dom0\s+ok/);
  });

  it('differs from an emulation that hangs or that lands the data in dom0', () => {
    const hung = compare(cfg('xen-pv-dom0-half-fix'), halfFix(), {
      ...emulatedHalfFix,
      outcome: 'timeout',
      ios: { submitted: 16, completed: 0 },
    });
    assert.deepEqual(hung.differences.map((d) => d.field).sort(), ['ios', 'outcome']);
    const inDom0 = compare(cfg('xen-pv-dom0-half-fix'), halfFix(), {
      ...emulatedHalfFix,
      firstMisdirected: { owner: 'dom0' },
    });
    assert.deepEqual(inDom0.differences, [
      { field: 'misdirected.owner', real: 'not dom0', emulated: 'dom0' },
    ]);
  });
});

describe('the bit-25 proposal under Xen', () => {
  // Console of a real bit25-qemu-device-under-xen run: QEMU's device offers no bit 25.
  const lines = [
    'NESTLAB probe=0000:00:02.0 device=1af4:1042 mode=proposal-2014 xen_pv=1',
    'NESTLAB features.bit25=0',
    'NESTLAB transport=modern features.offered=0x10130006e54 features.accepted=0x100000000 status=0xb',
    'NESTLAB features.negotiated=0x100000000',
    'NESTLAB ring.pseudo=0x6364000 ring.machine=0x76364000 ring.given=0x6364000 ring.bytes=10246 queue.size=256',
    'NESTLAB ring.given.owner=not-dom0 ring.given.owner_pfn=0xffffffffffffffff',
    'NESTLAB data.pseudo=0x65ef000 data.machine=0x765ef000 data.given=0x65ef000',
    'NESTLAB io.timeout=0 type=out',
    'NESTLAB io=done submitted=4 completed=0 verified=0 corrupted=0 failed=4 last_status=255 status.unwritten=0',
  ];
  const emulated: EmulatedView = {
    ...emulatedLegacy,
    scenario: 'bit25-qemu-device-under-xen',
    features: { negotiated: '0x100000000' },
  };

  it('falls back to physical addresses: the ring is misdirected, nothing completes', () => {
    const r = real('bit25-qemu-device-under-xen', lines, device({ desc: '0x6364000' }));
    assert.equal(r.outcome, 'misdirected-dma');
    assert.equal(r.firstMisdirected?.what, 'ring', 'the ring, not the buffer, is named first');
    const c = compare(cfg('bit25-qemu-device-under-xen'), r, emulated);
    assert.equal(c.agree, true, JSON.stringify(c.differences));
    assert.equal(c.rows.find((row) => row.field === 'features.version1')?.verdict, 'agree');
  });
});

describe('the misplaced per-bus exemption', () => {
  // Console of a real x86-virtio-exemption-misplaced run: q35's root bus bypasses
  // intel-iommu, the device sits behind a pxb-pcie host bridge that does not.
  const lines = [
    'NESTLAB probe=0000:21:00.0 device=1af4:1042 mode=v1-phys xen_pv=0',
    'NESTLAB transport=modern features.offered=0x10330006e54 features.accepted=0x300000000 status=0xb',
    'NESTLAB features.negotiated=0x300000000',
    'NESTLAB ring.pseudo=0x1054000 ring.machine=0x1054000 ring.given=0x1054000 ring.bytes=10246 queue.size=256',
    'NESTLAB data.pseudo=0x3ffc7000 data.machine=0x3ffc7000 data.given=0x3ffc7000',
    'NESTLAB io.timeout=0 type=out',
    'NESTLAB io=done submitted=4 completed=0 verified=0 corrupted=0 failed=4 last_status=255 status.unwritten=0',
  ];

  it('faults on the translated bus and names it; agrees with the emulation', () => {
    const r = real('x86-virtio-exemption-misplaced', lines, device({ translated: 0, faulted: 12 }));
    assert.equal(r.outcome, 'iommu-fault');
    assert.deepEqual(r.pci, { bdf: '0000:21:00.0', bus: '0000:21' });
    assert.match(r.explanation, /bus 0000:21/);
    assert.equal(r.firstMisdirected, null, 'no address translation of our own went wrong');
    const c = compare(cfg('x86-virtio-exemption-misplaced'), r, {
      ...emulatedLegacy,
      scenario: 'x86-virtio-exemption-misplaced',
      outcome: 'iommu-fault',
      features: { negotiated: '0x100000000' },
      dma: { translated: 0, faulted: 16, misdirected: 0 },
      firstMisdirected: null,
    });
    assert.equal(c.agree, true, JSON.stringify(c.differences));
  });
});

describe('configs', () => {
  it("runs or refuses, in one line, every one of issue 16's rows", () => {
    const rows = [
      'xen-pv-dom0-mmio-legacy',
      'xen-pv-dom0-mmio-dma-api',
      'bit25-qemu-device-under-xen',
      'bit25-physical-card',
      'bit25-card-old-driver',
      'x86-virtio-exemption-misplaced',
      'physical-card-rings-in-bar',
      'physical-card-rings-in-bar-access-platform',
      'xen-pv-dom0-half-fix',
    ];
    for (const id of rows) {
      const c = realConfig(id);
      assert.ok(c, id);
      if (isUnsupported(c)) assert.match(c.unsupported, /^[^\n]{40,400}$/, id);
      else assert.ok(SUPPORTED_IDS.includes(id) && !UNSUPPORTED_IDS.includes(id), id);
    }
    assert.deepEqual(
      rows.filter((id) => SUPPORTED_IDS.includes(id)),
      ['bit25-qemu-device-under-xen', 'x86-virtio-exemption-misplaced', 'xen-pv-dom0-half-fix'],
    );
    const mmio = realConfig('xen-pv-dom0-mmio-legacy');
    assert.ok(mmio && isUnsupported(mmio));
    assert.match(mmio.unsupported, /microvm.*Unable to find usable platform timer/);
  });

  it('says clearly what cannot run here', () => {
    const ppc = realConfig('ppc64-virtio-bypass');
    assert.ok(ppc && 'unsupported' in ppc);
    assert.match(ppc.unsupported, /ppc64/);
    assert.equal(realConfig('no-such-scenario'), null);
  });
});
