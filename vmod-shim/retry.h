/*
 * Layer 2: a routed fetch's timeouts and retries (retry.c). See ghost.h.
 */

#ifndef GHOST_RETRY_H
#define GHOST_RETRY_H

/*
 * vcl_backend_fetch, once the attempt's backend is picked: bound this
 * attempt by the route's backend_request and what is left of its request
 * timeout (bereq connect, first byte and between bytes timeouts), and
 * note when and how it started.
 */
void ghost_fetch_limits(VRT_CTX, struct ghost_task *t);

/*
 * vcl_backend_response or vcl_backend_error: 1 when the route says this
 * attempt is retried (status in its codes, or a failed fetch), it may be
 * (attempts, max_retries, a replayable body, the request timeout) and
 * the backoff was waited; 0 otherwise. A failed fetch past the request
 * timeout becomes 504 Gateway Timeout. Each retry and each refusal is one
 * VCL_Log line saying why.
 */
int ghost_retry(VRT_CTX, struct ghost_task *t);

/*
 * Whether a's route has timeouts or retry, i.e. anything for
 * ghost_fetch_limits() and ghost_retry() to do. Inline: most routes have
 * neither, and their fetches then run none of that code.
 */
static inline int
ghost_retry_on(const struct ghost_ans *a)
{
	/* tm_req, tm_be or rt_att (answer.c) */
	return ((a->ops & GHOST_OPS_RETRY) != 0);
}

#endif /* GHOST_RETRY_H */
