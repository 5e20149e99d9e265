/* dojo/dataset.h — lists of labelled videos read from the usual layouts.
 *
 * Three formats, detected by dj_dataset_open():
 * - FOLDERS: root/<class>/<video> (UCF101, HMDB51, Something-Something
 *   converted, ...). Each sub-folder of the root is a class; its videos are
 *   searched recursively (root/<class>/<group>/<video> counts too: sub-folders
 *   by actor, split or source are common). Files with a video extension (mp4
 *   mkv webm avi mov m4v mpg mpeg ts flv 3gp ogv wmv m2ts mts mxf y4m ps vob
 *   m2v, any case) count; hidden files and folders and other files are ignored, and so
 *   are files directly in the root. Class ids follow the sorted class names.
 *   An empty class folder is a warning; a missing root or no video at all is
 *   an error. With options.unlabelled, a root without sub-folders is a set of
 *   unlabelled videos (searched the same way; label -1, no classes).
 * - LIST: a text file of lines `path label [start_frame end_frame]`
 *   (MMAction2 / DALI file lists). Relative paths are relative to the list
 *   file's folder (or options.video_root). `#` starts a comment, blank lines
 *   are skipped, any other malformed line is an error naming file:line.
 *   Paths may not contain white space. Class names are the decimal labels.
 * - CSV: a Kinetics annotation file `label,youtube_id,time_start,time_end,split`
 *   (header line optional, fields may be "quoted"). The video of a row is
 *   `{youtube_id}_{start:06d}_{end:06d}.mp4` under options.video_root (default:
 *   the CSV's folder), looked up as root/<label>/<name> then root/<name>;
 *   rows whose video is absent are skipped with one warning (deleted YouTube
 *   videos are common), and an error if none is present. Label names get ids
 *   by sorted order.
 * Entries are sorted (by path, then frame range) so the order never depends on
 * the file system or on how a list was written. */
#ifndef DOJO_DATASET_H
#define DOJO_DATASET_H

#include <stdint.h>

#include "dojo/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dj_dataset_format {
    DJ_DATASET_AUTO = 0, /* a folder: FOLDERS; *.csv: CSV; another file: LIST */
    DJ_DATASET_FOLDERS = 1,
    DJ_DATASET_LIST = 2,
    DJ_DATASET_CSV = 3,
} dj_dataset_format;

typedef struct dj_dataset_options {
    dj_dataset_format format;
    const char *video_root; /* LIST/CSV: folder of the videos; NULL: the file's folder */
    int unlabelled;         /* FOLDERS: accept a root of videos without class folders (labels -1) */
} dj_dataset_options;

typedef struct dj_dataset_entry {
    const char *path;    /* the video file (owned by the dataset) */
    int label;           /* class id in [0, num_classes); -1 in an unlabelled folder */
    int64_t start_frame; /* [start_frame, end_frame) of the video; both -1: all frames */
    int64_t end_frame;
} dj_dataset_entry;

typedef struct dj_dataset dj_dataset;

/* Reads a dataset; options may be NULL (AUTO, no video_root). */
dj_status dj_dataset_open(const char *path, const dj_dataset_options *options, dj_dataset **out);
void dj_dataset_free(dj_dataset *ds);

dj_dataset_format dj_dataset_format_of(const dj_dataset *ds);
int64_t dj_dataset_size(const dj_dataset *ds);
/* The i-th entry in sorted order, or NULL when i is out of range. */
const dj_dataset_entry *dj_dataset_entry_at(const dj_dataset *ds, int64_t i);
int dj_dataset_num_classes(const dj_dataset *ds);
/* The name of class id, or NULL when out of range. */
const char *dj_dataset_class_name(const dj_dataset *ds, int id);
/* The id of a class name, or -1 when unknown. */
int dj_dataset_class_id(const dj_dataset *ds, const char *name);
/* How many warnings opening produced (empty class folders, missing videos). */
int dj_dataset_warning_count(const dj_dataset *ds);

/* The entries (indices into the sorted order) that rank `rank` of `world`
 * reads in `epoch`: the epoch order (dj_epoch_order in sampling.h: shuffled
 * by (seed, epoch) when shuffle, else sorted) dealt out round-robin, position
 * p going to rank p % world. With drop_last the order is first cut to a
 * multiple of world, so every rank gets the same count; without it the ranks
 * are disjoint and together cover every entry (counts differ by at most one).
 * *indices is malloc'ed (free() it); *count may be 0. */
dj_status dj_dataset_shard(const dj_dataset *ds, uint64_t seed, uint64_t epoch, int shuffle, int rank,
                           int world, int drop_last, int64_t **indices, int64_t *count);

#ifdef __cplusplus
}
#endif
#endif
