/**
 * JSON helpers every room needs: the plain-object test, RFC 6901 JSON Pointers, and the canonical JSON text a
 * document digest is taken over. They live in the lowest room so that `integration-model`, `workflows` and `server`
 * share one definition instead of each keeping a copy.
 */

/** A JSON object (or any non-null, non-array object): what `typeof v === 'object'` should have meant. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** One pointer token escaped (RFC 6901 §3): `~` as `~0`, `/` as `~1`. */
export function escapePointerToken(token: string | number): string {
  return String(token).replace(/~/g, '~0').replace(/\//g, '~1');
}

/** One pointer token unescaped; `~1` before `~0`, so `~01` decodes to `~1` and not `/`. */
export function unescapePointerToken(token: string): string {
  return token.replace(/~1/g, '/').replace(/~0/g, '~');
}

/** The pointer made of `tokens` (`[]` is `''`, the whole document). */
export function toPointer(tokens: readonly (string | number)[]): string {
  return tokens.map((t) => `/${escapePointerToken(t)}`).join('');
}

/**
 * Splits a pointer (`''` or `/a/b`) into its unescaped tokens.
 * @throws Error when `pointer` is neither empty nor starts with `/`.
 */
export function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new Error(`not a JSON pointer: ${pointer}`);
  return pointer.slice(1).split('/').map(unescapePointerToken);
}

export type PointerResult = { found: true; value: unknown } | { found: false };

/**
 * The value `pointer` designates in `doc`. `''` is the whole document. A pointer that does not start with `/`,
 * or that walks through a missing member, a non-container, or an array index that is not a plain decimal in range,
 * finds nothing.
 */
export function resolvePointer(doc: unknown, pointer: string): PointerResult {
  if (pointer !== '' && !pointer.startsWith('/')) return { found: false };
  let node: unknown = doc;
  for (const token of parsePointer(pointer)) {
    if (Array.isArray(node)) {
      if (!/^(0|[1-9][0-9]*)$/.test(token)) return { found: false };
      const i = Number(token);
      if (i >= node.length) return { found: false };
      node = node[i];
    } else if (isRecord(node)) {
      if (!Object.prototype.hasOwnProperty.call(node, token)) return { found: false };
      node = node[token];
    } else {
      return { found: false };
    }
  }
  return { found: true, value: node };
}

/**
 * The value at `pointer` in `doc`, or undefined when any step is missing.
 * @throws Error when `pointer` is not a pointer (see {@link parsePointer}).
 */
export function getByPointer(doc: unknown, pointer: string): unknown {
  parsePointer(pointer);
  const found = resolvePointer(doc, pointer);
  return found.found ? found.value : undefined;
}

/**
 * Whether `pointer` designates a value in `doc` (one that may itself be undefined or null).
 * @throws Error when `pointer` is not a pointer (see {@link parsePointer}).
 */
export function hasPointer(doc: unknown, pointer: string): boolean {
  parsePointer(pointer);
  return resolvePointer(doc, pointer).found;
}

/**
 * JSON text with every object's members sorted by name (UTF-16 code units, as `Array.prototype.sort` orders
 * strings) and no whitespace, so two parses of one document give the same text whatever order their keys came in
 * (a YAML file, the same document read back from a JSONB column). Values serialise as `JSON.stringify` does them;
 * members whose value is undefined, a function or a symbol are left out, as `JSON.stringify` leaves them out.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value)) ?? 'null';
}

function sortKeys(value: unknown): unknown {
  if (value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    return sortKeys((value as { toJSON(): unknown }).toJSON());
  }
  if (Array.isArray(value)) return value.map(sortKeys);
  if (!isRecord(value)) return value;
  // No prototype, so a member named `__proto__` stays a member instead of replacing the prototype.
  const out = Object.create(null) as Record<string, unknown>;
  for (const key of Object.keys(value).sort()) out[key] = sortKeys(value[key]);
  return out;
}
