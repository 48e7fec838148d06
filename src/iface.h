/*
 * iface.h — the addresses of a network interface ("lo", "eth0"), which a
 * listen names when lws is to bind one of them.
 */
#ifndef PAV_IFACE_H
#define PAV_IFACE_H

/* Called with each address as inet_ntop() writes it; nonzero stops. */
typedef int (*pav_iface_addr_fn)(const char *ip, void *arg);

/* 1 when fn said yes for an address of interface name, else 0 (also when
 * the addresses cannot be read). */
int pav_iface_any_addr(const char *name, pav_iface_addr_fn fn, void *arg);

/* 0 when the interfaces and their addresses can be listed (getifaddrs()
 * works: it needs a netlink socket), else -errno. */
int pav_iface_listable(void);

#endif
