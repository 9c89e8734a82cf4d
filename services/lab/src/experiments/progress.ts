// The logical clock of an experiment: how many I/Os of the running job dom0
// has completed, read from its admin /metrics (nestlab_dom0_ios_total with
// result="ok", reads and writes; FLUSHes are not planned I/Os). HTTP, not
// NATS, so it still answers while transport faults or a NATS restart are on.

const LINE = /^nestlab_dom0_ios_total\{([^}]*)\} (\d+)$/gm;

/** Completed reads and writes in a Prometheus text exposition. */
export function completedIn(metrics: string): number {
  let n = 0;
  for (const m of metrics.matchAll(LINE)) {
    const labels = m[1] ?? '';
    if (/result="ok"/.test(labels) && /op="(read|write)"/.test(labels)) n += Number(m[2]);
  }
  return n;
}

export async function completedNow(adminUrl: string): Promise<number | null> {
  try {
    const res = await fetch(`${adminUrl}/metrics`, { signal: AbortSignal.timeout(2000) });
    return res.ok ? completedIn(await res.text()) : null;
  } catch {
    return null; // dom0 is down (crashed) or busy: no reading this time
  }
}

/** dom0's job counters from its admin /state (`jobs` ended or running, `jobRunning`), or null. */
export async function dom0Jobs(
  adminUrl: string,
): Promise<{ jobs: number; running: boolean } | null> {
  try {
    const res = await fetch(`${adminUrl}/state`, { signal: AbortSignal.timeout(2000) });
    if (!res.ok) return null;
    const s = (await res.json()) as { jobs?: unknown; jobRunning?: unknown };
    return typeof s.jobs === 'number' ? { jobs: s.jobs, running: s.jobRunning === true } : null;
  } catch {
    return null;
  }
}

/**
 * Resolves once dom0 says the job it started after `jobsBefore` has ended
 * and its report still has not arrived `graceMs` later: the reply was lost
 * on the way (a NATS restart), not the job. Never resolves while it runs.
 */
export async function reportLost(
  adminUrl: string,
  jobsBefore: number,
  graceMs: number,
  cancelled: () => boolean,
): Promise<'lost' | 'cancelled'> {
  let endedAt: number | null = null;
  while (!cancelled()) {
    const s = await dom0Jobs(adminUrl);
    if (s && s.jobs > jobsBefore && !s.running) endedAt ??= Date.now();
    else endedAt = null;
    if (endedAt !== null && Date.now() - endedAt >= graceMs) return 'lost';
    await new Promise((r) => setTimeout(r, 250));
  }
  return 'cancelled';
}
