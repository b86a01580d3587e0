/* models/dit/standin.c — the generalist stand-in: OpenVLA's 256-bin discretisation of the
 * ground-truth actions with optional corruption, and latents from a file or zeros.
 * See standin.h for the scheme and the file format. */
#include "models/dit/standin.h"
#include "tensor/safetensors.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct dv_standin {
    dv_standin_config sc;
    int64_t tokens, dim;     /* T, D of the specialist's config */
    dv_tensor *latents;      /* (T, D) or (F, T, D) f32, or NULL (zeros) */
    int64_t *frame_ids;      /* (F) sorted ascending, with perm: latents row of each */
    int64_t *rows;
    int64_t nframes;         /* 0 for one shared set */
};

/* numpy.linspace(-1, 1, bins)[i]: start + i * step, the last edge exactly 1 */
static double edge(int i, int bins) {
    if (i == bins - 1) return 1.0;
    double step = 2.0 / (bins - 1);
    return i * step - 1.0;
}

int dv_action_bin(double x, int bins) {
    DV_ASSERT(bins >= 2, "dv_action_bin: bins %d < 2", bins);
    if (!(x >= -1.0)) x = -1.0;   /* NaN goes to the first bin as well */
    if (x > 1.0) x = 1.0;
    /* numpy.digitize(x, edges) = number of edges <= x (edges ascending, right=False) */
    int lo = 0, hi = bins;        /* answer in [lo, hi] */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (edge(mid, bins) <= x) lo = mid + 1;
        else hi = mid;
    }
    int b = lo - 1;               /* digitize - 1 */
    return b < 0 ? 0 : b > bins - 1 ? bins - 1 : b;
}

double dv_action_bin_center(int bin, int bins) {
    DV_ASSERT(bins >= 2, "dv_action_bin_center: bins %d < 2", bins);
    if (bin < 0) bin = 0;
    if (bin > bins - 2) bin = bins - 2;   /* 255 intervals for 256 edges */
    return (edge(bin, bins) + edge(bin + 1, bins)) / 2.0;
}

double dv_action_quantise(double x, int bins) {
    return dv_action_bin_center(dv_action_bin(x, bins), bins);
}

dv_standin_config dv_standin_config_default(void) {
    dv_standin_config c = {.bins = 256, .corrupt = 0.0};
    return c;
}

