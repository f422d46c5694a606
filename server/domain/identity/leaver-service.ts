import type { Database, JobQueue, Logger } from '../../../adapter';
import { supersedeApprovalsHook } from '../approvals/approvals';
import type { LeaverDeps } from './leaver';
import { leaverNoticeHook } from './leaver-notice';
import type { RequesterDirectory } from './requester-directory';

/**
 * The leaver flow as this service runs it: approvals the leaver was to give are superseded and re-routed (to their
 * manager in `directory`, else the fallback approver), the new ones announced on `base.queue`. Build it once per
 * process and hand it to every edge (HR, SCIM) and to the `leaver.effective` worker, so they all take people back
 * the same way. The leaver's manager is told what was taken back.
 */
export function createLeaverDeps(base: { db: Database; queue: JobQueue; logger: Logger }, directory: RequesterDirectory | undefined): LeaverDeps {
  return {
    db: base.db,
    queue: base.queue,
    logger: base.logger,
    approverHooks: [supersedeApprovalsHook(directory, base)],
    // Their manager is mailed what was revoked and cancelled (leaver-notice.ts).
    noticeHooks: [leaverNoticeHook(base, directory)],
  };
}
