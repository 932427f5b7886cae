/* POSIX extended regexes from untrusted input, compiled with bounds.
 *
 * glibc's regcomp expands repetition by copying the repeated subtree, so a
 * short pattern like "a++++++++++++++++++++++++" or "((a{99}){99}){99}"
 * needs gigabytes (found by fuzzing the scenario parser). Patterns are
 * limited in length and in the size their repetitions expand to before
 * regcomp ever sees them. */
#ifndef CHAOS_REGEX_BOUNDED_H
#define CHAOS_REGEX_BOUNDED_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

#define REGEX_MAX_LEN 1024
#define REGEX_MAX_NODES 20000

/* Compiles pattern with REG_EXTENDED | REG_NOSUB into re. Returns 0, or
 * non-zero with why (a phrase, no trailing period) saying what is wrong;
 * re needs regfree() only on success. */
int regex_compile_bounded(regex_t *re, const char *pattern, char *why, size_t why_size);

/* The estimated number of nodes pattern expands to (capped just above
 * REGEX_MAX_NODES); exposed for tests. */
size_t regex_expansion(const char *pattern);

/* True when a repetition operator directly follows another ("a+?", "a**",
 * "a{2}{3}"): undefined in POSIX EREs, and slow to compile in glibc. */
bool regex_has_stacked_repetition(const char *pattern);

#endif
