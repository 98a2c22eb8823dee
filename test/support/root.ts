// Whether the tests run as root: namespaces, TAPs, raw sockets and other users need it, and the tests that use
// them skip otherwise (`describe.skipIf(!isRoot)`).
export const isRoot = process.getuid?.() === 0;
