import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, closeSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/*
 * Signed one-click approval links.
 *
 * A link is a row of `approval_links` (links.ts) and a token in the mailed URL: `<id>.<exp>.<mac>`, where `id` is
 * the row's random 128-bit id (base64url), `exp` its expiry in Unix seconds, and `mac` an HMAC-SHA256 over the
 * link's whole binding (id, approval, order, approver, decision, expiry). The MAC is recomputed from the row when
 * the link is used, so a token whose id, expiry or MAC was altered, or a row changed after issue, matches nothing.
 * The row keeps no secret: without the key, knowing it grants nothing.
 *
 * HMAC rather than Ed25519: the service alone mints and checks links, so there is no verifier that should be unable
 * to sign; a symmetric MAC is the simpler tool (one 32-byte key, a 32-byte tag, no key pair to keep in step), and
 * Ed25519 would add a private key to guard without a party that needs only the public half.
 *
 * Why a "link reference" between the row and the URL: the outbox renders each mail's links when it sends the mail
 * (its rows must never hold a usable link), through a synchronous `linkUrl(ref)`. To sign the whole binding there
 * without reading the database, the reference the mail's data keeps is the binding in clear: `<id>.<approval id>.
 * <order id>.<a|d>.<exp>.<approver, base64url>`. It is not a secret (it has no MAC; it names nothing the mail's
 * recipient list does not already show), and `url()` turns it into the signed URL.
 */

export type LinkDecision = 'approved' | 'declined';

/** What a link decides, and until when: the fields its MAC binds. */
export interface LinkBinding {
  /** The row's id (the token's jti): 22 base64url characters (128 random bits). */
  linkId: string;
  approvalId: number;
  orderId: number;
  /** The approver the link decides as, lower-cased. */
  approverEmail: string;
  decision: LinkDecision;
  /** Whole seconds (the token carries Unix seconds). */
  expiresAt: Date;
}

/** The signer's failure to accept a token, for the LINK_INVALID page (never shown in more detail than "invalid"). */
export type LinkRejection = 'malformed' | 'unknown' | 'signature';

export type LinkVerification<R extends LinkBinding> = { ok: true; link: R } | { ok: false; reason: LinkRejection };

export interface LinkSigner {
  /**
   * The URL of a link reference (what `issueApprovalLinks` returns and a mail's `links` keep): `<PUBLIC_URL>/approvals/
   * links/<token>`. Synchronous, so the outbox worker's `linkUrl` is this. Throws for a string that is not a reference.
   */
  url(linkRef: string): string;
  /** The token of a binding (what `url` puts after `/approvals/links/`). */
  token(binding: LinkBinding): string;
  /**
   * Checks a token: well-formed, its link known (`load` reads the row by id), and its MAC the one of the row's
   * binding with the token's expiry (compared in constant time). Expiry and use are the caller's to judge: a
   * correctly signed expired link is `ok` here and answered 410 there.
   */
  verify<R extends LinkBinding>(token: string, load: (linkId: string) => Promise<R | undefined>): Promise<LinkVerification<R>>;
}

const LINK_ID = /^[A-Za-z0-9_-]{22}$/;
const TOKEN = /^([A-Za-z0-9_-]{22})\.([1-9][0-9]{0,11})\.([A-Za-z0-9_-]{43})$/;
const REF = /^([A-Za-z0-9_-]{22})\.([1-9][0-9]{0,15})\.([1-9][0-9]{0,15})\.([ad])\.([1-9][0-9]{0,11})\.([A-Za-z0-9_-]{1,1400})$/;
const MAC_INFO = 'provisio approval-link mac v1';

/** A new link id: 128 random bits, base64url (22 characters). */
export function newLinkId(): string {
  return randomBytes(16).toString('base64url');
}

/** The link reference of a binding (see the module comment). */
export function formatLinkRef(b: LinkBinding): string {
  return [b.linkId, b.approvalId, b.orderId, b.decision === 'approved' ? 'a' : 'd', unixSeconds(b.expiresAt), Buffer.from(b.approverEmail, 'utf8').toString('base64url')].join('.');
}

/** The binding a link reference names; undefined for anything else. */
export function parseLinkRef(ref: string): LinkBinding | undefined {
  const m = REF.exec(ref);
  if (!m) return undefined;
  const approverEmail = Buffer.from(m[6]!, 'base64url').toString('utf8');
  const [approvalId, orderId] = [Number(m[2]), Number(m[3])];
  if (!Number.isSafeInteger(approvalId) || !Number.isSafeInteger(orderId) || approverEmail === '') return undefined;
  return { linkId: m[1]!, approvalId, orderId, approverEmail, decision: m[4] === 'a' ? 'approved' : 'declined', expiresAt: new Date(Number(m[5]) * 1000) };
}

export const unixSeconds = (d: Date): number => Math.floor(d.getTime() / 1000);

/**
 * The signer of a process. `key` is the service's link key (32 bytes or more), or a function that loads it when a MAC
 * is first computed (so an app that never sees a real link never touches a key file); the MAC key is derived from it
 * with HKDF, so the stored key is never used for anything else directly. `publicUrl` is where people reach the service
 * (PUBLIC_URL), without a trailing slash.
 * @throws Error for a key shorter than 32 bytes (at construction, or at first use when loaded lazily).
 */
