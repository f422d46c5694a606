import type { ModelIssue } from './errors';
import { escapePointerToken, isRecord } from '../adapter';
import { resolveRef } from './pointer';
import type { SchemaResolver } from './schema';
import type { DynamicKeyRetrieval, OAuthFlow, OpenApiDocument, SchemeParameter, SecurityScheme } from './types';

const KEY_RETRIEVAL_METHODS = ['GET', 'POST', 'HEAD', 'PUT', 'PATCH'] as const;

export interface SchemeReading {
  schemes: SecurityScheme[];
  /** Problems that make the model invalid (a malformed extension the runtime would have to guess at). */
  errors: ModelIssue[];
  warnings: ModelIssue[];
}

/** Reads `components.securitySchemes` of an OpenAPI 3 document into typed schemes, in document order. */
export function readSecuritySchemes(document: OpenApiDocument, resolver: SchemaResolver): SchemeReading {
  const errors: ModelIssue[] = [];
  const warnings: ModelIssue[] = [];
  const schemes: SecurityScheme[] = [];
  const declared = document.components?.securitySchemes;
  if (!isRecord(declared)) return { schemes, errors, warnings };

  for (const [name, raw] of Object.entries(declared)) {
    const at = `/components/securitySchemes/${escapePointerToken(name)}`;
    const def = resolveRef(document, raw);
    if (!isRecord(def)) continue;
    const extensions = Object.fromEntries(Object.entries(def).filter(([k]) => k.startsWith('x-')));
    const base = {
      name,
      ...(typeof def.description === 'string' ? { description: def.description } : {}),
      parameters: readSchemeParameters(def['x-itential-parameters'], `${at}/x-itential-parameters`, resolver, errors),
      extensions,
    };
    const type = String(def.type);

    if (def['x-itential-dynamic-retrieval'] !== undefined && type !== 'apiKey') {
      warnings.push({ path: `${at}/x-itential-dynamic-retrieval`, message: `ignored: dynamic retrieval applies to apiKey schemes only, this one is '${type}'` });
    }

    switch (type) {
      case 'apiKey': {
        const location = def.in as 'header' | 'query' | 'cookie';
        const parameterName = String(def.name);
        if (String(def['x-amazon-apigateway-authtype']).toLowerCase() === 'awssigv4') {
          schemes.push({ ...base, kind: 'awsSigV4', in: location, parameterName });
          break;
        }
        const dynamicRetrieval = readDynamicRetrieval(def['x-itential-dynamic-retrieval'], `${at}/x-itential-dynamic-retrieval`, errors);
        schemes.push({ ...base, kind: 'apiKey', in: location, parameterName, ...(dynamicRetrieval ? { dynamicRetrieval } : {}) });
        break;
      }
      case 'http': {
        const scheme = String(def.scheme).toLowerCase();
        if (scheme === 'basic') schemes.push({ ...base, kind: 'httpBasic' });
        else if (scheme === 'bearer') schemes.push({ ...base, kind: 'httpBearer', ...(typeof def.bearerFormat === 'string' ? { bearerFormat: def.bearerFormat } : {}) });
        // Windows integrated authentication (IIS offers both): the `negotiate` and `ntlm` authentication types.
        else if (scheme === 'negotiate') schemes.push({ ...base, kind: 'httpNegotiate' });
        else if (scheme === 'ntlm') schemes.push({ ...base, kind: 'httpNtlm' });
        else {
          schemes.push({ ...base, kind: 'unsupported', type, scheme });
          warnings.push({ path: `${at}/scheme`, message: `HTTP authentication scheme '${scheme}' is not supported (basic, bearer, negotiate and ntlm are)` });
        }
        break;
      }
      case 'oauth2': {
        const flows: Extract<SecurityScheme, { kind: 'oauth2' }>['flows'] = {};
        const rawFlows = isRecord(def.flows) ? def.flows : {};
        for (const flow of ['clientCredentials', 'password', 'authorizationCode', 'implicit'] as const) {
          const f = rawFlows[flow];
          if (isRecord(f)) flows[flow] = readFlow(f);
        }
        if (flows.implicit) warnings.push({ path: `${at}/flows/implicit`, message: 'the implicit flow needs a browser and is not used by the runtime' });
        schemes.push({ ...base, kind: 'oauth2', flows });
        break;
      }
      case 'openIdConnect':
        schemes.push({ ...base, kind: 'openIdConnect', openIdConnectUrl: String(def.openIdConnectUrl) });
        break;
      case 'mutualTLS':
        schemes.push({ ...base, kind: 'mutualTLS' });
        break;
      default:
        schemes.push({ ...base, kind: 'unsupported', type });
        warnings.push({ path: `${at}/type`, message: `security scheme type '${type}' is not supported` });
    }
  }
  return { schemes, errors, warnings };
}

