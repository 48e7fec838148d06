/*
 * sendfloor — what one publication to N loopback TCP sockets costs the
 * kernel alone: the floor under scenario (c) of compare-nchan.sh for any
 * server that writes each recipient with its own send().
 *
 *   sendfloor [-n N] [-p PASSES] [-i INTERVAL_MS] [-b BYTES] [--spin]
 *             [--per-pass]
 *
 * A child process (the reader, on CPU 1) connects N sockets to a listener
 * of the parent (the writer, on CPU 0), each from a source address in
 * 127/8, and reads them with epoll.  The writer then makes PASSES passes,
 * INTERVAL_MS apart: one send() of BYTES bytes (the pass's start time in
 * the first 8) to every socket.  --spin: the reader polls without
 * sleeping, so no send has to wake it.
 *
 * Output ("key: value"): send_us (writer's time per send, mean over all
 * passes), pass_ms_min/mean/max, and the reader's latency from the pass's
 * start to each message: latency_p50_ms/p99_ms/max_ms, received.
 * wakeup_ipis and wakeup_ipis_per_send: the reader's CPU's wakeup IPIs
 * during the passes (wakeups.h).  --per-pass adds pass_ms_each and
 * pass_ipis_each: every pass's length and IPIs, in order.
 * Loopback only, bounded: the reader gives up 5 s after its last message.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "wakeups.h"

#define MAX_BYTES 4096

static int n_socks = 10000, passes = 50, interval_ms = 200, bytes = 100;
static int spin, per_pass;

static void die(const char *what)
{
	fprintf(stderr, "sendfloor: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void pin(int cpu)
{
	cpu_set_t s;

	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	if (sched_setaffinity(0, sizeof(s), &s))
		fprintf(stderr, "sendfloor: not pinned to CPU %d\n", cpu);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* The reader: connects, then reads every message until all came or 5 s
 * went by without one; prints the latency figures. */
static void reader(const struct sockaddr_in *to, int ready_fd)
{
	size_t want = (size_t)n_socks * (size_t)passes, got = 0;
	int64_t *lat = malloc(want * sizeof(*lat)), last;
	struct epoll_event ev[512];
	char buf[MAX_BYTES * 4];
	size_t cap = sizeof(buf) / (size_t)bytes * (size_t)bytes; /* whole messages */
	int ep = epoll_create1(0);

	if (!lat || ep < 0)
		die("reader setup");
	for (int i = 0; i < n_socks; i++) {
		struct sockaddr_in src = {.sin_family = AF_INET};
		int s = socket(AF_INET, SOCK_STREAM, 0);
		struct epoll_event e = {.events = EPOLLIN};

		src.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(i % 200));
		if (s < 0 || bind(s, (struct sockaddr *)&src, sizeof(src)) ||
		    connect(s, (const struct sockaddr *)to, sizeof(*to)))
			die("connect");
		fcntl(s, F_SETFL, O_NONBLOCK);
		e.data.fd = s;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, s, &e))
			die("epoll_ctl");
	}
	if (write(ready_fd, "r", 1) != 1)
		die("ready");
	last = now_ns();
	while (got < want && now_ns() - last < 5000000000LL) {
		int n = epoll_wait(ep, ev, 512, spin ? 0 : 100);

		for (int i = 0; i < n; i++) {
			ssize_t r;

			/* messages are whole: one pass, one message per socket */
			while ((r = read(ev[i].data.fd, buf, cap)) > 0) {
				int64_t t = now_ns();

				for (ssize_t o = 0; o + bytes <= r && got < want;
				     o += bytes) {
					int64_t sent;

					memcpy(&sent, buf + o, sizeof(sent));
					lat[got++] = t - sent;
				}
				last = t;
			}
		}
	}
	qsort(lat, got, sizeof(*lat), cmp_i64);
	printf("received: %zu of %zu\n", got, want);
	if (got)
		printf("latency_p50_ms: %.1f\nlatency_p99_ms: %.1f\n"
		       "latency_max_ms: %.1f\n",
		       lat[got / 2] / 1e6, lat[got * 99 / 100] / 1e6,
		       lat[got - 1] / 1e6);
	fflush(stdout);
	exit(got == want ? 0 : 1);
}

