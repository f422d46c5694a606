import type { InternalAxiosRequestConfig } from 'axios';
import type { AuthenticationConfig } from '../config';
import type { AuthProvider } from './types';

/** Sets a credential on a request in the place the API key scheme names (header, query or cookie). */
export function placeKey(config: InternalAxiosRequestConfig, where: 'header' | 'query' | 'cookie', name: string, value: string): void {
  if (where === 'header') {
    config.headers.set(name, value);
  } else if (where === 'query') {
    if (config.params instanceof URLSearchParams) {
      const params = new URLSearchParams(config.params);
      params.set(name, value);
      config.params = params;
    } else {
      config.params = { ...(config.params as Record<string, unknown> | undefined), [name]: value };
    }
  } else {
    const existing = config.headers.get('cookie');
    const others = typeof existing === 'string' ? existing.split(/;\s*/).filter((c) => c !== '' && !c.startsWith(`${name}=`)) : [];
    config.headers.set('cookie', [...others, `${name}=${value}`].join('; '));
  }
}

export function createNoAuth(): AuthProvider {
  return { apply: async () => undefined };
}

export function createBasicAuth(auth: Extract<AuthenticationConfig, { type: 'basic' }>): AuthProvider {
  const value = `Basic ${Buffer.from(`${auth.username}:${auth.password}`, 'utf8').toString('base64')}`;
  return {
    apply: async (config) => {
      config.headers.set('authorization', value);
    },
  };
}

export function createBearerAuth(auth: Extract<AuthenticationConfig, { type: 'bearer' }>): AuthProvider {
  return {
    apply: async (config) => {
      config.headers.set('authorization', `Bearer ${auth.token}`);
    },
  };
}

export function createStaticApiKeyAuth(auth: Extract<AuthenticationConfig, { type: 'api_key' }>, value: string): AuthProvider {
  return {
    apply: async (config) => placeKey(config, auth.in, auth.name, value),
    secretQueryParams: auth.in === 'query' ? [auth.name] : [],
    secretHeaders: auth.in === 'header' ? [auth.name] : [],
  };
}
