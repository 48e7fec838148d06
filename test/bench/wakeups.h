/*
 * wakeups.h — the wakeup IPIs one CPU has received, for the benchmark
 * programs (pavbench, sendfloor).  Header-only: each program is one file.
 */
#ifndef PAV_BENCH_WAKEUPS_H
#define PAV_BENCH_WAKEUPS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reschedule and function-call interrupts ("RES", "CAL" in
 * /proc/interrupts) that CPU `cpu` has received, or -1.  Another CPU sends
 * one when it wakes a task that sleeps there: on loopback, the server's
 * send() that finds the load tool asleep in epoll_wait.  Sending it costs
 * the sender's CPU; in a virtual machine it usually also exits to the
 * hypervisor. */
static inline long long wakeup_ipis(int cpu)
{
	char line[4096];
	long long sum = 0;
	int found = 0;
	FILE *f;

	if (cpu < 0 || !(f = fopen("/proc/interrupts", "r")))
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *p = line, *end;
		long long v = -1;

		while (*p == ' ')
			p++;
		if (strncmp(p, "RES:", 4) != 0 && strncmp(p, "CAL:", 4) != 0)
			continue;
		p += 4;
		for (int i = 0; i <= cpu; i++, p = end) {
			v = strtoll(p, &end, 10);
			if (end == p) {
				v = -1;
				break;
			}
		}
		if (v < 0)
			break;
		sum += v;
		found++;
	}
	fclose(f);
	return found == 2 ? sum : -1;
}

#endif
