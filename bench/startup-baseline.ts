// bench:startup's baseline: the least a service on the embedded database can be — Express with one /healthz
// route and PGlite opened on a data directory (one query at start so the database is really open), with the
// service's shared_buffers (PGLITE_SHARED_BUFFERS, which bench/startup.ts sets for both sides).
import { PGlite } from '@electric-sql/pglite';
import express from 'express';

async function main(): Promise<void> {
  const sharedBuffers = process.env['PGLITE_SHARED_BUFFERS'] ?? '32MB';
  const db = new PGlite(process.env['DATA_DIR'], { startParams: [...PGlite.defaultStartParams, '-c', `shared_buffers=${sharedBuffers}`] });
  await db.query('SELECT 1');
  const app = express();
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  const server = app.listen(Number(process.env['PORT']), '127.0.0.1');
  process.on('SIGTERM', () => server.close(() => void db.close().then(() => process.exit(0))));
}

void main();
