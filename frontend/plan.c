/* plan.c — plan.json in and out: the only file that sees cJSON (STYLE.md).
 *
 *   {"default": {role: format, ...},
 *    "rules": [{"match": glob, "kind": kind, role: format, ...}, ...],
 *    "block_size": {"weight": [16, 32, 64, 128], "input": [8, 16, 32], "target_sqnr_db": 30}}
 *
 * Roles are input, weight, bias; kinds linear, attn_qk, attn_pv, lm_head; a format is a name
 * ("bfp6/16", "bfp6/auto", "int8/row") or an object {"format": family, "width", "ebits",
 * "block": n | "auto" | "row"} (bq_format_make). "row" (one block per row of K, int only) is
 * resolved by apply-plan, which knows each matmul's K. The reader checks everything a plan can get wrong on its own —
 * unknown keys at any level, formats, kinds, rules that can never act, candidate lists, an
 * "auto" block with no candidates — and says where with a JSON path
 * ("plan.json: rules[2].weight: error: bfp width 9 is outside 3..8"); what needs the graph
 * (a rule that matches no node) is plan_resolve's (ir/plan.c).
 *
 * The writer prints a *resolved* plan: one rule per (node, matmul) naming the node exactly
 * (glob metacharacters escaped) and its kind, with every role the matmul has. It is itself a
 * plan, and reading it back resolves to the same formats for every operand.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "frontend.h"

typedef struct Reader {
    Diag *d;
    Arena *a;
    Plan *p;
    char where[512];           /* scratch for "<file>: <json path>" */
} Reader;

/* "<file>: <path>" (path printf-style; empty: just the file). */
static const char *at(Reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *at(Reader *r, const char *fmt, ...)
{
    int n = snprintf(r->where, sizeof r->where, "%s", r->p->path);
    va_list ap;
    va_start(ap, fmt);
    char path[400];
    vsnprintf(path, sizeof path, fmt, ap);
    va_end(ap);
    if (path[0] && n >= 0 && (size_t)n < sizeof r->where) snprintf(r->where + n, sizeof r->where - (size_t)n, ": %s", path);
    return r->where;
}

/* Every key of object o is one of `allowed` (NULL-terminated) and appears once. */
static bool check_keys(Reader *r, const cJSON *o, const char *path, const char *const *allowed, const char *expected)
{
    for (const cJSON *c = o->child; c; c = c->next) {
        bool known = false;
        for (const char *const *k = allowed; *k && !known; k++) known = strcmp(c->string, *k) == 0;
        const char *sep = path[0] ? "." : "";
        if (!known) return diag_error(r->d, at(r, "%s%s%s", path, sep, c->string), "unknown key (expected %s)", expected);
        for (const cJSON *e = o->child; e != c; e = e->next)
            if (strcmp(e->string, c->string) == 0) return diag_error(r->d, at(r, "%s%s%s", path, sep, c->string), "duplicate key");
    }
    return true;
}

static bool int_value(const cJSON *v, int *out)
{
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || fabs(v->valuedouble) > 1e6) return false;
    *out = (int)v->valuedouble;
    return true;
}

