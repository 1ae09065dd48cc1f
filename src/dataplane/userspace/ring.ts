import { COUNTER_COUNT } from '../counters.js';

// Buffer geometry shared by the worker loop and the native batch calls.
//
// A ring is one Uint8Array cut into BATCH slots of SLOT_SIZE bytes. A packet
// read from the TUN lands HEADROOM bytes into its slot, so the 20-byte outer
// IPv4 header can be written in front of it and the whole IPIP packet sent
// from the same memory: no copy between read and send. Slots are 64 KiB
// because the kernel hands raw sockets reassembled IPIP packets of up to
// 64 KiB, and the TUN offloads of the performance work (TSO super-packets
// behind a 10- or 12-byte virtio-net header) need the same room; only the
// pages a packet touches become resident.

/** Bytes in front of each packet: outer IPv4 (20) + virtio-net header (12), rounded up. */
export const HEADROOM = 64;
export const SLOT_SIZE = 65536 + HEADROOM;
/** Packets per native read. */
export const BATCH = 64;
/** Messages per sendmmsg: the native layer's limit. A TSO super-packet becomes up to ~45 segments. */
export const SEND_BATCH = 256;
/**
 * Per-segment header room after the outbound ring: outer IPv4 (20) + inner
 * IPv4 (≤ 60) + TCP (≤ 60), rounded up. A segment is sent as two iovecs:
 * its headers from here, its payload from the super-packet in place.
 */
export const SEGMENT_HEADER_ROOM = 160;
/** Socket buffers: small ones make the kernel drop inbound IPIP under load. */
export const SOCKET_BUFFER = 8 << 20;
/** Fans one daemon can carry: each has a fixed row in every worker's counter block. */
export const MAX_FANS = 16;

/** Counter row of (worker, fan slot). The loop counter lives in slot 0's row. */
export function counterBase(worker: number, slot: number): number {
  return (worker * MAX_FANS + slot) * COUNTER_COUNT;
}
