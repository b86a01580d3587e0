/* data/calvin/samples.c — what the three sample kinds share: which frames of an annotated
 * window are samples, batch sizes in bytes, freeing batches, and the trajectory maths
 * (scipy's not-a-knot cubic spline, calvin_env's wrapped angle difference).
 *
 * Which frames are samples (per annotation [start, end]):
 *   DiT   starts s = start .. max(start, end + 1 - span), span = max(chunk + max_latency,
 *         gen_chunk): the released RoboDual code draws s from [start, end - span) and
 *         loads s .. s + span - 1, never using a window's last frame; here the last frame
 *         may be used.
 *   3DDA  t = start, start + execute_every, ... <= end - 1 (package_calvin.py drops the
 *         window's last frame before subsampling); a one-frame window gives t = start.
 *   MLLM  t = start, start + every, ... <= end: one latent per `every` frames.
 */
#include "data/calvin/samples.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int64_t dv_calvin_samples_of(const dv_calvin *d, const dv_calvin_loader_opts *o, int32_t a,
                             dv_calvin_sample *out, int64_t cap) {
    const dv_calvin_ann *w = dv_calvin_annotation(d, a);
    int64_t len = w->end - w->start + 1, stride = 1, last = 0; /* offsets 0, stride, ... <= last */
    switch (o->kind) {
    case DV_CALVIN_DIT: {
        int64_t span = o->dit.chunk + o->dit.max_latency;
        if (o->dit.gen_chunk > span) span = o->dit.gen_chunk;
        last = len - span > 0 ? len - span : 0;
        break;
    }
    case DV_CALVIN_3DDA:
        stride = o->dda.execute_every;
        last = len > 1 ? len - 2 : 0;
        break;
    case DV_CALVIN_MLLM:
        stride = o->mllm_every;
        last = len - 1;
        break;
    }
    int64_t n = last / stride + 1;
    for (int64_t k = 0; k < n && k < cap && out; k++) out[k] = (dv_calvin_sample){a, (int32_t)(k * stride)};
    return n;
}

static void release(dv_tensor **t) { dv_release(*t); *t = NULL; }

void dv_calvin_batch_free(dv_calvin_kind kind, void *batch) {
    if (!batch) return;
    if (kind == DV_CALVIN_DIT) {
        dv_calvin_dit_batch *b = batch;
        release(&b->rgb_static), release(&b->rgb_gripper), release(&b->depth_static);
        release(&b->depth_gripper), release(&b->proprio), release(&b->actions), release(&b->gen_actions);
        free(b->tau), free(b->frame), free(b->instruction);
        memset(b, 0, sizeof *b);
    } else if (kind == DV_CALVIN_3DDA) {
        dv_calvin_3dda_batch *b = batch;
        release(&b->rgb), release(&b->pcd), release(&b->gripper_hist), release(&b->trajectory);
        release(&b->traj_mask);
        free(b->frame), free(b->instruction);
        memset(b, 0, sizeof *b);
    } else {
        dv_calvin_mllm_batch *b = batch;
        release(&b->rgb_static);
        free(b->frame), free(b->serves), free(b->instruction);
        memset(b, 0, sizeof *b);
    }
}

int64_t dv_calvin_batch_bytes(const dv_calvin_loader_opts *o) {
    int64_t B = o->batch, px;
    switch (o->kind) {
    case DV_CALVIN_DIT:
        px = (int64_t)o->dit.image_size * o->dit.image_size;
        return B * 4 * (px * (3 * o->dit.static_frames + 3 + 2) + o->dit.proprio_dim +
                        7 * (o->dit.chunk + o->dit.gen_chunk));
    case DV_CALVIN_3DDA: {
        int64_t s = o->dda.image_size > 0 ? o->dda.image_size : 200 - 2 * o->dda.crop;
        return B * 4 * (2 * 2 * 3 * s * s + 8 * (o->dda.nhist + o->dda.traj_len) + o->dda.traj_len);
    }
    case DV_CALVIN_MLLM:
        return B * 4 * 3 * (int64_t)o->mllm_size * o->mllm_size;
    }
    return 0;
}

double dv_angle_diff(double a, double b) {
    double d = fmod(b - a + M_PI, 2 * M_PI);
    if (d < 0) d += 2 * M_PI; /* Python's % is a floor modulo */
    return d - M_PI;
}

/* solve the dense n x n system A x = r in place (partial pivoting; n is small) */
static void solve(double *A, double *r, int n) {
    for (int k = 0; k < n; k++) {
        int p = k;
        for (int i = k + 1; i < n; i++) if (fabs(A[i * n + k]) > fabs(A[p * n + k])) p = i;
        if (p != k) {
            for (int j = 0; j < n; j++) { double t = A[k * n + j]; A[k * n + j] = A[p * n + j]; A[p * n + j] = t; }
            double t = r[k]; r[k] = r[p]; r[p] = t;
        }
        for (int i = k + 1; i < n; i++) {
            double f = A[i * n + k] / A[k * n + k];
            if (f == 0) continue;
            for (int j = k; j < n; j++) A[i * n + j] -= f * A[k * n + j];
            r[i] -= f * r[k];
        }
    }
    for (int k = n - 1; k >= 0; k--) {
        double s = r[k];
        for (int j = k + 1; j < n; j++) s -= A[k * n + j] * r[j];
        r[k] = s / A[k * n + k];
    }
}

void dv_spline_resample(const double *y, int n, double *out, int m) {
    DV_ASSERT(n >= 1 && n <= 256 && m >= 1, "dv_spline_resample: n = %d (1..256), m = %d", n, m);
    if (n == 1) { for (int i = 0; i < m; i++) out[i] = y[0]; return; }
    double h = 1.0 / (n - 1);
    /* second derivatives M_i at the knots */
    double M[256] = {0};
    if (n == 3) {
        M[0] = M[1] = M[2] = (y[0] - 2 * y[1] + y[2]) / (h * h); /* the parabola through 3 points */
    } else if (n >= 4) {
        double *A = calloc((size_t)n * n, sizeof(double));
        A[0] = 1, A[1] = -2, A[2] = 1; /* not-a-knot: S''' continuous at x_1 */
        M[0] = 0;
        for (int i = 1; i < n - 1; i++) {
            A[i * n + i - 1] = 1, A[i * n + i] = 4, A[i * n + i + 1] = 1;
            M[i] = 6 * (y[i + 1] - 2 * y[i] + y[i - 1]) / (h * h);
        }
        A[(n - 1) * n + n - 3] = 1, A[(n - 1) * n + n - 2] = -2, A[(n - 1) * n + n - 1] = 1; /* ... and x_{n-2} */
        M[n - 1] = 0;
        solve(A, M, n);
        free(A);
    }
    for (int i = 0; i < m; i++) {
        double x = m == 1 ? 0 : (double)i / (m - 1);
        int k = (int)(x / h);
        if (k > n - 2) k = n - 2;
        double t = x - k * h;
        double b = (y[k + 1] - y[k]) / h - h * (2 * M[k] + M[k + 1]) / 6;
        out[i] = y[k] + b * t + M[k] / 2 * t * t + (M[k + 1] - M[k]) / (6 * h) * t * t * t;
    }
}
