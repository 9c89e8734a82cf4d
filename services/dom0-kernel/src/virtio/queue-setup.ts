// The end of vp_setup_vq for queue 0, once it is selected and its size
// written: the zeroed ring, its three addresses, the MSI-X vector, enable.
// Probe and every device reset (recovery.ts) use it.
import { Dom0Error } from '../errors.js';
import type { CpuMemory } from '../mm/cpu-memory.js';
import { QUEUE_VECTOR } from './interrupts.js';
import type { ModernRegs } from './pci-modern.js';
import { SplitRingDriver, type RingOptions } from './split-ring-driver.js';

export async function setupQueue(
  cpu: CpuMemory,
  regs: ModernRegs,
  opts: RingOptions,
): Promise<SplitRingDriver> {
  const ring = new SplitRingDriver(cpu, opts);
  const zero = cpu.batch();
  ring.zeroStores(zero);
  await zero.commit();
  const addrs = ring.busAddrs;
  await regs.write('queue_desc', addrs.desc);
  await regs.write('queue_driver', addrs.driver);
  await regs.write('queue_device', addrs.device);
  await regs.write('queue_msix_vector', QUEUE_VECTOR);
  if ((await regs.read('queue_msix_vector')) !== QUEUE_VECTOR) {
    throw new Dom0Error('QUEUE_UNAVAILABLE', 'device did not take queue_msix_vector 1');
  }
  await regs.write('queue_enable', 1);
  return ring;
}
