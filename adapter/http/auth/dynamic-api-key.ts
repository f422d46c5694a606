import type { AuthenticationConfig, DynamicApiKeyConfig } from '../config';
import { CallNotMadeCode, TokenRequestError, missingInformation, type IntegrationEnvelope } from '../envelope';
import { resolvePointer } from '../../json';
import { placeKey } from './static';
import type { AuthContext, AuthProvider } from './types';

/**
 * An API key bought at run time from a key endpoint (the model's `x-itential-dynamic-retrieval`), cached until the
 * target answers 401, then bought again once.
 */
export function createDynamicApiKeyAuth(
  auth: Extract<AuthenticationConfig, { type: 'api_key' }> & { dynamic: DynamicApiKeyConfig },
  ctx: AuthContext,
): AuthProvider {
  const dyn = auth.dynamic;
  let key: string | undefined;
  // One fetch in flight at a time: concurrent calls share it instead of each buying a key.
  let pending: Promise<string> | undefined;
  // Which key each request went out with, so a 401 only buys a new key when the key it used is still the current one.
  const usedKey = new WeakMap<object, string>();

  async function fetchKey(): Promise<string> {
    const env = await ctx.send({ method: dyn.method, url: dyn.url, headers: dyn.headers, data: dyn.body });
    if (!env.ok) throw new TokenRequestError(env);
    const value = extractKey(env, dyn.response_pointer ?? '');
    ctx.addSecret(value);
    return value;
  }

  async function current(): Promise<string> {
    if (key !== undefined) return key;
    pending ??= fetchKey().finally(() => {
      pending = undefined;
    });
    key = await pending;
    return key;
  }

  return {
    apply: async (config) => {
      const value = await current();
      usedKey.set(config, value);
      placeKey(config, auth.in, auth.name, value);
    },
    refresh: async (failed) => {
      if (pending) await pending;
      else if (key === undefined || usedKey.get(failed) === key) {
        key = undefined;
        await current();
      }
      return true;
    },
    secretQueryParams: auth.in === 'query' ? [auth.name] : [],
    secretHeaders: auth.in === 'header' ? [auth.name] : [],
  };
}

function extractKey(env: IntegrationEnvelope, pointer: string): string {
  const where = `${env.method} ${env.url}`;
  // A blank pointer means the whole body is the key: a JSON string, or the raw text of a non-JSON answer.
  const doc = env.body !== undefined ? env.body : env.text;
  const hit = resolvePointer(doc, pointer);
  if (!hit.found || hit.value === null || hit.value === undefined || hit.value === '') {
    throw missingInformation(
      `the API key response from ${where} has nothing at JSON pointer "${pointer}"`,
      CallNotMadeCode.KEY_RETRIEVAL,
    );
  }
  if (typeof hit.value === 'string') return hit.value.trim();
  if (typeof hit.value === 'number') return String(hit.value);
  throw missingInformation(
    `the API key response from ${where} has ${Array.isArray(hit.value) ? 'an array' : 'an object'} at JSON pointer "${pointer}", not a string`,
    CallNotMadeCode.KEY_RETRIEVAL,
  );
}
