/* test_config.c — YAML/JSON configs: typed reads, strict keys with their
 * line, overrides, hostile text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/config.h"
#include "support/test.h"

static const char *recipe =
    "# a recipe\n"
    "model: r3d_18\n"
    "epochs: 12\n"
    "optimizer:\n"
    "  kind: sgd\n"
    "  lr: 0.05\n"
    "  nesterov: yes\n"
    "augment:\n"
    "  mean: [0.43, 0.39, 0.37]\n"
    "  scale: 0.5\n";

static dj_config *parse(const char *text) {
    dj_config *c = NULL;
    CHECK(dj_config_parse(text, strlen(text), "recipe.yaml", &c) == DJ_OK);
    return c;
}

static void test_typed_reads(void) {
    dj_config *c = parse(recipe);
    if (!c)
        return;
    const char *model = "default";
    int64_t epochs = 1, absent = 77;
    double lr = 0, mean[3];
    int nesterov = 0, n = 0;
    CHECK(dj_config_get_string(c, "model", &model) == DJ_OK);
    CHECK(strcmp(model, "r3d_18") == 0);
    CHECK(dj_config_get_int(c, "epochs", &epochs) == DJ_OK && epochs == 12);
    CHECK(dj_config_get_double(c, "optimizer.lr", &lr) == DJ_OK && lr == 0.05);
    CHECK(dj_config_get_bool(c, "optimizer.nesterov", &nesterov) == DJ_OK && nesterov == 1);
    CHECK(dj_config_get_doubles(c, "augment.mean", mean, 3, &n) == DJ_OK && n == 3 && mean[2] == 0.37);
    CHECK(dj_config_get_int(c, "batch", &absent) == DJ_OK && absent == 77); /* default kept */
    CHECK(dj_config_has(c, "optimizer.kind"));
    CHECK(dj_config_has(c, "augment.scale"));
    CHECK(dj_config_check_unused(c) == DJ_OK);
    dj_config_free(c);
}

static void test_ignored_sections(void) {
    dj_config *c = parse(recipe);
    if (!c)
        return;
    dj_config_ignore(c, "augment");
    dj_config_ignore(c, "optimizer");
    dj_config_ignore(c, "no.such.key"); /* harmless */
    const char *s;
    int64_t e;
    dj_config_get_string(c, "model", &s);
    CHECK(dj_config_check_unused(c) == DJ_ERR_INVALID); /* epochs still unread */
    dj_config_get_int(c, "epochs", &e);
    CHECK(dj_config_check_unused(c) == DJ_OK);
    dj_config_free(c);
}

static void test_unknown_key_is_reported_with_its_line(void) {
    dj_config *c = parse(recipe);
    if (!c)
        return;
    const char *s;
    int64_t e;
    double d;
    int b;
    dj_config_get_string(c, "model", &s);
    dj_config_get_int(c, "epochs", &e);
    dj_config_get_double(c, "optimizer.lr", &d);
    dj_config_get_bool(c, "optimizer.nesterov", &b);
    dj_config_get_string(c, "optimizer.kind", &s);
    CHECK(dj_config_check_unused(c) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "unknown config key 'augment' (recipe.yaml:8)");
    dj_config_get_double(c, "augment.scale", &d);
    CHECK(dj_config_check_unused(c) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "unknown config key 'augment.mean' (recipe.yaml:9)");
    dj_config_free(c);
}

static void test_wrong_types(void) {
    dj_config *c = parse("epochs: ten\nlr: [1, 2]\nflag: maybe\nmean: [1, x]\n");
    if (!c)
        return;
    int64_t e;
    double d, v[4];
    int b, n;
    CHECK(dj_config_get_int(c, "epochs", &e) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "config key 'epochs' expects a whole number, got 'ten' (recipe.yaml:1)");
    CHECK(dj_config_get_double(c, "lr", &d) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "got 'a list' (recipe.yaml:2)");
    CHECK(dj_config_get_bool(c, "flag", &b) == DJ_ERR_INVALID);
    CHECK(dj_config_get_doubles(c, "mean", v, 4, &n) == DJ_ERR_INVALID);
    CHECK(dj_config_get_doubles(c, "lr", v, 1, &n) == DJ_ERR_INVALID); /* too many */
    dj_config_free(c);
}

