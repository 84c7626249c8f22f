#include "fileutil.h"

#include "error.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

static bool fsync_dir_of(const char *path, GError **error)
{
	g_autofree char *dir = g_path_get_dirname(path);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		g_set_error(error, HERD_ERROR, HERD_ERR_IO, "Cannot open directory %s: %s.",
			    dir, g_strerror(errno));
		return false;
	}
	int rc = fsync(fd);
	int saved = errno;
	close(fd);
	if (rc < 0) {
		g_set_error(error, HERD_ERROR, HERD_ERR_IO, "Cannot sync directory %s: %s.",
			    dir, g_strerror(saved));
		return false;
	}
	return true;
}

bool herd_fd_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

bool herd_file_write_atomic(const char *path, const void *data, size_t len,
			    mode_t mode, GError **error)
{
	return herd_file_write_atomic_group(path, data, len, mode, -1, error);
}

bool herd_file_write_atomic_group(const char *path, const void *data, size_t len, mode_t mode,
				  int gid, GError **error)
{
	g_autofree char *tmp = g_strdup_printf("%s.tmp.%d", path, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0) {
		g_set_error(error, HERD_ERROR, HERD_ERR_IO, "Cannot create %s: %s.", tmp,
			    g_strerror(errno));
		return false;
	}
	if (!herd_fd_write_all(fd, data, len))
		goto fail;
	/* The group before the mode: a key is never readable by the wrong
	 * group, not even for a moment. */
	if ((gid >= 0 && fchown(fd, (uid_t)-1, (gid_t)gid) < 0) || fchmod(fd, mode) < 0 ||
	    fsync(fd) < 0)
		goto fail;
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0)
		goto fail;
	return fsync_dir_of(path, error);
fail:;
	int saved = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	g_set_error(error, HERD_ERROR, HERD_ERR_IO, "Cannot write %s: %s.", path,
		    g_strerror(saved));
	return false;
}

bool herd_mkdir_p(const char *path, mode_t mode, GError **error)
{
	if (g_mkdir_with_parents(path, (int)mode) < 0) {
		g_set_error(error, HERD_ERROR, HERD_ERR_IO, "Cannot create directory %s: %s.",
			    path, g_strerror(errno));
		return false;
	}
	return true;
}
