// `node dist/vhost-user/main.js --socket PATH --disk PATH [--disk-bytes N]
// [--queue-size N] [--dma-log PATH] [--metrics PATH] [--iommu none|virtio]`: serves nestlab's
// virtio-blk device to one vhost-user front-end (QEMU's vhost-user-blk-pci),
// then exits when it disconnects. The DMA log goes to --dma-log as JSON lines,
// as it grows; the L0 metrics to --metrics in Prometheus' text format (each
// second and at exit: the back-end has no bus or admin port to scrape).
import { appendFileSync, renameSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { MetricsRegistry } from '@nestlab/service-kit';
import { startTelemetry } from '@nestlab/telemetry';
import { DmaLog } from '../dma/dma-log.js';
import { createL0Metrics } from '../metrics.js';
import { VhostUserBlkBackend } from './backend.js';
import { serveOnce } from './serve.js';

const DMA_LOG_FLUSH_MS = 200;
const METRICS_WRITE_MS = 1000;

function positive(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer`);
  return n;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      socket: { type: 'string' },
      disk: { type: 'string' },
      'disk-bytes': { type: 'string' },
      'queue-size': { type: 'string' },
      'dma-log': { type: 'string' },
      metrics: { type: 'string' },
      iommu: { type: 'string' },
    },
  });
  if (!values.socket || !values.disk) throw new Error('--socket and --disk are required');
  const diskBytes = positive('disk-bytes', values['disk-bytes'], 64 << 20);
  if (diskBytes % 512 !== 0) throw new Error('--disk-bytes must be a multiple of 512');
  const iommu = values.iommu ?? 'none';
  if (iommu !== 'none' && iommu !== 'virtio') throw new Error('--iommu must be none or virtio');
  const telemetry = startTelemetry({ serviceName: 'l0-vhost-user', stack: 'reference' });
  const registry = new MetricsRegistry({ stack: 'reference' });
  const dmaLog = new DmaLog();
  const say = (line: string) => process.stdout.write(`vhost-user: ${line}\n`);
  const backend = await VhostUserBlkBackend.create({
    diskPath: values.disk,
    diskBytes,
    queueSizeMax: positive('queue-size', values['queue-size'], 128),
    iommu,
    tracer: telemetry.tracer,
    metrics: createL0Metrics(registry),
    dmaLog,
    log: say,
  });
  const logPath = values['dma-log'];
  let since = 0;
  const flush = () => {
    if (!logPath) return;
    for (;;) {
      const page = dmaLog.page(since, 10_000);
      if (page.records.length === 0) return;
      appendFileSync(logPath, page.records.map((r) => JSON.stringify(r)).join('\n') + '\n');
      since = page.next;
    }
  };
  if (logPath) writeFileSync(logPath, '');
  const timer = setInterval(flush, DMA_LOG_FLUSH_MS);
  const metricsPath = values.metrics;
  // Whole files only (write, then rename): a reader never sees half of one.
  const writeMetrics = async () => {
    if (!metricsPath) return;
    writeFileSync(`${metricsPath}.tmp`, await registry.render());
    renameSync(`${metricsPath}.tmp`, metricsPath);
  };
  const metricsTimer = setInterval(
    () => void writeMetrics().catch((e: unknown) => say(`metrics: ${String(e)}`)),
    METRICS_WRITE_MS,
  );
  const served = await serveOnce(values.socket, backend);
  for (const s of ['SIGTERM', 'SIGINT'] as const) process.once(s, () => served.close());
  say(`listening on ${values.socket}`);
  const error = await served.done;
  clearInterval(timer);
  clearInterval(metricsTimer);
  await backend.close();
  flush();
  await writeMetrics();
  say(
    `front-end gone after ${backend.messages} messages; requests ${JSON.stringify(backend.model.requests)}; iotlb ${JSON.stringify(backend.deviceIotlb.counts)}` +
      (error ? `; closed on ${error.code}: ${error.message}` : ''),
  );
  await telemetry.shutdown();
  return error ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`vhost-user: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  },
);
