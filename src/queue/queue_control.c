/*
 * The control socket of `tegami queue flush|delete|bounce`
 * (queue_private.h). Not there yet: the socket is not opened; this file is
 * being written (issue 5).
 */
#include "queue/queue_private.h"

int
queue_control_start(struct queue_server *qs, char *err, size_t errsize)
{
	(void)qs;
	(void)err;
	(void)errsize;
	return 0;
}

void
queue_control_stop(struct queue_server *qs)
{
	(void)qs;
}
