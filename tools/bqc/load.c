/* load.c — option parsing shared by the commands, and loading a model to the point where
 * every command starts: imported (ONNX or IR text), types inferred, verified, passes run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driver.h"

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

int driver_parse_common(int argc, char **argv, int first, DriverOptions *o, bool run)
{
    memset(o, 0, sizeof *o);
    o->emit = "c";
    o->exec = "interp";
    o->output_format = "npy";
    o->threads = 1;
    o->report_seq = 128;
    o->opt = 2;
    o->passes.dump = stderr;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i], *v;
        bool missing = false;
#define VALUE(flag) ((v = driver_flag_value(argc, argv, &i, flag, &missing)) != NULL || missing)
#define NEED(flag) \
    if (missing) return driver_usage_error("option '%s' needs a value", flag)
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            return driver_usage_error("--help goes first: bqc --help");
        } else if (VALUE("-o")) {
            NEED("-o");
            o->output = v;
        } else if (VALUE("--passes")) {
            NEED("--passes");
            o->passes.pipeline = v;
        } else if (VALUE("--dump-after")) {
            NEED("--dump-after");
            o->passes.dump_after = v;
        } else if (strcmp(a, "--verify-each") == 0) {
            o->passes.verify_each = true;
        } else if (strcmp(a, "--stats") == 0) {
            o->passes.stats = true;
        } else if (!run && (VALUE("-name") || VALUE("--name"))) {
            NEED("-name");
            o->name = v;
        } else if (run && VALUE("--exec")) {
            NEED("--exec");
            if (strcmp(v, "interp") != 0 && strcmp(v, "c") != 0 && strcmp(v, "llvm") != 0)
                return driver_usage_error("--exec must be interp, c or llvm, not '%s'", v);
            o->exec = v;
        } else if (VALUE("-mcpu") || VALUE("-mattr") || VALUE("-mtriple")) {
            const char *flag = strncmp(a, "-mcpu", 5) == 0 ? "-mcpu" : strncmp(a, "-mattr", 6) == 0 ? "-mattr" : "-mtriple";
            NEED(flag);
            if (!*v) return driver_usage_error("%s needs a value", flag);
            *(flag[2] == 'c' ? &o->mcpu : flag[2] == 'a' ? &o->mattr : &o->mtriple) = v;
        } else if (VALUE("-O")) {
            NEED("-O");
            if (strlen(v) != 1 || v[0] < '0' || v[0] > '3') return driver_usage_error("-O expects 0, 1, 2 or 3, not '%s'", v);
            o->opt = v[0] - '0';
        } else if (!run && VALUE("--emit")) {
            NEED("--emit");
            o->emit = v;
            o->emit_given = true;
        } else if (!run && strcmp(a, "--inline-weights") == 0) {
            o->inline_weights = true;
        } else if (!run && strcmp(a, "--list-passes") == 0) {
            o->list_passes = true;
        } else if (run && VALUE("-i")) {
            NEED("-i");
            const char *eq = strchr(v, '=');
            if (!eq || eq == v || !eq[1]) return driver_usage_error("-i expects NAME=FILE, got '%s'", v);
            if (o->nin == DRIVER_MAX_INPUTS) return driver_usage_error("too many -i options");
            o->in_names[o->nin] = v;
            o->in_name_len[o->nin] = (int)(eq - v);
            o->in_files[o->nin++] = eq + 1;
        } else if (run && VALUE("--inputs")) {
            NEED("--inputs");
            o->inputs_dir = v;
        } else if (run && VALUE("--output-format")) {
            NEED("--output-format");
            if (strcmp(v, "npy") != 0 && strcmp(v, "pb") != 0)
                return driver_usage_error("--output-format must be npy or pb, not '%s'", v);
            o->output_format = v;
        } else if (run && VALUE("--threads")) {
            NEED("--threads");
            char *end;
            long t = strtol(v, &end, 10);
            if (*end || t < 1 || t > 256) return driver_usage_error("--threads expects 1..256, got '%s'", v);
            o->threads = (int)t;
        } else if (run && strcmp(a, "--trace") == 0) {
            o->trace = true;
        } else if (VALUE("-plan") || VALUE("--plan")) {
            NEED("-plan");
            o->plan = v;
        } else if (VALUE("--calib-windows") || VALUE("--calib-seq")) {
            bool windows = strncmp(a, "--calib-windows", 15) == 0;
            NEED(windows ? "--calib-windows" : "--calib-seq");
            char *end;
            long k = strtol(v, &end, 10);
            if (*end || k < 1 || k > 1000000)
                return driver_usage_error("%s expects a positive number, got '%s'", windows ? "--calib-windows" : "--calib-seq", v);
            *(windows ? &o->calib_windows : &o->calib_seq) = (int)k;
        } else if (VALUE("--calib")) {
            NEED("--calib");
            o->calib = v;
        } else if (!run && (strcmp(a, "--report") == 0 || strncmp(a, "--report=", 9) == 0)) {
            if (a[8] && strcmp(a + 9, "json") != 0 && strcmp(a + 9, "text") != 0)
                return driver_usage_error("--report takes no value or =json, not '%s'", a + 9);
            o->report = a[8] && strcmp(a + 9, "json") == 0 ? 2 : 1;
        } else if (!run && VALUE("--report-seq")) {
            NEED("--report-seq");
            char *end;
            long long k = strtoll(v, &end, 10);
            if (*end || k < 1 || k > 1000000000) return driver_usage_error("--report-seq expects a positive number, got '%s'", v);
            o->report_seq = k;
        } else if (a[0] == '-' && a[1] != 0) {
            return driver_usage_error("unknown option '%s'", a);
        } else if (o->model) {
            return driver_usage_error("more than one model given ('%s' and '%s')", o->model, a);
        } else {
            o->model = a;
        }
#undef VALUE
#undef NEED
    }
    return -1;
}

/* Calibration progress, on a terminal only: one line rewritten in place. */
static void progress(void *ud, const char *what, int64_t done, int64_t total)
{
    (void)ud;
    fprintf(stderr, "\rbqc: %s %lld/%lld%s", what, (long long)done, (long long)total, done == total ? "\n" : "");
    fflush(stderr);
}

IrModel *driver_load(Diag *diag, const DriverOptions *o)
{
    IrModel *m = has_suffix(o->model, ".ir") ? ir_parse_file(diag, o->model) : onnx_load(diag, o->model);
    if (!m) return NULL;
    PassEnv env = {.calib_path = o->calib, .calib_windows = o->calib_windows, .calib_seq = o->calib_seq,
                   .report = o->report_sink, .progress = isatty(2) ? progress : NULL};
    PassRunOptions po = o->passes;
    po.env = &env;
    if (o->plan && !(env.plan = plan_read(diag, m->arena, o->plan))) {
        ir_model_destroy(m);
        return NULL;
    }
    if (!ir_infer_graph(m->graph, NULL) || !ir_verify(m->graph) || !pass_run_pipeline(m, &po)) {
        ir_model_destroy(m);
        return NULL;
    }
    return m;
}

void driver_options_fp32(DriverOptions *o)
{
    /* The reference a plan is measured against: the same model and passes, no formats. */
    o->plan = NULL;
    o->calib = NULL;
    o->report = 0;
    o->report_sink = NULL;
}
