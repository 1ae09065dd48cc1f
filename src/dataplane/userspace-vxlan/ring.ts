// Buffer geometry of a VXLAN worker (worker.ts) and the native batch calls.
//
// Outbound, a frame read from the TAP lands OUT_HEADROOM bytes into its slot
// behind its 10-byte virtio-net header; once that is read, the 8-byte VXLAN
// header is written over its tail and the message is sent from the same
// memory. A TCP super-frame's segments get their headers (VXLAN + Ethernet +
// IPv4 + TCP) in a header area after the slots and their payload from the
// slot in place. Inbound, datagrams (up to 64 KiB when GRO joined several)
// land at the start of their slots; the virtio-net headers of what is
// written to the TAP live in an area after them, and each frame or joined
// super-frame is written with one writev of header, frame and payloads.

export const BATCH = 64;
/** Bytes in front of each frame read from the TAP: virtio-net (10) + VXLAN (8), rounded up. */
export const OUT_HEADROOM = 64;
export const OUT_SLOT = 65536 + OUT_HEADROOM;
/** A GRO'd datagram is at most 64 KiB (udp_gro_receive_segment stops below 65536). */
export const IN_SLOT = 65536;
/** VXLAN (8) + Ethernet (14) + IPv4 (≤ 60) + TCP (≤ 60), rounded up. */
export const SEGMENT_HEADER_ROOM = 160;
/** Spans per native call (its limit, native/udp.c FAND_MAX_SPANS). */
export const MAX_SPANS = 4096;
/** Messages per udpSendBatch (the native FAND_MAX_BATCH). */
export const SEND_MESSAGES = 256;
/** Packets per tunWriteV. */
export const MAX_TAP_PACKETS = 256;
/** UDP_MAX_SEGMENTS (include/linux/udp.h): segments one send may carry. */
export const UDP_MAX_SEGMENTS = 64;
/** The UDP payload of one send: the unsegmented IPv4 packet's total length must fit 16 bits (0xffff - 20 - 8). */
export const UDP_MAX_PAYLOAD = 0xffff - 20 - 8;

/** How many segments of segSize bytes one UDP_SEGMENT send can carry. */
export function udpSegmentsPerSend(segSize: number): number {
  return Math.max(1, Math.min(UDP_MAX_SEGMENTS, Math.floor(UDP_MAX_PAYLOAD / segSize)));
}
