/* test_plan.c — precision plans: the reader (frontend/plan.c), resolution against a graph
 * (ir/plan.c), the resolved-plan writer and its round trip, the model-level figures, and the
 * PassEnv plumbing through the three plan passes.
 *
 * The graph is the golden test's one-layer OPT after fusion (tests/golden/apply-plan/w6a6.ir):
 * q/k/v/out projections, fc1/fc2, one bqc.Attention and an lm_head behind an Identity view, so
 * every kind is there. Every error the reader can give is pinned by its exact text.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "frontend.h"
#include "pass.h"

/* Node names of the graph, in node order of its matmuls (the attention is two). */
#define Q "/decoder/layers.0/self_attn/q_proj/MatMul"
#define K "/decoder/layers.0/self_attn/k_proj/MatMul"
#define V "/decoder/layers.0/self_attn/v_proj/MatMul"
#define A "/decoder/layers.0/self_attn/Attention"
#define O "/decoder/layers.0/self_attn/out_proj/MatMul"
#define F1 "/decoder/layers.0/fc1/Gemm"
#define F2 "/decoder/layers.0/fc2/Gemm"
#define LM "/lm_head/MatMul"

typedef struct Fixture {
    TestDiag td;
    IrModel *m;
    Arena *a;
} Fixture;

static int setup(void **state)
{
    Fixture *f = calloc(1, sizeof *f);
    test_diag_init(&f->td);
    f->m = ir_parse_file(&f->td.d, test_source_path("tests/golden/apply-plan/w6a6.ir"));
    if (!f->m || !ir_infer_graph(f->m->graph, NULL)) return -1;
    f->a = arena_create();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    Fixture *f = *state;
    ir_model_destroy(f->m);
    arena_destroy(f->a);
    test_diag_free(&f->td);
    free(f);
    return 0;
}

static Plan *parse(Fixture *f, const char *json)
{
    return plan_parse(&f->td.d, f->a, "plan.json", json, strlen(json));
}

static const char *name_of(const bq_format *x)
{
    static char buf[4][64];
    static int k;
    char *b = buf[k++ & 3];
    bq_format_name(x, b, 64);
    return b;
}

/* The resolved matmul of node `name` and kind k. */
static const PlanMatmul *find(const IrGraph *g, const PlanMatmul *mm, uint32_t n, const char *name, PlanKind k)
{
    for (uint32_t i = 0; i < n; i++)
        if (mm[i].kind == k && strcmp(g->nodes[mm[i].node].name, name) == 0) return &mm[i];
    fail_msg("no %s matmul named %s", plan_kind_name(k), name);
    return NULL;
}

#define assert_fmt(mm, role, want) assert_string_equal(name_of(&(mm)->fmt[role]), want)

/* Resolves json on the fixture graph (must succeed). */
static PlanMatmul *resolve(Fixture *f, const char *json, uint32_t *n)
{
    Plan *p = parse(f, json);
    if (!p) fail_msg("plan did not parse: %s", f->td.buf.text);
    PlanMatmul *mm;
    if (!plan_resolve(p, f->m->graph, &f->td.d, &mm, n)) fail_msg("plan did not resolve: %s", f->td.buf.text);
    return mm;
}

/* ---- kinds and resolution ---- */

static void test_kinds(void **state)
{
    Fixture *f = *state;
    PlanMatmul *mm;
    uint32_t n = plan_matmuls(f->m->graph, &mm);
    static const char *const names[] = {Q, K, V, A, A, O, F1, F2, LM};
    static const PlanKind kinds[] = {PLAN_LINEAR, PLAN_LINEAR, PLAN_LINEAR, PLAN_ATTN_QK, PLAN_ATTN_PV,
                                     PLAN_LINEAR, PLAN_LINEAR, PLAN_LINEAR, PLAN_LM_HEAD};
    assert_int_equal(n, 9);
    for (uint32_t i = 0; i < n; i++) {
        assert_string_equal(f->m->graph->nodes[mm[i].node].name, names[i]);
        assert_int_equal(mm[i].kind, kinds[i]);
    }
    /* operands: the attention's q/k for Q·Kᵀ, v for P·V's weight, nothing for P */
    const IrGraph *g = f->m->graph;
    assert_string_equal(g->vals[plan_operand(g, &mm[3], PLAN_INPUT)].name, "q");
    assert_string_equal(g->vals[plan_operand(g, &mm[3], PLAN_WEIGHT)].name, "k");
    assert_string_equal(g->vals[plan_operand(g, &mm[4], PLAN_WEIGHT)].name, "v");
    assert_int_equal(plan_operand(g, &mm[4], PLAN_INPUT), IR_NONE);
    assert_int_equal(plan_operand(g, &mm[8], PLAN_BIAS), IR_NONE);   /* lm_head: no bias */
    assert_null(plan_format_attr(&f->m->graph->nodes[mm[3].node], PLAN_ATTN_QK, PLAN_BIAS));
    free(mm);
}

