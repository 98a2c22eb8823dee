// Teardown that runs every step even when one fails, so that a failing step never leaves namespaces,
// processes or files of the later ones behind; the first failure is thrown at the end.

export async function cleanupAll(steps: readonly (() => Promise<unknown> | unknown)[]): Promise<void> {
  let first: unknown = null;
  for (const step of steps) {
    try {
      await step();
    } catch (err) {
      first ??= err;
    }
  }
  if (first !== null) throw first;
}
