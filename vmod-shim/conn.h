/*
 * Layer 1: connections and round trips to ghostd (conn.c). See ghost.h.
 */

#ifndef GHOST_CONN_H
#define GHOST_CONN_H

struct ghost_rt {
	/* in */
	ghost_enc_f		*enc;
	void			*arg;
	size_t			enc_max;	/* upper bound of encoded size */
	double			timeout;
	int			fresh;		/* do not use a pooled connection */
	/* out */
	const uint8_t		*ans;		/* copied into ws */
	size_t			ans_len;
	char			why[256];
};

int ghost_roundtrip(struct ghost_vcl *, struct ws *, struct ghost_rt *);
void ghost_pool_flush(struct ghost_vcl *);

#endif /* GHOST_CONN_H */
