import { createHash } from 'node:crypto';
import { canonicalJson } from '../json';

/**
 * The identity of an integration model's document: the SHA-256 (hex) of its canonical JSON (members sorted, no
 * whitespace). `npm run generate` records it for every document in openapi/integrations/ beside the typed client
 * generated from it (adapter/clients/registry.gen.ts), and the runtime computes it for the model an integration
 * uses, so a typed client serves exactly the document it was generated from: one edited or uploaded at run time
 * (a different digest) takes the generic path. Pass the parsed document as the model keeps it (`$ref`s intact).
 */
export function modelDocumentDigest(document: unknown): string {
  return createHash('sha256').update(canonicalJson(document)).digest('hex');
}
