/* tools/dualvla.c — the command-line front end: a table of subcommands (tools/commands.h).
 *
 *   dualvla info      what this build and this CPU will use (kernel set, threads, sizes)
 *   dualvla calvin-synth  a synthetic dataset in CALVIN's layout (data/calvin/synth.h)
 *
 * Adding a command: write tools/cmd_<name>.c with `int dv_cmd_<name>(int argc, char **argv)`,
 * declare it in tools/commands.h and add one line to `commands` below.
 * The kernel benchmarks are build/bench (make bench).
 */
#include "tools/commands.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} commands[] = {
    {"info", dv_cmd_info, "show the kernel set, threads and a smoke test"},
    {"calvin-synth", dv_cmd_calvin_synth, "write a synthetic dataset in CALVIN's layout"},
    {"train", dv_cmd_train, "train a model: 'train dit --data DIR' (RoboDual's DiT specialist)"},
    {"act", dv_cmd_act, "one action chunk of a trained model next to the ground truth"},
};
enum { NCOMMANDS = sizeof commands / sizeof commands[0] };

static void usage(FILE *f) {
    fprintf(f, "usage: dualvla <command> [options]   (dualvla <command> --help for its options)\n\n"
               "commands:\n");
    for (int i = 0; i < NCOMMANDS; i++) fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv) {
    if (argc < 2) { usage(stderr); return 2; }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (int i = 0; i < NCOMMANDS; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "dualvla: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
