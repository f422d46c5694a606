import type { Queryable } from '../../adapter';
import type {
  GraphChangeNotification,
  GraphChangeNotificationCollection,
  HrLeaverPayload,
  NativeLeaverEvent,
  SuccessFactorsTerminationEvent,
  WorkdayTerminationEvent,
} from '../api/gen/types.gen';
import { invalidField } from '../errors';
import { digestsEqual, hashSecret } from '../domain/tokens/token-hash';
import { readSetting } from '../domain/settings/settings';
import type { LeaverEventInput, LeaverSource } from '../domain/identity/leaver';

/**
 * Payload adapters of the HR leaver webhook: each vendor's termination event becomes the input of the one
 * leaver flow. Pure functions, except the Graph clientState lookup.
 */

/** A leaver event found in a delivery, without the attribution the route adds. */
export type HrLeaverItem =
  | { kind: 'event'; input: Omit<LeaverEventInput, 'triggeredBy' | 'requestId'>; triggeredBy: string }
  | { kind: 'ignored'; source: LeaverSource; message: string };

const DAY_MS = 86_400_000;

/**
 * `YYYY-MM-DD` or an ISO date-time. A bare date is a whole UTC day: `endOfDay` says whether access ends when
 * that day ends (a last working day) or when it begins (a first day without employment).
 */
function parseWhen(value: string | undefined, path: string, endOfDay: boolean): Date | null {
  if (value === undefined) return null;
  const dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(value);
  const t = Date.parse(dateOnly ? `${value}T00:00:00Z` : value);
  if (Number.isNaN(t)) throw invalidField(path, 'is not a date (YYYY-MM-DD) or an ISO 8601 date-time');
  return new Date(dateOnly && endOfDay ? t + DAY_MS : t);
}

function str(v: unknown): string | null {
  return typeof v === 'string' && v.trim() ? v.trim() : null;
}

export function isGraphCollection(body: HrLeaverPayload): body is GraphChangeNotificationCollection {
  return Array.isArray((body as { value?: unknown }).value);
}
function isSuccessFactors(body: HrLeaverPayload): body is SuccessFactorsTerminationEvent {
  return typeof (body as { externalEventMeta?: unknown }).externalEventMeta === 'object';
}
function isWorkday(body: HrLeaverPayload): body is WorkdayTerminationEvent {
  return typeof (body as { Worker?: unknown }).Worker === 'object';
}

function fromNative(body: NativeLeaverEvent): HrLeaverItem[] {
  const label = body.source ?? 'native';
  return [
    {
      kind: 'event',
      triggeredBy: `hr:${label}`,
      input: {
        source: 'native',
        identity: { email: body.email, employeeId: body.employee_id ?? null },
        dedupeKey: body.event_id ? `native:${label}:${body.event_id}` : null,
        effectiveAt: parseWhen(body.effective_at, '/body/effective_at', false),
        reason: body.reason ?? null,
      },
    },
  ];
}

function fromWorkday(body: WorkdayTerminationEvent): HrLeaverItem[] {
  if (!/termin/i.test(body.Event_Type)) {
    return [{ kind: 'ignored', source: 'workday', message: `Workday event type '${body.Event_Type}' is not a termination` }];
  }
  const w = body.Worker;
  const identity = { email: str(w.Email_Address), userName: str(w.User_Name), employeeId: str(w.Employee_ID) };
  if (!identity.email && !identity.userName && !identity.employeeId) {
    throw invalidField('/body/Worker', 'names no worker: give Employee_ID, Email_Address or User_Name');
  }
  return [
    {
      kind: 'event',
      triggeredBy: 'hr:workday',
      input: {
        source: 'workday',
        identity,
        dedupeKey: body.Event_ID ? `workday:${body.Event_ID}` : null,
        // Termination_Date is the last day of work: access ends when it ends.
        effectiveAt: parseWhen(body.Termination_Date, '/body/Termination_Date', true),
        reason: body.Primary_Reason ?? null,
      },
    },
  ];
}

