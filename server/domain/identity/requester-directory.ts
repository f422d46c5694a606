import { createDirectory, createGraphDirectory, DirectoryError, DirectoryErrorCode, normalizeDn, parseDn, type Database, type Directory, type DirectorySettings, type GraphDirectorySettings, type Logger } from '../../../adapter';
import type * as Api from '../../api/gen/types.gen';
import { CodedError, ErrorCode } from '../../errors';
import { readEntraDirectorySettings } from '../../gateway/entra-settings';
import { readDirectorySettings } from '../../gateway/settings';
import { onSettingsChanged } from '../settings/settings';

/** The requester's directory attributes, copied onto the order when it is placed (the API's snapshot). */
export type RequesterSnapshot = Api.RequesterSnapshot;

/** A person as an authoritative directory knows them at the moment an order is placed or the catalogue is read. */
export interface DirectoryPerson {
  /** False when the account is disabled (AD: ACCOUNTDISABLE in userAccountControl). */
  enabled: boolean;
  /** The consumer attributes the `active_directory` settings map (department, cost center, company, ...). */
  snapshot: RequesterSnapshot;
  /**
   * The groups the person is in, directly or through nested groups: each group's `sAMAccountName`, `cn` and
   * normalised DN, lower-cased. Asked on the first call only (one search), so unrestricted types cost nothing.
   * @throws CodedError DIRECTORY_UNAVAILABLE when the directory does not answer.
   */
  groups(): Promise<ReadonlySet<string>>;
}

/** What the requester check found: no directory configured, no such person, or the person. */
export type RequesterCheck = { status: 'unconfigured' } | { status: 'not_found' } | { status: 'found'; person: DirectoryPerson };

/** Who is in a group: no directory configured, no such group, or the members' mail addresses. */
export type GroupMembers = { status: 'unconfigured' } | { status: 'not_found' } | { status: 'found'; emails: string[] };

/** Looks people up in a directory (Active Directory, an HR system); undefined when the person is not found. */
export interface RequesterDirectory {
  /** The snapshot, best effort: unknown (undefined) when the person is missing or the directory fails. */
  lookup(email: string): Promise<RequesterSnapshot | undefined>;
  /** The person's manager (an email), when the directory knows one; approvals are routed to them. */
  managerOf?(email: string): Promise<string | undefined>;
  /**
   * The requester check of order placement and the catalogue, on directories that can be the authority on who
   * may order. Unlike `lookup` it does not swallow failures: once the directory is configured it is a
   * precondition. `unconfigured` while its settings are missing (placement then behaves as without a directory).
   * @throws CodedError DIRECTORY_UNAVAILABLE when the directory is configured but cannot be asked (unreachable,
   *   bind refused, TLS, bad settings), or the email matches more than one account.
   */
  verify?(email: string): Promise<RequesterCheck>;
  /**
   * The enabled members of a group (by `sAMAccountName`, or by DN when `group` is one), directly or through nested
   * groups, as lower-cased mail addresses, each once; members without a mail address are left out. Quorum approval
   * routing asks it when an order is placed.
   * @throws CodedError DIRECTORY_UNAVAILABLE when the directory is configured but cannot be asked: a quorum must
   *   not silently shrink because the DC was rebooting.
   */
  membersOf?(group: string): Promise<GroupMembers>;
  /**
   * The account behind a directory object id (Entra ID: a change notification names the user by id only), best
   * effort like `lookup`: undefined when unknown, not an Entra object id, or the directory cannot be asked.
   */
  accountById?(id: string): Promise<{ enabled: boolean; mail: string | null; userPrincipalName: string | null } | undefined>;
}

/** The groups of a directory user as entitlement rules name them: sAMAccountName, cn or DN, all lower-cased. */
export function groupNames(groups: readonly { dn: string; sAMAccountName: string; name: string }[]): Set<string> {
  const names = new Set<string>();
  for (const g of groups) {
    for (const n of [g.sAMAccountName, g.name, normalizeDn(g.dn) ?? g.dn]) if (n) names.add(n.toLowerCase());
  }
  return names;
}

/** The settings section that configures the directory the process asks: Active Directory, or Entra ID when chosen. */
export type DirectorySettingsSection = 'active_directory' | 'entra_id';

/** What to check in each section when the directory refuses a request. */
const SECTION_KEYS: Record<DirectorySettingsSection, string> = {
  active_directory: 'server, bind_dn, bind_password, base_dn, TLS',
  entra_id: 'tenant_id, client_id, client_secret, and the app\'s Graph permissions',
};

/**
 * A directory failure during a check that needs the directory's answer, as DIRECTORY_UNAVAILABLE (503). The detail
 * names the settings section to look at (the configured directory's: `active_directory`, or `entra_id` when Entra ID
 * is the directory), never the server's own text (it may name hosts and accounts); the directory's code travels as
 * `directory_code`.
 */
