/*
 * secret.c — small files of secrets, read whole (secret.h).
 *
 * Not with stdio: a FILE reads through a buffer of its own, which
 * fclose() frees without wiping, so the file's bytes would stay in freed
 * heap memory.  Here the only copy is the caller's buffer, and every way
 * out of a failed read wipes what was read.
 */
#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* O_NONBLOCK: a FIFO named as a secret file must not hang the load (it is
 * refused once open, as not a regular file). */
static int open_secret(const char *path)
{
	int fd;

	do
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	while (fd < 0 && errno == EINTR);
	return fd < 0 ? -errno : fd;
}

/* A regular file of at most max bytes, by its size now (the read checks
 * again: it may grow). */
static int check_kind(int fd, size_t max)
{
	struct stat st;

	if (fstat(fd, &st))
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	return (unsigned long long)st.st_size > max ? -EFBIG : 0;
}

ssize_t pav_read_upto(int fd, char *buf, size_t room)
{
	size_t n = 0;

	while (n < room) {
		ssize_t r = read(fd, buf + n, room - n);

		if (r > 0) {
			n += (size_t)r;
		} else if (!r) {
			break;
		} else if (errno != EINTR) {
			int e = errno;

			explicit_bzero(buf, n);
			return -e;
		}
	}
	return (ssize_t)n;
}

int pav_secret_read(const char *path, size_t max, char **buf, size_t *len)
{
	char *b = NULL;
	ssize_t n = 0;
	int fd, rc;

	*buf = NULL;
	*len = 0;
	if ((fd = open_secret(path)) < 0)
		return fd;
	/* one byte more than max tells a file that grew past it */
	rc = check_kind(fd, max);
	if (!rc && !(b = malloc(max + 2)))
		rc = -ENOMEM;
	if (!rc && (n = pav_read_upto(fd, b, max + 1)) < 0)
		rc = (int)n;
	close(fd);
	if (!rc && (size_t)n > max) {
		explicit_bzero(b, (size_t)n);
		rc = -EFBIG;
	}
	if (rc) {
		free(b);
		return rc;
	}
	b[n] = '\0';
	*buf = b;
	*len = (size_t)n;
	return 0;
}

const char *pav_secret_why(int rc)
{
	return rc == -EINVAL ? "not a regular file" : strerror(-rc);
}

void pav_secret_free(char *buf, size_t len)
{
	if (!buf)
		return;
	explicit_bzero(buf, len);
	free(buf);
}
