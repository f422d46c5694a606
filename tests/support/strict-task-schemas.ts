import Ajv2020 from 'ajv/dist/2020';
import { operationInputSchema, operationOutputSchema, type IntegrationModel } from '../../integration-model';

/**
 * A strict JSON Schema 2020-12 validator, less its style lints for types, required and tuples: compiling under it
 * proves a schema carries no OpenAPI-only keywords (nullable, discriminator, example, …).
 */
export function strictSchemaValidator(opts: { allErrors?: boolean } = {}): Ajv2020 {
  return new Ajv2020({ strict: true, strictTypes: false, strictRequired: false, strictTuples: false, validateFormats: false, ...opts });
}

/** Compiles every operation's task input and output schema strictly; one line per schema rejected (none: `[]`). */
export function rejectedTaskSchemas(model: IntegrationModel): string[] {
  const ajv = strictSchemaValidator();
  const rejected: string[] = [];
  for (const op of model.operations) {
    for (const [kind, schema] of [['input', operationInputSchema(op)], ['output', operationOutputSchema(op)]] as const) {
      try {
        ajv.compile(schema as object);
      } catch (e) {
        rejected.push(`${op.operationId} ${kind}: ${(e as Error).message}`);
      }
    }
  }
  return rejected;
}
