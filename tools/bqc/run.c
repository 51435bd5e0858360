/* run.c — `bqc run`: execute a model with the reference interpreter on tensor files.
 *
 * Inputs come from -i NAME=FILE pairs or a folder (--inputs DIR: DIR/<name>.npy or .pb, or
 * the input_K.pb files of an ONNX test_data_set_N folder); outputs are written as
 * DIR/<output name>.npy (or .pb). --exec=c runs the same model through the generated C code
 * instead (codegen_cmd.c), --exec=llvm through the LLVM backend's JIT (llvm_cmd.c), so every
 * executor can be checked end to end from the shell.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "driver.h"

static bool file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Output names may contain '/' (ONNX names are free-form): keep file names flat. */
static void flat_name(const char *name, char *buf, size_t size)
{
    snprintf(buf, size, "%s", name);
    for (char *p = buf; *p; p++)
        if (*p == '/' || *p == '\\') *p = '_';
}

/* Finds the tensor for graph input k: an -i pair, DIR/<name>.npy|.pb, or DIR/input_K.pb. */
static bool read_input(Diag *d, const DriverOptions *o, const char *name, uint32_t k, IrTensor *t)
{
    for (int i = 0; i < o->nin; i++)
        if ((int)strlen(name) == o->in_name_len[i] && strncmp(o->in_names[i], name, (size_t)o->in_name_len[i]) == 0)
            return tensor_read(d, o->in_files[i], t, NULL);
    if (o->inputs_dir) {
        char flat[1024], path[4096];
        flat_name(name, flat, sizeof flat);
        static const char *const exts[] = {".npy", ".pb"};
        for (size_t e = 0; e < 2; e++) {
            snprintf(path, sizeof path, "%s/%s%s", o->inputs_dir, flat, exts[e]);
            if (file_exists(path)) return tensor_read(d, path, t, NULL);
        }
        snprintf(path, sizeof path, "%s/input_%u.pb", o->inputs_dir, k);
        if (file_exists(path)) return tensor_read(d, path, t, NULL);
        return diag_error(d, NULL, "no value for input '%s': none of %s/%s.npy, %s.pb, input_%u.pb exists",
                          name, o->inputs_dir, flat, flat, k);
    }
    return diag_error(d, NULL, "no value for input '%s' (give -i %s=FILE or --inputs DIR)", name, name);
}

static bool check_input_names(Diag *d, const DriverOptions *o, const IrGraph *g)
{
    for (int i = 0; i < o->nin; i++) {
        bool found = false;
        for (uint32_t k = 0; k < g->ninputs && !found; k++) {
            const char *nm = g->vals[g->inputs[k]].name;
            found = (int)strlen(nm) == o->in_name_len[i] && strncmp(nm, o->in_names[i], (size_t)o->in_name_len[i]) == 0;
        }
        if (!found)
            return diag_error(d, NULL, "-i %.*s: the model has no input named '%.*s'", o->in_name_len[i],
                              o->in_names[i], o->in_name_len[i], o->in_names[i]);
    }
    return true;
}

static bool write_outputs(Diag *d, const DriverOptions *o, const IrGraph *g, IrTensor *outs)
{
    if (!driver_mkdir_p(d, o->output)) return false;
    for (uint32_t k = 0; k < g->noutputs; k++) {
        const char *name = g->vals[g->outputs[k]].name;
        char flat[1024], path[4096], type[256];
        flat_name(name, flat, sizeof flat);
        snprintf(path, sizeof path, "%s/%s.%s", o->output, flat, o->output_format);
        if (!tensor_write(d, path, &outs[k], name)) return false;
        ir_tensor_format_type(&outs[k], type, sizeof type);
        printf("%s: %s -> %s\n", name, type, path);
    }
    return true;
}

int cmd_run(int argc, char **argv)
{
    DriverOptions o;
    int rc = driver_parse_common(argc, argv, 1, &o, true);
    if (rc >= 0) return rc;
    if (!o.model) return driver_usage_error("run: no input model");
    if (!o.output) return driver_usage_error("run: no output directory (-o DIR)");

    Diag diag;
    diag_init(&diag, diag_sink_stderr, NULL);
    IrModel *m = driver_load(&diag, &o);
    if (!m) return 1;
    IrGraph *g = m->graph;
    IrTensor *ins = calloc(g->ninputs + 1, sizeof *ins);
    IrTensor *outs = calloc(g->noutputs + 1, sizeof *outs);
    bool ok = ins && outs && check_input_names(&diag, &o, g);
    for (uint32_t k = 0; ok && k < g->ninputs; k++) ok = read_input(&diag, &o, g->vals[g->inputs[k]].name, k, &ins[k]);
    IrRunOptions ro = {.n_threads = o.threads, .trace = o.trace};
    if (strcmp(o.exec, "c") == 0) ok = ok && driver_exec_c(&diag, m, &o, ins, outs);
    else if (strcmp(o.exec, "llvm") == 0) ok = ok && driver_exec_llvm(&diag, m, &o, ins, outs);
    else ok = ok && ir_run(g, ins, outs, &ro);
    ok = ok && write_outputs(&diag, &o, g, outs);
    for (uint32_t k = 0; ins && k < g->ninputs; k++) ir_tensor_free(&ins[k]);
    for (uint32_t k = 0; outs && k < g->noutputs; k++) ir_tensor_free(&outs[k]);
    free(ins);
    free(outs);
    ir_model_destroy(m);
    return ok ? 0 : 1;
}