/* A format: a name, or the object form. */
static bool read_format(Reader *r, const cJSON *v, const char *path, bq_format *f)
{
    char why[256];
    if (cJSON_IsString(v)) {
        if (bq_format_parse(v->valuestring, strlen(v->valuestring), BQ_ALLOW_AUTO | BQ_ALLOW_ROW, f, why, sizeof why) ==
            BQ_OK)
            return true;
        return diag_error(r->d, at(r, "%s", path), "%s", why);
    }
    if (!cJSON_IsObject(v))
        return diag_error(r->d, at(r, "%s", path), "expected a format name (\"bfp6/16\") or an object {\"format\": ...}");
    static const char *const keys[] = {"format", "width", "ebits", "block", NULL};
    if (!check_keys(r, v, path, keys, "format, width, ebits, block")) return false;
    const cJSON *fam = cJSON_GetObjectItemCaseSensitive(v, "format");
    if (!fam) return diag_error(r->d, at(r, "%s", path), "the object form needs \"format\" (a family: bfp, bm, bl, mxint, mxfp, int, nf4, fp16, bf16, fp32)");
    if (!cJSON_IsString(fam)) return diag_error(r->d, at(r, "%s.format", path), "expected a string (a format family)");
    int field[3] = {-1, -1, -1};   /* width, ebits, block */
    static const char *const names[3] = {"width", "ebits", "block"};
    for (int i = 0; i < 3; i++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(v, names[i]);
        if (!x) continue;
        if (i == 2 && cJSON_IsString(x) && strcmp(x->valuestring, "auto") == 0) {
            field[i] = BQ_BLOCK_AUTO;
        } else if (i == 2 && cJSON_IsString(x) && strcmp(x->valuestring, "row") == 0) {
            field[i] = BQ_BLOCK_ROW;
        } else if (!int_value(x, &field[i]) || field[i] < 0 || (i == 2 && field[i] == 0)) {
            return diag_error(r->d, at(r, "%s.%s", path, names[i]), "expected a positive integer%s",
                              i == 2 ? " or \"auto\" or \"row\"" : "");
        } else if (i == 2 && field[i] >= BQ_BLOCK_ROW) {   /* (a number is never the "row" sentinel) */
            return diag_error(r->d, at(r, "%s.block", path), "block %d is out of range", field[i]);
        }
    }
    if (bq_format_make(fam->valuestring, field[0], field[1], field[2], BQ_ALLOW_AUTO | BQ_ALLOW_ROW, f, why, sizeof why) ==
        BQ_OK)
        return true;
    return diag_error(r->d, at(r, "%s", path), "%s", why);
}

/* The roles of an object (default, or a rule): sets bits in *sets. */
static bool read_roles(Reader *r, const cJSON *o, const char *path, uint8_t *sets, bq_format *fmt)
{
    for (int role = 0; role < PLAN_NROLES; role++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, plan_role_name((PlanRole)role));
        if (!v) continue;
        char p[128];
        snprintf(p, sizeof p, "%s%s%s", path, path[0] ? "." : "", plan_role_name((PlanRole)role));
        if (!read_format(r, v, p, &fmt[role])) return false;
        if (role == PLAN_BIAS && (fmt[role].block == BQ_BLOCK_AUTO || fmt[role].block == BQ_BLOCK_ROW))
            return diag_error(r->d, at(r, "%s", p), "block '%s' is for input and weight: a bias has no K dimension",
                              fmt[role].block == BQ_BLOCK_ROW ? "row" : "auto");
        *sets |= (uint8_t)(1u << role);
    }
    return true;
}

static bool read_default(Reader *r, const cJSON *o)
{
    if (!cJSON_IsObject(o)) return diag_error(r->d, at(r, "default"), "expected an object {role: format}");
    static const char *const keys[] = {"input", "weight", "bias", NULL};
    return check_keys(r, o, "default", keys, "input, weight, bias") &&
           read_roles(r, o, "default", &r->p->def_sets, r->p->def);
}

static bool read_rule(Reader *r, const cJSON *o, uint32_t i, PlanRule *rule)
{
    char path[64];
    snprintf(path, sizeof path, "rules[%u]", i);
    if (!cJSON_IsObject(o)) return diag_error(r->d, at(r, "%s", path), "expected an object {\"match\"|\"kind\", role: format}");
    static const char *const keys[] = {"match", "kind", "input", "weight", "bias", NULL};
    if (!check_keys(r, o, path, keys, "match, kind, input, weight, bias")) return false;
    rule->kind = PLAN_ANY_KIND;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "match"), *k = cJSON_GetObjectItemCaseSensitive(o, "kind");
    if (m) {
        if (!cJSON_IsString(m)) return diag_error(r->d, at(r, "%s.match", path), "expected a string (a node-name glob)");
        rule->match = arena_strdup(r->a, m->valuestring);
    }
    if (k) {
        if (!cJSON_IsString(k) || (rule->kind = plan_kind_from_name(k->valuestring)) < 0)
            return diag_error(r->d, at(r, "%s.kind", path), "unknown kind %s%s%s (expected linear, attn_qk, attn_pv, lm_head)",
                              cJSON_IsString(k) ? "'" : "", cJSON_IsString(k) ? k->valuestring : "(not a string)",
                              cJSON_IsString(k) ? "'" : "");
    }
    if (!m && !k) return diag_error(r->d, at(r, "%s", path), "a rule needs \"match\" (a node-name glob) or \"kind\"");
    if (!read_roles(r, o, path, &rule->sets, rule->fmt)) return false;
    if (!rule->sets) return diag_error(r->d, at(r, "%s", path), "the rule sets no role (input, weight, bias)");
    if ((rule->kind == PLAN_ATTN_QK || rule->kind == PLAN_ATTN_PV) && (rule->sets >> PLAN_BIAS & 1))
        return diag_error(r->d, at(r, "%s.bias", path), "%s has no bias", plan_kind_name((PlanKind)rule->kind));
    return true;
}

