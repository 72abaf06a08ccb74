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
 *
 * Where the CPU has AVX-512 and VPCLMULQDQ, runs of CLMUL_MIN bytes or more
 * are folded instead, 256 bytes a step, with carry-less multiplication
 * (crc32c_clmul_raw): near four times the rate of the crc32 instruction on
 * data in cache, which a dump's pages are when they are checksummed.
 */
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <immintrin.h>

#include "crc32c.h"

#define CRC32C_POLY 0x82F63B78u

/* Bytes per lane in the three-way hardware loop. */
#define LANE_BYTES 4096u
/* Runs at least this long take the folding path (its setup and final
 * reduction cost about 64 bytes of the crc32 instruction's work). */
#define CLMUL_MIN 512u

/*
 * Folding constants for one 128-bit block moved forward by d bits:
 * [0] multiplies its first 8 bytes (the higher-degree half h, block =
 * h x^64 + l), [1] its last 8 (l). Each is x^n mod P in the reflected
 * order, in the upper half of a 64-bit word, with n one less than the
 * shift it stands for: a carry-less product of two reflected values is
 * the reflected product times x. So [0] = x^(d+63) mod P, [1] = x^(d-1)
 * mod P.
 */
struct fold_k {
	uint64_t k[2];
};

struct crc32c_tables {
	uint32_t slice[8][256];
	/* state byte k of value b advanced over LANE_BYTES (shift1) or 2*LANE_BYTES zeros */
	uint32_t shift1[4][256];
	uint32_t shift2[4][256];
	/* folding by 2048 bits (four 512-bit accumulators), by 512 bits (one),
	 * and the last 512 bits' four 128-bit lanes by 384, 256, 128, 0 */
	struct fold_k fold2048, fold512, lanes[4];
	bool have_sse42, have_clmul;
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

/* x^bits mod P, by squaring: a few hundred steps, not one per bit. */
static uint32_t x_pow_bits(uint64_t bits)
{
	uint32_t r = 1u << 31, sq = 1u << 30; /* x^0, x^1 */

	for (uint64_t e = bits; e; e >>= 1) {
		if (e & 1)
			r = gf2_mulmod(r, sq);
		sq = gf2_mulmod(sq, sq);
	}
	return r;
}

static uint32_t x_pow_bytes(size_t bytes)
{
	return x_pow_bits((uint64_t)bytes * 8);
}

static struct fold_k fold_by(unsigned bits)
{
	return (struct fold_k){
	    {(uint64_t)x_pow_bits(bits + 63) << 32, (uint64_t)x_pow_bits(bits - 1) << 32}};
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
	tables.fold2048 = fold_by(2048);
	tables.fold512 = fold_by(512);
	for (unsigned k = 0; k < 3; k++)
		tables.lanes[k] = fold_by(128 * (3 - k));
	__builtin_cpu_init();
	tables.have_sse42 = __builtin_cpu_supports("sse4.2");
	tables.have_clmul = tables.have_sse42 && __builtin_cpu_supports("avx512f") &&
			    __builtin_cpu_supports("vpclmulqdq");
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

#define CLMUL_TARGET __attribute__((target("avx512f,vpclmulqdq,sse4.2")))

/* Four 128-bit blocks, each moved forward by the lane's constants. */
CLMUL_TARGET static inline __m512i fold(__m512i x, __m512i k)
{
	return _mm512_xor_si512(_mm512_clmulepi64_epi128(x, k, 0x00),
				_mm512_clmulepi64_epi128(x, k, 0x11));
}

CLMUL_TARGET static inline __m512i fold_xor(__m512i x, __m512i k, __m512i next)
{
	return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(x, k, 0x00),
					 _mm512_clmulepi64_epi128(x, k, 0x11), next, 0x96);
}

CLMUL_TARGET static inline __m512i fold_k4(const struct fold_k *f)
{
	return _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)f->k));
}

/*
 * Raw state in, raw state out; len >= 256. The data is folded 64 bytes at a
 * time into four accumulators of four 128-bit blocks (each block of the
 * running polynomial moved forward past the bytes after it and added to
 * the block there; congruent mod P all along), the accumulators into one,
 * its lanes into one block, and that block's CRC taken with the crc32
 * instruction from a zero state: the state of everything folded. The state
 * passed in is added to the first 4 bytes (what the register does too).
 * The bytes after the last whole 64 go through crc32c_hw_raw.
 */
CLMUL_TARGET static uint32_t crc32c_clmul_raw(uint32_t crc, const unsigned char *p, size_t len)
{
	__m512i k2048 = fold_k4(&tables.fold2048), k512 = fold_k4(&tables.fold512);
	__m512i a0, a1, a2, a3, lanes;
	__m128i x;
	uint64_t c;

	a0 = _mm512_xor_si512(_mm512_loadu_si512(p),
			      _mm512_zextsi128_si512(_mm_cvtsi32_si128((int)crc)));
	a1 = _mm512_loadu_si512(p + 64);
	a2 = _mm512_loadu_si512(p + 128);
	a3 = _mm512_loadu_si512(p + 192);
	p += 256;
	len -= 256;
	for (; len >= 256; p += 256, len -= 256) {
		a0 = fold_xor(a0, k2048, _mm512_loadu_si512(p));
		a1 = fold_xor(a1, k2048, _mm512_loadu_si512(p + 64));
		a2 = fold_xor(a2, k2048, _mm512_loadu_si512(p + 128));
		a3 = fold_xor(a3, k2048, _mm512_loadu_si512(p + 192));
	}
	a1 = fold_xor(a0, k512, a1);
	a2 = fold_xor(a1, k512, a2);
	a3 = fold_xor(a2, k512, a3);
	for (; len >= 64; p += 64, len -= 64)
		a3 = fold_xor(a3, k512, _mm512_loadu_si512(p));
	/* lanes 0-2 moved past the lanes after them, lane 3 as it is */
	lanes = fold(a3, _mm512_loadu_si512(tables.lanes));
	x = _mm_xor_si128(_mm512_extracti32x4_epi32(lanes, 0), _mm512_extracti32x4_epi32(lanes, 1));
	x = _mm_xor_si128(x, _mm512_extracti32x4_epi32(lanes, 2));
	x = _mm_xor_si128(x, _mm512_extracti32x4_epi32(a3, 3));
	c = _mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(x));
	c = _mm_crc32_u64(c, (uint64_t)_mm_extract_epi64(x, 1));
	return crc32c_hw_raw((uint32_t)c, p, len);
}

uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&tables_once, crc32c_init_tables);
	if (tables.have_clmul && len >= CLMUL_MIN)
		return ~crc32c_clmul_raw(~crc, buf, len);
	if (tables.have_sse42)
		return ~crc32c_hw_raw(~crc, buf, len);
	return ~crc32c_sw_raw(~crc, buf, len);
}

uint32_t crc32c_sse42(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&tables_once, crc32c_init_tables);
	if (!tables.have_sse42)
		return ~crc32c_sw_raw(~crc, buf, len);
	return ~crc32c_hw_raw(~crc, buf, len);
}

const char *crc32c_impl(void)
{
	pthread_once(&tables_once, crc32c_init_tables);
	return tables.have_clmul ? "vpclmulqdq" : tables.have_sse42 ? "sse4.2" : "table";
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
