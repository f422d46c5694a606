/** RFC 6901 JSON Pointer helpers (the whole module speaks pointers: errors, $refs, drop reports). */

export function escapeToken(token: string | number): string {
  return String(token).replace(/~/g, '~0').replace(/\//g, '~1');
}

export function unescapeToken(token: string): string {
  return token.replace(/~1/g, '/').replace(/~0/g, '~');
}

export function toPointer(tokens: readonly (string | number)[]): string {
  return tokens.map((t) => `/${escapeToken(t)}`).join('');
}

/** Splits a pointer ('' or '/a/b') into its tokens; throws on a string that is not a pointer. */
export function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new Error(`not a JSON pointer: ${pointer}`);
  return pointer.slice(1).split('/').map(unescapeToken);
}

const MISSING = Symbol('missing');

/** The value at `pointer` in `doc`, or undefined when any step is missing. */
export function getByPointer(doc: unknown, pointer: string): unknown {
  const found = lookup(doc, parsePointer(pointer));
  return found === MISSING ? undefined : found;
}

export function hasPointer(doc: unknown, pointer: string): boolean {
  return lookup(doc, parsePointer(pointer)) !== MISSING;
}

function lookup(doc: unknown, tokens: readonly string[]): unknown {
  let node: unknown = doc;
  for (const token of tokens) {
    if (Array.isArray(node)) {
      if (!/^(0|[1-9][0-9]*)$/.test(token)) return MISSING;
      const index = Number(token);
      if (index >= node.length) return MISSING;
      node = node[index];
    } else if (isRecord(node)) {
      if (!Object.prototype.hasOwnProperty.call(node, token)) return MISSING;
      node = node[token];
    } else {
      return MISSING;
    }
  }
  return node;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Follows a (validated, local) `$ref` on a non-schema object such as a parameter, response or scheme. */
export function resolveRef(document: Record<string, unknown>, node: unknown): unknown {
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
