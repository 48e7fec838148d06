/* redis_server.c — see redis_server.h. */
#include "redis_server.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

int redis_server_free_port(void)
{
	struct sockaddr_in a = {0};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd < 0)
		return -1;
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (!bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
	    !getsockname(fd, (struct sockaddr *)&a, &len))
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static int port_open(int port)
{
	struct sockaddr_in a = {0};
	int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

pid_t redis_server_start(int port, const char *password)
{
	char p[8];
	pid_t pid;

	snprintf(p, sizeof(p), "%d", port);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		prctl(PR_SET_PDEATHSIG, SIGKILL); /* no orphan if we crash */
		dup2(null, 1);
		dup2(null, 2);
		if (password)
			execlp("redis-server", "redis-server", "--port", p,
			       "--bind", "127.0.0.1", "-::1", "--save", "",
			       "--appendonly", "no", "--requirepass", password,
			       (char *)NULL);
		else
			execlp("redis-server", "redis-server", "--port", p,
			       "--bind", "127.0.0.1", "-::1", "--save", "",
			       "--appendonly", "no", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500 && !port_open(port); i++)
		usleep(10000);
	if (!port_open(port)) {
		redis_server_kill(&pid);
		return -1;
	}
	return pid;
}

void redis_server_kill(pid_t *pid)
{
	if (*pid <= 0)
		return;
	kill(*pid, SIGKILL);
	waitpid(*pid, NULL, 0);
	*pid = 0;
}