static void test_json_is_accepted(void) {
    dj_config *c = parse("{\"model\": \"mc3_18\", \"optimizer\": {\"lr\": 1e-3}}");
    if (!c)
        return;
    double lr = 0;
    CHECK(dj_config_get_double(c, "optimizer.lr", &lr) == DJ_OK && lr == 1e-3);
    dj_config_free(c);
}

static void test_overrides(void) {
    dj_config *c = parse(recipe);
    if (!c)
        return;
    CHECK(dj_config_set(c, "optimizer.lr", "0.2", "--lr") == DJ_OK);
    CHECK(dj_config_set(c, "train.batch", "16", "--batch") == DJ_OK);
    double lr = 0;
    int64_t batch = 0;
    CHECK(dj_config_get_double(c, "optimizer.lr", &lr) == DJ_OK && lr == 0.2);
    CHECK(dj_config_get_int(c, "train.batch", &batch) == DJ_OK && batch == 16);
    CHECK(dj_config_set(c, "model.depth", "3", "--x") == DJ_ERR_INVALID); /* model is a scalar */
    CHECK(dj_config_set(c, "epochs", "x", "--epochs") == DJ_OK);
    int64_t e;
    CHECK(dj_config_get_int(c, "epochs", &e) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "got 'x' (--epochs:0)");
    char *json = dj_config_to_json(c);
    CHECK(json != NULL);
    CHECK_STR_CONTAINS(json, "\"lr\":0.2");
    CHECK_STR_CONTAINS(json, "\"model\":\"r3d_18\"");
    free(json);
    dj_config_free(c);
    dj_config *empty;
    CHECK(dj_config_create(&empty) == DJ_OK);
    CHECK(dj_config_set(empty, "a.b.c", "1", "--set") == DJ_OK);
    CHECK(dj_config_check_unused(empty) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "unknown config key 'a' (--set)");
    dj_config_free(empty);
}

static void test_bad_text(void) {
    dj_config *c = NULL;
    const char *cases[] = {
        "a: [1, 2\n",           /* unclosed list */
        "- 1\n- 2\n",           /* top level not a mapping */
        "a: 1\na: 2\n",         /* duplicate key */
        "a.b: 1\n",             /* dotted key */
        "? [1]\n: 2\n",         /* complex key */
        "a: \"\\xZZ\"\n",       /* bad escape */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_MSG(dj_config_parse(cases[i], strlen(cases[i]), "bad.yaml", &c) == DJ_ERR_FORMAT, "case %zu", i);
        CHECK_STR_CONTAINS(dj_error_message(), "bad.yaml");
        CHECK(c == NULL);
    }
    CHECK(dj_config_parse("a: 1\na: 2\n", 10, "bad.yaml", &c) == DJ_ERR_FORMAT);
    CHECK_STR_CONTAINS(dj_error_message(), "key 'a' appears twice (lines 1 and 2)");
    /* deep nesting is refused, not a stack overflow */
    char deep[4096];
    size_t k = 0;
    for (int i = 0; i < 1000 && k + 2 < sizeof deep; i++)
        deep[k++] = '[';
    deep[k] = '\0';
    char doc[4200];
    snprintf(doc, sizeof doc, "a: %s", deep);
    CHECK(dj_config_parse(doc, strlen(doc), "deep.yaml", &c) == DJ_ERR_FORMAT);
    CHECK(dj_config_parse("", 0, "empty.yaml", &c) == DJ_OK); /* empty file: empty config */
    CHECK(dj_config_check_unused(c) == DJ_OK);
    dj_config_free(c);
}

static void test_load_from_file(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/r.yaml", dj_test_tmpdir());
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    fputs(recipe, f);
    fclose(f);
    dj_config *c = NULL;
    CHECK(dj_config_load(path, &c) == DJ_OK);
    dj_config_free(c);
    CHECK(dj_config_load("/nonexistent/x.yaml", &c) == DJ_ERR_IO);
    CHECK_STR_CONTAINS(dj_error_message(), "cannot open the config: No such file or directory (/nonexistent/x.yaml)");
}

int main(void) {
    DJ_RUN(test_typed_reads);
    DJ_RUN(test_ignored_sections);
    DJ_RUN(test_unknown_key_is_reported_with_its_line);
    DJ_RUN(test_wrong_types);
    DJ_RUN(test_json_is_accepted);
    DJ_RUN(test_overrides);
    DJ_RUN(test_bad_text);
    DJ_RUN(test_load_from_file);
    return dj_test_finish();
}
