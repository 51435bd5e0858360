/* onnx.c — ONNX models into IR: strings die here.
 *
 * The file is mapped, walked once at the wire level (wire.c) so that the weights stay in the
 * mapping, and the remaining "skeleton" is unpacked by protobuf-c. Import then runs in two
 * sweeps: first every node of every graph is checked against the op table (so a model with
 * five unsupported ops gets five errors, not one and a cascade), then graphs are built in node
 * order: op_type strings become IrOp rows, attributes are written generically through the
 * attrs.def schema (offset, kind, default), initializers and Constant nodes become constants.
 *
 * Scoping: ONNX subgraphs (If branches) read outer values implicitly; the IR makes captures
 * explicit. Each graph being imported has a Scope (a name -> value map and a parent). A name
 * not defined locally is looked up in the parent scope and, if found there, becomes a new input
 * of the local graph — recursively, so a value read by an inner branch is threaded through
 * every graph in between. A node with subgraphs then takes the union of its subgraphs'
 * captures (first-use order) as extra inputs after its ONNX ones, and every subgraph's inputs
 * are put in that order (an unused capture is still an input).
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_int.h"

/* ---- name -> value maps (open addressing; keys are arena strings) ---- */

typedef struct NameMap {
    const char **key;
    IrId *val;
    uint32_t n, cap;
} NameMap;

static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

static IrId map_get(const NameMap *m, const char *k)
{
    if (!m->cap) return IR_NONE;
    for (uint32_t i = name_hash(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->key[i]) return IR_NONE;
        if (strcmp(m->key[i], k) == 0) return m->val[i];
    }
}

static void map_put(NameMap *m, const char *k, IrId v)
{
    if (2 * (m->n + 1) > m->cap) {
        NameMap g = {NULL, NULL, 0, m->cap ? m->cap * 2 : 64};
        g.key = calloc(g.cap, sizeof *g.key);
        g.val = malloc(g.cap * sizeof *g.val);
        if (!g.key || !g.val) unreachable("out of memory");
        for (uint32_t i = 0; i < m->cap; i++)
            if (m->key[i]) map_put(&g, m->key[i], m->val[i]);
        free(m->key);
        free(m->val);
        *m = g;
    }
    uint32_t i = name_hash(k) & (m->cap - 1);
    while (m->key[i] && strcmp(m->key[i], k) != 0) i = (i + 1) & (m->cap - 1);
    if (!m->key[i]) m->n++;
    m->key[i] = k;
    m->val[i] = v;
}

static void map_free(NameMap *m)
{
    free(m->key);
    free(m->val);
}

/* AttributeProto.AttributeType values, named short. */
enum {
    AT_UNDEFINED = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED,
    AT_FLOAT = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT,
    AT_INT = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT,
    AT_STRING = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING,
    AT_TENSOR = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR,
    AT_GRAPH = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH,
    AT_FLOATS = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS,
    AT_INTS = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS,
};

/* ---- loader state ---- */

typedef struct Loader {
    IrModel *m;
    Diag *d;
    OnnxSkeleton sk;           /* raw_data payloads of the main graph's initializers */
    uint32_t nbranch;          /* numbers subgraph names: then_0, else_0, then_1, ... */
} Loader;

typedef struct Scope {
    struct Scope *parent;      /* enclosing graph's scope; NULL for the main graph */
    IrGraph *g;
    const Onnx__GraphProto *gp;
    NameMap names;             /* every value of g by name */
} Scope;

static const char *str(const char *s) { return s ? s : ""; }

static const char *node_where(const Loader *L, const Onnx__NodeProto *np, size_t idx, char *buf, size_t size)
{
    if (np->name && *np->name)
        snprintf(buf, size, "%s: node '%s' (%s)", L->m->path, np->name, str(np->op_type));
    else
        snprintf(buf, size, "%s: node #%zu (%s)", L->m->path, idx, str(np->op_type));
    return buf;
}

static const char *attr_type_name(int t)
{
    const ProtobufCEnumDescriptor *e = &onnx__attribute_proto__attribute_type__descriptor;
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(e, t);
    return v ? v->name : "UNDEFINED";
}

