/* secret.h — small files of secrets (the JWT key, API keys, Redis
 * passwords), read whole without stdio into memory the caller wipes. */
#ifndef PAV_SECRET_H
#define PAV_SECRET_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Reads the regular file at path, at most max bytes, into *buf: malloc'd,
 * its *len bytes then a NUL (the file's own NULs are kept, counted in
 * *len).  Returns 0, or -errno of open() or read(), -EISDIR for a
 * directory, -EINVAL for anything else that is not a regular file,
 * -EFBIG for a file of more than max bytes, -ENOMEM; then *buf is NULL
 * and nothing read is left in memory.  The caller frees *buf with
 * pav_secret_free().
 */
int pav_secret_read(const char *path, size_t max, char **buf, size_t *len);

/* Why pav_secret_read() returned rc, for a message: strerror()'s words,
 * "not a regular file" for -EINVAL. */
const char *pav_secret_why(int rc);

/*
 * Up to room bytes from fd into buf, until end of file, a read()
 * interrupted by a signal (EINTR) retried: how many, or -errno of read(),
 * and then what was read is wiped.  Shared by every file read whole (the
 * configuration files too).
 */
ssize_t pav_read_upto(int fd, char *buf, size_t room);

/* Wipes the first len bytes of buf, then frees it (NULL: nothing). */
void pav_secret_free(char *buf, size_t len);

#endif
