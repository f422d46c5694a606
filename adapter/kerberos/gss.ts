/**
 * GSS-API initiator contexts through the `kerberos` npm addon (mongodb-js/kerberos: a maintained N-API binding
 * over the system's MIT libgssapi_krb5, the one MongoDB's drivers ship). It is an optional dependency and a
 * native build, so it is loaded on first use and its absence is a precise configuration error, not a crash at
 * import time for deployments that never use Kerberos.
 */
import { createRequire } from 'node:module';
import { KerberosError, KerberosErrorCode, toKerberosError } from './errors';

export type GssMechanism = 'spnego' | 'krb5';

/** The part of the addon's API we use (it ships no type declarations). */
interface AddonClient {
  contextComplete: boolean;
  response: string;
  step(challenge: string): Promise<string>;
  wrap(challenge: string, options?: { user?: string; protect?: boolean }): Promise<string>;
  unwrap(challenge: string): Promise<string>;
}
interface AddonServer {
  contextComplete: boolean;
  username: string;
  response: string;
  targetName: string;
  step(challenge: string): Promise<string>;
}
interface KerberosAddon {
  initializeClient(service: string, options: { principal?: string; mechOID?: number; flags?: number }): Promise<AddonClient>;
  initializeServer(service: string): Promise<AddonServer>;
  GSS_MECH_OID_KRB5: number;
  GSS_MECH_OID_SPNEGO: number;
  GSS_C_MUTUAL_FLAG: number;
  GSS_C_INTEG_FLAG: number;
  GSS_C_CONF_FLAG: number;
  GSS_C_SEQUENCE_FLAG: number;
  GSS_C_DELEG_FLAG: number;
}

let addon: KerberosAddon | undefined;

/**
 * The package's lib/index.js replaces `KerberosClient.prototype.step` (and `wrap`, `unwrap`, `KerberosServer`'s
 * `step`) on the native classes with promise wrappers around the methods it finds there. Node loads the native
 * binding once per process, but a host that evaluates modules once per sandbox (jest: once per test file in a worker)
 * runs index.js again, and that evaluation wraps the previous wrappers: `promisify` of an async function that never
 * calls its callback, so every GSS step of the second test file hung. The native methods are kept under a
 * process-wide symbol (the `Symbol.for` registry is shared by all V8 contexts) and put back before the package is
 * evaluated. A plain process evaluates it once, and this changes nothing there.
 */
const NATIVE_METHODS = Symbol.for('provisio.kerberos.native-methods');
const PATCHED: readonly (readonly [string, string])[] = [
  ['KerberosClient', 'step'],
  ['KerberosClient', 'wrap'],
  ['KerberosClient', 'unwrap'],
  ['KerberosServer', 'step'],
];

function restoreNativeMethods(load: NodeRequire): void {
  const { loadBindings } = load('kerberos/lib/util') as { loadBindings(): Record<string | symbol, unknown> };
  const bindings = loadBindings();
  const proto = (cls: string): Record<string, unknown> | undefined => (bindings[cls] as { prototype?: Record<string, unknown> } | undefined)?.prototype;
  let saved = bindings[NATIVE_METHODS] as Map<string, unknown> | undefined;
  if (!saved) {
    saved = new Map(PATCHED.map(([cls, method]) => [`${cls}.${method}`, proto(cls)?.[method]]));
    bindings[NATIVE_METHODS] = saved;
    return;
  }
  for (const [cls, method] of PATCHED) {
    const p = proto(cls);
    const original = saved.get(`${cls}.${method}`);
    if (p && original !== undefined) p[method] = original;
  }
}

/**
 * The loaded addon.
 * @throws KerberosError KERBEROS_CONFIG when it is not installed or did not build
 */
export function loadKerberosAddon(): KerberosAddon {
  if (addon) return addon;
  try {
    const load = createRequire(__filename);
    restoreNativeMethods(load);
    addon = load('kerberos') as KerberosAddon;
    return addon;
  } catch (e) {
    throw new KerberosError(KerberosErrorCode.KERBEROS_CONFIG,
      'kerberos: the `kerberos` native addon is not available (install libkrb5-dev, then `npm rebuild kerberos`; see README)',
      undefined, e);
  }
}

/** One GSS security context as the initiator. Tokens are base64 strings; they are credentials: never log them. */
export interface GssClientContext {
  readonly service: string;
  readonly principal: string;
  readonly mechanism: GssMechanism;
  /** True once the context is established (the server's last token was accepted). */
  readonly complete: boolean;
  /** Produces the next token from the server's (empty for the first). Failures map as in errors.ts. */
  step(serverToken: string): Promise<string>;
  // No `wrap`: the addon's (kerberos 7.0.0) never wraps the caller's message (it always takes its SASL-user branch
  // and wraps a 4-octet reply made from the message); adapter/directory/sasl/krb5-wrap.ts builds Wrap tokens.
  /** GSS unwrap of a base64 token. */
  unwrap(token: string): Promise<string>;
}

export interface GssFlags { mutual?: boolean; integrity?: boolean; confidentiality?: boolean; delegate?: boolean }

export async function gssClient(service: string, principal: string, mechanism: GssMechanism, flags: GssFlags): Promise<GssClientContext> {
  const k = loadKerberosAddon();
  let bits = k.GSS_C_SEQUENCE_FLAG;
  if (flags.mutual ?? true) bits |= k.GSS_C_MUTUAL_FLAG;
  if (flags.integrity) bits |= k.GSS_C_INTEG_FLAG;
  if (flags.confidentiality) bits |= k.GSS_C_CONF_FLAG;
  if (flags.delegate) bits |= k.GSS_C_DELEG_FLAG;
  const ctx = `GSS ${mechanism} context for ${principal} to ${service}`;
  let client: AddonClient;
  try {
    client = await k.initializeClient(service, {
      principal,
      mechOID: mechanism === 'spnego' ? k.GSS_MECH_OID_SPNEGO : k.GSS_MECH_OID_KRB5,
      flags: bits,
    });
  } catch (e) {
    throw toKerberosError(ctx, e instanceof Error ? e.message : String(e), [], e);
  }
  const call = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (e) {
      throw toKerberosError(`${ctx}: ${what}`, e instanceof Error ? e.message : String(e), [], e);
    }
  };
  return {
    service,
    principal,
    mechanism,
    get complete() {
      return client.contextComplete;
    },
    step: (token) => call('step', () => client.step(token)).then((r) => r ?? ''),
    unwrap: (token) => call('unwrap', () => client.unwrap(token)),
  };
}
