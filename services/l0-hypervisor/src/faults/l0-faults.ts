// The domain faults L0 owns (DOMAIN_FAULT_KINDS): what a flaky or reset
// PCI function does to a driver, injected on request.
import { DomainFaultError, type DomainFaults } from '@nestlab/service-kit';
import type { L0Service } from '../l0-service.js';

export function registerL0Faults(faults: DomainFaults, m: L0Service): void {
  // A function-level reset now, mid-queue: in-flight chains are abandoned
  // (the epoch bump stops their write-back), the write cache is the
  // backend's and stays.
  faults.on('device-reset', () => {
    const fns = m.pci.all();
    if (fns.length === 0) {
      throw new DomainFaultError('FAULT_NOT_APPLICABLE', 'l0 has no device to reset');
    }
    for (const { dev, transport } of fns) {
      const inFlight = dev.queues.map((q) => `q${q.index} avail ${q.nextAvail} used ${q.nextUsed}`);
      transport.reset();
      m.faultFired('device-reset', `${dev.bdf} reset mid-queue (${inFlight.join(', ')})`);
    }
    return 0;
  });
  faults.on('lose-msi', (req) => m.lostMsi.arm(req.after ?? 0, req.count ?? 1));
  faults.on('lose-doorbell', (req) => m.lostDoorbell.arm(req.after ?? 0, req.count ?? 1));
}
