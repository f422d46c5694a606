import { createTestApp, type TestApp } from '../support/app';
import { ENTERPRISE_USER, SCIM_ERROR, scimClient, userBody, type ScimClient } from '../support/scim';

describe('SCIM filters', () => {
  let t: TestApp;
  let scim: ScimClient;
  const id: Record<string, string> = {};
  beforeAll(async () => {
    t = await createTestApp();
    scim = await scimClient(t);
    const users: [string, Record<string, unknown>][] = [
      ['Alice.Smith@Example.com', { externalId: 'ext-A', displayName: 'Alice Smith', name: { givenName: 'Alice', familyName: 'Smith' }, emails: [{ value: 'alice@work.example.com', type: 'work', primary: true }, { value: 'alice@home.example.org', type: 'home' }], [ENTERPRISE_USER]: { department: 'Sales', employeeNumber: 'E-100' } }],
      ['bob.jones@example.com', { externalId: 'ext-B', displayName: 'Bob Jones', name: { givenName: 'Bob', familyName: 'Jones' }, emails: [{ value: 'bob@home.example.org', type: 'home' }], title: 'Engineer', [ENTERPRISE_USER]: { department: 'Engineering' } }],
      ['carol@example.net', { externalId: 'ext-C', name: { givenName: 'Carol', familyName: 'Smith' }, emails: [{ value: 'carol@work.example.com', type: 'work' }], active: false }],
    ];
    for (const [u, over] of users) {
      const res = await scim.post('/Users', userBody(u, over));
      expect(res.status).toBe(201);
      id[u.split(/[.@]/)[0]!.toLowerCase()] = res.body.id;
    }
  });
  afterAll(async () => {
    await t.close();
  });

  const names = async (filter: string): Promise<string[]> => {
    const res = await scim.get(`/Users?filter=${encodeURIComponent(filter)}`);
    expect(res.status).toBe(200);
    expect(res.body.totalResults).toBe(res.body.Resources.length);
    return res.body.Resources.map((u: { id: string }) => Object.keys(id).find((k) => id[k] === u.id)).sort();
  };

  test.each([
    ['userName eq "alice.smith@example.com"', ['alice']],
    ['USERNAME EQ "ALICE.SMITH@EXAMPLE.COM"', ['alice']],
    ['userName ne "alice.smith@example.com"', ['bob', 'carol']],
    ['userName co "JONES"', ['bob']],
    ['userName sw "car"', ['carol']],
    ['userName ew ".net"', ['carol']],
    ['userName gt "bob.zzz"', ['carol']],
    ['userName ge "bob.jones@example.com"', ['bob', 'carol']],
    ['userName lt "bob"', ['alice']],
    ['userName le "bob.jones@example.com"', ['alice', 'bob']],
    ['externalId eq "ext-B"', ['bob']],
    ['externalId eq "EXT-B"', []],
    ['displayName pr', ['alice', 'bob']],
    ['title pr', ['bob']],
    ['active eq false', ['carol']],
    ['active eq "True"', ['alice', 'bob']],
    ['name.familyName eq "smith"', ['alice', 'carol']],
    ['emails co "work.example"', ['alice', 'carol']],
    ['emails.value ew ".org"', ['alice', 'bob']],
    ['emails[type eq "work"].value eq "carol@work.example.com"', ['carol']],
    ['emails[type eq "work" and value co "alice"]', ['alice']],
    ['emails[type eq "home"]', ['alice', 'bob']],
    ['emails[primary eq true].value pr', ['alice']],
    [`${ENTERPRISE_USER}:department eq "sales"`, ['alice']],
    [`${ENTERPRISE_USER}:employeeNumber eq "E-100"`, ['alice']],
    ['name.familyName eq "Smith" and active eq true', ['alice']],
    ['userName sw "bob" or userName sw "carol"', ['bob', 'carol']],
    ['not (name.familyName eq "Smith")', ['bob']],
    ['name.familyName eq "Smith" and (emails.value co ".org" or userName ew ".net")', ['alice', 'carol']],
    ['meta.created gt "2000-01-01T00:00:00Z"', ['alice', 'bob', 'carol']],
    ['meta.lastModified lt "2000-01-01T00:00:00Z"', []],
    // Microsoft's reference collection sends unquoted values
    ['name.FamilyName eq Smith and (emails.Value co example.com or emails.Value co example.org)', ['alice', 'carol']],
    ['meta.Created gt 2015-10-10T14:38:21.8617979-07:00', ['alice', 'bob', 'carol']],
  ])('%s', async (filter, expected) => {
    expect(await names(filter)).toEqual(expected);
  });

  test('values are bound, never spliced into SQL', async () => {
    expect(await names(`userName eq "x' OR '1'='1"`)).toEqual([]);
    expect(await names('userName co "%"')).toEqual([]);
    expect(await names('userName co "_"')).toEqual([]);
  });

  test.each([
    'userName eq',
    'userName zz "x"',
    '(userName eq "x"',
    'userName eq "x" garbage',
    'emails[type eq "work"',
    'nosuchattr eq "x"',
    'active gt true',
    'meta.created gt "not a date"',
    'urn:example:unknown:2.0:User:foo eq "x"',
    'userName eq "unterminated',
  ])('400 invalidFilter: %s', async (filter) => {
    const res = await scim.get(`/Users?filter=${encodeURIComponent(filter)}`);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ schemas: [SCIM_ERROR], status: '400', scimType: 'invalidFilter' });
    expect(res.body.detail).toMatch(/filter/);
  });
});
