import { CodedError } from '../adapter';

/** Where a problem sits in a model document, and what it is. */
export interface ModelIssue {
  /** RFC 6901 JSON Pointer into the document as submitted ('' is the whole document). */
  path: string;
  message: string;
  /** 1-based line and column in the submitted text, when the model came as text and the place could be found. */
  line?: number;
  column?: number;
}

/** Stable codes of {@link IntegrationModelError}. */
export const IntegrationModelErrorCode = {
  /** The document is not parseable, not OpenAPI 2.0/3.0/3.1, or does not validate; `issues` says where. */
  INVALID_MODEL: 'INVALID_MODEL',
  /** An operation was asked for by an operationId the model does not have. */
  UNKNOWN_OPERATION: 'UNKNOWN_OPERATION',
} as const;
export type IntegrationModelErrorCode = (typeof IntegrationModelErrorCode)[keyof typeof IntegrationModelErrorCode];

/**
 * Thrown by {@link loadIntegrationModel} when a document cannot become a model. It carries every problem found
 * (not just the first), each with a JSON Pointer, so an API can answer a 422 that names the places to fix.
 */
export class IntegrationModelError extends CodedError<IntegrationModelErrorCode> {
  override readonly name = 'IntegrationModelError';
  readonly issues: readonly ModelIssue[];

  constructor(code: IntegrationModelErrorCode, issues: readonly ModelIssue[], summary?: string) {
    super(code, summary ?? formatIssues(issues));
    this.issues = issues;
  }
}

function formatIssues(issues: readonly ModelIssue[]): string {
  const shown = issues.slice(0, 5).map((i) => {
    const where = i.line !== undefined ? ` (line ${i.line}${i.column !== undefined ? `:${i.column}` : ''})` : '';
    return `${i.path || '/'}${where}: ${i.message}`;
  });
  const more = issues.length > shown.length ? `; and ${issues.length - shown.length} more` : '';
  return `invalid integration model: ${shown.join('; ')}${more}`;
}

export function invalidModel(issues: readonly ModelIssue[]): IntegrationModelError {
  return new IntegrationModelError(IntegrationModelErrorCode.INVALID_MODEL, issues);
}
