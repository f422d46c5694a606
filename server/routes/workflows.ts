import {
  exportWorkflow,
  importItentialWorkflow,
  TASK_KIND_SPECS,
  WorkflowValidationError,
  type ItentialImportResult,
} from '../../workflows';
import {
  WorkflowNotFoundError,
  type RunRecord,
  type RunStatus,
  type StepRecord,
  type StoredWorkflow,
  type WorkflowEngine,
} from '../../workflows';
import type { RouteModule } from './route-module';
import { isRecord, writeAudit } from '../../adapter';
import { orderIdsOfRuns, runIdsOfOrder } from '../domain/orders/order-runs';
import { CodedError, ErrorCode, type FieldError } from '../errors';
import { workflowIssueErrors } from '../http/problem';
import { adminActorOf } from './asset-types';

function storedView(w: StoredWorkflow) {
  return { name: w.name, version: w.version, document: w.document as unknown as Record<string, unknown>, created_at: w.createdAt, created_by: w.createdBy };
}

function runView(r: RunRecord, orderId: number | null) {
  return {
    id: r.id,
    workflow: r.workflow,
    version: r.version,
    status: r.status,
    inputs: r.inputs,
    variables: r.variables as Record<string, unknown>,
    lock_key: r.lockKey,
    error: r.error ? { code: r.error.code, message: r.error.message, step_id: r.error.stepId } : null,
    created_by: r.createdBy,
    created_at: r.createdAt,
    started_at: r.startedAt,
    finished_at: r.finishedAt,
    parent_run_id: r.parentRunId,
    rerun_of: r.rerunOf,
    order_id: orderId,
  };
}

function stepView(s: StepRecord) {
  return {
    id: s.id,
    step_id: s.stepId,
    kind: s.kind,
    attempt: s.attempt,
    status: s.status,
    input: s.input,
    output: s.output,
    error: s.error,
    started_at: s.startedAt,
    finished_at: s.finishedAt,
    duration_ms: s.durationMs,
    idempotency_key: s.idempotencyKey,
  };
}

/**
 * Whether an uploaded file is an Itential workflow rather than ours: Itential tasks carry `name` with `app` or
 * `variables`; ours carry `kind` (or the document is a `steps` list).
 */
function isItentialDocument(doc: Record<string, unknown>): boolean {
  if (Array.isArray(doc['steps']) || !isRecord(doc['tasks'])) return false;
  const tasks = Object.entries(doc['tasks']).filter(([id]) => id !== 'workflow_start' && id !== 'workflow_end');
  if (tasks.some(([, t]) => isRecord(t) && typeof t['kind'] === 'string')) return false;
  return tasks.some(([, t]) => isRecord(t) && ('app' in t || 'variables' in t || 'canvasName' in t));
}

/** A file name from a workflow name: `SaaS seat - provision` -> `saas-seat-provision.json`. */
const fileNameOf = (name: string): string => `${name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'workflow'}.json`;

