/* tests/cuda/test_cuda_runtime.c — the device runtime on a real GPU: tensors to and from the
 * device (through the staging buffers, larger than one 8 MiB buffer), strided gathers, fills,
 * the caching allocator's reuse and statistics, the out-of-memory message, moving a registry
 * in place, and an op without a CUDA kernel aborting with a clear message. */
#ifdef DV_HAVE_CUDA
#include "tests/cuda/cuda_util.h"

#include "nn/module.h"
#include "tests/util.h"

#include <stdlib.h>
#include <string.h>

TEST(cuda_tensor_round_trip_and_views) {
    dv_rng r = dv_rng_new(5);
    dv_tensor *x = dv_randn(&r, DV_F32, DV_SHAPE(3, 1500, 1000)); /* 18 MB: three staging chunks */
    dv_tensor *d = dv_tensor_to(x, dv_device_cuda(0));
    CHECK(d->device.type == DV_CUDA && d->storage->device.type == DV_CUDA);
    dv_tensor *back = dv_tensor_to(d, DV_DEVICE_CPU);
    CHECK(memcmp(dv_data(back), dv_data(x), (size_t)dv_numel(x) * 4) == 0);
    /* a transposed view gathered on the device equals the CPU's */
    dv_tensor *tv = dv_transpose(d, 0, 2), *tc = dv_transpose(x, 0, 2);
    dv_tensor *tvb = dv_tensor_to(tv, DV_DEVICE_CPU), *tcc = dv_contiguous(tc);
    CHECK(memcmp(dv_data(tvb), dv_data(tcc), (size_t)dv_numel(x) * 4) == 0);
    /* fill and zeros_like on the device */
    dv_fill_(d, -2.5);
    dv_tensor *fb = dv_tensor_to(d, DV_DEVICE_CPU);
    CHECK(((float *)dv_data(fb))[12345] == -2.5f);
    dv_tensor *z = dv_zeros_like(d);
    CHECK(z->device.type == DV_CUDA);
    dv_tensor *zb = dv_tensor_to(z, DV_DEVICE_CPU);
    CHECK(((float *)dv_data(zb))[777] == 0.0f);
    dv_release(x), dv_release(d), dv_release(back), dv_release(tv), dv_release(tc), dv_release(tvb);
    dv_release(tcc), dv_release(fb), dv_release(z), dv_release(zb);
}

TEST(cuda_cast_matches_cpu_bitwise) {
    dv_rng r = dv_rng_new(8);
    dv_tensor *x = dv_randn(&r, DV_F32, DV_SHAPE(37, 129));
    dv_flat_set(x, 5, 1e30), dv_flat_set(x, 6, -1e-30), dv_flat_set(x, 7, 70000.0); /* overflow / tiny */
    dv_tensor *xt = dv_transpose(x, 0, 1);             /* strided source */
    dv_tensor *d = dv_tensor_to(x, dv_device_cuda(0)), *dt = dv_transpose(d, 0, 1);
    /* (no integer targets: 1e30 -> i32 is undefined in C, the GPU saturates) */
    const dv_dtype to[] = {DV_BF16, DV_F16, DV_F64, DV_BOOL};
    for (int i = 0; i < 4; i++) {
        dv_tensor *c = dv_cast(xt, to[i]), *g = dv_cast(dt, to[i]);
        CHECK(g->device.type == DV_CUDA && g->dtype == to[i]);
        dv_tensor *gb = dv_tensor_to(g, DV_DEVICE_CPU), *cc = dv_contiguous(c);
        CHECK_MSG(memcmp(dv_data(gb), dv_data(cc), (size_t)dv_numel(c) * dv_dtype_size(to[i])) == 0, "cast to %s differs",
                  dv_dtype_name(to[i]));
        dv_release(c), dv_release(g), dv_release(gb), dv_release(cc);
    }
    dv_release(x), dv_release(xt), dv_release(d), dv_release(dt);
}

TEST(cuda_tensor_rng_same_numbers_as_cpu) {
    dv_rng rc = dv_rng_new(42), rg = dv_rng_new(42);
    dv_tensor *c = dv_empty(DV_F32, DV_SHAPE(1001, 3)), *g = dv_empty_on(DV_F32, DV_SHAPE(1001, 3), dv_device_cuda(0));
    dv_rng_fill_uniform(&rc, c, -1, 1), dv_rng_fill_uniform(&rg, g, -1, 1);
    dv_tensor *gb = dv_tensor_to(g, DV_DEVICE_CPU);
    CHECK(memcmp(dv_data(gb), dv_data(c), 1001 * 3 * 4) == 0);
    CHECK(rc.offset == rg.offset);
    dv_rng_fill_normal(&rc, c, 0, 1), dv_rng_fill_normal(&rg, g, 0, 1);
    dv_release(gb);
    gb = dv_tensor_to(g, DV_DEVICE_CPU);
    tc_compare_f32("randn on cuda", dv_data(gb), dv_data(c), 1001 * 3, 1e-6);
    dv_release(c), dv_release(g), dv_release(gb);
}

