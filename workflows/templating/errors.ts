import { CodedError } from '../../adapter';

/**
 * Errors of the templating layer. Each carries a stable `code` and the data a step record or a 422 needs, so the
 * engine can fail a step with a message that names the variable instead of rendering an empty string.
 */

export type TemplateErrorCode = 'TEMPLATE_MISSING_VARIABLE' | 'TEMPLATE_SYNTAX';

export abstract class TemplateError<C extends TemplateErrorCode = TemplateErrorCode> extends CodedError<C> {}

/**
 * Thrown by the renderers when a reference does not resolve: the root or a segment of its path is absent
 * (`reason: 'undefined'`), or a `null` would have to be embedded in text (`reason: 'null'`).
 */
export class MissingVariableError extends TemplateError<'TEMPLATE_MISSING_VARIABLE'> {
  constructor(
    /** The reference as written: `order.username` or `$var.e4c7.crSysId`. */
    readonly variable: string,
    /** The longest prefix of the reference that resolved to nothing (equal to `variable` for a null). */
    readonly missingAt: string,
    readonly reason: 'undefined' | 'null' = 'undefined',
  ) {
    super(
      'TEMPLATE_MISSING_VARIABLE',
      reason === 'null'
        ? `template variable '${variable}' is null and cannot be embedded in text`
        : missingAt === variable
          ? `template variable '${variable}' is not set`
          : `template variable '${variable}' is not set ('${missingAt}' is missing)`,
    );
    this.name = 'MissingVariableError';
  }
}

/** Thrown when a `{{...}}` or `$var.` string cannot be parsed. `pointer` locates it inside the scanned value. */
export class TemplateSyntaxError extends TemplateError<'TEMPLATE_SYNTAX'> {
  constructor(
    readonly template: string,
    readonly detail: string,
    readonly pointer: string = '',
  ) {
    super('TEMPLATE_SYNTAX', `invalid template ${JSON.stringify(template)}: ${detail}`);
    this.name = 'TemplateSyntaxError';
  }
}
