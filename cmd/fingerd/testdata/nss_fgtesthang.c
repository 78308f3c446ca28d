/*
 * A name-service (NSS) module whose passwd lookups never answer, like an
 * LDAP or SSSD back end without a timeout. The fingerd tests build it with
 * gcc into libnss_fgtesthang.so.2 and load it through an nsswitch.conf
 * that a mount namespace of their own puts over /etc/nsswitch.conf.
 */
#include <nss.h>
#include <pwd.h>
#include <stddef.h>
#include <unistd.h>

enum nss_status _nss_fgtesthang_getpwnam_r(const char *name, struct passwd *pwd,
                                            char *buf, size_t buflen, int *errnop)
{
	(void)name;
	(void)pwd;
	(void)buf;
	(void)buflen;
	(void)errnop;
	for (;;)
		pause();
	return NSS_STATUS_UNAVAIL;
}
