/* tests/test_cuda_host.c — the host-checkable half of the CUDA backend, run by `make test`
 * without a GPU or nvcc: kernels/cuda/common.h compiled for the host.
 *   - Philox and the uniform / normal / randint transforms the GPU kernels run, against
 *     tensor/rng.c's draws (bit for bit: same code path on the host)
 *   - the GEMM tile maps: every output element of a tile owned by exactly one (warp, lane,
 *     register); every element of a shared-memory tile loaded by exactly one 16-byte piece;
 *     fragment loads of a warp conflict-free across the 32 banks; fragment reads inside the
 *     padded rows
 *   - the attention key-range bound against brute force over the causal mask, and the flash
 *     forward's per-row algorithm (key tiles of DV_CU_ATTN_BKV, base-2 online softmax with
 *     dv_cu_online_rescale / dv_cu_online_lse, masks, the causal tile skip) replayed in f32
 *     on the host against the portable attention kernel
 * And, without touching a device: the runtime's answers when no device can be used.
 */
#include "kernels/attention.h"
#include "kernels/cuda/common.h"
#include "tensor/cuda.h"
#include "tests/test.h"

#include <stdlib.h>
#include <string.h>

TEST(cuda_host_philox_matches_cpu_rng) {
    const uint64_t seeds[] = {0, 1, 0x123456789abcdefull};
    for (int si = 0; si < 3; si++) {
        dv_rng r = dv_rng_new(seeds[si]);
        r.offset = si == 2 ? 0xfffffffeull : 7; /* across the 32-bit carry of the counter */
        uint64_t offset = r.offset;
        int64_t n = 37; /* not a multiple of 4 */
        dv_tensor *t[3];
        t[0] = dv_empty(DV_F64, &n, 1);
        dv_rng_fill_uniform(&r, t[0], -2.0, 3.0);
        t[1] = dv_empty(DV_F64, &n, 1);
        dv_rng_fill_normal(&r, t[1], 0.5, 2.0);
        t[2] = dv_empty(DV_F64, &n, 1);
        dv_rng_fill_randint(&r, t[2], -5, 1000);
        const double a[3] = {-2.0, 0.5, -5}, b[3] = {3.0, 2.0, 1000};
        int bad = 0;
        for (int k = 0; k < 3; k++) {
            const double *v = dv_data(t[k]);
            for (int64_t bi = 0; bi < (n + 3) / 4; bi++) {
                double z[4];
                dv_cu_rng_block((dv_cu_rng_kind)k, seeds[si], offset, (uint64_t)bi, a[k], b[k], z);
                for (int p = 0; p < 4 && bi * 4 + p < n; p++) bad += z[p] != v[bi * 4 + p];
            }
            offset += (uint64_t)(n + 3) / 4; /* each draw advances the stream by ceil(n/4) */
            dv_release(t[k]);
        }
        CHECK_MSG(bad == 0, "seed %llu: %d values differ from tensor/rng.c", (unsigned long long)seeds[si], bad);
        CHECK(offset == r.offset);
    }
    /* the raw block against the public CPU function, including a high counter word */
    uint32_t ours[4], cpu[4];
    uint64_t ctr = 0x1234567890ull;
    dv_cu_philox(ctr, 42, ours);
    dv_philox4x32_10((const uint32_t[4]){(uint32_t)ctr, (uint32_t)(ctr >> 32), 0, 0}, (const uint32_t[2]){42, 0}, cpu);
    CHECK(memcmp(ours, cpu, sizeof ours) == 0);
}

TEST(cuda_host_gemm_output_map_covers_tile_once) {
    static unsigned char seen[DV_CU_GEMM_BM][DV_CU_GEMM_BN];
    memset(seen, 0, sizeof seen);
    for (int w = 0; w < DV_CU_GEMM_THREADS / 32; w++)
        for (int lane = 0; lane < 32; lane++)
            for (int i = 0; i < DV_CU_GEMM_MI; i++)
                for (int j = 0; j < DV_CU_GEMM_NI; j++)
                    for (int r = 0; r < 4; r++) {
                        int m, n;
                        dv_cu_gemm_c_coord(w, lane, i, j, r, &m, &n);
                        CHECK(m >= 0 && m < DV_CU_GEMM_BM && n >= 0 && n < DV_CU_GEMM_BN);
                        if (m >= 0 && m < DV_CU_GEMM_BM && n >= 0 && n < DV_CU_GEMM_BN) seen[m][n]++;
                    }
    int wrong = 0;
    for (int m = 0; m < DV_CU_GEMM_BM; m++)
        for (int n = 0; n < DV_CU_GEMM_BN; n++) wrong += seen[m][n] != 1;
    CHECK_MSG(wrong == 0, "%d tile elements not owned exactly once", wrong);
}

