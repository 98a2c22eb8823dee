import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DelegateStore } from "../../../../control/cni/delegate-store.ts";

describe("the delegate configs kept in dataDir", () => {
  let root = "";
  let store: DelegateStore;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), "fcni-store-"));
    store = new DelegateStore(join(root, "var/lib/cni/flannel"));
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test("one file per container, named by its ID, as flannel's plugin keeps them (dir 0700, file 0600)", async () => {
    await store.save("abc", '{"type":"bridge"}');
    expect(await store.load("abc")).toBe('{"type":"bridge"}');
    expect(await readdir(store.dir)).toEqual(["abc"]);
    expect((await stat(store.dir)).mode & 0o777).toBe(0o700);
    expect((await stat(store.pathOf("abc"))).mode & 0o777).toBe(0o600);
  });

  test("saving again replaces the config; removing forgets it; an unknown container has none", async () => {
    await store.save("abc", "1");
    await store.save("abc", "2");
    expect(await store.load("abc")).toBe("2");
    await store.remove("abc");
    await store.remove("abc");
    expect(await store.load("abc")).toBeNull();
    expect(await store.load("never")).toBeNull();
  });
});
