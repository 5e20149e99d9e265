/* config.c — YAML configuration trees with line numbers and strict keys.
 * libyaml parses; this file keeps a small tree of our own so that reads can
 * mark keys as used and flags can override values. */
#include "dojo/config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <yaml.h>

typedef enum dj_cnode_kind { DJ_CNODE_SCALAR, DJ_CNODE_MAP, DJ_CNODE_LIST } dj_cnode_kind;

typedef struct dj_cnode {
    dj_cnode_kind kind;
    char *key;        /* in a mapping: the key; else NULL */
    char *text;       /* scalars */
    int line;         /* 1-based */
    int used;
    const char *origin; /* file name or flag, owned by the config's strings */
    struct dj_cnode **items;
    int n_items, cap_items;
} dj_cnode;

struct dj_config {
    dj_cnode *root;
    char **origins; /* owned strings the nodes point to */
    int n_origins;
};

static void dj_cnode_free(dj_cnode *n) {
    if (!n)
        return;
    for (int i = 0; i < n->n_items; i++)
        dj_cnode_free(n->items[i]);
    free(n->items);
    free(n->key);
    free(n->text);
    free(n);
}

void dj_config_free(dj_config *c) {
    if (!c)
        return;
    dj_cnode_free(c->root);
    for (int i = 0; i < c->n_origins; i++)
        free(c->origins[i]);
    free(c->origins);
    free(c);
}

static char *dj_cstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static const char *dj_config_origin(dj_config *c, const char *origin) {
    for (int i = 0; i < c->n_origins; i++)
        if (strcmp(c->origins[i], origin) == 0)
            return c->origins[i];
    char **o = realloc(c->origins, (size_t)(c->n_origins + 1) * sizeof *o);
    if (!o)
        return NULL;
    c->origins = o;
    o[c->n_origins] = dj_cstrdup(origin);
    return o[c->n_origins] ? o[c->n_origins++] : NULL;
}

static dj_cnode *dj_cnode_new(dj_cnode_kind kind, const char *origin, int line) {
    dj_cnode *n = calloc(1, sizeof *n);
    if (n) {
        n->kind = kind;
        n->origin = origin;
        n->line = line;
    }
    return n;
}

static int dj_cnode_append(dj_cnode *parent, dj_cnode *child) {
    if (parent->n_items == parent->cap_items) {
        int cap = parent->cap_items ? 2 * parent->cap_items : 8;
        dj_cnode **items = realloc(parent->items, (size_t)cap * sizeof *items);
        if (!items)
            return -1;
        parent->items = items;
        parent->cap_items = cap;
    }
    parent->items[parent->n_items++] = child;
    return 0;
}

dj_status dj_config_create(dj_config **out) {
    dj_config *c = calloc(1, sizeof *c);
    if (!c || !(c->root = dj_cnode_new(DJ_CNODE_MAP, NULL, 0))) {
        free(c);
        return dj_error_set(DJ_ERR_NOMEM, "config", "cannot allocate");
    }
    *out = c;
    return DJ_OK;
}

/* ---- conversion from libyaml's document ---- */

#define DJ_CONFIG_MAX_DEPTH 64

