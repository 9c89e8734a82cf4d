import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EXEMPTION_CONTROL, PLAIN_MMIO, realConfig, type RealConfig } from './configs.js';
import { MICROVM_BIOS, qemuArgs } from './run-real.js';
import type { SetupState } from './setup-state.js';

const setup = {
  vmlinuz: '/boot/vmlinuz',
  xen: '/cache/xen.elf',
  qemu: 'qemu-system-x86_64',
} as SetupState;
const files = { initrd: '/w/i.gz', disk: '/w/d.img', qmp: '/w/q.sock', trace: '/w/t.log' };
const after = (args: string[], flag: string): string[] =>
  args.flatMap((a, i) => (a === flag ? [args[i + 1] ?? ''] : []));

describe('QEMU command lines of the new rows', () => {
  it('virtio-mmio: microvm with SeaBIOS, a virtio-blk-device, the TSC rate on the kernel line', () => {
    const args = qemuArgs(PLAIN_MMIO, setup, files);
    assert.deepEqual(after(args, '-machine'), ['microvm']);
    assert.deepEqual(after(args, '-bios'), [MICROVM_BIOS]);
    assert.deepEqual(after(args, '-device'), ['virtio-blk-device,drive=d0,id=vblk']);
    assert.match(after(args, '-append')[0] ?? '', /nestlab\.mode=stock .*tsc_early_khz=2000000/);
  });

  it('the half fix and bit 25 boot Xen on pc with the module mode their rows need', () => {
    const half = realConfig('xen-pv-dom0-half-fix') as RealConfig;
    const args = qemuArgs(half, setup, files);
    assert.deepEqual(after(args, '-bios'), []);
    assert.deepEqual(after(args, '-device'), ['virtio-blk-pci,drive=d0,id=vblk,disable-modern=on']);
    assert.match(after(args, '-initrd')[0] ?? '', /nestlab\.mode=module-half-fix/);
    const bit25 = qemuArgs(realConfig('bit25-qemu-device-under-xen') as RealConfig, setup, files);
    assert.deepEqual(after(bit25, '-device'), [
      'virtio-blk-pci,drive=d0,id=vblk,disable-legacy=on',
    ]);
    assert.match(after(bit25, '-initrd')[0] ?? '', /nestlab\.mode=module-proposal-2014/);
  });

  it('the misplaced exemption: root bus exempt, the device behind a translated pxb-pcie bus', () => {
    const ex = realConfig('x86-virtio-exemption-misplaced') as RealConfig;
    const args = qemuArgs(ex, setup, files);
    assert.deepEqual(after(args, '-machine'), ['q35,default-bus-bypass-iommu=on']);
    assert.deepEqual(after(args, '-device'), [
      'intel-iommu',
      'pxb-pcie,id=pxb1,bus_nr=32,bypass_iommu=off',
      'pcie-root-port,id=rp1,bus=pxb1,chassis=1',
      'virtio-blk-pci,drive=d0,id=vblk,bus=rp1,disable-legacy=on,iommu_platform=on',
    ]);
  });

  it("the exemption's control: only the device's bus differs, the exempt root bus named", () => {
    const ex = qemuArgs(realConfig('x86-virtio-exemption-misplaced') as RealConfig, setup, files);
    const ctl = qemuArgs(EXEMPTION_CONTROL, setup, files);
    const differ = ctl.flatMap((a, i) => (a === ex[i] ? [] : [a]));
    assert.equal(ctl.length, ex.length);
    assert.deepEqual(differ, [
      'virtio-blk-pci,drive=d0,id=vblk,bus=pcie.0,disable-legacy=on,iommu_platform=on',
    ]);
  });
});