static void test_defaults(void **state)
{
    Fixture *f = *state;
    uint32_t n;
    PlanMatmul *mm = resolve(f, "{\"default\": {\"weight\": \"bfp6/16\"}}", &n);
    for (uint32_t i = 0; i < n; i++) {
        assert_fmt(&mm[i], PLAN_WEIGHT, "bfp6/16");
        assert_int_equal(mm[i].rule[PLAN_WEIGHT], PLAN_RULE_DEFAULT);
        assert_fmt(&mm[i], PLAN_INPUT, "fp32");   /* a missing default role is fp32 */
        assert_int_equal(mm[i].rule[PLAN_INPUT], PLAN_RULE_NONE);
        assert_fmt(&mm[i], PLAN_BIAS, "fp32");
    }
    free(mm);
    /* an empty plan: everything fp32 */
    mm = resolve(f, "{}", &n);
    for (uint32_t i = 0; i < n; i++)
        for (int r = 0; r < PLAN_NROLES; r++) assert_fmt(&mm[i], r, "fp32");
    free(mm);
}

static const char rules_plan[] =
    "{\"default\": {\"input\": \"bfp6/16\", \"weight\": \"bfp6/16\"},\n"
    " \"rules\": [\n"
    "  {\"kind\": \"lm_head\", \"input\": \"fp32\", \"weight\": \"fp32\"},\n"
    "  {\"match\": \"*/fc?/*\", \"weight\": {\"format\": \"bfp\", \"width\": 4, \"block\": 32}, \"bias\": \"bfp8/16\"},\n"
    "  {\"match\": \"*/self_attn/Attention\", \"input\": \"bfp8/16\"},\n"
    "  {\"kind\": \"attn_pv\", \"input\": \"bfp4/16\", \"weight\": \"mxint8\"},\n"
    "  {\"match\": \"*/q_proj/*\", \"kind\": \"linear\", \"weight\": {\"format\": \"bm\", \"width\": 8, \"ebits\": 4}},\n"
    "  {\"match\": \"*\", \"weight\": \"int4/32\", \"input\": \"bfp5/16\"}\n"
    " ]}\n";

/* Per role, the first rule that matches and sets it; kinds; globs on attention nodes. */
static void test_precedence(void **state)
{
    Fixture *f = *state;
    const IrGraph *g = f->m->graph;
    uint32_t n;
    PlanMatmul *mm = resolve(f, rules_plan, &n);
    const PlanMatmul *lm = find(g, mm, n, LM, PLAN_LM_HEAD);
    assert_fmt(lm, PLAN_INPUT, "fp32");
    assert_fmt(lm, PLAN_WEIGHT, "fp32");
    assert_int_equal(lm->rule[PLAN_WEIGHT], 0);
    const PlanMatmul *fc1 = find(g, mm, n, F1, PLAN_LINEAR);
    assert_fmt(fc1, PLAN_WEIGHT, "bfp4/32");
    assert_fmt(fc1, PLAN_BIAS, "bfp8/16");
    assert_fmt(fc1, PLAN_INPUT, "bfp5/16");     /* rules[5] "*" sets input: before the default */
    assert_int_equal(fc1->rule[PLAN_INPUT], 5);
    const PlanMatmul *qk = find(g, mm, n, A, PLAN_ATTN_QK), *pv = find(g, mm, n, A, PLAN_ATTN_PV);
    assert_fmt(qk, PLAN_INPUT, "bfp8/16");      /* the glob applies to both matmuls */
    assert_fmt(pv, PLAN_INPUT, "bfp8/16");      /* ... and shadows rules[3]'s input */
    assert_int_equal(pv->rule[PLAN_INPUT], 2);
    assert_fmt(pv, PLAN_WEIGHT, "mxint8");      /* rules[3] still decides the weight */
    assert_fmt(qk, PLAN_WEIGHT, "int4/32");     /* rules[5] */
    const PlanMatmul *q = find(g, mm, n, Q, PLAN_LINEAR);
    assert_fmt(q, PLAN_WEIGHT, "bm8e4/16");
    assert_fmt(q, PLAN_BIAS, "fp32");
    assert_int_equal(q->rule[PLAN_BIAS], PLAN_RULE_NONE);
    assert_fmt(find(g, mm, n, K, PLAN_LINEAR), PLAN_WEIGHT, "int4/32");
    free(mm);
}

static void test_globs(void **state)
{
    Fixture *f = *state;
    const IrGraph *g = f->m->graph;
    uint32_t n;
    /* '*' crosses '/', '?' one character, classes, exact names */
    PlanMatmul *mm = resolve(f,
                             "{\"rules\": [{\"match\": \"/decoder/*/[qk]_proj/MatMul\", \"weight\": \"bfp4/16\"},"
                             " {\"match\": \"" F2 "\", \"weight\": \"bfp5/16\"},"
                             " {\"match\": \"*/?_proj/*\", \"weight\": \"bfp7/16\"}]}",
                             &n);
    assert_fmt(find(g, mm, n, Q, PLAN_LINEAR), PLAN_WEIGHT, "bfp4/16");
    assert_fmt(find(g, mm, n, K, PLAN_LINEAR), PLAN_WEIGHT, "bfp4/16");
    assert_fmt(find(g, mm, n, V, PLAN_LINEAR), PLAN_WEIGHT, "bfp7/16");
    assert_fmt(find(g, mm, n, F2, PLAN_LINEAR), PLAN_WEIGHT, "bfp5/16");
    assert_fmt(find(g, mm, n, F1, PLAN_LINEAR), PLAN_WEIGHT, "fp32");
    assert_fmt(find(g, mm, n, O, PLAN_LINEAR), PLAN_WEIGHT, "fp32");
    free(mm);
}

