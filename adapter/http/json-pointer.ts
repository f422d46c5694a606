/** RFC 6901 JSON Pointer evaluation. */

export type PointerResult = { found: true; value: unknown } | { found: false };

/**
 * The value `pointer` designates in `doc`. `''` is the whole document. A pointer that does not start with `/`,
 * or that walks through a missing member, a non-container, or an array index that is not a plain decimal in range,
 * finds nothing.
 */
export function resolvePointer(doc: unknown, pointer: string): PointerResult {
  if (pointer === '') return { found: true, value: doc };
  if (!pointer.startsWith('/')) return { found: false };
  let node: unknown = doc;
  for (const raw of pointer.slice(1).split('/')) {
    // ~1 before ~0, so "~01" decodes to "~1" and not "/".
    const token = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(node)) {
      if (!/^(0|[1-9][0-9]*)$/.test(token)) return { found: false };
      const i = Number(token);
      if (i >= node.length) return { found: false };
      node = node[i];
    } else if (node !== null && typeof node === 'object') {
      if (!Object.prototype.hasOwnProperty.call(node, token)) return { found: false };
      node = (node as Record<string, unknown>)[token];
    } else {
      return { found: false };
    }
  }
  return { found: true, value: node };
}
