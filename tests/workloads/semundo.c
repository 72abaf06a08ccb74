/* SPDX-License-Identifier: MIT */
/*
 * semundo LOG READY KEYFILE undo|plain
 *
 * A System V semaphore used as a lock between processes, as older servers
 * and databases use one: the program makes a set of one semaphore
 * (IPC_PRIVATE, its id written to KEYFILE), sets it to 1 and takes it
 * (semop -1), with SEM_UNDO ("undo": the kernel gives it back when the
 * process exits) or without ("plain"). Every 100 ms it checks the value is
 * still 0 (it holds the lock) and logs "bad: value V" otherwise, "ok N"
 * every 500 ms, first "start PID id ID".
 */
#include <stdio.h>
#include <sys/sem.h>

#include "wl.h"

int main(int argc, char **argv)
{
	struct sembuf take = {.sem_num = 0, .sem_op = -1};
	int log_fd, id, kf;
	char buf[32];

	if (argc != 5 || (strcmp(argv[4], "undo") && strcmp(argv[4], "plain")))
		wl_die("usage: semundo LOG READY KEYFILE undo|plain");
	wl_close_inherited();
	log_fd = wl_open_log(argv[1]);
	id = semget(IPC_PRIVATE, 1, 0600);
	if (id < 0 || semctl(id, 0, SETVAL, 1) < 0)
		wl_die("semget: %s", strerror(errno));
	if (!strcmp(argv[4], "undo"))
		take.sem_flg = SEM_UNDO;
	if (semop(id, &take, 1) < 0)
		wl_die("semop: %s", strerror(errno));
	kf = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	snprintf(buf, sizeof(buf), "%d\n", id);
	if (kf < 0 || wl_write_all(kf, buf, strlen(buf)) < 0)
		wl_die("%s: %s", argv[3], strerror(errno));
	close(kf);
	wl_log(log_fd, "start %d id %d", (int)getpid(), id);
	wl_ready(argv[2]);
	for (unsigned long k = 0;; k++) {
		struct timespec ts = {0, 100 * 1000 * 1000};
		int v = semctl(id, 0, GETVAL);

		if (v != 0)
			wl_log(log_fd, "bad: value %d", v);
		if (k % 5 == 0)
			wl_log(log_fd, "ok %lu", k / 5 + 1);
		nanosleep(&ts, NULL);
	}
	return 0;
}
