/*
 * LD_PRELOAD, tests only: a local disk that fails.  Once the file named by
 * $HERD_IO_FAULT_TRIGGER exists, every pread, pwrite, fsync and fdatasync
 * on a descriptor of a file whose path starts with $HERD_IO_FAULT_PATH
 * fails with EIO (as a dying disk under a replica does); other files and
 * descriptors are left alone.
 */
/* both pwrite and pwrite64 are defined here: not the 64-bit aliases */
#undef _FILE_OFFSET_BITS
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static int faulty(int fd)
{
	const char *trigger = getenv("HERD_IO_FAULT_TRIGGER"), *prefix = getenv("HERD_IO_FAULT_PATH");
	if (!trigger || !prefix || access(trigger, F_OK) < 0)
		return 0;
	char link[64], path[PATH_MAX];
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof path - 1);
	if (n < 0)
		return 0;
	path[n] = 0;
	if (strncmp(path, prefix, strlen(prefix)) != 0)
		return 0;
	errno = EIO;
	return 1;
}

#define NEXT(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	return faulty(fd) ? -1 : NEXT(pwrite)(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
	return faulty(fd) ? -1 : NEXT(pwrite64)(fd, buf, n, off);
}

ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
	return faulty(fd) ? -1 : NEXT(pread)(fd, buf, n, off);
}

ssize_t pread64(int fd, void *buf, size_t n, off64_t off)
{
	return faulty(fd) ? -1 : NEXT(pread64)(fd, buf, n, off);
}

int fdatasync(int fd)
{
	return faulty(fd) ? -1 : NEXT(fdatasync)(fd);
}

int fsync(int fd)
{
	return faulty(fd) ? -1 : NEXT(fsync)(fd);
}
