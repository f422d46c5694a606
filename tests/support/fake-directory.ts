import { DirectoryError, DirectoryErrorCode } from '../../adapter';
import { directoryUnavailable, type RequesterCheck, type RequesterDirectory } from '../../server/domain/identity/requester-directory';

/** One person of a fake directory. */
export interface FakePerson {
  enabled?: boolean;
  department?: string | null;
  cost_center?: string | null;
  /** Group names the person is in (already flattened: nested membership is the real directory's business). */
  groups?: string[];
  manager?: string;
}

/** A switchable fake of the AD requester directory (what `adRequesterDirectory` answers), for API tests. */
export interface FakeDirectory extends RequesterDirectory {
  people: Record<string, FakePerson>;
  /** `configured`: answers; `unconfigured`: as without settings; `down`: configured but unreachable. */
  mode: 'configured' | 'unconfigured' | 'down';
  /** How many group searches were made. */
  groupSearches: number;
}

export function fakeDirectory(people: Record<string, FakePerson>): FakeDirectory {
  const d: FakeDirectory = {
    people,
    mode: 'configured',
    groupSearches: 0,
    async lookup(email) {
      const p = d.mode === 'configured' ? d.people[email] : undefined;
      return p ? { department: p.department ?? null, cost_center: p.cost_center ?? null, company: null, employee_id: null, title: null } : undefined;
    },
    async managerOf(email) {
      return d.mode === 'configured' ? d.people[email]?.manager : undefined;
    },
    async verify(email): Promise<RequesterCheck> {
      if (d.mode === 'unconfigured') return { status: 'unconfigured' };
      if (d.mode === 'down') throw directoryUnavailable('check the requester in the directory', new DirectoryError(DirectoryErrorCode.UNAVAILABLE, 'connect ECONNREFUSED'));
      const p = d.people[email];
      if (!p) return { status: 'not_found' };
      return {
        status: 'found',
        person: {
          enabled: p.enabled ?? true,
          snapshot: { department: p.department ?? null, cost_center: p.cost_center ?? null, company: null, employee_id: null, title: null },
          groups: async () => {
            d.groupSearches += 1;
            if (d.mode === 'down') throw directoryUnavailable('check the requester\'s group memberships', new DirectoryError(DirectoryErrorCode.UNAVAILABLE, 'x'));
            return new Set((p.groups ?? []).map((g) => g.toLowerCase()));
          },
        },
      };
    },
  };
  return d;
}