export function directoryUnavailable(what: string, err: unknown, section: DirectorySettingsSection = 'active_directory'): CodedError {
  const code = err instanceof DirectoryError ? err.code : undefined;
  const why =
    code === DirectoryErrorCode.AMBIGUOUS
      ? 'the email matches more than one directory account'
      : code === DirectoryErrorCode.UNAVAILABLE || code === undefined
        ? 'the directory did not answer'
        : `the directory refused the request (check the ${section} settings: ${SECTION_KEYS[section]})`;
  return new CodedError(ErrorCode.DIRECTORY_UNAVAILABLE, `cannot ${what}: ${why}; try again later`, {
    extra: { directory_code: code ?? 'UNAVAILABLE', settings_section: section },
  });
}

/** The process's one connection to the `active_directory` directory, opened on first use. */
export interface DirectoryProvider {
  /** The directory, or undefined while the `active_directory` settings are not configured. */
  get(): Promise<Directory | undefined>;
  /** Closes the directory's pooled connections, if it was opened. */
  close(): Promise<void>;
  /** The settings section of the directory `get` answers with (`entra_id` when Entra ID is chosen); default `active_directory`. */
  section?(): DirectorySettingsSection;
}

/**
 * Opens the directory from the `active_directory` settings (and their environment overrides) and keeps it: the
 * directory pools its LDAP connections. The settings are read when the provider is created (at start-up, outside any
 * transaction) and, while they are not configured, again in the background at most once per
 * {@link SETTINGS_REREAD_MS}: configuring them takes effect without a restart, from the call after that read.
 *
 * A caller never waits for a settings read once the first one is done. Why: approval routing and the leaver flow
 * ask the directory inside their transaction, and on PGlite (one connection) a read awaited there would wait for
 * that very transaction, forever.
 *
 * With `opts.fallback` (DEMO=1: the in-memory demo directory, demo-directory.ts) the fallback answers instead of
 * "no directory" while the settings are not configured — the same instance every time, so the changes runbooks make
 * to it stay visible.
 */
export function createDirectoryProvider(db: Database, logger: Logger, opts: { fallback?: Directory } = {}): DirectoryProvider {
  let directory: Promise<Directory | undefined> | undefined;
  // Said once per reason, not on every order placed while the settings are missing.
  let reported: string | undefined;
  let unconfigured = false;
  let lastRead = 0;
  let refreshing: Promise<unknown> | undefined;
  let chosenSection: DirectorySettingsSection = 'active_directory';
  const open = (): Promise<Directory | undefined> => {
    lastRead = Date.now();
    const notConfigured = (e: unknown): undefined => {
      const reason = e instanceof Error ? e.message : String(e);
      if (reason !== reported) {
        if (opts.fallback) logger.info('directory: the active_directory settings are not configured; the demo directory answers', { reason });
        else logger.info('directory unavailable: the active_directory settings are not configured', { reason });
      }
      reported = reason;
      unconfigured = true;
      return undefined;
    };
    // Entra ID, when chosen (entra_id.use_as_directory), answers instead of active_directory: the same Directory.
    type Chosen = { graph: GraphDirectorySettings } | { ldap: DirectorySettings };
    const settings = readEntraDirectorySettings(db).then((graph): Chosen | Promise<Chosen> => (graph ? { graph } : readDirectorySettings(db).then((ldap) => ({ ldap }))));
    return settings.then((s) => {
      chosenSection = 'graph' in s ? 'entra_id' : 'active_directory';
      try {
        const d = 'graph' in s ? createGraphDirectory(s.graph, { logger }) : createDirectory(s.ldap, { logger });
        reported = undefined;
        unconfigured = false;
        return d;
      } catch (e) {
        // Settings that cannot open a directory are "not configured" until they change, not an error kept forever.
        return notConfigured(e);
      }
    }, notConfigured);
  };
  // Read now, at construction (start-up), so no later caller has to.
  directory = open();
  // Saved in this process: read again at once (queued before any later request's transaction), and the old
  // connection closed once the new one is in place.
  const unsubscribe = onSettingsChanged((section) => {
    if (section !== 'active_directory' && section !== 'entra_id') return;
    const previous = directory;
    directory = open();
    void directory.then(async () => {
      const old = await previous?.catch(() => undefined);
      if (old && old !== opts.fallback) await old.close().catch(() => undefined);
    });
  });
  return {
    section: () => chosenSection,
    async get() {
      const d = await directory;
      if (d) return d;
      if (unconfigured) {
        if (!refreshing && Date.now() - lastRead >= SETTINGS_REREAD_MS) {
          refreshing = open()
            .then((next) => {
              if (next) directory = Promise.resolve(next);
            })
            .finally(() => (refreshing = undefined));
        }
        return opts.fallback;
      }
      return undefined;
    },
    async close() {
      unsubscribe();
      await refreshing;
      const d = await directory;
      directory = undefined;
      await d?.close();
    },
  };
}

/** How often settings that were not configured are read again (in the background) for the directory. */
export const SETTINGS_REREAD_MS = 1000;

