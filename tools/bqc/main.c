/* main.c — the bqc command line: `bqc MODEL [options]` compiles, `bqc run` interprets.
 *
 * Flags follow compiler conventions (onnx-mlir, LLVM tools): -o, --emit=, --passes=,
 * --dump-after=, --verify-each; both `-plan` and `--plan` spellings work; a bad flag gets a
 * one-line error and the usage line. The driver only parses arguments and calls the library:
 * every step's errors arrive through a Diag printed on stderr.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "driver.h"

#define BQC_VERSION "0.1.0"

static const char usage_line[] =
    "usage: bqc MODEL [-o DIR] [-plan FILE] [options]  |  bqc run MODEL -i NAME=FILE... -o DIR  |  bqc --help";

static void print_help(void)
{
    printf("bqc %s — a compiler for block-quantised transformer graphs\n\n", BQC_VERSION);
    printf("%s\n\n", usage_line);
    printf("Commands:\n"
           "  bqc MODEL [options]          compile MODEL (.onnx or .ir) through the pass pipeline\n"
           "  bqc run MODEL [options]      run MODEL with the reference interpreter\n"
           "  bqc quant -f FORMAT          quantise numbers from stdin, print the values (docs/formats.md)\n"
           "      [--codes] [--stats]      ... with each block's shared field and codes / SQNR and bpw\n"
           "  bqc eval MODEL --text FILE   perplexity (and bits/byte), KL to fp32 and top-1 agreement with\n"
           "      [-plan P] [--ctx N]      fp32 over non-overlapping windows of byte-level text (run options\n"
           "      [--limit W] [--batch B]  apply: --exec=c scores the generated code); --limit: at most W\n"
           "      [--json]                 windows; --batch: windows per run (default 4); --json\n"
           "      [-plan P2 ...]           several plans (-plan again, or --plans a,b,c): one process, one\n"
           "      [--plans a,b,c]          fp32 reference, a line per plan with its bpw and memory density\n"
           "      [--spread] [--progress]  (--report-seq N: for N-token sequences; default the window);\n"
           "      [--report-seq N]         --spread: the --limit windows evenly spaced over the text;\n"
           "                               --progress: a progress line per batch even when not a terminal\n"
           "  bqc bench -f FORMAT -m M     time the quantised matmul kernel for weights in FORMAT (inputs in\n"
           "      -n N -k K [-a FORMAT]    -a, default the same) against fp32 on one shape: GOP/s, weight\n"
           "      [--threads T] [--cold]   GB/s, and with --cold (weights cycled through copies larger than\n"
           "      [--repeats R] [--json]   2x the last-level cache) the fraction of the read bandwidth\n"
           "                               measured in the same run (docs/kernels.md)\n\n"
           "Compile options:\n"
           "  -o PATH                      output directory for C (default .), file for IR (default stdout)\n"
           "  --emit=c|obj|llvm|ir|plan    what to produce: C code + weights (default); an object file or\n"
           "                               LLVM IR (.ll) + header + weights (the LLVM backend; -o a folder,\n"
           "                               or the .o/.ll file); the IR text; or the resolved precision plan\n"
           "  -mtriple T, -mcpu C, -mattr A the LLVM backend's target (default: this host, its CPU and\n"
           "                               features); -O0..-O3 its optimisation level (default 2)\n"
           "  -name NAME                   prefix of the generated code (default: the model file's name)\n"
           "  --inline-weights             print weights' values instead of file(...) references\n"
           "  --passes=P1,P2,...           run these passes instead of the default pipeline\n"
           "                               (--passes= with nothing runs none)\n"
           "  --dump-after=PASS|all        print the IR after a pass to stderr\n"
           "  --verify-each                verify the IR after every pass\n"
           "  --stats                      print each pass's rewrite count\n"
           "  --list-passes                list the registered passes in pipeline order\n"
           "                               ([on demand]: not in the default pipeline)\n"
           "  --report[=json]              after the pipeline, print each matmul operand's format, block,\n"
           "                               bpw, SQNR, variance (and block-size evidence), and the model's\n"
           "                               parameters, average bpw and memory density vs fp32; alone it\n"
           "                               replaces code generation (add -o or --emit to get both)\n"
           "  --report-seq N               tokens the report counts activations for (default 128)\n\n"
           "Precision plans (compile and run; docs/plans.md):\n"
           "  -plan FILE, --plan FILE      number formats per matmul operand (plan.json)\n"
           "  --calib FILE                 text for activation statistics (block \"auto\" of activations),\n"
           "                               byte-level tokens, windows of the model's context\n"
           "  --calib-windows N            at most N windows of calibration text (default 4)\n"
           "  --calib-seq N                tokens per calibration window (default: the model's context)\n\n"
           "Run options (also take --passes, --verify-each):\n"
           "  --exec=interp|c|llvm         run with the reference interpreter (default), or compile the\n"
           "                               generated C with the system compiler and run that, or compile\n"
           "                               with the LLVM backend in process (JIT) and run that\n"
           "  -i NAME=FILE                 an input tensor (.npy or ONNX TensorProto .pb)\n"
           "  --inputs DIR                 inputs from DIR/<name>.npy|.pb or DIR/input_K.pb\n"
           "                               (an ONNX test_data_set_N folder)\n"
           "  -o DIR                       write DIR/<output>.npy (created if missing)\n"
           "  --output-format=npy|pb       file format of the outputs (default npy)\n"
           "  --threads N                  threads for the kernels (default 1)\n"
           "  --trace                      print every node as it runs\n\n"
           "  -h, --help                   this help;  --version  the version\n");
}

/* One-line error plus the usage line, exit status 2 (usage error). */
int driver_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bqc: error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n%s\n", usage_line);
    va_end(ap);
    return 2;
}

