import type { Queryable } from '../../adapter';
import { invalidValue } from './errors';
import { mergeMember, type Member, type MembershipChange } from './members';

// The SQL of group membership: a change set planned by members.ts written with a few set-based statements, each
// over at most ROWS_PER_STATEMENT rows, whatever its size; and the stored members read page by page for the
// operations that select members by filter.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Rows one statement reads or writes. On PGlite the database runs on this thread, so a statement over 10,000
 * rows would itself stall the event loop for a few hundred ms; in statements of 1,000 rows with a yield between
 * them no stall exceeds ~30 ms there, and on PostgreSQL the ten round trips for the largest request cost ~1 ms.
 */
const ROWS_PER_STATEMENT = 1000;

/** Lets timers and I/O of other requests run between two statements of a long write. */
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** `fn` over `list` in parts of ROWS_PER_STATEMENT; a list of several parts yields after each one. */
async function inChunks<T>(list: T[], fn: (part: T[]) => Promise<void>): Promise<void> {
  for (let i = 0; i < list.length; i += ROWS_PER_STATEMENT) {
    await fn(list.slice(i, i + ROWS_PER_STATEMENT));
    if (list.length > ROWS_PER_STATEMENT) await yieldToEventLoop();
  }
}

type MemberRow = { value: string; display: string | null; type: string | null };
const fromRow = (r: MemberRow): Member => ({ value: r.value, ...(r.display !== null ? { display: r.display } : {}), ...(r.type !== null ? { type: r.type } : {}) });

/** The stored members of a group, page by page (only operations that select members by filter read them). */
export async function loadMembers(q: Queryable, groupId: string): Promise<Member[]> {
  const out: Member[] = [];
  for (let after = ''; ;) {
    const { rows } = await q.query<MemberRow>(
      `SELECT value, display, type FROM scim_group_members WHERE group_id = $1 AND value > $2 ORDER BY value LIMIT $3`,
      [groupId, after, ROWS_PER_STATEMENT],
    );
    out.push(...rows.map(fromRow));
    if (rows.length < ROWS_PER_STATEMENT) return out;
    after = rows[rows.length - 1]!.value;
    await yieldToEventLoop();
  }
}

/**
 * 400 invalidValue unless every value is the id of an existing User. The users found are locked FOR KEY SHARE
 * until the transaction ends, so a concurrent DELETE of one of them (which locks it FOR UPDATE and then removes
 * its memberships) waits for this write and cannot leave a member behind.
 */
export async function checkUsersExist(q: Queryable, values: string[]): Promise<void> {
  const found = new Set<string>();
  await inChunks(values.filter((v) => UUID.test(v)), async (ids) => {
    const { rows } = await q.query<{ id: string }>(`SELECT id::text AS id FROM scim_users WHERE id = ANY($1::uuid[]) FOR KEY SHARE`, [ids]);
    for (const r of rows) found.add(r.id);
  });
  if (found.size === values.length) return;
  const missing = values.filter((v) => !found.has(v));
  const first = missing[0]!;
  const more = missing.length > 1 ? ` (and ${missing.length - 1} more)` : '';
  if (UUID.test(first)) {
    const { rows: groups } = await q.query(`SELECT 1 FROM scim_groups WHERE id = $1::uuid`, [first]);
    if (groups.length) throw invalidValue(`member ${JSON.stringify(first)} is a Group; groups cannot be members of groups here${more}`);
  }
  throw invalidValue(`member ${JSON.stringify(first)} is not the id of an existing User${more}`);
}

export interface MembershipWrite {
  added: string[];
  removed: string[];
}

/**
 * Writes a change set: which of the added values are stored already, whether the new ones are users, the
 * delete, the insert, and the update of changed display/type, each a set-based statement (per
 * ROWS_PER_STATEMENT rows). Only rows that change are touched, so re-sending a group's whole list rewrites
 * nothing, and adding one member to a large group reads nothing of it. The caller holds the group's row lock.
 */
