/**
 * `transform` tasks evaluate JSONata (https://jsonata.org, jsonata-js). Chosen because it is a maintained, widely
 * used JSON query-and-construct language (Node-RED, AWS Step Functions' JSONata mode) with one small dependency-free
 * package; it builds new objects, not just selects (which JMESPath cannot do well); it runs no JavaScript and reaches
 * no globals, so a designer's expression cannot touch the process; and it has evaluation limits (time, stack depth,
 * sequence length) we set below, and a parser we can run at save time.
 */
import jsonata from 'jsonata';

/** Evaluation limits: a designer's expression must not spin a worker. */
export const TRANSFORM_LIMITS = { timeoutMs: 2000, stack: 500, sequence: 100_000 } as const;

/** Thrown when an expression does not parse or fails while evaluating. */
export class TransformError extends Error {
  readonly code = 'INVALID_INPUT' as const;
  constructor(
    readonly expression: string,
    message: string,
    readonly position?: number,
  ) {
    super(message);
    this.name = 'TransformError';
  }
}

function compile(expression: string): jsonata.Expression {
  try {
    return jsonata(expression, { timeout: TRANSFORM_LIMITS.timeoutMs, stack: TRANSFORM_LIMITS.stack, sequence: TRANSFORM_LIMITS.sequence });
  } catch (e) {
    const err = e as { message?: string; position?: number };
    throw new TransformError(expression, `JSONata does not parse: ${err.message ?? String(e)}${err.position !== undefined ? ` (at ${err.position})` : ''}`, err.position);
  }
}

/** The parse error of an expression, or null when it parses. For save-time checks. */
export function checkTransformExpression(expression: string): string | null {
  try {
    compile(expression);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

/**
 * Evaluates an expression over the rendered incoming variables. JSONata's "no result" (undefined) becomes null so
 * the output always matches `{result}`.
 * @throws TransformError on a parse or evaluation error (including the time and depth limits).
 */
export async function evaluateTransform(expression: string, input: Record<string, unknown>): Promise<{ result: unknown }> {
  const expr = compile(expression);
  try {
    const result: unknown = await expr.evaluate(input);
    // JSONata marks sequences with a non-enumerable flag; a JSON round trip gives plain data for the step record.
    return { result: result === undefined ? null : (JSON.parse(JSON.stringify(result)) as unknown) };
  } catch (e) {
    const err = e as { message?: string; position?: number };
    throw new TransformError(expression, `JSONata failed: ${err.message ?? String(e)}`, err.position);
  }
}
