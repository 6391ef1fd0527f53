// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "env.h"
#include "harness.h"
#include "servers.h"

#define SERVER_BUF (64 * 1024)
#define SERVER_STOP_TIMEOUT_MS 5000

struct server {
	struct sl_env *env;		/* lists it until server_stop() */
	enum server_kind kind;
	char ns[128];
	char addr[2][48];
	int nr_addrs;
	uint16_t port;
	int lfd[2];
	int stop_fd;
	pthread_t thread;
	bool thread_started;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	int start_err; /* from the accept thread, once ready */
	bool ready;
	struct conn_record *recs;
	int *fds; /* open fds by record, -1 once closed */
	int nr, cap, nr_done, active;
};

struct conn_arg {
	struct server *s;
	int idx;
	int fd;
};

/* Reads to EOF into rec->in; returns 0 or -errno. */
static int read_to_eof(int fd, struct conn_record *rec, char *buf, bool echo)
{
	for (;;) {
		ssize_t n = read(fd, buf, SERVER_BUF);
		int ret;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (!n) {
			rec->eof = true;
			return 0;
		}
		payload_feed(&rec->in, buf, n);
		if (echo) {
			ret = write_full(fd, buf, n);
			if (ret)
				return ret;
			rec->out.bytes += n;
		}
	}
}

/* Echoes until RESET_AFTER bytes came in, then arms a zero linger so that
 * the close after conn_main sends an RST, not a FIN. */
static int serve_reset(int fd, struct conn_record *rec, char *buf)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	while (rec->in.bytes < RESET_AFTER) {
		ssize_t n = read(fd, buf, RESET_AFTER - rec->in.bytes);
		int ret;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n ? -errno : -EPROTO;
		payload_feed(&rec->in, buf, n);
		ret = write_full(fd, buf, n);
		if (ret)
			return ret;
		rec->out.bytes += n;
	}
	return setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) ? -errno : 0;
}