/* Old exporters leave AttributeProto.type unset; the field that is present tells. */
static int attr_type(const Onnx__AttributeProto *a)
{
    if (a->has_type) return (int)a->type;
    if (a->has_f) return AT_FLOAT;
    if (a->has_i) return AT_INT;
    if (a->has_s) return AT_STRING;
    if (a->t) return AT_TENSOR;
    if (a->g) return AT_GRAPH;
    if (a->n_floats) return AT_FLOATS;
    if (a->n_ints) return AT_INTS;
    return AT_UNDEFINED;
}

static bool attr_expect(Loader *L, const char *where, const Onnx__AttributeProto *a, int want)
{
    int t = attr_type(a);
    if (t == want) {
        if ((t == AT_TENSOR && !a->t) || (t == AT_GRAPH && !a->g))
            return diag_error(L->d, where, "attribute '%s' has no value", str(a->name));
        return true;
    }
    return diag_error(L->d, where, "attribute '%s' has type %s; expected %s", str(a->name), attr_type_name(t),
                      attr_type_name(want));
}

/* ---- sweep 1: ops ---- */

static bool is_constant(const Onnx__NodeProto *np) { return strcmp(str(np->op_type), "Constant") == 0; }

static bool check_node_op(Loader *L, const Onnx__NodeProto *np, size_t idx)
{
    char where[768];
    node_where(L, np, idx, where, sizeof where);
    const char *dom = str(np->domain), *op = str(np->op_type);
    if (*dom && strcmp(dom, "ai.onnx") != 0)
        return diag_error(L->d, where, "unsupported op '%s' from domain '%s'", op, dom);
    if (is_constant(np)) return true;
    IrOp o = ir_op_from_name(op, strlen(op));
    if (o == OP__COUNT || ir_ops[o].since == 0) return diag_error(L->d, where, "unsupported op '%s'", op);
    if (ir_ops[o].since > L->m->opset)
        return diag_error(L->d, where, "op '%s' needs opset %u; the model uses opset %lld", op, ir_ops[o].since,
                          (long long)L->m->opset);
    return true;
}

static bool check_ops(Loader *L, const Onnx__GraphProto *gp)
{
    bool ok = true;
    for (size_t i = 0; i < gp->n_node; i++) {
        const Onnx__NodeProto *np = gp->node[i];
        ok &= check_node_op(L, np, i);
        for (size_t k = 0; k < np->n_attribute; k++) {
            const Onnx__AttributeProto *a = np->attribute[k];
            if (a->g) ok &= check_ops(L, a->g);
            for (size_t j = 0; j < a->n_graphs; j++) ok &= check_ops(L, a->graphs[j]);
        }
    }
    return ok;
}

/* ---- values ---- */

/* A value visible in scope s: local, or captured from an enclosing graph (which makes it a new
 * input here, and in every graph in between). */
static IrId scope_lookup(Scope *s, const char *name)
{
    IrId v = map_get(&s->names, name);
    if (v != IR_NONE || !s->parent) return v;
    IrId outer = scope_lookup(s->parent, name);
    if (outer == IR_NONE) return IR_NONE;
    v = ir_input_add(s->g, name, &ir_val(s->parent->g, outer)->type);
    map_put(&s->names, ir_val(s->g, v)->name, v);
    return v;
}

static bool check_new_name(Loader *L, Scope *s, const char *where, const char *name)
{
    if (!*name) return diag_error(L->d, where, "value without a name");
    if (map_get(&s->names, name) != IR_NONE) return diag_error(L->d, where, "value '%s' is defined twice", name);
    return true;
}

/* An undefined name: say whether it is defined later (ONNX requires topological order). */
static bool undefined(Loader *L, Scope *s, const char *where, const char *what, const char *name, size_t from)
{
    const Onnx__GraphProto *gp = s->gp;
    for (size_t i = from; i < gp->n_node; i++)
        for (size_t k = 0; k < gp->node[i]->n_output; k++)
            if (strcmp(str(gp->node[i]->output[k]), name) == 0)
                return diag_error(L->d, where, "%s '%s' is used before node #%zu ('%s') defines it; nodes must be "
                                  "in topological order", what, name, i, str(gp->node[i]->name));
    return diag_error(L->d, where, "%s '%s' is not defined", what, name);
}

static IrId define_const(Loader *L, Scope *s, const char *where, const char *name, const OnnxTensorInfo *info,
                         const OnnxPayload *pl)
{
    if (!check_new_name(L, s, where, name)) return IR_NONE;
    IrType t = {.dtype = info->dtype, .rank = (int8_t)info->rank};
    memcpy(t.dims, info->dims, sizeof info->dims);
    IrId v = ir_const_add(s->g, name, &t, pl->data, info->nbytes);
    IrValue *val = ir_val(s->g, v);
    val->file = pl->file;
    val->file_offset = pl->file_offset;
    map_put(&s->names, val->name, v);
    return v;
}

