/**
 * A request path as it may be logged: the signed token of an approval link (`/approvals/links/<token>`) decides an
 * approval until it is used, so it is replaced; every other path is logged as it is.
 */
export function pathForLog(path: string): string {
  return path.replace(/^(\/approvals\/links\/)[^/]+/, '$1[redacted]');
}