static int serve_source(int fd, struct conn_record *rec, char *buf)
{
	char req[32];
	size_t len = 0;
	uint64_t want;
	int ret;

	while (len < sizeof(req) - 1 && !memchr(req, '\n', len)) {
		ssize_t n = read(fd, req + len, sizeof(req) - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n ? -errno : -EPROTO;
		len += n;
	}
	req[len] = '\0';
	want = strtoull(req, NULL, 10);
	while (rec->out.bytes < want) {
		size_t n = want - rec->out.bytes < SERVER_BUF ? want - rec->out.bytes : SERVER_BUF;

		payload_next(&rec->out, buf, n);
		ret = write_full(fd, buf, n);
		if (ret)
			return ret;
	}
	shutdown(fd, SHUT_WR);
	/* Close only after the client's EOF, so the client reads our EOF
	 * rather than a reset. */
	return read_to_eof(fd, rec, buf, false);
}

static void *conn_main(void *arg)
{
	struct conn_arg *ca = arg;
	struct server *s = ca->s;
	struct conn_record rec = {};
	char *buf = malloc(SERVER_BUF);
	int ret = -ENOMEM;

	payload_init(&rec.in);
	payload_init(&rec.out);
	if (buf) {
		switch (s->kind) {
		case SRV_ECHO:
			ret = read_to_eof(ca->fd, &rec, buf, true);
			if (!ret)
				shutdown(ca->fd, SHUT_WR);
			break;
		case SRV_SINK:
			ret = read_to_eof(ca->fd, &rec, buf, false);
			break;
		case SRV_SOURCE:
			ret = serve_source(ca->fd, &rec, buf);
			break;
		case SRV_HALF_CLOSE:
			ret = read_to_eof(ca->fd, &rec, buf, false);
			if (!ret) {
				int n = snprintf(buf, SERVER_BUF, HALF_CLOSE_REPLY,
						 (unsigned long long)rec.in.bytes, rec.in.crc);

				ret = write_full(ca->fd, buf, n);
			}
			break;
		case SRV_RESET:
			ret = serve_reset(ca->fd, &rec, buf);
			break;
		case SRV_GARBAGE:
			ret = write_full(ca->fd, GARBAGE_REPLY, sizeof(GARBAGE_REPLY) - 1);
			if (!ret)
				ret = read_to_eof(ca->fd, &rec, buf, false);
			break;
		}
	}
	free(buf);
	rec.err = -ret;
	rec.done = true;

	pthread_mutex_lock(&s->lock);
	rec.peer = s->recs[ca->idx].peer;
	s->recs[ca->idx] = rec;
	s->fds[ca->idx] = -1;
	close(ca->fd);
	s->nr_done++;
	s->active--;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	free(ca);
	return NULL;
}

static int add_conn(struct server *s, int fd, const struct sockaddr_storage *peer)
{
	struct conn_arg *ca;
	pthread_attr_t attr;
	pthread_t t;
	int idx, ret;

	pthread_mutex_lock(&s->lock);
	if (s->nr == s->cap) {
		int cap = s->cap ? s->cap * 2 : 64;
		struct conn_record *r = realloc(s->recs, cap * sizeof(*r));
		int *f = r ? realloc(s->fds, cap * sizeof(*f)) : NULL;

		if (r)
			s->recs = r;
		if (!f) {
			pthread_mutex_unlock(&s->lock);
			return -ENOMEM;
		}
		s->fds = f;
		s->cap = cap;
	}
	idx = s->nr++;
	memset(&s->recs[idx], 0, sizeof(s->recs[idx]));
	s->recs[idx].peer = *peer;
	s->fds[idx] = fd;
	s->active++;
	pthread_mutex_unlock(&s->lock);

	ca = malloc(sizeof(*ca));
	ret = ca ? 0 : -ENOMEM;
	if (ca) {
		*ca = (struct conn_arg){.s = s, .idx = idx, .fd = fd};
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		ret = -pthread_create(&t, &attr, conn_main, ca);
		pthread_attr_destroy(&attr);
	}
	if (ret) {
		/* Account it as a failed connection so waiters see it end. */
		free(ca);
		pthread_mutex_lock(&s->lock);
		s->recs[idx].err = -ret;
		s->recs[idx].done = true;
		s->fds[idx] = -1;
		s->nr_done++;
		s->active--;
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
		close(fd);
	}
	return ret;
}

static int listen_on(const char *addr, uint16_t port)
{
	struct sockaddr_storage ss = {};
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	int fd, one = 1;

	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		len = sizeof(*sin6);
	} else {
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 1024)) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	return fd;
}