/* A TensorProto's payload: borrowed from the model file (raw != NULL: its raw_data was kept
 * out of the skeleton), from external data, or copied from the unpacked message. */
static bool tensor_payload(Loader *L, const char *where, const Onnx__TensorProto *t, const OnnxRaw *raw,
                           OnnxTensorInfo *info, OnnxPayload *pl)
{
    memset(pl, 0, sizeof *pl);
    if (!onnx_tensor_info(L->d, where, t, info)) return false;
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return onnx_place_external(L->m, where, t, info, pl);
    if (raw && raw->present) {
        if (!onnx_check_raw(L->d, where, raw->length, info)) return false;
        onnx_place(L->m, 0, raw->offset, info, pl);
        return true;
    }
    if (!onnx_tensor_check(L->d, where, t, info)) return false;   /* before allocating nbytes */
    void *dst = arena_alloc_aligned(L->m->arena, info->nbytes ? (size_t)info->nbytes : 1, 64);
    pl->data = dst;
    return onnx_tensor_copy(L->d, where, t, info, dst);
}

static bool import_initializer(Loader *L, Scope *s, const Onnx__TensorProto *t, const OnnxRaw *raw)
{
    char where[768];
    snprintf(where, sizeof where, "%s: initializer '%s'", L->m->path, str(t->name));
    OnnxTensorInfo info;
    OnnxPayload pl;
    return tensor_payload(L, where, t, raw, &info, &pl) &&
           define_const(L, s, where, str(t->name), &info, &pl) != IR_NONE;
}

/* dim_param names become symbols. Exporters also write expressions there (optimum names the
 * with-past attention mask "past_sequence_length + sequence_length"): those become the
 * polynomial, so the mask length is known to equal past + seq. Anything else is one symbol,
 * sanitised to [A-Za-z_][A-Za-z0-9_]* for the text form. */
static IrDim dim_symbol(Loader *L, const char *param)
{
    size_t n = strlen(param);
    if (!n) return ir_dim_fresh(L->m);
    IrDim d;
    if (ir_dim_parse(L->m, param, n, &d)) return d;
    char *s = arena_alloc(L->m->arena, n + 2), *o = s;
    if (param[0] >= '0' && param[0] <= '9') *o++ = '_';
    for (const char *c = param; *c; c++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_';
        *o++ = ok ? *c : '_';
    }
    return ir_dim_sym(L->m, s);
}

static bool value_type(Loader *L, const char *where, const Onnx__TypeProto *tp, IrType *ty)
{
    static const char *const kinds[] = {
        [ONNX__TYPE_PROTO__VALUE__NOT_SET] = "no type", [ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE] = "a sequence",
        [ONNX__TYPE_PROTO__VALUE_MAP_TYPE] = "a map", [ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE] = "an optional",
        [ONNX__TYPE_PROTO__VALUE_SPARSE_TENSOR_TYPE] = "a sparse tensor"};
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE) {
        int k = tp ? (int)tp->value_case : 0;
        const char *kind = k >= 0 && k < (int)(sizeof kinds / sizeof *kinds) && kinds[k] ? kinds[k] : "not a tensor";
        return diag_error(L->d, where, "unsupported type (%s); only tensors are supported", kind);
    }
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    int code = tt->has_elem_type ? tt->elem_type : 0;
    char nb[32];
    memset(ty, 0, sizeof *ty);
    ty->dtype = ir_dtype_from_onnx(code);
    if (ty->dtype == DT_UNDEF)
        return diag_error(L->d, where, "unsupported element type %s", onnx_dtype_name(code, nb, sizeof nb));
    ty->rank = -1;
    if (!tt->shape) return true;
    if (tt->shape->n_dim > IR_MAX_RANK)
        return diag_error(L->d, where, "rank %zu exceeds the maximum %d", tt->shape->n_dim, IR_MAX_RANK);
    ty->rank = (int8_t)tt->shape->n_dim;
    for (int i = 0; i < ty->rank; i++) {
        const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[i];
        if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && dim->dim_value >= 0)
            ty->dims[i] = dim->dim_value;
        else if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM)
            ty->dims[i] = dim_symbol(L, str(dim->dim_param));
        else
            ty->dims[i] = ir_dim_fresh(L->m);
    }
    return true;
}

