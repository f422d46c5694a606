/**
 * The grammar of secret references (the seed's "External Secret Backends" table):
 *
 * | form                          | path                         | `#field` |
 * |-------------------------------|------------------------------|----------|
 * | `vault://<path>[#<field>]`    | KV v2 path under the mount   | yes      |
 * | `ccp://[<safe>/]<object>`     | `<safe>/<object>`, `<object>` | no       |
 * | `azurekv://<vault>/<secret>`  | `<vault>/<secret>`           | no       |
 * | `awssm://<secret-id>[#<field>]` | name or ARN                | yes      |
 * | `conjur://<identifier>[#<field>]` | variable id            | yes      |
 *
 * Each `/`-separated segment and the field are percent-decoded (a `#` or `%` inside a name is written `%23`, `%25`).
 * Everywhere: no empty segment (`a//b`, a leading or trailing `/`), no `.` or `..` segment (a reference must not walk
 * out of where its backend's settings point), no whitespace or control character (written or encoded), no encoded
 * `/` inside a segment (it would name another path than the one written). Each backend adds the rules of its own
 * names. A message says what is wrong without repeating the reference (the caller names the field).
 */
import { SECRET_SCHEMES, type SecretReference, type SecretScheme } from './backend';

export type ParsedReference = { ok: true; ref: SecretReference } | { ok: false; message: string };

const PREFIXES = SECRET_SCHEMES.map((s) => `${s}://`);
const WITH_FIELD: ReadonlySet<SecretScheme> = new Set(['vault', 'awssm', 'conjur']);
// Whitespace (any Unicode space) and C0/C1 control characters.
const FORBIDDEN_CHAR = /[\s\u0000-\u001f\u007f-\u009f]/u;
const MAX_REFERENCE_LENGTH = 2048;

/**
 * True when `s` starts with one of the five schemes (`vault://`, `ccp://`, `azurekv://`, `awssm://`, `conjur://`),
 * in any letter case: such a value is meant as a reference, and one that does not parse is refused rather than
 * stored as a plain secret. Costs a type check and a few string comparisons for any other value.
 */
export function looksLikeSecretReference(s: unknown): s is string {
  if (typeof s !== 'string' || s.length < 6) return false;
  const colon = s.indexOf('://');
  if (colon < 3 || colon > 7) return false;
  const head = s.slice(0, colon + 3).toLowerCase();
  return PREFIXES.includes(head);
}

const fail = (message: string): ParsedReference => ({ ok: false, message });

/** Decodes one piece; undefined when its percent-encoding is malformed. */
function decode(piece: string): string | undefined {
  try {
    return decodeURIComponent(piece);
  } catch {
    return undefined;
  }
}

/** The decoded segments of `body`, or the message saying which rule it breaks. */
function segmentsOf(body: string, what: string): string[] | string {
  if (body === '') return `the ${what} is empty`;
  const raw = body.split('/');
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 1) {
    const piece = raw[i]!;
    if (piece === '') return `the ${what} has an empty segment (a leading, trailing or doubled '/')`;
    const decoded = decode(piece);
    if (decoded === undefined) return `segment ${i + 1} of the ${what} has malformed percent-encoding`;
    if (decoded === '.' || decoded === '..') return `the ${what} has a '${decoded}' segment`;
    if (decoded.includes('/')) return `segment ${i + 1} of the ${what} has an encoded '/' (%2F)`;
    if (FORBIDDEN_CHAR.test(decoded)) return `segment ${i + 1} of the ${what} has whitespace or a control character`;
    out.push(decoded);
  }
  return out;
}