function fromSuccessFactors(body: SuccessFactorsTerminationEvent): HrLeaverItem[] {
  const meta = body.externalEventMeta;
  if (!/termination/i.test(meta.type)) {
    return [{ kind: 'ignored', source: 'successfactors', message: `SuccessFactors event type '${meta.type}' is not a termination` }];
  }
  return body.events.map((ev, i): HrLeaverItem => {
    if (!/^(EmpJob|EmpEmployment)$/.test(ev.entityType)) {
      return { kind: 'ignored', source: 'successfactors', message: `SuccessFactors entity '${ev.entityType}' is not EmpJob` };
    }
    const kv = new Map<string, string>();
    for (const p of [...(ev.entityKeys ?? []), ...(ev.params ?? [])]) if (p.value.trim()) kv.set(p.name.toLowerCase(), p.value.trim());
    const identity = {
      email: kv.get('email') ?? kv.get('emailaddress') ?? null,
      userName: kv.get('username') ?? null,
      employeeId: kv.get('personidexternal') ?? kv.get('userid') ?? null,
      externalId: kv.get('userid') ?? null,
    };
    if (!identity.email && !identity.userName && !identity.employeeId) {
      throw invalidField(`/body/events/${i}`, 'names no employee: give userId, personIdExternal or email in entityKeys or params');
    }
    const key = ev.eventId ?? (meta.externalEventId ? `${meta.externalEventId}:${i}` : null);
    return {
      kind: 'event',
      triggeredBy: 'hr:successfactors',
      input: {
        source: 'successfactors',
        identity,
        dedupeKey: key ? `successfactors:${key}` : null,
        // effectiveStartDate is the first day of the terminated EmpJob record: access ends when it begins.
        effectiveAt: parseWhen(ev.effectiveStartDate, `/body/events/${i}/effectiveStartDate`, false),
        reason: kv.get('eventreason') ?? null,
      },
    };
  });
}

function fromGraphNotification(n: GraphChangeNotification, now: Date): HrLeaverItem {
  const d = n.resourceData;
  const leaving = n.changeType === 'deleted' || (n.changeType === 'updated' && d.accountEnabled === false);
  if (!leaving) {
    return { kind: 'ignored', source: 'graph', message: `Graph ${n.changeType} notification for ${n.resource} is not a leaver signal` };
  }
  const upn = str(d.userPrincipalName);
  return {
    kind: 'event',
    triggeredBy: 'hr:graph',
    input: {
      source: 'graph',
      identity: { email: str(d.mail) ?? (upn?.includes('@') ? upn : null), userName: upn, externalId: d.id },
      // Graph notifications carry no id of their own and are retried for hours: one per user, change and day.
      dedupeKey: `graph:${n.tenantId ?? ''}:${d.id}:${n.changeType}:${now.toISOString().slice(0, 10)}`,
      effectiveAt: null,
      reason: n.changeType === 'deleted' ? 'user deleted in Microsoft Entra ID' : 'account disabled in Microsoft Entra ID',
    },
  };
}

/**
 * Checks every notification's `clientState` against the setting `hr.graph_client_state` in constant time.
 * False when any differs, or when no value is configured.
 */
export async function graphClientStateMatches(q: Queryable, notifications: readonly { clientState?: unknown }[]): Promise<boolean> {
  if (notifications.length === 0) return false;
  const expected = await readSetting(q, 'hr', 'graph_client_state');
  if (typeof expected !== 'string' || expected.length === 0) return false;
  const want = hashSecret(expected);
  return notifications.every((n) => typeof n.clientState === 'string' && digestsEqual(hashSecret(n.clientState), want));
}

export function graphItems(body: GraphChangeNotificationCollection, now = new Date()): HrLeaverItem[] {
  return body.value.map((n) => fromGraphNotification(n, now));
}

/** The leaver events of one delivery to `POST /hr/leaver`, by the body's shape. */
export function hrLeaverItems(body: HrLeaverPayload, now = new Date()): HrLeaverItem[] {
  if (isGraphCollection(body)) return graphItems(body, now);
  if (isSuccessFactors(body)) return fromSuccessFactors(body);
  if (isWorkday(body)) return fromWorkday(body);
  return fromNative(body as NativeLeaverEvent);
}
