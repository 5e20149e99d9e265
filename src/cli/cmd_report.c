/* cmd_report.c — `dojo report RUNDIR [--out FILE.html]`: writes a run's HTML
 * report (plots, confusion matrix, summary, configuration) with dojo/metrics.h. */
#include <stdio.h>

#include "cli.h"
#include "dojo/log.h"
#include "dojo/metrics.h"

static const char *dj_report_out;

static const dj_option dj_report_options[] = {
    {"out", DJ_OPT_STRING, &dj_report_out, "FILE.html", "where to write the page (default RUNDIR/report.html)", 0, 0},
    {NULL, 0, NULL, NULL, NULL, 0, 0},
};

static const dj_cli_spec dj_report_spec = {
    "report", "RUNDIR [--out FILE.html]",
    "Writes one self-contained HTML page about a training run from the files in\n"
    "RUNDIR: line plots of train loss, validation top-1/top-5 accuracy, learning\n"
    "rate, throughput (clips/s) and data-wait share against step\n"
    "(metrics.jsonl), a heat map of the last validation confusion matrix, the\n"
    "summary (summary.json) and the configuration (config.json). The page has no\n"
    "scripts and loads nothing from the network.",
    dj_report_options, 1, 1,
};

int dj_cmd_report(int argc, char **argv) {
    int np = 0;
    dj_report_out = NULL;
    int rc = dj_cli_parse(&dj_report_spec, argc, argv, &np);
    if (rc >= 0)
        return rc;
    const char *rundir = argv[1];
    if (dj_report_write(rundir, dj_report_out) != DJ_OK)
        return dj_cli_fail();
    if (dj_report_out)
        dj_log_info("wrote %s", dj_report_out);
    else
        dj_log_info("wrote %s/report.html", rundir);
    return DJ_EXIT_OK;
}