/** `/admin/workflows` and `/admin/runs`: workflow documents, the canvas palette, and runs. */
export const workflowHandlers: RouteModule = ({ db, workflowEngine, integrations }) => {
  const engine = (): WorkflowEngine => {
    if (!workflowEngine) throw new CodedError(ErrorCode.NOT_IMPLEMENTED, 'this process runs no workflow engine');
    return workflowEngine;
  };
  const withOrder = async (runs: RunRecord[]) => {
    const orders = await orderIdsOfRuns(db, runs.map((r) => r.id));
    return runs.map((r) => runView(r, orders.get(r.id) ?? null));
  };

  return {
    listWorkflows: async () => {
      const items = (await engine().listWorkflows()).map((w) => ({ name: w.name, latest_version: w.latestVersion, description: w.description, updated_at: w.updatedAt }));
      return { status: 200, body: { items } };
    },

    saveWorkflow: async (input) => {
      const actor = adminActorOf(input);
      const stored = await engine()
        .saveWorkflow(input.body, actor.triggeredBy, {}, (tx, s) =>
          writeAudit(tx, { entity: 'workflow', entityId: s.name, action: 'save', after: { name: s.name, version: s.version }, ...actor }),
        );
      return { status: 201, body: storedView(stored) };
    },

    listWorkflowTasks: async () => {
      const builtin = Object.entries(TASK_KIND_SPECS).map(([kind, spec]) => ({
        name: kind,
        source: 'builtin' as const,
        kind,
        description: spec.description,
        inputSchema: spec.inputSchema as Record<string, unknown>,
        outputSchema: spec.outputSchema as Record<string, unknown>,
      }));
      const operations = (await integrations.listTasks()).map((t) => ({
        name: t.name,
        source: 'integration' as const,
        kind: 'integration',
        description: t.summary ?? `${t.method} ${t.path}`,
        integration: t.name.slice(0, t.name.length - t.operationId.length - 1),
        operationId: t.operationId,
        method: t.method,
        path: t.path,
        inputSchema: t.inputSchema as Record<string, unknown>,
        outputSchema: t.outputSchema as Record<string, unknown>,
      }));
      return { status: 200, body: { items: [...builtin, ...operations] } };
    },

    importWorkflow: async (input) => {
      const actor = adminActorOf(input);
      const body = input.body as Record<string, unknown>;
      let format: 'provisio' | 'itential' = 'provisio';
      let converted: Pick<ItentialImportResult, 'unmapped' | 'warnings'> & { document: Record<string, unknown> } = { document: body, unmapped: [], warnings: [] };
      if (isItentialDocument(body)) {
        format = 'itential';
        const r = importItentialWorkflow(body);
        converted = { document: r.document as unknown as Record<string, unknown>, unmapped: r.unmapped, warnings: r.warnings };
      }
      let saved: StoredWorkflow | null = null;
      let issues: FieldError[] = [];
      try {
        saved = await engine().saveWorkflow(converted.document, actor.triggeredBy, {}, (tx, s) =>
          writeAudit(tx, { entity: 'workflow', entityId: s.name, action: 'import', after: { name: s.name, version: s.version, format, unmapped: converted.unmapped.length }, ...actor }),
        );
      } catch (e) {
        if (!(e instanceof WorkflowValidationError)) throw e;
        issues = workflowIssueErrors(e.issues);
      }
      return {
        status: 200,
        body: {
          format,
          document: converted.document,
          unmapped: converted.unmapped.map((u) => ({ task_id: u.taskId, name: u.name, app: u.app, type: u.type, reason: u.reason })),
          warnings: converted.warnings.map((w) => ({ task_id: w.taskId, message: w.message })),
          saved: saved ? storedView(saved) : null,
          issues,
        },
      };
    },

    getWorkflow: async ({ path, query }) => {
      const w = await engine().getWorkflow(path.name, query.version);
      return { status: 200, body: storedView(w) };
    },

    listWorkflowVersions: async ({ path }) => {
      const versions = await engine().listVersions(path.name);
      if (versions.length === 0) throw new WorkflowNotFoundError(path.name, undefined);
      return { status: 200, body: { name: path.name, versions } };
    },

    exportWorkflow: async ({ path, query }) => {
      const w = await engine().getWorkflow(path.name, query.version);
      return {
        status: 200,
        text: exportWorkflow(w.document),
        contentType: 'application/json',
        headers: { 'Content-Disposition': `attachment; filename="${fileNameOf(w.name)}"` },
      };
    },

    setWorkflowConcurrency: async (input) => {
      const actor = adminActorOf(input);
      const e = engine();
      const name = input.path.name;
      if ((await e.listVersions(name)).length === 0) throw new WorkflowNotFoundError(name, undefined);
      const before = await e.getConcurrencyLimit(name);
      const limit = input.body.max_active === null ? null : { maxActive: input.body.max_active, onLimit: input.body.on_limit ?? 'queue' };
      await e.setConcurrencyLimit(name, limit, (tx) =>
        writeAudit(tx, {
          entity: 'workflow',
          entityId: name,
          action: 'concurrency',
          before: before ? { max_active: before.maxActive, on_limit: before.onLimit } : null,
          after: limit ? { max_active: limit.maxActive, on_limit: limit.onLimit } : null,
          ...actor,
        }),
      );
      return { status: 200, body: limit ? { max_active: limit.maxActive, on_limit: limit.onLimit } : { max_active: null } };
    },

    listRuns: async ({ query }) => {
      const limit = query.limit ?? 100;
      let runs: RunRecord[];
      if (query.order_id !== undefined) {
        const ids = await runIdsOfOrder(db, query.order_id);
        runs = (await Promise.all(ids.map((id) => engine().getRun(id))))
          .filter((r) => (query.workflow === undefined || r.workflow === query.workflow) && (query.status === undefined || r.status === query.status))
          .slice(0, limit)
          .map(({ steps: _s, ...r }) => r);
      } else {
        const filter: { workflow?: string; status?: RunStatus; limit: number } = { limit };
        if (query.workflow !== undefined) filter.workflow = query.workflow;
        if (query.status !== undefined) filter.status = query.status;
        runs = await engine().listRuns(filter);
      }
      return { status: 200, body: { items: await withOrder(runs) } };
    },

    getRun: async ({ path }) => {
      const run = await engine().getRun(path.id);
      const [view] = await withOrder([run]);
      return { status: 200, body: { ...view!, steps: run.steps.map(stepView) } };
    },

    cancelRun: async (input) => {
      const actor = adminActorOf(input);
      const run = await engine()
        .cancelRun(input.path.id, (tx, r) => writeAudit(tx, { entity: 'workflow_run', entityId: r.id, action: 'cancel', after: { status: r.status }, ...actor }));
      return { status: 200, body: (await withOrder([run]))[0]! };
    },

    rerunRun: async (input) => {
      const actor = adminActorOf(input);
      const run = await engine()
        .rerunRun(input.path.id, { from: input.body.from, createdBy: actor.triggeredBy }, (tx, r) =>
          writeAudit(tx, { entity: 'workflow_run', entityId: input.path.id, action: 'rerun', after: { rerun_id: r.id, from: input.body.from }, ...actor }),
        );
      return { status: 201, body: (await withOrder([run]))[0]! };
    },

    resumeRunStep: async (input) => {
      const actor = adminActorOf(input);
      const data = isRecord(input.body) ? input.body['data'] : undefined;
      const run = await engine()
        .resumeRun(input.path.id, input.path.stepId, data, (tx, r) =>
          writeAudit(tx, { entity: 'workflow_run', entityId: r.id, action: 'resume', after: { step_id: input.path.stepId }, ...actor }),
        );
      return { status: 200, body: (await withOrder([run]))[0]! };
    },
  };
};
