/**
 * A value made on first use and kept: for JSON Schema validators, whose compilation (tens of milliseconds each,
 * a second in all) otherwise runs when their module is loaded, on every start, whether or not the process ever
 * validates that kind of input. A schema that does not compile then fails on its first use instead of at load;
 * the tests that validate each kind of input find it.
 */
export function onFirstUse<T>(make: () => T): () => T {
  let made: { value: T } | undefined;
  return () => {
    made ??= { value: make() };
    return made.value;
  };
}
