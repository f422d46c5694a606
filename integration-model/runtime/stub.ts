import { buildEnvelope, type IntegrationCallResult } from '../../adapter';
import { responseExample } from '../tasks';
import type { IntegrationModel, ModelOperation } from '../types';
import type { IntegrationRecord } from './integrations';

/**
 * The envelope stub mode answers: the model's example for the first 2xx that has one, or a string when none.
 * Every invocation of a stub-mode integration (API or runbook step) answers this way, without any request.
 */
export function stubResult(
  model: IntegrationModel,
  op: ModelOperation,
  integration: Pick<IntegrationRecord, 'config'>,
  path: string,
  query: Record<string, unknown> | undefined,
): IntegrationCallResult {
  const example = responseExample(model, op);
  if (!example) return `stub mode: operation '${op.operationId}' documents no 2xx response to answer with`;
  const json = example.contentType === undefined || /[/+]json\b/i.test(example.contentType);
  const raw = example.example === undefined ? '' : !json && typeof example.example === 'string' ? example.example : JSON.stringify(example.example);
  return buildEnvelope({
    method: op.method,
    url: stubUrl(integration, path, query),
    status: example.status,
    statusText: '',
    headers: { ...(example.contentType ? { 'content-type': example.contentType } : {}), 'x-provisio-stub': 'true' },
    raw,
  });
}

/** The URL the call would have gone to; built from the (secret-free) stored server settings. */
function stubUrl(integration: Pick<IntegrationRecord, 'config'>, path: string, query: Record<string, unknown> | undefined): string {
  const s = (integration.config['server'] ?? {}) as { protocol?: string; host?: string; port?: number; base_path?: string };
  const base = `${s.protocol ?? 'http'}://${s.host ?? ''}${s.port !== undefined ? `:${s.port}` : ''}${(s.base_path ?? '').replace(/\/$/, '')}`;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) {
    for (const x of Array.isArray(v) ? v : [v]) params.append(k, String(x));
  }
  const qs = params.toString();
  return `${base}${path}${qs ? `?${qs}` : ''}`;
}
