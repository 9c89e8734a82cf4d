// An append-only JSON-lines journal in the data dir: what lets the service
// come back after a SIGKILL with the state its real counterpart keeps in RAM.
// Appends are synchronous writes (the page cache outlives a killed process,
// so no fsync), one per turn of the event loop rather than one per record:
// the records of a turn are written together before any message leaves the
// service (StateJournal flushes from its bus's beforeSend) or at the
// turn's end, whichever comes first, so a reply never reports a change the
// journal lacks. A torn or unreadable tail is ignored with a warning and cut
// off, never a crash. Compaction rewrites the file as one snapshot record,
// atomically and durably (state-file.ts).
import { closeSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { writeFileAtomicSync } from './state-file.js';

export interface JournalLog {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Checks one parsed line; returns the record or undefined when it is not one. */
export type RecordGuard<R> = (value: unknown) => R | undefined;

export interface OpenedJournal<R> {
  readonly journal: Journal<R>;
  /** The valid records, oldest first (up to the first bad line). */
  readonly records: R[];
}

export class Journal<R> {
  private fd: number | undefined;
  private failed = false;
  /** Records of this turn not yet written (flush()). */
  private pending = '';
  /** Records appended since the file was last rewritten. */
  appended = 0;

  private constructor(
    readonly path: string,
    private readonly log: JournalLog,
  ) {}

  /** Reads what survives of `path` and opens it for appending. */
  static open<R>(path: string, guard: RecordGuard<R>, log: JournalLog): OpenedJournal<R> {
    const journal = new Journal<R>(path, log);
    const records: R[] = [];
    let text = '';
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        log.warn({ path, err: (err as Error).message }, 'journal unreadable; starting empty');
    }
    const lines = text.split('\n');
    // Everything after the last newline is a write the kill cut short.
    const tail = lines.pop() ?? '';
    let bad = tail === '' ? 0 : 1;
    for (const [i, line] of lines.entries()) {
      const rec = parseLine(line, guard);
      if (rec === undefined) {
        bad += lines.length - i;
        break;
      }
      records.push(rec);
    }
    if (bad > 0) {
      log.warn(
        { path, ignored: bad, kept: records.length },
        'journal tail torn or invalid; ignored',
      );
      // Cut it off, or the next append would glue onto the torn line.
      journal.rewrite(records);
    } else {
      journal.reopen();
      journal.appended = records.length;
    }
    return { journal, records };
  }

  append(rec: R): void {
    if (this.pending === '') setImmediate(() => this.flush());
    this.pending += `${JSON.stringify(rec)}\n`;
    this.appended++;
  }

  /** Writes the records appended since the last flush, in one write. */
  flush(): void {
    if (this.pending === '') return;
    const text = this.pending;
    this.pending = '';
    this.write(text);
  }

  /** Replaces the whole file with `records`, durably (state-file.ts: a kill leaves old or new). */
  rewrite(records: readonly R[]): void {
    // What was pending is in `records` (a snapshot of the state), or was cut off with the tail.
    this.pending = '';
    try {
      writeFileAtomicSync(this.path, records.map((r) => `${JSON.stringify(r)}\n`).join(''));
      this.appended = records.length;
    } catch (err) {
      this.fail(err);
    }
    this.reopen();
  }

  close(): void {
    this.flush();
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private reopen(): void {
    this.close();
    try {
      mkdirSync(dirname(this.path), { recursive: true });
      this.fd = openSync(this.path, 'a');
    } catch (err) {
      this.fail(err);
    }
  }

  private write(text: string): void {
    if (this.fd === undefined) return;
    try {
      writeSync(this.fd, text);
    } catch (err) {
      this.fail(err);
    }
  }

  /** Persistence is best effort: the service keeps serving from memory. */
  private fail(err: unknown): void {
    if (!this.failed)
      this.log.error(
        { path: this.path, err: (err as Error).message },
        'journal write failed; state will not survive a restart',
      );
    this.failed = true;
  }
}

function parseLine<R>(line: string, guard: RecordGuard<R>): R | undefined {
  try {
    return guard(JSON.parse(line));
  } catch {
    return undefined;
  }
}

/** What a journal flushes before: the service's bus (Bus.beforeSend). */
export interface Outbound {
  beforeSend(fn: () => void): void;
}

/** How a service's state is journaled: which lines are records, how one applies, a snapshot. */
export interface StateCodec<R, M> {
  readonly guard: RecordGuard<R>;
  /** Applies one record to the state; throws when the record cannot apply. */
  apply(mem: M, r: R): void;
  /** The whole state as one record (undefined: nothing worth keeping yet). */
  snapshot(mem: M): R | undefined;
}

/**
 * A service's state kept across SIGKILL: replayed into `mem` on open, each
 * mutation appended, compacted into one snapshot every `compactEvery` records.
 */
export class StateJournal<R, M> {
  private constructor(
    private readonly journal: Journal<R>,
    private readonly codec: StateCodec<R, M>,
    private readonly mem: M,
    private readonly compactEvery: number,
  ) {}

  /**
   * Opens the journal and replays it into `mem`; returns how many records were
   * applied. A turn's records are written before any message leaves through
   * `outbound`, so a reply never reports a change the journal lacks.
   */
  static open<R, M>(
    path: string,
    codec: StateCodec<R, M>,
    mem: M,
    log: JournalLog,
    outbound: Outbound,
    compactEvery = 20_000,
  ): { journal: StateJournal<R, M>; replayed: number } {
    const { journal, records } = Journal.open(path, codec.guard, log);
    let replayed = 0;
    for (const r of records) {
      try {
        codec.apply(mem, r);
        replayed++;
      } catch (err) {
        // Only a hand-edited journal gets here: keep what applied, drop the rest.
        log.warn({ path, at: replayed, err: (err as Error).message }, 'journal record refused');
        break;
      }
    }
    // Start the new run from one snapshot: small file, and any bad tail is gone.
    if (records.length > 0) {
      const snap = codec.snapshot(mem);
      journal.rewrite(snap ? [snap] : []);
    }
    outbound.beforeSend(() => journal.flush());
    return { journal: new StateJournal(journal, codec, mem, compactEvery), replayed };
  }

  write(rec: R): void {
    this.journal.append(rec);
    if (this.journal.appended < this.compactEvery) return;
    const snap = this.codec.snapshot(this.mem);
    if (snap) this.journal.rewrite([snap]);
  }

  close(): void {
    this.journal.close();
  }
}
