/**
 * The two places where caller text meets LDAP syntax: search filter values (RFC 4515) and DNs (RFC 4514).
 * Every value that reaches a filter goes through `escapeFilterValue`, so `*)(objectClass=*` is searched for
 * literally and can never widen or rewrite a query.
 */

/**
 * Escapes a value for use inside an RFC 4515 filter assertion: `\ * ( )` and NUL must be escaped; control
 * characters are escaped too so nothing invisible reaches the server. Non-ASCII text stays as UTF-8, as the
 * RFC allows.
 */
export function escapeFilterValue(value: string): string {
  let out = '';
  for (const ch of value) {
    const c = ch.codePointAt(0) as number;
    if (ch === '\\' || ch === '*' || ch === '(' || ch === ')' || c < 0x20 || c === 0x7f) {
      out += `\\${c.toString(16).padStart(2, '0')}`;
    } else {
      out += ch;
    }
  }
  return out;
}

const ATTRIBUTE_TYPE = /^(?:[A-Za-z][A-Za-z0-9-]*|\d+(?:\.\d+)+)$/;

/** True for an LDAP attribute description without options (`department`, `msDS-cloudExtensionAttribute1`). */
export function isAttributeName(name: string): boolean {
  return /^[A-Za-z][A-Za-z0-9-]{0,126}$/.test(name);
}

function decodeDnValue(raw: string): string | undefined {
  const bytes: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i] as string;
    if (ch === '\\') {
      const hex = raw.slice(i + 1, i + 3);
      if (/^[0-9a-fA-F]{2}$/.test(hex)) {
        bytes.push(parseInt(hex, 16));
        i += 2;
      } else if (i + 1 < raw.length) {
        bytes.push(...Buffer.from(raw[i + 1] as string, 'utf8'));
        i += 1;
      } else {
        return undefined;
      }
    } else {
      bytes.push(...Buffer.from(ch, 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/**
 * The DN's RDNs as `[type, value]` pairs with escapes decoded, or undefined when it is not a DN.
 * Multi-valued RDNs (`a=1+b=2`, unheard of in AD user and group names) are kept as one value.
 */
export function parseDn(dn: string): [string, string][] | undefined {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < dn.length; i++) {
    const ch = dn[i] as string;
    if (ch === '\\' && i + 1 < dn.length) {
      cur += ch + (dn[i + 1] as string);
      i += 1;
    } else if (ch === ',' || ch === ';') {
      parts.push(cur);
      cur = '';
    } else {
      cur += ch;
    }
  }
  parts.push(cur);
  const rdns: [string, string][] = [];
  for (const part of parts) {
    const eq = part.indexOf('=');
    if (eq <= 0) return undefined;
    const type = part.slice(0, eq).trim();
    // Leading and trailing unescaped spaces are not part of the value.
    const value = decodeDnValue(part.slice(eq + 1).replace(/^ +/, '').replace(/(?<!\\) +$/, ''));
    if (!ATTRIBUTE_TYPE.test(type) || value === undefined || value === '') return undefined;
    rdns.push([type, value]);
  }
  return rdns;
}

/**
 * A comparable form of a DN: AD compares names case-insensitively and ignores spacing and escape style,
 * so `CN=John Doe, OU=X,DC=test,DC=local` and `cn=john doe,ou=x,dc=TEST,dc=local` are the same entry.
 */
export function normalizeDn(dn: string): string | undefined {
  const rdns = parseDn(dn);
  if (!rdns) return undefined;
  // Values are re-escaped, so a decoded `\,` can never pose as an RDN boundary when comparing suffixes.
  return rdns.map(([t, v]) => `${t.toLowerCase()}=${v.toLowerCase().replace(/[\\,+="<>;#]/g, '\\$&')}`).join(',');
}

/** True when `dn` is `baseDn` or lies beneath it. */
export function isDnWithin(dn: string, baseDn: string): boolean {
  const d = normalizeDn(dn);
  const b = normalizeDn(baseDn);
  if (d === undefined || b === undefined) return false;
  return d === b || d.endsWith(`,${b}`);
}
