/* bench/bench.h — the benchmark binary (build/bench): subcommands and timing helpers.
 *
 *   build/bench <subcommand> [options]      build/bench all      build/bench help
 *
 * A subcommand is a function `int dv_bench_xxx(int argc, char **argv)` (argv[0] is its name)
 * returning 0 on success, plus one line in the table in bench/main.c.
 * Speed is measured here and never asserted; each figure is printed next to a peer's figure
 * measured in the same run where one exists.
 */
#ifndef DV_BENCH_BENCH_H
#define DV_BENCH_BENCH_H

double dv_bench_now(void); /* monotonic clock, seconds */

/* Best seconds per call of fn(ctx): one warm-up call, then trials of back-to-back calls (each
 * trial at least min_s / 4 long) until at least min_s has been spent and at least 3 trials ran.
 * The best trial is reported, which filters out interference from the rest of the machine. */
double dv_bench_time(void (*fn)(void *ctx), void *ctx, double min_s);

/* Latencies of single calls, in seconds, gathered over one or more rounds (so that rounds of two
 * contenders can alternate while the machine's speed drifts). */
typedef struct { double *t; int n, cap; } dv_bench_samples;
void dv_bench_samples_add(dv_bench_samples *s, double seconds);
/* one warm-up call of fn(ctx), then calls timed one by one until at least min_s has been spent
 * and min_calls have run, appended to s */
void dv_bench_sample(dv_bench_samples *s, void (*fn)(void *ctx), void *ctx, double min_s, int min_calls);
/* the fastest and the median of s (-1 when empty) */
void dv_bench_stats(const dv_bench_samples *s, double *best, double *median);
void dv_bench_samples_free(dv_bench_samples *s);
/* one round of dv_bench_sample and its dv_bench_stats */
void dv_bench_calls(void (*fn)(void *ctx), void *ctx, double min_s, int min_calls, double *best,
                    double *median);

/* "--threads N" anywhere in argv, else 0 */
int dv_bench_threads_arg(int argc, char **argv);

/* the subcommands (bench/bench_<name>.c) */
int dv_bench_gemm(int argc, char **argv);
int dv_bench_bandwidth(int argc, char **argv);
int dv_bench_attention(int argc, char **argv);
int dv_bench_adamw(int argc, char **argv);
int dv_bench_calvin(int argc, char **argv);
int dv_bench_dit(int argc, char **argv);
int dv_bench_cuda(int argc, char **argv);

#endif
