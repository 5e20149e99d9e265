/* dojo/config.h — configuration files (YAML, and so JSON) with strict keys.
 *
 * A config is a tree of mappings, lists and scalars read by libyaml, each
 * value remembering its file and line. Values are read by dotted path
 * ("optimizer.lr"); every read marks the key as known. After reading all
 * the keys it understands, a program calls dj_config_check_unused(), which
 * rejects the first key nobody read — a misspelt "optimiser:" is reported
 * as "unknown key 'optimiser' (recipe.yaml:12)", never silently ignored.
 * Command-line flags override keys with dj_config_set(). */
#ifndef DOJO_CONFIG_H
#define DOJO_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "dojo/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dj_config dj_config;

/* An empty config (all getters find nothing). */
dj_status dj_config_create(dj_config **out);
dj_status dj_config_load(const char *path, dj_config **out);
/* Parses text; `origin` names it in messages ("--config-text", a path). */
dj_status dj_config_parse(const char *text, size_t len, const char *origin, dj_config **out);
void dj_config_free(dj_config *c);

/* Getters: when the key is absent they return DJ_OK and leave *value as it
 * is (the caller's default); when it is present with the wrong type they
 * return DJ_ERR_INVALID naming the key, the value and its file:line. */
dj_status dj_config_get_int(dj_config *c, const char *key, int64_t *value);
dj_status dj_config_get_double(dj_config *c, const char *key, double *value);
dj_status dj_config_get_bool(dj_config *c, const char *key, int *value);
/* The string stays valid until dj_config_free. */
dj_status dj_config_get_string(dj_config *c, const char *key, const char **value);
/* A list of numbers (or one number); *count receives how many, at most max. */
dj_status dj_config_get_doubles(dj_config *c, const char *key, double *values, int max, int *count);
/* Marks key and everything under it as known (a section another program
 * reads, such as the demo's data settings in a saved recipe). */
void dj_config_ignore(dj_config *c, const char *key);

/* 1 if the key is present (marks it as known). */
int dj_config_has(dj_config *c, const char *key);

/* Sets key (creating mappings on the way) to a scalar given as text, as a
 * command-line override; `origin` names it in messages ("--lr"). */
dj_status dj_config_set(dj_config *c, const char *key, const char *text, const char *origin);

/* DJ_ERR_INVALID for the first key never read, with its file and line. */
dj_status dj_config_check_unused(const dj_config *c);

/* Writes the config back as one JSON object (for checkpoints and reports);
 * returns a malloc'ed string or NULL. Scalars that read as numbers or
 * booleans are written as such. */
char *dj_config_to_json(const dj_config *c);

#ifdef __cplusplus
}
#endif
#endif