TEST(cuda_allocator_reuses_and_reports) {
    dv_cuda_alloc_stats s0 = dv_cuda_get_stats(0);
    void *a = dv_cuda_alloc(0, 1000000);
    dv_cuda_free(0, a, 1000000);
    void *b = dv_cuda_alloc(0, 999000); /* same size class: the cached block */
    dv_cuda_alloc_stats s1 = dv_cuda_get_stats(0);
    CHECK(b == a);
    CHECK(s1.n_cache_hits == s0.n_cache_hits + 1);
    CHECK(s1.live_bytes >= s0.live_bytes + 999000);
    dv_cuda_free(0, b, 999000);
    char err[512] = "";
    void *huge = dv_cuda_alloc_try(0, (int64_t)1 << 50, err, sizeof err);
    CHECK(huge == NULL);
    CHECK_MSG(strstr(err, "out of memory") && strstr(err, "requested") && strstr(err, "free of"), "message: %s", err);
}

/* dv_to_f64 reads elements on the host: no CUDA path (dv_max, used here before, has one now) */
static void to_f64_on_cuda(void *ctx) {
    double out[16];
    dv_to_f64((dv_tensor *)ctx, out);
}
static void matmul_on_cuda(void *ctx) { dv_release(dv_matmul((dv_tensor *)ctx, (dv_tensor *)ctx)); }
static void f64_unary_on_cuda(void *ctx) { dv_release(dv_exp((dv_tensor *)ctx)); }

TEST(cuda_ops_without_kernel_abort_clearly) {
    dv_tensor *x = dv_ones(DV_F32, DV_SHAPE(4, 4)), *x64 = dv_ones(DV_F64, DV_SHAPE(4, 4));
    dv_tensor *d = dv_tensor_to(x, dv_device_cuda(0)), *d64 = dv_tensor_to(x64, dv_device_cuda(0));
    CHECK(ut_aborts_with(to_f64_on_cuda, d, "no CUDA kernel for this op yet"));
    CHECK(ut_aborts_with(matmul_on_cuda, d64, "take f32"));
    CHECK(ut_aborts_with(f64_unary_on_cuda, d64, "take f32"));
    dv_release(x), dv_release(d), dv_release(x64), dv_release(d64);
}

TEST(cuda_registry_moves_in_place) {
    dv_registry reg = {0};
    dv_rng rng = dv_rng_new(1);
    dv_tensor *w = NULL;
    dv_reg_add(&reg, "w", &w, dv_randn(&rng, DV_F32, DV_SHAPE(16, 8)));
    dv_tensor *cpu = dv_clone(w);
    dv_tensor *before = w;
    dv_reg_to(&reg, dv_device_cuda(0));
    CHECK(w == before && w->device.type == DV_CUDA && dv_reg_tensor(&reg, 0) == w);
    dv_tensor *back = dv_tensor_to(w, DV_DEVICE_CPU);
    CHECK(memcmp(dv_data(back), dv_data(cpu), 16 * 8 * 4) == 0);
    dv_reg_to(&reg, DV_DEVICE_CPU);
    CHECK(w->device.type == DV_CPU && memcmp(dv_data(w), dv_data(cpu), 16 * 8 * 4) == 0);
    dv_release(back), dv_release(cpu);
    dv_reg_free(&reg);
}

/* small uploads return before the stream drains, through a ring of 32 pinned slots: wrap the
 * ring several times with uploads queued behind device work, overwrite each host source at
 * once, and read every tensor back */
TEST(cuda_small_uploads_queue_without_waiting) {
    enum { N = 100 };
    dv_tensor *up[N];
    dv_tensor *big = dv_zeros_on(DV_F32, DV_SHAPE(1 << 22), dv_device_cuda(0)); /* work queued ahead */
    for (int k = 0; k < N; k++) {
        int64_t n = 1 + (k * 37) % (16 << 10); /* 4 B .. 64 KiB, the small path's whole range */
        dv_tensor *h = dv_empty(DV_F32, &n, 1);
        float *p = dv_data(h);
        for (int64_t i = 0; i < n; i++) p[i] = (float)(k * 100000 + i);
        if (k % 10 == 0) dv_fill_(big, (double)k);
        up[k] = dv_tensor_to(h, dv_device_cuda(0));
        for (int64_t i = 0; i < n; i++) p[i] = -1.0f; /* the source may be reused at once */
        dv_release(h);
    }
    for (int k = 0; k < N; k++) {
        dv_tensor *back = dv_tensor_to(up[k], DV_DEVICE_CPU);
        const float *p = dv_data(back);
        int64_t bad = -1;
        for (int64_t i = 0; i < dv_numel(back) && bad < 0; i++)
            if (p[i] != (float)(k * 100000 + i)) bad = i;
        CHECK_MSG(bad < 0, "upload %d (%lld floats): element %lld is %g", k, (long long)dv_numel(back), (long long)bad,
                  bad >= 0 ? p[bad] : 0.0);
        dv_release(back), dv_release(up[k]);
    }
    CHECK(dv_flat_get(big, 12345) == 90.0);
    dv_release(big);
}
#endif
