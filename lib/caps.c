/* SPDX-License-Identifier: MIT */
/* The effective capability set, raised around privileged calls (caps.h). */
#include <errno.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "caps.h"

static int caps_get(struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};

	return (int)syscall(SYS_capget, &h, d);
}

static int caps_set_effective(uint64_t eff)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[2];

	if (caps_get(d) < 0)
		return -errno;
	d[0].effective = (uint32_t)eff;
	d[1].effective = (uint32_t)(eff >> 32);
	if (syscall(SYS_capset, &h, d) < 0)
		return -errno;
	return 0;
}

uint64_t caps_effective(void)
{
	struct __user_cap_data_struct d[2];

	if (caps_get(d) < 0)
		return 0;
	return d[0].effective | (uint64_t)d[1].effective << 32;
}

uint64_t caps_permitted(void)
{
	struct __user_cap_data_struct d[2];

	if (caps_get(d) < 0)
		return 0;
	return d[0].permitted | (uint64_t)d[1].permitted << 32;
}

uint64_t caps_inheritable(void)
{
	struct __user_cap_data_struct d[2];

	if (caps_get(d) < 0)
		return 0;
	return d[0].inheritable | (uint64_t)d[1].inheritable << 32;
}

uint64_t caps_raise(uint64_t caps)
{
	int saved_errno = errno;
	uint64_t eff = caps_effective(), want = eff | (caps & caps_permitted());

	if (want != eff)
		caps_set_effective(want);
	errno = saved_errno;
	return eff;
}

void caps_restore(uint64_t saved)
{
	int saved_errno = errno;

	if (caps_effective() != saved)
		caps_set_effective(saved);
	errno = saved_errno;
}

int caps_lower_all(void)
{
	return caps_set_effective(0);
}
