import { DmaLedger, Dom0Configure, DriverProbe, EventChannel, JobRun } from '@nestlab/protocol';
import type { ServiceModule } from '@nestlab/service-kit';
import { FeatureSet } from '@nestlab/virtio';
import { BlkDriver } from './driver.js';
import { Dom0Error } from './errors.js';
import { dom0Metrics } from './metrics.js';
import { runJob } from './workload/engine.js';
import { BlockModel } from './workload/verify.js';

/** The dom0 kernel: PCI enumeration, the virtio driver, DMA API policies, the block layer and workloads. */
export function createDom0Kernel(): ServiceModule {
  let driver: BlkDriver | null = null;
  let model: BlockModel | null = null;
  let jobRunning = false;
  let jobs = 0;

  return {
    name: 'dom0-kernel',
    token: 'dom0',
    defaultAdminPort: 7703,
    start(ctx) {
      const metrics = dom0Metrics(ctx.metrics, () => d.tracker.inFlight);
      const d = new BlkDriver({ bus: ctx.bus, tracer: ctx.tracer, log: ctx.log, metrics });
      driver = d;

      ctx.bus.handle(Dom0Configure, ({ head }) => {
        d.configure({
          generation: head.generation,
          policy: head.policy,
          wanted: FeatureSet.parseHex(head.wanted),
          queueSize: head.queueSize,
        });
        model = null;
        return { body: {} };
      });

      ctx.bus.handle(DriverProbe, async () => {
        model = null;
        const body = await d.probe();
        ctx.log.info(
          { ok: body.ok, bdf: body.bdf, negotiated: body.negotiated, error: body.error },
          'probe',
        );
        return { body };
      });

      ctx.bus.handle(JobRun, async ({ head: w }) => {
        const block = d.block;
        if (block === null)
          throw new Dom0Error(
            'NOT_READY',
            'no probed device: send DriverProbe first (and check it returned ok)',
          );
        if (jobRunning) throw new Dom0Error('NOT_READY', 'a job is already running');
        if (w.spanBytes < w.bs)
          throw new Dom0Error(
            'BAD_WORKLOAD',
            `spanBytes ${w.spanBytes} holds no block of ${w.bs} bytes`,
          );
        const cap = d.capacityBytes;
        if (cap !== null && BigInt(w.spanBytes) > cap) {
          throw new Dom0Error(
            'BAD_WORKLOAD',
            `spanBytes ${w.spanBytes} exceeds the disk's ${cap} bytes`,
          );
        }
        // The model of what the disk holds lives across jobs of one block size.
        if (model === null || model.bs !== w.bs) model = new BlockModel(w.bs);
        jobRunning = true;
        try {
          const report = await runJob(w, block, model, `j${++jobs}`);
          ctx.log.info({ job: jobs, ...report, traceIds: report.traceIds.length }, 'job done');
          return { body: report };
        } finally {
          jobRunning = false;
        }
      });

      ctx.bus.handle(DmaLedger, ({ head }) => ({ body: d.ledger.page(head.since, head.limit) }));

      ctx.bus.handle(EventChannel, async ({ head }) => {
        await d.onEvent(head.port);
      });
      ctx.log.debug('handlers registered');
    },
    state: () => ({ driver: driver?.state() ?? null, jobRunning, jobs }),
    stop() {
      driver?.reset('service stopping');
    },
  };
}
