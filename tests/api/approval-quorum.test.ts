/**
 * N-of-M approval: an asset type's `approval` policy (validated through the asset-type API), each approver an
 * approval of their own, the order released at the N-th approval (exactly once, also when approvers decide at the
 * same moment), declined at the first decline or once the quorum cannot be reached any more, the requester left out,
 * unroutable quorums visible in `GET /admin/approvals?routed=false`, extensions routed the same way, and a quorum
 * of a real Active Directory group (Samba AD, nested membership, a disabled member left out).
 */
import { readFileSync } from 'node:fs';
import { Attribute, Change, Client } from 'ldapts';
import { createLogger, DirectoryError, DirectoryErrorCode, type Directory } from '../../adapter';
import { createDemoDirectory } from '../../server/domain/identity/demo-directory';
import { adRequesterDirectory, createDirectoryProvider, type DirectoryProvider, type RequesterDirectory } from '../../server/domain/identity/requester-directory';
import { createTestApp, type TestApp } from '../support/app';
import { testEngine } from '../support/db';
import { mintTestToken } from '../support/orders';
import { ensureSambaAd, SEED_USER_PASSWORD, type SambaAd } from '../support/samba-ad';

/** An approver token's name for an email (token names hold no '@'). */
const tokenName = (email: string) => `approver-${email.replace('@', '_')}`;

jest.setTimeout(60_000);

const REQUESTER = 'req@example.com';
const [ANN, BOB, CAT, DAN] = ['ann@example.com', 'bob@example.com', 'cat@example.com', 'dan@example.com'];

interface ApprovalDb {
  id: number;
  approver_email: string;
  status: string;
  reason: string | null;
  round_id: number;
}

