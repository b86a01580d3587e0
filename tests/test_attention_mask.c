/* tests/test_attention_mask.c — the attention-dropout mask of kernels/attention.h, the one
 * definition (DV_HD) that the CPU kernels and the CUDA kernels (kernels/cuda/attention*.cu)
 * both call, checked on the host in `make test` (no GPU, no nvcc):
 *   - dv_attn_drop_row / dv_attn_drop_hash against the construction the header documents,
 *     written out again here step by step (splitmix64's finaliser of the seed mixed with
 *     b, h, i times odd constants; murmur3's 32-bit finaliser of row ^ j * golden ratio), so a
 *     change to the shared functions — which would silently change every training run's
 *     masks — fails here;
 *   - dv_attn_drop_threshold at its ends and the kept fraction of a large draw;
 *   - the portable kernel zeroes exactly the weights the functions drop (q = 0, v = identity).
 * tests/test_attention.c checks the AVX-512 kernel's mask the same way, and
 * tests/cuda/test_cuda_attention.c the GPU's.
 */
#include "kernels/attention.h"
#include "kernels/cpu.h"
#include "nn/attention.h"
#include "tests/util.h"

#include <math.h>

static uint64_t splitmix64_finalise(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static uint32_t murmur3_fmix32(uint32_t h) {
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    h ^= h >> 16;
    return h;
}

TEST(attention_mask_functions_match_their_definition) {
    const uint64_t seeds[] = {0, 1, 0x5eed0fd1u, 0xfedcba9876543210ull};
    int64_t bad = 0, n = 0;
    for (int si = 0; si < 4; si++)
        for (int64_t b = 0; b < 3; b++)
            for (int64_t h = 0; h < 5; h += 2)
                for (int64_t i = 0; i < 300; i += 7) {
                    uint64_t key = seeds[si] ^ ((uint64_t)b * 0x9E3779B97F4A7C15ull) ^
                                   ((uint64_t)h * 0xC2B2AE3D27D4EB4Full) ^ ((uint64_t)i * 0x165667B19E3779F9ull);
                    uint32_t row = (uint32_t)(splitmix64_finalise(key) >> 32);
                    bad += dv_attn_drop_row(seeds[si], b, h, i) != row;
                    for (uint32_t j = 0; j < 200; j += 3, n++)
                        bad += dv_attn_drop_hash(row, j) != murmur3_fmix32(row ^ (j * 0x9E3779B9u));
                }
    CHECK_MSG(bad == 0, "%lld of %lld mask values differ from kernels/attention.h's documented construction",
              (long long)bad, (long long)n);
    CHECK(dv_attn_drop_threshold(0) == 0);
    CHECK(dv_attn_drop_threshold(-0.5) == 0);
    CHECK(dv_attn_drop_threshold(0.5) == 0x80000000u);
    CHECK(dv_attn_drop_threshold(1.0) == UINT32_MAX);
    /* the kept fraction of 200k weights within 5 sigma of 1 - p */
    const double p = 0.1;
    const uint32_t thr = dv_attn_drop_threshold(p);
    int64_t kept = 0, total = 0;
    for (int64_t i = 0; i < 1000; i++) {
        uint32_t row = dv_attn_drop_row(42, 1, 2, i);
        for (uint32_t j = 0; j < 200; j++, total++) kept += dv_attn_drop_hash(row, j) >= thr;
    }
    double frac = (double)kept / total;
    CHECK_MSG(fabs(frac - (1 - p)) < 5 * sqrt(p * (1 - p) / total), "kept fraction %.4f, want %.2f", frac, 1 - p);
}

/* q = 0: every weight 1/Tk; v = identity (Dv = Tk): output row i of the portable kernel is
 * Z[i, :] / Tk, zero exactly where the functions drop */
TEST(attention_mask_portable_kernel_uses_it) {
    const int64_t B = 2, H = 2, T = 19, Tk = 23;
    const double p = 0.3;
    const uint64_t seed = 0xabcdef12345ull;
    dv_tensor *q = dv_zeros(DV_F32, DV_SHAPE(B, H, T, 4)), *k = ut_randn(DV_F32, DV_SHAPE(B, H, Tk, 4), 7);
    dv_tensor *v = dv_zeros(DV_F32, DV_SHAPE(B, H, Tk, Tk));
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t j = 0; j < Tk; j++) dv_set(v, (int64_t[]){b, h, j, j}, 1.0);
    dv_isa saved = dv_cpu_isa();
    dv_cpu_set_isa(DV_ISA_PORTABLE);
    dv_attention_opts o = {.dropout = p, .dropout_seed = seed};
    dv_tensor *y = dv_attention(q, k, v, &o);
    dv_cpu_set_isa(saved);
    const uint32_t thr = dv_attn_drop_threshold(p);
    int64_t wrong = 0, dropped = 0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < T; i++) {
                uint32_t row = dv_attn_drop_row(seed, b, h, i);
                for (int64_t j = 0; j < Tk; j++) {
                    bool keep = dv_attn_drop_hash(row, (uint32_t)j) >= thr;
                    double got = dv_get(y, (int64_t[]){b, h, i, j}), want = keep ? 1.0 / (1.0 - p) / Tk : 0.0;
                    wrong += !(fabs(got - want) <= 1e-6);
                    dropped += !keep;
                }
            }
    CHECK_MSG(wrong == 0, "%lld weights differ from the mask", (long long)wrong);
    CHECK(dropped > 0);
    dv_release(q), dv_release(k), dv_release(v), dv_release(y);
}
