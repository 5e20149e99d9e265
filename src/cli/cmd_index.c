/* cmd_index.c — `dojo index DATA --out INDEX [--verify]`: scans a folder of
 * videos (folder-per-class layout gives labels) or a list file into the
 * binary frame index that training and the loader open cheaply. Re-running
 * over an existing INDEX re-scans only files whose size or mtime changed. */
#include <stdio.h>
#include <sys/stat.h>

#include "cli.h"
#include "dojo/log.h"
#include "dojo/video.h"

static const char *dj_index_out;
static int dj_index_verify_flag;

static const dj_option dj_index_options[] = {
    {"out", DJ_OPT_STRING, &dj_index_out, "INDEX", "index file to write (updated in place when it exists)", 0, 0},
    {"verify", DJ_OPT_FLAG, &dj_index_verify_flag, NULL,
     "decode every video and correct the frame table where decoding disagrees", 0, 0},
    {NULL, 0, NULL, NULL, NULL, 0, 0},
};

static const dj_cli_spec dj_index_spec = {
    "index", "DATA --out INDEX [--verify]",
    "DATA is a folder of videos (searched recursively; when it holds only\n"
    "sub-folders, each is a class and labels are class ids in name order) or a\n"
    "list file with lines 'path label [start_frame end_frame]'. Each video is\n"
    "scanned once (demux only) into a per-frame table; videos that cannot be\n"
    "used are listed with the reason and left out. The index is written\n"
    "atomically. With an existing INDEX only changed files are scanned again.",
    dj_index_options, 1, 1,
};

int dj_cmd_index(int argc, char **argv) {
    int np = 0;
    dj_index_out = NULL;
    dj_index_verify_flag = 0;
    int rc = dj_cli_parse(&dj_index_spec, argc, argv, &np);
    if (rc >= 0)
        return rc;
    if (!dj_index_out)
        return dj_cli_usage_error("index", "option '--out' is required");
    dj_index *prev = NULL;
    struct stat sb;
    if (stat(dj_index_out, &sb) == 0 && dj_index_load(dj_index_out, &prev) != DJ_OK) {
        dj_log_warn("ignoring the existing index: %s", dj_error_message());
        prev = NULL;
    }
    dj_index_build_options o = {dj_index_verify_flag, prev, dj_log_get_level() < DJ_LOG_WARN};
    dj_index *ix = NULL;
    dj_index_report rep;
    dj_status st = dj_index_build(argv[1], &o, &ix, &rep);
    dj_index_free(prev);
    if (st == DJ_OK)
        st = dj_index_save(ix, dj_index_out);
    if (st != DJ_OK) {
        dj_index_free(ix);
        return dj_cli_fail();
    }
    int64_t frames = 0;
    for (int64_t i = 0; i < dj_index_count(ix); i++)
        frames += dj_index_video(ix, i)->nframes;
    dj_log_info("indexed %lld videos (%lld scanned, %lld unchanged, %lld skipped%s%lld corrected), "
                "%lld frames, %d classes -> %s",
                (long long)dj_index_count(ix), (long long)rep.scanned, (long long)rep.reused,
                (long long)rep.skipped, ", ", (long long)rep.corrected, (long long)frames,
                dj_index_class_count(ix), dj_index_out);
    dj_index_free(ix);
    return DJ_EXIT_OK;
}
