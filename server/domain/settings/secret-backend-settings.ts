/**
 * The `secret_backend` settings section: how references (`vault://…`, `conjur://…`, `azurekv://…`, `awssm://…`,
 * `ccp://…`) held by other secrets are resolved, one group of keys per backend (adapter/secrets/backends), the
 * resolver's cache lifetimes, and where `POST /admin/secrets/migrate` pushes plaintext values.
 *
 * This section's own secrets (tokens, API keys, client secrets) cannot be references: a backend's credentials
 * cannot come from a backend (settings.ts refuses them with 422).
 */
import { X509Certificate } from 'node:crypto';
import { SECRET_SCHEMES, type FieldError } from '../../../adapter';

const url = { type: 'string', minLength: 8, maxLength: 2048, pattern: '^https?://[^\\s]+$' };
const caPem = (backend: string) => ({
  type: 'string',
  minLength: 1,
  maxLength: 65536,
  pattern: '-----BEGIN CERTIFICATE-----',
  description: `PEM of the CA(s) that issued the ${backend} server certificate; default: the system trust store. Certificates are always verified.`,
});
const name = (max: number) => ({ type: 'string', minLength: 1, maxLength: max, pattern: '^[^\\s\\u0000-\\u001f\\u007f]+$' });
const secret = { type: 'string', minLength: 1, maxLength: 8192, writeOnly: true };