static bool import_input(Loader *L, Scope *s, const Onnx__ValueInfoProto *vi)
{
    char where[768];
    const char *name = str(vi->name);
    snprintf(where, sizeof where, "%s: graph input '%s'", L->m->path, name);
    IrId prev = map_get(&s->names, name);
    if (prev != IR_NONE && ir_val(s->g, prev)->kind == IR_VAL_CONST) return true;  /* listed initializer */
    IrType ty;
    if (!check_new_name(L, s, where, name) || !value_type(L, where, vi->type, &ty)) return false;
    IrId v = ir_input_add(s->g, name, &ty);
    map_put(&s->names, ir_val(s->g, v)->name, v);
    return true;
}

/* ---- attributes ---- */

static float half_to_float(uint16_t h)
{
    int e = (h >> 10) & 0x1f, man = h & 0x3ff;
    float f = e == 0    ? ldexpf((float)man, -24)   /* zero, subnormal */
              : e == 31 ? (man ? NAN : INFINITY)
                        : ldexpf((float)(man | 0x400), e - 25);
    return (h & 0x8000) ? -f : f;
}

/* A one-element tensor (ConstantOfShape's value) as an IrScalar. */
static bool scalar_attr(Loader *L, const char *where, const Onnx__AttributeProto *a, IrScalar *out)
{
    char w[900];
    snprintf(w, sizeof w, "%s: attribute '%s'", where, str(a->name));
    OnnxTensorInfo info;
    if (!onnx_tensor_info(L->d, w, a->t, &info)) return false;
    if (info.numel != 1) return diag_error(L->d, w, "must hold one element, has %lld", (long long)info.numel);
    union { uint8_t b[8]; float f; double d; uint16_t h; int64_t i; uint64_t u; } x = {{0}};
    if (!onnx_tensor_copy(L->d, w, a->t, &info, x.b)) return false;
    memset(out, 0, sizeof *out);
    out->dtype = info.dtype;
    switch (info.dtype) {
    case DT_F32: out->f = x.f; break;
    case DT_F64: out->f = x.d; break;
    case DT_F16: out->f = half_to_float(x.h); break;
    case DT_BF16: { uint32_t u = (uint32_t)x.h << 16; float f; memcpy(&f, &u, sizeof f); out->f = f; break; }
    case DT_I8: out->i = (int8_t)x.b[0]; break;
    case DT_I16: out->i = (int16_t)x.h; break;
    case DT_I32: { int32_t v; memcpy(&v, x.b, sizeof v); out->i = v; break; }
    case DT_U32: { uint32_t v; memcpy(&v, x.b, sizeof v); out->i = v; break; }
    case DT_U8: case DT_BOOL: out->i = x.b[0]; break;
    case DT_U16: out->i = x.h; break;
    case DT_I64: case DT_U64: out->i = x.i; break;
    default: unreachable("dtype");
    }
    return true;
}

static bool import_subgraph(Loader *L, Scope *s, const char *where, const Onnx__AttributeProto *a, uint32_t branch,
                            uint32_t *index);

