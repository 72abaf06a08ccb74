/* SPDX-License-Identifier: MIT */
/* CRC32C (Castagnoli), with the SSE4.2 instruction or AVX-512 VPCLMULQDQ where the CPU has them. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* crc starts at 0 and chains: crc32c(crc32c(0, a, n), b, m) == crc32c(0, ab, n+m) */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);
/*
 * crc32c(crc, page, 4096) from page_crc = crc32c(0, page, 4096), without
 * reading the page again (a page checksummed ahead, written later).
 */
uint32_t crc32c_extend_page(uint32_t crc, uint32_t page_crc);
/* The portable table implementation (what crc32c() uses without SSE4.2), for tests. */
uint32_t crc32c_table(uint32_t crc, const void *buf, size_t len);
/* The crc32 instruction's path, never the folding one (the table's without SSE4.2), for tests. */
uint32_t crc32c_sse42(uint32_t crc, const void *buf, size_t len);
/* Which path crc32c() takes for long runs: "vpclmulqdq", "sse4.2" or "table". */
const char *crc32c_impl(void);
