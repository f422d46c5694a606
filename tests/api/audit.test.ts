import { writeAudit } from '../../adapter';
import { csvField } from '../../server/domain/audit/audit-query';
import { createTestApp, type TestApp } from '../support/app';

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

/** A strict RFC 4180 parser, to prove the export round-trips. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let i = 0;
  let quoted = false;
  while (i < text.length) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i += 2;
        continue;
      }
      if (c === '"') quoted = false;
      else field += c;
      i++;
      continue;
    }
    if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else field += c;
    i++;
  }
  if (field !== '' || row.length) throw new Error('CSV does not end with CRLF');
  return rows;
}

describe('audit log API', () => {
  let t: TestApp;
  // Rows of a private entity kind, at fixed instants, so filters have exact expectations.
  const E = 'widget';
  const at = (day: number) => new Date(Date.UTC(2026, 0, day, 12, 0, 0));
  beforeAll(async () => {
    t = await createTestApp();
    const rows: [string, string, string, string, Date, Record<string, unknown>][] = [
      ['1', 'create', 'admin:key', 'r1', at(1), { before: null, after: { name: 'a' } }],
      ['1', 'update', 'webhook:token:snow-prod', 'r2', at(2), { before: { name: 'a' }, after: { name: 'b' } }],
      ['2', 'create', 'webhook:hmac', 'r3', at(3), { before: null, after: { note: 'comma, "quote"\nnewline' } }],
      ['2, "odd"', 'delete', 'webhook:token:snow_test', 'r4', at(4), { before: { name: 'c' }, after: null }],
      ['3', 'create', 'webhookXtokenXsnow', 'r5', at(5), { before: null, after: {} }],
    ];
    for (const [id, action, actor, requestId, when, diff] of rows) {
      await t.db.query(
        `INSERT INTO audit_log (entity, entity_id, action, diff, triggered_by, request_id, at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [E, id, action, JSON.stringify(diff), actor, requestId, when],
      );
    }
  });
  afterAll(async () => {
    await t.close();
  });

  const list = (query: string, headers: Record<string, string> = t.admin) => t.http().get(`/admin/audit?${query}`).set(headers);
  const ids = (body: { items: { request_id: string }[] }) => body.items.map((i) => i.request_id);

  test('lists newest first with a total and the full entry shape', async () => {
    const res = await list(`entity=${E}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ total: 5, limit: 50, offset: 0 });
    expect(ids(res.body)).toEqual(['r5', 'r4', 'r3', 'r2', 'r1']);
    expect(res.body.items[3]).toEqual({
      id: expect.any(Number),
      at: '2026-01-02T12:00:00.000Z',
      entity: E,
      entity_id: '1',
      action: 'update',
      diff: { before: { name: 'a' }, after: { name: 'b' } },
      triggered_by: 'webhook:token:snow-prod',
      request_id: 'r2',
    });
  });

  test('paginates with limit and offset', async () => {
    const p1 = await list(`entity=${E}&limit=2`);
    const p2 = await list(`entity=${E}&limit=2&offset=2`);
    const p3 = await list(`entity=${E}&limit=2&offset=4`);
    expect([ids(p1.body), ids(p2.body), ids(p3.body)]).toEqual([['r5', 'r4'], ['r3', 'r2'], ['r1']]);
    expect([p1.body.total, p2.body.total, p3.body.total]).toEqual([5, 5, 5]);
    expect(p2.body).toMatchObject({ limit: 2, offset: 2 });
  });

  test('filters by entity id, action, actor (exact or prefix*) and time range', async () => {
    expect(ids((await list(`entity=${E}&entity_id=1`)).body)).toEqual(['r2', 'r1']);
    expect(ids((await list(`entity=${E}&action=create`)).body)).toEqual(['r5', 'r3', 'r1']);
    expect(ids((await list(`entity=${E}&actor=admin:key`)).body)).toEqual(['r1']);
    expect(ids((await list(`entity=${E}&actor=${encodeURIComponent('webhook:*')}`)).body)).toEqual(['r4', 'r3', 'r2']);
    expect(ids((await list(`entity=${E}&actor=${encodeURIComponent('webhook:token:*')}`)).body)).toEqual(['r4', 'r2']);
    // `_` in a prefix is a literal, not LIKE's any-character.
    expect(ids((await list(`entity=${E}&actor=${encodeURIComponent('webhook:token:snow_*')}`)).body)).toEqual(['r4']);
    // Without the star it is an exact match.
    expect((await list(`entity=${E}&actor=webhook:token`)).body.total).toBe(0);
    const range = await list(`entity=${E}&from=2026-01-02T12:00:00Z&to=2026-01-04T12:00:00Z`);
    expect(ids(range.body)).toEqual(['r3', 'r2']);
    expect(range.body.total).toBe(2);
    expect(ids((await list(`entity=${E}&from=2026-01-04T00:00:00%2B01:00`)).body)).toEqual(['r5', 'r4']);
    expect(ids((await list(`entity=${E}&action=create&actor=${encodeURIComponent('webhook:*')}&to=2026-01-10T00:00:00Z`)).body)).toEqual(['r3']);
  });

  test('bad filters are 400 naming the parameter', async () => {
    const notIso = await list('from=yesterday');
    expect(notIso.status).toBe(400);
    expect(notIso.body.errors[0].path).toBe('/query/from');
    const reversed = await list('from=2026-01-05T00:00:00Z&to=2026-01-01T00:00:00Z');
    expect(reversed.status).toBe(400);
    expect(reversed.body).toMatchObject({ code: 'BAD_REQUEST', errors: [{ path: '/query/to', message: 'must be after from' }] });
    const unknown = await list('colour=blue');
    expect(unknown.status).toBe(400);
    expect((await list('limit=0')).status).toBe(400);
    expect((await list('format=xml')).status).toBe(400);
  });

  test('format=csv exports text/csv with RFC 4180 quoting and the diff as JSON in one column', async () => {
    const res = await list(`entity=${E}&format=csv`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(res.headers['x-total-count']).toBe('5');
    expect(res.headers['content-disposition']).toBe('attachment; filename="audit.csv"');
    const rows = parseCsv(res.text);
    expect(rows[0]).toEqual(['id', 'at', 'entity', 'entity_id', 'action', 'triggered_by', 'request_id', 'diff']);
    expect(rows.slice(1).map((r) => r[6])).toEqual(['r5', 'r4', 'r3', 'r2', 'r1']);
    const r4 = rows.find((r) => r[6] === 'r4')!;
    expect(r4.slice(1, 6)).toEqual(['2026-01-04T12:00:00.000Z', E, '2, "odd"', 'delete', 'webhook:token:snow_test']);
    const r3 = rows.find((r) => r[6] === 'r3')!;
    expect(JSON.parse(r3[7]!)).toEqual({ before: null, after: { note: 'comma, "quote"\nnewline' } });
    expect(res.text).toContain('"2, ""odd"""');
    expect(rows.every((r) => r.length === 8)).toBe(true);

    const json = await list(`entity=${E}`);
    expect(rows.slice(1).map((r) => Number(r[0]))).toEqual(json.body.items.map((i: { id: number }) => i.id));

    const page = await list(`entity=${E}&format=csv&limit=2&offset=1`);
    expect(parseCsv(page.text).slice(1).map((r) => r[6])).toEqual(['r4', 'r3']);
  });

  test('csvField quotes only when needed', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('line\r\nbreak')).toBe('"line\r\nbreak"');
    expect(csvField('')).toBe('');
  });

  test('secrets never reach the audit table', async () => {
    await t.db.transaction((tx) =>
      writeAudit(tx, {
        entity: 'secretive',
        entityId: 1,
        action: 'create',
        before: null,
        after: { host: 'h', password: 'p4ss-value', nested: { client_secret: 'cs-value', keep: 1 } },
        triggeredBy: 'system:test',
      }),
    );
    const res = await list('entity=secretive');
    expect(res.body.items[0].diff).toEqual({ before: null, after: { host: 'h', nested: { keep: 1 } } });
    expect(JSON.stringify(res.body)).not.toMatch(/p4ss-value|cs-value/);
  });

  test('admin, superadmin and auditor with admin:read may read it; other roles and scopes may not', async () => {
    let n = 0;
    const mint = async (scopes: string[], role?: string) => {
      const r = await t.http().post('/admin/api-tokens').set(t.admin)
        .send({ name: `audit-${++n}`, scopes, ...(role ? { role } : {}), ...(role === 'approver' ? { approver_email: 'boss@example.com' } : {}) });
      expect(r.status).toBe(201);
      return bearer(r.body.token as string);
    };
    for (const role of ['auditor', 'admin', 'superadmin']) {
      expect({ role, status: (await list(`entity=${E}`, await mint(['admin:read'], role))).status }).toEqual({ role, status: 200 });
    }
    expect((await list(`entity=${E}&format=csv`, await mint(['admin:read'], 'auditor'))).status).toBe(200);
    for (const role of ['helpdesk', 'approver']) {
      const res = await list(`entity=${E}`, await mint(['admin:*'], role));
      expect({ role, status: res.status, code: res.body.code }).toEqual({ role, status: 403, code: 'FORBIDDEN' });
    }
    expect((await list(`entity=${E}`, await mint(['admin:read']))).status).toBe(200);
    expect((await list(`entity=${E}`, await mint(['orders:write']))).status).toBe(403);
    expect((await t.http().get('/admin/audit')).status).toBe(401);
  });
});
