/* nn/params.c — the parameter registry: hierarchical names, lookup, freezing by pattern,
 * counts, and loading / saving by name through safetensors. See nn/module.h. */
#include "nn/module.h"

#include "tensor/cuda.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void dv_reg_push(dv_registry *r, const char *fmt, ...) {
    DV_ASSERT(r->depth < DV_REG_MAX_DEPTH, "dv_reg_push: scopes nested deeper than %d", DV_REG_MAX_DEPTH);
    int len = (int)strlen(r->prefix);
    r->prefix_len[r->depth++] = len;
    char part[DV_REG_MAX_NAME];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(part, sizeof part, fmt, ap);
    va_end(ap);
    int n = snprintf(r->prefix + len, sizeof r->prefix - (size_t)len, "%s%s", len ? "." : "", part);
    DV_ASSERT(len + n < (int)sizeof r->prefix, "dv_reg_push: name longer than %d: %s...",
              DV_REG_MAX_NAME, r->prefix);
}

void dv_reg_pop(dv_registry *r) {
    DV_ASSERT(r->depth > 0, "dv_reg_pop: no scope to leave");
    r->prefix[r->prefix_len[--r->depth]] = '\0';
}

static void *reg_realloc(void *p, size_t bytes) {
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q) dv_panic("registry: out of memory (%zu bytes)", bytes);
    return q;
}

dv_tensor *dv_reg_add(dv_registry *r, const char *name, dv_tensor **slot, dv_tensor *t) {
    DV_ASSERT(t, "dv_reg_add: NULL tensor for '%s'", name);
    char full[DV_REG_MAX_NAME];
    int n = snprintf(full, sizeof full, "%s%s%s", r->prefix, r->prefix[0] && name[0] ? "." : "", name);
    DV_ASSERT(n < (int)sizeof full && n > 0, "dv_reg_add: bad or too long name '%s.%s'", r->prefix, name);
    DV_ASSERT(dv_reg_find(r, full) < 0, "dv_reg_add: parameter '%s' registered twice", full);
    DV_ASSERT(!t->grad_fn, "dv_reg_add: '%s' is the result of an op, not a leaf", full);
    dv_params_add(&r->params, full, t);
    dv_release(t); /* the list retained it: that is the reference we were given */
    if (r->params.n > r->cap) {
        r->cap = r->params.cap;
        r->slots = reg_realloc(r->slots, sizeof(*r->slots) * (size_t)r->cap);
        r->frozen = reg_realloc(r->frozen, sizeof(*r->frozen) * (size_t)r->cap);
    }
    int i = r->params.n - 1;
    r->slots[i] = slot;
    if (slot) *slot = t;
    bool trainable = t->dtype == DV_F32 || t->dtype == DV_F64;
    r->frozen[i] = !trainable;
    dv_set_requires_grad(t, trainable);
    return t;
}

void dv_reg_free(dv_registry *r) {
    for (int i = 0; i < r->params.n; i++)
        if (r->slots[i] && *r->slots[i] == r->params.tensors[i]) *r->slots[i] = NULL;
    dv_params_free(&r->params);
    free(r->slots);
    free(r->frozen);
    memset(r, 0, sizeof *r);
}

int dv_reg_count(const dv_registry *r) { return r->params.n; }

const char *dv_reg_name(const dv_registry *r, int i) {
    DV_ASSERT(i >= 0 && i < r->params.n, "dv_reg_name: index %d of %d", i, r->params.n);
    return r->params.names[i];
}

dv_tensor *dv_reg_tensor(const dv_registry *r, int i) {
    DV_ASSERT(i >= 0 && i < r->params.n, "dv_reg_tensor: index %d of %d", i, r->params.n);
    return r->params.tensors[i];
}

int dv_reg_find(const dv_registry *r, const char *name) {
    for (int i = 0; i < r->params.n; i++)
        if (strcmp(r->params.names[i], name) == 0) return i;
    return -1;
}

dv_tensor *dv_reg_get(const dv_registry *r, const char *name) {
    int i = dv_reg_find(r, name);
    return i < 0 ? NULL : r->params.tensors[i];
}

