/* placeholder, replaced by the dump engine */
#include <errno.h>
#include "dump.h"
int dump_tree(const struct dump_opts *opts, struct dump_result *ret, struct ckpt_error *e)
{
	return ckpt_err(e, -ENOSYS, "dump not implemented yet");
}
