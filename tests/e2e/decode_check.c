/* decode_check.c — the decoder API against the full forward, through generated code.
 *
 * Built by tests/e2e/test_codegen.sh against a model generated with -name model:
 *   decode_check WEIGHTS N K
 * runs one forward over N+K tokens with model_run (batch 1; a with-past graph gets an empty
 * past), then model_prefill of the first N tokens and K model_decode steps, and requires the
 * logits of every new position to be bit-identical to the full forward's row (the kernels'
 * contracts make masked keys contribute exact zeros and matmul rows independent of M). Also
 * checks reset, capacity errors and bad tokens. Prints one line per check; exit 1 on failure.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

static int failures;

static void check(int ok, const char *what)
{
    printf("%s: %s\n", ok ? "ok" : "FAIL", what);
    failures += !ok;
}

/* Full forward over tokens with model_run: logits [T, V] into `out`. */
static bq_status full_forward(model_model *m, const int32_t *tok, int64_t T, float *out)
{
    bq_tensor in[MODEL_NUM_INPUTS], res[MODEL_NUM_OUTPUTS];
    memset(in, 0, sizeof in);
    memset(res, 0, sizeof res);
    int64_t *ids = malloc((size_t)T * sizeof *ids), *mask = malloc((size_t)T * sizeof *mask);
    static float empty[1];
    for (int64_t i = 0; i < T; i++) ids[i] = tok[i], mask[i] = 1;
    in[0] = (bq_tensor){.data = ids, .bytes = (size_t)T * 8, .dtype = 7, .rank = 2, .dims = {1, T}};
    in[1] = (bq_tensor){.data = mask, .bytes = (size_t)T * 8, .dtype = 7, .rank = 2, .dims = {1, T}};
    /* With-past graphs: an empty past [1, H, 0, D]. */
    for (int k = 2; k < MODEL_NUM_INPUTS; k++)
        in[k] = (bq_tensor){.data = empty, .bytes = 0, .dtype = 1, .rank = 4,
                            .dims = {1, MODEL_HEADS, 0, MODEL_HEAD_DIM}};
    bq_status s = model_run(m, in, res);   /* learns the output shapes */
    if (s == BQ_ERR_CAPACITY) {
        for (int k = 0; k < MODEL_NUM_OUTPUTS; k++) {
            size_t n = 4;
            for (int d = 0; d < res[k].rank; d++) n *= (size_t)res[k].dims[d];
            res[k].data = k == 0 ? (void *)out : malloc(n ? n : 1);
            res[k].bytes = n;
        }
        s = model_run(m, in, res);
    }
    for (int k = 1; k < MODEL_NUM_OUTPUTS; k++) free(res[k].data);
    free(ids);
    free(mask);
    return s;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: decode_check WEIGHTS N K\n");
        return 2;
    }
    int64_t N = atoll(argv[2]), K = atoll(argv[3]), T = N + K, V = MODEL_VOCAB;
    int32_t *tok = malloc((size_t)T * sizeof *tok);
    for (int64_t i = 0; i < T; i++) tok[i] = (int32_t)(2 + (i * 37 + 11) % (V - 2));
    model_config cfg = {.max_ctx = T, .max_batch = 1, .n_threads = 2};
    model_model *m;
    bq_status s = model_open(&m, argv[1], &cfg);
    if (s != BQ_OK) {
        printf("FAIL: model_open: %s\n", bq_status_str(s));
        return 1;
    }
    float *full = malloc((size_t)(T * V) * sizeof *full), *step = malloc((size_t)V * sizeof *step);
    check(full_forward(m, tok, T, full) == BQ_OK, "full forward with model_run");
    check(model_prefill(m, tok, N, step) == BQ_OK, "prefill");
    float worst = 0;
    int exact = memcmp(step, full + (N - 1) * V, (size_t)V * sizeof *step) == 0;
    for (int64_t v = 0; v < V; v++) worst = fmaxf(worst, fabsf(step[v] - full[(N - 1) * V + v]));
    for (int64_t i = N; i < T; i++) {
        if (model_decode(m, tok[i], step) != BQ_OK) {
            check(0, "decode step");
            break;
        }
        exact &= memcmp(step, full + i * V, (size_t)V * sizeof *step) == 0;
        for (int64_t v = 0; v < V; v++) worst = fmaxf(worst, fabsf(step[v] - full[i * V + v]));
    }
    printf("prefill %lld + %lld decode steps vs one forward of %lld tokens: max |diff| = %g\n", (long long)N,
           (long long)K, (long long)T, worst);
    check(exact, "every position's logits are bit-identical to the full forward");
    check(model_n_past(m) == T, "the cache holds every token");
    check(model_decode(m, tok[0], step) == BQ_ERR_CAPACITY, "decoding past max_ctx is BQ_ERR_CAPACITY");
    model_reset(m);
    check(model_n_past(m) == 0, "reset empties the cache");
    int32_t bad = (int32_t)V;
    check(model_prefill(m, &bad, 1, step) == BQ_ERR_ARG, "a token outside the vocabulary is BQ_ERR_ARG");
    check(model_prefill(m, tok, T, step) == BQ_OK && memcmp(step, full + (T - 1) * V, (size_t)V * 4) == 0,
          "after reset, one prefill of everything gives the last row again");
    model_close(m);
    check(model_open(&m, "/nonexistent/model.weights", &cfg) == BQ_ERR_IO, "a missing weights file is BQ_ERR_IO");
    free(tok);
    free(full);
    free(step);
    return failures ? 1 : 0;
}
