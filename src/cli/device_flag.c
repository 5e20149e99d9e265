/* device_flag.c — `--device cpu|cuda|cuda:N`, shared by the commands that
 * compute (train, eval, predict, bench train-step). For now the CPU is the
 * only device a network runs on: `cuda` checks the GPU is there, then says
 * that the graph does not run on it yet. */
#include "cli.h"
#include "dojo/device.h"

int dj_cli_device(const char *command, const char *text, dj_device_spec *spec) {
    *spec = (dj_device_spec){DJ_DEVICE_CPU, 0};
    if (!text)
        return -1;
    if (dj_device_parse(text, "--device", spec) != DJ_OK)
        return dj_cli_usage_error(command, "--device '%s': expected cpu, cuda or cuda:N", text);
    if (spec->kind == DJ_DEVICE_CPU)
        return -1;
    /* A GPU must be there before anything else happens (it says why not). */
    dj_device *dev = NULL;
    if (dj_device_open(spec, 0, "--device", &dev) != DJ_OK)
        return dj_cli_fail();
    dj_device_free(dev);
    char buf[32];
    dj_error_set(DJ_ERR_UNSUPPORTED, "--device",
                 "%s: the CUDA operators exist (dojo/ops_cuda.h) but the training step does not run on them yet",
                 dj_device_spec_string(spec, buf, sizeof buf));
    return dj_cli_fail();
}
