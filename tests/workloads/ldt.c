/* SPDX-License-Identifier: MIT */
/*
 * ldt LOG READY
 *
 * A program with a local descriptor table (modify_ldt), as emulators such
 * as Wine and DOSEMU set one up: four entries (a 32-bit data segment, a
 * readable 32-bit code segment in pages, a data segment marked not
 * present, a read-only data segment with the "useable" bit at the last
 * index). Every 100 ms it reads the table back (modify_ldt(0)) and logs
 * "bad: ..." when it differs from its first look, "ok N" every 500 ms,
 * first "start PID".
 *
 * It does not load the selectors: these machines (a PVM guest) keep an LDT
 * for modify_ldt but fault on any load of an LDT selector (lar fails too).
 */
#include <asm/ldt.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/syscall.h>

#include "wl.h"

#define LDT_BYTES (LDT_ENTRIES * LDT_ENTRY_SIZE)

static int log_fd;
static uint64_t first_table[LDT_ENTRIES];

static void set_entry(unsigned index, uint32_t base, uint32_t limit, unsigned contents,
		      int read_exec_only, int pages, int not_present, int useable)
{
	struct user_desc d = {.entry_number = index,
			      .base_addr = base,
			      .limit = limit,
			      .seg_32bit = 1,
			      .contents = contents,
			      .read_exec_only = read_exec_only,
			      .limit_in_pages = pages,
			      .seg_not_present = not_present,
			      .useable = useable};

	if (syscall(SYS_modify_ldt, 0x11, &d, sizeof(d)) < 0)
		wl_die("modify_ldt entry %u: %s", index, strerror(errno));
}

static void nap(void)
{
	struct timespec ts = {0, 100 * 1000 * 1000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int main(int argc, char **argv)
{
	static uint64_t table[LDT_ENTRIES];
	long n;

	if (argc != 3)
		wl_die("usage: ldt LOG READY");
	wl_close_inherited();
	log_fd = wl_open_log(argv[1]);
	set_entry(0, 0x7f0000, 0xfff, MODIFY_LDT_CONTENTS_DATA, 0, 0, 0, 0);
	set_entry(7, 0, 0xfffff, MODIFY_LDT_CONTENTS_CODE, 0, 1, 0, 0);
	set_entry(100, 0x10000, 0xff, MODIFY_LDT_CONTENTS_DATA, 0, 0, 1, 0);
	set_entry(LDT_ENTRIES - 1, 0x20000, 0x1fff, MODIFY_LDT_CONTENTS_DATA, 1, 0, 0, 1);
	n = syscall(SYS_modify_ldt, 0, first_table, LDT_BYTES);
	if (n != LDT_BYTES || !first_table[0] || !first_table[LDT_ENTRIES - 1])
		wl_die("modify_ldt(0): %ld, entry 0 %#llx", n, (unsigned long long)first_table[0]);
	wl_log(log_fd, "start %d", (int)getpid());
	wl_ready(argv[2]);
	for (unsigned long k = 0;; k++) {
		memset(table, 0xee, sizeof(table));
		n = syscall(SYS_modify_ldt, 0, table, LDT_BYTES);
		for (unsigned i = 0; i < LDT_ENTRIES; i++) {
			if (n == LDT_BYTES && table[i] == first_table[i])
				continue;
			wl_log(log_fd, "bad: modify_ldt(0) %ld: entry %u %#llx, was %#llx", n, i,
			       (unsigned long long)table[i], (unsigned long long)first_table[i]);
			break; /* the first difference only */
		}
		if (k % 5 == 0)
			wl_log(log_fd, "ok %lu", k / 5 + 1);
		nap();
	}
	return 0;
}
