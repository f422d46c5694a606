import { startChildService, type ChildService } from './child-service';

export interface OidcEvent {
  kind: 'token.request' | 'grant.success' | 'grant.error' | 'resource.ok' | 'resource.denied';
  grant_type?: string;
  client_id?: string;
  basic_auth?: boolean;
  content_type?: string;
  error?: string;
}

/** A running oidc-provider (child process, see oidc-provider.mjs) with a protected resource at /resource/whoami. */
export interface OidcServer {
  issuer: string;
  tokenUrl: string;
  resourceBase: string;
  events(): Promise<OidcEvent[]>;
  /** Destroys every token the resource has accepted, as if they had expired server-side. */
  revokeAll(): Promise<void>;
  /** Walks the authorization code flow as a browser would (cookies, redirects) and returns the redirect's query. */
  authorize(authorizationUrl: string): Promise<URLSearchParams>;
  stop(): Promise<void>;
}

export async function startOidcServer(opts: { tokenTtlSeconds?: number } = {}): Promise<OidcServer> {
  const child: ChildService = await startChildService('oidc-provider.mjs', { OIDC_TOKEN_TTL: String(opts.tokenTtlSeconds ?? 600) });
  const issuer = `http://127.0.0.1:${child.info.port}`;
  return {
    issuer,
    tokenUrl: `${issuer}/token`,
    resourceBase: `${issuer}/resource`,
    events: async () => (await (await fetch(`${issuer}/_test/events`)).json()) as OidcEvent[],
    revokeAll: async () => {
      await fetch(`${issuer}/_test/revoke-all`, { method: 'POST' });
    },
    authorize: async (authorizationUrl) => {
      const jar = new Map<string, string>();
      let url = authorizationUrl;
      for (let hop = 0; hop < 10; hop++) {
        const res = await fetch(url, {
          redirect: 'manual',
          headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') },
        });
        for (const c of res.headers.getSetCookie()) {
          const [pair] = c.split(';');
          const eq = (pair ?? '').indexOf('=');
          if (eq > 0) jar.set(pair!.slice(0, eq), pair!.slice(eq + 1));
        }
        const location = res.headers.get('location');
        if (!location) throw new Error(`authorization flow stopped at ${url} with ${res.status}: ${await res.text()}`);
        const next = new URL(location, url);
        if (next.pathname === '/callback') return next.searchParams;
        url = next.toString();
      }
      throw new Error('authorization flow did not reach the callback');
    },
    stop: () => child.stop(),
  };
}
