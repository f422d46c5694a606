// Notifications: the durable outbox (mail now, Teams cards through the same rows), its templates, its worker, and
// the SMTP test. Other rooms queue with `enqueueMail` / `enqueueNotification` inside their own transaction.
export { enqueueMail, enqueueNotification, listOutbox, retryOutboxItem, retryDelaySeconds, OUTBOX_JOB_OPTIONS, OUTBOX_RETRY_DEFAULTS } from './outbox';
export type { NotificationActor, OutboxJob, OutboxRetryPolicy } from './outbox';
export { escapeHtml, isMailTemplate, MAIL_TEMPLATES, renderMail, renderSubject } from './templates';
export type { ApprovalMailData, LeaverNoticeOrder, MailTemplate, MailTemplateData, RenderContext, RenderedMail } from './templates';
export { createOutboxWorker, OUTBOX_SWEEP_CRON } from './worker';
export type { OutboxAttempt, OutboxWorker, OutboxWorkerDeps } from './worker';
export { DeliveryError } from './sender';
export type { OutboxSender } from './sender';
export { createMailSender, outboxMessageId } from './mail-sender';
export type { MailSender, MailSenderDeps } from './mail-sender';
export { mailProblem, sendSmtpTestMail } from './smtp-test';
export type { SmtpTestResult } from './smtp-test';
export type { OutboxChannel, OutboxFilter, OutboxItem, OutboxState } from './store';
// Teams: Adaptive Cards to incoming webhooks (global, or an asset type's own), through the same outbox.
export {
  ADAPTIVE_CARD_VERSION, approvalRequestCard, healthAlertCard, isTeamsTemplate, plainCardText, renderTeamsMessage, teamsMessage, TEAMS_TEMPLATES,
} from './teams-card';
export type { AdaptiveCard, CardElement, FactSet, OpenUrlAction, TeamsApprovalCardData, TeamsMessage, TeamsTemplate, TeamsTemplateData, TextBlock } from './teams-card';
export {
  assetTypesWithTeamsWebhook, checkTeamsWebhookUrl, enqueueTeamsApprovalCard, enqueueTeamsHealthAlert, resolveTeamsWebhookUrl, setAssetTypeTeamsWebhook,
} from './teams';
export type { TeamsDestination } from './teams';
export { createTeamsSender } from './teams-sender';
export type { TeamsSenderDeps } from './teams-sender';
