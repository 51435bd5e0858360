/* ops.c — the tables generated from ops.def, attrs.def and dtypes.def, and name lookups.
 *
 * Strings die at the border: the frontend and the text parser turn names into enums here,
 * once; nothing else in bqc compares op names.
 */
#include <string.h>

#include "ir.h"

const IrOpInfo ir_ops[OP__COUNT] = {
#define OP(id, nm, inmin, inmax, outmin, outmax, since_, flags_, infer, exec) \
    [OP_##id] = {.name = nm, .in_min = inmin, .in_max = inmax, .out_min = outmin, .out_max = outmax, \
                 .since = since_, .flags = flags_},
#include "ops.def"
#undef OP
};

#define REQ true
#define OPT false
const IrAttrInfo ir_attrs[] = {
#define ATTR(op_, nm, kind_, field, req, def_) \
    {.op = OP_##op_, .name = nm, .kind = AK_##kind_, .offset = offsetof(IrAttr, field), .required = req, .def = (double)(def_)},
#include "attrs.def"
#undef ATTR
};
#undef REQ
#undef OPT
const size_t ir_nattrs = sizeof ir_attrs / sizeof ir_attrs[0];

IrOp ir_op_from_name(const char *s, size_t n)
{
    for (int i = 0; i < OP__COUNT; i++)
        if (strlen(ir_ops[i].name) == n && memcmp(ir_ops[i].name, s, n) == 0) return (IrOp)i;
    return OP__COUNT;
}

void ir_attr_defaults(IrOp op, IrAttr *a)
{
    memset(a, 0, sizeof *a);
    for (size_t i = 0; i < ir_nattrs; i++) {
        const IrAttrInfo *ai = &ir_attrs[i];
        if (ai->op != op) continue;
        char *p = (char *)a + ai->offset;
        switch (ai->kind) {
        case AK_INT:
        case AK_DTYPE: {
            /* INT64_MAX as a double rounds up to 2^63: map it back explicitly. */
            int64_t v = ai->def >= 9.2e18 ? INT64_MAX : (int64_t)ai->def;
            memcpy(p, &v, sizeof v);
            break;
        }
        case AK_FLOAT: {
            float f = (float)ai->def;
            memcpy(p, &f, sizeof f);
            break;
        }
        case AK_FORMAT: {
            bq_format f = ir_format_fp32();
            memcpy(p, &f, sizeof f);
            break;
        }
        case AK_INTS: case AK_SCALAR: case AK_GRAPH: case AK_IGNORE:
            break;
        }
    }
}

bq_format ir_format_fp32(void) { return (bq_format){.family = BQ_FAM_FP32, .width = 32, .ebits = 0, .block = 1}; }

bool ir_format_eq(const bq_format *a, const bq_format *b)
{
    return a->family == b->family && a->width == b->width && a->ebits == b->ebits && a->block == b->block;
}

bool ir_format_is_fp32(const bq_format *f) { return f->family == BQ_FAM_FP32; }

/* ---- element types ---- */

static const struct { const char *name; size_t size; int onnx; const char *npy; } dtypes[DT__COUNT] = {
    [DT_UNDEF] = {"?", 0, 0, NULL},
#define DT(id, nm, sz, ox, np) [DT_##id] = {nm, sz, ox, np},
#include "dtypes.def"
#undef DT
};

const char *ir_dtype_name(IrDType t) { return t < DT__COUNT ? dtypes[t].name : "?"; }
size_t ir_dtype_size(IrDType t) { return t < DT__COUNT ? dtypes[t].size : 0; }
int ir_dtype_onnx(IrDType t) { return t < DT__COUNT ? dtypes[t].onnx : 0; }
const char *ir_dtype_npy(IrDType t) { return t < DT__COUNT ? dtypes[t].npy : NULL; }

IrDType ir_dtype_from_onnx(int code)
{
    for (int i = 1; i < DT__COUNT; i++)
        if (dtypes[i].onnx == code) return (IrDType)i;
    return DT_UNDEF;
}

IrDType ir_dtype_from_name(const char *s, size_t n)
{
    for (int i = 1; i < DT__COUNT; i++)
        if (strlen(dtypes[i].name) == n && memcmp(dtypes[i].name, s, n) == 0) return (IrDType)i;
    return DT_UNDEF;
}

IrDType ir_dtype_from_npy(const char *d)
{
    if (!d || !*d) return DT_UNDEF;
    /* Byte order: '<' little, '|' not applicable, '=' native (x86-64: little). '>' only for
     * one-byte types, where it means nothing. */
    char order = d[0];
    const char *rest = d + 1;
    if (order != '<' && order != '|' && order != '=' && order != '>') return DT_UNDEF;
    for (int i = 1; i < DT__COUNT; i++) {
        const char *np = dtypes[i].npy;
        if (!np || strcmp(np + 1, rest) != 0) continue;
        if (order == '>' && dtypes[i].size > 1) return DT_UNDEF;
        return (IrDType)i;
    }
    return DT_UNDEF;
}

bool ir_dtype_is_float(IrDType t) { return t == DT_F32 || t == DT_F64 || t == DT_F16 || t == DT_BF16; }

bool ir_dtype_is_int(IrDType t)
{
    switch (t) {
    case DT_U8: case DT_I8: case DT_U16: case DT_I16: case DT_I32: case DT_I64: case DT_U32: case DT_U64:
        return true;
    default:
        return false;
    }
}
