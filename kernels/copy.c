/* kernels/copy.c — portable strided copy / cast / fill.
 *
 * The iteration collapses the shape to (outer rows) x (inner run) where the inner run is the
 * last dim; rows are split across OpenMP threads when there is enough work. Same-dtype unit-
 * stride runs are memcpy; other pairs convert element by element through typed loops.
 */
#include "kernels/copy.h"
#include "kernels/half.h"

#include <string.h>

static const int k_size[] = {4, 8, 2, 2, 4, 8, 1, 1};

static inline double load_as_f64(int dt, const char *p) {
    switch (dt) {
    case DV_K_F32: return *(const float *)p;
    case DV_K_F64: return *(const double *)p;
    case DV_K_F16: return dv_f16_to_f32(*(const uint16_t *)p);
    case DV_K_BF16: return dv_bf16_to_f32(*(const uint16_t *)p);
    case DV_K_I32: return *(const int32_t *)p;
    case DV_K_I64: return (double)*(const int64_t *)p;
    case DV_K_U8: return *(const uint8_t *)p;
    default: return *(const uint8_t *)p != 0;
    }
}

static inline void store_f64(int dt, char *p, double v) {
    switch (dt) {
    case DV_K_F32: *(float *)p = (float)v; break;
    case DV_K_F64: *(double *)p = v; break;
    case DV_K_F16: *(uint16_t *)p = dv_f32_to_f16((float)v); break;
    case DV_K_BF16: *(uint16_t *)p = dv_f32_to_bf16((float)v); break;
    case DV_K_I32: *(int32_t *)p = (int32_t)v; break;
    case DV_K_I64: *(int64_t *)p = (int64_t)v; break;
    case DV_K_U8: *(uint8_t *)p = (uint8_t)v; break;
    default: *(uint8_t *)p = v != 0; break;
    }
}

/* one run of n elements */
static void copy_run(int64_t n, int ddt, char *d, int64_t ds, int sdt, const char *s, int64_t ss) {
    if (ddt == sdt && ds == 1 && ss == 1) {
        memcpy(d, s, (size_t)n * k_size[ddt]);
        return;
    }
    if (ddt == DV_K_F32 && sdt == DV_K_F32) {
        float *D = (float *)d; const float *S = (const float *)s;
        for (int64_t i = 0; i < n; i++) D[i * ds] = S[i * ss];
    } else if (ddt == DV_K_F64 && sdt == DV_K_F64) {
        double *D = (double *)d; const double *S = (const double *)s;
        for (int64_t i = 0; i < n; i++) D[i * ds] = S[i * ss];
    } else if (ddt == DV_K_F32 && sdt == DV_K_F64) {
        float *D = (float *)d; const double *S = (const double *)s;
        for (int64_t i = 0; i < n; i++) D[i * ds] = (float)S[i * ss];
    } else if (ddt == DV_K_F64 && sdt == DV_K_F32) {
        double *D = (double *)d; const float *S = (const float *)s;
        for (int64_t i = 0; i < n; i++) D[i * ds] = S[i * ss];
    } else if (ddt == DV_K_F32 && sdt == DV_K_F16) {
        float *D = (float *)d; const uint16_t *S = (const uint16_t *)s;
        for (int64_t i = 0; i < n; i++) D[i * ds] = dv_f16_to_f32(S[i * ss]);
    } else if (ddt == DV_K_F32 && sdt == DV_K_BF16) {
        float *D = (float *)d; const uint16_t *S = (const uint16_t *)s;
        for (int64_t i = 0; i < n; i++) D[i * ds] = dv_bf16_to_f32(S[i * ss]);
    } else if (ddt == DV_K_F16 && sdt == DV_K_F32) {
        uint16_t *D = (uint16_t *)d; const float *S = (const float *)s;
        for (int64_t i = 0; i < n; i++) D[i * ds] = dv_f32_to_f16(S[i * ss]);
    } else if (ddt == DV_K_BF16 && sdt == DV_K_F32) {
        uint16_t *D = (uint16_t *)d; const float *S = (const float *)s;
        for (int64_t i = 0; i < n; i++) D[i * ds] = dv_f32_to_bf16(S[i * ss]);
    } else if (ddt == sdt) {
        int es = k_size[ddt];
        for (int64_t i = 0; i < n; i++) memcpy(d + i * ds * es, s + i * ss * es, (size_t)es);
    } else if (ddt == DV_K_I64 && (sdt == DV_K_I32 || sdt == DV_K_U8 || sdt == DV_K_BOOL)) {
        int64_t *D = (int64_t *)d;
        for (int64_t i = 0; i < n; i++)
            D[i * ds] = sdt == DV_K_I32 ? ((const int32_t *)s)[i * ss] : ((const uint8_t *)s)[i * ss];
    } else {
        int des = k_size[ddt], ses = k_size[sdt];
        for (int64_t i = 0; i < n; i++) store_f64(ddt, d + i * ds * des, load_as_f64(sdt, s + i * ss * ses));
    }
}