/* the accumulator of (i, j, r) in a lane must be the product of the A rows and B columns that
 * lane's fragments hold for the same (i, j): A row of a-register r%2... as the PTX layout
 * says; checked by simulating one m16n8k16 step from the fragment maps */
TEST(cuda_host_gemm_fragment_maps_multiply) {
    enum { SK = DV_CU_GEMM_SK };
    static float As[DV_CU_GEMM_BM * SK], Bs[DV_CU_GEMM_BN * SK];
    for (int i = 0; i < DV_CU_GEMM_BM * SK; i++) As[i] = (float)((i * 7) % 13) - 6;
    for (int i = 0; i < DV_CU_GEMM_BN * SK; i++) Bs[i] = (float)((i * 5) % 11) - 5;
    int bad = 0;
    for (int w = 0; w < 8; w++)
        for (int i = 0; i < DV_CU_GEMM_MI; i++)
            for (int j = 0; j < DV_CU_GEMM_NI; j++) {
                /* D[16][8] by the PTX semantics, from what the 32 lanes' fragments hold */
                float a[16][16], b[16][8];
                for (int kk = 0; kk < DV_CU_GEMM_BK; kk += 16) {
                    for (int lane = 0; lane < 32; lane++) {
                        for (int r = 0; r < 4; r++) {
                            int o = dv_cu_gemm_a_smem(w, lane, i, kk, r);
                            int row = lane / 4 + 8 * (r % 2), col = (lane % 4) * 2 + 8 * (r / 2);
                            a[row][col] = As[o], a[row][col + 1] = As[o + 1];
                        }
                        for (int r = 0; r < 2; r++) {
                            int o = dv_cu_gemm_b_smem(w, lane, j, kk, r);
                            int k = (lane % 4) * 2 + 8 * r, n = lane / 4;
                            b[k][n] = Bs[o], b[k + 1][n] = Bs[o + 1];
                        }
                    }
                    /* the 32 lanes' fragments, multiplied as mma does, against the tile product */
                    for (int lane = 0; lane < 32; lane++)
                        for (int r = 0; r < 4; r++) {
                            int m, n;
                            dv_cu_gemm_c_coord(w, lane, i, j, r, &m, &n);
                            float d = 0, ref = 0;
                            for (int k = 0; k < 16; k++) {
                                d += a[m % 16][k] * b[k][n % 8];
                                ref += As[m * SK + kk + k] * Bs[n * SK + kk + k];
                            }
                            bad += d != ref;
                        }
                }
            }
    CHECK_MSG(bad == 0, "%d accumulator elements would not be the tile product", bad);
}

TEST(cuda_host_gemm_fragment_loads_conflict_free) {
    /* for each fragment load instruction, the 32 lanes' 32-bit words must be in 32 banks */
    int conflicts = 0;
    for (int w = 0; w < 8; w++)
        for (int kk = 0; kk < DV_CU_GEMM_BK; kk += 16) {
            for (int i = 0; i < DV_CU_GEMM_MI; i++)
                for (int r = 0; r < 4; r++) {
                    unsigned banks = 0;
                    for (int lane = 0; lane < 32; lane++) {
                        int o = dv_cu_gemm_a_smem(w, lane, i, kk, r);
                        CHECK(o % 2 == 0);
                        CHECK(o % DV_CU_GEMM_SK + 1 < DV_CU_GEMM_BK); /* never reads the padding */
                        banks |= 1u << ((o / 2) % 32);
                    }
                    conflicts += banks != 0xffffffffu;
                }
            for (int j = 0; j < DV_CU_GEMM_NI; j++)
                for (int r = 0; r < 2; r++) {
                    unsigned banks = 0;
                    for (int lane = 0; lane < 32; lane++) banks |= 1u << ((dv_cu_gemm_b_smem(w, lane, j, kk, r) / 2) % 32);
                    conflicts += banks != 0xffffffffu;
                }
        }
    CHECK_MSG(conflicts == 0, "%d fragment loads have bank conflicts", conflicts);
}