/* glob: '*' any run (dots included), '?' one character; recursive with backtracking on '*' */
static bool glob(const char *p, const char *s) {
    for (; *p; p++, s++) {
        if (*p == '*') {
            while (p[1] == '*') p++;
            if (!p[1]) return true;
            for (; *s; s++)
                if (glob(p + 1, s)) return true;
            return false;
        }
        if (!*s || (*p != '?' && *p != *s)) return false;
    }
    return *s == '\0';
}

bool dv_reg_match(const char *pattern, const char *name) {
    if (strpbrk(pattern, "*?")) return glob(pattern, name);
    size_t n = strlen(pattern);
    return strncmp(pattern, name, n) == 0 && (name[n] == '\0' || name[n] == '.');
}

int dv_reg_freeze(dv_registry *r, const char *pattern, bool frozen) {
    int count = 0;
    for (int i = 0; i < r->params.n; i++) {
        if (!dv_reg_match(pattern, r->params.names[i])) continue;
        dv_tensor *t = r->params.tensors[i];
        DV_ASSERT(frozen || t->dtype == DV_F32 || t->dtype == DV_F64,
                  "dv_reg_freeze: cannot unfreeze '%s': it is %s (only f32/f64 train)",
                  r->params.names[i], dv_dtype_name(t->dtype));
        r->frozen[i] = frozen;
        dv_set_requires_grad(t, !frozen);
        if (frozen) dv_zero_grad(t);
        count++;
    }
    return count;
}

bool dv_reg_is_frozen(const dv_registry *r, int i) {
    DV_ASSERT(i >= 0 && i < r->params.n, "dv_reg_is_frozen: index %d of %d", i, r->params.n);
    return r->frozen[i];
}

void dv_reg_trainable(const dv_registry *r, dv_params *out) {
    for (int i = 0; i < r->params.n; i++)
        if (!r->frozen[i]) dv_params_add(out, r->params.names[i], r->params.tensors[i]);
}

int64_t dv_reg_numel(const dv_registry *r, bool trainable_only) {
    int64_t n = 0;
    for (int i = 0; i < r->params.n; i++)
        if (!trainable_only || !r->frozen[i]) n += dv_numel(r->params.tensors[i]);
    return n;
}

void dv_reg_print_summary(const dv_registry *r, FILE *f) {
    /* group by the first name component, in order of first appearance */
    int n = r->params.n, ng = 0;
    char (*group)[128] = reg_realloc(NULL, sizeof(*group) * (size_t)(n ? n : 1));
    int64_t *tr = calloc((size_t)(n ? n : 1), sizeof *tr), *tot = calloc((size_t)(n ? n : 1), sizeof *tot);
    if (!tr || !tot) dv_panic("registry: out of memory");
    for (int i = 0; i < n; i++) {
        const char *name = r->params.names[i];
        size_t len = strcspn(name, ".");
        if (len >= sizeof group[0]) len = sizeof group[0] - 1;
        int g = 0;
        while (g < ng && (strlen(group[g]) != len || strncmp(group[g], name, len))) g++;
        if (g == ng) {
            memcpy(group[g], name, len);
            group[g][len] = '\0';
            ng++;
        }
        int64_t k = dv_numel(r->params.tensors[i]);
        tot[g] += k;
        if (!r->frozen[i]) tr[g] += k;
    }
    fprintf(f, "%-32s %15s %15s\n", "parameters", "trainable", "total");
    for (int g = 0; g < ng; g++)
        fprintf(f, "%-32s %15lld %15lld\n", group[g], (long long)tr[g], (long long)tot[g]);
    fprintf(f, "%-32s %15lld %15lld\n", "(all)", (long long)dv_reg_numel(r, true),
            (long long)dv_reg_numel(r, false));
    free(group), free(tr), free(tot);
}

static bool is_half(int dt) { return dt == DV_F16 || dt == DV_BF16; }

