/* ids.h — the protocol's id grammar and the gateway's random ids, once. */
#ifndef PAV_IDS_H
#define PAV_IDS_H

#include <stddef.h>
#include <stdint.h>

/* 1-64 chars of [A-Za-z0-9_-]: user ids and channel ids. */
int pav_id_valid(const char *s, size_t len);

/* 64 random bits from getrandom().  0 or -EIO. */
int pav_random_u64(uint64_t *v);
/* prefix + 16 lowercase hex digits of 64 random bits into buf (at least
 * 18 bytes).  0, -EIO, or -ENOSPC for a short buffer. */
int pav_random_id(char prefix, char *buf, size_t len);

#endif
