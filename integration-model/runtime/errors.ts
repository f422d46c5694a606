import { CodedError, GenericErrorCode, type FieldError } from '../../adapter';

/**
 * Thrown by {@link IntegrationRuntime.invoke} before any call is made, when the call cannot be what was asked:
 * `NOT_FOUND` for an integration or operation that does not exist (any more), `VALIDATION_FAILED` for an input the
 * operation's task input schema refuses (`errors` names each place, as `/body/<pointer into the input>`). Retrying
 * the same invocation can never succeed.
 */
export class InvocationError extends CodedError<typeof GenericErrorCode.NOT_FOUND | typeof GenericErrorCode.VALIDATION_FAILED> {
  override readonly name = 'InvocationError';

  static integrationNotFound(name: string): InvocationError {
    return new InvocationError(GenericErrorCode.NOT_FOUND, `integration '${name}' does not exist`);
  }

  static operationNotFound(message: string): InvocationError {
    return new InvocationError(GenericErrorCode.NOT_FOUND, message);
  }

  /** `issues` point into the task input; the error's fields point into a request body holding it (`/body/...`). */
  static invalidInput(issues: readonly { path: string; message: string }[]): InvocationError {
    const errors: FieldError[] = issues.map((i) => ({ path: `/body${i.path}`, message: i.message }));
    return new InvocationError(GenericErrorCode.VALIDATION_FAILED, errors.map((e) => `${e.path.replace(/^\/body\//, '')} ${e.message}`).join('; '), { errors });
  }
}
