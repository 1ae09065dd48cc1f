// Internet checksums (RFC 1071).

#include "common.h"
#include "csum.h"

// ---------------------------------------------------------------------------
// Internet checksums (RFC 1071), for the batched send and receive calls: the
// TypeScript packet code decides what is summed and where the result goes;
// the summing itself, a loop over every payload byte, is done here because
// it is the one per-byte cost of the hot path (a JS loop over 16-bit words
// is about ten times slower than 64-bit adds).

// Ones'-complement sum of p[0, n) as 16-bit words in memory order, unfolded.
// The sum commutes with byte order (RFC 1071 §2(B)), so a result folded and
// complemented here can be stored with memcpy as the network-order checksum.
uint64_t csum_bytes(const uint8_t *p, size_t n) {
  uint64_t sum = 0;
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    sum += (w & 0xffffffffu) + (w >> 32);
    p += 8;
    n -= 8;
  }
  while (n >= 2) {
    uint16_t w;
    memcpy(&w, p, 2);
    sum += w;
    p += 2;
    n -= 2;
  }
  if (n) {
    uint8_t tail[2] = {p[0], 0};  // an odd last byte is padded with zero
    uint16_t w;
    memcpy(&w, tail, 2);
    sum += w;
  }
  return sum;
}

uint16_t csum_fold(uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)sum;
}

static uint16_t swap16(uint16_t v) { return (uint16_t)((v << 8) | (v >> 8)); }

// Finishes a CHECKSUM_PARTIAL-style checksum over a message of two spans:
// the sum runs from `start` (in the first span) to the end of the second;
// the field at start + field_off (in the first span) already holds the
// folded pseudo-header sum. UDP (field_off 6) sends a zero sum as 0xffff.
void csum_complete(uint8_t *start, const uint8_t *end1, const uint8_t *p2,
                          size_t n2, int32_t field_off) {
  size_t n1 = (size_t)(end1 - start);
  uint16_t s = csum_fold(csum_bytes(start, n1));
  uint16_t s2 = csum_fold(csum_bytes(p2, n2));
  // A second span that starts at an odd offset from `start` has its words
  // on the other byte lane.
  uint16_t c = (uint16_t)~csum_fold((uint64_t)s + (n1 & 1 ? swap16(s2) : s2));
  if (c == 0 && field_off == 6) c = 0xffff;
  memcpy(start + field_off, &c, 2);
}

// Checks the inner TCP or UDP checksum of an IPv4-in-IPv4 message p[0, n):
// 1 when right, 2 when wrong, 0 when there is nothing to check (not IPIP, a
// fragment, lengths that disagree, UDP without a checksum, too short).
// Reads only inside p[0, n).
uint8_t ipip_inner_csum_state(const uint8_t *p, size_t n) {
  if (n < 40 || (p[0] >> 4) != 4 || p[9] != 4) return 0;
  size_t ohl = (size_t)(p[0] & 15) * 4;
  if (ohl < 20 || ohl + 20 > n) return 0;
  const uint8_t *in = p + ohl;
  size_t m = n - ohl;
  size_t ihl = (size_t)(in[0] & 15) * 4;
  if ((in[0] >> 4) != 4 || ihl < 20 || ihl > m) return 0;
  if ((((size_t)in[2] << 8) | in[3]) != m) return 0;
  if (((in[6] << 8 | in[7]) & 0x3fff) != 0) return 0;
  return ipv4_l4_csum_state(in, ihl, m - ihl);
}

// The TCP or UDP checksum of the IPv4 packet at ip (header of ihl bytes, then
// l4 bytes, all readable; not a fragment): 1 right, 2 wrong, 0 nothing to
// check (another protocol, too short, UDP without a checksum).
uint8_t ipv4_l4_csum_state(const uint8_t *ip, size_t ihl, size_t l4) {
  uint8_t proto = ip[9];
  if (proto == 6) {
    if (l4 < 20) return 0;
  } else if (proto == 17) {
    if (l4 < 8 || (ip[ihl + 6] == 0 && ip[ihl + 7] == 0)) return 0;
  } else {
    return 0;
  }
  if (l4 > 0xffff) return 0;
  uint16_t proto_be = htons(proto), len_be = htons((uint16_t)l4);
  uint64_t sum = csum_bytes(ip + 12, 8) + proto_be + len_be + csum_bytes(ip + ihl, l4);
  return csum_fold(sum) == 0xffff ? 1 : 2;
}
