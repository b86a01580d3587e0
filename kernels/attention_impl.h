/* kernels/attention_impl.h — the portable attention kernels, written once for a scalar type.
 * Included by kernels/attention.c with T (float/double), M(fn) (the libm name for T) and
 * SUFFIX (f32/f64) defined. See kernels/attention.h for the maths and the layouts.
 *
 * These are the reference the AVX-512 kernels are tested against, so they go one query row
 * and one key at a time, in the plainest order:
 *   forward   one row: online softmax over the keys, the output row itself is the accumulator
 *             (dropout: each weight times its mask value Z after it is added to the row sum);
 *   backward  one (b, kv-head) per task: every query row of the group's heads against every
 *             key, adding into dq (this row), dk and dv (this kv head — no other task touches
 *             them, so no locks) and dbias.
 * Neither needs work memory.
 */

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define KNAME(base) CAT(CAT(base, SUFFIX), _portable)

/* S[i,j] of one (b, h): scale q_i . k_j + bias, or -inf when key j is masked for row i */
static inline T CAT(attn_logit_, SUFFIX)(const dv_attn_geom *g, const T *qi, const T *kj,
                                         const T *bias_row, int64_t b, int64_t i, int64_t j) {
    if (!attn_visible(g, b, i, j)) return -(T)INFINITY;
    T s = 0;
    for (int64_t d = 0; d < g->D; d++) s += qi[d] * kj[d];
    s *= (T)g->scale;
    if (bias_row) s += bias_row[j * g->bias_stride[3]];
    return s;
}

void KNAME(dv_attention_fwd_)(const dv_attn_geom *g, const T *q, const T *k, const T *v,
                              const T *bias, T *o, T *lse, void *work) {
    (void)work;
    const int64_t Tq = g->Tq, Tk = g->Tk, Hq = g->Hq, Dv = g->Dv;
    const int64_t rows = g->B * Hq * Tq;
    if (rows == 0) return;
    const int64_t group = Hq / g->Hkv;
    const double flops = (double)rows * (double)Tk * (double)(g->D + Dv);
    #pragma omp parallel for schedule(dynamic, 8) num_threads(g->nthreads) if (flops > 1e5)
    for (int64_t r = 0; r < rows; r++) {
        const int64_t i = r % Tq, h = (r / Tq) % Hq, b = r / (Tq * Hq), hk = h / group;
        const T *qi = q + b * g->q_stride[0] + h * g->q_stride[1] + i * g->q_stride[2];
        const T *kb = k + b * g->k_stride[0] + hk * g->k_stride[1];
        const T *vb = v + b * g->v_stride[0] + hk * g->v_stride[1];
        const T *brow = bias ? bias + b * g->bias_stride[0] + h * g->bias_stride[1] + i * g->bias_stride[2] : NULL;
        T *oi = o + r * Dv;
        for (int64_t d = 0; d < Dv; d++) oi[d] = 0;
        T m = -(T)INFINITY, l = 0; /* running max and running sum of exp(s - m) */
        const bool drop = g->dropout > 0;
        const uint32_t row = drop ? dv_attn_drop_row(g->dropout_seed, b, h, i) : 0;
        const uint32_t thr = dv_attn_drop_threshold(g->dropout);
        const T zkeep = drop ? (T)(1.0 / (1.0 - g->dropout)) : (T)1;
        for (int64_t j = 0; j < Tk; j++) {
            T s = CAT(attn_logit_, SUFFIX)(g, qi, kb + j * g->k_stride[2], brow, b, i, j);
            if (s == -(T)INFINITY) continue; /* masked: weight exactly 0 */
            if (s > m) {                     /* new maximum: rescale what has been summed */
                T c = M(exp)(m - s);         /* 0 while m is still -inf (l and oi are 0 then) */
                l *= c;
                for (int64_t d = 0; d < Dv; d++) oi[d] *= c;
                m = s;
            }
            T p = M(exp)(s - m);
            l += p;                          /* the softmax sums weights before dropout */
            if (drop) p *= dv_attn_drop_hash(row, (uint32_t)j) >= thr ? zkeep : 0;
            const T *vj = vb + j * g->v_stride[2];
            for (int64_t d = 0; d < Dv; d++) oi[d] += p * vj[d];
        }
        if (l > 0) {
            T inv = (T)1 / l;
            for (int64_t d = 0; d < Dv; d++) oi[d] *= inv;
            lse[r] = m + M(log)(l);
        } else {                             /* no visible key: zeros, not 0/0 */
            for (int64_t d = 0; d < Dv; d++) oi[d] = 0;
            lse[r] = -(T)INFINITY;
        }
    }
}

