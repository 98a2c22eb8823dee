// include/uapi/asm-generic/fcntl.h (open flags not already in socket.ts) and include/uapi/asm-generic/file.h (flock).

export const O_CREAT = 0o100;

export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;
