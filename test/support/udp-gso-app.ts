// An application that uses UDP GSO over the overlay, for the USO tests: run inside a node's namespace.
//
//   bun test/support/udp-gso-app.ts send <ip> <port> <sends> <segment-size> <bytes-per-send>
//       sends <sends> UDP_SEGMENT messages; datagram k carries its 4-byte number, then bytes (k + j) & 0xff
//   bun test/support/udp-gso-app.ts receive <port> <expected> <timeout-ms>
//       prints `listening`, then one JSON line: datagrams received, total bytes, sizes seen, and how many
//       carried a wrong pattern
// The sender goes through native-bindings (the same UDP_SEGMENT code the data plane uses): Bun's dgram has
// no GSO, and the point is that the kernel hands the TAP one UDP super-frame per send.

import { createSocket } from "node:dgram";
import { loadLibc } from "../../native-bindings/index.ts";
import { openUdpSourceSocket, UdpGsoSender } from "../../native-bindings/udp-gso.ts";
import { EAGAIN } from "../../native-bindings/linux/errno.ts";
import { ip4 } from "../../testbed/ipv4.ts";

function fill(buf: Uint8Array, firstDatagram: number, segmentSize: number, bytes: number): number {
  let k = firstDatagram;
  for (let off = 0; off < bytes; off += segmentSize, k++) {
    const end = Math.min(bytes, off + segmentSize);
    new DataView(buf.buffer, buf.byteOffset + off, 4).setUint32(0, k);
    for (let j = off + 4; j < end; j++) buf[j] = (k + (j - off)) & 0xff;
  }
  return k;
}

const [mode, ...args] = process.argv.slice(2);
if (mode === "send") {
  const [ip, port, sends, segmentSize, bytes] = [args[0], ...args.slice(1).map(Number)] as [string, number, number, number, number];
  const libc = await loadLibc();
  const scratch = new Uint8Array(4096);
  const fd = openUdpSourceSocket(libc, 0, 1 << 20, scratch, libc.addressOf(scratch));
  if (fd < 0) throw new Error(`socket: errno ${-fd}`);
  const gso = new UdpGsoSender(libc);
  const buf = new Uint8Array(bytes);
  const address = libc.addressOf(buf);
  let datagram = 0;
  for (let s = 0; s < sends; s++) {
    datagram = fill(buf, datagram, segmentSize, bytes);
    for (;;) {
      const r = gso.send(fd, address, bytes, segmentSize, ip4(ip), port);
      if (r >= 0) break;
      if (r !== -EAGAIN) throw new Error(`UDP_SEGMENT send failed: errno ${-r}`);
      await Bun.sleep(1);
    }
    await Bun.sleep(5); // paced: the test is about correctness, not about filling socket buffers
  }
  libc.close(fd);
} else if (mode === "receive") {
  const [port, expected, timeoutMs] = args.map(Number) as [number, number, number];
  const socket = createSocket("udp4");
  let count = 0,
    total = 0,
    wrong = 0;
  const sizes = new Set<number>();
  const finish = () => {
    console.log(JSON.stringify({ datagrams: count, bytes: total, sizes: [...sizes].sort((a, b) => a - b), wrong }));
    socket.close();
    process.exit(0);
  };
  socket.on("message", (msg: Buffer) => {
    count++;
    total += msg.length;
    sizes.add(msg.length);
    const k = msg.length >= 4 ? msg.readUInt32BE(0) : -1;
    for (let j = 4; j < msg.length; j++)
      if (msg[j] !== ((k + j) & 0xff)) {
        wrong++;
        break;
      }
    if (count === expected) finish();
  });
  socket.bind(port, () => console.log("listening"));
  setTimeout(finish, timeoutMs);
} else {
  console.error("usage: udp-gso-app.ts send <ip> <port> <sends> <segment-size> <bytes> | receive <port> <expected> <timeout-ms>");
  process.exit(2);
}
