import {
  DmaLedger,
  Dom0Configure,
  DriverProbe,
  EventChannel,
  JobCancel,
  JobRun,
} from '@nestlab/protocol';
import type { ServiceModule } from '@nestlab/service-kit';
import { FeatureSet, VIRTIO_BLK_F } from '@nestlab/virtio';
import { resolve } from 'node:path';
import { dom0SettingsFromEnv } from './config.js';
import { BlkDriver } from './driver.js';
import { Dom0Error, errorInfo } from './errors.js';
import { dom0Metrics } from './metrics.js';
import { StateFile, type ConfigureRequest } from './persist.js';
import { BlockModel, historyLength, MAX_HISTORY, runJob } from './workload/engine.js';

export interface Dom0Options {
  /** Where the last configuration is kept across a restart; default NESTLAB_DATA_DIR (none: not kept). */
  dataDir?: string;
  /**
   * Hung-queue timeout, ms; default NESTLAB_DOM0_HANG_MS, else min(1000, the
   * shortest in-flight deadline / 4). Infinity (env `off`) turns recovery by
   * hang detection off: a lost interrupt then shows as a TIMEOUT.
   */
  hangMs?: number;
  /** IOMMU unmaps sent before the I/O completes; default NESTLAB_IOMMU_STRICT=1. */
  iommuStrict?: boolean;
}

/** Re-probe attempts after a restart: the other services may be coming back too. */
const RESTORE_ATTEMPTS = 20;
const RESTORE_FIRST_WAIT_MS = 100;
const RESTORE_MAX_WAIT_MS = 2000;

/**
 * The dom0 kernel: PCI enumeration, the virtio driver, DMA API policies, the
 * block layer and workloads. Throws ConfigError for a bad environment value.
 */
