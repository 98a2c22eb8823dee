import { expect, test } from "bun:test";
import { isIp6Text } from "../../../control/ip6.ts";

test.each([
  ["::", true],
  ["::1", true],
  ["fd00:10:244:3::", true],
  ["2001:db8:0:0:0:0:0:1", true],
  ["::ffff:10.0.0.1", true],
  ["fe80::1:2:3:4:5:6", true],
  ["1:2:3:4:5:6:7:8:9", false],
  ["1::2::3", false],
  ["12345::", false],
  ["1:2:3:4:5:6:7", false],
  ["1:2:3:4:5:6:7::8", false],
  ["g::", false],
  ["10.0.0.1", false],
  ["", false],
])("%s is IPv6 text: %p", (text, expected) => {
  expect(isIp6Text(text)).toBe(expected);
});
