/* fuzz_config.c — libFuzzer harness for what reads hand-written files: any
 * byte string is parsed as a YAML/JSON config; when it parses, it is read
 * as training options (the recipe) and as a model file, and the model's
 * graph is built for a small clip (not planned: no activation memory).
 * Must never crash, hang or leak, whatever the keys and values (widths,
 * depths, kernel sizes, strides ...): bad values are errors.
 *
 * Built and run by tests/fuzz/run.sh (FUZZ_TARGET=config; a short run is
 * part of `make test`), e.g. for ten minutes:
 *   FUZZ_TARGET=config sh tests/fuzz/run.sh 600 */
#include <stdint.h>
#include <stdlib.h>

#include "dojo/config.h"
#include "dojo/error.h"
#include "dojo/model.h"
#include "dojo/train.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    dj_config *cfg = NULL;
    if (dj_config_parse((const char *)data, size, "fuzz", &cfg) == DJ_OK) {
        dj_train_options o;
        dj_train_defaults(&o);
        (void)dj_train_options_read(cfg, &o);
        dj_error_clear();
        dj_config_free(cfg);
        cfg = NULL;
    }
    dj_error_clear();
    if (dj_config_parse((const char *)data, size, "fuzz", &cfg) == DJ_OK) {
        dj_model_shape shape = {1, 4, 16, 16, 0, 0.0f, 1};
        dj_model *m = NULL;
        if (dj_model_create(cfg, &shape, &m) == DJ_OK)
            (void)dj_model_num_params(m);
        dj_model_free(m);
        dj_config_free(cfg);
    }
    dj_error_clear();
    return 0;
}
