/* main.c — the `dojo` command: finds the sub-command and runs it.
 *
 * Each sub-command lives in its own file (cmd_NAME.c) and is listed once in
 * the table below; `dojo help CMD` and `dojo CMD --help` print the same text. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "dojo/log.h"

static const dj_command dj_commands[] = {
    {"bench", "measure kernels, decoding and training steps against their peers", dj_cmd_bench},
    {"eval", "evaluate a checkpoint: multi-view top-1/top-5, per-class accuracy, confusion", dj_cmd_eval},
    {"forward", "run a trained network on a tensor file and write its logits", dj_cmd_forward},
    {"frames", "write chosen frames of a video as PNG files", dj_cmd_frames},
    {"index", "scan a folder or list of videos into a binary frame index", dj_cmd_index},
    {"predict", "label videos with a checkpoint: top classes and probabilities", dj_cmd_predict},
    {"probe", "describe video files: codec, size, rates, exact frame counts", dj_cmd_probe},
    {"report", "write a run's HTML report: curves, confusion matrix, summary, configuration", dj_cmd_report},
    {"gen", "generate synthetic videos: the motion data set or decoder test clips", dj_cmd_gen},
    {"train", "train a model on a folder of videos (the built-in demo without arguments)", dj_cmd_train},
    {"version", "print the version, build, CPU features and libraries", dj_cmd_version},
};

const dj_command *dj_cli_commands(int *count) {
    *count = (int)(sizeof dj_commands / sizeof dj_commands[0]);
    return dj_commands;
}

const dj_command *dj_cli_find(const char *name) {
    int n;
    const dj_command *cmds = dj_cli_commands(&n);
    for (int i = 0; i < n; i++)
        if (strcmp(cmds[i].name, name) == 0)
            return &cmds[i];
    return NULL;
}

static void dj_print_main_help(void) {
    int n;
    const dj_command *cmds = dj_cli_commands(&n);
    printf("dojo — a training system for video neural networks\n\n"
           "usage: dojo [--quiet|--verbose] COMMAND [OPTIONS] [ARGS]\n"
           "       dojo help COMMAND\n\n"
           "commands:\n");
    for (int i = 0; i < n; i++)
        printf("  %-10s %s\n", cmds[i].name, cmds[i].summary);
    printf("  %-10s %s\n", "help", "show the help of a command");
    printf("\nRun 'dojo COMMAND --help' for the options of a command.\n");
}

int main(int argc, char **argv) {
    int i = 1;
    /* global options before the sub-command */
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            dj_print_main_help();
            return DJ_EXIT_OK;
        } else if (strcmp(argv[i], "--version") == 0) {
            char *args[] = {(char *)"version", NULL};
            return dj_cmd_version(1, args);
        } else if (strcmp(argv[i], "--quiet") == 0) {
            dj_log_set_level(DJ_LOG_WARN);
        } else if (strcmp(argv[i], "--verbose") == 0) {
            dj_log_set_level(DJ_LOG_DEBUG);
        } else {
            return dj_cli_usage_error(NULL, "unknown option '%s' before the command", argv[i]);
        }
    }
    if (i >= argc) {
        dj_print_main_help();
        return DJ_EXIT_USAGE;
    }
    const char *name = argv[i];
    if (strcmp(name, "help") == 0) {
        if (i + 1 >= argc) {
            dj_print_main_help();
            return DJ_EXIT_OK;
        }
        const dj_command *c = dj_cli_find(argv[i + 1]);
        if (!c)
            return dj_cli_usage_error(NULL, "unknown command '%s'", argv[i + 1]);
        char *args[] = {argv[i + 1], (char *)"--help", NULL};
        return c->run(2, args);
    }
    const dj_command *c = dj_cli_find(name);
    if (!c)
        return dj_cli_usage_error(NULL, "unknown command '%s'", name);
    return c->run(argc - i, argv + i);
}
