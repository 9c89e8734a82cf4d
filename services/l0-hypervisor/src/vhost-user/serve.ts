// Listens on a unix socket for one vhost-user front-end (QEMU connects as the
// client) and runs its messages through the back-end one at a time, in order.
import { rmSync } from 'node:fs';
import { Connection } from './connection.js';
import { VhostUserError } from './errors.js';
import type { VhostUserBlkBackend } from './backend.js';
import { FLAG, u64Payload } from './protocol.js';
import { loadUsocket } from './usocket.js';

export interface Served {
  /** Settles when the front-end has gone (or a bad message closed the connection). */
  readonly done: Promise<VhostUserError | null>;
  /** Stops listening and drops the connection. */
  close(): void;
}

/** Resolves once listening; the back-end serves the first front-end that connects. */
export async function serveOnce(path: string, backend: VhostUserBlkBackend): Promise<Served> {
  const { UServer } = loadUsocket();
  rmSync(path, { force: true });
  const server = new UServer();
  let conn: Connection | null = null;
  let finish: (e: VhostUserError | null) => void = () => undefined;
  const done = new Promise<VhostUserError | null>((resolve) => (finish = resolve));
  await new Promise<void>((resolve, reject) => {
    server.on('error', (e) =>
      reject(new VhostUserError('INTERNAL', `listen ${path}: ${String(e)}`)),
    );
    server.listen(path, () => resolve());
  });
  server.on('connection', (sock) => {
    if (conn) return void sock.destroy(); // one front-end at a time
    let chain: Promise<unknown> = Promise.resolve();
    conn = new Connection(
      sock,
      (m) => {
        chain = chain.then(async () => {
          try {
            const reply = await backend.handle(m);
            if (reply) conn?.reply(reply.request, reply.payload);
            else if (m.header.flags & FLAG.NEED_REPLY && backend.replyAck)
              conn?.reply(m.header.request, u64Payload(0n)); // REPLY_ACK: 0 is success
          } catch (err) {
            conn?.close(
              VhostUserError.is(err)
                ? err
                : new VhostUserError('INTERNAL', String(err), { cause: err }),
            );
          }
        });
      },
      (error) => {
        server.close();
        void chain.then(() => finish(error));
      },
    );
  });
  return {
    done,
    close: () => {
      server.close();
      if (conn) conn.close(null);
      else finish(null);
    },
  };
}
