/*
 * Reading a vector file that route/ writes (route/testdata/, e.g.
 * pick_vectors.txt): one vector a line, "#" comments and blank lines
 * skipped. For the C tests in test/cshim/.
 */

#ifndef GHOST_CSHIM_VECTORS_H
#define GHOST_CSHIM_VECTORS_H

#include <stdio.h>
#include <string.h>

struct vectors {
	const char	*path;
	FILE		*f;
	unsigned	lineno;
	unsigned	checked;
	unsigned	bad;
};

/* Open the file named by the test's only argument; 0, or -1 (reported). */
static inline int
vec_open(struct vectors *v, int argc, char **argv)
{
	memset(v, 0, sizeof *v);
	if (argc != 2) {
		fprintf(stderr, "usage: %s VECTORS\n", argv[0]);
		return (-1);
	}
	v->path = argv[1];
	v->f = fopen(v->path, "r");
	if (v->f == NULL) {
		perror(v->path);
		return (-1);
	}
	return (0);
}

/* The next vector line into line; 0 at the end. */
static inline int
vec_next(struct vectors *v, char *line, size_t l)
{
	while (fgets(line, (int)l, v->f) != NULL) {
		v->lineno++;
		if (line[0] != '#' && line[0] != '\n') {
			v->checked++;
			return (1);
		}
	}
	return (0);
}

/* Close, print the summary; the exit status of the test. */
static inline int
vec_done(struct vectors *v, const char *test, const char *bad)
{
	fclose(v->f);
	if (v->checked == 0) {
		fprintf(stderr, "%s: no vectors\n", v->path);
		return (2);
	}
	printf("%s: %u vectors, %u %s\n", test, v->checked, v->bad, bad);
	return (v->bad != 0);
}

#endif /* GHOST_CSHIM_VECTORS_H */
