/* onnx_int.h — private to frontend/: the protobuf-c ONNX schema and what onnx.c, wire.c and
 * tensorfile.c share.
 *
 * onnx.c turns the unpacked ModelProto into IR; wire.c deals in bytes and file offsets (the
 * protobuf wire walk that keeps weights out of protobuf-c, and placing a tensor's payload:
 * borrowed from a mapped file or copied when misaligned, external data included);
 * tensorfile.c decodes TensorProto headers and typed fields (shared by initializers, Constant
 * nodes and .pb tensor files) and reads and writes tensor files. Only these files include the
 * generated onnx.pb-c.h.
 */
#ifndef BQC_ONNX_INT_H
#define BQC_ONNX_INT_H

#include "onnx.pb-c.h"

#include "frontend.h"

/* ---- tensorfile.c: TensorProto headers and payloads ---- */

typedef struct OnnxTensorInfo {
    IrDType dtype;
    int rank;
    int64_t dims[IR_MAX_RANK];
    int64_t numel;
    uint64_t nbytes;           /* numel * element size */
} OnnxTensorInfo;

/* "FLOAT", "STRING", ... for a TensorProto.DataType code ("code 42" style for unknown ones,
 * written into buf). */
const char *onnx_dtype_name(int code, char *buf, size_t size);
/* Element type and shape of a TensorProto, checked: supported dtype, rank <= IR_MAX_RANK,
 * non-negative dims, no overflow, no segments. Errors are reported at `where` ("model.onnx:
 * initializer 'w'"). */
bool onnx_tensor_info(Diag *d, const char *where, const Onnx__TensorProto *t, OnnxTensorInfo *info);
/* Checks that a raw_data payload of `have` bytes fits the tensor. */
bool onnx_check_raw(Diag *d, const char *where, uint64_t have, const OnnxTensorInfo *info);
/* Checks that the payload (raw_data, or the typed field for the dtype) has numel elements. */
bool onnx_tensor_check(Diag *d, const char *where, const Onnx__TensorProto *t, const OnnxTensorInfo *info);
/* Writes the tensor's info->nbytes bytes (raw_data or the typed field for its dtype, narrowed
 * to the element type) to dst. Not for external data (the caller places that). */
bool onnx_tensor_copy(Diag *d, const char *where, const Onnx__TensorProto *t, const OnnxTensorInfo *info,
                      void *dst);

/* ---- wire.c: protobuf wire format, and where tensor payloads live ---- */

typedef struct OnnxRaw {
    bool present;              /* the initializer had a raw_data field */
    uint64_t offset, length;   /* its payload, in bytes from the start of the model file */
} OnnxRaw;

typedef struct OnnxSkeleton {
    uint8_t *buf;              /* the model with the main graph's initializer raw_data removed */
    size_t len;
    OnnxRaw *raw;              /* one per main-graph initializer, in wire order */
    size_t nraw, capraw;
} OnnxSkeleton;

/* Walks the model file [p, p+n) and builds the skeleton. Reports "file is truncated" /
 * "not an ONNX model" errors at `path`. */
bool onnx_wire_skeleton(Diag *d, const char *path, const uint8_t *p, size_t n, OnnxSkeleton *s);
void onnx_skeleton_free(OnnxSkeleton *s);

/* Where a constant's payload ended up. */
typedef struct OnnxPayload {
    const void *data;
    uint32_t file;             /* 1 + index in m->files, or 0 (arena) */
    uint64_t file_offset;
} OnnxPayload;

/* Payload of info->nbytes bytes at `offset` in mapped file `file` (index): borrowed when its
 * address suits the element type, else copied into the arena and the source pages released. */
void onnx_place(IrModel *m, uint32_t file, uint64_t offset, const OnnxTensorInfo *info, OnnxPayload *out);
/* External data (data_location = EXTERNAL): maps location (relative to the model's directory),
 * checks offset/length, places the payload. */
bool onnx_place_external(IrModel *m, const char *where, const Onnx__TensorProto *t, const OnnxTensorInfo *info,
                         OnnxPayload *out);

#endif
