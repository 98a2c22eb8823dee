import { describe, expect, test } from "bun:test";
import { ConfigChangeNotice } from "../../../../control/agent/config-change.ts";

const KEY = "/coreos.com/network/config";
const A = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}';
const B = '{"Network":"10.245.0.0/16","Backend":{"Type":"vxlan"}}';

describe("ConfigChangeNotice", () => {
  test("one line per change: changed, deleted, back to the one in use; nothing while it stays", () => {
    const notice = new ConfigChangeNotice(KEY, A);
    expect(notice.observe(A)).toBeNull();
    expect(notice.observe(B)).toBe(
      `network config at ${KEY} changed in etcd; flannelette, like flanneld, applies it only at start-up: restart to apply`,
    );
    expect(notice.observe(B)).toBeNull();
    expect(notice.observe(null)).toBe(
      `network config at ${KEY} deleted in etcd; flannelette, like flanneld, reads it only at start-up: it goes on with the one it started with`,
    );
    expect(notice.observe(null)).toBeNull();
    expect(notice.observe(A)).toBe(`network config at ${KEY} is again the one in use`);
    expect(notice.observe(A)).toBeNull();
    expect(notice.observe(B + " ")).toMatch(/changed in etcd/);
  });
});