static int cmp_pair(const void *a, const void *b) {
    const int64_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

static int load_latents(dv_standin *s, const char *path, char *err, size_t errlen) {
    dv_st_file *f = NULL;
    if (dv_st_open(path, &f, err, errlen)) return -1;
    dv_tensor *lat = NULL, *ids = NULL;
    int rc = -1;
    if (dv_st_get(f, "latents", DV_ST_WIDEN | DV_ST_COPY, &lat, err, errlen)) goto out;
    if (lat->dtype != DV_F32) {
        dv_errf(err, errlen, "%s: tensor 'latents' is %s, expected F32 (or F16/BF16)", path,
                dv_dtype_name(lat->dtype));
        goto out;
    }
    int nd = lat->ndim;
    if ((nd != 2 && nd != 3) || lat->shape[nd - 2] != s->tokens || lat->shape[nd - 1] != s->dim) {
        dv_errf(err, errlen, "%s: tensor 'latents' has shape %s, expected (%lld, %lld) or "
                "(frames, %lld, %lld) (gen_latent_tokens, gen_latent_dim)", path,
                dv_shape_str(lat, NULL, 0), (long long)s->tokens, (long long)s->dim,
                (long long)s->tokens, (long long)s->dim);
        goto out;
    }
    if (nd == 3) {
        if (dv_st_get(f, "frame_ids", DV_ST_COPY, &ids, err, errlen)) {
            dv_errf(err, errlen, "%s: 'latents' is per frame (3-D) but there is no 'frame_ids' tensor", path);
            goto out;
        }
        if (ids->dtype != DV_I64 || ids->ndim != 1 || ids->shape[0] != lat->shape[0]) {
            dv_errf(err, errlen, "%s: 'frame_ids' is %s %s, expected I64 (%lld)", path,
                    dv_dtype_name(ids->dtype), dv_shape_str(ids, NULL, 0), (long long)lat->shape[0]);
            goto out;
        }
        int64_t F = lat->shape[0];
        int64_t *pairs = malloc(sizeof(int64_t) * 2 * (F ? F : 1));
        const int64_t *id = dv_data(ids);
        for (int64_t i = 0; i < F; i++) pairs[2 * i] = id[i], pairs[2 * i + 1] = i;
        qsort(pairs, F, 2 * sizeof(int64_t), cmp_pair);
        s->frame_ids = malloc(sizeof(int64_t) * (F ? F : 1));
        s->rows = malloc(sizeof(int64_t) * (F ? F : 1));
        for (int64_t i = 0; i < F; i++) {
            s->frame_ids[i] = pairs[2 * i], s->rows[i] = pairs[2 * i + 1];
            if (i && s->frame_ids[i] == s->frame_ids[i - 1]) {
                dv_errf(err, errlen, "%s: 'frame_ids' holds frame %lld twice", path, (long long)s->frame_ids[i]);
                free(pairs);
                goto out;
            }
        }
        free(pairs);
        s->nframes = F;
    }
    s->latents = dv_retain(lat);
    rc = 0;
out:
    dv_release(lat);
    dv_release(ids);
    dv_st_close(f);
    return rc;
}

int dv_standin_new(const dv_standin_config *sc, const dv_dit_config *cfg, dv_standin **out,
                   char *err, size_t errlen) {
    *out = NULL;
    if (sc->bins < 2 || sc->bins > 65536)
        return dv_errf(err, errlen, "standin.bins = %d: expected 2 .. 65536 (OpenVLA: 256)", sc->bins);
    if (!(sc->corrupt >= 0.0 && sc->corrupt <= 1.0))
        return dv_errf(err, errlen, "standin.corrupt = %g: expected a probability in [0, 1]", sc->corrupt);
    dv_standin *s = calloc(1, sizeof *s);
    s->sc = *sc;
    s->tokens = cfg->gen_latent_tokens;
    s->dim = cfg->gen_latent_dim;
    if (sc->latents_path[0]) {
        if (s->dim <= 0 || s->tokens <= 0) {
            dv_standin_free(s);
            return dv_errf(err, errlen, "standin.latents = %s, but the specialist takes no generalist "
                           "latents (gen_latent_dim %d, gen_latent_tokens %d)", sc->latents_path,
                           cfg->gen_latent_dim, cfg->gen_latent_tokens);
        }
        if (load_latents(s, sc->latents_path, err, errlen)) { dv_standin_free(s); return -1; }
    }
    *out = s;
    return 0;
}

void dv_standin_free(dv_standin *s) {
    if (!s) return;
    dv_release(s->latents);
    free(s->frame_ids);
    free(s->rows);
    free(s);
}

void dv_standin_describe(const dv_standin *s, FILE *f) {
    fprintf(f, "generalist: STAND-IN (train.generalist = standin; no generalist model yet): its actions are the ground truth "
               "quantised to %d OpenVLA bins over [-1, 1], %.1f%% of action dimensions replaced "
               "by a random bin; ", s->sc.bins, 100.0 * s->sc.corrupt);
    if (s->dim <= 0 || s->tokens <= 0) fprintf(f, "no latents (gen_latent_dim 0)\n");
    else if (!s->latents) fprintf(f, "latents (%lld x %lld) are zeros\n", (long long)s->tokens, (long long)s->dim);
    else if (!s->nframes) fprintf(f, "latents (%lld x %lld) from %s, shared by every frame\n",
                                  (long long)s->tokens, (long long)s->dim, s->sc.latents_path);
    else fprintf(f, "latents (%lld x %lld) from %s, per frame (%lld frames)\n", (long long)s->tokens,
                 (long long)s->dim, s->sc.latents_path, (long long)s->nframes);
}

dv_tensor *dv_standin_actions(const dv_standin *s, dv_tensor *gt, dv_rng *rng) {
    DV_ASSERT(gt->ndim == 3, "dv_standin_actions: expected (B, k_g, A), got %s", dv_shape_str(gt, NULL, 0));
    dv_tensor *x = dv_cast(gt, DV_F32), *xc = dv_contiguous(x);
    dv_release(x);
    int64_t n = dv_numel(xc);
    dv_tensor *out = dv_empty(DV_F32, gt->shape, 3);
    /* both draws always happen, so the rng advances the same whatever corrupt is */
    dv_tensor *coin = dv_rand(rng, DV_F32, DV_SHAPE(n));
    dv_tensor *rbin = dv_randint(rng, DV_I32, 0, s->sc.bins, DV_SHAPE(n));
    const float *src = dv_data(xc), *c = dv_data(coin);
    const int32_t *rb = dv_data(rbin);
    float *dst = dv_data(out);
    for (int64_t i = 0; i < n; i++) {
        int b = c[i] < s->sc.corrupt ? rb[i] : dv_action_bin(src[i], s->sc.bins);
        dst[i] = (float)dv_action_bin_center(b, s->sc.bins);
    }
    dv_release(coin);
    dv_release(rbin);
    dv_release(xc);
    return out;
}

int dv_standin_latents(const dv_standin *s, const int64_t *frame, int64_t B, dv_tensor **out,
                       char *err, size_t errlen) {
    *out = NULL;
    if (s->dim <= 0 || s->tokens <= 0) return 0;
    dv_tensor *t = dv_zeros(DV_F32, DV_SHAPE(B, s->tokens, s->dim));
    if (s->latents) {
        int64_t per = s->tokens * s->dim;
        float *dst = dv_data(t);
        const float *src = dv_data(s->latents);
        for (int64_t b = 0; b < B; b++) {
            int64_t row = 0;
            if (s->nframes) {
                int64_t lo = 0, hi = s->nframes;
                while (lo < hi) {
                    int64_t mid = (lo + hi) / 2;
                    if (s->frame_ids[mid] < frame[b]) lo = mid + 1;
                    else hi = mid;
                }
                if (lo == s->nframes || s->frame_ids[lo] != frame[b]) {
                    dv_release(t);
                    return dv_errf(err, errlen, "%s: no latents for frame %lld (not in 'frame_ids')",
                                   s->sc.latents_path, (long long)frame[b]);
                }
                row = s->rows[lo];
            }
            memcpy(dst + b * per, src + row * per, sizeof(float) * per);
        }
    }
    *out = t;
    return 0;
}
