/* SPDX-License-Identifier: MIT */
/*
 * The network lock of TCP connections being checkpointed: an nftables table
 * of our own (family inet, through libnftables) whose input and output
 * chains drop every packet of the locked connections (4-tuples), so that
 * while the tree is frozen, killed and restored the kernel neither answers
 * the peer with a reset nor acknowledges data the checkpoint does not hold.
 * The peer retransmits; once the connection is back the table is deleted.
 * Library code: negative errno and a filled struct ckpt_error.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* One connection, addresses in network order; IPv4-mapped IPv6 given as IPv4. */
struct netlock_conn {
	int family; /* AF_INET, AF_INET6 */
	uint8_t src[16], dst[16];
	uint16_t sport, dport; /* host order; src is the local end */
};

/*
 * A table name we make: "ckpt_" then letters, digits and '_' only (it goes
 * into an nft command, and images name the tables a restore deletes).
 */
bool netlock_name_ok(const char *table);
/* Create table `inet TABLE` dropping every packet of the n connections, both ways. */
int netlock_lock(const char *table, const struct netlock_conn *c, size_t n, struct ckpt_error *e);
/*
 * Let the packets marked mark (SO_MARK) through the table's chains: the
 * segments a restore injects into a connection it holds there.
 */
int netlock_pass_mark(const char *table, uint32_t mark, struct ckpt_error *e);
/* Delete the table; one already gone is not an error. */
int netlock_unlock(const char *table, struct ckpt_error *e);