/**
 * The requester directory over Active Directory: a person is found by `mail`, their snapshot is the consumer
 * attributes the settings map, their manager is the `manager` entry's mail.
 *
 * Two kinds of question, two failure rules:
 * - `verify` is order placement's requester check (exists, enabled, department, groups). While `active_directory`
 *   is not configured it answers `unconfigured` and placement behaves as without a directory; once configured the
 *   directory is a precondition and a failure to ask it is DIRECTORY_UNAVAILABLE (fail closed: a leaver whose
 *   account was disabled must not get an asset because the DC was rebooting).
 * - `lookup` and `managerOf` serve snapshots and approval routing, also for flows that must never stall on the
 *   directory (the leaver flow re-routing approvals, take-backs): a person the directory does not know, or a
 *   directory that cannot be reached, is "unknown" (logged), and approvals go to the fallback approver.
 */
export function adRequesterDirectory(directories: DirectoryProvider, logger: Logger): RequesterDirectory {
  // The configured directory's settings section, asked when the failure happens (the choice can change at run time).
  const unavailable = (what: string, err: unknown): CodedError => directoryUnavailable(what, err, directories.section?.() ?? 'active_directory');
  const ask = async <T>(what: string, email: string, fn: (d: Directory) => Promise<T | undefined>): Promise<T | undefined> => {
    try {
      const d = await directories.get();
      if (!d) return undefined;
      return await fn(d);
    } catch (e) {
      if (e instanceof DirectoryError && e.code === DirectoryErrorCode.NOT_FOUND) return undefined;
      logger.warn(`directory ${what} failed; going on without it`, { email, error: e instanceof Error ? e.message : String(e) });
      return undefined;
    }
  };
  return {
    lookup: (email) =>
      ask('lookup', email, async (d) => {
        const u = await d.findUser({ by: 'mail', value: email });
        return { ...u.attributes };
      }),
    managerOf: (email) =>
      ask('manager lookup', email, async (d) => {
        const m = await d.findManager({ by: 'mail', value: email });
        // A disabled manager cannot act on the approval: the fallback approver gets it instead.
        if (m && !m.enabled) {
          logger.info('the requester\'s manager is disabled in the directory; routing to the fallback approver', { email });
          return undefined;
        }
        return m?.mail ?? undefined;
      }),
    accountById: (id) =>
      // Only object ids (GUIDs) name an account this way; an AD directory is not asked about them.
      /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)
        ? ask('account lookup', id, async (d) => {
            const u = await d.findUser({ by: 'dn', value: id });
            return { enabled: u.enabled, mail: u.mail, userPrincipalName: u.userPrincipalName };
          })
        : Promise.resolve(undefined),
    membersOf: async (group) => {
      let d: Directory | undefined;
      try {
        d = await directories.get();
      } catch (e) {
        throw unavailable('resolve the approver group', e);
      }
      if (!d) return { status: 'unconfigured' };
      const key = parseDn(group) ? ({ by: 'dn', value: group } as const) : ({ by: 'sAMAccountName', value: group } as const);
      try {
        const users = await d.listGroupMembers(key, { nested: true });
        const emails = users.filter((u) => u.enabled && u.mail).map((u) => u.mail!.trim().toLowerCase());
        return { status: 'found', emails: [...new Set(emails)] };
      } catch (e) {
        // An unknown group, or a DN outside the base DN, names nobody the directory can vouch for.
        if (e instanceof DirectoryError && (e.code === DirectoryErrorCode.NOT_FOUND || e.code === DirectoryErrorCode.INVALID_INPUT)) return { status: 'not_found' };
        logger.warn('directory group member lookup failed', { group, error: e instanceof Error ? e.message : String(e) });
        throw unavailable('resolve the approver group', e);
      }
    },
    verify: async (email) => {
      let d: Directory | undefined;
      try {
        d = await directories.get();
      } catch (e) {
        throw unavailable('check the requester in the directory', e);
      }
      if (!d) return { status: 'unconfigured' };
      const directory = d;
      let user;
      try {
        user = await directory.findUser({ by: 'mail', value: email });
      } catch (e) {
        if (e instanceof DirectoryError && e.code === DirectoryErrorCode.NOT_FOUND) return { status: 'not_found' };
        logger.warn('directory requester check failed', { email, error: e instanceof Error ? e.message : String(e) });
        throw unavailable('check the requester in the directory', e);
      }
      let groups: Promise<ReadonlySet<string>> | undefined;
      return {
        status: 'found',
        person: {
          enabled: user.enabled,
          snapshot: { ...user.attributes },
          groups: () =>
            (groups ??= directory.listGroups({ by: 'dn', value: user.dn }, { nested: true }).then(groupNames, (e: unknown) => {
              logger.warn('directory group lookup failed', { email, error: e instanceof Error ? e.message : String(e) });
              throw unavailable('check the requester\'s group memberships', e);
            })),
        },
      };
    },
  };
}
