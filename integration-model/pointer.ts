import { getByPointer, isRecord } from '../adapter';

/**
 * Follows a (validated, local) `$ref` on a non-schema object such as a parameter, response or scheme, through
 * chains of them; undefined for a cycle or a reference that leads nowhere. The JSON Pointer helpers it walks with
 * are adapter's (`adapter/json.ts`), shared by every room.
 */
export function resolveRef(document: unknown, node: unknown): unknown {
  const seen = new Set<string>();
  let current = node;
  while (isRecord(current) && typeof current.$ref === 'string') {
    const pointer = decodeURIComponent(current.$ref.slice(1));
    if (seen.has(pointer)) return undefined;
    seen.add(pointer);
    current = getByPointer(document, pointer);
  }
  return current;
}