static bool import_attr(Loader *L, Scope *s, const char *where, const IrAttrInfo *ai, const Onnx__AttributeProto *a,
                        IrAttr *attr, uint32_t branch)
{
    static const int onnx_type[] = {
        [AK_INT] = AT_INT,       [AK_FLOAT] = AT_FLOAT, [AK_INTS] = AT_INTS,   [AK_DTYPE] = AT_INT,
        [AK_SCALAR] = AT_TENSOR, [AK_GRAPH] = AT_GRAPH, [AK_IGNORE] = -1, [AK_FORMAT] = -1};
    char *p = (char *)attr + ai->offset;
    if (onnx_type[ai->kind] >= 0 && !attr_expect(L, where, a, onnx_type[ai->kind])) return false;
    switch (ai->kind) {
    case AK_INT: memcpy(p, &a->i, sizeof a->i); return true;
    case AK_FLOAT: memcpy(p, &a->f, sizeof a->f); return true;
    case AK_INTS: {
        if (a->n_ints > IR_MAX_RANK)
            return diag_error(L->d, where, "attribute '%s' has %zu values; at most %d are supported", ai->name,
                              a->n_ints, IR_MAX_RANK);
        IrInts v = {.n = (uint8_t)a->n_ints};
        if (a->n_ints) memcpy(v.v, a->ints, a->n_ints * sizeof *a->ints);
        memcpy(p, &v, sizeof v);
        return true;
    }
    case AK_DTYPE: {
        IrDType dt = a->i >= 0 && a->i <= 64 ? ir_dtype_from_onnx((int)a->i) : DT_UNDEF;
        char nb[32];
        if (dt == DT_UNDEF)
            return diag_error(L->d, where, "attribute '%s': unsupported element type %s", ai->name,
                              onnx_dtype_name(a->i >= 0 && a->i <= 64 ? (int)a->i : -1, nb, sizeof nb));
        int64_t v = dt;
        memcpy(p, &v, sizeof v);
        return true;
    }
    case AK_SCALAR: {
        IrScalar v;
        if (!scalar_attr(L, where, a, &v)) return false;
        memcpy(p, &v, sizeof v);
        return true;
    }
    case AK_GRAPH: {
        uint32_t idx = 0;
        if (!import_subgraph(L, s, where, a, branch, &idx)) return false;
        memcpy(p, &idx, sizeof idx);
        return true;
    }
    case AK_IGNORE: return true;
    case AK_FORMAT:   /* only internal ops have formats, and those are never imported */
        return diag_error(L->d, where, "attribute '%s' is internal to bqc", ai->name);
    }
    unreachable("attribute kind");
}

static const IrAttrInfo *attr_row(IrOp op, const char *name)
{
    for (size_t i = 0; i < ir_nattrs; i++)
        if (ir_attrs[i].op == op && strcmp(ir_attrs[i].name, name) == 0) return &ir_attrs[i];
    return NULL;
}

static bool import_attrs(Loader *L, Scope *s, const char *where, const Onnx__NodeProto *np, IrOp op, IrAttr *attr)
{
    ir_attr_defaults(op, attr);
    /* The node's subgraphs share one number, taken before any is imported (they may nest). */
    bool graphs = false;
    for (size_t k = 0; k < np->n_attribute; k++) {
        const IrAttrInfo *ai = attr_row(op, str(np->attribute[k]->name));
        graphs |= ai && ai->kind == AK_GRAPH;
    }
    uint32_t branch = graphs ? L->nbranch++ : 0;
    bool ok = true;
    for (size_t k = 0; k < np->n_attribute; k++) {
        const Onnx__AttributeProto *a = np->attribute[k];
        const IrAttrInfo *ai = attr_row(op, str(a->name));
        if (!ai) ok = diag_error(L->d, where, "unknown attribute '%s'", str(a->name));
        else ok = ok && import_attr(L, s, where, ai, a, attr, branch);
    }
    for (size_t i = 0; i < ir_nattrs && ok; i++) {
        if (ir_attrs[i].op != op || !ir_attrs[i].required) continue;
        bool seen = false;
        for (size_t k = 0; k < np->n_attribute && !seen; k++)
            seen = strcmp(str(np->attribute[k]->name), ir_attrs[i].name) == 0;
        if (!seen) ok = diag_error(L->d, where, "missing required attribute '%s'", ir_attrs[i].name);
    }
    return ok;
}

/* ---- graphs and nodes ---- */

static bool import_graph(Loader *L, Scope *s);

static bool import_subgraph(Loader *L, Scope *s, const char *where, const Onnx__AttributeProto *a, uint32_t branch,
                            uint32_t *index)
{
    if (a->g->n_input)
        return diag_error(L->d, where, "subgraph '%s' declares %zu inputs; only subgraphs without inputs (If "
                          "branches) are supported", str(a->name), a->g->n_input);
    /* "then_branch" -> "then_3": graph names are unique in the model and short in the text. */
    const char *an = str(a->name);
    size_t n = strlen(an);
    if (n > 7 && strcmp(an + n - 7, "_branch") == 0) n -= 7;
    IrGraph *sub = ir_graph_create(L->m, s->g, arena_printf(L->m->arena, "%.*s_%u", (int)n, an, branch));
    *index = ir_graph_add_sub(s->g, sub);
    Scope inner = {.parent = s, .g = sub, .gp = a->g};
    bool ok = import_graph(L, &inner);
    map_free(&inner.names);
    return ok;
}

static int input_named(const IrGraph *g, const char *name)
{
    for (uint32_t i = 0; i < g->ninputs; i++)
        if (strcmp(g->vals[g->inputs[i]].name, name) == 0) return (int)i;
    return -1;
}

