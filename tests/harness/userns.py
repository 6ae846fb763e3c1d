"""The namespaces the tests run in, for root and for an ordinary user alike.

unshare(*flags) is the unshare(1) command line every test uses for its own
network, pid or mount namespace. As root it is plain `unshare FLAGS`. As an
ordinary user the same namespaces are made inside a user namespace of the
user's own, where the user keeps its uid (--map-current-user) and holds every
capability of that namespace as an ambient one (--keep-caps), which every
program started inside inherits: `ip link`, `tc`, tcpdump, binding a port
below 1024 and `mount --bind` then work as they do for root. The uid is kept,
rather than mapped to 0 as `unshare -r` does, because only that one uid exists
in such a namespace: a program that takes itself for root tries to change to
another user (tcpdump drops to `tcpdump`, nginx's workers to `user`) and fails,
where one that knows it is not root simply stays who it is. A mount
namespace always comes with it: the user has power only over namespaces its
own user namespace owns, and a program may act on its mount namespace (a
setns() into it, which fails with EPERM on the machine's).
"""

import os

AS_ROOT = os.geteuid() == 0

USERNS = [] if AS_ROOT else ["--user", "--map-current-user", "--keep-caps", "--mount"]


def unshare(*flags):
    """`unshare FLAGS` for root; for an ordinary user the same in a user
    namespace of its own (see above)."""
    return ["unshare"] + USERNS + list(flags)