/* Each of the four kinds selects exactly its matmuls. */
static void test_kind_rules(void **state)
{
    Fixture *f = *state;
    uint32_t n;
    PlanMatmul *mm = resolve(f,
                             "{\"rules\": [{\"kind\": \"linear\", \"weight\": \"bfp4/16\"},"
                             " {\"kind\": \"attn_qk\", \"weight\": \"bfp5/16\"},"
                             " {\"kind\": \"attn_pv\", \"weight\": \"bfp6/16\"},"
                             " {\"kind\": \"lm_head\", \"weight\": \"bfp7/16\"}]}",
                             &n);
    static const char *const want[PLAN_NKINDS] = {"bfp4/16", "bfp5/16", "bfp6/16", "bfp7/16"};
    int seen[PLAN_NKINDS] = {0};
    for (uint32_t i = 0; i < n; i++) {
        assert_fmt(&mm[i], PLAN_WEIGHT, want[mm[i].kind]);
        assert_int_equal(mm[i].rule[PLAN_WEIGHT], mm[i].kind);
        seen[mm[i].kind]++;
    }
    assert_int_equal(seen[PLAN_LINEAR], 6);
    assert_int_equal(seen[PLAN_ATTN_QK], 1);
    assert_int_equal(seen[PLAN_ATTN_PV], 1);
    assert_int_equal(seen[PLAN_LM_HEAD], 1);
    free(mm);
}

static void test_object_form(void **state)
{
    Fixture *f = *state;
    static const struct { const char *obj, *name; } cases[] = {
        {"{\"format\": \"bfp\", \"width\": 8, \"block\": 16}", "bfp8/16"},
        {"{\"format\": \"bfp\"}", "bfp6/16"},                        /* family defaults */
        {"{\"format\": \"bm\", \"width\": 8, \"ebits\": 4}", "bm8e4/16"},
        {"{\"format\": \"mxfp\", \"width\": 4}", "mxfp4"},
        {"{\"format\": \"mxfp\", \"width\": 8, \"ebits\": 5}", "mxfp8e5m2"},
        {"{\"format\": \"int\", \"width\": 4, \"block\": 32}", "int4/32"},
        {"{\"format\": \"nf4\", \"block\": 64}", "nf4/64"},
        {"{\"format\": \"fp16\"}", "fp16"},
        {"{\"format\": \"bfp\", \"width\": 5, \"block\": \"auto\"}", "bfp5/auto"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[512];
        snprintf(json, sizeof json, "{\"default\": {\"weight\": %s}, \"block_size\": {\"weight\": [16]}}", cases[i].obj);
        Plan *p = parse(f, json);
        if (!p) fail_msg("%s: %s", cases[i].obj, f->td.buf.text);
        assert_true(p->def_sets & (1u << PLAN_WEIGHT));
        assert_string_equal(name_of(&p->def[PLAN_WEIGHT]), cases[i].name);
        bq_format s = test_format(cases[i].name);
        assert_true(ir_format_eq(&s, &p->def[PLAN_WEIGHT]));   /* the same format as the name */
    }
}

static void test_auto_blocks(void **state)
{
    Fixture *f = *state;
    Plan *p = parse(f, "{\"default\": {\"weight\": \"bfp6/auto\", \"input\": {\"format\": \"bfp\", \"block\": \"auto\"}},"
                       " \"block_size\": {\"weight\": [128, 16, 32], \"input\": [8], \"target_sqnr_db\": 27.5}}");
    assert_non_null(p);
    assert_int_equal(p->def[PLAN_WEIGHT].block, 0);
    assert_int_equal(p->def[PLAN_INPUT].block, 0);
    assert_int_equal(p->blocks[PLAN_WEIGHT].n, 3);
    assert_int_equal(p->blocks[PLAN_WEIGHT].size[0], 128);
    assert_int_equal(p->blocks[PLAN_INPUT].n, 1);
    assert_true(p->target_sqnr_db == 27.5);
    assert_true(p->has_block_size);
    p = parse(f, "{}");
    assert_true(p->target_sqnr_db == PLAN_DEFAULT_TARGET_DB);
    assert_false(p->has_block_size);
}

/* ---- the resolved plan ---- */

static char *write_plan(Fixture *f, const PlanMatmul *mm, uint32_t n, const Plan *src)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    bool ok = plan_write(out, &f->td.d, f->m->graph, mm, n, src);
    fclose(out);
    if (!ok) fail_msg("plan_write failed: %s", f->td.buf.text);
    return text;
}