/* Puts g's inputs (all captures) in the order of names, adding the ones g does not read. */
static void order_inputs(Scope *s, IrGraph *g, const char **names, uint32_t n)
{
    for (uint32_t j = 0; j < n; j++)
        if (input_named(g, names[j]) < 0) ir_input_add(g, names[j], &ir_val(s->g, map_get(&s->names, names[j]))->type);
    assert(g->ninputs == n);
    if (!n) return;
    IrId *order = malloc(n * sizeof *order);
    if (!order) unreachable("out of memory");
    for (uint32_t j = 0; j < n; j++) order[j] = g->inputs[input_named(g, names[j])];
    memcpy(g->inputs, order, n * sizeof *order);
    free(order);
}

/* The union of the subgraphs' captures in first-use order, and every subgraph's inputs in that
 * order. Returns the count; *names is malloc'd. */
static uint32_t union_captures(Scope *s, IrGraph **subs, uint32_t nsubs, const char ***names)
{
    uint32_t n = 0, cap = 0;
    *names = NULL;
    for (uint32_t k = 0; k < nsubs; k++)
        for (uint32_t i = 0; i < subs[k]->ninputs; i++) {
            const char *nm = ir_val(subs[k], subs[k]->inputs[i])->name;
            bool have = false;
            for (uint32_t j = 0; j < n && !have; j++) have = strcmp((*names)[j], nm) == 0;
            if (have) continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 8;
                *names = realloc(*names, cap * sizeof **names);
                if (!*names) unreachable("out of memory");
            }
            (*names)[n++] = nm;
        }
    for (uint32_t k = 0; k < nsubs; k++) order_inputs(s, subs[k], *names, n);
    return n;
}

static bool check_arity(Loader *L, const char *where, const char *what, size_t n, unsigned lo, unsigned hi)
{
    if (n >= lo && n <= hi) return true;
    if (hi == VAR) return diag_error(L->d, where, "expects at least %u %s, got %zu", lo, what, n);
    if (lo == hi) return diag_error(L->d, where, "expects %u %s, got %zu", lo, what, n);
    return diag_error(L->d, where, "expects %u to %u %s, got %zu", lo, hi, what, n);
}

static bool import_constant(Loader *L, Scope *s, const char *where, const Onnx__NodeProto *np)
{
    if (np->n_input != 0 || np->n_output != 1 || np->n_attribute != 1)
        return diag_error(L->d, where, "a Constant has no inputs, one output and one value attribute");
    const Onnx__AttributeProto *a = np->attribute[0];
    const char *an = str(a->name);
    OnnxTensorInfo info = {.numel = 1};
    OnnxPayload pl = {0};
    size_t n = 1;
    const void *src = NULL;
    if (strcmp(an, "value") == 0) {
        if (!attr_expect(L, where, a, AT_TENSOR) ||
            !tensor_payload(L, where, a->t, NULL, &info, &pl))
            return false;
    } else if (strcmp(an, "value_float") == 0 || strcmp(an, "value_floats") == 0) {
        bool one = an[11] == 0;
        if (!attr_expect(L, where, a, one ? AT_FLOAT : AT_FLOATS))
            return false;
        info.dtype = DT_F32;
        n = one ? 1 : a->n_floats;
        src = one ? (const void *)&a->f : (const void *)a->floats;
        info.rank = one ? 0 : 1;
    } else if (strcmp(an, "value_int") == 0 || strcmp(an, "value_ints") == 0) {
        bool one = an[9] == 0;
        if (!attr_expect(L, where, a, one ? AT_INT : AT_INTS))
            return false;
        info.dtype = DT_I64;
        n = one ? 1 : a->n_ints;
        src = one ? (const void *)&a->i : (const void *)a->ints;
        info.rank = one ? 0 : 1;
    } else if (strcmp(an, "sparse_value") == 0 || strncmp(an, "value_string", 12) == 0) {
        return diag_error(L->d, where, "unsupported Constant attribute '%s'", an);
    } else {
        return diag_error(L->d, where, "unknown attribute '%s'", an);
    }
    if (src) {
        info.dims[0] = (int64_t)n;
        info.numel = (int64_t)n;
        info.nbytes = n * ir_dtype_size(info.dtype);
        pl.data = arena_memdup(L->m->arena, src, (size_t)info.nbytes);
    }
    return define_const(L, s, where, str(np->output[0]), &info, &pl) != IR_NONE;
}

