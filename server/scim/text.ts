// Text PostgreSQL cannot hold: NUL is refused in `text`, and a lone UTF-16 surrogate has no UTF-8 form (the
// driver silently sends U+FFFD for it, and `jsonb` refuses its `\ud800` escape outright).

/** Why `s` cannot be stored as text ("a NUL character", "an unpaired UTF-16 surrogate"), or undefined when it can. */
export function unstorableText(s: string): string | undefined {
  if (s.includes('\u0000')) return 'a NUL character';
  if (!s.isWellFormed()) return 'an unpaired UTF-16 surrogate';
  return undefined;
}

/**
 * `s` cut to `max` UTF-16 units and made storable (NUL and lone surrogates become U+FFFD), for records such as
 * the request log that must be written whatever the request carried. Cutting first means a pair split by the
 * cut is repaired too.
 */
export function storableText(s: string, max: number): string {
  return s.slice(0, max).replace(/\u0000/g, '\ufffd').toWellFormed();
}