/* resolve, write, read, resolve again: the same formats for every operand, and the written
 * text is a fixed point. */
static void roundtrip(Fixture *f, const char *json)
{
    Plan *p = parse(f, json);
    assert_non_null(p);
    PlanMatmul *mm, *mm2, *mm3;
    uint32_t n, n2, n3;
    assert_true(plan_resolve(p, f->m->graph, &f->td.d, &mm, &n));
    char *text = write_plan(f, mm, n, p);
    Plan *p2 = plan_parse(&f->td.d, f->a, "resolved.json", text, strlen(text));
    if (!p2) fail_msg("the resolved plan does not parse: %s\n%s", f->td.buf.text, text);
    assert_true(plan_resolve(p2, f->m->graph, &f->td.d, &mm2, &n2));
    assert_int_equal(n, n2);
    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(mm[i].node, mm2[i].node);
        assert_int_equal(mm[i].kind, mm2[i].kind);
        for (int r = 0; r < PLAN_NROLES; r++)
            if (!ir_format_eq(&mm[i].fmt[r], &mm2[i].fmt[r]))
                fail_msg("%s %s %s: %s became %s", f->m->graph->nodes[mm[i].node].name, plan_kind_name(mm[i].kind),
                         plan_role_name(r), name_of(&mm[i].fmt[r]), name_of(&mm2[i].fmt[r]));
    }
    assert_int_equal(p2->nrules, n);   /* one rule per matmul */
    char *text2 = write_plan(f, mm2, n2, p2);
    assert_string_equal(text, text2);
    assert_true(plan_resolve(p2, f->m->graph, &f->td.d, &mm3, &n3));
    free(text);
    free(text2);
    free(mm);
    free(mm2);
    free(mm3);
}

static void test_roundtrip(void **state)
{
    Fixture *f = *state;
    roundtrip(f, rules_plan);
    roundtrip(f, "{\"default\": {\"input\": \"bfp6/16\", \"weight\": \"bfp6/16\", \"bias\": \"bfp8/16\"}}");
    roundtrip(f, "{}");
    /* auto blocks survive with the candidate lists */
    roundtrip(f, "{\"default\": {\"weight\": \"bfp6/auto\"}, \"rules\": [{\"kind\": \"attn_pv\", \"input\": \"bfp4/auto\"}],"
                 " \"block_size\": {\"weight\": [16, 64], \"input\": [8, 16], \"target_sqnr_db\": 31.25}}");
}

/* Node names with glob metacharacters are written escaped and match only themselves. */
static void test_roundtrip_escapes(void **state)
{
    Fixture *f = *state;
    IrGraph *g = f->m->graph;
    PlanMatmul *mm;
    if (plan_matmuls(g, &mm) < 2) fail();
    g->nodes[mm[0].node].name = "/a*b/[q]?_proj\\x";   /* q_proj */
    g->nodes[mm[1].node].name = "/a-b/qz_projx";       /* k_proj: q_proj's name as a glob would match it */
    free(mm);
    roundtrip(f, "{\"rules\": [{\"match\": \"/a\\\\*b/*\", \"weight\": \"bfp4/16\"}, {\"kind\": \"linear\", \"weight\": \"bfp8/16\"}]}");
    uint32_t k;
    mm = resolve(f, "{\"rules\": [{\"match\": \"/a\\\\*b/*\", \"weight\": \"bfp4/16\"}, {\"kind\": \"linear\", \"weight\": \"bfp8/16\"}]}", &k);
    assert_fmt(&mm[0], PLAN_WEIGHT, "bfp4/16");
    assert_fmt(&mm[1], PLAN_WEIGHT, "bfp8/16");
    char *text = write_plan(f, mm, k, NULL);
    assert_non_null(strstr(text, "\"match\":\"/a\\\\*b/\\\\[q\\\\]\\\\?_proj\\\\\\\\x\""));
    free(text);
    free(mm);
}

static void test_write_errors(void **state)
{
    Fixture *f = *state;
    IrGraph *g = f->m->graph;
    uint32_t n;
    /* two nodes of one name with different formats cannot be written as exact rules */
    PlanMatmul *mm = resolve(f, "{\"rules\": [{\"match\": \"" Q "\", \"weight\": \"bfp4/16\"}]}", &n);
    g->nodes[mm[1].node].name = Q;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_false(plan_write(out, &f->td.d, g, mm, n, NULL));
    fclose(out);
    free(text);
    assert_diag_contains(&f->td, "node '" Q "' (bqc.Linear): error: cannot write the resolved plan: another node of "
                                 "the same name has other formats");
    /* an auto block with no candidate lists to copy */
    mm[0].fmt[PLAN_WEIGHT].block = 0;
    out = open_memstream(&text, &len);
    assert_false(plan_write(out, &f->td.d, g, mm, 1, NULL));
    fclose(out);
    free(text);
    assert_diag_contains(&f->td, "an operand's block is still 'auto' (run block-size)");
    free(mm);
}

/* ---- errors: one line each, the file, the JSON path, the problem ---- */