/** The requests every describe makes, over one app. */
function client(t: () => TestApp) {
  const tokens = new Map<string, string>();
  let writer: string | undefined;
  return {
    async approverToken(email: string): Promise<string> {
      const have = tokens.get(email);
      if (have) return have;
      const res = await t().http().post('/admin/api-tokens').set(t().admin).send({ name: tokenName(email), scopes: ['admin:read'], role: 'approver', approver_email: email });
      expect(res.status).toBe(201);
      tokens.set(email, res.body.token as string);
      return res.body.token as string;
    },
    async order(type: string, user: string): Promise<number> {
      writer ??= await mintTestToken(t().db, 'writer', ['orders:write']);
      const res = await t().http().post('/orders').set({ Authorization: `Bearer ${writer}` }).send({ asset_type_name: type, user_email: user, user_name: user.split('@')[0] });
      expect({ status: res.status, body: res.status === 201 ? null : res.body }).toEqual({ status: 201, body: null });
      expect(res.body.status).toBe('pending_approval');
      return res.body.id as number;
    },
    async decide(orderId: number, approver: string, decision: 'approve' | 'decline', body: Record<string, unknown> = {}) {
      return t().http().post(`/orders/${orderId}/${decision}`).set({ Authorization: `Bearer ${await this.approverToken(approver)}` }).send(body);
    },
    async rows(orderId: number): Promise<ApprovalDb[]> {
      const { rows } = await t().db.query<ApprovalDb>('SELECT id, approver_email, status, reason, round_id FROM approvals WHERE order_id = $1 ORDER BY id', [orderId]);
      return rows.map((r) => ({ ...r, id: Number(r.id), round_id: Number(r.round_id) }));
    },
    async orderRow(orderId: number): Promise<{ status: string; job_id: string | null }> {
      return (await t().db.query<{ status: string; job_id: string | null }>('SELECT status, job_id FROM orders WHERE id = $1', [orderId])).rows[0]!;
    },
    async provisionJobs(orderId: number): Promise<number> {
      const { rows } = await t().db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pgboss.job WHERE name = 'order.provision' AND data->>'orderId' = $1`, [String(orderId)]);
      return rows[0]!.n;
    },
    async audit(entityId: number, action: string, entity = 'order'): Promise<{ diff: { after: Record<string, unknown> }; triggered_by: string }[]> {
      const { rows } = await t().db.query<{ diff: { after: Record<string, unknown> }; triggered_by: string }>(
        'SELECT diff, triggered_by FROM audit_log WHERE entity = $1 AND entity_id = $2 AND action = $3 ORDER BY id',
        [entity, String(entityId), action],
      );
      return rows;
    },
  };
}

describe(`N-of-M approval quorum (${testEngine})`, () => {
  let t: TestApp;
  const c = client(() => t);
  const MANAGERS: Record<string, string> = { [REQUESTER]: 'boss@example.com' };
  const GROUPS: Record<string, string[]> = { 'Quorum-Group': [DAN, 'eve@example.com', REQUESTER] };
  const directory: RequesterDirectory = {
    lookup: async () => undefined,
    managerOf: async (email) => MANAGERS[email],
    membersOf: async (group) => (GROUPS[group] ? { status: 'found', emails: GROUPS[group]! } : { status: 'not_found' }),
  };

  const createType = (body: Record<string, unknown>) =>
    t.http().post('/admin/asset-types').set(t.admin).send({ assignment_model: 'personal', requires_approval: true, ...body });

  beforeAll(async () => {
    t = await createTestApp({}, { requesterDirectory: directory });
    for (const [name, approval] of [
      ['Two of three', { quorum: 2, approvers: [ANN, BOB, CAT] }],
      ['Two of group', { quorum: 2, approver_group: 'Quorum-Group' }],
      ['Three of three with requester', { quorum: 3, approvers: [ANN, BOB, REQUESTER] }],
      ['Two of unknown group', { quorum: 2, approvers: [ANN], approver_group: 'No-Such-Group' }],
    ] as const) {
      const res = await createType({ name, approval });
      expect({ status: res.status, body: res.status === 201 ? null : res.body }).toEqual({ status: 201, body: null });
    }
  });
  afterAll(async () => {
    await t.close();
  });

  describe('the policy on the asset type', () => {
    test('stored normalised (lower-cased, duplicates dropped) and read back; PATCH replaces it whole, null clears it', async () => {
      const res = await createType({ name: 'Policy seat', approval: { quorum: 2, approvers: ['Ann@Example.com', 'ann@example.com', 'BOB@example.com'] } });
      expect(res.status).toBe(201);
      expect(res.body.approval).toEqual({ quorum: 2, approvers: [ANN, BOB], approver_group: null });
      const patched = await t.http().patch(`/admin/asset-types/${res.body.id}`).set(t.admin).send({ approval: { quorum: 1, approver_group: 'CN=Approvers,DC=example,DC=com' } });
      expect(patched.status).toBe(200);
      expect(patched.body.approval).toEqual({ quorum: 1, approvers: [], approver_group: 'CN=Approvers,DC=example,DC=com' });
      const cleared = await t.http().patch(`/admin/asset-types/${res.body.id}`).set(t.admin).send({ approval: null });
      expect(cleared.body.approval).toBeNull();
      const read = await t.http().get(`/admin/asset-types/${res.body.id}`).set(t.admin);
      expect(read.body.approval).toBeNull();
    });

    test.each([
      [{ quorum: 3, approvers: [ANN, BOB] }, '/body/approval/quorum'],
      [{ quorum: 2, approvers: [ANN, 'ANN@example.com'] }, '/body/approval/quorum'],
      [{ quorum: 0, approvers: [ANN] }, '/body/approval/quorum'],
      [{ quorum: 1, approvers: [ANN, 'not-an-email'] }, '/body/approval/approvers/1'],
      [{ quorum: 1 }, '/body/approval/approvers'],
      [{ quorum: 1, approver_group: '  ' }, '/body/approval/approver_group'],
    ])('%j is a 422 naming %s; nothing is created', async (approval, path) => {
      const res = await createType({ name: `Bad policy ${JSON.stringify(approval)}`, approval });
      expect(res.status).toBe(422);
      expect(res.body.code).toBe('VALIDATION_FAILED');
      expect(res.body.errors.map((e: { path: string }) => e.path)).toContain(path);
      const listed = await t.http().get('/admin/asset-types').query({ name: 'Bad policy' }).set(t.admin);
      expect(listed.body.total).toBe(0);
    });
  });

  describe('two of three', () => {
    test('each approver has an approval; the first approval counts, the second releases the order once, the third is withdrawn', async () => {
      const id = await c.order('Two of three', REQUESTER);
      const routed = await c.rows(id);
      expect(routed.map((r) => [r.approver_email, r.status, r.reason])).toEqual([
        [ANN, 'pending', 'quorum'],
        [BOB, 'pending', 'quorum'],
        [CAT, 'pending', 'quorum'],
      ]);
      expect(new Set(routed.map((r) => r.round_id)).size).toBe(1);

      const first = await c.decide(id, ANN, 'approve', { reason: 'fine by me' });
      expect(first.status).toBe(200);
      expect(first.body).toMatchObject({ order_status: 'pending_approval', job_id: null, quorum: { mode: 'quorum', required: 2, approved: 1, pending: 2 } });
      expect(await c.provisionJobs(id)).toBe(0);

      const second = await c.decide(id, BOB, 'approve');
      expect(second.status).toBe(200);
      expect(second.body).toMatchObject({ order_status: 'processing', job_id: expect.any(String), quorum: { required: 2, approved: 2, pending: 0 } });
      expect(second.body.quorum.decisions).toEqual([
        expect.objectContaining({ approver_email: ANN, decision: 'approved', reason: 'fine by me', decided_by: `${ANN} (approver:token:${tokenName(ANN)})` }),
        expect.objectContaining({ approver_email: BOB, decision: 'approved' }),
      ]);
      expect(await c.orderRow(id)).toEqual({ status: 'processing', job_id: second.body.job_id });
      expect(await c.provisionJobs(id)).toBe(1);
      expect((await c.rows(id)).map((r) => [r.approver_email, r.status, r.reason])).toEqual([
        [ANN, 'approved', 'fine by me'],
        [BOB, 'approved', 'quorum'],
        [CAT, 'withdrawn', 'quorum reached'],
      ]);
      // Too late: the order no longer waits.
      expect((await c.decide(id, CAT, 'approve')).status).toBe(409);

      // The API shows the round on every approval of it.
      const listed = await t.http().get('/admin/approvals').query({ order_id: id }).set(t.admin);
      expect(listed.status).toBe(200);
      expect(listed.body.total).toBe(3);
      for (const a of listed.body.items) {
        expect(a).toMatchObject({ routed: true, on_behalf_of: null, delegation_id: null, quorum: { required: 2, approved: 2, pending: 0 }, reminders: { sent: 0 }, links: { sent: expect.any(Number) } });
        expect(a.quorum.decisions).toHaveLength(2);
      }
    });

    test('a decline declines the round at once: order cancelled, the rest withdrawn naming who declined', async () => {
      const id = await c.order('Two of three', REQUESTER);
      expect((await c.decide(id, ANN, 'approve')).status).toBe(200);
      const res = await c.decide(id, CAT, 'decline', { reason: 'not this quarter' });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ order_status: 'cancelled', job_id: null, approval: { approver_email: CAT, status: 'declined' } });
      expect((await c.rows(id)).map((r) => [r.approver_email, r.status, r.reason])).toEqual([
        [ANN, 'approved', 'quorum'],
        [BOB, 'withdrawn', `declined by ${CAT}`],
        [CAT, 'declined', 'not this quarter'],
      ]);
      expect(await c.provisionJobs(id)).toBe(0);
      const withdrawn = await c.audit((await c.rows(id))[1]!.id, 'withdrawn', 'approval');
      expect(withdrawn).toHaveLength(1);
    });

    test('an approver who is not in the round is refused; an admin without approver_email overrides the whole round', async () => {
      const id = await c.order('Two of three', REQUESTER);
      const stranger = await c.decide(id, DAN, 'approve');
      expect(stranger.status).toBe(403);
      expect(stranger.body.detail).toBe(`order ${id} is waiting for another approver`);
      const res = await t.http().post(`/orders/${id}/approve`).set(t.admin).send({ reason: 'urgent' });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ order_status: 'processing', approval: { approver_email: ANN, status: 'approved', decided_by: 'admin:key' } });
      const approved = await c.audit(res.body.approval.id, 'approved', 'approval');
      expect(approved[0]!.diff.after).toMatchObject({ override: true });
      expect((await c.rows(id)).map((r) => r.status)).toEqual(['approved', 'withdrawn', 'withdrawn']);
    });

    test('declined when the quorum becomes impossible: approvers leave with nobody to hand their approval to', async () => {
      const hr = await mintTestToken(t.db, 'hr', ['hr:leaver']);
      const leaver = (email: string, eventId: string) => t.http().post('/hr/leaver').set('Authorization', `Bearer ${hr}`).send({ email, source: 'native', event_id: eventId });
      const id = await c.order('Two of three', REQUESTER);
      // One leaves: two approvers are left for a quorum of two, still possible.
      expect((await leaver(CAT, 'quorum-cat')).status).toBe(202);
      expect((await c.rows(id)).map((r) => r.status)).toEqual(['pending', 'pending', 'superseded']);
      expect((await c.orderRow(id)).status).toBe('pending_approval');
      expect(await c.audit(id, 'approval_not_replaced')).toHaveLength(1);
      // A second leaves: one is left, and one cannot make two.
      expect((await leaver(BOB, 'quorum-bob')).status).toBe(202);
      expect(await c.orderRow(id)).toEqual({ status: 'cancelled', job_id: null });
      const rows = await c.rows(id);
      expect(rows.map((r) => [r.approver_email, r.status])).toEqual([
        [ANN, 'withdrawn'],
        [BOB, 'superseded'],
        [CAT, 'superseded'],
      ]);
      expect(rows[0]!.reason).toBe('quorum impossible: 0 approved and 1 pending of a quorum of 2');
      const impossible = await c.audit(id, 'approval_quorum_impossible');
      expect(impossible).toEqual([expect.objectContaining({ triggered_by: 'hr:native' })]);
      expect(impossible[0]!.diff.after).toMatchObject({ approved: 0, pending: 1, quorum: 2 });
    });
  });

  describe('concurrent decisions', () => {
    test('the last two approvals of a quorum at once: one releases the order, the other finds it decided (409); one job', async () => {
      const id = await c.order('Two of three', 'req2@example.com');
      // Tokens first, so both decisions leave at the same moment.
      await Promise.all([ANN, BOB, CAT].map((e) => c.approverToken(e)));
      const both = await Promise.all([c.decide(id, ANN, 'approve'), c.decide(id, BOB, 'approve'), c.decide(id, CAT, 'approve')]);
      const statuses = both.map((r) => r.status).sort();
      expect(statuses).toEqual([200, 200, 409]);
      const released = both.filter((r) => r.status === 200 && r.body.order_status === 'processing');
      expect(released).toHaveLength(1);
      expect(await c.provisionJobs(id)).toBe(1);
      const transitions = await t.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM audit_log WHERE entity = 'order' AND entity_id = $1 AND action = 'transition' AND diff->'after'->>'status' = 'processing'`,
        [String(id)],
      );
      expect(transitions.rows[0]!.n).toBe(1);
      expect((await c.rows(id)).map((r) => r.status).sort()).toEqual(['approved', 'approved', 'withdrawn']);
    });
  });

  describe('who is routed', () => {
    test('a directory group: its members, the requester left out (audited); the group quorum works like a list', async () => {
      const id = await c.order('Two of group', REQUESTER);
      expect((await c.rows(id)).map((r) => [r.approver_email, r.reason])).toEqual([
        [DAN, 'quorum (group Quorum-Group)'],
        ['eve@example.com', 'quorum (group Quorum-Group)'],
      ]);
      const excluded = await c.audit(id, 'approval_approver_excluded');
      expect(excluded.map((a) => a.diff.after)).toEqual([{ approver: REQUESTER, rule: 'own_order' }]);
      expect((await c.decide(id, DAN, 'approve')).body.order_status).toBe('pending_approval');
      expect((await c.decide(id, 'eve@example.com', 'approve')).body.order_status).toBe('processing');
    });

    test('too few eligible approvers: the order waits unrouted, listed by GET /admin/approvals?routed=false with why', async () => {
      const own = await c.order('Three of three with requester', REQUESTER);
      const unknownGroup = await c.order('Two of unknown group', REQUESTER);
      expect(await c.rows(own)).toEqual([]);
      expect(await c.rows(unknownGroup)).toEqual([]);
      const res = await t.http().get('/admin/approvals').query({ routed: false }).set(t.admin);
      expect(res.status).toBe(200);
      const byOrder = new Map(res.body.items.map((i: { order_id: number }) => [i.order_id, i]));
      expect(byOrder.get(own)).toEqual({
        routed: false,
        order_id: own,
        kind: 'order',
        requested_until: null,
        user_email: REQUESTER,
        asset_type_id: expect.any(Number),
        reason: 'a quorum of 3 needs 3 approvers; 2 eligible',
        since: expect.any(String),
      });
      expect(byOrder.get(unknownGroup)).toMatchObject({ reason: "a quorum of 2 needs 2 approvers; 1 eligible (the directory has no group 'No-Such-Group')" });
      // The default list is of approvals routed to someone, as before.
      const routed = await t.http().get('/admin/approvals').set(t.admin);
      expect(routed.body.items.every((i: { routed: boolean }) => i.routed)).toBe(true);
      // Only an admin decides it; then it is no longer listed.
      expect((await t.http().post(`/orders/${own}/decline`).set(t.admin).send({})).body.order_status).toBe('cancelled');
      const after = await t.http().get('/admin/approvals').query({ routed: false, order_id: own }).set(t.admin);
      expect(after.body).toMatchObject({ total: 0, items: [] });
    });

    test('an extension of a quorum order is routed to the quorum too, and applied at its N-th approval', async () => {
      const id = await c.order('Two of three', 'ext@example.com');
      await c.decide(id, ANN, 'approve');
      expect((await c.decide(id, BOB, 'approve')).body.order_status).toBe('processing');
      const until = new Date(Date.now() + 40 * 86_400_000).toISOString();
      const ext = await t.http().post(`/orders/${id}/extend`).set(t.admin).send({ requested_until: until });
      expect(ext.status).toBe(202);
      const rows = (await c.rows(id)).slice(3);
      expect(rows.map((r) => [r.approver_email, r.status])).toEqual([
        [ANN, 'pending'],
        [BOB, 'pending'],
        [CAT, 'pending'],
      ]);
      const first = await c.decide(id, CAT, 'approve');
      expect(first.body).toMatchObject({ kind: 'extension', quorum: { approved: 1, required: 2 } });
      expect(first.body.requested_until).not.toBe(until);
      const second = await c.decide(id, ANN, 'approve');
      expect(second.body).toMatchObject({ kind: 'extension', requested_until: until, quorum: { approved: 2 } });
      expect((await c.rows(id)).slice(3).map((r) => r.status)).toEqual(['approved', 'withdrawn', 'approved']);
    });
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Who is in an approver group: the requester directory over the demo directory (DEMO=1), and its failure rules

describe('approver groups through the requester directory', () => {
  const logger = createLogger({ silent: true });
  const over = (d: Directory | undefined) => adRequesterDirectory({ get: async () => d, close: async () => undefined }, logger);

  test('the demo directory: members through nested groups, by name or DN, the disabled account left out', async () => {
    const demo = createDemoDirectory();
    const dir = over(demo);
    const sorted = (r: Awaited<ReturnType<NonNullable<RequesterDirectory['membersOf']>>>) => (r.status === 'found' ? { ...r, emails: [...r.emails].sort() } : r);
    expect(sorted(await dir.membersOf!('All-Staff'))).toEqual({
      status: 'found',
      emails: ['alex.analyst@example.com', 'fiona.finance@example.com', 'jane.doe@example.com', 'john.smith@example.com', 'boss@example.com', 'sam.ceo@example.com'].sort(),
    });
    const engineering = sorted(await dir.membersOf!('CN=Engineering,OU=Groups,OU=Demo,DC=example,DC=com'));
    expect(engineering).toEqual({ status: 'found', emails: ['jane.doe@example.com', 'john.smith@example.com', 'boss@example.com'].sort() });
    // The adapter itself lists the disabled member too: what a disabled member means is the caller's decision.
    expect((await demo.listGroupMembers({ by: 'sAMAccountName', value: 'Engineering' })).map((u) => u.mail)).toContain('lee.leaver@example.com');
    expect((await demo.listGroupMembers({ by: 'sAMAccountName', value: 'All-Staff' }, { nested: false })).map((u) => u.mail)).toEqual(['sam.ceo@example.com']);
    expect(await dir.membersOf!('No-Such-Group')).toEqual({ status: 'not_found' });
  });

  test('no directory configured: unconfigured; a directory that does not answer: 503 DIRECTORY_UNAVAILABLE', async () => {
    expect(await over(undefined).membersOf!('All-Staff')).toEqual({ status: 'unconfigured' });
    const down = over({ listGroupMembers: async () => { throw new DirectoryError(DirectoryErrorCode.UNAVAILABLE, 'connect ECONNREFUSED'); } } as unknown as Directory);
    await expect(down.membersOf!('All-Staff')).rejects.toMatchObject({ code: 'DIRECTORY_UNAVAILABLE' });
  });
});

// ---------------------------------------------------------------------------------------------------------------
// A group of a real Active Directory

interface Person {
  cn: string;
  sam: string;
  mail: string;
  disabled?: boolean;
}

const AQ_REQ: Person = { cn: 'AQ Requester', sam: 'aq-req', mail: 'aq.req@test.local' };
const AQ_ONE: Person = { cn: 'AQ One', sam: 'aq-one', mail: 'aq.one@test.local' };
const AQ_TWO: Person = { cn: 'AQ Two', sam: 'aq-two', mail: 'aq.two@test.local' };
const AQ_THREE: Person = { cn: 'AQ Three', sam: 'aq-three', mail: 'aq.three@test.local' };
const AQ_OFF: Person = { cn: 'AQ Off', sam: 'aq-off', mail: 'aq.off@test.local', disabled: true };
const AQ_PEOPLE = [AQ_REQ, AQ_ONE, AQ_TWO, AQ_THREE, AQ_OFF];

describe(`a quorum of an Active Directory group (Samba AD, ${testEngine})`, () => {
  let ad: SambaAd;
  let ou: string;
  let t: TestApp;
  let provider: DirectoryProvider;
  const c = client(() => t);
  const dnOf = (cn: string) => `CN=${cn},${ou}`;

  async function ldap<T>(fn: (cl: Client) => Promise<T>): Promise<T> {
    const cl = new Client({ url: ad.ldapsUrl, tlsOptions: { ca: readFileSync(ad.caCertPath) }, timeout: 15_000 });
    try {
      await cl.bind(ad.bindDn, ad.bindPassword);
      return await fn(cl);
    } finally {
      await cl.unbind().catch(() => undefined);
    }
  }
  const exists = (e: unknown) => (e as { code?: unknown }).code === 68;

  /** This file's people and groups, created or reset: AQ-Approvers <- {AQ One, AQ Off (disabled), AQ-Inner <- {AQ Two, the requester}}. */
  async function seed(): Promise<void> {
    await ldap(async (cl) => {
      try {
        await cl.add(ou, { objectClass: ['top', 'organizationalUnit'], ou: 'ApprovalQuorum' });
      } catch (e) {
        if (!exists(e)) throw e;
      }
      for (const p of AQ_PEOPLE) {
        const uac = p.disabled ? '514' : '512';
        try {
          await cl.add(dnOf(p.cn), [
            new Attribute({ type: 'objectClass', values: ['top', 'person', 'organizationalPerson', 'user'] }),
            new Attribute({ type: 'sAMAccountName', values: [p.sam] }),
            new Attribute({ type: 'mail', values: [p.mail] }),
            new Attribute({ type: 'userPrincipalName', values: [`${p.sam}@test.local`] }),
            new Attribute({ type: 'unicodePwd', values: [Buffer.from(`"${SEED_USER_PASSWORD}"`, 'utf16le')] }),
            new Attribute({ type: 'userAccountControl', values: [uac] }),
          ]);
        } catch (e) {
          if (!exists(e)) throw e;
          await cl.modify(dnOf(p.cn), new Change({ operation: 'replace', modification: new Attribute({ type: 'userAccountControl', values: [uac] }) }));
        }
      }
      for (const cn of ['AQ-Inner', 'AQ-Approvers']) {
        try {
          await cl.add(dnOf(cn), { objectClass: ['top', 'group'], cn, sAMAccountName: cn, groupType: '-2147483646' });
        } catch (e) {
          if (!exists(e)) throw e;
        }
      }
      await cl.modify(dnOf('AQ-Inner'), new Change({ operation: 'replace', modification: new Attribute({ type: 'member', values: [dnOf(AQ_TWO.cn), dnOf(AQ_REQ.cn)] }) }));
      await cl.modify(dnOf('AQ-Approvers'), new Change({ operation: 'replace', modification: new Attribute({ type: 'member', values: [dnOf(AQ_ONE.cn), dnOf(AQ_OFF.cn), dnOf('AQ-Inner')] }) }));
    });
  }

  beforeAll(async () => {
    ad = await ensureSambaAd();
    ou = `OU=ApprovalQuorum,${ad.seed.ou}`;
    await seed();
    const logger = createLogger({ silent: !process.env['TEST_LOGS'] });
    let inner: RequesterDirectory | undefined;
    // The provider reads its settings from the app's database, which exists only once the app does.
    const late: RequesterDirectory = {
      lookup: (email) => inner!.lookup(email),
      managerOf: (email) => inner!.managerOf!(email),
      verify: (email) => inner!.verify!(email),
      membersOf: (group) => inner!.membersOf!(group),
    };
    t = await createTestApp({}, { requesterDirectory: late });
    provider = createDirectoryProvider(t.db, logger);
    inner = adRequesterDirectory(provider, logger);
    const res = await t.http().put('/admin/settings/active_directory').set(t.admin).send({
      server: ad.host,
      port: 636,
      use_tls: true,
      ca_cert_pem: readFileSync(ad.caCertPath, 'utf8'),
      bind_dn: ad.bindDn,
      bind_password: ad.bindPassword,
      base_dn: ad.seed.ou,
    });
    expect({ status: res.status, body: res.status === 200 ? null : res.body }).toEqual({ status: 200, body: null });
    for (const [name, group] of [
      ['AD quorum by name', 'AQ-Approvers'],
      ['AD quorum by DN', `CN=AQ-Approvers,${ou}`],
    ] as const) {
      const created = await t.http().post('/admin/asset-types').set(t.admin).send({ name, assignment_model: 'personal', requires_approval: true, approval: { quorum: 2, approver_group: group } });
      expect(created.status).toBe(201);
    }
  }, 300_000);
  afterAll(async () => {
    await provider?.close();
    await t?.close();
  });

  test('the enabled members, nested ones included, each get an approval; the disabled one and the requester do not', async () => {
    for (const type of ['AD quorum by name', 'AD quorum by DN']) {
      const id = await c.order(type, AQ_REQ.mail);
      expect((await c.rows(id)).map((r) => r.approver_email).sort()).toEqual([AQ_ONE.mail, AQ_TWO.mail]);
      expect((await c.audit(id, 'approval_approver_excluded')).map((a) => a.diff.after)).toEqual([{ approver: AQ_REQ.mail, rule: 'own_order' }]);
      expect((await c.decide(id, AQ_TWO.mail, 'approve')).body.order_status).toBe('pending_approval');
      const done = await c.decide(id, AQ_ONE.mail, 'approve');
      expect(done.body).toMatchObject({ order_status: 'processing', quorum: { approved: 2, required: 2, pending: 0 } });
    }
  });

  test('membership is read when the order is placed: a member added to the group takes part in the next order', async () => {
    await ldap((cl) => cl.modify(dnOf('AQ-Inner'), new Change({ operation: 'add', modification: new Attribute({ type: 'member', values: [dnOf(AQ_THREE.cn)] }) })));
    try {
      const id = await c.order('AD quorum by name', AQ_REQ.mail);
      expect((await c.rows(id)).map((r) => r.approver_email).sort()).toEqual([AQ_ONE.mail, AQ_THREE.mail, AQ_TWO.mail]);
    } finally {
      await seed();
    }
  });
});
