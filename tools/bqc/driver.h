/* driver.h — shared pieces of the bqc command line (main.c, run.c, load.c). */
#ifndef BQC_DRIVER_H
#define BQC_DRIVER_H

#include <stdarg.h>
#include <stdbool.h>

#include "frontend.h"
#include "ir.h"
#include "pass.h"

#define DRIVER_MAX_INPUTS 256

typedef struct DriverOptions {
    const char *model;             /* the positional MODEL argument */
    const char *output;            /* -o: a file (compile) or a directory (run) */
    const char *emit;              /* --emit (compile) */
    PassRunOptions passes;         /* --passes, --dump-after, --verify-each, --stats */
    bool list_passes;
    bool inline_weights;           /* --inline-weights: IR text without file(...) constants */
    /* run */
    const char *in_names[DRIVER_MAX_INPUTS];  /* -i NAME=FILE: points at NAME (not terminated) */
    int in_name_len[DRIVER_MAX_INPUTS];
    const char *in_files[DRIVER_MAX_INPUTS];
    int nin;
    const char *inputs_dir;        /* --inputs DIR */
    const char *output_format;     /* npy | pb */
    int threads;
    bool trace;
} DriverOptions;

int driver_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *driver_flag_value(int argc, char **argv, int *i, const char *flag, bool *missing);
/* Parses flags from argv[first..]; returns -1 to continue, or an exit status (usage error,
 * --help). `run` selects the flags of the run command. */
int driver_parse_common(int argc, char **argv, int first, DriverOptions *o, bool run);
/* Loads MODEL (.onnx or .ir), infers types, verifies, runs the pass pipeline. */
IrModel *driver_load(Diag *diag, const DriverOptions *o);

int cmd_run(int argc, char **argv);

#endif