/** The keys each backend reads; C's AWS and CCP keys join them. */
export const SECRET_BACKEND_KEYS = {
  // HashiCorp Vault (KV v2).
  vault_url: { ...url, description: 'Vault address, e.g. https://vault.example.com:8200.' },
  vault_namespace: { ...name(256), description: 'Vault Enterprise namespace, sent as X-Vault-Namespace. Unset: none.' },
  vault_auth: { type: 'string', enum: ['token', 'approle', 'kubernetes'], description: 'How to authenticate to Vault. Unset: token.' },
  vault_token: { ...secret, description: 'Static Vault token (vault_auth token).' },
  vault_approle_mount: { ...name(256), description: 'Mount path of the AppRole auth method. Unset: approle.' },
  vault_role_id: { ...name(256), description: 'AppRole role_id (vault_auth approle).' },
  vault_secret_id: { ...secret, description: 'AppRole secret_id (vault_auth approle).' },
  vault_kubernetes_mount: { ...name(256), description: 'Mount path of the Kubernetes auth method. Unset: kubernetes.' },
  vault_kubernetes_role: { ...name(256), description: 'Vault role to log in as (vault_auth kubernetes).' },
  vault_kubernetes_jwt_path: {
    ...name(1024),
    description: 'File holding the service account JWT, read at each login. Unset: /var/run/secrets/kubernetes.io/serviceaccount/token.',
  },
  vault_kv_mount: { ...name(256), description: 'Mount path of the KV version 2 secrets engine references read from. Unset: secret.' },
  vault_ca_cert_pem: caPem('Vault'),
  // CyberArk Conjur.
  conjur_url: { ...url, description: 'Conjur appliance URL, e.g. https://conjur.example.com.' },
  conjur_account: { ...name(256), description: 'Conjur organisation account.' },
  conjur_login: { ...name(512), description: 'Login of the host or user, e.g. host/provisio.' },
  conjur_api_key: { ...secret, description: 'API key of that login.' },
  conjur_ca_cert_pem: caPem('Conjur'),
  // Azure Key Vault.
  azure_tenant_id: { ...name(128), description: 'Directory (tenant) id of the service principal.' },
  azure_client_id: { ...name(128), description: 'Application (client) id of the service principal.' },
  azure_client_secret: { ...secret, description: 'Client secret of the service principal.' },
  azure_authority_url: { ...url, description: 'Microsoft identity platform authority. Unset: https://login.microsoftonline.com.' },
  azure_vault_url_template: {
    ...url,
    pattern: '^https?://[^\\s]*\\{vault\\}[^\\s]*$',
    description: 'Vault URL with {vault} for the name a reference gives. Unset: https://{vault}.vault.azure.net.',
  },
  azure_vault: {
    type: 'string',
    pattern: '^[A-Za-z](?!.*--)[A-Za-z0-9-]{1,22}[A-Za-z0-9]$',
    description: 'The vault the migration writes secrets to (when migrate_to is azurekv).',
  },
  azure_ca_cert_pem: caPem('Azure Key Vault and authority'),
  // AWS Secrets Manager (API 2017-10-17), static keys or sts:AssumeRole (API 2011-06-15); adapter/secrets/backends/aws-sm.ts.
  aws_region: { type: 'string', pattern: '^[a-z]{2}(-[a-z]+)+-\\d+$', description: 'Region of Secrets Manager (and of STS), e.g. eu-central-1.' },
  aws_access_key_id: { type: 'string', pattern: '^[A-Z0-9]{16,128}$', description: 'Access key id of the IAM user (the keys AssumeRole is called with, when aws_role_arn is set).' },
  aws_secret_access_key: { ...secret, description: 'Secret access key of aws_access_key_id.' },
  aws_session_token: { ...secret, description: 'Session token, when aws_access_key_id is a temporary key.' },
  aws_role_arn: {
    type: 'string',
    pattern: '^arn:aws[a-z-]*:iam::\\d{12}:role/[\\w+=,.@/-]{1,512}$',
    description: 'Role to assume with sts:AssumeRole; its temporary credentials are renewed 5 minutes before they expire. Unset: the static keys sign the reads.',
  },
  aws_external_id: { type: 'string', pattern: '^[\\w+=,.@:/-]{2,1224}$', description: 'ExternalId the role\'s trust policy asks for.' },
  aws_role_session_name: { type: 'string', pattern: '^[\\w+=,.@-]{2,64}$', description: 'RoleSessionName of the assumed sessions (CloudTrail shows it). Unset: provisio.' },
  aws_secretsmanager_endpoint: { ...url, description: 'Secrets Manager endpoint (a VPC endpoint, say). Unset: https://secretsmanager.<aws_region>.amazonaws.com.' },
  aws_sts_endpoint: { ...url, description: 'STS endpoint. Unset: the regional https://sts.<aws_region>.amazonaws.com.' },
  aws_ca_cert_pem: caPem('Secrets Manager and STS endpoint'),
  // CyberArk Central Credential Provider (the AIM web service, REST); adapter/secrets/backends/cyberark-ccp.ts. Read-only.
  ccp_url: { ...url, description: 'Base URL of the CCP web service; requests go to <ccp_url>/AIMWebService/api/Accounts.' },
  ccp_app_id: { ...name(128), description: 'Application ID (AppID) the provider authenticates by the client certificate.' },
  ccp_default_safe: {
    type: 'string',
    pattern: '^[^\\\\/:*?"<>|\\s][^\\\\/:*?"<>|]{0,27}$',
    description: 'Safe of a ccp:// reference that names only an object.',
  },
  ccp_client_cert_pem: {
    type: 'string',
    minLength: 1,
    maxLength: 65536,
    pattern: '-----BEGIN CERTIFICATE-----',
    description: 'PEM of the client certificate the application authenticates with (with ccp_client_key_pem).',
  },
  ccp_client_key_pem: { ...secret, maxLength: 65536, pattern: '-----BEGIN [A-Z ]*PRIVATE KEY-----', description: 'PEM of the private key of ccp_client_cert_pem (unencrypted).' },
  ccp_ca_cert_pem: caPem('CyberArk CCP'),
  // Resolution and migration.
  migrate_to: { type: 'string', enum: [...SECRET_SCHEMES], description: 'The backend POST /admin/secrets/migrate pushes plaintext values to.' },
  cache_ttl_seconds: { type: 'integer', minimum: 0, maximum: 86400, description: 'Seconds a resolved value is reused before its backend is asked again. Unset: 60.' },
  negative_ttl_seconds: {
    type: 'integer',
    minimum: 0,
    maximum: 3600,
    description: 'Seconds a failed resolution is remembered (and re-thrown) before the backend is asked again. Unset: 10.',
  },
} as const;

/** Every `*_ca_cert_pem` must be certificates Node can read: one that does not parse would fail every read at TLS. */
export function checkSecretBackendSettings(merged: Record<string, unknown>): FieldError[] {
  const errors: FieldError[] = [];
  for (const [key, pem] of Object.entries(merged)) {
    if (!key.endsWith('_ca_cert_pem') || typeof pem !== 'string') continue;
    try {
      for (const block of pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [pem]) new X509Certificate(block);
    } catch {
      errors.push({ path: `/body/${key}`, message: 'is not a PEM certificate (or bundle) that can be read' });
    }
  }
  return errors;
}

export const SECRET_BACKEND_SECTION = {
  description:
    'External secret backends: any secret setting or integration secret may hold a reference (vault://<path>[#<field>], ' +
    'ccp://[<safe>/]<object>, azurekv://<vault>/<secret>, awssm://<secret-id>[#<field>], conjur://<identifier>[#<field>]) ' +
    'resolved at read time through these backends, with a process-local cache.',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: SECRET_BACKEND_KEYS,
  },
  check: checkSecretBackendSettings,
} as const;