static void set_ready(struct server *s, int err)
{
	pthread_mutex_lock(&s->lock);
	s->start_err = err;
	s->ready = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static void *accept_main(void *arg)
{
	struct server *s = arg;
	struct pollfd pfd[3];
	int ret, n = 0;

	ret = netns_join(s->ns);
	for (int i = 0; !ret && i < s->nr_addrs; i++) {
		s->lfd[i] = listen_on(s->addr[i], s->port);
		if (s->lfd[i] < 0)
			ret = s->lfd[i];
	}
	set_ready(s, ret);
	if (ret)
		return NULL;

	pfd[n++] = (struct pollfd){.fd = s->stop_fd, .events = POLLIN};
	for (int i = 0; i < s->nr_addrs; i++)
		pfd[n++] = (struct pollfd){.fd = s->lfd[i], .events = POLLIN};
	for (;;) {
		if (poll(pfd, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[0].revents)
			break;
		for (int i = 1; i < n; i++) {
			struct sockaddr_storage peer = {};
			socklen_t len = sizeof(peer);
			int fd;

			if (!pfd[i].revents)
				continue;
			fd = accept4(pfd[i].fd, (struct sockaddr *)&peer, &len, SOCK_CLOEXEC);
			if (fd >= 0)
				add_conn(s, fd, &peer);
		}
	}
	return NULL;
}

struct server *server_start_at(struct sl_env *env, const char *ns, const char *addr,
			       enum server_kind kind, uint16_t port)
{
	struct server *s;
	int ret;

	if (env->nr_servers == ENV_MAX_SERVERS) {
		printf("server_start: more than %d servers\n", ENV_MAX_SERVERS);
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->env = env;
	s->kind = kind;
	s->port = port;
	s->lfd[0] = s->lfd[1] = -1;
	snprintf(s->ns, sizeof(s->ns), "%s", ns);
	for (const char *p = addr; p && *p && s->nr_addrs < 2;) {
		size_t len = strcspn(p, ",");

		snprintf(s->addr[s->nr_addrs++], sizeof(s->addr[0]), "%.*s", (int)len, p);
		p += len + (p[len] == ',');
	}
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->stop_fd = eventfd(0, EFD_CLOEXEC);
	ret = s->stop_fd < 0 ? -errno : -pthread_create(&s->thread, NULL, accept_main, s);
	if (!ret) {
		s->thread_started = true;
		pthread_mutex_lock(&s->lock);
		while (!s->ready)
			pthread_cond_wait(&s->cond, &s->lock);
		ret = s->start_err;
		pthread_mutex_unlock(&s->lock);
	}
	env->servers[env->nr_servers++] = s;
	if (ret) {
		printf("server on %s port %u in %s: %s\n", addr, port, ns, strerror(-ret));
		return NULL;
	}
	return s;
}

struct server *server_start(struct sl_env *env, enum server_kind kind, uint16_t port)
{
	char addrs[128];

	if (env->has_ipv6)
		snprintf(addrs, sizeof(addrs), "%s,%s", env->ip4_b, env->ip6_b);
	else
		snprintf(addrs, sizeof(addrs), "%s", env->ip4_b);
	return server_start_at(env, env->ns_b, addrs, kind, port);
}

/* Waits on s->cond (held) for a short while; callers re-check a deadline. */
static void cond_wait_briefly(struct server *s)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += 10 * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&s->cond, &s->lock, &ts);
}

void server_stop(struct server *s)
{
	long long deadline = now_ms() + SERVER_STOP_TIMEOUT_MS;
	uint64_t one = 1;
	bool leak = false;

	if (!s)
		return;
	/* Off the teardown's list: a test that stops its server must not
	 * have it stopped (freed) again. */
	for (int i = 0; i < s->env->nr_servers; i++) {
		if (s->env->servers[i] == s)
			s->env->servers[i] = s->env->servers[--s->env->nr_servers];
	}
	if (s->thread_started) {
		if (write(s->stop_fd, &one, sizeof(one)) == sizeof(one))
			pthread_join(s->thread, NULL);
		else
			leak = true;
	}
	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < s->nr; i++) {
		if (s->fds[i] >= 0)
			shutdown(s->fds[i], SHUT_RDWR);
	}
	while (s->active && now_ms() < deadline)
		cond_wait_briefly(s);
	/* A connection thread that is still running owns s: leak it rather
	 * than free memory under it. */
	leak |= s->active > 0;
	pthread_mutex_unlock(&s->lock);
	for (int i = 0; i < 2; i++) {
		if (s->lfd[i] >= 0)
			close(s->lfd[i]);
	}
	if (leak) {
		printf("server port %u: %d connections did not end\n", s->port, s->active);
		return;
	}
	if (s->stop_fd >= 0)
		close(s->stop_fd);
	free(s->recs);
	free(s->fds);
	free(s);
}

int server_nr_conns(struct server *s)
{
	int n;

	pthread_mutex_lock(&s->lock);
	n = s->nr;
	pthread_mutex_unlock(&s->lock);
	return n;
}

int server_wait_done(struct server *s, int nr, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	while (s->nr_done < nr) {
		if (now_ms() >= deadline) {
			ret = -ETIMEDOUT;
			break;
		}
		cond_wait_briefly(s);
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int server_get(struct server *s, int i, struct conn_record *out)
{
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	if (i < 0 || i >= s->nr)
		ret = -ENOENT;
	else
		*out = s->recs[i];
	pthread_mutex_unlock(&s->lock);
	return ret;
}