static void test_errors(void **state)
{
    Fixture *f = *state;
    static const struct { const char *json, *msg; } cases[] = {
        {"{\"default\": {\"weight\": \"bfp6/16\",}}", "plan.json:1:3"},   /* 1:34 or 1:35, as cJSON says */
        {"{\"default\": {\"weight\": \"bfp6/16\",}}", ": error: invalid JSON"},
        {"{\n  \"rules\": [\n    {\"kind\": linear}\n  ]\n}", "plan.json:3:"},
        {"", "plan.json:1:1: error: invalid JSON"},
        {"{} {}", "plan.json:1:4: error: invalid JSON: unexpected text after the plan object"},
        {"[1]", "plan.json: error: a plan is a JSON object"},
        {"{\"defaults\": {}}", "plan.json: defaults: error: unknown key (expected default, rules, block_size)"},
        {"{\"default\": {}, \"default\": {}}", "plan.json: default: error: duplicate key"},
        {"{\"default\": {\"wieght\": \"bfp6/16\"}}", "plan.json: default.wieght: error: unknown key (expected input, weight, bias)"},
        {"{\"default\": []}", "plan.json: default: error: expected an object {role: format}"},
        {"{\"rules\": [{\"kind\": \"linear\", \"weight\": \"fp32\", \"matc\": \"x\"}]}",
         "plan.json: rules[0].matc: error: unknown key (expected match, kind, input, weight, bias)"},
        {"{\"default\": {\"weight\": {\"format\": \"bfp\", \"bits\": 6}}}",
         "plan.json: default.weight.bits: error: unknown key (expected format, width, ebits, block)"},
        {"{\"default\": {\"weight\": \"bfq6/16\"}}", "plan.json: default.weight: error: unknown format 'bfq6/16'"},
        {"{\"default\": {\"weight\": 6}}", "plan.json: default.weight: error: expected a format name"},
        {"{\"rules\": [{\"kind\": \"linear\", \"input\": \"bfp6/16\"}, {\"kind\": \"lm_head\", \"input\": \"fp32\"},"
         " {\"kind\": \"linear\", \"weight\": \"bfp9/16\"}]}",
         "plan.json: rules[2].weight: error: bfp width 9 is outside 3..8"},
        {"{\"default\": {\"input\": {\"format\": \"bfp\", \"width\": 9}}}", "plan.json: default.input: error: bfp width 9 is outside 3..8"},
        {"{\"default\": {\"input\": \"bfp6/12\"}}", "plan.json: default.input: error: bfp block 12 is not a power of two in 8..256"},
        {"{\"default\": {\"input\": \"mxint8/16\"}}", "plan.json: default.input: error: mxint has a fixed block of 32"},
        {"{\"default\": {\"input\": {\"format\": \"mxint\", \"block\": 16}}}", "plan.json: default.input: error: mxint has a fixed block of 32"},
        {"{\"default\": {\"input\": {\"format\": \"mxint\", \"block\": \"auto\"}}}", "plan.json: default.input: error: mxint has a fixed block of 32"},
        {"{\"default\": {\"input\": {\"format\": \"bfq\"}}}", "plan.json: default.input: error: unknown format family 'bfq'"},
        {"{\"default\": {\"input\": {\"width\": 6}}}", "plan.json: default.input: error: the object form needs \"format\""},
        {"{\"default\": {\"input\": {\"format\": \"bfp\", \"width\": \"6\"}}}", "plan.json: default.input.width: error: expected a positive integer"},
        {"{\"default\": {\"input\": {\"format\": \"bfp\", \"block\": 0}}}", "plan.json: default.input.block: error: expected a positive integer or \"auto\""},
        {"{\"rules\": {}}", "plan.json: rules: error: expected an array of rules"},
        {"{\"rules\": [3]}", "plan.json: rules[0]: error: expected an object"},
        {"{\"rules\": [{\"kind\": \"attn\", \"weight\": \"fp32\"}]}",
         "plan.json: rules[0].kind: error: unknown kind 'attn' (expected linear, attn_qk, attn_pv, lm_head)"},
        {"{\"rules\": [{\"weight\": \"fp32\"}]}", "plan.json: rules[0]: error: a rule needs \"match\" (a node-name glob) or \"kind\""},
        {"{\"rules\": [{\"match\": 3, \"weight\": \"fp32\"}]}", "plan.json: rules[0].match: error: expected a string (a node-name glob)"},
        {"{\"rules\": [{\"match\": \"*\"}]}", "plan.json: rules[0]: error: the rule sets no role (input, weight, bias)"},
        {"{\"rules\": [{\"kind\": \"attn_qk\", \"bias\": \"bfp8/16\"}]}", "plan.json: rules[0].bias: error: attn_qk has no bias"},
        {"{\"default\": {\"bias\": \"bfp8/auto\"}, \"block_size\": {\"weight\": [16]}}",
         "plan.json: default.bias: error: block 'auto' is for input and weight: a bias has no K dimension"},
        {"{\"default\": {\"weight\": \"bfp6/auto\"}}", "plan.json: default.weight: error: block 'auto' needs candidate sizes in block_size.weight"},
        {"{\"rules\": [{\"kind\": \"linear\", \"input\": \"bfp6/auto\"}], \"block_size\": {\"weight\": [16]}}",
         "plan.json: rules[0].input: error: block 'auto' needs candidate sizes in block_size.input"},
        {"{\"block_size\": []}", "plan.json: block_size: error: expected an object"},
        {"{\"block_size\": {\"weights\": [16]}}", "plan.json: block_size.weights: error: unknown key (expected weight, input, target_sqnr_db)"},
        {"{\"block_size\": {\"weight\": []}}", "plan.json: block_size.weight: error: expected a non-empty array of candidate block sizes"},
        {"{\"block_size\": {\"weight\": 16}}", "plan.json: block_size.weight: error: expected a non-empty array"},
        {"{\"block_size\": {\"input\": [16, 12]}}", "plan.json: block_size.input[1]: error: block 12 is not a power of two in 8..256"},
        {"{\"block_size\": {\"input\": [4]}}", "plan.json: block_size.input[0]: error: block 4 is not a power of two in 8..256"},
        {"{\"block_size\": {\"input\": [512]}}", "plan.json: block_size.input[0]: error: block 512 is not a power of two in 8..256"},
        {"{\"default\": {\"weight\": \"bfp6/row\"}}", "plan.json: default.weight: error: bfp has no block 'row' (one block per row of K: int only)"},
        {"{\"default\": {\"bias\": \"int8/row\"}}", "plan.json: default.bias: error: block 'row' is for input and weight: a bias has no K dimension"},
        {"{\"default\": {\"input\": {\"format\": \"int\", \"block\": 65535}}}", "plan.json: default.input.block: error: block 65535 is out of range"},
        {"{\"default\": {\"input\": {\"format\": \"int\", \"block\": \"rows\"}}}", "plan.json: default.input.block: error: expected a positive integer or \"auto\" or \"row\""},
        {"{\"default\": {\"input\": \"int8/4100\"}}", "plan.json: default.input: error: int block 4100 is not a multiple of 8 in 8..4096"},
        {"{\"block_size\": {\"input\": [16, 8, 16]}}", "plan.json: block_size.input[2]: error: block 16 is listed twice"},
        {"{\"block_size\": {\"input\": [\"16\"]}}", "plan.json: block_size.input[0]: error: expected an integer block size"},
        {"{\"block_size\": {\"input\": [16.5]}}", "plan.json: block_size.input[0]: error: expected an integer block size"},
        {"{\"block_size\": {\"target_sqnr_db\": \"30\"}}", "plan.json: block_size.target_sqnr_db: error: expected a number (dB)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TestDiag td;
        test_diag_init(&td);
        Plan *p = plan_parse(&td.d, f->a, "plan.json", cases[i].json, strlen(cases[i].json));
        if (p || td.d.nerrors != 1 || !strstr(td.buf.text, cases[i].msg))
            fail_msg("case %zu: %s\n  expected one error containing: %s\n  got: %s", i, cases[i].json, cases[i].msg,
                     p ? "(no error)" : td.buf.text);
        assert_int_equal(strchr(td.buf.text, '\n') - td.buf.text + 1, strlen(td.buf.text));   /* one line */
        test_diag_free(&td);
    }
}

static void test_resolve_errors(void **state)
{
    Fixture *f = *state;
    Plan *p = parse(f, "{\"rules\": [{\"kind\": \"attn_qk\", \"input\": \"bfp8/16\"},"
                       " {\"match\": \"*/layer.0/*\", \"weight\": \"bfp4/16\"},"
                       " {\"match\": \"*/fc1/*\", \"kind\": \"attn_pv\", \"weight\": \"bfp4/16\"}]}");
    assert_non_null(p);
    PlanMatmul *mm;
    uint32_t n;
    assert_false(plan_resolve(p, f->m->graph, &f->td.d, &mm, &n));
    assert_null(mm);
    assert_diag_contains(&f->td, "plan.json: rules[1]: error: matches no node\n");
    assert_diag_contains(&f->td, "plan.json: rules[2]: error: matches no node\n");   /* glob and kind: both must hold */
    assert_int_equal(f->td.d.nerrors, 2);
    TestDiag td;
    test_diag_init(&td);
    assert_null(plan_read(&td.d, f->a, "/nonexistent/plan.json"));
    assert_diag_contains(&td, "/nonexistent/plan.json: error: cannot read the plan: No such file or directory");
    test_diag_free(&td);
}

/* ---- model-level figures ---- */

static void apply(Fixture *f, const char *json)
{
    uint32_t n;
    PlanMatmul *mm = resolve(f, json, &n);
    for (uint32_t i = 0; i < n; i++)
        for (int r = 0; r < PLAN_NROLES; r++) {
            bq_format *a = plan_format_attr(&f->m->graph->nodes[mm[i].node], mm[i].kind, (PlanRole)r);
            if (a) *a = mm[i].fmt[r];
        }
    free(mm);
}

static void test_summary(void **state)
{
    Fixture *f = *state;
    PlanSummary s;
    /* W6A6 bfp6/16 everywhere (biases fp32): 6.5 bpw, density 32/6.5 = 4.92 */
    apply(f, "{\"default\": {\"weight\": \"bfp6/16\", \"input\": \"bfp6/16\"}}");
    plan_summarise(f->m->graph, 128, &s);
    assert_true(fabs(s.weight_bpw - 6.5) < 1e-12);
    assert_true(fabs(s.act_bpw - 6.5) < 1e-12);
    assert_true(fabs(s.density - 32.0 / 6.5) < 1e-12);
    char d[16];
    snprintf(d, sizeof d, "%.2f", s.density);
    assert_string_equal(d, "4.92");
    /* What is counted (hidden 4, 2 heads, ffn 8, seq S): weights q/k/v/out 4·16 + fc1/fc2 2·32
     * = 128; activations: Linear inputs 4·4S + 4S + 8S, Q·Kᵀ 4S + 4S, P·V 2·S² + 4S. */
    const double S = 128, W = 128, Act = 40 * S + 2 * S * S;
    assert_true(s.w_elems == W);
    assert_true(s.a_elems == Act);
    /* parameters: every f32 constant (the lm_head's 64 quantised weights included) */
    assert_int_equal(s.params, 16 * 4 + 4 * 16 + 4 * 4 + 32 + 8 + 32 + 4 + 64);
    assert_int_equal(s.params_quant, 128 + 64);
    /* W4 (bfp4/16: 4.5) A8 (bfp8/16: 8.5), lm_head fp32 */
    apply(f, "{\"default\": {\"weight\": \"bfp4/16\", \"input\": \"bfp8/16\"}, \"rules\": [{\"kind\": \"lm_head\", "
             "\"weight\": \"fp32\", \"input\": \"fp32\"}]}");
    plan_summarise(f->m->graph, 128, &s);
    assert_true(fabs(s.weight_bpw - 4.5) < 1e-12);
    /* the attention's "weight" operands (keys, values: 4S each) are activations in bfp4/16 */
    assert_true(fabs(s.density - 32.0 * (W + Act) / (W * 4.5 + (Act - 8 * S) * 8.5 + 8 * S * 4.5)) < 1e-12);
    assert_true(fabs(s.act_bpw - ((Act - 8 * S) * 8.5 + 8 * S * 4.5) / Act) < 1e-12);
    assert_int_equal(s.params_quant, 128);
    /* weight bytes: q/k/v/out rows of 4 bfp4 values (1 + 2 bytes), fc1 8 rows of 4, fc2 4 rows of
     * 8 (1 + 4 bytes); the rest fp32 */
    uint64_t quant = 4 * 4 * 3 + 8 * 3 + 4 * 5, rest = (uint64_t)(s.params - 128) * 4;
    assert_int_equal(s.weight_bytes, quant + rest);
    /* an unresolved auto block makes the averages unknown rather than wrong */
    apply(f, "{\"default\": {\"weight\": \"bfp4/auto\"}, \"block_size\": {\"weight\": [16]}}");
    plan_summarise(f->m->graph, 128, &s);
    assert_true(isnan(s.weight_bpw));
}

/* The three passes with a PassEnv: formats, packed weights, evidence in the report. */
static void test_passes(void **state)
{
    Fixture *f = *state;
    Plan *p = parse(f, "{\"default\": {\"weight\": \"bfp6/auto\", \"input\": \"bfp6/16\"},"
                       " \"rules\": [{\"kind\": \"lm_head\", \"weight\": \"fp32\", \"input\": \"fp32\"},"
                       "  {\"match\": \"" A "\", \"weight\": \"bfp8/16\"}],"
                       " \"block_size\": {\"weight\": [8, 16, 32], \"target_sqnr_db\": 25}}");
    assert_non_null(p);
    PlanReport report = {0};
    PassEnv env = {.plan = p, .report = &report};
    PassRunOptions o = {.pipeline = "apply-plan,block-size,quantise-weights", .verify_each = true, .env = &env};
    if (!pass_run_pipeline(f->m, &o)) fail_msg("%s", f->td.buf.text);
    const IrGraph *g = f->m->graph;
    PlanMatmul *mm;
    uint32_t n = plan_matmuls(g, &mm);
    for (uint32_t i = 0; i < n; i++) {
        const IrNode *nd = &g->nodes[mm[i].node];
        if (mm[i].kind != PLAN_LINEAR) continue;
        /* K = 4 (or 8 for fc2): only the smallest candidate, 8, fits; packed u8 [N, bytes] */
        assert_fmt(&mm[i], PLAN_WEIGHT, "bfp6/8");
        const IrType *wt = &g->vals[nd->in[1]].type;
        assert_int_equal(wt->dtype, DT_U8);
        assert_int_equal(nd->attr.linear.trans_b, 0);
        const PlanReportRow *row = plan_report_find(&report, nd->name, PLAN_LINEAR, PLAN_WEIGHT);
        assert_non_null(row);
        assert_int_equal(row->rule, PLAN_RULE_DEFAULT);
        assert_int_equal(row->ev.ncand, 1);
        assert_int_equal(row->ev.chosen, 8);
        assert_true(row->sqnr_db > 20 && isfinite(row->variance));
    }
    const PlanReportRow *lm = plan_report_find(&report, LM, PLAN_LM_HEAD, PLAN_WEIGHT);
    assert_non_null(lm);                      /* apply-plan recorded the rule; nothing measured */
    assert_int_equal(lm->rule, 0);
    assert_int_equal(lm->ev.ncand, 0);
    assert_true(isnan(lm->sqnr_db));
    assert_int_equal(g->vals[g->nodes[mm[n - 1].node].in[1]].type.dtype, DT_F32);
    free(mm);
    plan_report_free(&report);
}

/* "row": one block per row of K (int only), which apply-plan makes the matmul's K. The
 * fixture's K: 4 for q/k/v/out and fc1, 8 for fc2, 4 for the lm_head, head size 2. */
static void test_row_blocks(void **state)
{
    Fixture *f = *state;
    Plan *p = parse(f, "{\"default\": {\"weight\": \"int8/row\"},"
                       " \"rules\": [{\"match\": \"*/fc2/*\", \"input\": {\"format\": \"int\", \"width\": 4, \"block\": \"row\"}}]}");
    assert_non_null(p);
    assert_int_equal(p->def[PLAN_WEIGHT].block, BQ_BLOCK_ROW);
    assert_string_equal(name_of(&p->def[PLAN_WEIGHT]), "int8/row");
    assert_string_equal(name_of(&p->rules[0].fmt[PLAN_INPUT]), "int4/row");
    /* plan_resolve leaves "row" open; K is apply-plan's business */
    PlanMatmul *mm;
    uint32_t n;
    assert_true(plan_resolve(p, f->m->graph, &f->td.d, &mm, &n));
    assert_fmt(find(f->m->graph, mm, n, F2, PLAN_LINEAR), PLAN_WEIGHT, "int8/row");
    free(mm);
    const IrGraph *g = f->m->graph;
    mm = NULL;
    n = plan_matmuls(g, &mm);
    static const int64_t k[] = {4, 4, 4, 2, -1, 4, 4, 8, 4};   /* q k v qk pv out fc1 fc2 lm_head */
    assert_int_equal(n, 9);
    for (uint32_t i = 0; i < n; i++) assert_int_equal(plan_matmul_k(g, &mm[i]), k[i]);
    free(mm);
    /* applied to fc2 alone (K = 8): the blocks become 8; the rest stays fp32 */
    Plan *ok = parse(f, "{\"rules\": [{\"match\": \"*/fc2/*\", \"weight\": \"int8/row\", \"input\": \"int8/row\"}]}");
    PassEnv env = {.plan = ok};
    PassRunOptions o = {.pipeline = "apply-plan", .verify_each = true, .env = &env};
    if (!pass_run_pipeline(f->m, &o)) fail_msg("%s", f->td.buf.text);
    n = plan_matmuls(g, &mm);
    const PlanMatmul *fc2 = find(g, mm, n, F2, PLAN_LINEAR), *q = find(g, mm, n, Q, PLAN_LINEAR);
    assert_fmt(fc2, PLAN_WEIGHT, "int8/8");
    assert_fmt(fc2, PLAN_INPUT, "int8/8");
    assert_fmt(q, PLAN_WEIGHT, "fp32");
    free(mm);
    /* K = 4 is no int block; P·V has no fixed K */
    static const struct { const char *json, *msg; } bad[] = {
        {"{\"rules\": [{\"match\": \"*/q_proj/*\", \"weight\": \"int8/row\"}]}",
         "node '" Q "' (bqc.Linear): error: the weight format int8/row: K = 4 is not a block it takes (int block 4 is not a multiple of 8 in 8..4096)"},
        {"{\"rules\": [{\"kind\": \"attn_qk\", \"input\": \"int8/row\"}]}",
         "error: the attn_qk input format int8/row: K = 2 is not a block it takes"},
        {"{\"rules\": [{\"kind\": \"attn_pv\", \"weight\": \"int8/row\"}]}",
         "error: the attn_pv weight format int8/row needs a fixed K, but P·V reduces over the keys, as many as the sequence: give a block (e.g. the model's context)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        TestDiag td;
        test_diag_init(&td);
        IrModel *m = ir_parse_file(&td.d, test_source_path("tests/golden/apply-plan/w6a6.ir"));
        assert_true(m && ir_infer_graph(m->graph, NULL));
        PassEnv e = {.plan = parse(f, bad[i].json)};
        PassRunOptions po = {.pipeline = "apply-plan", .env = &e};
        assert_non_null(e.plan);
        assert_false(pass_run_pipeline(m, &po));
        assert_diag_contains(&td, bad[i].msg);
        ir_model_destroy(m);
        test_diag_free(&td);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kinds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_precedence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_globs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kind_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_object_form, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auto_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roundtrip_escapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolve_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_summary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_passes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_row_blocks, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
