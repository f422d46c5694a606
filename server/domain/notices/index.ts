// Notices: the mails that tell people things (as opposed to asking them), queued where the change they report is
// made, a refused address never undoing that change; and the integration health alert, which the integration runtime
// calls from below this room. The decision, leaver and expiry notices live with their aggregates and queue here.
export { enqueueNotice } from './enqueue-notice';
export { HEALTH_ALERT_ACTOR, integrationHealthAlert } from './health-alert';
