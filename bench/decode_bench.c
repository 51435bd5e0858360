/* decode_bench.c — prefill and decode speed of a bqc-generated decoder (built by
 * bench/decode_fp32.sh against code generated with -name model).
 *
 *   decode_bench WEIGHTS PROMPT DECODE REPEATS THREADS
 *
 * Each repeat: reset, prefill PROMPT tokens (timed), then DECODE greedy steps (timed per
 * step). Prints the medians as one JSON line, which the script turns into a table.
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "model.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: decode_bench WEIGHTS PROMPT DECODE REPEATS THREADS\n");
        return 2;
    }
    int P = atoi(argv[2]), D = atoi(argv[3]), R = atoi(argv[4]), T = atoi(argv[5]);
    model_config cfg = {.max_ctx = P + D + 1, .max_batch = 1, .n_threads = T};
    model_model *m;
    bq_status s = model_open(&m, argv[1], &cfg);
    if (s != BQ_OK) {
        fprintf(stderr, "decode_bench: %s\n", bq_status_str(s));
        return 1;
    }
    int32_t *tok = malloc((size_t)P * sizeof *tok);
    for (int i = 0; i < P; i++) tok[i] = 2 + (i * 131) % (MODEL_VOCAB - 2);
    float *logits = malloc((size_t)MODEL_VOCAB * sizeof *logits);
    double *pre = malloc((size_t)R * sizeof *pre), *dec = malloc((size_t)(R * D) * sizeof *dec);
    for (int r = 0; r < R; r++) {
        model_reset(m);
        double t0 = now();
        if (model_prefill(m, tok, P, logits) != BQ_OK) return 1;
        pre[r] = now() - t0;
        for (int i = 0; i < D; i++) {
            int32_t next = 0;
            for (int v = 1; v < MODEL_VOCAB; v++)
                if (logits[v] > logits[next]) next = v;
            t0 = now();
            if (model_decode(m, next, logits) != BQ_OK) return 1;
            dec[r * D + i] = now() - t0;
        }
    }
    printf("{\"prefill_ms\": %.3f, \"decode_ms\": %.3f}\n", 1e3 * median(pre, R), 1e3 * median(dec, R * D));
    model_close(m);
    return 0;
}