/* A growable id array for node operands. */
typedef struct Ids { IrId *v; uint32_t n, cap; } Ids;

static void ids_push(Ids *a, IrId x)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 8;
        a->v = realloc(a->v, a->cap * sizeof *a->v);
        if (!a->v) unreachable("out of memory");
    }
    a->v[a->n++] = x;
}

/* Subgraphs (GRAPH attributes) of a node, in schema order. */
static uint32_t node_subgraphs(const IrGraph *g, IrOp op, const IrAttr *attr, IrGraph **subs, uint32_t max)
{
    uint32_t n = 0;
    for (size_t i = 0; i < ir_nattrs; i++)
        if (ir_attrs[i].op == op && ir_attrs[i].kind == AK_GRAPH && n < max) {
            uint32_t idx;
            memcpy(&idx, (const char *)attr + ir_attrs[i].offset, sizeof idx);
            subs[n++] = g->subs[idx];
        }
    return n;
}

static bool node_inputs(Loader *L, Scope *s, const char *where, const Onnx__NodeProto *np, size_t idx, Ids *in)
{
    for (size_t i = 0; i < np->n_input; i++) {
        const char *nm = str(np->input[i]);
        IrId v = *nm ? scope_lookup(s, nm) : IR_NONE;
        if (*nm && v == IR_NONE) return undefined(L, s, where, "input", nm, idx + 1);
        ids_push(in, v);
    }
    return true;
}

static bool node_captures(Loader *L, Scope *s, const char *where, const Onnx__NodeProto *np, IrOp op,
                          const IrAttr *attr, Ids *in)
{
    IrGraph *subs[4];
    uint32_t nsubs = node_subgraphs(s->g, op, attr, subs, 4);
    if (!nsubs) return true;
    if (np->n_input != ir_ops[op].in_min)
        return diag_error(L->d, where, "expects %u inputs, got %zu", ir_ops[op].in_min, np->n_input);
    for (uint32_t k = 0; k < nsubs; k++)
        if (subs[k]->noutputs != np->n_output)
            return diag_error(L->d, where, "subgraph '%s' has %u outputs; the node has %zu", subs[k]->name,
                              subs[k]->noutputs, np->n_output);
    const char **names;
    uint32_t n = union_captures(s, subs, nsubs, &names);
    for (uint32_t j = 0; j < n; j++) ids_push(in, map_get(&s->names, names[j]));
    free(names);
    return true;
}

static bool import_node(Loader *L, Scope *s, const Onnx__NodeProto *np, size_t idx)
{
    char where[768];
    node_where(L, np, idx, where, sizeof where);
    if (is_constant(np)) return import_constant(L, s, where, np);
    const char *opname = str(np->op_type);
    IrOp op = ir_op_from_name(opname, strlen(opname));
    assert(op != OP__COUNT);
    const IrOpInfo *oi = &ir_ops[op];
    if (!check_arity(L, where, "inputs", np->n_input, oi->in_min, oi->in_max) ||
        !check_arity(L, where, "outputs", np->n_output, oi->out_min, oi->out_max))
        return false;
    Ids in = {0};
    IrAttr attr;
    bool ok = node_inputs(L, s, where, np, idx, &in) && import_attrs(L, s, where, np, op, &attr) &&
              node_captures(L, s, where, np, op, &attr, &in);
    const char **outs = calloc(np->n_output ? np->n_output : 1, sizeof *outs);
    if (!outs) unreachable("out of memory");
    for (size_t k = 0; ok && k < np->n_output; k++) {
        const char *nm = str(np->output[k]);
        if (!*nm) {   /* an omitted optional output still gets a (unique) name */
            const char *base = np->name && *np->name ? np->name : arena_printf(L->m->arena, "%s_%zu", opname, idx);
            nm = arena_printf(L->m->arena, "%s.out%zu", base, k);
            for (unsigned j = 2; map_get(&s->names, nm) != IR_NONE; j++)
                nm = arena_printf(L->m->arena, "%s.out%zu_%u", base, k, j);
        }
        for (size_t j = 0; j < k && ok; j++)
            if (strcmp(outs[j], nm) == 0) ok = diag_error(L->d, where, "value '%s' is defined twice", nm);
        ok = ok && check_new_name(L, s, where, nm);
        outs[k] = nm;
    }
    if (ok) {
        IrId n = ir_node_add(s->g, op, np->name, in.v, in.n, (uint32_t)np->n_output, outs);
        IrNode *node = ir_node(s->g, n);
        node->attr = attr;
        for (uint32_t k = 0; k < node->nout; k++) map_put(&s->names, ir_val(s->g, node->out[k])->name, node->out[k]);
    }
    free(outs);
    free(in.v);
    return ok;
}

