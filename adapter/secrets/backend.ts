/**
 * External secret backends: what a reference names and what each backend does with it. A secret setting or an
 * integration secret may hold a reference (`vault://…`, `ccp://…`, `azurekv://…`, `awssm://…`, `conjur://…`) instead of
 * its value; the value is fetched at read time through the backend its scheme names (see resolver.ts).
 */

/** The schemes a reference may use, one per backend. */
export const SECRET_SCHEMES = ['vault', 'ccp', 'azurekv', 'awssm', 'conjur'] as const;
export type SecretScheme = (typeof SECRET_SCHEMES)[number];

/** A parsed reference. `raw` is the reference as written: it names the secret and is safe to show; the value is not. */
export interface SecretReference {
  scheme: SecretScheme;
  raw: string;
  /**
   * What the scheme addresses, percent-decoded: vault `<path>`, ccp `<safe>/<object>` or `<object>`,
   * azurekv `<vault>/<secret>`, awssm `<secret-id>`, conjur `<identifier>`.
   */
  path: string;
  /** `#<field>`: one field of a JSON secret (vault, awssm, conjur); absent: the whole value. */
  field?: string;
}

/**
 * The `secret_backend` settings section as stored, secrets included (decrypted): each backend reads its own keys
 * (`vault_*`, `ccp_*`, `azure_*`, `aws_*`, `conjur_*`).
 */
export type SecretBackendSettings = Readonly<Record<string, unknown>>;

/** Why a backend could not give a value. The message names the reference (never a value) and the cause. */
export type SecretBackendErrorCode =
  | 'SECRET_BACKEND_NOT_CONFIGURED' // the section lacks what this scheme needs (names the keys)
  | 'SECRET_BACKEND_UNREACHABLE' // connection refused, TLS failure, timeout, 5xx
  | 'SECRET_BACKEND_AUTH_FAILED' // the backend refused our credentials (401/403 at login or read)
  | 'SECRET_NOT_FOUND' // no such secret, or no such field in it
  | 'SECRET_BACKEND_READ_ONLY'; // a write to a backend that only serves secrets (CyberArk CCP)

export class SecretBackendError extends Error {
  constructor(
    readonly code: SecretBackendErrorCode,
    message: string,
    /** The reference concerned, when there is one. */
    readonly reference?: string,
  ) {
    super(message);
    this.name = 'SecretBackendError';
  }
}

export interface SecretBackend {
  readonly scheme: SecretScheme;
  /**
   * The current value the reference names (a field's value when it names one, as a string: JSON text for a
   * non-string field). Throws SecretBackendError; never puts a secret value in a message.
   */
  read(ref: SecretReference, settings: SecretBackendSettings): Promise<string>;
  /**
   * Stores `value` under `name` (a path the migration derives, e.g. `provisio/settings/smtp/password`) and answers
   * the reference that reads it back. Absent for a backend that cannot be written (CyberArk CCP).
   */
  write?(name: string, value: string, settings: SecretBackendSettings): Promise<SecretReference>;
}