static bool read_rules(Reader *r, const cJSON *a)
{
    if (!cJSON_IsArray(a)) return diag_error(r->d, at(r, "rules"), "expected an array of rules");
    int n = cJSON_GetArraySize(a);
    r->p->nrules = (uint32_t)n;
    r->p->rules = arena_alloc(r->a, (size_t)(n ? n : 1) * sizeof *r->p->rules);
    uint32_t i = 0;
    for (const cJSON *o = a->child; o; o = o->next, i++)
        if (!read_rule(r, o, i, &r->p->rules[i])) return false;
    return true;
}

/* Does any format with a block take block b? (powers of two in the families' common range;
 * int's longer blocks, multiples of 8 up to 4096, are for "row", not candidates, and its
 * powers of two are the others') */
static bool block_allowed(int b, int *lo, int *hi)
{
    static const char *const fams[] = {"bfp", "bm", "bl", "nf4"};
    bool ok = false;
    *lo = 1 << 30, *hi = 0;
    for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++)
        for (int s = 1; s <= 1 << 16; s <<= 1) {
            bq_format f;
            if (bq_format_make(fams[i], -1, -1, s, 0, &f, NULL, 0) != BQ_OK) continue;
            if (s < *lo) *lo = s;
            if (s > *hi) *hi = s;
            if (s == b) ok = true;
        }
    return ok;
}

static bool read_blocks(Reader *r, const cJSON *a, const char *role, PlanBlocks *out)
{
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) == 0)
        return diag_error(r->d, at(r, "block_size.%s", role), "expected a non-empty array of candidate block sizes");
    uint32_t i = 0;
    for (const cJSON *v = a->child; v; v = v->next, i++) {
        int b, lo, hi;
        if (i == PLAN_MAX_CAND) return diag_error(r->d, at(r, "block_size.%s", role), "more than %d candidates", PLAN_MAX_CAND);
        if (!int_value(v, &b)) return diag_error(r->d, at(r, "block_size.%s[%u]", role, i), "expected an integer block size");
        if (!block_allowed(b, &lo, &hi))
            return diag_error(r->d, at(r, "block_size.%s[%u]", role, i), "block %d is not a power of two in %d..%d", b, lo, hi);
        for (uint32_t j = 0; j < i; j++)
            if (out->size[j] == b) return diag_error(r->d, at(r, "block_size.%s[%u]", role, i), "block %d is listed twice", b);
        out->size[i] = (uint16_t)b;
    }
    out->n = i;
    return true;
}

static bool read_block_size(Reader *r, const cJSON *o)
{
    if (!cJSON_IsObject(o)) return diag_error(r->d, at(r, "block_size"), "expected an object {\"weight\": [...], \"input\": [...], \"target_sqnr_db\": dB}");
    static const char *const keys[] = {"weight", "input", "target_sqnr_db", NULL};
    if (!check_keys(r, o, "block_size", keys, "weight, input, target_sqnr_db")) return false;
    r->p->has_block_size = true;
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(o, "weight"), *in = cJSON_GetObjectItemCaseSensitive(o, "input");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "target_sqnr_db");
    if (w && !read_blocks(r, w, "weight", &r->p->blocks[PLAN_WEIGHT])) return false;
    if (in && !read_blocks(r, in, "input", &r->p->blocks[PLAN_INPUT])) return false;
    if (t) {
        if (!cJSON_IsNumber(t) || !isfinite(t->valuedouble))
            return diag_error(r->d, at(r, "block_size.target_sqnr_db"), "expected a number (dB)");
        r->p->target_sqnr_db = t->valuedouble;
    }
    return true;
}

