/* SPDX-License-Identifier: MIT */
/*
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every
 * image. Page images are GiB-sized, so the SSE4.2 crc32 instruction is used
 * where the CPU has it (this file is compiled with -msse4.2; the instruction
 * is only executed after __builtin_cpu_supports says so). Without it, a
 * slicing-by-8 table implementation.
 *
 * The hardware path runs three independent crc32 chains over three adjacent
 * blocks (the instruction has a latency of 3 cycles and a throughput of 1), and
 * merges them with precomputed "shift by N zero bytes" tables, so it runs near
 * one 8-byte word per cycle instead of one per three.
 */
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <nmmintrin.h>

#include "crc32c.h"

#define CRC32C_POLY 0x82F63B78u

/* Bytes per lane in the three-way hardware loop. */
#define LANE_BYTES 4096u

struct crc32c_tables {
	uint32_t slice[8][256];
	/* state byte k of value b advanced over LANE_BYTES (shift1) or 2*LANE_BYTES zeros */
	uint32_t shift1[4][256];
	uint32_t shift2[4][256];
	bool have_sse42;
};

/* Filled once, read-only afterwards. */
static struct crc32c_tables tables;
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

/*
 * Polynomials mod P in the reflected order (bit 31 is x^0): the raw state
 * advanced over n zero bytes is the state times x^(8n) mod P.
 */
static uint32_t gf2_mulmod(uint32_t a, uint32_t b)
{
	uint32_t m = 1u << 31, p = 0;

	if (!a)
		return 0;
	for (;;) {
		if (a & m) {
			p ^= b;
			if (!(a & (m - 1)))
				return p;
		}
		m >>= 1;
		b = (b >> 1) ^ (CRC32C_POLY & (0u - (b & 1)));
	}
}

/* x^(8 * bytes) mod P, by squaring: a few hundred steps, not 8 per byte. */
static uint32_t x_pow_bytes(size_t bytes)
{
	uint32_t r = 1u << 31, sq = 1u << 30; /* x^0, x^1 */

	for (uint64_t e = (uint64_t)bytes * 8; e; e >>= 1) {
		if (e & 1)
			r = gf2_mulmod(r, sq);
		sq = gf2_mulmod(sq, sq);
	}
	return r;
}

/*
 * Advancing the raw state over zero bytes is linear in the state, so it is a
 * table per state byte. The 4x256 entries are XORs of the 32 single-bit
 * states, which keeps init cheap (every process that checksums pays it).
 */
static void build_shift_table(uint32_t t[4][256], size_t zeros)
{
	uint32_t bit[32], x = x_pow_bytes(zeros);

	for (int i = 0; i < 32; i++)
		bit[i] = gf2_mulmod(x, 1u << i);
	for (int k = 0; k < 4; k++) {
		for (int b = 0; b < 256; b++) {
			uint32_t v = 0;

			for (int i = 0; i < 8; i++)
				if (b & (1 << i))
					v ^= bit[k * 8 + i];
			t[k][b] = v;
		}
	}
}

static void crc32c_init_tables(void)
{
	for (uint32_t n = 0; n < 256; n++) {
		uint32_t c = n;

		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1)));
		tables.slice[0][n] = c;
	}
	for (uint32_t n = 0; n < 256; n++) {
		uint32_t c = tables.slice[0][n];

		for (int k = 1; k < 8; k++) {
			c = tables.slice[0][c & 0xff] ^ (c >> 8);
			tables.slice[k][n] = c;
		}
	}
	build_shift_table(tables.shift1, LANE_BYTES);
	build_shift_table(tables.shift2, 2 * LANE_BYTES);
	__builtin_cpu_init();
	tables.have_sse42 = __builtin_cpu_supports("sse4.2");
}

static inline uint32_t shift_state(const uint32_t t[4][256], uint32_t crc)
{
	return t[0][crc & 0xff] ^ t[1][(crc >> 8) & 0xff] ^ t[2][(crc >> 16) & 0xff] ^
	       t[3][crc >> 24];
}

/* Raw state in, raw state out (no pre/post inversion). Slicing-by-8. */
static uint32_t crc32c_sw_raw(uint32_t crc, const unsigned char *p, size_t len)
{
	while (len && ((uintptr_t)p & 7)) {
		crc = tables.slice[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
		len--;
	}
	while (len >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		w ^= crc;
		crc = tables.slice[7][w & 0xff] ^ tables.slice[6][(w >> 8) & 0xff] ^
		      tables.slice[5][(w >> 16) & 0xff] ^ tables.slice[4][(w >> 24) & 0xff] ^
		      tables.slice[3][(w >> 32) & 0xff] ^ tables.slice[2][(w >> 40) & 0xff] ^
		      tables.slice[1][(w >> 48) & 0xff] ^ tables.slice[0][w >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = tables.slice[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

static uint32_t crc32c_hw_raw(uint32_t crc, const unsigned char *p, size_t len)
{
	uint64_t c0 = crc;

	while (len && ((uintptr_t)p & 7)) {
		c0 = _mm_crc32_u8((uint32_t)c0, *p++);
		len--;
	}
	/* Three lanes of LANE_BYTES each, merged by shifting lanes 0 and 1. */
	while (len >= 3 * LANE_BYTES) {
		uint64_t c1 = 0, c2 = 0;
		const unsigned char *end = p + LANE_BYTES;

		while (p < end) {
			uint64_t w0, w1, w2;

			memcpy(&w0, p, 8);
			memcpy(&w1, p + LANE_BYTES, 8);
			memcpy(&w2, p + 2 * LANE_BYTES, 8);
			c0 = _mm_crc32_u64(c0, w0);
			c1 = _mm_crc32_u64(c1, w1);
			c2 = _mm_crc32_u64(c2, w2);
			p += 8;
		}
		c0 = shift_state(tables.shift2, (uint32_t)c0) ^
		     shift_state(tables.shift1, (uint32_t)c1) ^ c2;
		p += 2 * LANE_BYTES;
		len -= 3 * LANE_BYTES;
	}
	while (len >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		c0 = _mm_crc32_u64(c0, w);
		p += 8;
		len -= 8;
	}
	while (len--)
		c0 = _mm_crc32_u8((uint32_t)c0, *p++);
	return (uint32_t)c0;
}

uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&tables_once, crc32c_init_tables);
	if (tables.have_sse42)
		return ~crc32c_hw_raw(~crc, buf, len);
	return ~crc32c_sw_raw(~crc, buf, len);
}

uint32_t crc32c_extend_page(uint32_t crc, uint32_t page_crc)
{
	_Static_assert(LANE_BYTES == 4096, "shift1 advances over one page");
	pthread_once(&tables_once, crc32c_init_tables);
	/* crc32c(c, X) = crc32c(0, X) ^ (c advanced over len(X) zero bytes):
	 * both inversions cancel out, the rest is linear */
	return page_crc ^ shift_state(tables.shift1, crc);
}

uint32_t crc32c_table(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&tables_once, crc32c_init_tables);
	return ~crc32c_sw_raw(~crc, buf, len);
}
