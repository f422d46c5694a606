import { MailError, MailErrorCode } from './errors';

/**
 * Header-injection checks. Whatever reaches a mail header (an address, a display name, the subject) is refused when
 * it holds a character that could end the header line or smuggle another one in: CR, LF, any other C0 or C1 control
 * character, DEL, and Unicode's line and paragraph separators. nodemailer folds or encodes most of these, but a
 * value that carries one is an attack or a bug upstream, never a name: we say so instead of sending it altered.
 */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/**
 * A plain address `local@domain` (the WHATWG `type=email` grammar): no display name, no comments, no quotes, no
 * commas or angle brackets (which would add recipients or hide the real one), at most 320 characters.
 */
const ADDRESS = /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** True when `value` holds a character that could break or add a header line. */
export function hasControlCharacter(value: string): boolean {
  return CONTROL.test(value);
}

const injection = (field: string) =>
  new MailError(MailErrorCode.HEADER_INJECTION, `${field} contains a line break or control character (header injection refused)`, { field });

/**
 * Checks header text (a subject, a display name).
 * @throws MailError HEADER_INJECTION naming `field` when it holds a control character.
 */
export function checkHeaderText(field: string, value: string): void {
  if (hasControlCharacter(value)) throw injection(field);
}

/**
 * Checks one address.
 * @throws MailError HEADER_INJECTION naming `field` for a control character; INVALID_ADDRESS for anything that is
 * not a plain `local@domain`.
 */
export function checkAddress(field: string, value: string): void {
  if (typeof value !== 'string') throw new MailError(MailErrorCode.INVALID_ADDRESS, `${field} is not an address`, { field });
  if (hasControlCharacter(value)) throw injection(field);
  if (value.length > 320 || !ADDRESS.test(value)) {
    throw new MailError(MailErrorCode.INVALID_ADDRESS, `${field} is not a valid email address (local@domain): '${value.slice(0, 80)}'`, { field });
  }
}

/** A recipient or sender: a plain address, or one with a display name. */
export type MailAddress = string | { readonly name?: string | undefined; readonly address: string };

/** Checks an address list (`to`, `cc`): each address and display name, named `to[0]`, `to[0].name`, … */
export function checkAddressList(field: string, list: readonly MailAddress[]): void {
  list.forEach((a, i) => {
    if (typeof a === 'string') return checkAddress(`${field}[${i}]`, a);
    checkAddress(`${field}[${i}]`, a.address);
    if (a.name !== undefined) checkHeaderText(`${field}[${i}].name`, a.name);
  });
}
