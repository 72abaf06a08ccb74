/* SPDX-License-Identifier: MIT */
/*
 * rseqcs LOG READY
 *
 * Spends nearly all its time inside one restartable-sequence critical
 * section (the rseq area glibc registered for the thread): the section reads
 * the thread's cpu_id, spins for a few tens of ms and reads cpu_id again at
 * its last instruction. The kernel aborts a section whose thread was
 * preempted or migrated (to the abort handler, which retries), so a section
 * that runs to its end has seen one cpu: the per-cpu guarantee that
 * allocators such as tcmalloc build on. Logs "done <n> aborts <k>" every
 * 20 sections, and "BAD cpu <a> -> <b>" if a section ever ends on another
 * cpu than it started on: a freeze that resumed the thread in the middle of
 * a section without the abort.
 */
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/rseq.h>

#include "wl.h"

#define SPIN 20000000UL

static struct rseq *rseq_area(void)
{
	return (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
}

/* One section: 1 when it ran to its end (*a, *b the cpu at its start and end), 0 when aborted. */
static int section(struct rseq *rs, uint32_t *a, uint32_t *b)
{
	int done;

	__asm__ volatile(".pushsection __rseq_cs, \"aw\"\n"
			 ".balign 32\n"
			 "3:\n"
			 ".long 0, 0\n"
			 ".quad 1f, (2f - 1f), 4f\n"
			 ".popsection\n"
			 "leaq 3b(%%rip), %%rax\n"
			 "movq %%rax, 8(%[rs])\n"
			 "1:\n"
			 "movl 4(%[rs]), %%ecx\n"
			 "movl %%ecx, %[a]\n"
			 "movq %[spin], %%rdx\n"
			 "5:\n"
			 "decq %%rdx\n"
			 "jnz 5b\n"
			 "movl 4(%[rs]), %%ecx\n"
			 "movl %%ecx, %[b]\n"
			 "2:\n"
			 "movl $1, %[done]\n"
			 "jmp 6f\n"
			 ".long 0x53053053\n"
			 "4:\n"
			 "movl $0, %[done]\n"
			 "6:\n"
			 "movq $0, 8(%[rs])\n"
			 : [done] "=&m"(done), [a] "=m"(*a), [b] "=m"(*b)
			 : [rs] "r"(rs), [spin] "i"(SPIN)
			 : "rax", "rcx", "rdx", "memory", "cc");
	return done;
}

int main(int argc, char **argv)
{
	unsigned long done = 0, aborts = 0;
	struct rseq *rs;
	int log_fd;

	if (argc < 3)
		wl_die("usage: rseqcs LOG READY");
	wl_close_inherited();
	log_fd = wl_open_log(argv[1]);
	if (!__rseq_size)
		wl_die("rseqcs: glibc did not register rseq for this thread");
	rs = rseq_area();
	wl_ready(argv[2]);
	for (;;) {
		uint32_t a = 0, b = 0;

		if (!section(rs, &a, &b)) {
			aborts++;
			continue;
		}
		if (a != b)
			wl_log(log_fd, "BAD cpu %u -> %u", a, b);
		if (++done % 20 == 0)
			wl_log(log_fd, "done %lu aborts %lu", done, aborts);
	}
}
