/* weights.c — the weights file generated code maps: header, open (mmap + checks), close.
 *
 * The compiler lays the tensors out (64-byte aligned offsets, baked into the generated code)
 * and writes the file; the generated code maps it read-only and uses the tensors in place, so
 * a model's weights are in memory once, shared between processes through the page cache. The
 * header is the contract between the two: the generated code was compiled for one layout
 * (its hash) and one file size, and a file that is not exactly that is refused before any
 * offset is trusted. The header is serialised byte by byte, little-endian, and one function
 * writes it so the compiler and the runtime cannot disagree about its format.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bqcrt_int.h"

static const char weights_magic[8] = {'B', 'Q', 'C', 'W', 'G', 'T', '0', '1'};

enum {   /* header field offsets */
    OFF_MAGIC = 0,
    OFF_TOTAL = 8,
    OFF_HASH = 16,
    OFF_HEADER_BYTES = 24,
    OFF_RESERVED = 28,
};

static void put_le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

bq_status bq_weights_write_header(unsigned char out[64], uint64_t total_bytes, uint64_t layout_hash)
{
    if (!out || total_bytes < BQ_WEIGHTS_HEADER_BYTES) return BQ_ERR_ARG;
    memset(out, 0, BQ_WEIGHTS_HEADER_BYTES);
    memcpy(out + OFF_MAGIC, weights_magic, sizeof weights_magic);
    put_le(out + OFF_TOTAL, total_bytes, 8);
    put_le(out + OFF_HASH, layout_hash, 8);
    put_le(out + OFF_HEADER_BYTES, BQ_WEIGHTS_HEADER_BYTES, 4);
    return BQ_OK;
}

static bq_status check_header(const unsigned char *h, uint64_t layout_hash, uint64_t total_bytes)
{
    if (memcmp(h + OFF_MAGIC, weights_magic, sizeof weights_magic) != 0) return BQ_ERR_FORMAT;
    if (get_le(h + OFF_HEADER_BYTES, 4) != BQ_WEIGHTS_HEADER_BYTES) return BQ_ERR_FORMAT;
    if (get_le(h + OFF_TOTAL, 8) != total_bytes) return BQ_ERR_FORMAT;
    if (get_le(h + OFF_HASH, 8) != layout_hash) return BQ_ERR_FORMAT;
    return BQ_OK;
}

bq_status bq_weights_open(const char *path, uint64_t layout_hash, uint64_t total_bytes, bq_weights *w)
{
    if (!w) return BQ_ERR_ARG;
    *w = (bq_weights){0};
    if (!path) return BQ_ERR_ARG;
    int fd;
    do fd = open(path, O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) return BQ_ERR_IO;
    struct stat st;
    bq_status s = BQ_OK;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) s = BQ_ERR_IO;
    else if (st.st_size < BQ_WEIGHTS_HEADER_BYTES || (uint64_t)st.st_size != total_bytes ||
             (uint64_t)st.st_size > SIZE_MAX)
        s = BQ_ERR_FORMAT;
    void *base = MAP_FAILED;
    if (s == BQ_OK) {
        base = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (base == MAP_FAILED) s = BQ_ERR_IO;
    }
    close(fd);   /* the mapping keeps the file */
    if (s != BQ_OK) return s;
    s = check_header(base, layout_hash, total_bytes);
    if (s != BQ_OK) {
        munmap(base, (size_t)st.st_size);
        return s;
    }
    (void)madvise(base, (size_t)st.st_size, MADV_WILLNEED);   /* a hint: failure is harmless */
    *w = (bq_weights){base, (size_t)st.st_size};
    return BQ_OK;
}

void bq_weights_close(bq_weights *w)
{
    if (!w) return;
    if (w->base) munmap((void *)w->base, w->size);
    *w = (bq_weights){0};
}
