"""The local cluster: K2's "when a user outgrows one machine" column, from real servers on the
loopback address of this machine (``k2 stack up --cluster``). One module per server."""

from k2.stack.cluster.local import LocalCluster, cluster_processes

__all__ = ["LocalCluster", "cluster_processes"]
