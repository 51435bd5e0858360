/* driver.h — shared pieces of the bqc command line (main.c, run.c, load.c). */
#ifndef BQC_DRIVER_H
#define BQC_DRIVER_H

#include <stdarg.h>
#include <stdbool.h>

#include "codegen.h"
#include "frontend.h"
#include "ir.h"
#include "pass.h"

#define DRIVER_MAX_INPUTS 256

typedef struct DriverOptions {
    const char *model;             /* the positional MODEL argument */
    const char *output;            /* -o: a file (compile) or a directory (run) */
    const char *emit;              /* --emit (compile): c (default) or ir */
    const char *name;              /* -name: prefix of the generated code */
    const char *exec;              /* run: interp (default) or c */
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
    /* precision plans (both commands; --report and --emit=plan compile only) */
    const char *plan;              /* -plan FILE */
    const char *calib;             /* --calib FILE */
    int calib_windows;             /* --calib-windows N (0: the pass's default) */
    int calib_seq;                 /* --calib-seq N (0: the model's context) */
    int report;                    /* --report: 0 none, 1 table, 2 JSON */
    int64_t report_seq;            /* --report-seq N: activations counted for N tokens */
    bool emit_given;               /* --emit was on the command line */
    PlanReport *report_sink;       /* set by the caller: driver_load lets the passes fill it */
    /* the LLVM backend (--emit=obj|llvm, run --exec=llvm) */
    const char *mcpu, *mattr, *mtriple;   /* -mcpu, -mattr, -mtriple (NULL: the host) */
    int opt;                       /* -O0..-O3 (default 2) */
} DriverOptions;

int driver_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *driver_flag_value(int argc, char **argv, int *i, const char *flag, bool *missing);
/* Parses flags from argv[first..]; returns -1 to continue, or an exit status (usage error,
 * --help). `run` selects the flags of the run command. */
int driver_parse_common(int argc, char **argv, int first, DriverOptions *o, bool run);
/* Loads MODEL (.onnx or .ir), infers types, verifies, runs the pass pipeline. */
IrModel *driver_load(Diag *diag, const DriverOptions *o);

int cmd_run(int argc, char **argv);
int cmd_eval(int argc, char **argv);
/* The same options without the precision plan: the fp32 reference (eval). */
void driver_options_fp32(DriverOptions *o);
int cmd_quant(int argc, char **argv);   /* quant.c */

/* report.c: the --report table (or JSON, `json`) on `out`, after the pipeline. */
bool driver_report(FILE *out, const IrModel *m, const DriverOptions *o, const PlanReport *r, bool json);

/* codegen_cmd.c */
bool driver_mkdir_p(Diag *d, const char *dir);
/* The runtime's include directory and static library (build line, --exec=c). */
void driver_runtime_paths(const char **include_dir, const char **lib);
/* Generates C for m into dir with prefix `name`; prints the files and the build line when
 * `announce`. */
bool driver_emit_c(Diag *d, IrModel *m, const DriverOptions *o, const char *dir, const char *name, bool announce);
/* bqc run --exec=c: generate, compile with the system C compiler and a generated driver,
 * run on `inputs`, read `outputs` (owned tensors). */
bool driver_exec_c(Diag *d, IrModel *m, const DriverOptions *o, const IrTensor *inputs, IrTensor *outputs);
/* The same in steps, to compile once and run many times (bqc eval --exec=c). */
typedef struct ExecC ExecC;
ExecC *driver_exec_c_prepare(Diag *d, IrModel *m, const DriverOptions *o);
bool driver_exec_c_run(Diag *d, ExecC *x, const IrTensor *inputs, IrTensor *outputs);
void driver_exec_c_free(ExecC *x);

/* llvm_cmd.c: --emit=obj|llvm (the object or IR, <name>.h and <name>.weights), and run
 * --exec=llvm (JIT in process). Without LLVM both report that the backend is unavailable. */
bool driver_emit_llvm(Diag *d, IrModel *m, const DriverOptions *o, const char *name);
bool driver_exec_llvm(Diag *d, IrModel *m, const DriverOptions *o, const IrTensor *inputs, IrTensor *outputs);

#endif
