/* dojo/fs.h — the few file-system steps every writer of dojo shares:
 * creating a folder with its parents, and writing a file so that a crash
 * leaves either the old file or the whole new one, never a part.
 *
 * An atomic write goes to PATH.tmp.PID in the same folder, is flushed and
 * fsync'ed, renamed over PATH, and the folder is fsync'ed so the rename
 * itself survives a power cut. On failure the temporary file is removed and
 * PATH is untouched. Errors name the path and the system's reason. */
#ifndef DOJO_FS_H
#define DOJO_FS_H

#include <stddef.h>
#include <stdio.h>

#include "dojo/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* mkdir -p: creates path and any missing parent (mode 0777 less the umask).
 * A path that exists as a folder is fine; one that exists as something else
 * is an error naming it. */
dj_status dj_fs_mkdirs(const char *path);

/* fsyncs the folder that holds path ("." for a bare name). */
dj_status dj_fs_sync_folder(const char *path);

/* Writes len bytes to path atomically (see above). */
dj_status dj_fs_write_atomic(const char *path, const void *data, size_t len);

/* Writes a NUL-terminated text to path atomically. */
dj_status dj_fs_write_text(const char *path, const char *text);

/* A file written in pieces, then committed atomically: dj_fs_temp_open
 * opens the temporary file for path; write to t->f; dj_fs_temp_commit
 * checks for write errors, fsyncs, renames over path and syncs the folder,
 * dj_fs_temp_abort removes it. Either call closes t->f. */
typedef struct dj_fs_temp {
    FILE *f;
    char tmp[4200];
    char path[4096];
} dj_fs_temp;

dj_status dj_fs_temp_open(dj_fs_temp *t, const char *path);
dj_status dj_fs_temp_commit(dj_fs_temp *t);
void dj_fs_temp_abort(dj_fs_temp *t);

#ifdef __cplusplus
}
#endif

#endif