static dj_status dj_convert(dj_config *c, yaml_document_t *doc, yaml_node_t *y, const char *origin, int depth,
                            dj_cnode **out) {
    int line = (int)y->start_mark.line + 1;
    if (depth > DJ_CONFIG_MAX_DEPTH)
        return dj_error_set(DJ_ERR_FORMAT, origin, "nesting deeper than %d levels at line %d", DJ_CONFIG_MAX_DEPTH,
                            line);
    dj_cnode *n = NULL;
    switch (y->type) {
    case YAML_SCALAR_NODE:
        n = dj_cnode_new(DJ_CNODE_SCALAR, origin, line);
        if (n && !(n->text = malloc(y->data.scalar.length + 1))) {
            dj_cnode_free(n);
            n = NULL;
        }
        if (!n)
            return dj_error_set(DJ_ERR_NOMEM, origin, "cannot allocate");
        memcpy(n->text, y->data.scalar.value, y->data.scalar.length);
        n->text[y->data.scalar.length] = '\0';
        break;
    case YAML_SEQUENCE_NODE:
        n = dj_cnode_new(DJ_CNODE_LIST, origin, line);
        if (!n)
            return dj_error_set(DJ_ERR_NOMEM, origin, "cannot allocate");
        for (yaml_node_item_t *it = y->data.sequence.items.start; it < y->data.sequence.items.top; it++) {
            dj_cnode *child = NULL;
            dj_status s = dj_convert(c, doc, yaml_document_get_node(doc, *it), origin, depth + 1, &child);
            if (s == DJ_OK && dj_cnode_append(n, child) != 0) {
                dj_cnode_free(child);
                s = dj_error_set(DJ_ERR_NOMEM, origin, "cannot allocate");
            }
            if (s != DJ_OK) {
                dj_cnode_free(n);
                return s;
            }
        }
        break;
    case YAML_MAPPING_NODE:
        n = dj_cnode_new(DJ_CNODE_MAP, origin, line);
        if (!n)
            return dj_error_set(DJ_ERR_NOMEM, origin, "cannot allocate");
        for (yaml_node_pair_t *p = y->data.mapping.pairs.start; p < y->data.mapping.pairs.top; p++) {
            yaml_node_t *k = yaml_document_get_node(doc, p->key);
            int kline = (int)k->start_mark.line + 1;
            if (k->type != YAML_SCALAR_NODE) {
                dj_cnode_free(n);
                return dj_error_set(DJ_ERR_FORMAT, origin, "a key must be a plain name (line %d)", kline);
            }
            const char *key = (const char *)k->data.scalar.value;
            if (strchr(key, '.')) {
                dj_cnode_free(n);
                return dj_error_set(DJ_ERR_FORMAT, origin, "key '%s' contains a '.' (line %d)", key, kline);
            }
            for (int i = 0; i < n->n_items; i++)
                if (strcmp(n->items[i]->key, key) == 0) {
                    int first = n->items[i]->line;
                    dj_cnode_free(n);
                    return dj_error_set(DJ_ERR_FORMAT, origin, "key '%s' appears twice (lines %d and %d)", key, first,
                                        kline);
                }
            dj_cnode *child = NULL;
            dj_status s = dj_convert(c, doc, yaml_document_get_node(doc, p->value), origin, depth + 1, &child);
            if (s == DJ_OK) {
                child->line = kline;
                child->key = dj_cstrdup(key);
                if (!child->key || dj_cnode_append(n, child) != 0) {
                    dj_cnode_free(child);
                    s = dj_error_set(DJ_ERR_NOMEM, origin, "cannot allocate");
                }
            }
            if (s != DJ_OK) {
                dj_cnode_free(n);
                return s;
            }
        }
        break;
    default:
        return dj_error_set(DJ_ERR_FORMAT, origin, "unexpected YAML node at line %d", line);
    }
    *out = n;
    return DJ_OK;
}

dj_status dj_config_parse(const char *text, size_t len, const char *origin, dj_config **out) {
    *out = NULL;
    dj_config *c;
    DJ_TRY(dj_config_create(&c));
    const char *org = dj_config_origin(c, origin ? origin : "config");
    if (!org) {
        dj_config_free(c);
        return dj_error_set(DJ_ERR_NOMEM, origin, "cannot allocate");
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) {
        dj_config_free(c);
        return dj_error_set(DJ_ERR_NOMEM, org, "cannot start the YAML parser");
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        dj_status s = dj_error_set(DJ_ERR_FORMAT, org, "%s at line %d, column %d",
                                   parser.problem ? parser.problem : "invalid YAML", (int)parser.problem_mark.line + 1,
                                   (int)parser.problem_mark.column + 1);
        yaml_parser_delete(&parser);
        dj_config_free(c);
        return s;
    }
    dj_status s = DJ_OK;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root) { /* an empty file is an empty config */
        if (root->type != YAML_MAPPING_NODE) {
            s = dj_error_set(DJ_ERR_FORMAT, org, "the top level must be a mapping of keys (line %d)",
                             (int)root->start_mark.line + 1);
        } else {
            dj_cnode *tree = NULL;
            s = dj_convert(c, &doc, root, org, 0, &tree);
            if (s == DJ_OK) {
                dj_cnode_free(c->root);
                c->root = tree;
            }
        }
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (s != DJ_OK) {
        dj_config_free(c);
        return s;
    }
    *out = c;
    return DJ_OK;
}

dj_status dj_config_load(const char *path, dj_config **out) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return dj_error_set(DJ_ERR_IO, path, "cannot open the config: %s", strerror(errno));
    enum { DJ_CONFIG_MAX = 1 << 20 };
    char *buf = malloc(DJ_CONFIG_MAX + 1);
    if (!buf) {
        fclose(f);
        return dj_error_set(DJ_ERR_NOMEM, path, "cannot allocate");
    }
    size_t n = fread(buf, 1, DJ_CONFIG_MAX + 1, f);
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return dj_error_set(DJ_ERR_IO, path, "cannot read the config");
    }
    if (n > DJ_CONFIG_MAX) {
        free(buf);
        return dj_error_set(DJ_ERR_FORMAT, path, "config larger than 1 MiB");
    }
    dj_status s = dj_config_parse(buf, n, path, out);
    free(buf);
    return s;
}

