import { createDirectory, DirectoryError, DirectoryErrorCode, type Database, type Directory, type Logger } from '../../../adapter';
import type * as Api from '../../api/gen/types.gen';
import { readDirectorySettings } from '../../gateway/settings';

/** The requester's directory attributes, copied onto the order when it is placed (the API's snapshot). */
export type RequesterSnapshot = Api.RequesterSnapshot;

/** Looks people up in a directory (Active Directory, an HR system); undefined when the person is not found. */
export interface RequesterDirectory {
  lookup(email: string): Promise<RequesterSnapshot | undefined>;
  /** The person's manager (an email), when the directory knows one; approvals are routed to them. */
  managerOf?(email: string): Promise<string | undefined>;
}

/** The process's one connection to the `active_directory` directory, opened on first use. */
export interface DirectoryProvider {
  /** The directory, or undefined while the `active_directory` settings are not configured. */
  get(): Promise<Directory | undefined>;
  /** Closes the directory's pooled connections, if it was opened. */
  close(): Promise<void>;
}

/**
 * Opens the directory from the `active_directory` settings (and their environment overrides) on first use and keeps
 * it: the directory pools its LDAP connections. While the settings are not configured every `get` reads them again,
 * so configuring them takes effect without a restart.
 */
export function createDirectoryProvider(db: Database, logger: Logger): DirectoryProvider {
  let directory: Promise<Directory | undefined> | undefined;
  // Said once per reason, not on every order placed while the settings are missing.
  let reported: string | undefined;
  return {
    get() {
      directory ??= readDirectorySettings(db).then(
        (s) => {
          reported = undefined;
          return createDirectory(s, { logger });
        },
        (e: unknown) => {
          const reason = e instanceof Error ? e.message : String(e);
          if (reason !== reported) logger.info('directory unavailable: the active_directory settings are not configured', { reason });
          reported = reason;
          directory = undefined;
          return undefined;
        },
      );
      return directory;
    },
    async close() {
      const d = await directory;
      directory = undefined;
      await d?.close();
    },
  };
}

/**
 * The requester directory over Active Directory: a person is found by `mail`, their snapshot is the consumer
 * attributes the settings map, their manager is the `manager` entry's mail. The directory is a convenience to
 * orders and approvals, never a precondition: while it is not configured, does not know the person, or cannot be
 * reached, the answer is "unknown" (logged), and orders keep what the caller sent and approvals go to the fallback
 * approver, as without a directory.
 */
export function adRequesterDirectory(directories: DirectoryProvider, logger: Logger): RequesterDirectory {
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
        return m?.mail ?? undefined;
      }),
  };
}
