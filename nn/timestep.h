/* nn/timestep.h — sinusoidal embeddings of the diffusion step (or of any scalar position),
 * and DiT's TimestepEmbedder module.
 *
 * The embedding of a scalar t (Vaswani et al. Sec. 3.5, as the diffusion models use it):
 *
 *   half    = dim / 2
 *   f_i     = exp(-ln(max_period) * i / (half - shift))      i = 0 .. half - 1
 *   a_i     = scale * t * f_i
 *   emb     = [sin a_0 .. sin a_{half-1}, cos a_0 .. cos a_{half-1}]   (flip: cos first)
 *   odd dim: one zero column appended
 *
 * Three conventions of the reference code are the same function with different options:
 *   diffusers get_timestep_embedding (defaults)   flip_sin_to_cos false, shift 1, scale 1
 *   DiT TimestepEmbedder.timestep_embedding      flip_sin_to_cos true,  shift 0  (cos | sin)
 *   3D Diffuser Actor SinusoidalPosEmb           flip_sin_to_cos false, shift 1  (sin | cos);
 *                                                 an odd dim gives dim - 1 columns there, so
 *                                                 dv_sinusoidal_pos_emb insists on an even dim
 *
 *   t    (N) any dtype (i32/i64 diffusion steps, or fractional f32/f64 flow-matching times)
 *   out  (N, dim) in dtype dt (f32 or f64), no gradient (t is not differentiated)
 *
 * For f32 output the numbers follow the reference's f32 arithmetic: f_i and a_i are rounded
 * to f32 as torch computes them, then sin/cos are taken of that f32 angle (so for t ~ 1000 the
 * result tracks torch to a few 1e-5, not to the exact real value). f64 output is computed in
 * f64 throughout.
 *
 * TimestepEmbedder (Peebles & Xie, DiT, Sec. 3.2 "conditioning"): t -> embedding(freq_dim,
 * DiT convention) -> Linear(freq_dim, hidden) -> SiLU -> Linear(hidden, hidden). Parameter
 * names as DiT's checkpoints: "<name>.mlp.0.weight/bias", "<name>.mlp.2.weight/bias".
 * Initialised as DiT's initialize_weights does: weights normal(0, 0.02), biases zero.
 *
 * Not here: learned position tables (dv_nn_embedding), rotary encodings (nn/rotary.h).
 */
#ifndef DV_NN_TIMESTEP_H
#define DV_NN_TIMESTEP_H

#include "nn/module.h"

typedef struct {
    bool flip_sin_to_cos;         /* cos | sin instead of sin | cos */
    double downscale_freq_shift;  /* the denominator is half - shift */
    double scale;                 /* multiplies the angles */
    double max_period;            /* the longest period (10000) */
} dv_timestep_opts;

/* diffusers' defaults: no flip, shift 1, scale 1, max_period 10000 */
dv_timestep_opts dv_timestep_opts_diffusers(void);
/* DiT's: flip (cos | sin), shift 0, scale 1, max_period 10000 */
dv_timestep_opts dv_timestep_opts_dit(void);

/* t (N) -> (N, dim); dim >= 1; half - shift must not be 0 (dim = 2 with shift 1 is refused) */
dv_tensor *dv_timestep_embedding(const dv_tensor *t, int64_t dim, const dv_timestep_opts *opts,
                                 dv_dtype dt);
/* 3D Diffuser Actor's SinusoidalPosEmb(dim)(t): sin | cos, shift 1; dim even and >= 4 */
dv_tensor *dv_sinusoidal_pos_emb(const dv_tensor *t, int64_t dim, dv_dtype dt);

typedef struct {
    dv_nn_linear fc1, fc2;  /* "mlp.0", "mlp.2" */
    int64_t freq_dim;       /* 256 in DiT */
    double max_period;      /* 10000 */
} dv_nn_timestep_embedder;

void dv_nn_timestep_embedder_init(dv_nn_timestep_embedder *e, dv_registry *r, const char *name,
                                  int64_t hidden, int64_t freq_dim, dv_dtype dt, dv_rng *rng);
/* t (N) -> (N, hidden), in the dtype of the first weight (f32 / f64; f16 / bf16 weights give f32) */
dv_tensor *dv_nn_timestep_embedder_forward(const dv_nn_timestep_embedder *e, const dv_tensor *t);

#endif