/* An "auto" block needs the candidate list of its role. */
static bool check_auto(Reader *r, const char *path, uint8_t sets, const bq_format *fmt)
{
    for (int role = PLAN_INPUT; role <= PLAN_WEIGHT; role++) {
        if (!(sets >> role & 1) || fmt[role].block != 0 || r->p->blocks[role].n) continue;
        const char *rn = plan_role_name((PlanRole)role);
        return diag_error(r->d, at(r, "%s.%s", path, rn), "block 'auto' needs candidate sizes in block_size.%s", rn);
    }
    return true;
}

/* Line and column (1-based) of byte offset `off`. */
static void line_col(const char *text, size_t off, int *line, int *col)
{
    *line = 1, *col = 1;
    for (size_t i = 0; i < off; i++) {
        if (text[i] == '\n') ++*line, *col = 1;
        else ++*col;
    }
}

Plan *plan_parse(Diag *d, Arena *a, const char *path, const char *text, size_t len)
{
    Plan *p = arena_alloc(a, sizeof *p);
    p->path = arena_strdup(a, path);
    p->target_sqnr_db = PLAN_DEFAULT_TARGET_DB;
    Reader r = {.d = d, .a = a, .p = p};
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    size_t off = end && end >= text && end <= text + len ? (size_t)(end - text) : len;
    while (root && off < len && (text[off] == ' ' || text[off] == '\t' || text[off] == '\n' || text[off] == '\r')) off++;
    if (!root || off < len) {
        int line, col;
        line_col(text, off, &line, &col);
        char where[512];
        snprintf(where, sizeof where, "%s:%d:%d", path, line, col);
        diag_error(d, where, root ? "invalid JSON: unexpected text after the plan object" : "invalid JSON");
        cJSON_Delete(root);
        return NULL;
    }
    bool ok = true;
    static const char *const keys[] = {"default", "rules", "block_size", NULL};
    if (!cJSON_IsObject(root)) ok = diag_error(d, path, "a plan is a JSON object {\"default\": ..., \"rules\": [...], \"block_size\": ...}");
    ok = ok && check_keys(&r, root, "", keys, "default, rules, block_size");
    const cJSON *def = ok ? cJSON_GetObjectItemCaseSensitive(root, "default") : NULL;
    const cJSON *rules = ok ? cJSON_GetObjectItemCaseSensitive(root, "rules") : NULL;
    const cJSON *bs = ok ? cJSON_GetObjectItemCaseSensitive(root, "block_size") : NULL;
    ok = ok && (!bs || read_block_size(&r, bs)) && (!def || read_default(&r, def)) && (!rules || read_rules(&r, rules));
    ok = ok && check_auto(&r, "default", p->def_sets, p->def);
    for (uint32_t i = 0; ok && i < p->nrules; i++) {
        char rp[32];
        snprintf(rp, sizeof rp, "rules[%u]", i);
        ok = check_auto(&r, rp, p->rules[i].sets, p->rules[i].fmt);
    }
    cJSON_Delete(root);
    return ok ? p : NULL;
}

Plan *plan_read(Diag *d, Arena *a, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        diag_error(d, path, "cannot read the plan: %s", strerror(errno));
        return NULL;
    }
    char *text = NULL;
    size_t len = 0, cap = 0, k;
    char buf[65536];
    while ((k = fread(buf, 1, sizeof buf, f)) > 0) {
        if (len + k > cap) {
            cap = (len + k) * 2;
            char *t = realloc(text, cap);
            if (!t) unreachable("out of memory");
            text = t;
        }
        memcpy(text + len, buf, k);
        len += k;
    }
    bool err = ferror(f);
    fclose(f);
    Plan *p = NULL;
    if (err) diag_error(d, path, "cannot read the plan: read error");
    else p = plan_parse(d, a, path, text ? text : "", len);
    free(text);
    return p;
}

