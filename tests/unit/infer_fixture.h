/* infer_fixture.h — graph-building helpers shared by the inference tests (test_infer*.c):
 * types written as text ("f32[batch, seq + past]"), constants, one-line nodes, printed types.
 * Header-only (static inline) because each unit test is one executable built from one file. */
#ifndef BQC_INFER_FIXTURE_H
#define BQC_INFER_FIXTURE_H

#include <stdlib.h>
#include <string.h>

#include "testutil.h"

typedef struct Fx { TestDiag td; IrModel *m; IrGraph *g; } Fx;

static inline int setup(void **state)
{
    Fx *f = calloc(1, sizeof *f);
    test_diag_init(&f->td);
    f->m = ir_model_create(&f->td.d, "model.onnx");
    f->g = ir_graph_create(f->m, NULL, "main");
    f->m->graph = f->g;
    (void)ir_dim_sym(f->m, "batch");   /* fixed symbol order: printing sorts by it */
    (void)ir_dim_sym(f->m, "seq");
    (void)ir_dim_sym(f->m, "past");
    *state = f;
    return 0;
}

static inline int teardown(void **state)
{
    Fx *f = *state;
    ir_model_destroy(f->m);
    test_diag_free(&f->td);
    free(f);
    return 0;
}

/* ---- building graphs ---- */

/* "batch*seq + 2": sums of products of integers and symbols. */
static inline IrDim parse_dim(IrModel *m, const char *s, size_t n)
{
    IrDim sum = 0, prod = 1;
    size_t i = 0;
    while (i <= n) {
        while (i < n && s[i] == ' ') i++;
        size_t j = i;
        while (j < n && s[j] != '+' && s[j] != '*') j++;
        size_t e = j;
        while (e > i && s[e - 1] == ' ') e--;
        char tok[32];
        snprintf(tok, sizeof tok, "%.*s", (int)(e - i), s + i);
        IrDim d = tok[0] >= '0' && tok[0] <= '9' ? strtoll(tok, NULL, 10) : ir_dim_sym(m, tok);
        prod = ir_dim_mul(m, prod, d);
        if (j >= n || s[j] == '+') {
            sum = ir_dim_add(m, sum, prod);
            prod = 1;
        }
        i = j + 1;
    }
    return sum;
}

/* "f32[batch, seq, 768]" */
static inline IrType T(Fx *f, const char *spec)
{
    const char *lb = strchr(spec, '[');
    IrType t = {.dtype = ir_dtype_from_name(spec, (size_t)(lb - spec)), .rank = 0};
    assert_int_not_equal(t.dtype, DT_UNDEF);
    const char *p = lb + 1;
    if (*p == '*') return (IrType){.dtype = t.dtype, .rank = -1};
    while (*p != ']') {
        size_t n = strcspn(p, ",]");
        t.dims[t.rank++] = parse_dim(f->m, p, n);
        p += n;
        if (*p == ',') p++;
    }
    return t;
}

static inline IrId in(Fx *f, const char *name, const char *spec)
{
    IrType t = T(f, spec);
    return ir_input_add(f->g, name, &t);
}

static inline IrId vec_n(Fx *f, const int64_t *v, int n)
{
    IrType t = {.dtype = DT_I64, .rank = 1, .dims = {n}};
    return ir_const_add(f->g, ir_unique_name(f->g, "c"), &t, arena_memdup(f->m->arena, v, (size_t)n * 8), (uint64_t)n * 8);
}
#define VEC(f, ...) vec_n(f, (const int64_t[]){__VA_ARGS__}, (int)(sizeof((int64_t[]){__VA_ARGS__}) / 8))
#define SCAL(f, v) ir_const_scalar_i64((f)->g, "s", (v))

static inline IrId fconst(Fx *f, const char *spec, const float *v)
{
    IrType t = T(f, spec);
    size_t nb = (size_t)ir_type_numel(&t) * 4;
    return ir_const_add(f->g, ir_unique_name(f->g, "fc"), &t, arena_memdup(f->m->arena, v, nb ? nb : 1), nb);
}

static inline IrId node_n(Fx *f, IrOp op, const char *name, const IrId *ins, uint32_t nin, uint32_t nout)
{
    return ir_node_add(f->g, op, name, ins, nin, nout, NULL);
}
#define INS(...) (const IrId[]){__VA_ARGS__}, (uint32_t)(sizeof((IrId[]){__VA_ARGS__}) / sizeof(IrId))
/* A one-result node; returns its result value. */
static inline IrId op1(Fx *f, IrOp op, const IrId *ins, uint32_t nin)
{
    return ir_node(f->g, node_n(f, op, NULL, ins, nin, 1))->out[0];
}
#define OP1(f, op, ...) op1(f, op, INS(__VA_ARGS__))
#define LAST(f) ir_node((f)->g, (f)->g->nnodes - 1)
#define RES(f, node, k) ir_node((f)->g, node)->out[k]

static inline const char *ty(Fx *f, IrId v)
{
    static char buf[4][256];
    static int k;
    char *b = buf[k++ & 3];
    ir_type_format(f->m, &ir_val(f->g, v)->type, b, sizeof buf[0]);
    return b;
}

static inline void infer_ok(Fx *f)
{
    bool ok = ir_infer_graph(f->g, NULL);
    if (!ok) fprintf(stderr, "%s", f->td.buf.text ? f->td.buf.text : "");
    assert_true(ok);
    assert_int_equal(f->td.d.nerrors, 0);
}

/* Only this run's messages count: earlier ones are dropped first. */
static inline void infer_fails(Fx *f, const char *msg)
{
    diag_buffer_free(&f->td.buf);
    f->td.d.nerrors = 0;
    assert_false(ir_infer_graph(f->g, NULL));
    assert_diag_contains(&f->td, msg);
}

static inline bool is_unknown(Fx *f, IrDim d)
{
    IrDimPoly p;
    return !IR_DIM_IS_CONST(d) && ir_dim_poly(f->m, d, &p) && p.opaque;
}

#endif
