import { readFile } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';

/** Where the page scripts compile to (src/console/client → dist/console/client). */
const CLIENT_DIR = new URL('./client/', import.meta.url);

/** A page script or its source map; nothing else (no paths, no dot files) is ever read. */
const ASSET = /^([a-z][a-z0-9-]*)\.js(\.map)?$/;

/** `GET /assets/<name>.js`: the console's own compiled page scripts, served offline. */
export function registerAssets(app: FastifyInstance): void {
  app.get<{ Params: { name: string } }>('/assets/:name', async (req, reply) => {
    const m = ASSET.exec(req.params.name);
    const body = m && (await readFile(new URL(req.params.name, CLIENT_DIR)).catch(() => null));
    if (!body)
      return reply
        .code(404)
        .send({ code: 'ASSET_NOT_FOUND', message: `no console asset ${req.params.name}` });
    return reply
      .type(m[2] ? 'application/json; charset=utf-8' : 'text/javascript; charset=utf-8')
      .header('cache-control', 'no-cache')
      .send(body);
  });
}
