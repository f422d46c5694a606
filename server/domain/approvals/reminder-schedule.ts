import { QueueName, type JobQueue, type Queryable } from '../../../adapter';
import { readSettings } from '../settings/settings';
import { setClockStep, type ClockStep } from './reminder-store';
import type { ApprovalRow } from './store';

/*
 * When an approval's clock steps fall due (reminders.ts runs them). Kept apart from the steps themselves, which route
 * and announce approvals, so that announcing an approval (announce.ts) can start its clock without depending on them.
 */

/** The `reason` of an approval an escalation created: its clock is the expiry alone. */
export const ESCALATED_REASON = 'escalated';

/** The delays while the `approvals` settings leave them unset, in hours. */
export const APPROVAL_CLOCK_DEFAULTS = { remind_after_hours: 24, escalate_after_hours: 24, expire_after_hours: 72 } as const;
export type ApprovalClock = { -readonly [K in keyof typeof APPROVAL_CLOCK_DEFAULTS]: number };

/** The payload of an `approval.timer` job. */
export interface ApprovalTimerJob {
  approvalId: number;
  /** The step the job was sent for; it acts only while the approval is pending at this step. */
  step: ClockStep;
}

/** The delays now in force (the `approvals` settings, defaults for the keys left unset). */
export async function readApprovalClock(q: Queryable): Promise<ApprovalClock> {
  const s = await readSettings(q, 'approvals');
  const hours = (k: keyof ApprovalClock): number => {
    const v = s[k];
    return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : APPROVAL_CLOCK_DEFAULTS[k];
  };
  return { remind_after_hours: hours('remind_after_hours'), escalate_after_hours: hours('escalate_after_hours'), expire_after_hours: hours('expire_after_hours') };
}

export const hoursAfter = (from: Date, hours: number): Date => new Date(from.getTime() + hours * 3_600_000);

/** Moves the approval's clock to `step` and sends the job that runs it at `at`, in the caller's transaction. */
export async function scheduleClockStep(tx: Queryable, queue: JobQueue, approvalId: number, step: ClockStep, at: Date): Promise<void> {
  await setClockStep(tx, approvalId, step);
  await sendClockJob(tx, queue, approvalId, step, at);
}

async function sendClockJob(tx: Queryable, queue: JobQueue, approvalId: number, step: ClockStep, at: Date): Promise<void> {
  const job: ApprovalTimerJob = { approvalId, step };
  await queue.send(tx, QueueName.APPROVAL_TIMER, job, { startAfter: at });
}

/**
 * Starts a new approval's clock in the caller's (its creation's) transaction: its reminder is due
 * `remind_after_hours` after its `created_at`; an escalated approval (reason {@link ESCALATED_REASON}) goes straight
 * to its expiry, `expire_after_hours` after its creation. Called by `announceApproval` for every approval created.
 * The delay is the one in force now: a settings change applies to approvals scheduled after it.
 */
export async function scheduleApprovalReminders(tx: Queryable, queue: JobQueue, approval: Pick<ApprovalRow, 'id' | 'reason' | 'created_at'>): Promise<void> {
  const clock = await readApprovalClock(tx);
  const created = new Date(approval.created_at);
  if (approval.reason === ESCALATED_REASON) {
    await scheduleClockStep(tx, queue, approval.id, 'expire', hoursAfter(created, clock.expire_after_hours));
  } else {
    // A new row's clock is at `remind` already (the column's default).
    await sendClockJob(tx, queue, approval.id, 'remind', hoursAfter(created, clock.remind_after_hours));
  }
}