static bool import_graph(Loader *L, Scope *s)
{
    const Onnx__GraphProto *gp = s->gp;
    bool main = s->parent == NULL;
    if (gp->n_sparse_initializer)
        return diag_error(L->d, L->m->path, "sparse initializers are not supported ('%s')",
                          str(gp->sparse_initializer[0]->values ? gp->sparse_initializer[0]->values->name : NULL));
    if (main && L->sk.nraw != gp->n_initializer)
        return diag_error(L->d, L->m->path, "the graph has %zu initializers on the wire but %zu after parsing",
                          L->sk.nraw, gp->n_initializer);
    for (size_t i = 0; i < gp->n_initializer; i++)
        if (!import_initializer(L, s, gp->initializer[i], main ? &L->sk.raw[i] : NULL)) return false;
    for (size_t i = 0; i < gp->n_input; i++)
        if (!import_input(L, s, gp->input[i])) return false;
    for (size_t i = 0; i < gp->n_node; i++)
        if (!import_node(L, s, gp->node[i], i)) return false;
    for (size_t i = 0; i < gp->n_output; i++) {
        const char *nm = str(gp->output[i]->name);
        IrId v = scope_lookup(s, nm);
        if (v == IR_NONE) {
            char where[768];
            snprintf(where, sizeof where, "%s: graph '%s'", L->m->path, s->g->name);
            return undefined(L, s, where, "output", nm, gp->n_node);
        }
        ir_output_add(s->g, v);
    }
    return true;
}

/* ---- the model ---- */

static bool read_opset(Loader *L, const Onnx__ModelProto *mp)
{
    int64_t v = -1;
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const char *dom = str(mp->opset_import[i]->domain);
        if (!*dom || strcmp(dom, "ai.onnx") == 0) v = mp->opset_import[i]->version;
    }
    if (v < 0) return diag_error(L->d, L->m->path, "model declares no opset for the default ONNX domain");
    if (v < ONNX_OPSET_MIN || v > ONNX_OPSET_MAX)
        return diag_error(L->d, L->m->path, "model uses opset %lld; bqc supports opsets %d-%d", (long long)v,
                          ONNX_OPSET_MIN, ONNX_OPSET_MAX);
    L->m->opset = v;
    return true;
}

static void free_model_proto(void *p) { onnx__model_proto__free_unpacked(p, NULL); }

static bool load(Loader *L)
{
    IrModel *m = L->m;
    if (ir_model_map_file(m, m->path, NULL) < 0) return false;
    assert(m->nfiles == 1);
    if (m->files[0].size == 0) return diag_error(L->d, m->path, "file is empty");
    if (!onnx_wire_skeleton(L->d, m->path, m->files[0].base, m->files[0].size, &L->sk)) return false;
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, L->sk.len, L->sk.buf);
    free(L->sk.buf);
    L->sk.buf = NULL;
    if (!mp) return diag_error(L->d, m->path, "not an ONNX model (protobuf parse failed)");
    m->frontend = mp;
    m->frontend_free = free_model_proto;
    if (!read_opset(L, mp)) return false;
    if (mp->producer_name && *mp->producer_name)
        m->producer = arena_printf(m->arena, "%s%s%s", mp->producer_name, mp->producer_version ? " " : "",
                                   str(mp->producer_version));
    if (!mp->graph) return diag_error(L->d, m->path, "model has no graph");
    if (!check_ops(L, mp->graph)) return false;
    m->graph = ir_graph_create(m, NULL, "main");
    Scope s = {.g = m->graph, .gp = mp->graph};
    bool ok = import_graph(L, &s);
    map_free(&s.names);
    return ok;
}

IrModel *onnx_load(Diag *diag, const char *path)
{
    IrModel *m = ir_model_create(diag, path);
    Loader L = {.m = m, .d = diag};
    bool ok = load(&L);
    onnx_skeleton_free(&L.sk);
    if (ok) return m;
    ir_model_destroy(m);
    return NULL;
}