/* Matches `arg` against a flag that takes a value: "--emit=ir", "--emit ir", "-o x", "-ox".
 * Returns the value (advancing *i when it is the next argument) or NULL if `arg` is another
 * flag; sets *missing when the flag is there but its value is not. */
const char *driver_flag_value(int argc, char **argv, int *i, const char *flag, bool *missing)
{
    const char *a = argv[*i];
    size_t n = strlen(flag);
    if (strncmp(a, flag, n) != 0) return NULL;
    if (a[n] == '=') return a + n + 1;
    if (a[n] != 0) {
        /* Glued short options ("-ofile") only for single-letter flags. */
        return (n == 2 && flag[0] == '-' && flag[1] != '-') ? a + n : NULL;
    }
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

static int cmd_list_passes(void)
{
    for (size_t i = 0; i < pass_count; i++)
        printf("%-16s %s%s\n", pass_registry[i].name, pass_registry[i].in_default ? "" : "[on demand] ",
               pass_registry[i].desc);
    return 0;
}

/* --emit=plan: the resolved plan (the formats on the nodes after the pipeline) to a file or stdout. */
static bool emit_plan(Diag *d, IrModel *m, const char *path)
{
    FILE *out = stdout;
    if (path && !(out = fopen(path, "w"))) {
        fprintf(stderr, "bqc: error: cannot write '%s': %s\n", path, strerror(errno));
        return false;
    }
    PlanMatmul *mm;
    uint32_t n = plan_matmuls(m->graph, &mm);
    bool ok = plan_write(out, d, m->graph, mm, n, NULL);
    free(mm);
    if (out != stdout) ok = (fclose(out) == 0) && ok;
    else fflush(stdout);
    return ok;
}

/* The compile command: load, infer, run the pipeline, emit. */
static int cmd_compile(int argc, char **argv)
{
    DriverOptions o;
    int rc = driver_parse_common(argc, argv, 1, &o, false);
    if (rc >= 0) return rc;
    if (o.list_passes) return cmd_list_passes();
    if (!o.model) return driver_usage_error("no input model");
    bool llvm = strcmp(o.emit, "obj") == 0 || strcmp(o.emit, "llvm") == 0;
    if (strcmp(o.emit, "ir") != 0 && strcmp(o.emit, "c") != 0 && strcmp(o.emit, "plan") != 0 && !llvm)
        return driver_usage_error("unknown --emit kind '%s' (supported: c, obj, llvm, ir, plan)", o.emit);
    /* --report alone prints the report; with --emit or -o it also produces the output. */
    bool emit = !o.report || o.emit_given || o.output;
    if (o.report && emit && strcmp(o.emit, "c") != 0 && !llvm && !o.output)
        return driver_usage_error("--report and --emit=%s both write to stdout: give -o FILE", o.emit);

    Diag diag;
    diag_init(&diag, diag_sink_stderr, NULL);
    PlanReport report = {0};
    o.report_sink = o.report ? &report : NULL;
    IrModel *m = driver_load(&diag, &o);
    if (!m) {
        plan_report_free(&report);
        return 1;
    }
    bool ok = !o.report || driver_report(stdout, m, &o, &report, o.report == 2);
    plan_report_free(&report);
    if (!ok || !emit) {
        fflush(stdout);
    } else if (strcmp(o.emit, "plan") == 0) {
        ok = emit_plan(&diag, m, o.output);
    } else if (strcmp(o.emit, "c") == 0 || llvm) {
        char name[128];
        if (o.name) snprintf(name, sizeof name, "%s", o.name);
        else cg_default_name(o.model, name, sizeof name);
        if (llvm) ok = driver_emit_llvm(&diag, m, &o, name);
        else ok = driver_emit_c(&diag, m, &o, o.output ? o.output : ".", name, true);
    } else {
        FILE *out = stdout;
        if (o.output && !(out = fopen(o.output, "w"))) {
            fprintf(stderr, "bqc: error: cannot write '%s': %s\n", o.output, strerror(errno));
            ir_model_destroy(m);
            return 1;
        }
        ok = ir_print_model_opt(out, m, o.inline_weights);
        if (out != stdout) ok = (fclose(out) == 0) && ok;
        else fflush(stdout);
    }
    ir_model_destroy(m);
    return ok ? 0 : 1;
}

int cmd_bench(int argc, char **argv);   /* bench.c */

typedef struct Command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *what;
} Command;

static const Command commands[] = {
    {"run", cmd_run, "run a model with the reference interpreter"},
    {"quant", cmd_quant, "quantise numbers from stdin and print the values"},
    {"eval", cmd_eval, "perplexity, KL and top-1 agreement of a (quantised) model on text"},
    {"bench", cmd_bench, "time a quantised matmul kernel against fp32 (bench.c)"},
};

int main(int argc, char **argv)
{
    if (argc < 2) return driver_usage_error("no input model");
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        print_help();
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("bqc %s\n", BQC_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].fn(argc - 1, argv + 1);
    return cmd_compile(argc, argv);
}