/* ---- lookup ---- */

static dj_cnode *dj_config_find(dj_config *c, const char *key) {
    dj_cnode *n = c->root;
    const char *p = key;
    while (n && *p) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        dj_cnode *next = NULL;
        if (n->kind == DJ_CNODE_MAP)
            for (int i = 0; i < n->n_items; i++)
                if (strlen(n->items[i]->key) == len && strncmp(n->items[i]->key, p, len) == 0) {
                    next = n->items[i];
                    break;
                }
        if (!next)
            return NULL;
        next->used = 1; /* reading a.b marks the mapping a as known too */
        n = next;
        p = dot ? dot + 1 : p + len;
    }
    return n;
}

static dj_status dj_config_type_error(const dj_cnode *n, const char *key, const char *expected) {
    return dj_error_set(DJ_ERR_INVALID, NULL, "config key '%s' expects %s, got '%s' (%s:%d)", key, expected,
                        n->kind == DJ_CNODE_SCALAR ? n->text : n->kind == DJ_CNODE_MAP ? "a mapping" : "a list",
                        n->origin ? n->origin : "config", n->line);
}

static int dj_parse_double(const char *s, double *v) {
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (!*s || *end || errno == ERANGE || !isfinite(d))
        return -1;
    *v = d;
    return 0;
}

dj_status dj_config_get_int(dj_config *c, const char *key, int64_t *value) {
    dj_cnode *n = dj_config_find(c, key);
    if (!n)
        return DJ_OK;
    if (n->kind != DJ_CNODE_SCALAR)
        return dj_config_type_error(n, key, "a whole number");
    char *end;
    errno = 0;
    long long v = strtoll(n->text, &end, 10);
    if (!n->text[0] || *end || errno == ERANGE)
        return dj_config_type_error(n, key, "a whole number");
    *value = v;
    return DJ_OK;
}

dj_status dj_config_get_double(dj_config *c, const char *key, double *value) {
    dj_cnode *n = dj_config_find(c, key);
    if (!n)
        return DJ_OK;
    if (n->kind != DJ_CNODE_SCALAR || dj_parse_double(n->text, value) != 0)
        return dj_config_type_error(n, key, "a number");
    return DJ_OK;
}

dj_status dj_config_get_bool(dj_config *c, const char *key, int *value) {
    dj_cnode *n = dj_config_find(c, key);
    if (!n)
        return DJ_OK;
    if (n->kind == DJ_CNODE_SCALAR) {
        const char *t = n->text;
        if (!strcasecmp(t, "true") || !strcasecmp(t, "yes") || !strcasecmp(t, "on") || !strcmp(t, "1")) {
            *value = 1;
            return DJ_OK;
        }
        if (!strcasecmp(t, "false") || !strcasecmp(t, "no") || !strcasecmp(t, "off") || !strcmp(t, "0")) {
            *value = 0;
            return DJ_OK;
        }
    }
    return dj_config_type_error(n, key, "true or false");
}

dj_status dj_config_get_string(dj_config *c, const char *key, const char **value) {
    dj_cnode *n = dj_config_find(c, key);
    if (!n)
        return DJ_OK;
    if (n->kind != DJ_CNODE_SCALAR)
        return dj_config_type_error(n, key, "a text value");
    *value = n->text;
    return DJ_OK;
}

dj_status dj_config_get_doubles(dj_config *c, const char *key, double *values, int max, int *count) {
    dj_cnode *n = dj_config_find(c, key);
    if (!n)
        return DJ_OK;
    if (n->kind == DJ_CNODE_SCALAR) {
        if (max < 1 || dj_parse_double(n->text, &values[0]) != 0)
            return dj_config_type_error(n, key, "a number or a list of numbers");
        *count = 1;
        return DJ_OK;
    }
    if (n->kind != DJ_CNODE_LIST)
        return dj_config_type_error(n, key, "a list of numbers");
    if (n->n_items > max)
        return dj_error_set(DJ_ERR_INVALID, NULL, "config key '%s' has %d values, at most %d (%s:%d)", key,
                            n->n_items, max, n->origin, n->line);
    for (int i = 0; i < n->n_items; i++) {
        dj_cnode *it = n->items[i];
        it->used = 1;
        if (it->kind != DJ_CNODE_SCALAR || dj_parse_double(it->text, &values[i]) != 0)
            return dj_config_type_error(it, key, "a list of numbers");
    }
    *count = n->n_items;
    return DJ_OK;
}