static void usage(void)
{
	fprintf(stderr, "usage: sendfloor [-n N] [-p PASSES] [-i INTERVAL_MS] "
			"[-b BYTES (8-%d)] [--spin] [--per-pass]\n", MAX_BYTES);
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"spin", no_argument, NULL, 's'},
		{"per-pass", no_argument, NULL, 'e'},
		{NULL, 0, NULL, 0}};
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t al = sizeof(a);
	int64_t total = 0, pmin = INT64_MAX, pmax = 0;
	long long ipis = 0;
	char msg[MAX_BYTES], r;
	int ls, one = 1, ready[2], ch, status;
	int *fd;
	int64_t *each;
	long long *ipi_pass;
	pid_t child;

	while ((ch = getopt_long(argc, argv, "n:p:i:b:", lo, NULL)) != -1) {
		switch (ch) {
		case 'n': n_socks = atoi(optarg); break;
		case 'p': passes = atoi(optarg); break;
		case 'i': interval_ms = atoi(optarg); break;
		case 'b': bytes = atoi(optarg); break;
		case 's': spin = 1; break;
		case 'e': per_pass = 1; break;
		default: usage();
		}
	}
	if (n_socks < 1 || n_socks > 60000 || passes < 1 || passes > 10000 ||
	    interval_ms < 0 || bytes < 8 || bytes > MAX_BYTES)
		usage();
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ls = socket(AF_INET, SOCK_STREAM, 0);
	if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, 4) ||
	    bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 4096) ||
	    getsockname(ls, (struct sockaddr *)&a, &al) || pipe(ready))
		die("listen");
	if (!(child = fork())) {
		close(ls);
		pin(1);
		reader(&a, ready[1]);
	}
	if (child < 0)
		die("fork");
	pin(0);
	if (!(fd = malloc((size_t)n_socks * sizeof(*fd))) ||
	    !(each = malloc((size_t)passes * sizeof(*each))) ||
	    !(ipi_pass = malloc((size_t)passes * sizeof(*ipi_pass))))
		die("malloc");
	for (int i = 0; i < n_socks; i++) {
		if ((fd[i] = accept(ls, NULL, NULL)) < 0)
			die("accept");
		setsockopt(fd[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		fcntl(fd[i], F_SETFL, O_NONBLOCK);
	}
	if (read(ready[0], &r, 1) != 1)
		die("reader");
	usleep(300000);
	memset(msg, 'x', sizeof(msg));
	for (int p = 0; p < passes; p++) {
		long long i0 = wakeup_ipis(1), i1;
		int64_t t0 = now_ns(), t;

		memcpy(msg, &t0, sizeof(t0));
		for (int i = 0; i < n_socks; i++)
			if (send(fd[i], msg, (size_t)bytes, MSG_NOSIGNAL) != bytes)
				fprintf(stderr, "sendfloor: short send\n");
		t = now_ns() - t0;
		i1 = wakeup_ipis(1);
		ipi_pass[p] = i0 >= 0 && i1 >= i0 ? i1 - i0 : -1;
		ipis = ipis < 0 || ipi_pass[p] < 0 ? -1 : ipis + ipi_pass[p];
		each[p] = t;
		total += t;
		pmin = t < pmin ? t : pmin;
		pmax = t > pmax ? t : pmax;
		if (interval_ms)
			usleep((useconds_t)interval_ms * 1000);
	}
	if (waitpid(child, &status, 0) < 0) /* its figures come first */
		die("waitpid");
	printf("sockets: %d\npasses: %d\ninterval_ms: %d\nbytes: %d\nspin: %d\n",
	       n_socks, passes, interval_ms, bytes, spin);
	printf("send_us: %.2f\npass_ms_min: %.1f\npass_ms_mean: %.1f\n"
	       "pass_ms_max: %.1f\n",
	       total / 1e3 / passes / n_socks, pmin / 1e6,
	       total / 1e6 / passes, pmax / 1e6);
	if (ipis >= 0)
		printf("wakeup_ipis: %lld\nwakeup_ipis_per_send: %.3f\n", ipis,
		       (double)ipis / passes / n_socks);
	if (per_pass) {
		printf("pass_ms_each:");
		for (int p = 0; p < passes; p++)
			printf(" %.1f", each[p] / 1e6);
		printf("\n");
		if (ipis >= 0) {
			printf("pass_ipis_each:");
			for (int p = 0; p < passes; p++)
				printf(" %lld", ipi_pass[p]);
			printf("\n");
		}
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
