// The benchmarks' one check of an integer flag: a bad value ends the run with one line naming the flag.

/** `value` of `--name` as an integer of at least `min`; throws `--name must be an integer >= min, got value`. */
export function intFlag(name: string, value: string | undefined, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got ${value}`);
  return n;
}
