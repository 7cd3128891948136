/*
 * Layer 2: native backends per endpoint and their retirement
 * (backend.c). See ghost.h.
 */

#ifndef GHOST_BACKEND_H
#define GHOST_BACKEND_H

/* hp: the answer's probe (NULL or id 0: the endpoint's plain backend) */
VCL_BACKEND ghost_be_get(VRT_CTX, struct ghost_vcl *, const char *addr,
    size_t addr_len, unsigned port, uint64_t gen, const struct ghost_hp *hp);
/* The same for a memoised answer read from memo entry ref (held): the map
 * entry cached in the memo entry; *name (NULL: not known), nl bytes in an
 * array of 64: the backend's vcl_name after "ghost.". */
VCL_BACKEND ghost_be_get_memo(VRT_CTX, struct ghost_vcl *, const char *addr,
    size_t addr_len, unsigned port, uint64_t gen, const struct ghost_hp *hp,
    void *ref, const char **name, size_t *nl);

/* Endpoint health: the state of an endpoint's backend under probe id. */
#define GHOST_BE_SICK		1	/* its probe says sick */
#define GHOST_BE_EJECTED	2	/* outlier detection left it out */
int ghost_be_state(VRT_CTX, struct ghost_vcl *, const char *addr,
    size_t addr_len, unsigned port, uint32_t id);
/* out[f] = the state of the f-th endpoint of groups [g, g_end), n of
 * them; how many sick, how many ejected. One read lock. */
void ghost_be_states(VRT_CTX, struct ghost_vcl *, const uint8_t *g,
    const uint8_t *g_end, uint32_t id, unsigned char *out, unsigned n,
    unsigned *nsick, unsigned *nej);
/* A fetch from the endpoint's backend under probe id failed (5xx or no
 * response) or not: outlier detection by the answer's ol. */
void ghost_be_outcome(VRT_CTX, struct ghost_vcl *, const struct ghost_ans *,
    const char *addr, size_t addr_len, unsigned port, uint32_t id,
    int failed);
void ghost_be_live(VRT_CTX, struct ghost_vcl *, uint64_t gen);
int ghost_reaper_start(struct ghost_vcl *);
void ghost_reaper_stop(struct ghost_vcl *);
void ghost_be_fini(VRT_CTX, struct ghost_vcl *);
void ghost_be_warm(VRT_CTX, struct ghost_vcl *);
void ghost_be_cold(VRT_CTX, struct ghost_vcl *);
/* vcl_init: set the ceiling (-1: from the descriptor limit) and warn
 * when it does not fit the machine's limits. */
void ghost_be_limits(VRT_CTX, struct ghost_vcl *, long max_backends);

#endif /* GHOST_BACKEND_H */
