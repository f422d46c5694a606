// The error a promise rejects with, when it is of the expected class; anything else (a resolution, another
// error) fails the calling test.

/** The rejection of `p` as an instance of `type`; throws when `p` resolves or rejects with something else. */
export async function rejectionOf<E extends Error>(p: Promise<unknown>, type: abstract new (...args: never[]) => E): Promise<E> {
  try {
    await p;
  } catch (e) {
    if (e instanceof type) return e;
    throw e;
  }
  throw new Error(`expected a ${type.name}, but the call succeeded`);
}