int dj_config_has(dj_config *c, const char *key) { return dj_config_find(c, key) != NULL; }

static void dj_cnode_mark(dj_cnode *n) {
    n->used = 1;
    for (int i = 0; i < n->n_items; i++)
        dj_cnode_mark(n->items[i]);
}

void dj_config_ignore(dj_config *c, const char *key) {
    dj_cnode *n = dj_config_find(c, key);
    if (n)
        dj_cnode_mark(n);
}

dj_status dj_config_set(dj_config *c, const char *key, const char *text, const char *origin) {
    const char *org = dj_config_origin(c, origin ? origin : "override");
    if (!org)
        return dj_error_set(DJ_ERR_NOMEM, origin, "cannot allocate");
    dj_cnode *n = c->root;
    const char *p = key;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        if (len == 0)
            return dj_error_set(DJ_ERR_INVALID, org, "bad config key '%s'", key);
        if (n->kind != DJ_CNODE_MAP)
            return dj_error_set(DJ_ERR_INVALID, org, "config key '%s': '%.*s' is inside a value that is not a mapping",
                                key, (int)len, p);
        dj_cnode *next = NULL;
        for (int i = 0; i < n->n_items; i++)
            if (strlen(n->items[i]->key) == len && strncmp(n->items[i]->key, p, len) == 0)
                next = n->items[i];
        if (!next) {
            next = dj_cnode_new(dot ? DJ_CNODE_MAP : DJ_CNODE_SCALAR, org, 0);
            if (!next || !(next->key = malloc(len + 1)) || dj_cnode_append(n, next) != 0) {
                dj_cnode_free(next);
                return dj_error_set(DJ_ERR_NOMEM, org, "cannot allocate");
            }
            memcpy(next->key, p, len);
            next->key[len] = '\0';
        }
        if (!dot) {
            for (int i = 0; i < next->n_items; i++)
                dj_cnode_free(next->items[i]);
            next->n_items = 0;
            char *t = dj_cstrdup(text);
            if (!t)
                return dj_error_set(DJ_ERR_NOMEM, org, "cannot allocate");
            free(next->text);
            next->text = t;
            next->kind = DJ_CNODE_SCALAR;
            next->origin = org;
            next->line = 0;
            return DJ_OK;
        }
        n = next;
        p = dot + 1;
    }
}

static dj_status dj_check_unused(const dj_cnode *n, char *path, size_t cap) {
    size_t len = strlen(path);
    for (int i = 0; i < n->n_items; i++) {
        const dj_cnode *it = n->items[i];
        if (n->kind == DJ_CNODE_MAP) {
            snprintf(path + len, cap - len, "%s%s", len ? "." : "", it->key);
            if (!it->used) {
                if (it->line > 0)
                    return dj_error_set(DJ_ERR_INVALID, NULL, "unknown config key '%s' (%s:%d)", path, it->origin,
                                        it->line);
                return dj_error_set(DJ_ERR_INVALID, NULL, "unknown config key '%s' (%s)", path, it->origin);
            }
            if (it->kind == DJ_CNODE_MAP)
                DJ_TRY(dj_check_unused(it, path, cap));
            path[len] = '\0';
        }
    }
    return DJ_OK;
}

dj_status dj_config_check_unused(const dj_config *c) {
    char path[512] = "";
    return dj_check_unused(c->root, path, sizeof path);
}

static cJSON *dj_cnode_json(const dj_cnode *n) {
    if (n->kind == DJ_CNODE_SCALAR) {
        double d;
        if (dj_parse_double(n->text, &d) == 0)
            return cJSON_CreateNumber(d);
        if (!strcmp(n->text, "true") || !strcmp(n->text, "false"))
            return cJSON_CreateBool(n->text[0] == 't');
        return cJSON_CreateString(n->text);
    }
    cJSON *o = n->kind == DJ_CNODE_MAP ? cJSON_CreateObject() : cJSON_CreateArray();
    for (int i = 0; o && i < n->n_items; i++) {
        cJSON *child = dj_cnode_json(n->items[i]);
        if (!child) {
            cJSON_Delete(o);
            return NULL;
        }
        if (n->kind == DJ_CNODE_MAP)
            cJSON_AddItemToObject(o, n->items[i]->key, child);
        else
            cJSON_AddItemToArray(o, child);
    }
    return o;
}

char *dj_config_to_json(const dj_config *c) {
    cJSON *o = dj_cnode_json(c->root);
    if (!o)
        return NULL;
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}
