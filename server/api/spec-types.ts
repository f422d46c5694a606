// How hand-written types stay tied to the ones generated from openapi/provisio.yaml (server/api/gen). A domain type
// is either the generated one (an alias), derived from it (`Stored`, `SnakeCased`, Pick/Omit), or, where it must be
// written out, checked against it with `Assert<Same<…>>`, so a spec change that breaks the mapping fails
// `npm run typecheck` instead of drifting until a response validator or a user notices.

/**
 * `true` when `A` and `B` are the same type, `false` otherwise. Stricter than mutual assignability: optional vs
 * required, `readonly`, and `any` all count as differences.
 */
export type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

/** Compiles only when `T` is `true`: `type _ = Assert<Same<Mine, Generated>>` fails the typecheck at that line. */
export type Assert<T extends true> = T;

/**
 * An API type as the database hands it back: its ISO 8601 date-time fields `K` (timestamptz columns) as `Date`,
 * `null` kept where the API allows it; every other field as the API declares it.
 */
export type Stored<T, K extends keyof T> = { [P in keyof T]: P extends K ? (null extends T[P] ? Date | null : Date) : T[P] };

type SnakeCase<S extends string> = S extends `${infer H}${infer R}`
  ? H extends Lowercase<H>
    ? `${H}${SnakeCase<R>}`
    : `_${Lowercase<H>}${SnakeCase<R>}`
  : S;

type CamelCase<S extends string> = S extends `${infer H}_${infer R}` ? `${H}${Capitalize<CamelCase<R>>}` : S;

/** `T` with its (top-level) camelCase keys in snake_case, as the API spells them: `timeZone` → `time_zone`. */
export type SnakeCased<T> = { [K in keyof T as K extends string ? SnakeCase<K> : K]: T[K] };

/** `T` with its (top-level) snake_case keys in camelCase, as the TypeScript domain spells them. */
export type CamelCased<T> = { [K in keyof T as K extends string ? CamelCase<K> : K]: T[K] };

const toSnake = (k: string): string => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const toCamel = (k: string): string => k.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());

/**
 * A domain object in the API's spelling. Only the top-level keys are renamed: nested values (a schedule's `inputs`,
 * say) are data whose keys belong to the user.
 */
export function snakeKeys<T extends object>(value: T): SnakeCased<T> {
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [toSnake(k), v])) as SnakeCased<T>;
}

/** A validated API body in the domain's spelling; top-level keys only, as `snakeKeys`. */
export function camelKeys<T extends object>(value: T): CamelCased<T> {
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [toCamel(k), v])) as CamelCased<T>;
}