export function createLinkSigner(opts: { key: Buffer | (() => Buffer); publicUrl: string }): LinkSigner {
  let macKey: Buffer | undefined;
  const deriveKey = (key: Buffer): Buffer => {
    if (key.length < 32) throw new Error('the approval link key must be at least 32 bytes');
    return Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), MAC_INFO, 32));
  };
  if (Buffer.isBuffer(opts.key)) macKey = deriveKey(opts.key);
  const load = typeof opts.key === 'function' ? opts.key : undefined;
  const base = opts.publicUrl.replace(/\/+$/, '');

  // JSON of a fixed array: unambiguous whatever the fields hold, and the version is part of what is signed.
  const mac = (b: LinkBinding): Buffer =>
    createHmac('sha256', (macKey ??= deriveKey(load!())))
      .update(JSON.stringify(['v1', b.linkId, b.approvalId, b.orderId, b.approverEmail, b.decision, unixSeconds(b.expiresAt)]))
      .digest();

  const token = (b: LinkBinding): string => {
    if (!LINK_ID.test(b.linkId)) throw new Error('not a link id');
    return `${b.linkId}.${unixSeconds(b.expiresAt)}.${mac(b).toString('base64url')}`;
  };

  return {
    url(linkRef) {
      const b = parseLinkRef(linkRef);
      if (!b) throw new Error(`not an approval link reference: '${linkRef.slice(0, 30)}…'`);
      return `${base}/approvals/links/${token(b)}`;
    },
    token,
    async verify(tokenText, load) {
      const m = TOKEN.exec(tokenText);
      if (!m) return { ok: false, reason: 'malformed' };
      const link = await load(m[1]!);
      if (!link) return { ok: false, reason: 'unknown' };
      // The row's binding with the token's expiry: an altered expiry changes the MAC like any other field.
      const expected = mac({ ...link, expiresAt: new Date(Number(m[2]) * 1000) });
      const given = Buffer.from(m[3]!, 'base64url');
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'signature' };
      // Same MAC with the token's expiry but a row whose expiry differs cannot happen unless the row was changed.
      if (unixSeconds(link.expiresAt) !== Number(m[2])) return { ok: false, reason: 'signature' };
      return { ok: true, link };
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The key

/** A key that cannot be used: the message names the setting or the file and what is wrong, never the key. */
export class LinkKeyError extends Error {
  readonly code = 'APPROVAL_LINK_KEY';
  constructor(message: string) {
    super(message);
    this.name = 'LinkKeyError';
  }
}

export const LINK_KEY_FILE = 'approval-link.key';
const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;

/** Decodes APPROVAL_LINK_KEY (standard or URL-safe base64, at least 32 bytes). Throws LinkKeyError. */
export function decodeLinkKey(text: string, source = 'APPROVAL_LINK_KEY'): Buffer {
  const s = text.trim();
  if (!BASE64.test(s)) throw new LinkKeyError(`${source} must be base64`);
  const key = Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (key.length < 32) throw new LinkKeyError(`${source} must decode to at least 32 bytes (got ${key.length}); e.g. \`openssl rand -base64 32\``);
  return key;
}

/**
 * The link key of this service: APPROVAL_LINK_KEY when set; else the key in `DATA_DIR/approval-link.key`, generated
 * (32 random bytes, base64, mode 0600) on first use. Every process that mints or checks links must hold the same key:
 * processes on other machines (several `serve` behind a balancer, workers elsewhere) need APPROVAL_LINK_KEY.
 * Replacing the key invalidates every link already mailed (they answer 403).
 *
 * Several processes may start at once on one DATA_DIR: the file is written under a temporary name and linked into
 * place, which fails if another process got there first; that one's key is then read. A file readable by group or
 * others is refused, as ssh refuses such a private key.
 * @throws LinkKeyError for a bad APPROVAL_LINK_KEY, a key file that is not a key, or one others may read.
 */
export function loadLinkKey(opts: { envKey?: string | undefined; dataDir: string }): { key: Buffer; source: 'env' | 'file' | 'generated' } {
  if (opts.envKey !== undefined && opts.envKey !== '') return { key: decodeLinkKey(opts.envKey), source: 'env' };
  const path = join(opts.dataDir, LINK_KEY_FILE);
  const read = (): Buffer | undefined => {
    let mode: number;
    try {
      mode = statSync(path).mode;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    if ((mode & 0o077) !== 0) {
      throw new LinkKeyError(`${path} is readable by others (mode ${(mode & 0o777).toString(8)}); run \`chmod 600 ${path}\``);
    }
    return decodeLinkKey(readFileSync(path, 'utf8'), path);
  };
  const existing = read();
  if (existing) return { key: existing, source: 'file' };

  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, `${randomBytes(32).toString('base64')}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    chmodSync(tmp, 0o600); // whatever the umask made of it
    linkSync(tmp, path);
    return { key: read()!, source: 'generated' };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    return { key: read()!, source: 'file' };
  } finally {
    unlinkSync(tmp);
  }
}
