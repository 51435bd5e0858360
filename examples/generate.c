/* generate.c — an application embedding a bqc-generated model: greedy text generation.
 *
 *   bqc model.onnx -o gen -name opt
 *   cc -std=c11 -O2 -march=native -ffp-contract=off -DMODEL=opt -DMODEL_UPPER=OPT \
 *      -I<bqc>/runtime -Igen examples/generate.c gen/opt.c <bqc>/build/libbqcrt.a -lpthread -lm
 *   ./a.out gen/opt.weights -p "The quick brown" -n 32
 *
 * Token ids come from the command line (`-i 2,45,9`), or from text through bqc's byte-level
 * vocabulary (`-p TEXT`: ids 0-3 are <s>, <pad>, </s>, <unk>; byte b is id b + 4 — the
 * vocabulary tools/opt_model.py trains with). It prefills the prompt, decodes N tokens
 * greedily (argmax), prints them, and reports prompt processing and generation speed in
 * llama.cpp's convention: pp = prompt tokens per second, tg = generated tokens per second.
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef MODEL
#define MODEL opt
#define MODEL_UPPER OPT
#endif
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define STR_(x) #x
#define STR(x) STR_(x)
#define API(fn) CAT(MODEL, CAT(_, fn))
#define VOCAB CAT(MODEL_UPPER, _VOCAB)
#include STR(MODEL.h)

#define BYTE_OFFSET 4   /* ids below are specials */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s WEIGHTS (-p TEXT | -i ID,ID,...) [-n TOKENS] [-t THREADS] [-c CTX]\n"
            "  -p TEXT     prompt as text (byte-level vocabulary: byte b = id b+%d)\n"
            "  -i IDS      prompt as comma-separated token ids\n"
            "  -n TOKENS   tokens to generate (default 16)\n"
            "  -t THREADS  kernel threads (default 1)\n"
            "  -c CTX      context the state is sized for (default prompt + TOKENS)\n",
            argv0, BYTE_OFFSET);
    return 2;
}

static void print_token(int32_t id)
{
    if (id >= BYTE_OFFSET && id < BYTE_OFFSET + 256) {
        unsigned char b = (unsigned char)(id - BYTE_OFFSET);
        if (b >= 32 && b < 127) putchar(b);
        else if (b == '\n') putchar('\n');
        else printf("\\x%02x", b);
    } else {
        printf("[%d]", (int)id);
    }
}

static int32_t argmax(const float *v, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return (int32_t)best;
}

int main(int argc, char **argv)
{
    if (argc < 2) return usage(argv[0]);
    const char *weights = argv[1], *text = NULL, *ids = NULL;
    long gen = 16, threads = 1, ctx = 0;
    for (int i = 2; i < argc; i++) {
        if (i + 1 >= argc) return usage(argv[0]);
        if (!strcmp(argv[i], "-p")) text = argv[++i];
        else if (!strcmp(argv[i], "-i")) ids = argv[++i];
        else if (!strcmp(argv[i], "-n")) gen = strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "-t")) threads = strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "-c")) ctx = strtol(argv[++i], NULL, 10);
        else return usage(argv[0]);
    }
    if ((!text && !ids) || gen < 0 || threads < 1) return usage(argv[0]);

    /* The prompt as token ids. */
    size_t cap = text ? strlen(text) + 1 : strlen(ids) / 2 + 2, n = 0;
    int32_t *prompt = malloc(cap * sizeof *prompt);
    if (text) {
        for (const unsigned char *c = (const unsigned char *)text; *c; c++) prompt[n++] = (int32_t)*c + BYTE_OFFSET;
        if (VOCAB < BYTE_OFFSET + 256) {
            fprintf(stderr, "generate: this model's vocabulary (%d) has no byte tokens; use -i\n", (int)VOCAB);
            return 1;
        }
    } else {
        for (char *p = (char *)ids, *q; *p; p = q + (*q == ',')) {
            prompt[n++] = (int32_t)strtol(p, &q, 10);
            if (q == p) return usage(argv[0]);
        }
    }
    if (n == 0) return usage(argv[0]);

    CAT(MODEL, _config) cfg = {.max_ctx = ctx ? ctx : (int64_t)n + gen, .max_batch = 1, .n_threads = (int)threads};
    CAT(MODEL, _model) *m;
    bq_status s = API(open)(&m, weights, &cfg);
    if (s != BQ_OK) {
        fprintf(stderr, "generate: cannot open %s: %s\n", weights, bq_status_str(s));
        return 1;
    }
    float *logits = malloc(VOCAB * sizeof *logits);
    double t0 = now();
    s = API(prefill)(m, prompt, (int64_t)n, logits);
    double t_pp = now() - t0;
    if (s != BQ_OK) {
        fprintf(stderr, "generate: prefill: %s\n", bq_status_str(s));
        return 1;
    }
    for (size_t i = 0; i < n; i++) print_token(prompt[i]);
    printf(" |");
    fflush(stdout);
    double t_tg = 0;
    for (long i = 0; i < gen; i++) {
        int32_t next = argmax(logits, VOCAB);
        print_token(next);
        fflush(stdout);
        if (i + 1 == gen) break;
        t0 = now();
        s = API(decode)(m, next, logits);
        t_tg += now() - t0;
        if (s != BQ_OK) {
            fprintf(stderr, "\ngenerate: decode: %s\n", bq_status_str(s));
            return 1;
        }
    }
    printf("\n");
    fprintf(stderr, "prompt %zu tokens: %.2f ms, pp %.1f tok/s | generated %ld tokens: %.2f ms/token, tg %.1f tok/s (%ld thread%s)\n",
            n, 1e3 * t_pp, (double)n / t_pp, gen, gen > 1 ? 1e3 * t_tg / (double)(gen - 1) : 0.0,
            gen > 1 ? (double)(gen - 1) / t_tg : 0.0, threads, threads == 1 ? "" : "s");
    API(close)(m);
    free(logits);
    free(prompt);
    return 0;
}
