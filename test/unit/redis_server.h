/*
 * redis_server.h — a throwaway redis-server for the tests that talk to a
 * real one (test_redis.c, test_redis_scripts.c): on a free loopback port,
 * nothing persisted, killed with the test process should it crash.
 */
#ifndef PAV_TEST_REDIS_SERVER_H
#define PAV_TEST_REDIS_SERVER_H

#include <sys/types.h>

/* A loopback TCP port nobody listens on now, or -1. */
int redis_server_free_port(void);
/* Starts redis-server on 127.0.0.1 (and ::1 when there is one) at port,
 * requiring password unless it is NULL, and waits up to 5 s until it
 * accepts connections.  Its pid, or -1 (then nothing is left running). */
pid_t redis_server_start(int port, const char *password);
/* SIGKILLs the child *pid (a server, or any other) and reaps it; *pid
 * becomes 0.  Nothing when *pid <= 0. */
void redis_server_kill(pid_t *pid);

#endif
