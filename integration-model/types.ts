import type { OpenAPIV3, OpenAPIV3_1 } from 'openapi-types';
import type { ModelIssue } from './errors';

/**
 * An OpenAPI 3.0.x or 3.1.x document, as the `openapi-types` package describes it. A model's document has passed
 * the official schema of its version, so its objects have these shapes; `$ref`s are still in place. Members the
 * package does not name (`x-…` extensions, `webhooks` in 3.0 terms) are there as unknowns.
 */
export type OpenApiDocument = (OpenAPIV3.Document | OpenAPIV3_1.Document) & Record<string, unknown>;

/** A JSON Schema (2020-12 compatible, self-contained: local `$ref`s are inlined, cycles go to `$defs`). */
export type JsonSchema = boolean | { [keyword: string]: unknown };

export const HTTP_METHODS = ['GET', 'PUT', 'POST', 'DELETE', 'OPTIONS', 'HEAD', 'PATCH', 'TRACE'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

export type ParameterLocation = 'path' | 'query' | 'header' | 'cookie';

export interface OperationParameter {
  name: string;
  in: ParameterLocation;
  required: boolean;
  description?: string;
  deprecated?: boolean;
  /** The parameter's schema (from `schema`, or from the first media type of `content`). `{}` when none given. */
  schema: JsonSchema;
  style?: string;
  explode?: boolean;
}

export interface OperationRequestBody {
  required: boolean;
  description?: string;
  /** All media types the operation accepts, in document order. */
  contentTypes: string[];
  /** The media type the runtime sends: JSON (`application/json` or `…+json`) if offered, else the first. */
  contentType: string;
  /** Schema of the body in `contentType`; `{}` when the model gives none. */
  schema: JsonSchema;
}

export interface OperationResponse {
  /** '200', '2XX', 'default', … as in the document. */
  status: string;
  description?: string;
  contentTypes: string[];
  /** Schema of the JSON (or first) media type; absent when the response has no content. */
  schema?: JsonSchema;
}

/** One alternative of a security requirement: every scheme named here applies together, with these scopes. */
export type SecurityRequirement = OpenAPIV3.SecurityRequirementObject;

export interface ModelOperation {
  operationId: string;
  method: HttpMethod;
  /** The path template as in the document, e.g. `/vcenter/vm/{vm}/power`. */
  path: string;
  summary?: string;
  description?: string;
  tags: string[];
  deprecated: boolean;
  /** Path-level and operation-level parameters merged (the operation's win). */
  parameters: OperationParameter[];
  requestBody?: OperationRequestBody;
  responses: OperationResponse[];
  /**
   * Alternatives (any one suffices), from the operation or else the document. `[]` means none required;
   * an entry `{}` means anonymous access is one of the alternatives.
   */
  security: SecurityRequirement[];
  /** The operation's `x-…` extensions, as written. */
  extensions: Record<string, unknown>;
}

export interface DroppedOperation {
  method: HttpMethod;
  path: string;
  operationId?: string;
  reason: string;
}

/** `x-itential-parameters`: extra parameters sent on the token, refresh or key requests of a scheme. */
export interface SchemeParameter {
  name: string;
  in: string;
  description?: string;
  /** Which requests use it: `token`, `refresh`, `key`. */
  useIn: string[];
  /** Name of an integration variable that supplies the value (`x-itential-variable`). */
  variable?: string;
  schema?: JsonSchema;
}

/** `x-itential-dynamic-retrieval` on an apiKey scheme: the key is fetched at run time instead of configured. */
export interface DynamicKeyRetrieval {
  method: 'GET' | 'POST' | 'HEAD' | 'PUT' | 'PATCH';
  url: string;
  /** JSON Pointer into the key response body; absent means the whole body is the key. */
  responsePointer?: string;
}

export interface OAuthFlow {
  authorizationUrl?: string;
  tokenUrl?: string;
  refreshUrl?: string;
  scopes: Record<string, string>;
}

interface SchemeBase {
  /** The key under `components.securitySchemes`; configuration is keyed by it, as in Itential. */
  name: string;
  description?: string;
  parameters: SchemeParameter[];
  extensions: Record<string, unknown>;
}

export type SecurityScheme =
  | (SchemeBase & { kind: 'apiKey'; in: 'header' | 'query' | 'cookie'; parameterName: string; dynamicRetrieval?: DynamicKeyRetrieval })
  /** An apiKey scheme marked `x-amazon-apigateway-authtype: awsSigv4`, the way Itential models AWS Signature v4. */
  | (SchemeBase & { kind: 'awsSigV4'; in: 'header' | 'query' | 'cookie'; parameterName: string })
  | (SchemeBase & { kind: 'httpBasic' })
  | (SchemeBase & { kind: 'httpBearer'; bearerFormat?: string })
  /** `http` with scheme `negotiate` (RFC 4559): Kerberos, configured as authentication type `negotiate`. */
  | (SchemeBase & { kind: 'httpNegotiate' })
  /** `http` with scheme `ntlm` (IIS's name for it): authentication type `ntlm`. */
  | (SchemeBase & { kind: 'httpNtlm' })
  | (SchemeBase & {
      kind: 'oauth2';
      flows: { clientCredentials?: OAuthFlow; password?: OAuthFlow; authorizationCode?: OAuthFlow; implicit?: OAuthFlow };
    })
  | (SchemeBase & { kind: 'openIdConnect'; openIdConnectUrl: string })
  | (SchemeBase & { kind: 'mutualTLS' })
  /** Declared but not something the runtime can apply (e.g. `http` with scheme `digest`); see the model's warnings. */
  | (SchemeBase & { kind: 'unsupported'; type: string; scheme?: string });

export type SecuritySchemeKind = SecurityScheme['kind'];

/** A Server Object of the document, as written. */
export type ModelServer = OpenAPIV3.ServerObject;

export interface IntegrationModel {
  /** `<info.title>:<info.version>`, the name Itential shows and roles are filtered by. */
  id: string;
  title: string;
  version: string;
  description?: string;
  /** The version the document was submitted in (`2.0`, `3.0.3`, `3.1.0`, …). */
  sourceVersion: string;
  /** The OpenAPI 3 document the model was built from (a converted copy for Swagger 2.0), `$ref`s intact. */
  document: OpenApiDocument;
  servers: ModelServer[];
  operations: ModelOperation[];
  /** Operations that did not become tasks, each with the reason. */
  dropped: DroppedOperation[];
  securitySchemes: SecurityScheme[];
  /** HTTP verbs of the operations, in the order of {@link HTTP_METHODS}: one generated role per verb. */
  verbs: HttpMethod[];
  /** Problems that do not stop the model loading but that an operator should see (unused schemes, servers, …). */
  warnings: ModelIssue[];
}