TEST(cuda_host_gemm_loader_covers_tile_once) {
    for (int kc = 0; kc < 2; kc++) {
        /* kcontig: BM rows x BK k; else BK k-rows x BM */
        int rows = kc ? DV_CU_GEMM_BM : DV_CU_GEMM_BK, cols = kc ? DV_CU_GEMM_BK : DV_CU_GEMM_BM;
        unsigned char *seen = calloc((size_t)(rows * cols), 1);
        for (int t = 0; t < DV_CU_GEMM_THREADS; t++)
            for (int it = 0; it < 2; it++) {
                int r, c;
                dv_cu_gemm_piece(t, it, kc, &r, &c);
                CHECK(r >= 0 && r < rows && c >= 0 && c + 8 <= cols && c % 8 == 0);
                if (r >= 0 && r < rows && c >= 0 && c + 8 <= cols)
                    for (int e = 0; e < 8; e++) seen[r * cols + c + e]++;
            }
        int wrong = 0;
        for (int i = 0; i < rows * cols; i++) wrong += seen[i] != 1;
        CHECK_MSG(wrong == 0, "kcontig %d: %d elements not loaded exactly once", kc, wrong);
        free(seen);
    }
}

TEST(cuda_host_attention_key_range) {
    int bad = 0;
    for (int causal = 0; causal < 2; causal++)
        for (int64_t Tq = 1; Tq <= 9; Tq += 4)
            for (int64_t Tk = 1; Tk <= 11; Tk += 5)
                for (int64_t off = -12; off <= 12; off += 3)
                    for (int64_t q0 = 0; q0 < Tq; q0 += 2) {
                        int64_t bq = 3, want = 0;
                        for (int64_t i = q0; i < q0 + bq && i < Tq; i++)
                            for (int64_t j = 0; j < Tk; j++)
                                if (dv_cu_attn_visible(i, j, Tk, causal, off) && j + 1 > want) want = j + 1;
                        int64_t got = dv_cu_attn_kv_end(q0, bq, Tq, Tk, causal, off);
                        /* without causality every key is scanned (the keep mask is per element) */
                        bad += causal ? got != want : got != Tk;
                    }
    CHECK_MSG(bad == 0, "%d query tiles with a wrong key range", bad);
    CHECK(dv_cu_ceil_div(0, 8) == 0 && dv_cu_ceil_div(1, 8) == 1 && dv_cu_ceil_div(16, 8) == 2);
}

TEST(cuda_host_device_strings) {
    char err[128];
    dv_device d;
    CHECK(dv_device_parse("cuda:3", &d, err, sizeof err) == 0 && d.type == DV_CUDA && d.index == 3);
    CHECK(dv_device_parse("cpu", &d, err, sizeof err) == 0 && d.type == DV_CPU);
    CHECK(dv_device_parse("cuda", &d, err, sizeof err) == 0 && d.index == 0);
    CHECK(dv_device_parse("gpu", &d, err, sizeof err) == -1 && strstr(err, "'gpu'"));
    CHECK(dv_device_parse("cuda:x", &d, err, sizeof err) == -1);
    CHECK(!strcmp(dv_device_str(dv_device_cuda(1)), "cuda:1"));
    /* a CPU tensor's "move" to the CPU is a no-op that keeps the struct */
    dv_tensor *t = dv_ones(DV_F32, DV_SHAPE(2, 3));
    void *data = t->storage->data;
    dv_tensor_move_(t, DV_DEVICE_CPU);
    CHECK(t->storage->data == data && t->device.type == DV_CPU);
    dv_release(t);
}

/* one query row of kernels/cuda/attention.cu's forward, as the kernel orders it (without the
 * tensor cores and the rounding of P to half): key tiles up to dv_cu_attn_kv_end of the row's
 * query tile, scores in base 2, online rescaling by the common.h helpers */