function readFlow(f: Record<string, unknown>): OAuthFlow {
  // An empty URL (as Itential's own examples write it) means "supplied by the integration's configuration".
  const url = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  const authorizationUrl = url(f.authorizationUrl);
  const tokenUrl = url(f.tokenUrl);
  const refreshUrl = url(f.refreshUrl);
  const scopes = isRecord(f.scopes) ? Object.fromEntries(Object.entries(f.scopes).map(([k, v]) => [k, String(v)])) : {};
  return { ...(authorizationUrl ? { authorizationUrl } : {}), ...(tokenUrl ? { tokenUrl } : {}), ...(refreshUrl ? { refreshUrl } : {}), scopes };
}

/**
 * `x-itential-dynamic-retrieval: {method, url, responsePointer}`. The runtime would call this at run time with
 * secrets attached, so a malformed one is refused when the model loads rather than guessed at later.
 */
function readDynamicRetrieval(raw: unknown, at: string, errors: ModelIssue[]): DynamicKeyRetrieval | undefined {
  if (raw === undefined) return undefined;
  if (!isRecord(raw)) {
    errors.push({ path: at, message: 'must be an object {method, url, responsePointer}' });
    return undefined;
  }
  const before = errors.length;
  const method = typeof raw.method === 'string' ? raw.method.toUpperCase() : undefined;
  if (!method || !(KEY_RETRIEVAL_METHODS as readonly string[]).includes(method)) {
    errors.push({ path: `${at}/method`, message: `must be one of ${KEY_RETRIEVAL_METHODS.join(', ')}` });
  }
  if (typeof raw.url !== 'string' || raw.url === '') errors.push({ path: `${at}/url`, message: 'must be a non-empty string' });
  const pointer = raw.responsePointer;
  if (pointer !== undefined && (typeof pointer !== 'string' || (pointer !== '' && !pointer.startsWith('/')))) {
    errors.push({ path: `${at}/responsePointer`, message: "must be a JSON Pointer ('' or starting with '/')" });
  }
  for (const key of Object.keys(raw)) {
    if (!['method', 'url', 'responsePointer'].includes(key)) errors.push({ path: `${at}/${escapePointerToken(key)}`, message: `unknown property '${key}'` });
  }
  if (errors.length > before) return undefined;
  return {
    method: method as DynamicKeyRetrieval['method'],
    url: raw.url as string,
    // An empty pointer and no pointer mean the same: the whole response body is the key.
    ...(typeof pointer === 'string' && pointer !== '' ? { responsePointer: pointer } : {}),
  };
}

function readSchemeParameters(raw: unknown, at: string, resolver: SchemaResolver, errors: ModelIssue[]): SchemeParameter[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) {
    errors.push({ path: at, message: 'must be an array of parameters' });
    return [];
  }
  const out: SchemeParameter[] = [];
  raw.forEach((p, i) => {
    if (!isRecord(p) || typeof p.name !== 'string' || typeof p.in !== 'string') {
      errors.push({ path: `${at}/${i}`, message: "must be an object with string 'name' and 'in'" });
      return;
    }
    const useIn = p['x-itential-use-in'];
    out.push({
      name: p.name,
      in: p.in,
      ...(typeof p.description === 'string' ? { description: p.description } : {}),
      useIn: Array.isArray(useIn) ? useIn.map(String) : [],
      ...(typeof p['x-itential-variable'] === 'string' ? { variable: p['x-itential-variable'] } : {}),
      ...(p.schema !== undefined ? { schema: resolver.toJsonSchema(p.schema) } : {}),
    });
  });
  return out;
}