/* offsets of row r (all dims but the last) */
static void row_offsets(int ndim, const int64_t *shape, int64_t r, const int64_t *s1,
                        const int64_t *s2, int64_t *o1, int64_t *o2) {
    int64_t a = 0, b = 0;
    for (int d = ndim - 2; d >= 0; d--) {
        int64_t i = r % shape[d];
        r /= shape[d];
        a += i * s1[d];
        if (s2) b += i * s2[d];
    }
    *o1 = a;
    *o2 = b;
}

void dv_copy_strided_portable(int ndim, const int64_t *shape, int dst_dt, void *dst,
                              const int64_t *dst_stride, int src_dt, const void *src,
                              const int64_t *src_stride) {
    if (ndim == 0) {
        copy_run(1, dst_dt, dst, 1, src_dt, src, 1);
        return;
    }
    int64_t inner = shape[ndim - 1], rows = 1;
    for (int d = 0; d < ndim - 1; d++) rows *= shape[d];
    if (inner == 0 || rows == 0) return;
    int64_t ds = dst_stride[ndim - 1], ss = src_stride[ndim - 1];
    int des = k_size[dst_dt], ses = k_size[src_dt];
    #pragma omp parallel for schedule(static) if (rows * inner > (1 << 16) && rows > 1)
    for (int64_t r = 0; r < rows; r++) {
        int64_t od, os;
        row_offsets(ndim, shape, r, dst_stride, src_stride, &od, &os);
        copy_run(inner, dst_dt, (char *)dst + od * des, ds, src_dt, (const char *)src + os * ses, ss);
    }
}

void dv_fill_strided_portable(int ndim, const int64_t *shape, int dt, void *dst,
                              const int64_t *stride, double value) {
    char one[8];
    store_f64(dt, one, value);
    int es = k_size[dt];
    if (ndim == 0) { memcpy(dst, one, (size_t)es); return; }
    int64_t inner = shape[ndim - 1], rows = 1;
    for (int d = 0; d < ndim - 1; d++) rows *= shape[d];
    int64_t s = stride[ndim - 1];
    #pragma omp parallel for schedule(static) if (rows * inner > (1 << 16) && rows > 1)
    for (int64_t r = 0; r < rows; r++) {
        int64_t o, unused;
        row_offsets(ndim, shape, r, stride, NULL, &o, &unused);
        char *p = (char *)dst + o * es;
        if (dt == DV_K_F32) {
            float v = *(float *)one;
            for (int64_t i = 0; i < inner; i++) ((float *)p)[i * s] = v;
        } else {
            for (int64_t i = 0; i < inner; i++) memcpy(p + i * s * es, one, (size_t)es);
        }
    }
}

void dv_convert_portable(int64_t n, int dst_dt, void *dst, int src_dt, const void *src) {
    int64_t st = 1;
    dv_copy_strided_portable(1, &n, dst_dt, dst, &st, src_dt, src, &st);
}
