/* tools/commands.h — the subcommands of build/dualvla.
 *
 * Each command lives in its own file tools/cmd_<name>.c and is one line in the table in
 * tools/dualvla.c. A command gets argv with argv[0] = its own name, prints its errors itself
 * (naming the file / flag and what was wrong) and returns the process exit status:
 * 0 success, 1 failure at run time, 2 bad usage.
 */
#ifndef DV_TOOLS_COMMANDS_H
#define DV_TOOLS_COMMANDS_H

int dv_cmd_info(int argc, char **argv);
int dv_cmd_calvin_synth(int argc, char **argv);
int dv_cmd_train(int argc, char **argv);
int dv_cmd_act(int argc, char **argv);

#endif