// Azure Key Vault names (Microsoft's "Key Vault naming rules"): a vault is 3-24 characters, letters, digits and
// hyphens, starting with a letter, ending with a letter or digit, without consecutive hyphens; a secret is 1-127
// letters, digits and hyphens.
const AZURE_VAULT = /^[A-Za-z](?!.*--)[A-Za-z0-9-]{1,22}[A-Za-z0-9]$/;
const AZURE_SECRET = /^[0-9A-Za-z-]{1,127}$/;
// AWS Secrets Manager: a name is 1-512 of letters, digits and /_+=.@- ; an ARN is
// arn:<partition>:secretsmanager:<region>:<account>:secret:<name>-<6 random characters>.
const AWS_NAME = /^[A-Za-z0-9/_+=.@-]{1,512}$/;
const AWS_ARN = /^arn:aws(-[a-z]+)*:secretsmanager:[a-z]{2}(-[a-z]+)+-\d+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$/;
// CyberArk: a safe name has at most 28 characters and none of \ / : * ? " < > | (Vault's naming rules); an object
// name at most 128 characters, without \ / : * ? " < > |.
const CYBERARK_FORBIDDEN = /[\\/:*?"<>|]/;

function checkBackendNames(scheme: SecretScheme, segments: string[], path: string): string | undefined {
  switch (scheme) {
    case 'vault':
    case 'conjur':
      return undefined;
    case 'ccp': {
      if (segments.length > 2) return `a ccp reference is ccp://[<safe>/]<object>: at most one '/', found ${segments.length - 1}`;
      const [first, second] = segments as [string, string | undefined];
      const safe = second === undefined ? undefined : first;
      const object = second ?? first;
      if (safe !== undefined && (safe.length > 28 || CYBERARK_FORBIDDEN.test(safe))) {
        return 'the safe name must be at most 28 characters without \\ / : * ? " < > |';
      }
      if (object.length > 128 || CYBERARK_FORBIDDEN.test(object)) return 'the object name must be at most 128 characters without \\ / : * ? " < > |';
      return undefined;
    }
    case 'azurekv': {
      if (segments.length !== 2) return `an azurekv reference is azurekv://<vault>/<secret>: two segments, found ${segments.length}`;
      const [vault, secret] = segments as [string, string];
      if (!AZURE_VAULT.test(vault)) {
        return 'the vault name must be 3-24 letters, digits and hyphens, start with a letter, end with a letter or digit, without "--"';
      }
      if (!AZURE_SECRET.test(secret)) return 'the secret name must be 1-127 letters, digits and hyphens';
      return undefined;
    }
    case 'awssm':
      if (path.startsWith('arn:')) {
        return AWS_ARN.test(path) ? undefined : 'the secret id starts with arn: but is not a Secrets Manager secret ARN (arn:<partition>:secretsmanager:<region>:<account>:secret:<name>)';
      }
      return AWS_NAME.test(path) ? undefined : 'the secret name must be 1-512 letters, digits and / _ + = . @ -';
  }
}

/**
 * Parses a reference. The result's `path` is percent-decoded (segments joined by `/`), `field` too; `raw` is `s`.
 * Fails with a message saying what is wrong: an unknown scheme, an empty path, a segment rule, a backend's naming
 * rule, a `#field` where the scheme takes none.
 */
export function parseSecretReference(s: string): ParsedReference {
  if (s.length > MAX_REFERENCE_LENGTH) return fail(`is longer than ${MAX_REFERENCE_LENGTH} characters`);
  const sep = s.indexOf('://');
  if (sep < 0) return fail(`has no scheme (one of ${PREFIXES.join(', ')})`);
  const written = s.slice(0, sep);
  const scheme = written.toLowerCase() as SecretScheme;
  if (!SECRET_SCHEMES.includes(scheme)) return fail(`has an unknown scheme '${written}' (one of ${SECRET_SCHEMES.join(', ')})`);
  if (written !== scheme) return fail(`the scheme must be written in lower case (${scheme}://)`);
  if (FORBIDDEN_CHAR.test(s)) return fail('has whitespace or a control character');
  const rest = s.slice(sep + 3);
  const hash = rest.indexOf('#');
  const body = hash < 0 ? rest : rest.slice(0, hash);
  if (body.includes('?')) return fail("has a '?' (a query is not part of a reference; write %3F inside a name)");

  let field: string | undefined;
  if (hash >= 0) {
    if (!WITH_FIELD.has(scheme)) return fail(`a ${scheme} reference takes no #field (only vault, awssm and conjur do)`);
    const rawField = rest.slice(hash + 1);
    if (rawField === '') return fail("the #field after '#' is empty");
    if (rawField.includes('#')) return fail("has more than one '#' (write %23 inside a name)");
    const decoded = decode(rawField);
    if (decoded === undefined) return fail('the #field has malformed percent-encoding');
    if (FORBIDDEN_CHAR.test(decoded)) return fail('the #field has whitespace or a control character');
    field = decoded;
  }

  const what = scheme === 'awssm' ? 'secret id' : scheme === 'conjur' ? 'identifier' : 'path';
  // An ARN's `:` and `/` belong to the id; it is checked whole, not by segments.
  const segments = segmentsOf(body, what);
  if (typeof segments === 'string') return fail(segments);
  const path = segments.join('/');
  const nameProblem = checkBackendNames(scheme, segments, path);
  if (nameProblem !== undefined) return fail(nameProblem);
  return { ok: true, ref: { scheme, raw: s, path, ...(field !== undefined ? { field } : {}) } };
}

/**
 * Writes `path` and `field` as a reference of `scheme`, each segment percent-encoded where the grammar needs it
 * (for the migration's new references). The result parses back to the same path and field.
 */
export function formatSecretReference(scheme: SecretScheme, path: string, field?: string): string {
  const enc = (p: string) => encodeURIComponent(p).replace(/%40/g, '@').replace(/%3A/gi, ':').replace(/%2B/gi, '+').replace(/%3D/gi, '=');
  const body = scheme === 'awssm' && path.startsWith('arn:') ? path : path.split('/').map(enc).join('/');
  return `${scheme}://${body}${field !== undefined ? `#${enc(field)}` : ''}`;
}
