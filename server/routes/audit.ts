import type { RouteModule } from './route-module';
import type { AuditEntry } from '../api/gen/types.gen';
import { auditToCsv, queryAudit, type AuditRecord } from '../domain/audit/audit-query';
import { pageBody, pageOf } from '../domain/paging';

const toAuditEntry = (r: AuditRecord): AuditEntry => ({ ...r, at: r.at.toISOString() });

export const auditHandlers: RouteModule = ({ db }) => ({
  listAuditEntries: async ({ query }) => {
    const asked = pageOf(query);
    const page = await queryAudit(
      db,
      {
        entity: query.entity,
        entityId: query.entity_id,
        actor: query.actor,
        action: query.action,
        from: query.from ? new Date(query.from) : undefined,
        to: query.to ? new Date(query.to) : undefined,
      },
      asked,
    );
    if (query.format === 'csv') {
      return {
        status: 200,
        text: auditToCsv(page.items),
        contentType: 'text/csv; charset=utf-8',
        headers: { 'X-Total-Count': String(page.total), 'Content-Disposition': 'attachment; filename="audit.csv"' },
      };
    }
    return { status: 200, body: pageBody(page, toAuditEntry, asked) };
  },
});
