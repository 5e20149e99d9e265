/* fs.c — folders with their parents, and atomic file writes (temporary file,
 * fsync, rename, fsync of the folder), shared by every writer of dojo:
 * checkpoints' text companions, summaries, manifests, reports, traces. */
#define _GNU_SOURCE
#include "dojo/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static dj_status dj_fs_mkdir_one(const char *path, const char *asked) {
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        return dj_error_set(DJ_ERR_IO, asked, "cannot create the folder %s: %s", path, strerror(errno));
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return dj_error_set(DJ_ERR_IO, asked, "%s exists and is not a folder", path);
    return DJ_OK;
}

dj_status dj_fs_mkdirs(const char *path) {
    char buf[4096];
    if (!path || !*path)
        return dj_error_set(DJ_ERR_INVALID, "dj_fs_mkdirs", "empty folder path");
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return dj_error_set(DJ_ERR_INVALID, path, "path too long");
    for (char *p = buf + 1; *p; p++) { /* each parent, left to right */
        if (*p != '/' || p[-1] == '/')
            continue;
        *p = '\0';
        dj_status s = dj_fs_mkdir_one(buf, path);
        *p = '/';
        if (s != DJ_OK)
            return s;
    }
    return dj_fs_mkdir_one(buf, path);
}

dj_status dj_fs_sync_folder(const char *path) {
    char dir[4096];
    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir)
        return dj_error_set(DJ_ERR_INVALID, path, "path too long");
    char *slash = strrchr(dir, '/');
    if (!slash)
        strcpy(dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    dj_status s = DJ_OK;
    if (fd < 0 || fsync(fd) != 0)
        s = dj_error_set(DJ_ERR_IO, path, "cannot sync the folder %s: %s", dir, strerror(errno));
    if (fd >= 0)
        close(fd);
    return s;
}

dj_status dj_fs_temp_open(dj_fs_temp *t, const char *path) {
    t->f = NULL;
    if (snprintf(t->path, sizeof t->path, "%s", path) >= (int)sizeof t->path ||
        snprintf(t->tmp, sizeof t->tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof t->tmp)
        return dj_error_set(DJ_ERR_INVALID, path, "path too long");
    t->f = fopen(t->tmp, "we");
    if (!t->f)
        return dj_error_set(DJ_ERR_IO, path, "cannot write %s: %s", t->tmp, strerror(errno));
    return DJ_OK;
}

void dj_fs_temp_abort(dj_fs_temp *t) {
    if (t->f)
        fclose(t->f);
    t->f = NULL;
    unlink(t->tmp);
}

dj_status dj_fs_temp_commit(dj_fs_temp *t) {
    if (!t->f)
        return dj_error_set(DJ_ERR_INVALID, t->path, "no open temporary file to commit");
    int ok = !ferror(t->f) && fflush(t->f) == 0 && fsync(fileno(t->f)) == 0;
    int e = ok ? 0 : (errno ? errno : EIO);
    if (fclose(t->f) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    t->f = NULL;
    if (ok && rename(t->tmp, t->path) != 0) {
        ok = 0;
        e = errno;
    }
    if (!ok) {
        unlink(t->tmp);
        return dj_error_set(DJ_ERR_IO, t->path, "cannot write: %s", strerror(e));
    }
    return dj_fs_sync_folder(t->path);
}

dj_status dj_fs_write_atomic(const char *path, const void *data, size_t len) {
    dj_fs_temp t;
    DJ_TRY(dj_fs_temp_open(&t, path));
    if (len && fwrite(data, 1, len, t.f) != len) {
        int e = errno ? errno : EIO;
        dj_fs_temp_abort(&t);
        return dj_error_set(DJ_ERR_IO, path, "cannot write: %s", strerror(e));
    }
    return dj_fs_temp_commit(&t);
}

dj_status dj_fs_write_text(const char *path, const char *text) {
    return dj_fs_write_atomic(path, text, strlen(text));
}
