/* bqcrt_ew.h — elementwise semantics, written once: the interpreter compiles these rows into
 * its kernels, the C code generator prints the same expressions into generated code, and
 * generated code includes this header for the helper macros the expressions use.
 *
 * Each row is an op and a C expression over v (unary) or x, y (binary) of element type T;
 * `at` points at the node's attributes (at->act.alpha, at->mod.fmod). Integer arithmetic wraps
 * (computed in uint64_t) and integer division by zero yields 0: ONNX leaves both undefined,
 * and C's versions would be undefined behaviour. f32 rows use the float libm functions, so a
 * row means the same bits wherever it is compiled (with -ffp-contract=off: no fused
 * multiply-adds the row does not spell).
 */
#ifndef BQCRT_EW_H
#define BQCRT_EW_H

#include <math.h>
#include <stdint.h>

/* Python-style float modulus (the sign of the divisor) unless fmod is set. */
static inline double bq_mod_f64(double x, double y, int64_t fmod_)
{
    double r = fmod(x, y);
    if (!fmod_ && r != 0 && ((r < 0) != (y < 0))) r += y;
    return r;
}
#define BQ_SIGNED(T) ((T)-1 < (T)0)
/* Truncating division and remainder without C's undefined cases (y == 0, MIN / -1). */
#define BQ_IDIV(T, x, y) ((y) == 0 ? (T)0 : BQ_SIGNED(T) && (y) == (T)-1 ? (T)(0 - (uint64_t)(x)) : (T)((x) / (y)))
#define BQ_IREM(T, x, y) ((y) == 0 || (BQ_SIGNED(T) && (y) == (T)-1) ? (T)0 : (T)((x) % (y)))
#define BQ_IMOD(T, x, y, fm) \
    (fm || BQ_IREM(T, x, y) == 0 || ((BQ_IREM(T, x, y) < 0) == ((y) < 0)) ? BQ_IREM(T, x, y) : (T)(BQ_IREM(T, x, y) + (y)))
#define BQ_WRAP(T, x, op, y) ((T)((uint64_t)(x) op (uint64_t)(y)))

/* The attributes elementwise rows read (a subset of the compiler's IrAttr, same spelling). */
typedef struct bq_ew_attr {
    struct { float alpha, beta; } act;
    struct { int64_t fmod; } mod;
} bq_ew_attr;


/*        op           f32 expression of v                          f64 expression of v */
#define BQ_EW_UNARY_FLOAT(X)                                                                                    \
    X(ABS,          fabsf(v),                                     fabs(v))                               \
    X(NEG,          -v,                                           -v)                                    \
    X(EXP,          expf(v),                                      exp(v))                                \
    X(LOG,          logf(v),                                      log(v))                                \
    X(SQRT,         sqrtf(v),                                     sqrt(v))                               \
    X(RECIPROCAL,   1.0f / v,                                     1.0 / v)                               \
    X(FLOOR,        floorf(v),                                    floor(v))                              \
    X(CEIL,         ceilf(v),                                     ceil(v))                               \
    X(ROUND,        nearbyintf(v),                                nearbyint(v))                          \
    X(RELU,         v < 0 ? 0.0f : v,                             v < 0 ? 0.0 : v)                       \
    X(SIGMOID,      1.0f / (1.0f + expf(-v)),                     1.0 / (1.0 + exp(-v)))                 \
    X(TANH,         tanhf(v),                                     tanh(v))                               \
    X(ERF,          erff(v),                                      erf(v))                                \
    X(SIN,          sinf(v),                                      sin(v))                                \
    X(COS,          cosf(v),                                      cos(v))                                \
    X(SIGN,         v > 0 ? 1.0f : v < 0 ? -1.0f : v,             v > 0 ? 1.0 : v < 0 ? -1.0 : v)        \
    X(SOFTPLUS,     logf(expf(v) + 1.0f),                         log(exp(v) + 1.0))                     \
    X(LEAKY_RELU,   v < 0 ? at->act.alpha * v : v,                v < 0 ? at->act.alpha * v : v)         \
    X(ELU,          v < 0 ? at->act.alpha * (expf(v) - 1.0f) : v, v < 0 ? at->act.alpha * (exp(v) - 1.0) : v)

/*        op           expression of v (type T)   — every integer type */
#define BQ_EW_UNARY_INT(X)                                                                                      \
    X(ABS,          v < 0 ? (T)(0 - (uint64_t)v) : v)                                                    \
    X(NEG,          (T)(0 - (uint64_t)v))                                                                \
    X(SIGN,         (T)(v > 0 ? 1 : v < 0 ? -1 : 0))                                                     \
    X(RELU,         v < 0 ? (T)0 : v)


/*        op              f32/f64 expression of x, y (type T)                   */
#define BQ_EW_BINARY_FLOAT(X)                                                         \
    X(ADD,             x + y)                                                   \
    X(SUB,             x - y)                                                   \
    X(MUL,             x * y)                                                   \
    X(DIV,             x / y)                                                   \
    X(MOD,             (T)bq_mod_f64(x, y, at->mod.fmod))                          \
    X(MAX,             x > y || isnan(x) ? x : y)                               \
    X(MIN,             x < y || isnan(x) ? x : y)                               \
    X(SUM,             x + y)                                                   \
    X(MEAN,            x + y)
/*        op              integer expression of x, y (type T)                   */
#define BQ_EW_BINARY_INT(X)                                                           \
    X(ADD,             BQ_WRAP(T, x, +, y))                                        \
    X(SUB,             BQ_WRAP(T, x, -, y))                                        \
    X(MUL,             BQ_WRAP(T, x, *, y))                                        \
    X(DIV,             BQ_IDIV(T, x, y))                                           \
    X(MOD,             BQ_IMOD(T, x, y, at->mod.fmod))                             \
    X(MAX,             x > y ? x : y)                                           \
    X(MIN,             x < y ? x : y)                                           \
    X(SUM,             BQ_WRAP(T, x, +, y))
/*        op              comparison of x, y: floats, integers (bool for EQUAL)  */
#define BQ_EW_BINARY_CMP(X)                                                           \
    X(EQUAL,           x == y)                                                  \
    X(LESS,            x < y)                                                   \
    X(LESS_EQUAL,      x <= y)                                                  \
    X(GREATER,         x > y)                                                   \
    X(GREATER_EQUAL,   x >= y)
#define BQ_EW_BINARY_BOOL(X)                                                          \
    X(AND,             x && y)                                                  \
    X(OR,              x || y)                                                  \
    X(XOR,             x != y)                                                  \
    X(EQUAL,           x == y)

#endif
