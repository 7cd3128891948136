/*
 * Layer 2: self-sharding across Varnish nodes (cluster.c). See ghost.h.
 */

#ifndef GHOST_CLUSTER_H
#define GHOST_CLUSTER_H

/* the hop mark a member sends the owner, and where a fetch goes */
#define GHOST_HOP_HDR		"X-Ghost-Hop"
#define GHOST_SHARD_HDR		"X-Ghost-Shard"

/* What the client side decided for a sharded lookup. */
enum ghost_shard {
	GHOST_SHARD_NONE = 0,	/* not clustered, or no ring yet: local */
	GHOST_SHARD_LOCAL,	/* this node owns the key */
	GHOST_SHARD_HOP,	/* a member forwarded it here: served here */
	GHOST_SHARD_FWD,	/* owned by another member: fetch from it */
};

/* The owner a fetch goes to (struct ghost_task.peer). */
struct ghost_peer {
	char		addr[48];
	unsigned	port;
	double		sttl;		/* longest TTL of our copy */
	double		ctmo;		/* connect timeout */
	double		ctmo_saved;	/* the fetch's own, restored on retry */
	struct ghost_hp	hp;		/* members' probe (id 0: none); u in
					   the workspace */
};

/*
 * gv->cl_state: does ghost.recv() keep the hop mark for ghost.cache()?
 * Until the shim knows (an answer with or without "sh"), it does: a
 * member's first hop to an owner that has not fetched the cluster yet is
 * still recognised. Kept and unchecked, it goes no further than the
 * request (route() strips X-Ghost-* from what it sends).
 */
#define GHOST_CL_UNKNOWN	0	/* kept */
#define GHOST_CL_ON		1	/* clustered: kept, checked */
#define GHOST_CL_OFF		2	/* not clustered: stripped */

void ghost_cluster_init(struct ghost_vcl *);
void ghost_cluster_off(struct ghost_vcl *);
/* Is member addr:port's backend under probe id sick? Called with the
 * cluster's read lock held (cl_lock -> be_lock, read sides only). */
typedef int ghost_cluster_sick_f(VRT_CTX, struct ghost_vcl *,
    const char *addr, unsigned port, uint32_t id);
int ghost_cluster_decide(VRT_CTX, struct ghost_vcl *, uint64_t ver,
    const char *key, size_t kl, const char **peer_hdr, int *sttl0,
    ghost_cluster_sick_f *sick);
int ghost_cluster_peer(VRT_CTX, struct ghost_vcl *, const char *hdr,
    struct ghost_peer *, const char **tok);
void ghost_cluster_failed(VRT_CTX, struct ghost_vcl *,
    const struct ghost_peer *);
int ghost_cluster_is_hop(const txt *);
void ghost_cluster_fini(struct ghost_vcl *);

#endif /* GHOST_CLUSTER_H */
