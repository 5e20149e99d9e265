/* kill_at.c — a crash on cue, for tests of "a crash never loses a
 * checkpoint". Preloaded into dojo (LD_PRELOAD), it wraps rename() and
 * write() and sends the process SIGKILL at the N-th call that touches a
 * chosen path, so a test can kill a run at an exact point of a checkpoint
 * write instead of wherever a timer happens to land:
 *
 *   DOJO_KILL_AT=rename:last.safetensors:2   before the 2nd rename onto a path containing it
 *   DOJO_KILL_AT=write:last.safetensors.tmp:2 after the first write into the 2nd file whose path contains it
 *
 * Test support only: never linked into dojo. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char kill_func[16], kill_path[256];
static long kill_nth = -1, kill_seen;
static int kill_parsed;

static void kill_parse(void) {
    if (kill_parsed)
        return;
    kill_parsed = 1;
    const char *spec = getenv("DOJO_KILL_AT");
    if (!spec)
        return;
    const char *a = strchr(spec, ':');
    const char *b = a ? strrchr(a + 1, ':') : NULL;
    if (!a || !b || a - spec >= (long)sizeof kill_func || b - a - 1 >= (long)sizeof kill_path)
        return;
    memcpy(kill_func, spec, (size_t)(a - spec));
    memcpy(kill_path, a + 1, (size_t)(b - a - 1));
    kill_nth = strtol(b + 1, NULL, 10);
}

/* counts a matching call of func on path; SIGKILL on the chosen one */
static void kill_maybe(const char *func, const char *path) {
    kill_parse();
    if (kill_nth <= 0 || strcmp(func, kill_func) != 0 || !path || !strstr(path, kill_path))
        return;
    if (__atomic_add_fetch(&kill_seen, 1, __ATOMIC_SEQ_CST) == kill_nth)
        raise(SIGKILL);
}

int rename(const char *from, const char *to) {
    static int (*real)(const char *, const char *);
    if (!real)
        real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
    kill_maybe("rename", to);
    return real(from, to);
}

ssize_t write(int fd, const void *buf, size_t n) {
    static ssize_t (*real)(int, const void *, size_t);
    if (!real)
        real = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    ssize_t r = real(fd, buf, n);
    kill_parse();
    if (kill_nth > 0 && !strcmp(kill_func, "write")) {
        char link[64], path[PATH_MAX];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t len = readlink(link, path, sizeof path - 1);
        static char last[PATH_MAX]; /* counts files, not calls: a checkpoint is many writes */
        if (len > 0) {
            path[len] = '\0';
            if (strcmp(path, last) != 0) {
                snprintf(last, sizeof last, "%s", path);
                kill_maybe("write", path);
            }
        }
    }
    return r;
}
