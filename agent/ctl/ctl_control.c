// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* sluicectl's side of the control socket (ctlproto.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl.h"

/* An apply renders and tests the edge's nginx config and compiles up to
 * POLICY_MAX_RULES rules: seconds at most. */
#define ANSWER_TIMEOUT_S 60

static int connect_agent(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = ANSWER_TIMEOUT_S };
	int fd, ret;

	if (strlen(control_path) >= sizeof(sun.sun_path))
		return errmsg_set(&ctl_err, -ENAMETOOLONG, "control socket %s: path too long",
				  control_path);
	strcpy(sun.sun_path, control_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errmsg_set(&ctl_err, -errno, "socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (!connect(fd, (struct sockaddr *)&sun, sizeof(sun)))
		return fd;
	ret = -errno;
	close(fd);
	if (ret == -ENOENT || ret == -ECONNREFUSED)
		return errmsg_set(&ctl_err, ret, "cannot reach sluiced at %s: %s (is it running? "
				  "-S or $SLUICE_CONTROL_SOCKET name another socket)",
				  control_path, strerror(-ret));
	if (ret == -EACCES || ret == -EPERM)
		return errmsg_set(&ctl_err, ret, "permission denied on %s: the control socket is "
				  "for root and the groups control.read_group and "
				  "control.admin_group name", control_path);
	return errmsg_set(&ctl_err, ret, "cannot reach sluiced at %s: %s", control_path,
			  strerror(-ret));
}

static int send_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len) {
		n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errmsg_set(&ctl_err, -errno, "control socket %s: %s", control_path,
					  strerror(errno));
		buf += n;
		len -= n;
	}
	return 0;
}

/* One line, without its "\n", into *line (malloc'd). */
static int read_line(int fd, char **line, size_t *len)
{
	size_t cap = 0, n = 0;
	char *buf = NULL, *nl;
	ssize_t r;

	for (;;) {
		if (cap - n < 4096) {
			char *nb;

			if (cap >= CTLPROTO_MAX_RESPONSE) {
				free(buf);
				return errmsg_set(&ctl_err, -EFBIG, "the agent's answer is longer "
						  "than %d MiB", CTLPROTO_MAX_RESPONSE >> 20);
			}
			cap = cap ? cap * 2 : 65536;
			nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				return errmsg_set(&ctl_err, -ENOMEM, "out of memory");
			}
			buf = nb;
		}
		r = recv(fd, buf + n, cap - n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int ret = -errno;

			free(buf);
			if (ret == -EAGAIN)
				return errmsg_set(&ctl_err, -ETIMEDOUT, "sluiced did not answer "
						  "within %d s", ANSWER_TIMEOUT_S);
			return errmsg_set(&ctl_err, ret, "control socket %s: %s", control_path,
					  strerror(-ret));
		}
		if (!r) {
			free(buf);
			return errmsg_set(&ctl_err, -ECONNRESET, "sluiced closed the control "
					  "socket without an answer");
		}
		nl = memchr(buf + n, '\n', r);
		n += r;
		if (nl) {
			*line = buf;
			*len = nl - buf;
			return 0;
		}
	}
}

int ctl_request(enum ctl_cmd cmd, json_t *args, json_t **result)
{
	char *req, *line = NULL;
	size_t len = 0;
	int fd, ret;

	*result = NULL;
	req = ctlproto_request(cmd, args, &len);
	if (!req)
		return errmsg_set(&ctl_err, -ENOMEM, "out of memory");
	fd = connect_agent();
	if (fd < 0) {
		free(req);
		return fd;
	}
	ret = send_all(fd, req, len);
	free(req);
	if (!ret)
		ret = read_line(fd, &line, &len);
	close(fd);
	if (ret)
		return ret;
	ret = ctlproto_parse_response(line, len, result, &ctl_err);
	free(line);
	return ret;
}
