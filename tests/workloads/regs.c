/* SPDX-License-Identifier: MIT */
/*
 * regs LOG READY: keeps known values in registers the C code never touches
 * again and checks them forever: ymm0-ymm14 (AVX, the upper halves
 * included), MXCSR with a non-default rounding mode, r12/r14/r15, and the
 * fs base (r13 holds it; %fs:0 is the thread's self pointer, equal to the
 * fs base). The loop is one asm block with raw syscalls: it sleeps 10 ms
 * (nanosleep, interrupted by the dump), then appends "." to LOG. A register
 * that comes back different makes it append "X" and exit 3. Needs AVX.
 */
#include <stdint.h>

#include "wl.h"

static uint64_t pattern[15][4] __attribute__((aligned(32)));
static uint32_t mxcsr_want = 0x7f80; /* all exceptions masked, round toward zero */
static uint32_t mxcsr_now;
static struct timespec tick = {0, 10 * 1000 * 1000};
static int log_fd;
static const char dot = '.', cross = 'X';

int main(int argc, char **argv)
{
	if (argc != 3)
		wl_die("usage: regs LOG READY");
	wl_close_inherited();
	if (!__builtin_cpu_supports("avx"))
		wl_die("regs: this CPU has no AVX");
	log_fd = wl_open_log(argv[1]);
	for (int r = 0; r < 15; r++)
		for (int q = 0; q < 4; q++)
			pattern[r][q] = 0x0123456789abcdefULL * (uint64_t)(r + 1) ^
					((uint64_t)q << 56 | (uint64_t)r << 48);
	wl_ready(argv[2]);

	__asm__ volatile("vmovdqa 0*32(%%rbx), %%ymm0\n\t"
			 "vmovdqa 1*32(%%rbx), %%ymm1\n\t"
			 "vmovdqa 2*32(%%rbx), %%ymm2\n\t"
			 "vmovdqa 3*32(%%rbx), %%ymm3\n\t"
			 "vmovdqa 4*32(%%rbx), %%ymm4\n\t"
			 "vmovdqa 5*32(%%rbx), %%ymm5\n\t"
			 "vmovdqa 6*32(%%rbx), %%ymm6\n\t"
			 "vmovdqa 7*32(%%rbx), %%ymm7\n\t"
			 "vmovdqa 8*32(%%rbx), %%ymm8\n\t"
			 "vmovdqa 9*32(%%rbx), %%ymm9\n\t"
			 "vmovdqa 10*32(%%rbx), %%ymm10\n\t"
			 "vmovdqa 11*32(%%rbx), %%ymm11\n\t"
			 "vmovdqa 12*32(%%rbx), %%ymm12\n\t"
			 "vmovdqa 13*32(%%rbx), %%ymm13\n\t"
			 "vmovdqa 14*32(%%rbx), %%ymm14\n\t"
			 "ldmxcsr %[want]\n\t"
			 "movabs $0x1213141516171819, %%r12\n\t"
			 "movq %%fs:0, %%r13\n\t"
			 "movabs $0x4142434445464748, %%r14\n\t"
			 "movabs $0x5152535455565758, %%r15\n\t"
			 "1:\n\t"
#define CHECK(n)                                                                                   \
	"vpxor " #n "*32(%%rbx), %%ymm" #n ", %%ymm15\n\t"                                         \
	"vptest %%ymm15, %%ymm15\n\t"                                                              \
	"jnz 2f\n\t"
			 CHECK(0) CHECK(1) CHECK(2) CHECK(3) CHECK(4) CHECK(5) CHECK(6) CHECK(7)
			     CHECK(8) CHECK(9) CHECK(10) CHECK(11) CHECK(12) CHECK(13) CHECK(14)
#undef CHECK
				 "stmxcsr %[now]\n\t"
				 "movl %[now], %%eax\n\t"
				 "cmpl %[want], %%eax\n\t"
				 "jne 2f\n\t"
				 "movabs $0x1213141516171819, %%rax\n\t"
				 "cmpq %%rax, %%r12\n\t"
				 "jne 2f\n\t"
				 "movq %%fs:0, %%rax\n\t"
				 "cmpq %%rax, %%r13\n\t"
				 "jne 2f\n\t"
				 "movabs $0x4142434445464748, %%rax\n\t"
				 "cmpq %%rax, %%r14\n\t"
				 "jne 2f\n\t"
				 "movabs $0x5152535455565758, %%rax\n\t"
				 "cmpq %%rax, %%r15\n\t"
				 "jne 2f\n\t"
				 /* nanosleep(&tick, NULL): -EINTR after a restore is fine */
				 "movl $35, %%eax\n\t"
				 "leaq %[tick], %%rdi\n\t"
				 "xorl %%esi, %%esi\n\t"
				 "syscall\n\t"
				 /* write(log_fd, ".", 1) */
				 "movl $1, %%eax\n\t"
				 "movl %[fd], %%edi\n\t"
				 "leaq %[dot], %%rsi\n\t"
				 "movl $1, %%edx\n\t"
				 "syscall\n\t"
				 "jmp 1b\n\t"
				 "2:\n\t"
				 "movl $1, %%eax\n\t"
				 "movl %[fd], %%edi\n\t"
				 "leaq %[cross], %%rsi\n\t"
				 "movl $1, %%edx\n\t"
				 "syscall\n\t"
				 "movl $231, %%eax\n\t" /* exit_group(3) */
				 "movl $3, %%edi\n\t"
				 "syscall\n\t"
			 :
			 : "b"(pattern), [want] "m"(mxcsr_want), [now] "m"(mxcsr_now),
			   [tick] "m"(tick), [fd] "m"(log_fd), [dot] "m"(dot), [cross] "m"(cross)
			 : "rax", "rcx", "rdx", "rsi", "rdi", "r11", "r12", "r13", "r14", "r15",
			   "memory", "cc");
	return 1;
}