/* ---- the resolved plan ---- */

/* The glob that matches exactly `name` (fnmatch without FNM_NOESCAPE: '\' escapes). */
static char *glob_escape(const char *name)
{
    size_t n = strlen(name);
    char *s = malloc(2 * n + 1), *o = s;
    if (!s) unreachable("out of memory");
    for (const char *c = name; *c; c++) {
        if (*c == '*' || *c == '?' || *c == '[' || *c == ']' || *c == '\\') *o++ = '\\';
        *o++ = *c;
    }
    *o = 0;
    return s;
}

static bool add_format(cJSON *o, const char *key, const bq_format *f)
{
    char name[64];
    if (bq_format_name(f, name, sizeof name) < 0) return false;
    return cJSON_AddStringToObject(o, key, name) != NULL;
}

static bool same_formats(const PlanMatmul *a, const PlanMatmul *b)
{
    for (int r = 0; r < PLAN_NROLES; r++)
        if (!ir_format_eq(&a->fmt[r], &b->fmt[r])) return false;
    return true;
}

static void write_blocks(FILE *f, const char *key, const PlanBlocks *b, bool *first)
{
    if (!b->n) return;
    fprintf(f, "%s\"%s\": [", *first ? "" : ", ", key);
    for (uint32_t i = 0; i < b->n; i++) fprintf(f, "%s%u", i ? ", " : "", b->size[i]);
    fprintf(f, "]");
    *first = false;
}

bool plan_write(FILE *f, Diag *d, const IrGraph *g, const PlanMatmul *mm, uint32_t n, const Plan *src)
{
    bool ok = true, any_auto = false;
    fprintf(f, "{\n  \"rules\": [");
    uint32_t written = 0;
    for (uint32_t i = 0; i < n && ok; i++) {
        const IrNode *nd = &g->nodes[mm[i].node];
        const char *name = nd->name ? nd->name : "";
        bool dup = false;
        for (uint32_t j = 0; j < i && !dup; j++) {
            const IrNode *o = &g->nodes[mm[j].node];
            if (mm[j].kind != mm[i].kind || strcmp(o->name ? o->name : "", name) != 0) continue;
            dup = true;
            if (!same_formats(&mm[i], &mm[j])) {
                char where[768];
                ok = diag_error(d, ir_where_node(g, mm[i].node, where, sizeof where),
                                "cannot write the resolved plan: another node of the same name has other formats");
            }
        }
        if (dup) continue;
        char *glob = glob_escape(name);
        cJSON *o = cJSON_CreateObject();
        ok = o && cJSON_AddStringToObject(o, "match", glob) && cJSON_AddStringToObject(o, "kind", plan_kind_name(mm[i].kind));
        free(glob);
        for (int r = 0; r < PLAN_NROLES && ok; r++) {
            if (!plan_format_attr((IrNode *)nd, mm[i].kind, (PlanRole)r)) continue;
            any_auto |= mm[i].fmt[r].block == 0;
            ok = add_format(o, plan_role_name((PlanRole)r), &mm[i].fmt[r]);
        }
        char *s = ok ? cJSON_PrintUnformatted(o) : NULL;
        if (s) fprintf(f, "%s\n    %s", written++ ? "," : "", s);
        else if (ok) ok = diag_error(d, NULL, "out of memory writing the plan");
        cJSON_free(s);
        cJSON_Delete(o);
    }
    fprintf(f, "%s]", written ? "\n  " : "");
    if (ok && any_auto) {
        if (!src || !src->has_block_size)
            return diag_error(d, NULL, "cannot write the resolved plan: an operand's block is still 'auto' (run block-size)");
        bool first = true;
        fprintf(f, ",\n  \"block_size\": {");
        write_blocks(f, "weight", &src->blocks[PLAN_WEIGHT], &first);
        write_blocks(f, "input", &src->blocks[PLAN_INPUT], &first);
        fprintf(f, "%s\"target_sqnr_db\": %.17g}", first ? "" : ", ", src->target_sqnr_db);
    }
    fprintf(f, "\n}\n");
    return ok;
}
