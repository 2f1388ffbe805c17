/*
 * The local submission socket of `tegami sendmail` (queue_private.h).
 * Not there yet: the socket is not opened, so sendmail cannot hand over
 * mail; this file is being written (issue 5).
 */
#include "queue/queue_private.h"

int
queue_pickup_start(struct queue_server *qs, char *err, size_t errsize)
{
	(void)qs;
	(void)err;
	(void)errsize;
	return 0;
}

void
queue_pickup_stop(struct queue_server *qs)
{
	(void)qs;
}
