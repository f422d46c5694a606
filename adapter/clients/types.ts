/**
 * One generated SDK function, as the registry holds it: called with hey-api request options (`client`, `path`,
 * `query`, `headers`, `body`, axios options), it resolves to the axios response. The parameter is `never` so that
 * every generated function, whatever its typed options, fits; {@link typedOperation} is the one caller.
 */
export type GeneratedSdkFunction = (options: never) => Promise<unknown>;

/** An operation of a generated client: its method and path template (as in the document) and its SDK function. */
export interface GeneratedOperation {
  method: string;
  path: string;
  call: GeneratedSdkFunction;
}

/** A model in openapi/integrations/ whose typed client `npm run generate` wrote. */
export interface GeneratedModel {
  /** The client's directory under adapter/clients/. */
  name: string;
  /** The document, relative to the project root. */
  source: string;
  /** {@link modelDocumentDigest} of the parsed document. */
  digest: string;
  /** Keyed by operationId as the document spells it. */
  operations: Readonly<Record<string, GeneratedOperation>>;
}
