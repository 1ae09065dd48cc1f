// Internet checksums (RFC 1071) over packet bytes, for the batched socket calls (csum.c).
#ifndef FAND_CSUM_H
#define FAND_CSUM_H
#include <stddef.h>
#include <stdint.h>

uint64_t csum_bytes(const uint8_t *p, size_t n);
uint16_t csum_fold(uint64_t sum);
void csum_complete(uint8_t *start, const uint8_t *end1, const uint8_t *p2, size_t n2, int32_t field_off);
uint8_t ipip_inner_csum_state(const uint8_t *p, size_t n);
uint8_t ipv4_l4_csum_state(const uint8_t *ip, size_t ihl, size_t l4);

#endif
