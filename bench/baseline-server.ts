// The benchmark's baseline: a bare Express route that does one INSERT of a row equivalent to a webhook
// order, on the same database, with no validation, auth, audit or queue.
import express from 'express';
import { Pool } from 'pg';

const pool = new Pool({ connectionString: process.env['DATABASE_URL'], max: 20 });
const assetTypeId = Number(process.env['ASSET_TYPE_ID']);
const app = express();
app.use(express.json());
app.post('/baseline', async (req, res) => {
  const b = req.body as Record<string, unknown>;
  try {
    const { rows } = await pool.query(
      `INSERT INTO orders (asset_type_id, status, source, servicenow_ref, snow_req, user_email, user_name,
         requested_from, requested_until, config, created_by)
       VALUES ($1, 'processing', 'servicenow', $2, $3, $4, $5, $6, $7, $8, 'bench:baseline') RETURNING *`,
      [assetTypeId, b['servicenow_ref'], b['snow_req'], b['user_email'], b['user_name'], b['requested_from'], b['requested_until'], b['config'] ?? {}],
    );
    res.status(201).json(rows[0]);
  } catch (err) {
    res.status(500).json({ detail: (err as Error).message });
  }
});
const server = app.listen(Number(process.env['PORT']), '127.0.0.1', () => process.send?.('ready'));
process.on('SIGTERM', () => server.close(() => void pool.end().then(() => process.exit(0))));
