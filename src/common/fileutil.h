/*
 * Small file helpers used wherever herd writes state that must survive a
 * power cut: write to a temporary file, fsync it, rename it over the old one
 * and fsync the directory, so a reader sees either the old or the new content.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <sys/types.h>

/* Write all @len bytes of @data to @fd (again after EINTR and short
 * writes); false with errno set if a write fails. */
bool herd_fd_write_all(int fd, const void *data, size_t len);

/* Atomically replace @path with @len bytes of @data, mode @mode, durably. */
bool herd_file_write_atomic(const char *path, const void *data, size_t len,
			    mode_t mode, GError **error);

/* The same, the file's group @gid (-1: the writer's). */
bool herd_file_write_atomic_group(const char *path, const void *data, size_t len, mode_t mode,
				  int gid, GError **error);

/* Create @path and its parents with @mode if missing. */
bool herd_mkdir_p(const char *path, mode_t mode, GError **error);