int dv_reg_load(dv_registry *r, dv_st_file *f, int flags, int *n_missing, int *n_unexpected,
                char *err, size_t errlen) {
    bool strict = flags & DV_REG_STRICT;
    int n = r->params.n, missing = 0, unexpected = 0;
    int *idx = reg_realloc(NULL, sizeof(int) * (size_t)(n ? n : 1));
    const char *file = dv_st_count(f) ? dv_st_info_at(f, 0)->file : "(empty file)";
    /* pass 1: check everything */
    for (int i = 0; i < n; i++) {
        const char *name = r->params.names[i];
        dv_tensor *p = r->params.tensors[i];
        idx[i] = dv_st_find(f, name);
        if (idx[i] < 0) {
            if (strict) {
                snprintf(err, errlen, "%s: missing tensor '%s' (parameter %s %s)", file, name,
                         dv_shape_str(p, NULL, 0), dv_dtype_name(p->dtype));
                free(idx);
                return -1;
            }
            missing++;
            continue;
        }
        const dv_st_info *in = dv_st_info_at(f, idx[i]);
        bool same = in->ndim == p->ndim;
        for (int d = 0; same && d < p->ndim; d++) same = in->shape[d] == p->shape[d];
        if (!same) {
            char fs[160] = "(";
            for (int d = 0; d < in->ndim; d++)
                snprintf(fs + strlen(fs), sizeof fs - strlen(fs), "%s%lld", d ? ", " : "", (long long)in->shape[d]);
            strncat(fs, ")", sizeof fs - strlen(fs) - 1);
            snprintf(err, errlen, "%s: tensor '%s' has shape %s in the file but the parameter is %s",
                     in->file, name, fs, dv_shape_str(p, NULL, 0));
            free(idx);
            return -1;
        }
        if (in->dtype < 0 || !dv_dtype_is_float((dv_dtype)in->dtype)) {
            snprintf(err, errlen, "%s: tensor '%s' is %s, not a float dtype that can fill a %s parameter",
                     in->file, name, in->dtype_name, dv_dtype_name(p->dtype));
            free(idx);
            return -1;
        }
    }
    for (int j = 0; j < dv_st_count(f); j++) {
        const dv_st_info *in = dv_st_info_at(f, j);
        if (dv_reg_find(r, in->name) >= 0) continue;
        if (strict) {
            snprintf(err, errlen, "%s: unexpected tensor '%s' (no parameter has that name)", in->file, in->name);
            free(idx);
            return -1;
        }
        unexpected++;
    }
    /* pass 2: load (copies cannot fail; a dtype we checked above loads) */
    for (int i = 0; i < n; i++) {
        if (idx[i] < 0) continue;
        dv_tensor *p = r->params.tensors[i];
        const dv_st_info *in = dv_st_info_at(f, idx[i]);
        bool keep = (flags & DV_REG_KEEP_HALF) && r->frozen[i] && is_half(in->dtype) && p->dtype == DV_F32;
        dv_tensor *t = NULL;
        if (dv_st_load(f, idx[i], 0, &t, err, errlen)) {
            free(idx);
            return -1; /* not reached for a checked file; earlier parameters are already loaded */
        }
        if (keep) {
            if (r->slots[i] && *r->slots[i] == p) *r->slots[i] = t;
            dv_release(p);
            r->params.tensors[i] = t; /* the list's reference */
        } else {
            dv_copy_(p, t);
            dv_release(t);
        }
    }
    free(idx);
    if (n_missing) *n_missing = missing;
    if (n_unexpected) *n_unexpected = unexpected;
    return 0;
}

int dv_reg_save(const dv_registry *r, const char *path, char *err, size_t errlen) {
    return dv_st_save(path, (const char *const *)r->params.names, r->params.tensors, r->params.n,
                      NULL, 0, err, errlen);
}

/* every parameter to device d, in place (tensor/cuda.h dv_tensor_move_): the layers' fields
 * and the optimiser lists keep pointing at the same tensor structs. Create the optimiser
 * after the move, so its state is allocated on the device. */
void dv_reg_to(dv_registry *r, dv_device d) { dv_tensors_move_(r->params.tensors, r->params.n, d); }
