import { createLogger, QueueName } from '../../adapter';
import { SCIM_LOG_RETENTION_DEFAULT_DAYS } from '../../server/domain/settings/settings';
import { purgeScimRequestLog, registerScimLogPurge, SCIM_LOG_PURGE_TRIGGER } from '../../server/scim/log';
import { createTestApp, type TestApp } from '../support/app';

describe('SCIM request log retention', () => {
  let t: TestApp;
  const DAY = 86_400_000;
  const now = new Date('2026-11-24T12:00:00Z');

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t.close();
  });
  beforeEach(async () => {
    await t.db.query('DELETE FROM scim_request_log');
  });

  /** One log entry `daysOld` days before `now`; returns its id. */
  const entry = async (daysOld: number, at = now) =>
    Number(
      (
        await t.db.query<{ id: number }>(
          `INSERT INTO scim_request_log (method, path, status, at) VALUES ('GET', '/scim/v2/Users', 200, $1) RETURNING id`,
          [new Date(at.getTime() - daysOld * DAY)],
        )
      ).rows[0]!.id,
    );
  const kept = async () => (await t.db.query<{ id: number }>('SELECT id FROM scim_request_log ORDER BY id')).rows.map((r) => Number(r.id));
  const setRetention = async (days: number | null) => {
    const res = await t.http().put('/admin/settings/scim').set(t.admin).send({ request_log_retention_days: days });
    expect(res.status).toBe(200);
  };

  test(`unset, entries older than ${SCIM_LOG_RETENTION_DEFAULT_DAYS} days are deleted, with one audit row`, async () => {
    const old = await entry(SCIM_LOG_RETENTION_DEFAULT_DAYS + 1);
    const recent = await entry(SCIM_LOG_RETENTION_DEFAULT_DAYS - 1);
    const { deleted, cutoff } = await purgeScimRequestLog(t.db, now);
    expect(deleted).toBe(1);
    expect(cutoff?.toISOString()).toBe(new Date(now.getTime() - SCIM_LOG_RETENTION_DEFAULT_DAYS * DAY).toISOString());
    expect(await kept()).toEqual([recent]);
    expect(await kept()).not.toContain(old);
    const audit = await t.db.query<{ triggered_by: string; diff: { after: Record<string, unknown> } }>(
      `SELECT triggered_by, diff FROM audit_log WHERE entity = 'scim_request_log' AND action = 'purge' ORDER BY id DESC LIMIT 1`,
    );
    expect(audit.rows[0]).toMatchObject({ triggered_by: SCIM_LOG_PURGE_TRIGGER, diff: { after: { deleted: 1, retention_days: SCIM_LOG_RETENTION_DEFAULT_DAYS } } });
  });

  test('the setting shortens the retention; 0 keeps everything; a negative value is a 422', async () => {
    const ten = await entry(10);
    const two = await entry(2);
    await setRetention(0);
    expect((await purgeScimRequestLog(t.db, now)).deleted).toBe(0);
    expect(await kept()).toEqual([ten, two]);
    await setRetention(7);
    expect((await purgeScimRequestLog(t.db, now)).deleted).toBe(1);
    expect(await kept()).toEqual([two]);
    const bad = await t.http().put('/admin/settings/scim').set(t.admin).send({ request_log_retention_days: -1 });
    expect(bad.status).toBe(422);
    await setRetention(null);
  });

  test('registerScimLogPurge schedules the daily cron once and works its jobs', async () => {
    const logger = createLogger({ silent: true });
    await registerScimLogPurge(t.queue, t.db, logger);
    await registerScimLogPurge(t.queue, t.db, logger);
    const mine = (await t.queue.getSchedules()).filter((s) => s.name === QueueName.SCIM_LOG_PURGE);
    expect(mine).toEqual([expect.objectContaining({ cron: '47 3 * * *', tz: 'UTC' })]);
    const old = await entry(SCIM_LOG_RETENTION_DEFAULT_DAYS + 5, new Date());
    await t.queue.send(t.db, QueueName.SCIM_LOG_PURGE, {});
    const deadline = Date.now() + 15_000;
    while ((await kept()).includes(old) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(await kept()).not.toContain(old);
  });
});