export async function writeMembership(q: Queryable, groupId: string, change: MembershipChange): Promise<MembershipWrite> {
  if (change.empty) return { added: [], removed: [] };
  const adds = [...change.adds.values()];
  const addValues = adds.map((m) => m.value);
  // the stored members among those added (all of them, when an operation has read them already)
  const stored = new Map<string, Member>();
  if (change.stored) {
    for (const v of addValues) {
      const m = change.stored.get(v);
      if (m) stored.set(v, m);
    }
  } else {
    await inChunks(addValues, async (values) => {
      const { rows } = await q.query<MemberRow>(
        `SELECT value, display, type FROM scim_group_members WHERE group_id = $1 AND value = ANY($2::text[])`,
        [groupId, values],
      );
      for (const r of rows) stored.set(r.value, fromRow(r));
    });
  }
  // removed before the adds are written: a member removed and added again in one PATCH comes back fresh
  for (const v of change.removes) stored.delete(v);
  const fresh = adds.filter((m) => !stored.has(m.value));
  await checkUsersExist(q, fresh.map((m) => m.value));

  const removed: string[] = [];
  const deleteValues = async (values: string[]) => {
    await inChunks(values, async (part) => {
      const { rows } = await q.query<{ value: string }>(
        `DELETE FROM scim_group_members WHERE group_id = $1 AND value = ANY($2::text[]) RETURNING value`,
        [groupId, part],
      );
      for (const r of rows) removed.push(r.value);
    });
  };
  if (change.stored) {
    await deleteValues([...change.stored.keys()].filter((v) => !change.adds.has(v)));
  } else if (change.cleared) {
    // every stored member not in the new list, in pages along the primary key so no statement grows with the
    // group (the page's last value comes from SQL: JavaScript orders strings by code unit, the index by collation)
    for (let after = ''; ;) {
      const { rows } = await q.query<{ value: string; last: string }>(
        `WITH page AS (
           SELECT value FROM scim_group_members
            WHERE group_id = $1 AND value > $2 AND NOT (value = ANY($3::text[])) ORDER BY value LIMIT $4),
         gone AS (DELETE FROM scim_group_members m USING page WHERE m.group_id = $1 AND m.value = page.value RETURNING m.value)
         SELECT gone.value, (SELECT max(value) FROM page) AS last FROM gone`,
        [groupId, after, addValues, ROWS_PER_STATEMENT],
      );
      for (const r of rows) removed.push(r.value);
      if (rows.length < ROWS_PER_STATEMENT) break;
      after = rows[0]!.last;
      await yieldToEventLoop();
    }
  } else {
    await deleteValues([...change.removes]);
  }
  const columns = (list: Member[]) => [list.map((m) => m.value), list.map((m) => m.display ?? null), list.map((m) => m.type ?? null)];
  await inChunks(fresh, async (part) => {
    await q.query(
      `INSERT INTO scim_group_members (group_id, value, display, type)
       SELECT $1, x.v, x.d, x.t FROM unnest($2::text[], $3::text[], $4::text[]) AS x(v, d, t)`,
      [groupId, ...columns(part)],
    );
  });
  // a complete list (PUT, replace, or read and edited) sets display/type as it is; an add merges onto the stored member
  const changed: Member[] = [];
  for (const m of adds) {
    const cur = stored.get(m.value);
    if (!cur) continue;
    const next = change.complete ? m : mergeMember(cur, m);
    if (next.display !== cur.display || next.type !== cur.type) changed.push(next);
  }
  await inChunks(changed, async (part) => {
    await q.query(
      `UPDATE scim_group_members m SET display = x.d, type = x.t
         FROM unnest($2::text[], $3::text[], $4::text[]) AS x(v, d, t)
        WHERE m.group_id = $1 AND m.value = x.v`,
      [groupId, ...columns(part)],
    );
  });
  return { added: fresh.map((m) => m.value), removed };
}
