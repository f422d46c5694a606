import type { ConsumerAttribute, GraphDirectorySettings, Queryable } from '../../adapter';
import { ConfigError } from '../config';
import { readSettings } from '../domain/settings/settings';

const PROPERTY_KEYS: Record<ConsumerAttribute, string> = {
  department: 'department_property',
  cost_center: 'cost_center_property',
  company: 'company_property',
  employee_id: 'employee_id_property',
  title: 'title_property',
};

/** The `entra_id` section's connection to Graph (secret included: for the service's own use). */
export interface EntraSettings {
  /** True when Entra ID is the directory instead of `active_directory`. */
  useAsDirectory: boolean;
  /** Undefined while tenant, client id or secret is missing. */
  graph: GraphDirectorySettings | undefined;
  /** The public URL of POST /hr/leaver/graph, when the service is to keep a Graph subscription alive. */
  notificationUrl: string | undefined;
}

/** Reads the `entra_id` settings section. */
export async function readEntraSettings(q: Queryable): Promise<EntraSettings> {
  const stored = await readSettings(q, 'entra_id');
  const text = (k: string): string | undefined => {
    const v = stored[k];
    return typeof v === 'string' && v !== '' ? v : undefined;
  };
  const tenantId = text('tenant_id');
  const clientId = text('client_id');
  const clientSecret = text('client_secret');
  let graph: GraphDirectorySettings | undefined;
  if (tenantId && clientId && clientSecret) {
    graph = { tenantId, clientId, clientSecret };
    const authorityHost = text('authority_host');
    const graphBaseUrl = text('graph_base_url');
    const ca = text('ca_cert_pem');
    if (authorityHost) graph.authorityHost = authorityHost;
    if (graphBaseUrl) graph.graphBaseUrl = graphBaseUrl;
    if (ca) graph.caCertPem = ca;
    const consumer: Partial<Record<ConsumerAttribute, string>> = {};
    for (const [attr, key] of Object.entries(PROPERTY_KEYS) as [ConsumerAttribute, string][]) {
      const v = text(key);
      if (v) consumer[attr] = v;
    }
    if (Object.keys(consumer).length > 0) graph.consumerAttributes = consumer;
  }
  return { useAsDirectory: stored['use_as_directory'] === true, graph, notificationUrl: text('subscription_notification_url') };
}

/**
 * The Graph directory settings when Entra ID is chosen as the directory; undefined when it is not chosen.
 * @throws ConfigError when it is chosen but tenant_id, client_id or client_secret is missing.
 */
export async function readEntraDirectorySettings(q: Queryable): Promise<GraphDirectorySettings | undefined> {
  const s = await readEntraSettings(q);
  if (!s.useAsDirectory) return undefined;
  if (!s.graph) throw new ConfigError('Entra ID is chosen as the directory (entra_id.use_as_directory) but tenant_id, client_id or client_secret is not set');
  return s.graph;
}
