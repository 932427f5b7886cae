/* Network namespaces by identity: a namespace is its nsfs inode (device +
 * inode), not a path. A fault pins the namespace it changed with an open
 * file descriptor for as long as it runs, so its revert can always enter
 * it, even after the process or path that named it is gone; a recovery,
 * which has only the journal, looks the identity up wherever a namespace
 * can be held. */
#ifndef CHAOS_NET_NS_H
#define CHAOS_NET_NS_H

#include <stddef.h>
#include "chaos_err.h"
#include "nl_tc.h"

/* Opens the namespace file at path (O_RDONLY, close-on-exec) and fills *id.
 * Returns the fd, or a negative errno with err set: -ENOENT when there is
 * no such file ("no such namespace"), -EINVAL when it is no network
 * namespace. */
int net_ns_pin(const char *path, struct nltc_ns_id *id, struct chaos_err *err)
    __attribute__((warn_unused_result));

/* A path that names the namespace behind fd in this process
 * ("/proc/self/fd/N"), for nltc_open. size must be at least 32. */
void net_ns_fd_path(int fd, char *path, size_t size);

/* Looks for the namespace id wherever one can be held in this mount
 * namespace: files under /run/netns and /var/run/netns, any nsfs bind
 * mount (/proc/self/mountinfo), every task's /proc/PID/task/TID/ns/net,
 * and every open file descriptor of every process. Returns 1 with path set
 * (a path that named it a moment ago: open it and check id again), 0 when
 * it is nowhere, i.e. the namespace is gone (nothing else can hold one), or
 * a negative errno with err set when /proc cannot be read at all. Processes
 * this one may not inspect (in a container: the host's) cannot be searched;
 * on 0, unseen (unseen_size bytes, may be 0) says how many there were, or
 * is "" when the search saw everything. */
int net_ns_find(const struct nltc_ns_id *id, char *path, size_t size, char *unseen,
                size_t unseen_size, struct chaos_err *err) __attribute__((warn_unused_result));

#endif