void KNAME(dv_attention_bwd_)(const dv_attn_geom *g, const T *q, const T *k, const T *v,
                              const T *bias, const T *o, const T *lse, const T *dout, T *dq,
                              T *dk, T *dv, T *dbias, void *work) {
    (void)work;
    const int64_t B = g->B, Hq = g->Hq, Hkv = g->Hkv, Tq = g->Tq, Tk = g->Tk, D = g->D, Dv = g->Dv;
    if (dq) for (int64_t x = 0; x < B * Hq * Tq * D; x++) dq[x] = 0;
    if (dk) for (int64_t x = 0; x < B * Hkv * Tk * D; x++) dk[x] = 0;
    if (dv) for (int64_t x = 0; x < B * Hkv * Tk * Dv; x++) dv[x] = 0;
    if (dbias) for (int64_t x = 0; x < B * Hq * g->dbias_rows * Tk; x++) dbias[x] = 0;
    if (B * Hq * Tq == 0 || Tk == 0) return;
    const int64_t group = Hq / Hkv;
    const T scale = (T)g->scale;
    const double flops = (double)B * Hq * Tq * Tk * (double)(D + Dv);
    #pragma omp parallel for schedule(dynamic, 1) num_threads(g->nthreads) if (flops > 1e5)
    for (int64_t task = 0; task < B * Hkv; task++) {
        const int64_t b = task / Hkv, hk = task % Hkv;
        const T *kb = k + b * g->k_stride[0] + hk * g->k_stride[1];
        const T *vb = v + b * g->v_stride[0] + hk * g->v_stride[1];
        T *dkb = dk ? dk + (b * Hkv + hk) * Tk * D : NULL;
        T *dvb = dv ? dv + (b * Hkv + hk) * Tk * Dv : NULL;
        for (int64_t h = hk * group; h < (hk + 1) * group; h++) {
            for (int64_t i = 0; i < Tq; i++) {
                const int64_t r = (b * Hq + h) * Tq + i;
                if (lse[r] == -(T)INFINITY) continue; /* row saw no key: no gradient */
                const T *qi = q + b * g->q_stride[0] + h * g->q_stride[1] + i * g->q_stride[2];
                const T *brow = bias ? bias + b * g->bias_stride[0] + h * g->bias_stride[1] + i * g->bias_stride[2] : NULL;
                const T *doi = dout + r * Dv, *oi = o + r * Dv;
                T *dqi = dq ? dq + r * D : NULL;
                T *dbrow = dbias ? dbias + ((b * Hq + h) * g->dbias_rows + (g->dbias_rows > 1 ? i : 0)) * Tk : NULL;
                T Dr = 0; /* sum_d dO o: the softmax backward's row term */
                for (int64_t d = 0; d < Dv; d++) Dr += doi[d] * oi[d];
                const bool drop = g->dropout > 0;
                const uint32_t row = drop ? dv_attn_drop_row(g->dropout_seed, b, h, i) : 0;
                const uint32_t thr = dv_attn_drop_threshold(g->dropout);
                const T zkeep = drop ? (T)(1.0 / (1.0 - g->dropout)) : (T)1;
                for (int64_t j = 0; j < Tk; j++) {
                    const T *kj = kb + j * g->k_stride[2], *vj = vb + j * g->v_stride[2];
                    T s = CAT(attn_logit_, SUFFIX)(g, qi, kj, brow, b, i, j);
                    if (s == -(T)INFINITY) continue;
                    T p = M(exp)(s - lse[r]);
                    T dp = 0;
                    for (int64_t d = 0; d < Dv; d++) dp += doi[d] * vj[d];
                    T z = drop ? (dv_attn_drop_hash(row, (uint32_t)j) >= thr ? zkeep : 0) : (T)1;
                    T ds = p * (z * dp - Dr);
                    if (dbrow) dbrow[j] += ds;
                    if (dqi) for (int64_t d = 0; d < D; d++) dqi[d] += scale * ds * kj[d];
                    if (dkb) for (int64_t d = 0; d < D; d++) dkb[j * D + d] += scale * ds * qi[d];
                    if (dvb) for (int64_t d = 0; d < Dv; d++) dvb[j * Dv + d] += z * p * doi[d];
                }
            }
        }
    }
}

#undef KNAME
#undef CAT
#undef CAT_
