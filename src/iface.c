/*
 * iface.c — the addresses of a network interface (getifaddrs()).
 */
#include "iface.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <string.h>

/* The address part of an AF_INET or AF_INET6 sockaddr; NULL otherwise. */
static const void *addr_of(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return &((const struct sockaddr_in *)(const void *)sa)
				->sin_addr;
	if (sa->sa_family == AF_INET6)
		return &((const struct sockaddr_in6 *)(const void *)sa)
				->sin6_addr;
	return NULL;
}

int pav_iface_any_addr(const char *name, pav_iface_addr_fn fn, void *arg)
{
	struct ifaddrs *list, *i;
	char ip[INET6_ADDRSTRLEN];
	int yes = 0;

	if (getifaddrs(&list))
		return 0;
	for (i = list; i && !yes; i = i->ifa_next) {
		const void *a;

		if (!i->ifa_addr || !i->ifa_name || strcmp(i->ifa_name, name) ||
		    !(a = addr_of(i->ifa_addr)))
			continue;
		yes = inet_ntop(i->ifa_addr->sa_family, a, ip, sizeof(ip)) &&
		      fn(ip, arg);
	}
	freeifaddrs(list);
	return yes;
}

int pav_iface_listable(void)
{
	struct ifaddrs *list;

	if (getifaddrs(&list))
		return errno ? -errno : -EIO;
	freeifaddrs(list);
	return 0;
}
