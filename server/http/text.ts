// Text PostgreSQL cannot hold: NUL is refused in `text`, and a lone UTF-16 surrogate has no UTF-8 form (the
// driver silently sends U+FFFD for it, and `jsonb` refuses its `\ud800` escape outright).

/** What `s` holds that cannot be stored as text (the NUL character, a lone surrogate), or undefined when nothing. */
export function unstorableText(s: string): string | undefined {
  if (s.includes('\u0000')) return 'the NUL character (U+0000)';
  if (!s.isWellFormed()) return 'an unpaired UTF-16 surrogate (a lone surrogate)';
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
