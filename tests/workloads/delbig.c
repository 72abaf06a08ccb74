/* SPDX-License-Identifier: MIT */
/*
 * delbig DIR LOG READY
 *
 * A deleted file bigger than any image record (64 MiB) that is mostly holes,
 * open through two open file descriptions:
 *   fd 20  DIR/big.bin O_RDWR: data at 0, 20 MiB and 60 MiB (1 MiB each, a
 *          pattern from the offset), holes elsewhere; position 4096
 *   fd 21  the same file opened again O_RDONLY (another description), its
 *          own position 12345
 * then unlinked. Every 100 ms: a record is written through fd 20 at the end
 * of the first data extent's first page (pwrite) and must be read back
 * through fd 21 (one file); both positions, the size, the data extents, and
 * the holes (st_blocks under 4 MiB: the restore must not fill them) are
 * checked; logs "ok N" or "FAIL N what".
 */
#include <stdint.h>
#include <sys/stat.h>

#include "wl.h"

#define MIB (1u << 20)
#define SIZE (64ull * MIB)

static const uint64_t extents[] = {0, 20ull * MIB, 60ull * MIB};

static uint8_t pat(uint64_t off)
{
	return (uint8_t)((off * 2654435761u) >> 13);
}

static int check(int a, int b, unsigned long n, char *why, size_t len)
{
	static uint8_t buf[MIB];
	struct stat sa, sb;
	char rec[32], got[32];

	if (lseek(a, 0, SEEK_CUR) != 4096 || lseek(b, 0, SEEK_CUR) != 12345)
		return snprintf(why, len, "positions %ld %ld", (long)lseek(a, 0, SEEK_CUR),
				(long)lseek(b, 0, SEEK_CUR));
	if (fstat(a, &sa) || fstat(b, &sb) || sa.st_ino != sb.st_ino || sa.st_dev != sb.st_dev)
		return snprintf(why, len, "the two descriptions are not one file");
	if ((uint64_t)sa.st_size != SIZE || sa.st_nlink != 0)
		return snprintf(why, len, "size %lld nlink %lu", (long long)sa.st_size,
				(unsigned long)sa.st_nlink);
	if ((uint64_t)sa.st_blocks * 512 > 4ull * MIB)
		return snprintf(why, len, "%llu bytes allocated: the holes were filled",
				(unsigned long long)sa.st_blocks * 512);
	for (size_t e = 0; e < sizeof(extents) / sizeof(extents[0]); e++) {
		if (pread(b, buf, MIB, (off_t)extents[e]) != MIB)
			return snprintf(why, len, "short read at %llu",
					(unsigned long long)extents[e]);
		for (uint64_t i = 64; i < MIB; i++)
			if (buf[i] != pat(extents[e] + i))
				return snprintf(why, len, "byte %llu differs",
						(unsigned long long)(extents[e] + i));
	}
	if (pread(b, buf, 4096, 30ull * MIB) != 4096)
		return snprintf(why, len, "short read in a hole");
	for (int i = 0; i < 4096; i++)
		if (buf[i])
			return snprintf(why, len, "a hole is not zero");
	snprintf(rec, sizeof(rec), "rec %08lu", n);
	if (pwrite(a, rec, 16, 16) != 16 || pread(b, got, 16, 16) != 16 || memcmp(rec, got, 16))
		return snprintf(why, len, "a write through one description is not seen through "
					  "the other");
	return 0;
}

int main(int argc, char **argv)
{
	static uint8_t buf[MIB];
	char path[4096], self[64], why[200];
	unsigned long n = 0;
	int log, a, b;

	if (argc != 4)
		wl_die("usage: delbig DIR LOG READY");
	wl_close_inherited();
	log = wl_open_log(argv[2]);
	snprintf(path, sizeof(path), "%s/big.bin", argv[1]);
	a = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (a < 0 || ftruncate(a, (off_t)SIZE))
		wl_die("delbig: %s: %s", path, strerror(errno));
	for (size_t e = 0; e < sizeof(extents) / sizeof(extents[0]); e++) {
		for (uint64_t i = 0; i < MIB; i++)
			buf[i] = pat(extents[e] + i);
		if (pwrite(a, buf, MIB, (off_t)extents[e]) != MIB)
			wl_die("delbig: write: %s", strerror(errno));
	}
	snprintf(self, sizeof(self), "/proc/self/fd/%d", a);
	b = open(self, O_RDONLY | O_CLOEXEC);
	if (b < 0 || dup2(a, 20) < 0 || dup2(b, 21) < 0)
		wl_die("delbig: reopen: %s", strerror(errno));
	close(a);
	close(b);
	if (unlink(path) || lseek(20, 4096, SEEK_SET) != 4096 || lseek(21, 12345, SEEK_SET) != 12345)
		wl_die("delbig: unlink/seek: %s", strerror(errno));
	wl_ready(argv[3]);
	for (;;) {
		n++;
		if (check(20, 21, n, why, sizeof(why)))
			wl_log(log, "FAIL %lu %s", n, why);
		else
			wl_log(log, "ok %lu", n);
		wl_sleep(0.1);
	}
}
