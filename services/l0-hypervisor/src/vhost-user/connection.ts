// One front-end connection: frames the byte stream into messages (header,
// payload, the fds that came with it) and sends replies. usocket is the
// native addon that receives SCM_RIGHTS descriptors, which Node's net cannot.
import { closeSync } from 'node:fs';
import { VhostUserError } from './errors.js';
import {
  HEADER_BYTES,
  Payload,
  decodeHeader,
  fdsNeeded,
  encodeReply,
  type Header,
} from './protocol.js';
import type { USocket } from './usocket.js';

export interface Message {
  readonly header: Header;
  readonly payload: Payload;
  readonly fds: number[];
}

export class Connection {
  private header: Header | null = null;
  private closed = false;

  constructor(
    private readonly sock: USocket,
    /** Called once per message, in order; a throw closes the connection. */
    private readonly onMessage: (m: Message) => void,
    /** The front-end went away, or a message was bad (`error` says which). */
    private readonly onClose: (error: VhostUserError | null) => void,
  ) {
    sock.on('readable', () => this.pump());
    sock.on('end', () => this.close(null));
    sock.on('close', () => this.close(null));
    sock.on('error', (e: unknown) =>
      this.close(new VhostUserError('INTERNAL', `socket: ${String(e)}`, { cause: e })),
    );
  }

  reply(request: number, payload: Uint8Array): void {
    if (!this.closed) this.sock.write(Buffer.from(encodeReply(request, payload)));
  }

  close(error: VhostUserError | null): void {
    if (this.closed) return;
    this.closed = true;
    this.sock.destroy();
    this.onClose(error);
  }

  private pump(): void {
    try {
      while (!this.closed) {
        if (!this.header) {
          const raw = this.sock.read(HEADER_BYTES) as Buffer | null;
          if (!raw) return;
          this.header = decodeHeader(raw);
        }
        const h = this.header;
        // The fds arrive with the header's bytes; their count depends on the payload.
        const peek = h.size === 0 ? Buffer.alloc(0) : (this.sock.read(h.size) as Buffer | null);
        if (!peek) return;
        const payload = new Payload(h.request, new Uint8Array(peek));
        const want = fdsNeeded(h.request, payload);
        const got = this.sock.read(0, want);
        if (!got || got.fds.length !== want) {
          for (const fd of got?.fds ?? []) closeSync(fd);
          throw new VhostUserError('BAD_FDS', `request ${h.request}: expected ${want} fds`);
        }
        this.header = null;
        this.onMessage({ header: h, payload, fds: got.fds });
      }
    } catch (err) {
      this.close(
        VhostUserError.is(err) ? err : new VhostUserError('INTERNAL', String(err), { cause: err }),
      );
    }
  }
}
