/* utf8.h — one UTF-8 sequence, as RFC 3629 defines the valid ones. */
#ifndef PAV_UTF8_H
#define PAV_UTF8_H

#include <stddef.h>

/*
 * The length of the valid sequence at p, whose first byte is >= 0x80,
 * that ends at or before `end`; 0 when there is none (a stray
 * continuation byte, an overlong form, a surrogate, past U+10FFFF, or a
 * sequence cut by `end`).
 */
static inline size_t pav_utf8_seq(const unsigned char *p,
				  const unsigned char *end)
{
	unsigned char c = *p, lo = 0x80, hi = 0xbf;
	size_t n;

	if (c >= 0xc2 && c <= 0xdf)
		n = 1;
	else if (c >= 0xe0 && c <= 0xef)
		n = 2, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 3, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
	else
		return 0;
	for (size_t i = 1; i <= n; i++, lo = 0x80, hi = 0xbf)
		if (p + i >= end || p[i] < lo || p[i] > hi)
			return 0;
	return n + 1;
}

#endif