static void flash_row(const dv_attn_geom *g, const float *q, const float *k, const float *v, int64_t b, int64_t i,
                      float *o, float *lse) {
    int64_t D = g->D, q0 = i / DV_CU_ATTN_BQ * DV_CU_ATTN_BQ;
    float m = -INFINITY, l = 0, acc[128] = {0};
    float sl2 = (float)(g->scale * 1.4426950408889634074);
    int64_t end = dv_cu_attn_kv_end(q0, DV_CU_ATTN_BQ, g->Tq, g->Tk, g->causal, g->causal_offset);
    for (int64_t kv0 = 0; kv0 < end; kv0 += DV_CU_ATTN_BKV) {
        float s[DV_CU_ATTN_BKV], mx = -INFINITY;
        for (int jj = 0; jj < DV_CU_ATTN_BKV; jj++) {
            int64_t j = kv0 + jj;
            bool vis = dv_cu_attn_visible(i, j, g->Tk, g->causal, g->causal_offset) &&
                       (!g->keep || g->keep[b * g->keep_stride[0] + j * g->keep_stride[1]]);
            float dot = 0;
            if (vis)
                for (int64_t d = 0; d < D; d++) dot += q[i * D + d] * k[j * D + d];
            s[jj] = vis ? dot * sl2 : -INFINITY;
            if (s[jj] > mx) mx = s[jj];
        }
        float base, corr = dv_cu_online_rescale(&m, mx, &base);
        l *= corr;
        for (int64_t d = 0; d < D; d++) acc[d] *= corr;
        for (int jj = 0; jj < DV_CU_ATTN_BKV; jj++) {
            float p = exp2f(s[jj] - base);
            l += p;
            if (p != 0)
                for (int64_t d = 0; d < D; d++) acc[d] += p * v[(kv0 + jj) * D + d];
        }
    }
    for (int64_t d = 0; d < D; d++) o[d] = l > 0 ? acc[d] / l : 0;
    *lse = dv_cu_online_lse(m, l);
}

TEST(cuda_host_flash_forward_algorithm_matches_portable) {
    const int64_t Tq = 70, Tk = 150, D = 24, B = 2;
    const int64_t offs[] = {0, Tk - Tq, -75};
    dv_rng r = dv_rng_new(9);
    dv_tensor *tq = dv_randn(&r, DV_F32, DV_SHAPE(B, Tq, D)), *tk = dv_randn(&r, DV_F32, DV_SHAPE(B, Tk, D));
    dv_tensor *tv = dv_randn(&r, DV_F32, DV_SHAPE(B, Tk, D));
    uint8_t keep[2 * 150];
    for (int j = 0; j < B * Tk; j++) keep[j] = (j * 37) % 7 != 0;
    const float *q = dv_data(tq), *k = dv_data(tk), *v = dv_data(tv);
    int bad = 0;
    for (int c = 0; c < 5; c++) {
        dv_attn_geom g = {.B = B, .Hq = 1, .Hkv = 1, .Tq = Tq, .Tk = Tk, .D = D, .Dv = D,
                          .q_stride = {Tq * D, Tq * D, D}, .k_stride = {Tk * D, Tk * D, D}, .v_stride = {Tk * D, Tk * D, D},
                          .scale = 0.3, .causal = c < 3, .causal_offset = c < 3 ? offs[c] : 0,
                          .keep = c == 4 ? keep : NULL, .keep_stride = {Tk, 1}, .dbias_rows = 1, .nthreads = 1};
        float *o = malloc(sizeof(float) * B * Tq * D), *lse = malloc(sizeof(float) * B * Tq);
        void *work = malloc(dv_attention_work_bytes_portable(&g, false, 4) + 64);
        dv_attention_fwd_f32_portable(&g, q, k, v, NULL, o, lse, work);
        for (int64_t b = 0; b < B; b++)
            for (int64_t i = 0; i < Tq; i++) {
                float oo[128], ll;
                flash_row(&g, q + b * Tq * D, k + b * Tk * D, v + b * Tk * D, b, i, oo, &ll);
                const float *want = o + (b * Tq + i) * D;
                float wl = lse[b * Tq + i];
                if (isinf(wl) || isinf(ll)) bad += !(isinf(wl) && isinf(ll) && wl < 0 && ll < 0);
                else bad += !(fabsf(ll - wl) <= 1e-4f * fmaxf(1, fabsf(wl)));
                for (int64_t d = 0; d < D; d++) bad += !(fabsf(oo[d] - want[d]) <= 2e-5f * fmaxf(1, fabsf(want[d])));
            }
        free(o), free(lse), free(work);
    }
    CHECK_MSG(bad == 0, "%d values of the replayed flash forward differ from the portable kernel", bad);
    /* the helpers alone: a first tile with nothing visible, then one with a key */
    float m = -INFINITY, base;
    float corr = dv_cu_online_rescale(&m, -INFINITY, &base);
    CHECK(corr == 0 && base == 0 && m == -INFINITY);
    corr = dv_cu_online_rescale(&m, 3.0f, &base);
    CHECK(corr == 0 && base == 3.0f && m == 3.0f);
    corr = dv_cu_online_rescale(&m, 1.0f, &base);
    CHECK(corr == 1 && base == 3.0f);
    CHECK(isinf(dv_cu_online_lse(-INFINITY, 0)) && fabsf(dv_cu_online_lse(1, 2) - 2 * 0.69314718f) < 1e-6f);
    dv_release(tq), dv_release(tk), dv_release(tv);
}