export function createDom0Kernel(options: Dom0Options = {}): ServiceModule {
  const env = dom0SettingsFromEnv();
  const hangMs = options.hangMs ?? env.hangMs;
  const iommuStrict = options.iommuStrict ?? env.iommuStrict;
  const dir =
    options.dataDir === undefined
      ? env.dataDir
      : options.dataDir === ''
        ? null
        : resolve(options.dataDir);
  let driver: BlkDriver | null = null;
  let model: BlockModel | null = null;
  let jobRunning = false;
  /** Set by JobCancel while a job runs: it submits no more I/Os. */
  let cancelled = false;
  let jobs = 0;
  /** Completed writes written again after a device reset (their cache may have been lost). */
  let rewritesAfterReset = 0;
  /** The re-probe after a restart, while it runs: a JobRun waits for it. */
  let restoring: Promise<void> | null = null;
  let restored: { from: string; probe: string } | null = null;
  /** Bumped by every Dom0Configure / DriverProbe: a restore stops once one arrived. */
  let epoch = 0;

  return {
    name: 'dom0-kernel',
    token: 'dom0',
    defaultAdminPort: 7703,
    start(ctx) {
      const metrics = dom0Metrics(ctx.metrics, () => d.tracker.inFlight);
      const d = new BlkDriver({
        bus: ctx.bus,
        tracer: ctx.tracer,
        log: ctx.log,
        metrics,
        iommuStrict,
        ...(hangMs !== undefined ? { hangMs } : {}),
      });
      driver = d;
      const file = dir === null ? null : new StateFile(dir, ctx.config.stack);
      let lastConfigure: ConfigureRequest | null = null;
      const persist = (probed: boolean) => {
        if (file === null || lastConfigure === null) return;
        file
          .save({ configure: lastConfigure, probed })
          .catch((err: unknown) =>
            ctx.log.warn({ err: errorInfo(err), path: file.path }, 'could not persist state'),
          );
      };
      const configure = (head: ConfigureRequest) => {
        d.configure({
          generation: head.generation,
          policy: head.policy,
          wanted: FeatureSet.parseHex(head.wanted),
          queueSize: head.queueSize,
          mmioDevices: head.mmioDevices ?? [],
          rings: head.rings ?? 'ram',
        });
        lastConfigure = head;
        model = null;
      };

      ctx.bus.handle(Dom0Configure, ({ head }) => {
        epoch++;
        configure(head);
        persist(false);
        return { body: {} };
      });

      ctx.bus.handle(DriverProbe, async () => {
        epoch++;
        model = null;
        const body = await d.probe();
        ctx.log.info(
          { ok: body.ok, bdf: body.bdf, negotiated: body.negotiated, error: body.error },
          'probe',
        );
        persist(body.ok);
        return { body };
      });

      ctx.bus.handle(JobRun, async ({ head: w }) => {
        if (restoring !== null) await restoring;
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
        if (w.history === true && historyLength(w) > MAX_HISTORY) {
          throw new Dom0Error(
            'HISTORY_TOO_LONG',
            `a history of ${historyLength(w)} records exceeds ${MAX_HISTORY}: run fewer I/Os or no history`,
          );
        }
        // The model of what the disk holds lives across jobs of one block size.
        if (model === null || model.bs !== w.bs) model = new BlockModel(w.bs);
        jobRunning = true;
        cancelled = false;
        try {
          // A device found reset (L0 restarted) is set up again before the job, not after a hang.
          await d.ensureLive();
          const target = {
            submit: block.submit.bind(block),
            canFlush: d.negotiated?.has(VIRTIO_BLK_F.FLUSH) === true,
            epoch: () => block.epoch,
          };
          const report = await runJob(w, target, model, `j${++jobs}`, {
            rewrite: () => {
              rewritesAfterReset++;
              metrics.rewritesAfterReset.inc();
            },
            cancelled: () => cancelled,
          });
          ctx.log.info(
            {
              job: jobs,
              ...report,
              traceIds: report.traceIds.length,
              history: report.history?.length,
            },
            'job done',
          );
          return { body: report };
        } finally {
          jobRunning = false;
        }
      });

      ctx.bus.handle(JobCancel, () => {
        cancelled = jobRunning;
        return { body: { running: jobRunning } };
      });

      ctx.bus.handle(DmaLedger, ({ head }) => ({ body: d.ledger.page(head.since, head.limit) }));

      ctx.bus.handle(EventChannel, async ({ head }) => {
        await d.onEvent(head.port);
      });
      ctx.log.debug('handlers registered');

      if (file !== null) {
        restoring = restore(file).finally(() => (restoring = null));
      }

      /** After a restart: the last configuration again, and the device probed again (reset + init). */
      async function restore(f: StateFile): Promise<void> {
        const state = await f.load().catch((err: unknown) => {
          ctx.log.warn({ problem: errorInfo(err).message }, 'persisted state ignored');
          return null;
        });
        if (state === null) return;
        const mine = epoch;
        configure(state.configure);
        restored = { from: f.path, probe: 'not needed' };
        if (!state.probed) return;
        for (let i = 0, wait = RESTORE_FIRST_WAIT_MS; i < RESTORE_ATTEMPTS; i++) {
          if (epoch !== mine) return; // the lab configured or probed itself meanwhile
          const p = await d.probe();
          if (epoch !== mine) return;
          if (p.ok) {
            restored.probe = 'ok';
            ctx.log.info(
              { bdf: p.bdf, attempts: i + 1 },
              'restarted: configuration restored, device probed',
            );
            return;
          }
          restored.probe = `${p.error?.code ?? 'failed'}: ${p.error?.message ?? ''}`;
          await new Promise((r) => setTimeout(r, wait));
          wait = Math.min(RESTORE_MAX_WAIT_MS, wait * 2);
        }
        ctx.log.warn({ probe: restored.probe }, 'restarted: the device could not be probed again');
      }
    },
    state: () => ({
      driver: driver?.state() ?? null,
      jobRunning,
      jobs,
      rewritesAfterReset,
      restored,
    }),
    stop() {
      // A running job submits no more I/Os; the reset fails those in flight, so it ends now.
      cancelled = jobRunning;
      driver?.reset('service stopping');
    },
  };
}
