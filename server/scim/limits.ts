// What one SCIM request may ask for. They bound the work a single request does, so no IdP call (or a fuzzer's)
// holds the event loop or a group's row lock for long; beyond them the answer is 413 with scimType tooMany.
// `npm run bench:scim-group` (2 shared cores): adding 10,000 members in one PATCH takes 0.2-0.4 s with no
// event-loop stall above ~80 ms on PGlite or PostgreSQL, and 20,000 take twice that (the work is linear). The
// 1 MiB body limit already stops near 20,000 `{"value": id}` members; the group updates Okta and Entra send name
// a few members per PATCH, so 10,000 leaves room for a large PUT while halving what the body limit alone allows.
// 1,000 operations, each removing one member by `value eq`, take ~50 ms.

/** PatchOp `Operations` in one PATCH (users and groups). */
export const MAX_PATCH_OPERATIONS = 1000;

/**
 * Member values one request names: the elements of every add, replace and remove-by-value-list of `members`
 * in a PATCH, or of `members` in a POST or PUT.
 */
export const MAX_MEMBER_VALUES = 10_000;

/**
 * PATCH operations that select members by anything other than `members[value eq "…"]` (e.g. `members[display
 * co "x"]`, `members.display`): each one reads the whole group, so they are few per request.
 */
export const MAX_MEMBER_FILTER_OPERATIONS = 10;
