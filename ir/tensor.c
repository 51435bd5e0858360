/* tensor.c — concrete tensors: what the interpreter computes on and tensor files hold.
 *
 * Data is 64-byte aligned so SIMD kernels can use aligned loads on interpreter buffers; a
 * borrowed tensor (constants, caller inputs) is never freed here.
 */
#include <stdlib.h>
#include <string.h>

#include "ir.h"

int64_t ir_tensor_numel(const IrTensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) n *= t->dims[i];
    return n;
}

bool ir_tensor_alloc(IrTensor *t, IrDType dt, int rank, const int64_t *dims)
{
    memset(t, 0, sizeof *t);
    t->dtype = dt;
    t->rank = rank;
    int64_t n = 1;
    for (int i = 0; i < rank; i++) {
        t->dims[i] = dims[i];
        if (dims[i] < 0 || __builtin_mul_overflow(n, dims[i], &n)) return false;
    }
    size_t bytes;
    if (__builtin_mul_overflow((size_t)n, ir_dtype_size(dt), &bytes)) return false;
    size_t alloc = (bytes + 63) & ~(size_t)63;
    t->data = aligned_alloc(64, alloc ? alloc : 64);
    if (!t->data) return false;
    memset(t->data, 0, alloc ? alloc : 64);
    t->nbytes = bytes;
    t->owned = true;
    return true;
}

void ir_tensor_free(IrTensor *t)
{
    if (t->owned) free(t->data);
    t->data = NULL;
    t->owned = false;
}

void ir_tensor_borrow(IrTensor *t, IrDType dt, int rank, const int64_t *dims, const void *data)
{
    memset(t, 0, sizeof *t);
    t->dtype = dt;
    t->rank = rank;
    for (int i = 0; i < rank; i++) t->dims[i] = dims[i];
    t->data = (void *)data;
    t->nbytes = (size_t)ir_tensor_numel(t) * ir_dtype_size(dt);
}

int ir_tensor_format_type(const IrTensor *t, char *buf, size_t size)
{
    size_t n = (size_t)snprintf(buf, size, "%s[", ir_dtype_name(t->dtype));
    for (int i = 0; i < t->rank; i++)
        n += (size_t)snprintf(buf + (n < size ? n : size), n < size ? size - n : 0, "%s%lld", i ? ", " : "",
                              (long long)t->dims[i]);
    n += (size_t)snprintf(buf + (n < size ? n : size), n < size ? size - n : 0, "]");
    return (int)n;
}
